"""Sampler throughput: ``rewardlab sample``'s batched groups against a plain ``model.generate`` loop (one call per
prompt, ``num_return_sequences = N``), same model, prompts and settings (temperature, top-p, top-k off, max new
tokens, N), measured in one run, one after the other. Tokens = generated tokens up to and including EOS.

    .venv/bin/python perf/bench_sample.py --policy smollm2-135m --prompts 8 --n 8 --max-new-tokens 32 \
        --output perf/results/bench_sample.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, GenerationConfig

from rewardlab.bon.sample import SampleConfig, load_policy_tokenizer, prompt_text, read_prompts, run_sample
from rewardlab.models.backbones import resolve_backbone


def plain_loop(path: str, tok, texts: list[str], cfg: SampleConfig) -> tuple[int, float]:
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    gen = GenerationConfig(
        do_sample=True,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=0,
        max_new_tokens=cfg.max_new_tokens,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        num_return_sequences=cfg.n,
    )
    torch.manual_seed(cfg.seed)
    tokens, t0 = 0, time.perf_counter()
    for text in texts:
        enc = tok([text], return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, generation_config=gen)
        for row in out[:, enc["input_ids"].shape[1] :].tolist():
            end = next((i for i, t in enumerate(row) if t == tok.eos_token_id), None)
            tokens += len(row) if end is None else end + 1
    return tokens, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--output", default="perf/results/bench_sample.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cfg = SampleConfig(
            policy=a.policy,
            limit=a.prompts,
            n=a.n,
            max_new_tokens=a.max_new_tokens,
            batch_size=a.batch_size,
            temperature=1.0,
            output=str(Path(d) / "s.jsonl"),
        )
        prompts = read_prompts(cfg)
        path, tok = load_policy_tokenizer(cfg, prompts)
        texts = [prompt_text(tok, p.prompt) for p in prompts]
        base_tokens, base_s = plain_loop(path, tok, texts, cfg)  # the anchor, measured in the same run
        t0 = time.perf_counter()
        run_sample(cfg)
        ours_s = time.perf_counter() - t0  # includes loading the model once and writing the cache
        rows = [json.loads(x) for x in Path(cfg.output).read_text().splitlines()]
        ours_tokens = sum(sum(r["num_tokens"]) for r in rows)
    res = {
        "policy": a.policy,
        "resolved": resolve_backbone(a.policy),
        "prompts": a.prompts,
        "n": a.n,
        "max_new_tokens": a.max_new_tokens,
        "batch_size": a.batch_size,
        "threads": torch.get_num_threads(),
        "plain_generate_loop": {"tokens": base_tokens, "seconds": base_s, "tokens_per_s": base_tokens / base_s},
        "rewardlab_sample": {"tokens": ours_tokens, "seconds": ours_s, "tokens_per_s": ours_tokens / ours_s},
    }
    res["speedup_tokens_per_s"] = res["rewardlab_sample"]["tokens_per_s"] / res["plain_generate_loop"]["tokens_per_s"]
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    res["command"] = " ".join(["python", *sys.argv])
    Path(a.output).write_text(json.dumps(res, indent=1) + "\n")
    print("| sampler | tokens | seconds | tokens/s |\n|---|---|---|---|")
    for k in ("plain_generate_loop", "rewardlab_sample"):
        print(f"| {k} | {res[k]['tokens']} | {res[k]['seconds']:.1f} | {res[k]['tokens_per_s']:.1f} |")
    print(f"speed-up: {res['speedup_tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
