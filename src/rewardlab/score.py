"""``rewardlab score``: batched, length-sorted inference over a file, one JSON line per input row.

Input rows are either comparisons in any format the readers accept (every response is scored) or
single ``{"prompt": ..., "response": ...}`` rows (policy samples). Output keeps the input order. Under
``torchrun`` / ``accelerate launch`` each process scores one block of the texts and process 0 writes them all, in
input order (:mod:`rewardlab.sharding`).
With ``--format auto`` a file of rated prompt/response rows (HelpSteer2) is read as single rows, unless
``--score-weights`` is given: weights combine ratings into the score that orders a comparison's responses, so
the file is then read as comparisons (``chosen`` in the output follows the weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rewardlab import progress
from rewardlab.atomic import atomic_write_text
from rewardlab.bounds import Positive
from rewardlab.contract_options import ContractOptions, contract_options
from rewardlab.data import ReadOptions, load_comparisons, parse_score_weights
from rewardlab.data.fields import identical_responses_are_ties
from rewardlab.data.formats import format_help
from rewardlab.data.readers import iter_rows
from rewardlab.errors import DataError
from rewardlab.foreign import write_contract
from rewardlab.jsonstrict import dumps_strict
from rewardlab.loader import load_reward_model
from rewardlab.outputs import claim_output_file
from rewardlab.sharding import is_main_process, map_sharded, score_items


@dataclass
class ScoreConfig(ContractOptions):
    # model
    model: str = ""  # a rewardlab model directory, or any reward model (directory or hub id; rewardlab.foreign)
    trust_modified: bool = False  # load a model whose files differ from the hashes in rewardlab.json (warned)
    # data
    data: str = ""  # file to score: comparisons (every response scored) or prompt/response rows
    format: str = "auto"  # the input format: single (prompt/response rows) or a comparison format (FORMAT_SPECS)
    score_weights: str | None = None  # ratings → one score, e.g. "helpfulness=1,correctness=0.5" (as in train)
    skip_invalid: bool = False  # skip malformed comparisons (listed) instead of stopping at the first
    limit: Positive | None = None  # score only the first N rows
    # scoring
    batch_size: Positive = 16  # texts per forward (length-sorted batches)
    normalize: bool = False  # apply the model's saved mean/std
    padding_side: str | None = None  # override the model's padding side (the score does not change; for testing)
    packing: bool = False  # padding-free rows, each prompt computed once for its responses (rewardlab.packing)
    token_budget: Positive | None = None  # pack prompt groups into rows of this many tokens; default: a row per group
    # output
    output: str = "scores.jsonl"  # JSONL, one row per input row, in input order
    overwrite: bool = False  # replace an existing --output file
    with_text: bool = False  # also write each row's prompt and response(s) next to its score(s)

    HELP = {"format": lambda: format_help(comparisons_only=False)}  # --help lists the formats, `single` too


def _single_rows(path: str, limit: int | None = None) -> list[dict] | None:
    """Rows with ``prompt`` + ``response`` (not a comparison), or None when the file holds comparisons."""
    rows = []
    for loc, row in iter_rows(path):
        if limit is not None and len(rows) >= limit:
            break
        if "response" not in row:
            return None if not rows else _bad(loc, "response", "missing field (other rows are prompt/response rows)")
        if not isinstance(row.get("response"), str) or not row["response"]:
            _bad(loc, "response", f"expected non-empty text, got {type(row.get('response')).__name__}")
        prompt = row.get("prompt")
        if not prompt or not (
            isinstance(prompt, str)
            or (
                isinstance(prompt, list)
                and all(
                    isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                    for m in prompt
                )
            )
        ):
            _bad(loc, "prompt", "missing, empty, or not text / a list of {role, content} messages")
        prompt = row["prompt"] if isinstance(row["prompt"], str) else tuple(row["prompt"])
        if not isinstance(row.get("unsafe", False), bool):
            _bad(loc, "unsafe", "expected true or false")
        rows.append(
            {
                "id": row.get("id", f"{Path(path).name}:{loc.get('line', loc.get('row'))}"),
                "prompt": prompt,
                "response": row["response"],
                "unsafe": row.get("unsafe", False),
            }
        )
    return rows


def _json_prompt(prompt):
    """A prompt as it is written out: text, or the list of chat messages."""
    return prompt if isinstance(prompt, str) else [dict(m) for m in prompt]


def _bad(loc: dict, field: str, msg: str):
    raise DataError(msg, path=loc["path"], line=loc.get("line"), row=loc.get("row"), field=field)


def _scored(rm, items, cfg: ScoreConfig, unsafe: list[bool]) -> tuple[list[float], list[dict]]:
    """``(scores, per-item extra fields)``. K-output models (``score_rows``: the loader's multi-objective scorer)
    give the scalar and its parts (``attributes``, ``transformed``, ``gate``) in one pass, reading the ``unsafe``
    tags; multi-output custom-code models add ``attributes``; any other model adds nothing."""
    rows = getattr(rm, "score_rows", None)
    if callable(rows):
        out = map_sharded(
            lambda part, tags: rows(
                part, batch_size=cfg.batch_size, normalize=cfg.normalize, padding_side=cfg.padding_side, unsafe=tags
            ),
            items,
            unsafe,
        )
        return [r["score"] for r in out], [{k: v for k, v in r.items() if k != "score"} for r in out]
    scores = score_items(
        rm,
        items,
        batch_size=cfg.batch_size,
        normalize=cfg.normalize,
        padding_side=cfg.padding_side,
        token_budget=cfg.token_budget,
    )
    get = getattr(rm, "attribute_scores", None)
    attrs = map_sharded(lambda part: get(part, batch_size=cfg.batch_size), items) if callable(get) else None
    return scores, [{} for _ in items] if attrs is None else [{"attributes": a} for a in attrs]


def run_score(cfg: ScoreConfig) -> Path:
    options = ReadOptions(score_weights=parse_score_weights(cfg.score_weights))  # bad weights fail before loading
    if options.score_weights is not None and cfg.format == "single":
        raise DataError("--score-weights applies to comparisons, not single prompt/response rows", path=cfg.data)
    claim_output_file(cfg.output, overwrite=cfg.overwrite)
    progress.status(f"loading the model {cfg.model}")
    rm = load_reward_model(
        cfg.model, contract_options(cfg), trust_modified=cfg.trust_modified, packing=cfg.packing
    )  # --packing is a load option: decided here, refused for models that cannot pack
    read_singles = cfg.format == "single" or (cfg.format == "auto" and options.score_weights is None)
    singles = _single_rows(cfg.data, cfg.limit) if read_singles else None
    out_rows = []
    if singles is not None:
        scores, extras = _scored(
            rm, [(r["prompt"], r["response"]) for r in singles], cfg, [r["unsafe"] for r in singles]
        )
        out_rows = [
            {
                "id": r["id"],
                "score": s,
                **x,
                **({"prompt": _json_prompt(r["prompt"]), "response": r["response"]} if cfg.with_text else {}),
            }
            for r, s, x in zip(singles, scores, extras)
        ]
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
                    **({"prompt": _json_prompt(c.prompt), "responses": list(c.responses)} if cfg.with_text else {}),
                }
            )
            for key in extras[i]:  # per response, in order: attributes, transformed, gate
                out_rows[-1][key] = [x[key] for x in extras[i : i + c.k]]
            i += c.k
        for err in loaded.skipped:
            print(f"rewardlab score: skipped {err}")
    out = Path(cfg.output)
    if is_main_process():  # data-parallel: every process holds all the scores; one writes them
        _write(out, out_rows)
        write_contract(out, rm)  # a foreign model's inferred contract, next to its scores
    return out


def _write(out: Path, out_rows: list[dict]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "".join(dumps_strict(row, ensure_ascii=False) + "\n" for row in out_rows))
    return out
