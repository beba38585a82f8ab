"""One side-by-side table (summary.md / summary.json) and a best-of-n plot from run.sh's outputs.

    python experiments/verifiers/gsm8k/summarize.py experiments/verifiers/gsm8k/results

Reads candidates-{orm,prm,bt}.json and processbench-prm.json (eval-verifier; the three candidate runs must agree on
the held-out questions), split.json (prepare.py), train-*.json and times.tsv;
every number is copied from those files (nothing recomputed except the sums of the times).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def _f(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def _ci(ci) -> str:
    return "—" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _name(key: str) -> str:
    """``/tmp/…/orm/model [min]`` → ``ORM [min]``; the BT model's path → ``BT``."""
    path, _, agg = key.partition(" [")
    kind = Path(path).parent.name.upper()
    return f"{kind} [{agg}" if agg else kind


def main(out: Path) -> None:
    cand = {"results": {}}
    for name in ("orm", "prm", "bt"):  # one eval-verifier run per model, all on the same held-out questions
        part = json.loads((out / f"candidates-{name}.json").read_text())
        for k in ("problems", "solutions", "data"):
            if cand.setdefault(k, part[k]) != part[k]:
                raise SystemExit(f"candidates-{name}.json: {k} {part[k]!r} differs from the other runs' {cand[k]!r}")
        cand["results"].update(part["results"])
    pb = json.loads((out / "processbench-prm.json").read_text())
    split = json.loads((out / "split.json").read_text())
    times = list(csv.reader((out / "times.tsv").read_text().splitlines(), delimiter="\t"))
    rows, summary = [], {"split": split, "candidates": {}, "processbench": {}, "times": {}}
    base = None
    for key, r in cand["results"].items():
        bon = r["best_of_n"]
        summary["candidates"][_name(key)] = {
            "aggregation": r["aggregation"],
            "n_problems": r["n_problems"],
            "best_of_n": dict(zip(map(str, bon["ns"]), bon["accuracy"])),
            "best_of_n_ci95": dict(zip(map(str, bon["ns"]), bon["ci95"])),
            "top1": r["top1"],
            "pairwise": r["pairwise"],
            "problems_unscored_truncated": r["problems_unscored_truncated"],
        }
        cells = " | ".join(f"{_f(a)} {_ci(c)}" for a, c in zip(bon["accuracy"], bon["ci95"]))
        rows.append(
            f"| {_name(key)} | {r['n_problems']} | {cells} | {_f(r['pairwise']['value'])} {_ci(r['pairwise']['ci95'])} |"
        )
        base = r["baselines"]
        estimator = bon["estimator"]
    summary["candidates_baselines"] = base
    ns = cand["results"][next(iter(cand["results"]))]["best_of_n"]["ns"]
    lines = [
        "# GSM8K verifiers: ORM vs PRM vs BT on held-out questions",
        "",
        f"Split by question ({split['split']}): {split['train_questions']} training questions used "
        f"(of a pool of {split['training_pool_questions']}), {split['held_out_questions']} held out. "
        f"Training: ORM and PRM on {split['train_solutions']} solutions ({split['train_correct']} correct); PRM step "
        f"labels by rule ({split['prm_step_labels']} labelled steps); BT on {split['bt_pairs']} (correct, incorrect) "
        f"pairs from {split['bt_questions_with_pairs']} questions.",
        "",
        f"## Best-of-n accuracy on the {cand['problems']} held-out questions ({cand['solutions']} solutions)",
        "",
        f"Estimator: {estimator}. Intervals: 95% percentile bootstrap over questions (1000 resamples).",
        "",
        "| scorer [aggregation] | questions | " + " | ".join(f"best-of-{n}" for n in ns) + " | pairwise |",
        "|---|---|" + "---|" * len(ns) + "---|",
        *rows,
        "",
        "| baseline | value | 95% CI |",
        "|---|---|---|",
        *[f"| {k} | {_f(v['value'])} | {_ci(v['ci95'])} |" for k, v in base.items()],
        "",
        "best-of-1 = random for every scorer (one candidate); best-of-4 = top-1 among all four (ties averaged).",
        "",
        "## ProcessBench gsm8k, rows of questions not trained on",
        "",
        f"{split['processbench_rows_dropped_training_question']} of {split['processbench_rows']} rows dropped "
        "(their problem is a training question). Threshold chosen on split `thr-gsm8k`, reported on both.",
        "",
        "| model | threshold | split | rows | acc_err | acc_cor | F1 | never-wrong F1 | random-step F1 | steps cut |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in pb["results"].items():
        summary["processbench"][_name(key)] = r
        for sp, v in r["splits"].items():
            m = v["model"]
            lines.append(
                f"| {_name(key)} [{r.get('aggregation', 'first step below threshold')}] | {r['threshold']:.4f} | {sp} | "
                f"{v['n']} | {_f(m['acc_err'])} | {_f(m['acc_cor'])} | {_f(m['f1'])} | {_f(v['never_wrong']['f1'])} | "
                f"{_f(v['random_step']['f1'])} | {r['rows_with_steps_cut']} (all splits) |"
            )
    lines += [
        "",
        "## Times (this machine, shared; /usr/bin/time)",
        "",
        "| step | wall s | user s | sys s |",
        "|---|---|---|---|",
    ]
    for name, wall, user, sys_ in times:
        summary["times"][name] = {"wall_s": float(wall), "user_s": float(user), "sys_s": float(sys_)}
        lines.append(
            f"| {name} | {float(wall):.0f} | {user if user == 'nan' else f'{float(user):.0f}'} | {sys_ if sys_ == 'nan' else f'{float(sys_):.0f}'} |"
        )
    cpu = sum(
        t["user_s"] + t["sys_s"] for t in summary["times"].values() if t["user_s"] == t["user_s"]
    )  # nan: not recorded
    summary["cpu_seconds_total"] = cpu
    lines += [
        "",
        f"CPU seconds, all steps with a recorded CPU time: {cpu:.0f}. The three trainings ran side by side, one thread "
        "each, on a machine whose load average was 7–18 (other helpers' work): wall seconds are mostly waiting. "
        "`nan`: not recorded (see the README).",
    ]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(summary, base, out / "best_of_n.png")
    print("\n".join(lines))


def plot(summary: dict, base: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in summary["candidates"].items():
        if name.startswith(("ORM [mean_last", "PRM [last_token")):
            continue
        ns = [int(n) for n in r["best_of_n"]]
        ax.plot(ns, list(r["best_of_n"].values()), marker="o", label=name)
    for k, style in (("oracle", ":"), ("majority_vote", "--"), ("random", "-.")):
        ax.axhline(base[k]["value"], color="grey", linestyle=style, label=k)
    ax.set_xlabel("n (candidates drawn from the 4)")
    ax.set_ylabel("accuracy of the selected solution")
    ax.set_xticks([1, 2, 3, 4])
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("GSM8K held-out questions: best-of-n (exact expectation)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
