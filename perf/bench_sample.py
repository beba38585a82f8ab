"""Sampler throughput in one run: ``rewardlab sample``'s batched groups (:func:`rewardlab.bon.sample.sample_group`,
the loop body of ``run_sample``) against a plain ``model.generate`` loop (one call per prompt,
``num_return_sequences = N``), on **one** policy loaded once, the same prompts and settings (N, temperature, top-p,
top-k off, max new tokens, the same end-of-sequence ids), the two arms **interleaved** in one process
(A B, B A, A B, … for ``--repeats`` rounds) so that both see the same machine load.

Tokens counted the same way in both arms: each sequence's generated tokens up to and including its first
end-of-sequence token (padding after it is not counted; a batch keeps computing it, which is the batched arm's
cost). Both arms sample, so their token counts differ by chance; each repeat's counts are in the JSON. Time:
``time.perf_counter`` around the generation calls only (the model is loaded before; no file is written). The
rewardlab arm also computes every token's log-probability (the cache keeps them); the plain loop does not. The
rewardlab arm is its own decoding loop (:func:`rewardlab.bon.sample.decode_chunk`: each prompt prefilled once, its
KV cache shared by its N samples); ``generate(num_return_sequences=N)`` copies the prompt N times before the
prefill.

    .venv/bin/python perf/bench_sample.py --policy smollm2-135m --prompts 4 --n 8 --max-new-tokens 16 \\
        --batch-size 32 --repeats 3 --output perf/results/bench_sample.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import GenerationConfig

from rewardlab.bon.sample import (
    SampleConfig,
    _load_policy,
    group_seed,
    groups,
    load_policy_tokenizer,
    prompt_text,
    read_prompts,
    sample_group,
)
from rewardlab.models.backbones import resolve_backbone


def eos_set(model, tok) -> set[int]:
    """The end-of-sequence ids both arms stop at (as ``run_sample`` collects them)."""
    eos = model.generation_config.eos_token_id
    ids = {tok.eos_token_id} | set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    ids.discard(None)
    return ids


def counted(row: list[int], eos_ids: set[int]) -> int:
    """Generated tokens up to and including the first end-of-sequence token: [5, 7, EOS, pad, pad] → 3."""
    end = next((i for i, t in enumerate(row) if t in eos_ids), None)
    return len(row) if end is None else end + 1


def plain_loop(model, tok, texts: list[str], cfg: SampleConfig, eos_ids: set[int], seed: int) -> tuple[int, float]:
    """Arm A: one ``model.generate(num_return_sequences=N)`` per prompt. Returns (tokens, seconds)."""
    gen = GenerationConfig(
        do_sample=True,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=0,
        max_new_tokens=cfg.max_new_tokens,
        pad_token_id=tok.pad_token_id,
        eos_token_id=sorted(eos_ids),
        num_return_sequences=cfg.n,
    )
    torch.manual_seed(seed)
    tokens, t0 = 0, time.perf_counter()
    for text in texts:
        enc = tok([text], return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, generation_config=gen)
        tokens += sum(counted(r, eos_ids) for r in out[:, enc["input_ids"].shape[1] :].tolist())
    return tokens, time.perf_counter() - t0


def rewardlab_groups(model, tok, texts: list[str], cfg: SampleConfig, eos_ids: set[int], seed: int):
    """Arm B: ``run_sample``'s loop: whole prompts grouped, ``batch_size`` sequences a batch, prefill shared, log-probs."""
    tokens, t0 = 0, time.perf_counter()
    for gi, grp in enumerate(groups(len(texts), cfg.n, cfg.batch_size)):
        for samples in sample_group(model, tok, [texts[i] for i in grp], cfg, group_seed(seed, gi), eos_ids):
            tokens += sum(s["num_tokens"] for s in samples)
    return tokens, time.perf_counter() - t0


ARMS = {"plain_generate_loop": plain_loop, "rewardlab_sample": rewardlab_groups}


def summary(runs: list[dict]) -> dict:
    rates = [r["tokens"] / r["seconds"] for r in runs]
    return {
        "tokens_per_s_median": statistics.median(rates),
        "tokens_per_s_min": min(rates),
        "tokens_per_s_max": max(rates),
        "tokens_total": sum(r["tokens"] for r in runs),
        "seconds_total": sum(r["seconds"] for r in runs),
        "tokens_per_s_pooled": sum(r["tokens"] for r in runs) / sum(r["seconds"] for r in runs),
        "runs": runs,
    }


