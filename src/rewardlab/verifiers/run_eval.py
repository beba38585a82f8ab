"""``rewardlab eval-verifier``: any loadable models on ProcessBench rows or on fixed candidates, side by side.

* ``--benchmark processbench``: the published first-error protocol (:mod:`rewardlab.verifiers.evaluate`); the
  split of a row is its id's prefix (``gsm8k-12`` → ``gsm8k``); the threshold is chosen on ``--threshold-split``
  (or given by ``--threshold``) and recorded. Needs per-step scores: a verifier (ORM or PRM).
* ``--benchmark candidates``: best-of-n on a file of solutions with outcome labels (the GSM8K solutions): every
  model — a verifier under each ``--aggregation``, or any other scorer the loader returns (a BT model scores the
  solution text, its steps joined by newlines) — on the same problems; ``--held-out-fraction`` keeps only the
  problems that ``train-verifier``'s problem-hash split (same fraction and ``--split-seed``) held out.

Writes ``--output`` (JSON) and the same path with ``.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from rewardlab.benchmarks import get_benchmark
from rewardlab.benchmarks.processbench import split_of
from rewardlab.core.atomic import atomic_write_text, json_safe
from rewardlab.core.bounds import Fraction, Positive, Seed
from rewardlab.core.errors import RewardlabError
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.core.outputs import claim_output_file
from rewardlab.core.provenance import provenance
from rewardlab.data.record import Comparison
from rewardlab.scoring.loader import load_reward_model
from rewardlab.verifiers.aggregate import STEP_AGGREGATIONS, aggregate, check_aggregation
from rewardlab.verifiers.evaluate import candidates_report
from rewardlab.verifiers.readers import read_verifier_data
from rewardlab.verifiers.report_html import candidates_html
from rewardlab.verifiers.train import split_problems


@dataclass
class EvalVerifierConfig:
    model: list[str] = field(default_factory=list)  # model directories (verifiers, BT models, ...); repeatable
    benchmark: str = "processbench"  # processbench | candidates
    data: str = ""  # ProcessBench rows (processbench) or solutions with outcomes (candidates)
    format: str = "auto"  # the data's verifier format (auto-detected)
    aggregation: list[str] = field(default_factory=list)  # verifier aggregations to report (default: the model's)
    threshold_split: str = "gsm8k"  # processbench: the split whose F1-maximising threshold is used everywhere
    threshold: float | None = None  # processbench: a fixed threshold instead
    held_out_fraction: Fraction | None = None  # candidates: keep only the problems train-verifier held out
    split_seed: Seed = 0  # the seed of that split
    limit: Positive | None = None  # rows read
    batch_size: Positive = 16  # solutions per forward
    seed: Seed = 0  # bootstrap
    trust_modified: bool = False  # load models whose files differ from rewardlab.json (warned)
    output: str = "verifier-eval.json"  # JSON report; the Markdown table goes next to it (.md)
    overwrite: bool = False  # replace an existing --output (and its .md)

    def __post_init__(self):
        if self.benchmark not in ("processbench", "candidates"):
            raise RewardlabError(f"--benchmark must be processbench or candidates, got {self.benchmark!r}")
        if not self.model:
            raise RewardlabError("--model is required (one or more model directories)")
        if not self.data:
            raise RewardlabError("--data is required")
        for a in self.aggregation:
            try:
                check_aggregation(a)
            except ValueError as e:
                raise RewardlabError(f"--aggregation: {e}") from None


def _aggregate(name: str, scored: dict) -> float | None:
    """``name`` over a scored solution's kept steps (or tokens); None when max_length cut off all of them."""
    kept = [v for v in scored["step_scores"] if v is not None]
    if not (kept if name in STEP_AGGREGATIONS else scored["token_probs"]):
        return None
    return aggregate(name, kept, scored["token_probs"])


