"""``rewardlab score``: batched, length-sorted inference over a file, one JSON line per input row.

Input rows are either comparisons in any format the readers accept (every response is scored) or
single ``{"prompt": ..., "response": ...}`` rows (policy samples). Output keeps the input order. Under
``torchrun`` / ``accelerate launch`` each process scores one block of the texts and process 0 writes them all, in
input order (:mod:`rewardlab.scoring.sharding`). ``<output>.provenance.json`` says how the scores were made: the
model, the device and dtype it ran in (``placement``), the rows scored and their fingerprint, the command and versions.
With ``--format auto`` a file of rated prompt/response rows (HelpSteer2) is read as single rows, unless
``--score-weights`` is given: weights combine ratings into the score that orders a comparison's responses, so
the file is then read as comparisons (``chosen`` in the output follows the weights).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rewardlab.core import progress
from rewardlab.core.atomic import atomic_write_text, json_safe
from rewardlab.core.bounds import Positive
from rewardlab.core.contract_options import ContractOptions, contract_options
from rewardlab.core.device import DeviceOptions, device_options
from rewardlab.core.errors import DataError
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.core.normstats import checked_normalization
from rewardlab.core.outputs import claim_output_file
from rewardlab.core.ownership import owns_outputs
from rewardlab.core.provenance import provenance
from rewardlab.core.scorer import ScoreOptions, Scorer
from rewardlab.data import ReadOptions, fingerprint, load_comparisons, parse_score_weights
from rewardlab.data.fields import identical_responses_are_ties
from rewardlab.data.formats import format_help
from rewardlab.data.singles import json_prompt, single_rows
from rewardlab.models.foreign import write_contract
from rewardlab.scoring.loader import load_reward_model, model_provenance
from rewardlab.scoring.sharding import is_main_process, map_sharded


@dataclass
class ScoreConfig(ContractOptions, DeviceOptions):
    # model
    model: str = ""  # a rewardlab model directory, or any reward model (directory or hub id; rewardlab.models.foreign)
    trust_modified: bool = False  # load a model whose files differ from the hashes in rewardlab.json (warned)
    # data
    data: str = ""  # file to score: comparisons (every response scored) or prompt/response rows
    format: str = "auto"  # the input format: single (prompt/response rows) or a comparison format (FORMAT_SPECS)
    score_weights: str | None = None  # ratings → one score, e.g. "helpfulness=1,correctness=0.5" (as in train)
    # skip malformed comparisons (listed) instead of stopping at the first. Off: a scores file would miss rows
    # silently (eval's default is on: its report counts what it skipped; docs/cli.md)
    skip_invalid: bool = False
    limit: Positive | None = None  # score only the first N rows
    # scoring
    batch_size: Positive = 16  # texts per forward (length-sorted batches)
    normalize: bool = False  # apply the model's saved mean/std
    padding_side: str | None = None  # override the model's padding side (the score does not change; for testing)
    packing: bool = False  # padding-free rows, each prompt computed once for its responses (rewardlab.models.packing)
    token_budget: Positive | None = None  # pack prompt groups into rows of this many tokens; default: a row per group
    # output
    output: str = "scores.jsonl"  # JSONL, one row per input row, in input order
    overwrite: bool = False  # replace an existing --output file
    with_text: bool = False  # also write each row's prompt and response(s) next to its score(s)
    # progress: auto (a bar on a terminal, else one timestamped line every $REWARDLAB_LOG_INTERVAL seconds) | bar |
    # text | json
    log_format: str = "auto"

    REQUIRED = (
        "model",
        "data",
    )  # options that must be given (rewardlab.commands.preflight checks them before anything loads)

    HELP = {"format": lambda: format_help(comparisons_only=False)}  # --help lists the formats, `single` too

    def __post_init__(self):
        super().__post_init__()  # the declared ranges
        progress.check_log_format(self.log_format)


def _scored(rm: Scorer, items, cfg: ScoreConfig, unsafe: list[bool]) -> tuple[list[float], list[dict]]:
    """``(scores, per-item extra fields)`` from one pass (:meth:`~rewardlab.core.scorer.Scorer.score_rows`):
    the parts a kind declares (``capabilities.output``: ``attributes``, ``transformed``, ``gate``; ``steps``)
    besides the score, reading the ``unsafe`` tags where the kind reads them; a scalar model adds nothing."""
    opts = ScoreOptions(
        batch_size=cfg.batch_size, normalize=cfg.normalize, padding_side=cfg.padding_side, token_budget=cfg.token_budget
    )
    out = map_sharded(lambda part, tags: rm.score_rows(part, opts, unsafe=tags), items, unsafe, what="scoring")
    return [r["score"] for r in out], [{k: v for k, v in r.items() if k != "score"} for r in out]


@owns_outputs
def run_score(cfg: ScoreConfig) -> Path:
    """Score ``cfg.data`` with ``cfg.model``; write the scores and ``<output>.provenance.json``; the output back."""
    with progress.logging_as(cfg.log_format):  # every bar inside: a bar on a terminal, else timestamped lines
        return _score_file(cfg)


def _score_file(cfg: ScoreConfig) -> Path:
    options = ReadOptions(score_weights=parse_score_weights(cfg.score_weights))  # bad weights fail before loading
    if options.score_weights is not None and cfg.format == "single":
        raise DataError("--score-weights applies to comparisons, not single prompt/response rows", path=cfg.data)
    inputs = {"--data": cfg.data, "--model": cfg.model}
    target = claim_output_file(cfg.output, overwrite=cfg.overwrite, inputs=inputs)
    sidecar = claim_output_file(
        provenance_path(target), overwrite=True, flag="--output's provenance file", inputs=inputs
    )
    progress.status(f"loading the model {cfg.model}")
    rm = load_reward_model(
        cfg.model,
        contract_options(cfg),
        trust_modified=cfg.trust_modified,
        packing=cfg.packing,
        devices=device_options(cfg),
    )  # --packing is a load option: decided here, refused for models that cannot pack
    if cfg.normalize:  # statistics that cannot normalise are refused before any scoring
        checked_normalization(rm.spec.normalization, f"{cfg.model}/rewardlab.json")
    read_singles = cfg.format == "single" or (cfg.format == "auto" and options.score_weights is None)
    singles = single_rows(cfg.data, cfg.limit) if read_singles else None
    out_rows, scored = [], None
    if singles is not None:
        scores, extras = _scored(
            rm, [(r["prompt"], r["response"]) for r in singles], cfg, [r["unsafe"] for r in singles]
        )
        out_rows = [
            {
                "id": r["id"],
                "score": s,
                **x,
                **({"prompt": json_prompt(r["prompt"]), "response": r["response"]} if cfg.with_text else {}),
            }
            for r, s, x in zip(singles, scores, extras)
        ]
        scored = {"rows": "prompt/response rows", "n_rows": len(singles), "data_fingerprint": rows_fingerprint(singles)}
    else:
        with identical_responses_are_ties():  # scoring, like evaluation, gives identical answers equal scores
            loaded = load_comparisons(
                cfg.data, format=cfg.format, skip_invalid=cfg.skip_invalid, limit=cfg.limit, options=options
            )
        flat = [(c.prompt, resp) for c in loaded.records for resp in c.responses]
        unsafe = [bool(c.meta.get("unsafe", False)) for c in loaded.records for _ in c.responses]
        scores, extras = _scored(rm, flat, cfg, unsafe)
        i = 0
        for c in loaded.records:
            out_rows.append(
                {
                    "id": c.id,
                    "source": c.source,
                    "chosen": c.chosen,
                    "scores": scores[i : i + c.k],
                    **({"prompt": json_prompt(c.prompt), "responses": list(c.responses)} if cfg.with_text else {}),
                }
            )
            for key in extras[i]:  # per response, in order: attributes, transformed, gate
                out_rows[-1][key] = [x[key] for x in extras[i : i + c.k]]
            i += c.k
        for err in loaded.skipped:
            print(f"rewardlab score: skipped {err}")
        scored = {
            "rows": "comparisons (every response scored)",
            "n_rows": len(loaded.records),
            "n_skipped_invalid": len(loaded.skipped),
            "data_fingerprint": fingerprint(loaded.records),
        }
    if not is_main_process():  # data-parallel: every process holds all the scores; process 0 writes them
        return target
    out = _write(target, out_rows)
    write_contract(out, rm)  # a foreign model's inferred contract, next to its scores
    write_provenance(sidecar, cfg, rm, scored)
    return out


def provenance_path(output: Path) -> Path:
    """``scores.jsonl`` -> ``scores.jsonl.provenance.json`` (as ``rewardlab select`` names its own)."""
    return output.with_name(output.name + ".provenance.json")


def rows_fingerprint(rows: list[dict]) -> str:
    """sha256 hex of the scored prompt/response rows (each ``[prompt, response]`` as canonical JSON, in order)."""
    digest = hashlib.sha256()
    for r in rows:
        digest.update(json.dumps([r["prompt"], r["response"]], sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def write_provenance(path: Path, cfg: ScoreConfig, rm: Scorer, scored: dict) -> Path:
    """How the scores were made, next to them: the model (path, kind, its ``rewardlab.json`` facts, the
    ``placement``: device and dtype as resolved, and why), what was scored and its fingerprint, whether the
    scores are normalised, and the run's provenance (command, versions, git, the config)."""
    info = {
        "scores": str(cfg.output),
        "model": model_provenance(cfg.model, rm),
        "placement": rm.placement,  # also under model, as eval's report.json has it
        "normalized": cfg.normalize,
        **scored,
        "provenance": provenance(
            config=asdict(cfg), data_fingerprint=scored["data_fingerprint"], tokenizer=rm.tokenizer
        ),
    }
    atomic_write_text(path, dumps_strict(json_safe(info), indent=2, ensure_ascii=False) + "\n")
    return path


def _write(out: Path, out_rows: list[dict]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "".join(dumps_strict(row, ensure_ascii=False) + "\n" for row in out_rows))
    return out