def render_md(res: dict) -> str:
    """The table of a result JSON (``--render JSON`` rewrites its .md without measuring again)."""
    ratios = res["speedup_per_repeat"]
    lines = [
        f"# Sampler throughput ({res['policy']}, {res['parameters']:,} parameters, {res['threads']} threads)",
        "",
        f"`{res['command']}`",
        "",
        f"{res['prompts']} prompts × N = {res['n']}, max new tokens {res['max_new_tokens']}, temperature "
        f"{res['temperature']}, top-p {res['top_p']}, top-k off; rewardlab batch {res['batch_size']} sequences, plain "
        f"loop one prompt ({res['n']} sequences) per call. {res['repeats']} repeats, the arms interleaved (A B, B A, "
        "…) in one process on one loaded model. Tokens: generated up to and including EOS. Time: the generation "
        "calls only." + (f" Load average before / after: {res['loadavg']}." if "loadavg" in res else ""),
        "",
        "| sampler | tokens/s median | min | max | pooled | tokens (all repeats) | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in ARMS:
        s = res[k]
        lines.append(
            f"| {k} | {s['tokens_per_s_median']:.3f} | {s['tokens_per_s_min']:.3f} | {s['tokens_per_s_max']:.3f} | "
            f"{s['tokens_per_s_pooled']:.3f} | {s['tokens_total']} | {s['seconds_total']:.1f} |"
        )
    lines += [
        "",
        f"Speed-up (rewardlab / plain, tokens/s, same repeat): median {res['speedup_median']:.2f}×, "
        f"range {min(ratios):.2f}–{max(ratios):.2f}×; pooled {res['speedup_pooled']:.2f}×.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--output", default="perf/results/bench_sample.json")
    ap.add_argument("--render", help="only rewrite the .md of this result JSON")
    a = ap.parse_args()
    if a.render:
        res = json.loads(Path(a.render).read_text())
        Path(a.render).with_suffix(".md").write_text(render_md(res))
        return
    load_before = os.getloadavg()
    cfg = SampleConfig(
        policy=a.policy,
        limit=a.prompts,
        n=a.n,
        max_new_tokens=a.max_new_tokens,
        batch_size=a.batch_size,
        temperature=a.temperature,
        top_p=a.top_p,
    )
    prompts = read_prompts(cfg)
    path, tok = load_policy_tokenizer(cfg, prompts)
    texts = [prompt_text(tok, p.prompt) for p in prompts]
    model = _load_policy(cfg, path)
    eos_ids = eos_set(model, tok)
    ARMS["rewardlab_sample"](model, tok, texts[:1], cfg, eos_ids, 0)  # warm-up (first-call costs), not timed
    runs: dict[str, list[dict]] = {k: [] for k in ARMS}
    order_log = []
    for rep in range(a.repeats):
        order = list(ARMS) if rep % 2 == 0 else list(ARMS)[::-1]  # A B, B A, …: a drift in load hits both
        for name in order:
            tokens, seconds = ARMS[name](model, tok, texts, cfg, eos_ids, 1000 + rep)
            runs[name].append({"repeat": rep, "tokens": tokens, "seconds": seconds})
            order_log.append(name)
            print(f"repeat {rep} {name}: {tokens} tokens in {seconds:.1f} s = {tokens / seconds:.1f} tokens/s")
    res = {
        "policy": a.policy,
        "resolved": resolve_backbone(a.policy),
        "parameters": sum(p.numel() for p in model.parameters()),
        "prompts": a.prompts,
        "n": a.n,
        "max_new_tokens": a.max_new_tokens,
        "temperature": a.temperature,
        "top_p": a.top_p,
        "top_k": "off",
        "batch_size": a.batch_size,
        "plain_loop_batch": f"N = {a.n} sequences per generate call (one prompt)",
        "repeats": a.repeats,
        "order": order_log,
        "threads": torch.get_num_threads(),
        "tokens_counted": "generated tokens up to and including the first end-of-sequence token, per sequence",
        "timed": "the generation calls only; the model is loaded once before, shared by both arms",
        **{k: summary(v) for k, v in runs.items()},
    }
    ratios = [
        (b["tokens"] / b["seconds"]) / (p["tokens"] / p["seconds"])
        for p, b in zip(runs["plain_generate_loop"], runs["rewardlab_sample"])
    ]
    res["speedup_per_repeat"] = ratios
    res["speedup_median"] = statistics.median(ratios)
    res["speedup_pooled"] = (
        res["rewardlab_sample"]["tokens_per_s_pooled"] / res["plain_generate_loop"]["tokens_per_s_pooled"]
    )
    res["command"] = " ".join([".venv/bin/python", *sys.argv])
    res["loadavg"] = [round(x, 1) for x in (*load_before, *os.getloadavg())]
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    Path(a.output).write_text(json.dumps(res, indent=1) + "\n")
    text = render_md(res)
    Path(a.output).with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
