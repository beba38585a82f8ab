"""``rewardlab eval``: score held-out comparisons or a benchmark with one or more models and write a report.

Writes ``report.json`` / ``report.md`` / ``report.html`` (one column per model, one comparison plot) and
``examples-<name>.jsonl`` with each example's id, subset, scores, response lengths and (for a benchmark)
its credit under the benchmark's rule. With ``--benchmark NAME`` (see ``--benchmark list``) the data is
read in that benchmark's published schema and scored by its rule (:mod:`rewardlab.benchmarks`).

A *scorer* is any :class:`~rewardlab.core.scorer.Scorer` (a reward model of any kind, or an LLM judge):
:func:`evaluate_model` and :func:`evaluate_benchmark` take one directly; what a kind adds to the report (a
multi-objective section, a judge's parse failures, a foreign model's inferred contract) comes from its
:meth:`~rewardlab.core.scorer.Scorer.eval_sections`.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rewardlab.benchmarks import detect_benchmark, get_benchmark
from rewardlab.core import progress
from rewardlab.core.bounds import NonNegative, Positive, Seed
from rewardlab.core.cells import model_name
from rewardlab.core.contract_options import ContractOptions, contract_options
from rewardlab.core.device import DeviceOptions, device_options
from rewardlab.core.errors import RewardlabError
from rewardlab.core.kinds import JUDGE_PREFIX
from rewardlab.core.outputs import claim_output_dir
from rewardlab.core.ownership import owns_outputs
from rewardlab.core.provenance import provenance
from rewardlab.core.scorer import EvalContext
from rewardlab.data import ReadOptions, fingerprint, parse_score_weights
from rewardlab.data.evalsets import as_paths, load_eval_comparisons
from rewardlab.data.formats import format_help
from rewardlab.data.local import skipped_summary
from rewardlab.data.record import Comparison
from rewardlab.data.splits import trained_on
from rewardlab.evaluation.held_out import held_out_of_run
from rewardlab.evaluation.report import write_examples, write_report
from rewardlab.evaluation.scores import evaluate_benchmark, evaluate_model  # noqa: F401  (importable from here as before)
from rewardlab.evaluation.truncation import truncation_counts, truncation_line, truncation_warnings
from rewardlab.metrics.ties import TiePolicy
from rewardlab.probes.profile import bias_profile
from rewardlab.scoring.loader import load_scorer, model_provenance
from rewardlab.verifiers.run_eval import run_step_benchmark

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
    )  # files or directories (several: each file a subset, rewardlab.data.evalsets)
    format: str = "auto"  # the input format (rewardlab.data.formats.FORMAT_SPECS)
    score_weights: str | None = None  # ratings → one score, e.g. "helpfulness=1,correctness=0.5" (as in train)
    # skip rows that cannot be scored and count them in the report (--no-skip-invalid: stop at the first). On here,
    # off in train/score/judge (and every other command): a report says what it skipped, while a trained model or a
    # scores file would not (docs/cli.md)
    skip_invalid: bool = True
    limit: Positive | None = None  # use only the first N records
    run: str = ""  # a training run directory: evaluate exactly its held-out records (split.json); model: RUN/model
    # evaluation
    benchmark: str = (
        ""  # a benchmark name from `--benchmark list` (e.g. rewardbench, rewardbench-2, rmb); "" = plain eval
    )
    threshold_split: str = ""  # processbench: the split whose F1-maximising step threshold is used for every split
    threshold: float | None = None  # processbench: a fixed step threshold instead (a step below it is wrong)
    tie_policy: str = "published"  # published | strict | half | fractional | random[:SEED]
    n_boot: NonNegative = 1000  # bootstrap resamples for the 95% intervals
    seed: Seed = 0  # bootstrap resampling and random tie policies
    batch_size: Positive = 32  # texts per forward
    packing: bool = False  # reward models: padding-free, prefix-shared scoring (rewardlab.models.packing)
    probes: bool = False  # add a Bias profile section: probe pairs derived from the data (rewardlab.probes)
    probe_list: str = "all"  # with --probes: comma list of probes (length, off_topic, concreteness, ...) or all
    # output
    output_dir: str = "runs/eval"  # report.json / report.md / report.html and examples-<model>.jsonl go here
    overwrite: bool = False  # replace the report in a non-empty --output-dir
    # progress: auto (a bar on a terminal, else one timestamped line every $REWARDLAB_LOG_INTERVAL seconds) | bar |
    # text | json
    log_format: str = "auto"

    HELP = {"format": format_help}  # --help lists the formats from their registry

    def __post_init__(self):
        super().__post_init__()  # the declared ranges
        progress.check_log_format(self.log_format)


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
    """Score ``records`` (else ``cfg.data``'s) with every model and judge; write the report; its directory back."""
    with progress.logging_as(cfg.log_format):  # every bar inside: a bar on a terminal, else timestamped lines
        return _evaluate_and_report(cfg, records, skipped)


def _evaluate_and_report(cfg: EvalConfig, records: list[Comparison] | None, skipped: list | None) -> Path:
    if not cfg.model and not cfg.judge:
        raise RewardlabError("give at least one model: --model DIR [DIR ...] (or repeat --model), or --judge SPEC")
    bench = None
    if cfg.benchmark:
        bench = get_benchmark(cfg.benchmark)
    elif records is None and cfg.data:
        found = {b.name if b is not None else None for b in map(detect_benchmark, as_paths(cfg.data))}
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
    if bench is not None and bench.scores == "steps":  # a verifier's per-step scores (ProcessBench)
        load = lambda p: load_scorer(
            p, contract_options(cfg), cfg.trust_modified, packing=cfg.packing, devices=device_options(cfg)
        )  # noqa: E731
        return run_step_benchmark(bench, cfg, load)
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
        tok = rm.tokenizer if rm.tokenizer is not None else tok
        name = model_name(rm.name or path, results)
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
        context = EvalContext(name, out, cfg.batch_size, tuple(as_paths(cfg.data)))
        for section in rm.eval_sections(records, context):  # what this kind adds (rewardlab.core.scorer)
            if section.key is not None:
                results[name][section.key] = section.data
            if section.note:
                load_notes.append(section.note)
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


# ---- eval --run: exactly the held-out records of a training run (rewardlab.evaluation.held_out) --------------------------
def run_eval_of_run(cfg: EvalConfig) -> Path:
    if cfg.data or cfg.benchmark:
        raise RewardlabError(
            "--run evaluates the run's own held-out records: give --run or --data/--benchmark, not both"
        )
    held, split = held_out_of_run(cfg.run)
    models = cfg.model or ([] if cfg.judge else [str(Path(cfg.run) / "model")])
    where = split["rule"].get("path") or split.get("data")
    resolved = dataclasses.replace(cfg, model=models, data=[f"{where} (held-out split of {cfg.run})"])
    return run_eval(resolved, records=held, skipped=[])
