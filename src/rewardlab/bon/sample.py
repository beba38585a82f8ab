"""``rewardlab sample``: N responses per prompt from a causal LM policy, appended to a JSONL cache that resumes.

One JSONL row per prompt (the candidate-set shape :mod:`rewardlab.bon.candidates` reads)::

    {"id", "prompt", "meta"?, "responses": [N texts], "logprobs": [[token log-probs], ...],
     "num_tokens": [...], "finished": [...], "sampling": {the settings}}

Exact resume: prompts are processed in fixed *groups* (``max(1, batch_size // n)`` whole prompts, their
``n`` copies generated together, at most ``batch_size`` sequences per forward batch), each group under its own
seed ``(seed, group index)``, so a group's samples do not depend on what ran before. A group's rows are written (and
flushed) when it completes; on restart the cache is read, a partial last line (an interrupted write) is cut off,
the settings are compared with the run's (a different setting is refused, named), and only the prompts not yet
in the cache are sampled. Interrupted + resumed = uninterrupted, row for row.

``logprobs`` are each generated token's log-probability under the policy's *raw* distribution (log-softmax of
its logits: temperature 1, no top-p), up to and including the end-of-sequence token when one was generated
(``finished``); ``num_tokens`` counts them. The response text stops before the end-of-sequence token.

The decoding loop is rewardlab's own (:func:`decode_chunk`), not ``model.generate``: each prompt is prefilled
once and its KV cache shared by its N samples, and only the drawn token's log-prob is kept per step. It draws
other tokens than the first version (``generate``) for the same seed, so the settings record ``sampler``
(:data:`SAMPLER`) and a cache of another version is refused on resume.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rewardlab.bon.candidates import _prompt
from rewardlab.core import progress
from rewardlab.core.bounds import Positive, PositiveFloat, PositiveFraction, Seed
from rewardlab.core.errors import DataError, RewardlabError
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.core.outputs import claim_output_file
from rewardlab.data.readers import iter_rows
from rewardlab.data.synthetic import generate
from rewardlab.models.backbones import resolve_backbone
from rewardlab.scoring.sharding import exchange, world

LOGPROBS = "token log-probs under the policy's raw logits (log-softmax, temperature 1, no top-p)"
SAMPLER = "rewardlab-sample/2: prompt prefilled once per chunk, KV cache shared by its N samples, seeded generator"
RESUME_KEYS = (
    "sampler",
    "policy",
    "policy_config_sha256",
    "n",
    "temperature",
    "top_p",
    "max_new_tokens",
    "batch_size",
    "seed",
)


@dataclass
class SampleConfig:
    # policy
    policy: str = "smollm2-135m"  # the policy: a causal LM directory or hub id, or smollm2-135m (embedded, no download)
    allow_eos_as_pad: bool = False  # a tokenizer without a pad token pads with its EOS token (otherwise refused)
    # prompts
    prompts: str = "embedded"  # 'embedded' (the embedded tasks, checkable by their gold checkers) or a file of rows with 'prompt' (text or messages), optional 'id' and 'meta'
    limit: Positive | None = (
        None  # only the first N prompts of the file; with 'embedded', how many prompts (default 20)
    )
    prompt_seed: Seed = 0  # 'embedded': the seed of the generated prompts
    # sampling
    n: Positive = 8  # samples per prompt (N)
    temperature: PositiveFloat = 0.7  # sampling temperature
    top_p: PositiveFraction = 1.0  # nucleus sampling: keep the smallest set of tokens with this much probability
    max_new_tokens: Positive = 64  # longest response, in tokens
    batch_size: Positive = 16  # sequences decoded together; whole prompts are grouped (a setting of the cache)
    seed: Seed = 0  # the sampling seed (each prompt group gets its own, from this)
    # output
    output: str = "samples.jsonl"  # the JSONL cache: one row per prompt; an existing one is resumed
    overwrite: bool = False  # start the cache afresh instead of resuming it


@dataclass
class Prompt:
    id: str
    prompt: str | list
    meta: dict


def read_prompts(cfg: SampleConfig) -> list[Prompt]:
    """The prompts in order: the embedded tasks' (``synthetic.generate(limit or 20, prompt_seed)``: prompt + the
    facts its checker reads) or a file's rows (``prompt``; ``id`` and ``meta`` optional)."""
    if cfg.prompts == "embedded":
        return [Prompt(r.id, r.prompt, dict(r.meta)) for r in generate(cfg.limit or 20, seed=cfg.prompt_seed)]
    out = []
    for loc, row in iter_rows(cfg.prompts):
        if cfg.limit is not None and len(out) >= cfg.limit:
            break
        prompt = _prompt(loc, row.get("prompt"))
        meta = row.get("meta") or {}
        if not isinstance(meta, dict):
            raise DataError("expected an object", path=cfg.prompts, line=loc.get("line"), field="meta")
        out.append(
            Prompt(str(row.get("id", f"{Path(cfg.prompts).name}:{loc.get('line', loc.get('row'))}")), prompt, meta)
        )
    if not out:
        raise DataError("no prompts in the file", path=cfg.prompts)
    ids = [p.id for p in out]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"prompt id {dup!r} appears twice (ids key the resumable cache)", path=cfg.prompts, field="id")
    return out


