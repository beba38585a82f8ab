"""``rewardlab judge``: run a judge over a file; and building judges from a config or a one-line spec.

Output: ``output`` (JSONL, one row per record: id, source, chosen, rewards and the judge's details — per-order
raw outputs and verdicts, parse failures, ratings, p(Yes), critiques) and ``<output stem>.summary.json``
(counts of unparseable outputs and why, position-consistency rate, rate of picking position A, agreement with
the file's ``chosen``, backend statistics such as cache hits and retries, timing, the judge's settings).

A judge *spec* (``rewardlab eval --judge SPEC``) is a YAML/JSON file of :class:`JudgeConfig` fields, or
``key=value`` pairs separated by commas (``mode=logprob,model=runs/train-judge/model,position=average``), or just a
model (``smollm2-135m``, a directory) for the default pairwise judge. A model directory written by
``rewardlab train-judge`` carries ``judge.json`` (mode, template, truncation), used unless overridden.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rewardlab.core.atomic import atomic_write_text, json_safe
from rewardlab.core.bounds import (
    NonNegative,
    NonNegativeFloat,
    Positive,
    PositiveFloat,
    PositiveFraction,
    Seed,
    check_bounds,
)
from rewardlab.core.cells import fmt
from rewardlab.core.device import DeviceOptions, Placement, device_options, resolve
from rewardlab.core.errors import RewardlabError
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.core.kinds import JUDGE_PREFIX
from rewardlab.core.outputs import claim_output_file
from rewardlab.core.ownership import owns_outputs
from rewardlab.core.settings import Sourced, flag_name, read_key_values, read_yaml, validate
from rewardlab.data import fingerprint, load_comparisons
from rewardlab.judges.backends import Sampling
from rewardlab.judges.factory import make_backend
from rewardlab.judges.judge import Judge, PairwiseJudge, RatingJudge, VerifierJudge
from rewardlab.judges.templates import JudgeTemplate


@dataclass
class JudgeConfig(DeviceOptions):
    # data
    data: str = ""  # comparisons to judge (any format train reads)
    format: str = "auto"  # the input format (rewardlab.data.formats.FORMAT_SPECS)
    # skip malformed records instead of stopping at the first. Off: a judgments file would miss rows silently (eval's
    # default is on: its report counts what it skipped; docs/cli.md)
    skip_invalid: bool = False
    limit: Positive | None = None  # judge only the first N records
    # output
    output: str = "runs/judge/judgments.jsonl"  # JSONL of judgments, one row per record; a summary JSON next to it
    overwrite: bool = False  # replace an existing --output file (refused without it, before any model loads)
    # judge
    mode: str | None = None  # the kind of judge (default pairwise)
    # backend
    backend: str = "hf"  # hf | openai | llamacpp
    model: str = "smollm2-135m"  # hf: embedded name or directory; openai: the served model name; llamacpp: .gguf
    base_url: str = ""  # openai: e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"  # openai: the environment variable holding the API key
    concurrency: Positive = 8  # openai: requests in flight at once
    timeout: PositiveFloat = 60.0  # openai: seconds per request
    max_retries: NonNegative = 4  # openai: retries of a failed request (with backoff)
    cache_dir: str | None = None  # openai: on-disk answer cache
    # prompting
    template: str | None = None  # built-in name or YAML/JSON file (default per mode)
    parser: str | None = None  # pairwise: strict|mtbench|last|lenient|letter|regex:...; rating: mtbench|last|number
    position: str | None = None  # single | random_swap | both | average (default both; logprob: average)
    # sampling
    temperature: NonNegativeFloat = 0.0  # sampling temperature (0: greedy)
    top_p: PositiveFraction = 1.0  # nucleus sampling mass
    max_new_tokens: Positive = 256  # tokens a judge may generate per answer
    samples: Positive = 1  # rating: ratings averaged; verifier-cot: K rationales
    seed: Seed = 0  # sampling and random_swap positions
    batch_size: Positive = 8  # hf: prompts per forward
    # truncation
    max_question_tokens: Positive | None = None  # the conversation keeps its last N tokens (default: all)
    max_answer_tokens: Positive | None = None  # each response keeps its first N tokens (default: all)
    # runtime
    name: str | None = None  # the judge's name in reports (default: from the model)

    REQUIRED = ("data",)  # options that must be given (rewardlab.commands.preflight checks them before anything loads)

    HELP = {"mode": lambda: "one of: " + ", ".join(JUDGE_MODES)}  # --help lists the modes from their registry

    def __post_init__(self):
        check_bounds(self)  # the declared ranges bind however the config is built
        if self.mode is not None and self.mode not in MODES:
            raise RewardlabError(f"unknown judge mode {self.mode!r}; choose one of {', '.join(MODES)}")
        placed = [flag_name(k) for k, v in dataclasses.asdict(DeviceOptions()).items() if getattr(self, k) != v]
        if self.backend != "hf" and placed:  # a served or llama.cpp model is placed by its server, not here
            raise RewardlabError(
                f"{', '.join(placed)}: for a local transformers model (--backend hf); a --backend {self.backend} "
                "model is placed by whatever runs it"
            )


def _judge_meta(model: str) -> dict:
    path = Path(model) / "judge.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def build_judge(cfg: JudgeConfig):
    """The judge a :class:`JudgeConfig` describes (loads the backend)."""
    meta = _judge_meta(cfg.model) if cfg.backend == "hf" else {}
    if (Path(cfg.model) / "cloud.json").is_file() and cfg.mode in (None, "critique"):
        meta = {"mode": "critique"}
    mode = cfg.mode or meta.get("mode") or "pairwise"
    template = cfg.template
    if template is None and meta.get("template") and meta.get("mode") == mode:
        t = meta["template"]
        template = JudgeTemplate(**{**t, "candidates": tuple(t.get("candidates") or ())})
    trunc = dict(
        max_question_tokens=cfg.max_question_tokens
        if cfg.max_question_tokens is not None
        else meta.get("max_question_tokens"),
        max_answer_tokens=cfg.max_answer_tokens if cfg.max_answer_tokens is not None else meta.get("max_answer_tokens"),
    )
    sampling = Sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    build = JUDGE_MODES.get(mode)
    if build is None:  # e.g. a judge.json written by another version: never silently another kind of judge
        raise RewardlabError(f"unknown judge mode {mode!r}; choose one of {', '.join(JUDGE_MODES)}")
    return build(cfg, mode, template, sampling, meta, trunc)


def judge_placement(cfg: JudgeConfig, path: str) -> Placement:
    """``--device`` / ``--dtype`` / ``--attn-implementation`` / ``--quantize`` of an ``hf`` judge, checked before its
    weights load (:func:`rewardlab.core.device.resolve`) and printed; recorded in the summary (the backend's
    ``placement``)."""
    from rewardlab.models.backbones import resolve_backbone  # lazy: imports transformers; judge --help stays light

    placement = resolve(device_options(cfg), resolve_backbone(path))
    print(f"rewardlab: judge {placement.line()}", file=sys.stderr)
    return placement


def _backend(cfg: JudgeConfig):
    return make_backend(
        cfg.backend,
        cfg.model,
        base_url=cfg.base_url,
        api_key_env=cfg.api_key_env,
        concurrency=cfg.concurrency,
        timeout=cfg.timeout,
        max_retries=cfg.max_retries,
        cache_dir=cfg.cache_dir,
        batch_size=cfg.batch_size,
        placement=judge_placement(cfg, cfg.model) if cfg.backend == "hf" else None,
    )


def _pairwise_judge(cfg, mode, template, sampling, meta, trunc):
    return PairwiseJudge(
        _backend(cfg),
        mode="generate" if mode == "pairwise" else "logprob",
        template=template,
        parser=cfg.parser,
        position=cfg.position or meta.get("position"),
        sampling=sampling,
        seed=cfg.seed,
        name=cfg.name,
        **trunc,
    )


def _rating_judge(cfg, mode, template, sampling, meta, trunc):
    return RatingJudge(
        _backend(cfg),
        template=template,
        parser=cfg.parser,
        sampling=sampling,
        samples=cfg.samples,
        name=cfg.name,
        **trunc,
    )


def _verifier_judge(cfg, mode, template, sampling, meta, trunc):
    return VerifierJudge(
        _backend(cfg),
        cot=mode == "verifier-cot",
        template=template,
        sampling=sampling,
        samples=cfg.samples,
        name=cfg.name,
        **trunc,
    )


def _critique_judge(cfg, mode, template, sampling, meta, trunc):
    from rewardlab.judges.cloud import (  # lazy: imports torch; judges.run is on the light judge --help path
        CloudRewardModel,
        CritiqueJudge,
    )

    if cfg.backend != "hf":
        raise RewardlabError("critique mode runs a local critique-out-loud model (--backend hf)")
    model = CloudRewardModel.load(cfg.model, placement=judge_placement(cfg, cfg.model))
    return CritiqueJudge(
        model,
        sampling=Sampling(
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=min(cfg.max_new_tokens, model.max_critique_tokens),
            seed=cfg.seed,
        ),
        name=cfg.name,
        **trunc,
    ).with_batch_size(cfg.batch_size)


# THE registry of judge modes: --mode name -> builder (cfg, mode, template, sampling, judge.json meta, truncation)
JUDGE_MODES = {
    "pairwise": _pairwise_judge,
    "logprob": _pairwise_judge,
    "rating": _rating_judge,
    "verifier": _verifier_judge,
    "verifier-cot": _verifier_judge,
    "critique": _critique_judge,
}
MODES = tuple(JUDGE_MODES)


def parse_judge_spec(spec: str, defaults: dict | None = None) -> JudgeConfig:
    """A :class:`JudgeConfig` from a YAML/JSON file, ``key=value,key=value`` or a bare model, validated like every
    command's options (:mod:`rewardlab.core.settings`: types, ranges, unknown keys with a did-you-mean, each error naming
    the option and the spec). ``defaults`` (e.g. ``eval``'s batch size) apply where the spec does not say."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
        layer = read_yaml(JudgeConfig, path)
    elif "=" in spec:
        layer = read_key_values(JudgeConfig, spec, f"judge spec {spec!r}")
    else:
        layer = Sourced({"model": spec}, {"model": f"judge spec {spec!r}"})
    base = Sourced(dict(defaults or {}), {k: f"the default {k} for judge spec {spec!r}" for k in defaults or {}})
    return validate(JudgeConfig, base, layer)


def judge_from_spec(spec: str, batch_size: int | None = None):
    """The judge of a spec (:func:`parse_judge_spec`); ``batch_size`` where the spec gives none."""
    return build_judge(parse_judge_spec(spec, {"batch_size": batch_size} if batch_size else None))


class JudgeKind:
    """The registry's opener for ``judge:SPEC`` (:mod:`rewardlab.core.kinds`): an LLM judge is read from its
    spec, not from a model directory, and has no scoring contract to inspect."""

    @staticmethod
    def open(path: str, request) -> Judge:
        return judge_from_spec(path[len(JUDGE_PREFIX) :])

    @staticmethod
    def inspect(path: str, options) -> str:
        raise RewardlabError(f"{path}: an LLM judge has no scoring contract (its spec is what it does)")


def summary_path(output: str | Path) -> Path:
    output = Path(output)
    name = output.name[: -len(".gz")] if output.name.endswith(".gz") else output.name
    return output.with_name((name[: -len(".jsonl")] if name.endswith(".jsonl") else name) + ".summary.json")


@owns_outputs
def run_judge(cfg: JudgeConfig) -> tuple[Path, dict]:
    """Judge every record of ``cfg.data``; write the JSONL and the summary; return ``(output, summary)``."""
    if not cfg.data:
        raise RewardlabError("--data is required")
    target = claim_output_file(cfg.output, overwrite=cfg.overwrite, inputs={"--data": cfg.data})
    loaded = load_comparisons(cfg.data, format=cfg.format, skip_invalid=cfg.skip_invalid, limit=cfg.limit)
    records = loaded.records
    if not records:
        raise RewardlabError(f"{cfg.data}: no records")
    judge = build_judge(cfg)
    t = time.perf_counter()
    judge.score_comparisons(records)
    seconds = time.perf_counter() - t
    out = Path(cfg.output)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        target,
        "".join(
            dumps_strict(json_safe({"mode": judge.mode, **row}), ensure_ascii=False) + "\n" for row in judge.last_rows
        ),
    )
    summary = dict(judge.last_summary)
    summary.update(
        data=cfg.data,
        n_skipped_invalid=len(loaded.skipped),
        data_fingerprint=fingerprint(records),
        seconds=seconds,
        output=str(out),
        config=dataclasses.asdict(cfg),
    )
    summary = json_safe(summary)
    atomic_write_text(summary_path(out), dumps_strict(summary, indent=2, ensure_ascii=False) + "\n")
    judge.backend.close()
    return out, summary