def processbench_results(
    models, solutions, threshold_split: str, threshold: float | None, batch_size: int, load, data="the data"
) -> dict:
    """The ProcessBench protocol for each model (the registry's entry, ``get_benchmark("processbench")``: its rule
    over the one-forward step scores); what ``rewardlab eval --benchmark processbench`` and ``rewardlab
    eval-verifier`` both run. ``load(path)`` opens a model (each command as it loads models). The threshold split
    and the labels are checked before any model loads; a model without per-step scores is refused naming its kind."""
    bench = get_benchmark("processbench")
    splits = sorted({split_of(s.id) for s in solutions})
    if threshold is None and threshold_split not in splits:
        raise RewardlabError(
            f"--threshold-split {threshold_split!r} is not a split of {data} (its splits: {', '.join(splits)}); "
            "name one of them or give --threshold"
        )
    unknown = [s.id for s in solutions if s.first_error is None]
    if unknown:
        raise RewardlabError(
            f"{data}: {len(unknown)} solutions have no first-error label (the first: {unknown[0]!r}); ProcessBench "
            "needs a 'label' per row, or step labels up to the first wrong step"
        )
    results = {}
    for path in models:
        rm = load(path)
        if rm.capabilities.output != "steps":
            raise RewardlabError(
                f"{path}: --benchmark processbench needs per-step scores, and this model ({rm.kind}) gives one score "
                "per response; a verifier has them (kind verifier, from train-verifier, or token-classification-prm)"
            )
        scored = rm.score_steps([(s.prompt, list(s.steps)) for s in solutions], batch_size=batch_size)
        rows = [
            {"split": split_of(s.id), "label": s.first_error, "step_scores": r["step_scores"]}
            for s, r in zip(solutions, scored)
        ]
        results[path] = bench.rule(rows, threshold_split, threshold)
        results[path]["rows_with_steps_cut"] = sum(any(v is None for v in r["step_scores"]) for r in rows)
    return results


def run_step_benchmark(bench, cfg, load) -> Path:
    """``rewardlab eval --benchmark processbench`` (a registry entry with ``scores="steps"``): ``cfg`` is eval's
    config (its ``--data`` files read by the entry's loader, ``--threshold-split`` / ``--threshold``); the same
    :func:`processbench_results` as ``eval-verifier``; writes ``report.json`` and ``report.md`` into
    ``--output-dir`` (claimed by eval before this runs). Options that do not apply are refused before any work."""
    given = {"--judge": bool(cfg.judge), "--probes": cfg.probes, "--score-weights": cfg.score_weights is not None}
    for flag in (f for f, on in given.items() if on):
        raise RewardlabError(f"{flag} does not apply to --benchmark {bench.name} (a verifier's per-step scores)")
    if cfg.threshold_split == "" and cfg.threshold is None:
        raise RewardlabError(
            f"--benchmark {bench.name}: name the split the threshold is chosen on (--threshold-split, e.g. gsm8k) "
            "or give --threshold"
        )
    paths = [cfg.data] if isinstance(cfg.data, str) else list(cfg.data)
    sols, left = [], cfg.limit
    for path in paths:
        if left is not None and left <= 0:
            break
        data = bench.load(path, limit=left)
        sols += data.records
        left = None if left is None else cfg.limit - len(sols)
    where = ", ".join(paths)
    results = processbench_results(cfg.model, sols, cfg.threshold_split, cfg.threshold, cfg.batch_size, load, where)
    for r in results.values():  # what the terminal's summary table reads (rewardlab.evaluation.run_report)
        r["n_records"] = len(sols)
        r["benchmark"] = {"headline": {"ProcessBench F1 (mean over splits)": r["f1_mean"]}}
    report = {
        "benchmark": bench.name,
        "version": bench.version,
        "reference": bench.reference,
        "data": where,
        "problems": len({s.prompt for s in sols}),
        "solutions": len(sols),
        "results": results,
        "provenance": provenance(config=vars(cfg)),
    }
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.json", dumps_strict(json_safe(report), indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out / "report.md", render(report))
    return out


def candidates_results(cfg: EvalVerifierConfig, problems, load) -> dict:
    """Best-of-n on fixed candidates for each model (each ``--aggregation`` of a verifier: its own entry)."""
    sols = [s for p in problems for s in p.solutions]
    results = {}
    for path in cfg.model:
        rm = load(path)
        if rm.capabilities.output == "steps":  # one forward per solution; every aggregation reads the same scores
            scored = rm.score_steps([(s.prompt, list(s.steps)) for s in sols], batch_size=cfg.batch_size)
            variants = {
                f"{path} [{agg}]": (agg, [_aggregate(agg, r) for r in scored])
                for agg in (cfg.aggregation or [rm.spec.aggregation])
            }
        elif not rm.capabilities.pointwise:  # a record-wise scorer (an LLM judge): one record per problem
            records = [
                Comparison(p.solutions[0].prompt, tuple("\n".join(s.steps) for s in p.solutions)) for p in problems
            ]
            rows = rm.score_comparisons(records, batch_size=cfg.batch_size)
            variants = {
                path: (
                    "the judge's reward for each solution, a problem's solutions judged as one record",
                    [x for r in rows for x in r],
                )
            }
        else:  # any other scorer: the solution text, its steps joined by newlines
            scores = rm.score([(s.prompt, "\n".join(s.steps)) for s in sols], batch_size=cfg.batch_size)
            variants = {path: ("the model's own score", scores)}
        for name, (how, scores) in variants.items():
            by_id = dict(zip((s.id for s in sols), scores))
            kept = [p for p in problems if all(by_id[s.id] is not None for s in p.solutions)]
            groups = [
                {
                    "scores": [by_id[s.id] for s in p.solutions],
                    "correct": [s.outcome for s in p.solutions],
                    "answers": [s.steps[-1].strip() for s in p.solutions],
                }
                for p in kept
            ]
            results[name] = {
                **candidates_report(groups, cfg.seed),
                "aggregation": how,
                "problems_unscored_truncated": len(problems) - len(kept),  # a solution with every step cut off
            }
    return results