def load_policy_tokenizer(cfg: SampleConfig, prompts: list[Prompt]):
    """The policy's tokenizer, refused before any model is loaded when it cannot generate for these prompts:
    no pad token (unless ``allow_eos_as_pad``), or chat-message prompts without a chat template."""
    from transformers import AutoTokenizer  # lazy: transformers only when a command runs, not for --help

    path = resolve_backbone(cfg.policy)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise RewardlabError(f"--policy {cfg.policy}: cannot load its tokenizer ({type(e).__name__}: {e})") from None
    if tok.pad_token is None:
        if not cfg.allow_eos_as_pad or tok.eos_token is None:
            raise RewardlabError(
                f"--policy {cfg.policy}: its tokenizer has no pad token, so batched prompts cannot be padded; "
                "pass --allow-eos-as-pad to pad with its EOS token"
            )
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        chat = next((p for p in prompts if not isinstance(p.prompt, str)), None)
        if chat is not None:
            raise RewardlabError(
                f"--policy {cfg.policy}: prompt {chat.id!r} is a list of chat messages but the tokenizer has no chat "
                "template to render it"
            )
    tok.padding_side = "left"
    return path, tok


def prompt_text(tok, prompt: str | list) -> str:
    """The text the policy continues: the chat template with a generation prompt when the tokenizer has one
    (a text prompt is one user message), else the text itself."""
    if tok.chat_template:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return prompt


def settings_of(cfg: SampleConfig, path: str, tok) -> dict:
    """What the cache records (and, for :data:`RESUME_KEYS`, must match on resume)."""
    config = Path(path) / "config.json"
    sha = hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else None
    return {
        "sampler": SAMPLER,
        "policy": cfg.policy,
        "policy_config_sha256": sha,
        "n": cfg.n,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "top_k": "off",
        "max_new_tokens": cfg.max_new_tokens,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "prompt_format": "chat template" if tok.chat_template else "plain text",
        "logprobs": LOGPROBS,
    }


def read_cache(path: Path) -> list[dict]:
    """The complete rows of an existing cache. Text after the last newline is a row whose write was interrupted:
    it is cut off the file (reported) and sampled again. A bad complete line is an error naming it."""
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    rows = []
    for i, line in enumerate(complete.split(b"\n")[:-1]):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise DataError(f"not a JSON row ({e}); the cache is damaged", path=str(path), line=i + 1) from None
        if not isinstance(row, dict):
            raise DataError("not a JSON object; the cache is damaged", path=str(path), line=i + 1)
        rows.append(row)
    if len(complete) < len(data):
        progress.status(f"{path}: removing an incomplete last row left by an interrupted run")
        with open(path, "r+b") as f:
            f.truncate(len(complete))
    return rows


