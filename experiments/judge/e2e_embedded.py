"""End-to-end run of the embedded judge (SmolLM2-135M-Instruct, offline) on a sample of the shared HH pairs.

Runs three judges over the same pairs and reports, for each, agreement with the human choice, unparseable
outputs and the position-consistency rate (how often the verdict survives swapping A and B):

* ``pairwise`` — MT-Bench pair-v2 prompt, generated explanation + ``[[A]]``/``[[B]]``/``[[C]]``, both orders,
  consistency rule (disagreement ⇒ tie), strict parser;
* ``letter`` — the one-letter prompt (``pair-token``), the generated letter parsed (``letter`` parser), both
  orders, consistency rule;
* ``logprob`` — the same one-letter prompt, P(A) = softmax over the A/B verdict-token logits, both orders averaged
  (an order's verdict for the consistency figure is its argmax).

    .venv/bin/python experiments/judge/e2e_embedded.py --n 60 --bf16 --out experiments/results/judge-smollm2-e2e
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import rewardlab  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"


def run(
    n: int,
    out: Path,
    data: Path = DATA,
    max_new_tokens: int = 128,
    max_question_tokens: int = 128,
    max_answer_tokens: int = 96,
    batch_size: int = 8,
    model: str = "smollm2-135m",
    bf16: bool = False,
) -> dict:
    import torch

    from rewardlab.data import fingerprint, load_comparisons
    from rewardlab.evaluation.report import _clean
    from rewardlab.judges.backends import Sampling
    from rewardlab.judges.hf import HFBackend
    from rewardlab.judges.judge import PairwiseJudge

    records = load_comparisons(str(data), skip_invalid=True, limit=n).records
    backend = HFBackend(model, batch_size=batch_size, autocast=torch.bfloat16 if bf16 else None)
    trunc = dict(max_question_tokens=max_question_tokens, max_answer_tokens=max_answer_tokens)
    judges = {
        "pairwise": PairwiseJudge(
            backend,
            mode="generate",
            position="both",
            parser="strict",
            sampling=Sampling(max_new_tokens=max_new_tokens),
            **trunc,
        ),
        "letter": PairwiseJudge(
            backend,
            mode="generate",
            template="pair-token",
            parser="letter",
            position="both",
            sampling=Sampling(max_new_tokens=4),
            **trunc,
        ),
        "logprob": PairwiseJudge(backend, mode="logprob", position="average", **trunc),
    }
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "data": str(data),
        "n_records": len(records),
        "data_fingerprint": fingerprint(records),
        "model": model,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "bf16_autocast": bf16,
        "max_new_tokens": max_new_tokens,
        "max_question_tokens": max_question_tokens,
        "max_answer_tokens": max_answer_tokens,
        "judges": {},
    }
    for name, judge in judges.items():
        t = time.perf_counter()
        judge.score_comparisons(records)
        s = dict(judge.last_summary)
        s["seconds"] = time.perf_counter() - t
        result["judges"][name] = s
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for row in judge.last_rows:
                f.write(json.dumps(_clean(row), ensure_ascii=False) + "\n")
    result = _clean(result)
    (out / "summary.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (out / "summary.md").write_text(render(result))
    return result


def render(result: dict) -> str:
    from rewardlab.evaluation.report import fmt

    lines = [
        f"# Embedded judge ({result['model']}) on {result['n_records']} HH harmless pairs",
        "",
        "| judge | agreement with human (strict) | ties as ½ | ties | unparseable outputs | position consistency "
        "| pairs both orders parsed | position A picked | seconds |",
        "| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in result["judges"].items():
        a = s["agreement_with_chosen"]
        lines.append(
            f"| {name} | {fmt(a['accuracy'])} | {fmt(a['accuracy_ties_half'])} | {a['ties']} | "
            f"{s['n_unparseable_outputs']} / {s['n_outputs']} | {fmt(s['position_consistency'])} | "
            f"{s['n_pairs_both_parsed']} | {fmt(s['first_position_rate'])} | {fmt(s['seconds'], 0)} |"
        )
    lines += [
        "",
        "Position consistency: among pairs judged in both orders whose two outputs both parsed, the fraction "
        "whose verdict survived swapping A and B. Unparseable reasons:",
        "",
    ]
    for name, s in result["judges"].items():
        lines.append(f"- {name}: {json.dumps(s['unparseable_reasons']) if s['unparseable_reasons'] else 'none'}")
    lines += [
        "",
        f"Data: `{result['data']}` (first {result['n_records']} valid pairs), fingerprint "
        f"`{result['data_fingerprint'][:16]}`. Conversations cut to their last {result['max_question_tokens']} "
        f"tokens, answers to their first {result['max_answer_tokens']}; up to {result['max_new_tokens']} generated "
        f"tokens (`letter`: 4); bf16 autocast: {str(result['bf16_autocast']).lower()}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--out", default="experiments/results/judge-smollm2-e2e")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (faster on CPUs with AVX512-BF16)")
    args = ap.parse_args()
    res = run(
        args.n,
        Path(args.out),
        Path(args.data),
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        bf16=args.bf16,
    )
    print(Path(args.out, "summary.md").read_text())