def format_summary(summary: dict) -> str:
    lines = [
        f"judge {summary['judge']['name']} ({summary['judge']['mode']}, {summary['judge']['backend']}): "
        f"{summary['n_records']} records in {fmt(summary.get('seconds'), 1)} s"
    ]
    n_out, n_bad = summary.get("n_outputs"), summary.get("n_unparseable_outputs")
    lines.append(
        f"unparseable outputs: {n_bad} of {n_out}"
        + (
            f" ({', '.join(f'{k}: {v}' for k, v in list(summary.get('unparseable_reasons', {}).items())[:3])})"
            if n_bad
            else ""
        )
    )
    if "position_consistency" in summary:
        lines.append(
            f"position consistency: {fmt(summary['position_consistency'])} over "
            f"{summary['n_pairs_both_parsed']} pairs judged in both orders; position A picked at rate "
            f"{fmt(summary['first_position_rate'])}"
        )
    agree = summary.get("agreement_with_chosen") or {}
    if agree:
        lines.append(
            f"agreement with chosen: {fmt(agree.get('accuracy'))} strict, "
            f"{fmt(agree.get('accuracy_ties_half'))} with ties as half ({agree.get('ties')} ties)"
        )
    stats = summary.get("backend_stats") or {}
    if stats:
        lines.append("backend: " + ", ".join(f"{k} {v}" for k, v in stats.items() if k != "errors"))
    return "\n".join(lines)
