"""``rewardlab select``: rejection sampling — keep the best responses under a proxy (or an ensemble) and write
them as a supervised fine-tuning dataset.

Selection (:func:`select`): per prompt the ``per_prompt`` highest-scored responses (default 1: the top one), or
with ``top_k`` the K highest-scored (prompt, response) pairs over the whole file. Ties go to the earlier sample
(a stable sort), so the choice is deterministic. Output rows, one per kept response:

* ``messages``: ``{"messages": [...the prompt's messages, {"role": "assistant", "content": response}],
  "source_id", "reward"}`` — TRL's conversational SFT format;
* ``prompt-completion``: ``{"prompt": [messages], "completion": [{"role": "assistant", ...}], "source_id",
  "reward"}`` — TRL's conversational prompt-completion format.

A text prompt becomes one user message. ``<output>.provenance.json`` records the samples file, the scorer, the
rule and the counts. :func:`rewardlab.bon.candidates.read_candidates` reads both row shapes back unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rewardlab.bon.analysis import _items, _split, score_model
from rewardlab.bon.candidates import CandidateSet, read_candidates
from rewardlab.bon.ensemble import OBJECTIVES, combine, describe
from rewardlab.core.atomic import atomic_write_text
from rewardlab.core.bounds import NonNegativeFloat, Positive
from rewardlab.core.cells import model_label
from rewardlab.core.errors import RewardlabError
from rewardlab.core.jsonstrict import dumps_strict
from rewardlab.core.outputs import claim_output_file
from rewardlab.core.provenance import provenance

FORMATS = ("messages", "prompt-completion")


@dataclass
class SelectConfig:
    # data
    samples: str = "samples.jsonl"  # candidate sets (rewardlab sample's cache, or prompt + responses rows)
    scores: str | None = (
        None  # rewardlab bon's scores.jsonl for these samples: its proxy scores are used, nothing is re-scored
    )
    # scorer
    # reward models to score with (when --scores is not given); two or more: --by picks an ensemble
    proxy: list[str] = field(default_factory=list)
    by: str | None = (
        None  # which score selects: a proxy's name in --scores, or mean / min / uwo over all the proxies (default: the only proxy, else min)
    )
    uwo_lambda: NonNegativeFloat = 0.5  # λ of the uwo objective
    standardize: bool = True  # ensembles: standardize each member over all samples first
    batch_size: Positive = 16  # texts per forward when scoring
    # selection
    per_prompt: Positive = 1  # keep the best this many responses of every prompt
    top_k: Positive | None = None  # instead: keep the K best (prompt, response) pairs over the whole file
    # output
    format: str = "messages"  # messages ({"messages": [...]}) or prompt-completion, both TRL SFT formats
    output: str = "selected.jsonl"  # the dataset (JSONL); provenance goes to OUTPUT.provenance.json
    overwrite: bool = False  # replace an existing --output


def select(scores: list[list[float]], per_prompt: int = 1, top_k: int | None = None) -> list[tuple[int, int]]:
    """``[(prompt index, sample index), ...]`` kept, in file order. ``scores[k]``: prompt k's samples' scores.
    Worked: scores [[1, 3, 2], [5, 0]]: per_prompt 1 → [(0, 1), (1, 0)]; per_prompt 2 → [(0, 1), (0, 2), (1, 0),
    (1, 1)]; top_k 2 → the two highest overall, 5 and 3 → [(0, 1), (1, 0)]."""
    if top_k is not None:
        flat = [(s, k, j) for k, row in enumerate(scores) for j, s in enumerate(row)]
        order = sorted(range(len(flat)), key=lambda i: -flat[i][0])  # stable: ties keep file order
        kept = sorted((flat[i][1], flat[i][2]) for i in order[:top_k])
        return kept
    kept = []
    for k, row in enumerate(scores):
        order = sorted(range(len(row)), key=lambda j: -row[j])[:per_prompt]
        kept += [(k, j) for j in sorted(order)]
    return kept


def to_row(s: CandidateSet, j: int, reward: float, fmt: str) -> dict:
    """One kept response as a TRL SFT row (see the module docstring)."""
    prompt = [{"role": "user", "content": s.prompt}] if isinstance(s.prompt, str) else [dict(m) for m in s.prompt]
    answer = {"role": "assistant", "content": s.responses[j]}
    body = {"messages": prompt + [answer]} if fmt == "messages" else {"prompt": prompt, "completion": [answer]}
    return {**body, "source_id": f"{s.id}#{j}", "reward": reward}


def _scores_file(cfg: SelectConfig, sets: list[CandidateSet]) -> dict[str, list[list[float]]]:
    rows = [json.loads(x) for x in Path(cfg.scores).read_text(encoding="utf-8").splitlines() if x.strip()]
    if [r.get("id") for r in rows] != [s.id for s in sets]:
        raise RewardlabError(f"--scores {cfg.scores} is not for --samples {cfg.samples}: its prompt ids differ")
    names = list(rows[0].get("proxy", {})) if rows else []
    return {n: [r["proxy"][n] for r in rows] for n in names}


def run_select(cfg: SelectConfig) -> Path:
    if cfg.format not in FORMATS:
        raise RewardlabError(f"--format {cfg.format!r}: choose {' or '.join(FORMATS)}")
    if (cfg.scores is None) == (not cfg.proxy):
        raise RewardlabError("give either --scores (rewardlab bon's scores.jsonl) or --proxy (models to score with)")
    out = claim_output_file(cfg.output, overwrite=cfg.overwrite)
    sets = read_candidates(cfg.samples)
    if cfg.scores is not None:
        proxies = _scores_file(cfg, sets)
        source = f"proxy scores from {cfg.scores}"
    else:
        items = _items(sets)
        proxies = {
            model_label(p): _split(sets, score_model(p, items, sets, cfg.batch_size, "proxy")) for p in cfg.proxy
        }
        source = "proxy scores of " + ", ".join(cfg.proxy)
    by = cfg.by or (next(iter(proxies)) if len(proxies) == 1 else "min")
    if by in proxies:
        chosen, how = proxies[by], f"proxy {by}"
    elif by in OBJECTIVES and len(proxies) >= 2:
        members = np.stack([np.concatenate([np.asarray(r, dtype=float) for r in rows]) for rows in proxies.values()])
        flat = combine(members, by, lam=cfg.uwo_lambda, standardize=cfg.standardize).tolist()
        chosen, k = [], 0
        for s in sets:
            chosen.append(flat[k : k + len(s.responses)])
            k += len(s.responses)
        how = f"ensemble of {', '.join(proxies)}: {describe(by, cfg.uwo_lambda, cfg.standardize)}"
    else:
        raise RewardlabError(
            f"--by {by!r}: choose a proxy ({', '.join(proxies)}) or, with 2+ proxies, mean / min / uwo"
        )
    kept = select(chosen, cfg.per_prompt, cfg.top_k)
    rows = [to_row(sets[k], j, float(chosen[k][j]), cfg.format) for k, j in kept]
    atomic_write_text(out, "".join(dumps_strict(r, ensure_ascii=False) + "\n" for r in rows))
    rule = (
        f"the top {cfg.top_k} (prompt, response) pairs over the file"
        if cfg.top_k
        else f"the top {cfg.per_prompt} response(s) of every prompt"
    )
    prov = {
        "samples": cfg.samples,
        "scores": source,
        "selected_by": how,
        "rule": rule + " (ties: the earlier sample)",
        "format": cfg.format,
        "prompts": len(sets),
        "samples_read": sum(len(s.responses) for s in sets),
        "rows_written": len(rows),
        "provenance": provenance(asdict(cfg)),
    }
    atomic_write_text(Path(str(out) + ".provenance.json"), dumps_strict(prov, indent=1) + "\n")
    return out
