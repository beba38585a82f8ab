"""``rewardlab eval``: score held-out comparisons or a benchmark with one or more models and write a report.

Writes ``report.json`` / ``report.md`` / ``report.html`` (one column per model, one comparison plot) and
``examples-<name>.jsonl`` with each example's id, subset, scores, response lengths and (for a benchmark)
its credit under the benchmark's rule. With ``--benchmark NAME`` (see ``--benchmark list``) the data is
read in that benchmark's published schema and scored by its rule (:mod:`rewardlab.benchmarks`).

A *scorer* is anything with ``score_comparisons(records, batch_size)`` (a
:class:`~rewardlab.model.RewardModel`, or e.g. an LLM judge): :func:`evaluate_model` and
:func:`evaluate_benchmark` take one directly.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardlab import progress
from rewardlab.atomic import atomic_write_text
from rewardlab.benchmarks import detect_benchmark, get_benchmark
from rewardlab.benchmarks.base import score_records, skipped_summary
from rewardlab.bounds import NonNegative, Positive, Seed
from rewardlab.cells import model_label
from rewardlab.contract_options import ContractOptions, contract_options
from rewardlab.data import ReadOptions, fingerprint, parse_score_weights
from rewardlab.data.formats import format_help
from rewardlab.data.record import Comparison
from rewardlab.device import DeviceOptions, device_options
from rewardlab.errors import RewardlabError
from rewardlab.evalsets import as_paths, load_eval_comparisons
from rewardlab.jsonstrict import dumps_strict
from rewardlab.judges.judge import row_unreadable
from rewardlab.judges.run import eval_note, judge_from_spec
from rewardlab.loader import load_reward_model
from rewardlab.metrics.summary import evaluate_scores
from rewardlab.metrics.ties import TiePolicy
from rewardlab.multiobjective.serving import multiobjective_note
from rewardlab.outputs import claim_output_dir
from rewardlab.ownership import owns_outputs
from rewardlab.probes.profile import bias_profile
from rewardlab.provenance import provenance
from rewardlab.report import write_report
from rewardlab.splits import trained_on
from rewardlab.truncation import truncation_counts, truncation_line, truncation_warnings

# what eval writes into output_dir: --overwrite removes these first
EVAL_WRITES = ("examples-*.jsonl", "report.json", "report.md", "report.html")


@dataclass
class EvalConfig(ContractOptions, DeviceOptions):
    # models
    model: list[str] = field(
        default_factory=list
    )  # one or more rewardlab model directories (--model A B, or repeat --model)
    judge: list[str] = field(
        default_factory=list
    )  # LLM judges, one column each: a model, key=value,... or a YAML (rewardlab.judges.run)
    trust_modified: bool = False  # load models whose files differ from the hashes in rewardlab.json (reported)
    # data
    data: list[str] = field(
        default_factory=list
    )  # files or directories (several: each file a subset, rewardlab.evalsets)
    format: str = "auto"  # the input format (rewardlab.data.formats.FORMAT_SPECS)
    score_weights: str | None = None  # ratings → one score, e.g. "helpfulness=1,correctness=0.5" (as in train)
    # skip rows that cannot be scored and count them in the report (--no-skip-invalid: stop at the first). On here,
    # off in train/score/judge: a report says what it skipped, while a trained model or a scores file would not
    skip_invalid: bool = True
    limit: Positive | None = None  # use only the first N records
    run: str = ""  # a training run directory: evaluate exactly its held-out records (split.json); model: RUN/model
    # evaluation
    benchmark: str = (
        ""  # a benchmark name from `--benchmark list` (e.g. rewardbench, rewardbench-2, rmb); "" = plain eval
    )
    tie_policy: str = "published"  # published | strict | half | fractional | random[:SEED]
    n_boot: NonNegative = 1000  # bootstrap resamples for the 95% intervals
    seed: Seed = 0  # bootstrap resampling and random tie policies
    batch_size: Positive = 32  # texts per forward
    packing: bool = False  # reward models: padding-free, prefix-shared scoring (rewardlab.packing)
    probes: bool = False  # add a Bias profile section: probe pairs derived from the data (rewardlab.probes)
    probe_list: str = "all"  # with --probes: comma list of probes (length, off_topic, concreteness, ...) or all
    # output
    output_dir: str = "runs/eval"  # report.json / report.md / report.html and examples-<model>.jsonl go here
    overwrite: bool = False  # replace the report in a non-empty --output-dir

    HELP = {"format": format_help}  # --help lists the formats from their registry


def _scores(rm, records: list[Comparison], batch_size: int) -> list[list[float]]:
    """:func:`score_records`, except that a scorer whose scaliser reads the prompt's ``unsafe`` tag (the Llama 2
    rule: ``reads_unsafe_tags``) scores record by record when some record is tagged, so the tag counts."""
    if getattr(rm, "reads_unsafe_tags", False) and any(r.meta.get("unsafe") for r in records):
        return rm.score_comparisons(records, batch_size=batch_size)
    return score_records(rm, records, batch_size)


def evaluate_model(
    rm, records: list[Comparison], batch_size: int = 32, seed: int = 0, tie_policy: str = "strict", n_boot: int = 1000
) -> tuple[dict, list]:
    """Score ``records`` with ``rm`` (any scorer) and return ``(evaluate_scores result, scores)``."""
    scores = _scores(rm, records, batch_size)
    policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
    return evaluate_scores(records, scores, seed=seed, n_boot=n_boot, tie_policy=policy), scores


def unreadable_verdicts(scorer, records: list[Comparison]) -> list[bool] | None:
    """For an LLM judge, one flag per record: no readable verdict in its last call (a pairwise judge's pair
    whose verdict could not be parsed, a rating or verifier judge's response with no parsed sample); None for a
    scorer without verdicts (a reward model) or when its rows do not line up with ``records``."""
    rows = getattr(scorer, "last_rows", None)
    if not rows or len(rows) != len(records):
        return None
    return [row_unreadable(row) for row in rows]


def evaluate_benchmark(
    scorer,
    bench,
    records: list[Comparison],
    batch_size: int = 32,
    seed: int = 0,
    tie_policy: str = "published",
    n_boot: int = 1000,
) -> tuple[dict, list, list]:
    """Score a benchmark's records with ``scorer``; return ``(result, scores, per-example credits)``.

    ``result`` holds the generic metrics (:func:`rewardlab.metrics.evaluate_scores`, over the records
    whose ``chosen`` is meaningful, ties credited by ``tie_policy`` resolved to strict for ``published``)
    and ``result["benchmark"]``, the benchmark rule's result (which records the tie policy it used).
    """
    scores = _scores(scorer, records, batch_size)
    bench_result = bench.score(
        records,
        scores,
        tie_policy=tie_policy,
        seed=seed,
        n_boot=n_boot,
        unreadable=unreadable_verdicts(scorer, records),
    )
    credits = bench_result.pop("per_example", None) or [None] * len(records)
    keep = [i for i, r in enumerate(records) if bench.pairwise(r)]
    result: dict[str, Any] = {}
    if keep:
        policy = TiePolicy.parse(tie_policy, seed=seed).resolve("strict")
        result = evaluate_scores(
            [records[i] for i in keep], [scores[i] for i in keep], seed=seed, n_boot=n_boot, tie_policy=policy
        )
    result["benchmark"] = bench_result
    return result, scores, credits


def example_rows(
    records: list[Comparison],
    scores: list[list[float]],
    credits: list | None = None,
    pairwise: list[bool] | None = None,
) -> list[dict]:
    """One dict per example: id, subset (= source), chosen, scores, response lengths in characters, and
    for a benchmark the example's credit, whether its ``chosen`` is a real preference, and its labels."""
    rows = []
    for i, (c, s) in enumerate(zip(records, scores)):
        row = {
            "id": c.id,
            "source": c.source,
            "subset": c.source,
            "chosen": c.chosen,
            "scores": list(s),
            "lengths": [len(r) for r in c.responses],
        }
        if credits is not None:
            row["credit"] = credits[i]
        if pairwise is not None:
            row["pairwise"] = bool(pairwise[i])
        labels = {k: v for k, v in c.meta.items() if k != "prompts" and isinstance(v, (str, int, float, bool, list))}
        if labels:
            row["labels"] = labels
        rows.append(row)
    return rows


def write_examples(
    path: Path,
    records: list[Comparison],
    scores: list[list[float]],
    credits: list | None = None,
    pairwise: list[bool] | None = None,
) -> list[dict]:
    """Write :func:`example_rows` as JSONL to ``path``; return the rows."""
    rows = example_rows(records, scores, credits, pairwise)
    atomic_write_text(path, "".join(dumps_strict(row, ensure_ascii=False) + "\n" for row in rows))
    return rows


def model_name(path: str, taken: dict) -> str:
    name = model_label(path)
    while name in taken:
        name += "'"
    return name


JUDGE_PREFIX = "judge:"


def load_scorer(
    path: str,
    options: ContractOptions | None = None,
    trust_modified: bool = False,
    packing: bool = False,
    devices: DeviceOptions | None = None,
):
    """A rewardlab model directory, any other reward model (:func:`rewardlab.loader.load_reward_model`), or
    ``judge:SPEC`` for an LLM judge (:func:`rewardlab.judges.run.judge_from_spec`).

    ``packing`` (``--packing``) is a load option of reward models (:func:`rewardlab.loader.load_reward_model`
    builds them with it, or refuses it for those that cannot pack); an LLM judge reads text, not padded token
    batches, and is loaded as it is."""
    if path.startswith(JUDGE_PREFIX):
        return judge_from_spec(path[len(JUDGE_PREFIX) :])

    progress.status(f"loading the model {path}")
    # only rewardlab dirs are hashed
    return load_reward_model(path, options, trust_modified=trust_modified, packing=packing, devices=devices)


def model_provenance(path: str | None, scorer: Any) -> dict:
    """Where one result column's scores came from: the model path and what its ``rewardlab.json`` says
    (backbone, model type, training-data fingerprint, package versions), or the scorer's class."""
    info: dict[str, Any] = {"path": str(path) if path is not None else None, "kind": type(scorer).__name__}
    spec = getattr(scorer, "spec", None)
    if spec is not None and hasattr(spec, "to_json"):
        d = spec.to_json()
        info.update(
            {
                "backbone": d.get("backbone"),
                "model_type": d.get("model_type"),
                "data_fingerprint": d.get("data_fingerprint"),
                "pooling": d.get("pooling"),
                "template": d.get("template"),
                "max_length": d.get("max_length"),
                "versions": d.get("versions"),
            }
        )
    if getattr(scorer, "placement", None):  # --device / --dtype as resolved (rewardlab.device)
        info["placement"] = dict(scorer.placement)
    if getattr(scorer, "modified_files", None):  # loaded with --trust-modified despite these mismatches
        info["trust_modified"] = list(scorer.modified_files)
    describe = getattr(scorer, "describe", None)
    if callable(describe):
        try:
            info["describe"] = describe()
        except Exception:
            pass
    return info


def _load_records(cfg: EvalConfig, bench) -> tuple[list[Comparison], list, list[str]]:

    if not as_paths(cfg.data):
        raise RewardlabError("give the data with --data PATH [PATH ...]")
    options = ReadOptions(score_weights=parse_score_weights(cfg.score_weights))
    if bench is None or bench.reads_comparisons:
        loaded = load_eval_comparisons(
            cfg.data, format=cfg.format, skip_invalid=cfg.skip_invalid, limit=cfg.limit, options=options
        )
        return loaded.records, loaded.skipped, loaded.notes
    if options.score_weights is not None:
        raise RewardlabError(f"--score-weights does not apply to the {bench.name} benchmark (its schema is fixed)")
    records, skipped, excluded = [], [], 0
    for path in as_paths(cfg.data):
        left = None if cfg.limit is None else cfg.limit - len(records)
        if left is not None and left <= 0:
            break
        data = bench.load(path, limit=left, skip_invalid=cfg.skip_invalid)
        records, skipped, excluded = (
            records + data.records,
            skipped + data.skipped,
            excluded + data.info.get("excluded", 0),
        )
    notes = [f"{excluded} rows left out by the benchmark's filter (see its docs)"] if excluded else []
    return records, skipped, notes


@owns_outputs
def run_eval(cfg: EvalConfig, records: list[Comparison] | None = None, skipped: list | None = None) -> Path:

    if not cfg.model and not cfg.judge:
        raise RewardlabError("give at least one model: --model DIR [DIR ...] (or repeat --model), or --judge SPEC")
    bench = None
    if cfg.benchmark:
        bench = get_benchmark(cfg.benchmark)
    elif records is None and cfg.data:
        found = {getattr(detect_benchmark(p), "name", None) for p in as_paths(cfg.data)}  # a benchmark's own layout
        bench = get_benchmark(found.pop()) if len(found) == 1 and None not in found else None  # (EvalBiasBench)

    try:
        TiePolicy.parse(cfg.tie_policy, seed=cfg.seed)
    except ValueError as e:
        raise RewardlabError(str(e)) from e
    claim_output_dir(
        cfg.output_dir,
        overwrite=cfg.overwrite,
        written=EVAL_WRITES,
        inputs={"--data": as_paths(cfg.data) if cfg.data else None, "--model": cfg.model},
        command="rewardlab eval",
    )
    load_notes: list[str] = []
    if records is None:
        records, skipped, load_notes = _load_records(cfg, bench)
    if bench is not None and not cfg.benchmark:
        load_notes.append(f"{', '.join(as_paths(cfg.data))}: {bench.title} layout, scored as --benchmark {bench.name}")
    if not records:
        raise RewardlabError(f"no records to evaluate in {cfg.data}")
    out = Path(cfg.output_dir)
    results, examples, tok = {}, {}, None
    pairwise = [bench.pairwise(r) for r in records] if bench is not None else None
    for path in [*cfg.model, *(JUDGE_PREFIX + spec for spec in cfg.judge)]:
        rm = load_scorer(
            path, contract_options(cfg), cfg.trust_modified, packing=cfg.packing, devices=device_options(cfg)
        )
        tok = getattr(rm, "tokenizer", tok)
        name = model_name(getattr(rm, "name", path), results)
        if bench is None:
            results[name], scores = evaluate_model(rm, records, cfg.batch_size, cfg.seed, cfg.tie_policy, cfg.n_boot)
            credits = None
        else:
            results[name], scores, credits = evaluate_benchmark(
                rm, bench, records, cfg.batch_size, cfg.seed, cfg.tie_policy, cfg.n_boot
            )
        results[name]["model"] = model_provenance(path, rm)
        results[name]["truncation"] = cut = truncation_counts(rm, records)
        if cut is not None:
            load_notes.append(truncation_line(name, cut))
            for warning in truncation_warnings(name, cut):
                print(f"rewardlab eval: warning: {warning}", file=sys.stderr)
                load_notes.append(f"warning: {warning}")
        if cfg.probes:
            results[name]["bias_profile"] = bias_profile(
                rm,
                records,
                cfg.probe_list,
                seed=cfg.seed,
                n_boot=cfg.n_boot,
                batch_size=cfg.batch_size,
                keep_pairs=False,
            )
        out.mkdir(parents=True, exist_ok=True)  # only once a model has loaded and scored
        seen = 0 if path.startswith(JUDGE_PREFIX) else trained_on(path, records)
        if seen:
            warning = (
                f"{seen} of {len(records)} records have a prompt that {name} was trained on "
                f"(its run's split.json): those scores are not held-out"
            )
            print(f"rewardlab eval: warning: {warning}", file=sys.stderr)
            load_notes.append(f"warning: {warning}")
        examples[name] = write_examples(out / f"examples-{name}.jsonl", records, scores, credits, pairwise)
        if hasattr(rm, "multiobjective_report"):  # every scaliser with CIs, length correlation, gate by source
            results[name]["multiobjective"] = rm.multiobjective_report(
                records, out / f"gate-{name}.png", cfg.batch_size, rated=as_paths(cfg.data)
            )
            load_notes.append(multiobjective_note(name, results[name]["multiobjective"]))
        if getattr(rm, "last_summary", None):  # an LLM judge: parse failures, position consistency
            results[name]["judge"] = rm.last_summary
            load_notes.append(eval_note(name, rm.last_summary))
        if getattr(rm, "contract", None) is not None:  # a foreign model: which parts of its contract were inferred
            load_notes.append(rm.contract.summary())
        del rm

    data_names = ", ".join(as_paths(cfg.data))
    notes = [f"{len(records)} records from {data_names}" if data_names else f"{len(records)} records"]
    notes += load_notes
    if skipped:
        notes.append(f"rows that cannot be scored were skipped and not counted{skipped_summary(skipped)}")
    prov = provenance(config=cfg.__dict__, data_fingerprint=fingerprint(records), tokenizer=tok)
    title = "rewardlab evaluation" + (f": {bench.title}" if bench is not None else "")
    curves_note = (
        None
        if getattr(cfg, "run", None)
        # eval --run: the curves' held-out split is this data
        else (
            "These curves are the model's own training run (its metrics.jsonl): loss and accuracy on its training "
            "data and accuracy on that run's own held-out split, not results on "
            + (data_names or "the data evaluated here")
            + "."
        )
    )
    write_report(out, results, title=title, provenance=prov, notes=notes, examples=examples, curves_note=curves_note)
    return out