def check_resume(path: Path, rows: list[dict], settings: dict, prompts: list[Prompt]) -> None:
    """Refuse to extend a cache made with other settings or for other prompts (naming the difference)."""
    for k, row in enumerate(rows):
        old = row.get("sampling") or {}
        if old.get("sampler") != SAMPLER:
            was = old.get("sampler") or "the first one, model.generate with each sample prefilling its prompt"
            raise RewardlabError(
                f"{path} was written by another version of the sampler ({was}); this one ({SAMPLER}) draws other "
                "tokens for the same seed, so the two are not mixed in one cache: pass --overwrite (or another --output)"
            )
        for key in RESUME_KEYS:
            if old.get(key) != settings[key]:
                raise RewardlabError(
                    f"{path} was sampled with {key}={old.get(key)!r} but this run asks {key}={settings[key]!r}: "
                    "run with the cache's settings to resume it, or pass --overwrite (or another --output)"
                )
        if k >= len(prompts) or row.get("id") != prompts[k].id:
            want = prompts[k].id if k < len(prompts) else "nothing (fewer prompts now)"
            raise RewardlabError(
                f"{path} line {k + 1} holds prompt {row.get('id')!r} where this run's prompts have {want!r}: "
                "it was made from other prompts; pass --overwrite or another --output"
            )


def groups(num_prompts: int, n: int, batch_size: int) -> list[range]:
    """Prompt index ranges sampled together: ``max(1, batch_size // n)`` prompts each. 5 prompts, n = 4,
    batch 8 → [0, 2), [2, 4), [4, 5)."""
    per = max(1, batch_size // n)
    return [range(s, min(s + per, num_prompts)) for s in range(0, num_prompts, per)]


def group_seed(seed: int, index: int) -> int:
    """The seed of one prompt group: a hash of ``(seed, index)``, so neighbouring groups are unrelated."""
    return int.from_bytes(hashlib.sha256(f"rewardlab-sample/{seed}/{index}".encode()).digest()[:8], "little") % 2**63


def chunks_of(num_texts: int, n: int, batch_size: int) -> list[tuple[list[int], int]]:
    """How a group's ``num_texts·n`` sequences are generated: ``(text indices, copies of each)`` per forward batch
    of at most ``batch_size`` sequences. ``n ≤ batch_size``: ``batch_size // n`` whole texts a chunk, ``n`` copies
    each; ``n > batch_size``: one text a chunk, its copies ``batch_size`` at a time. 3 texts, n = 2, batch 4 →
    ``[([0, 1], 2), ([2], 2)]``; 1 text, n = 5, batch 2 → ``[([0], 2), ([0], 2), ([0], 1)]``."""
    if n <= batch_size:
        per = batch_size // n
        return [(list(range(s, min(s + per, num_texts))), n) for s in range(0, num_texts, per)]
    return [([t], min(batch_size, n - c)) for t in range(num_texts) for c in range(0, n, batch_size)]


def top_p_filter(scores, top_p: float):
    """``scores`` (B, V) with every token outside the nucleus set to -inf: tokens sorted by probability, the
    least likely removed while their cumulative probability is ≤ 1 − top_p, the most likely always kept (the rule
    of transformers' ``TopPLogitsWarper``). Probabilities (0.5, 0.3, 0.2), top-p 0.75 → the 0.2 token goes
    (0.2 ≤ 0.25), the 0.3 token stays (0.5 > 0.25)."""
    import torch  # lazy: as above

    ordered, order = torch.sort(scores, descending=False)
    remove = ordered.softmax(-1).cumsum(-1) <= (1 - top_p)
    remove[..., -1:] = False
    return scores.masked_fill(remove.scatter(1, order, remove), float("-inf"))


def decode_chunk(model, ids, mask, copies: int, cfg: SampleConfig, generator, eos_ids: set[int], pad_id: int):
    """Sample ``copies`` continuations of each of the prompts ``ids`` (P, L; left-padded, ``mask`` (P, L)).

    The prompts run through the policy **once** (prefill); their KV cache and last-position logits are then
    repeated ``copies`` times along the batch (``DynamicCache.batch_repeat_interleave``: row ``p·copies + j`` is
    copy j of prompt p) and the P·copies sequences decode one token a step from it. Each step: the raw logits'
    log-softmax at the drawn token is the token's log-prob (only that (B,) vector is kept, never (B, V) per step);
    the draw is from softmax(top_p_filter(logits / temperature)) with ``generator``. A finished sequence (EOS
    drawn) gets ``pad_id`` afterwards. Stops when every sequence finished or at ``max_new_tokens``.
    Returns (tokens (B, T), log-probs (B, T)), B = P·copies."""
    import torch  # lazy: as above

    keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    res = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **keep)
    cache = res.cache
    cache.batch_repeat_interleave(copies)
    logits = res.logits[:, -1].float().repeat_interleave(copies, 0)  # (B, V): raw
    mask = mask.repeat_interleave(copies, 0)
    pos = pos[:, -1:].repeat_interleave(copies, 0)
    eos = torch.tensor(sorted(eos_ids), device=ids.device)
    done = torch.zeros(logits.shape[0], dtype=torch.bool, device=ids.device)
    tokens, logprobs = [], []
    for step in range(cfg.max_new_tokens):
        scores = logits / cfg.temperature
        if cfg.top_p < 1.0:
            scores = top_p_filter(scores, cfg.top_p)
        drawn = torch.multinomial(scores.softmax(-1), 1, generator=generator)[:, 0]
        drawn = torch.where(done, torch.full_like(drawn, pad_id), drawn)
        logprobs.append(torch.log_softmax(logits, -1).gather(1, drawn[:, None])[:, 0])
        tokens.append(drawn)
        done |= torch.isin(drawn, eos)
        if bool(done.all()) or step == cfg.max_new_tokens - 1:
            break
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        pos = pos + 1
        res = model(
            input_ids=drawn[:, None], attention_mask=mask, position_ids=pos, cache=cache, use_cache=True, **keep
        )
        cache = res.cache
        logits = res.logits[:, -1].float()
    return torch.stack(tokens, 1), torch.stack(logprobs, 1)