def run_eval_verifier(cfg: EvalVerifierConfig) -> dict:
    # the shared output claim, before any work: no device/FIFO/link out, never an input or a model's file
    inputs = {"--data": cfg.data, "--model": cfg.model}
    out = claim_output_file(cfg.output, overwrite=cfg.overwrite, inputs=inputs)
    claim_output_file(out.with_suffix(".md"), overwrite=cfg.overwrite, flag="--output (.md)", inputs=inputs)
    if cfg.benchmark == "candidates":
        claim_output_file(out.with_suffix(".html"), overwrite=cfg.overwrite, flag="--output (.html)", inputs=inputs)
    data = read_verifier_data(cfg.data, cfg.format, limit=cfg.limit)
    problems = data.problems
    if cfg.held_out_fraction is not None:
        problems = split_problems(problems, cfg.held_out_fraction, cfg.split_seed)[1]
    sols = [s for p in problems for s in p.solutions]
    load = lambda path: load_reward_model(path, trust_modified=cfg.trust_modified)  # noqa: E731
    if cfg.benchmark == "processbench":
        results = processbench_results(
            cfg.model, sols, cfg.threshold_split, cfg.threshold, cfg.batch_size, load, cfg.data
        )
    else:
        results = candidates_results(cfg, problems, load)
    report = json_safe(
        {
            "benchmark": cfg.benchmark,
            "data": cfg.data,
            "problems": len(problems),
            "solutions": len(sols),
            "results": results,
            "config": asdict(cfg),
        }
    )
    atomic_write_text(out, dumps_strict(report, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(out.with_suffix(".md"), render(report))
    if cfg.benchmark == "candidates":  # every model side by side with the best-of-n figure
        atomic_write_text(out.with_suffix(".html"), candidates_html(report))
    return report


def _f(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def _ci(v) -> str:
    ci = v.get("ci95") if isinstance(v, dict) else None
    return "—" if not ci else f"{ci[0]:.3f}–{ci[1]:.3f}"


def render(report: dict) -> str:
    lines = [
        f"# eval-verifier: {report['benchmark']} on {report['data']} ({report['problems']} problems, "
        f"{report['solutions']} solutions)",
        "",
    ]
    if report["benchmark"] == "processbench":
        lines += [
            "| model | split | threshold | acc_err | acc_cor | F1 | never-wrong F1 | random-step F1 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in report["results"].items():
            for sp, v in r["splits"].items():
                lines.append(
                    f"| {name} | {sp} | {r['threshold']:.4f} | {_f(v['model']['acc_err'])} | "
                    f"{_f(v['model']['acc_cor'])} | {_f(v['model']['f1'])} | {_f(v['never_wrong']['f1'])} | "
                    f"{_f(v['random_step']['f1'])} |"
                )
        lines += [
            "",
            "Threshold rule: " + "; ".join(f"{n}: {r['threshold_rule']}" for n, r in report["results"].items()),
        ]
    else:
        lines += ["| model (aggregation) | top-1 = best-of-N | 95% CI | pairwise | 95% CI |", "|---|---|---|---|---|"]
        base = None
        for name, r in report["results"].items():
            lines.append(
                f"| {name} | {_f(r['top1']['value'])} | {_ci(r['top1'])} | {_f(r['pairwise']['value'])} | {_ci(r['pairwise'])} |"
            )
            base = r["baselines"]
        if base:
            lines += ["", "| baseline | value | 95% CI |", "|---|---|---|"]
            lines += [f"| {k} | {_f(v['value'])} | {_ci(v)} |" for k, v in base.items()]
            first = next(iter(report["results"].values()))["best_of_n"]
            lines += [
                "",
                f"Best-of-n accuracy ({first['estimator']}):",
                "",
                "| model (aggregation) | " + " | ".join(f"n={n}" for n in first["ns"]) + " |",
                "|---|" + "---|" * len(first["ns"]),
            ]
            for name, r in report["results"].items():
                b = r["best_of_n"]
                cells = " | ".join(
                    f"{_f(a)} ({_ci({'ci95': c})})" for a, c in zip(b["accuracy"], b["ci95"] or [None] * len(b["ns"]))
                )
                lines.append(f"| {name} | {cells} |")
        lines += ["", "Intervals: 95% percentile bootstrap over problems (1000 resamples); ties at the top averaged."]
    return "\n".join(lines) + "\n"
