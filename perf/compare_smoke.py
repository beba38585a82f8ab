"""``perf/bench_train.py --config smoke`` before and after a change, interleaved, in one sitting.

Runs the smoke benchmark of two source trees alternately (before, after, before, after, …: the machine's load
falls on both alike), each tree's own ``perf/bench_train.py`` with ``PYTHONPATH=<tree>/src`` and the same Python,
and writes ``compare.json`` and ``compare.md`` to ``--out``: per configuration, the numbers each round made
(final loss, held-out accuracy; a scorer's largest difference from plain transformers) — which must be identical
before and after — and the speeds (pairs/s for training, texts/s for scoring; the median round of each side).

    python perf/compare_smoke.py --before /work/wt/j22-base --after . --rounds 2 \\
        --data ../shared/data/hh-rlhf-harmless-base-test.jsonl.gz --out perf/results/issue22-smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

NUMBERS = ("final_loss", "heldout_accuracy", "max_abs_diff_vs_hf", "steps")  # must not change
SPEEDS = ("pairs_per_s", "pairs_per_cpu_s", "texts_per_s", "texts_per_cpu_s")  # wall, and per CPU-second


def run_once(tree: Path, data: str, out: Path, reuse: bool = False) -> tuple[dict, str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    cmd = [sys.executable, "perf/bench_train.py", "--config", "smoke", "--data", data, "--out", str(out)]
    t0 = time.perf_counter()
    if reuse and (out / "bench.json").exists():  # --reuse: the tables again from the runs already made
        done = None
    else:
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if not (out / "bench.json").exists():  # (exit 1 when a configuration fails, e.g. TRL not installed: it is said)
        raise SystemExit(f"{shlex.join(cmd)} wrote no bench.json:\n{done.stderr[-3000:] if done else ''}")
    line = f"cd {shlex.quote(str(tree))} && PYTHONPATH={shlex.quote(str(tree / 'src'))} {shlex.join(cmd)}"
    return json.loads((out / "bench.json").read_text())["results"], line, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--before", required=True, help="the source tree before the change (a worktree)")
    p.add_argument("--after", required=True, help="the source tree after the change")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--reuse", action="store_true", help="read the runs already in OUT/work instead of running them")
    args = p.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    trees = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
    data = str(Path(args.data).resolve())
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    commands: list[str] = []
    for r in range(args.rounds):
        for side in ("before", "after"):  # interleaved
            results, line, secs = run_once(trees[side], data, out / "work" / f"{side}-{r}", args.reuse)
            runs[side].append(results)
            commands.append(line)
            print(f"round {r} {side}: {secs:.0f} s", flush=True)
    configs = sorted(set(runs["before"][0]) | set(runs["after"][0]))
    table, identical = {}, True
    for name in configs:
        row: dict = {}
        for side in ("before", "after"):
            rounds = [res.get(name, {}) for res in runs[side]]
            row[side] = {
                "numbers": [{k: res.get(k) for k in NUMBERS if k in res} for res in rounds],
                **{k: [res[k] for res in rounds if k in res] for k in SPEEDS if any(k in res for res in rounds)},
                "error": [res["error"].strip().splitlines()[-1][:200] for res in rounds if "error" in res] or None,
            }
        numbers = [n for side in ("before", "after") for n in row[side]["numbers"]]
        row["numbers_identical"] = all(n == numbers[0] for n in numbers)
        identical &= row["numbers_identical"] or all(not n for n in numbers)
        for k in SPEEDS:
            if row["before"].get(k) and row["after"].get(k):
                row[f"{k}_median_before"] = statistics.median(row["before"][k])
                row[f"{k}_median_after"] = statistics.median(row["after"][k])
                row[f"{k}_after_over_before"] = row[f"{k}_median_after"] / row[f"{k}_median_before"]
        table[name] = row
    report = {
        "what": "perf/bench_train.py --config smoke, before and after, interleaved in one sitting",
        "before": str(trees["before"]),
        "after": str(trees["after"]),
        "python": sys.executable,
        "rounds": args.rounds,
        "order": [c.split(" && ")[0] for c in commands],
        "commands": commands,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "all_numbers_identical": identical,
        "configs": table,
    }
    (out / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# perf/bench_train.py --config smoke: before vs after (interleaved)",
        "",
        f"{args.rounds} rounds, each `before` then `after`, one sitting, same Python ({sys.executable}). "
        "Speeds: median round; numbers: every round of both sides.",
        "",
        "| configuration | numbers (every round, both sides) | identical | speed | before (rounds) | after (rounds) "
        "| after / before (medians) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in table.items():
        shown = json.dumps(row["before"]["numbers"][0]) if row["before"]["numbers"][0] else ""
        for k in SPEEDS:
            if f"{k}_median_before" in row:
                rounds = {side: ", ".join(f"{v:.2f}" for v in row[side][k]) for side in ("before", "after")}
                lines.append(
                    f"| {name} | {shown} | {row['numbers_identical']} | {k} | {rounds['before']} | "
                    f"{rounds['after']} | {row[f'{k}_after_over_before']:.3f} |"
                )
        if not any(f"{k}_median_before" in row for k in SPEEDS):
            err = (row["before"]["error"] or ["?"])[0]
            lines.append(f"| {name} | | | not run: {err} | | | |")
    lines += ["", "Commands, in the order run:", "", *[f"    {c}" for c in commands], ""]
    (out / "compare.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"all numbers identical: {identical}")


if __name__ == "__main__":
    main()