def sample_group(model, tok, texts: list[str], cfg: SampleConfig, seed: int, eos_ids: set[int]) -> list[list[dict]]:
    """``cfg.n`` samples of each text: ``[[{"response", "logprobs", "num_tokens", "finished", "token_ids"}, ...]
    per text]``. The chunks of :func:`chunks_of` run through :func:`decode_chunk` in order under one generator
    seeded with ``seed`` (nothing global is seeded), so a group's samples depend only on its texts, the settings and
    ``seed``."""
    import torch  # lazy: torch only when a command runs, not for --help

    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    per_text: list[list[dict]] = [[] for _ in texts]
    for idx, copies in chunks_of(len(texts), cfg.n, cfg.batch_size):
        enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.inference_mode():
            new, lp = decode_chunk(
                model, enc["input_ids"], enc["attention_mask"], copies, cfg, generator, eos_ids, tok.pad_token_id
            )
        for b in range(new.shape[0]):
            ids = new[b].tolist()
            end = next((i for i, t in enumerate(ids) if t in eos_ids), None)
            keep = len(ids) if end is None else end + 1
            text_ids = ids if end is None else ids[:end]
            per_text[idx[b // copies]].append(
                {
                    "response": tok.decode(text_ids, skip_special_tokens=True),
                    "logprobs": lp[b, :keep].tolist(),
                    "num_tokens": keep,
                    "finished": end is not None,
                    "token_ids": ids[:keep],  # not written to the cache (tests read it)
                }
            )
    return per_text


def run_sample(cfg: SampleConfig) -> Path:
    """Sample, resuming ``cfg.output`` when it exists (unless ``overwrite``). Returns the cache's path.

    Data-parallel under ``torchrun`` / ``accelerate launch``: the prompt groups are dealt out in rounds (round k:
    process r samples group ``k·W + r``), each group under its own seed as in one process, so the samples do not
    depend on the number of processes; process 0 alone reads, cuts and appends the cache, writing each round's rows
    in prompt order once every process has delivered them. A process that fails stops all of them
    (:func:`rewardlab.scoring.sharding.exchange`); the rounds already written stay and ``--resume`` goes on."""
    rank, size = world()
    prompt_file = None if cfg.prompts == "embedded" else cfg.prompts
    out = Path(cfg.output)
    state: dict = {}

    def prepare() -> int:  # every process reads the prompts and the tokenizer; process 0 alone touches the cache
        if rank == 0:  # the shared output claim (an existing cache is resumed, so it may exist): never a
            # directory, a FIFO or device, a link out of its folder, or the --prompts file itself
            claim_output_file(cfg.output, overwrite=True, inputs={"--prompts": prompt_file})
        state["prompts"] = prompts = read_prompts(cfg)
        state["path"], state["tok"] = path, tok = load_policy_tokenizer(cfg, prompts)
        state["settings"] = settings = settings_of(cfg, path, tok)
        state["texts"] = [prompt_text(tok, p.prompt) for p in prompts]  # before the model: template errors are cheap
        if rank != 0:
            return 0
        if out.exists() and not cfg.overwrite:
            done = read_cache(out)
            check_resume(out, done, settings, prompts)
            return len(done)
        if out.exists():
            out.unlink()
        return 0

    done = exchange(prepare, what="reading the prompts, the policy's tokenizer and the cache")[0]
    prompts, tok, settings, texts = state["prompts"], state["tok"], state["settings"], state["texts"]
    if done == len(prompts):
        progress.status(f"{out}: all {len(prompts)} prompts already sampled")
        return out
    progress.status(f"loading the policy {cfg.policy}")
    exchange(lambda: state.update(model=_load_policy(cfg, state["path"])), what="loading the policy")
    model = state["model"]
    eos = model.generation_config.eos_token_id
    eos_ids = {tok.eos_token_id} | set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    eos_ids.discard(None)
    all_groups = groups(len(prompts), cfg.n, cfg.batch_size)
    todo = [gi for gi, grp in enumerate(all_groups) if grp.stop > done]

    def rows_of(gi: int) -> list[dict]:
        grp = all_groups[gi]
        samples = sample_group(model, tok, [texts[i] for i in grp], cfg, group_seed(cfg.seed, gi), eos_ids)
        rows = []
        for i, s in zip(grp, samples):
            if i < done:  # a group cut short by an interruption: its written rows stay as they are
                continue
            p = prompts[i]
            row = {"id": p.id, "prompt": p.prompt, **({"meta": p.meta} if p.meta else {})}
            row["responses"] = [x["response"] for x in s]
            row.update({k: [x[k] for x in s] for k in ("logprobs", "num_tokens", "finished")})
            row["sampling"] = settings
            rows.append(row)
        return rows

    if rank == 0:
        out.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(out, "a", encoding="utf-8") if rank == 0 else _nothing() as f,
        progress.bar(len(prompts) * cfg.n, "sampling", unit="sample", initial=done * cfg.n) as bar,
    ):
        for k in range(0, len(todo), size):
            mine = todo[k + rank] if k + rank < len(todo) else None
            first, last = all_groups[todo[k]].start, all_groups[todo[min(k + size, len(todo)) - 1]].stop - 1
            blocks = exchange(lambda: [] if mine is None else rows_of(mine), what=f"sampling (prompts {first}..{last})")
            rows = [row for block in blocks for row in block]
            if f is not None:
                f.write("".join(dumps_strict(row, ensure_ascii=False) + "\n" for row in rows))
                f.flush()
                os.fsync(f.fileno())
            bar.update(len(rows) * cfg.n)
    return out


@contextmanager
def _nothing():
    yield None


def _load_policy(cfg: SampleConfig, path: str):
    from transformers import AutoModelForCausalLM  # lazy: as above

    try:
        model = AutoModelForCausalLM.from_pretrained(path)
    except (OSError, ValueError, KeyError) as e:
        raise RewardlabError(
            f"--policy {cfg.policy}: cannot load it as a causal LM ({type(e).__name__}: {e})"
        ) from None
    return model.eval()
