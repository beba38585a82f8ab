"""``rewardlab bon``: score every sample with proxies and a gold, then the best-of-n curves, KL, Gao fit and
ensembles (:mod:`rewardlab.bon.report` writes report.json / .md / .html and scores.jsonl).

Order of work: read the candidate sets; check every asked n against every prompt's N (refused before any model
loads); score with each proxy, then the gold (a checker, the file's labels or a reward model). A non-finite score
stops the run naming the model and the sample. A sample whose gold failed is marked and counted; a prompt with
such a sample is left out of the curves (its other samples would no longer be a uniform batch), and the report
says how many and which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rewardlab.bon.candidates import CandidateSet, read_candidates
from rewardlab.bon.ensemble import combine, describe
from rewardlab.bon.gao import gao_analysis
from rewardlab.bon.gold import GOLD_CHECKERS, LABELS, gold_help, run_checker
from rewardlab.bon.kl import KL_METHODS, kl_curve, kl_help
from rewardlab.bon.report import write_bon_report
from rewardlab.core import progress
from rewardlab.core.bounds import NonNegative, NonNegativeFloat, Positive, Seed
from rewardlab.core.cells import model_label
from rewardlab.core.errors import RewardlabError
from rewardlab.core.finite import NonFiniteError
from rewardlab.core.outputs import claim_output_dir
from rewardlab.metrics.best_of_n import best_of_n_curve
from rewardlab.scoring.loader import load_reward_model
from rewardlab.scoring.sharding import NonFiniteInShard, score_items


@dataclass
class BonConfig:
    # data
    samples: str = "samples.jsonl"  # candidate sets: rewardlab sample's cache, or rows of prompt + responses (one row per prompt) or prompt + response (one row per sample)
    # models
    # proxy reward models (any model the loader takes); two or more also make ensembles
    proxy: list[str] = field(default_factory=list)
    gold: str = "embedded"  # the gold reward: a checker name, 'labels' (the file's gold values) or a reward model
    batch_size: Positive = 16  # texts per forward when scoring
    # ensembles
    # objectives for 2+ proxies (default all three): mean, min (worst case), uwo (mean − λ·variance)
    ensemble: list[str] | None = None
    uwo_lambda: NonNegativeFloat = 0.5  # λ of the uwo objective
    standardize: bool = True  # ensembles: standardize each member over all samples first (members' scales differ)
    # analysis
    ns: list[int] | None = None  # the n of best-of-n (default 1, 2, 4, … and N itself)
    kl: str = "bound"  # the KL of the √KL plots and the Gao fit: bound (log n − (n−1)/n) or estimate (Beirami et al.); both are in report.json
    n_boot: NonNegative = 1000  # bootstrap resamples over prompts for the intervals (0: none)
    seed: Seed = 0  # bootstrap seed
    # output
    output_dir: str = "bon-report"  # report.json, report.md, report.html and scores.jsonl
    overwrite: bool = False  # replace the files of an existing report in --output-dir

    HELP = {"gold": gold_help, "kl": kl_help}


ENSEMBLE_OBJECTIVES = ("mean", "min", "uwo")
OUTPUTS = ("report.json", "report.md", "report.html", "scores.jsonl")


def default_ns(N: int) -> list[int]:
    """1, 2, 4, … up to N, and N: N = 12 → [1, 2, 4, 8, 12]."""
    ns, n = [], 1
    while n < N:
        ns.append(n)
        n *= 2
    return ns + [N]


def check_ns(sets: list[CandidateSet], ns: list[int] | None) -> list[int]:
    """The n values, refused (before any model loads) when some prompt has fewer samples than an asked n."""
    smallest = min(sets, key=lambda s: len(s.responses))
    N = len(smallest.responses)
    if ns is None:
        return default_ns(N)
    ns = sorted(set(int(n) for n in ns))
    if ns[0] < 1:
        raise RewardlabError(f"--ns: n must be >= 1, got {ns[0]}")
    if ns[-1] > N:
        raise RewardlabError(
            f"--ns asks n={ns[-1]} but prompt {smallest.id!r} has only N={N} samples: best-of-n needs n <= N "
            "(sample more, or ask smaller n)"
        )
    return ns


def _items(sets: list[CandidateSet]) -> list[tuple]:
    """Every (prompt, response), prompts as the scorers take them (chat messages as a tuple of dicts)."""
    return [(s.prompt if isinstance(s.prompt, str) else tuple(s.prompt), r) for s in sets for r in s.responses]


def _sample_id(sets: list[CandidateSet], flat: int) -> str:
    for s in sets:
        if flat < len(s.responses):
            return f"{s.id}#{flat}"
        flat -= len(s.responses)
    return f"#{flat}"


def _split(sets: list[CandidateSet], flat: list) -> list[list]:
    out, k = [], 0
    for s in sets:
        out.append(list(flat[k : k + len(s.responses)]))
        k += len(s.responses)
    return out


def score_model(path: str, items: list[tuple], sets: list[CandidateSet], batch_size: int, role: str) -> list[float]:
    """One model's score for every sample (the loader's scorer, ``score(items)``), in order. A non-finite score
    stops with the model and the sample id (``prompt id#index``)."""
    progress.status(f"loading the {role} {path}")
    rm = load_reward_model(path)
    try:
        scores = score_items(rm, items, batch_size=batch_size)
    except (NonFiniteError, NonFiniteInShard) as e:  # the scorer's check names the text's index (in the whole
        m = re.search(r"text #(\d+)", str(e))  # input, also data-parallel); say which sample that is
        where = _sample_id(sets, int(m.group(1))) if m else "(see the index above)"
        raise RewardlabError(
            f"{role} {path} gave a non-finite score to sample {where}: {e}; nothing was written"
        ) from None
    arr = np.asarray(scores, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise RewardlabError(
            f"{role} {path} gave a non-finite score ({arr[bad[0]]}) to sample {_sample_id(sets, int(bad[0]))} "
            f"({bad.size} non-finite in all); nothing was written"
        )
    return arr.tolist()


def gold_scores(cfg: BonConfig, sets: list[CandidateSet], items: list[tuple]) -> tuple[list[list], str, list[dict]]:
    """Per prompt, each sample's gold (None: failed), how it was made, and the failures ``[{sample, reason}]``."""
    failures: list[dict] = []
    if cfg.gold in GOLD_CHECKERS:
        check, how = GOLD_CHECKERS[cfg.gold]
        rows = []
        for s in progress.track(sets, "gold checker", unit="prompt"):
            row = []
            for j, r in enumerate(s.responses):
                value, why = run_checker(check, s.meta, s.prompt, r)
                if why is not None:
                    failures.append({"sample": f"{s.id}#{j}", "reason": why})
                row.append(value)
            rows.append(row)
        return rows, f"checker '{cfg.gold}': {how}", failures
    if cfg.gold == LABELS:
        missing = next((s for s in sets if s.gold is None), None)
        if missing is not None:
            raise RewardlabError(f"--gold labels: prompt {missing.id!r} in {cfg.samples} has no 'gold' values")
        for s in sets:
            failures += [
                {"sample": f"{s.id}#{j}", "reason": "gold label is null"} for j, g in enumerate(s.gold) if g is None
            ]
        return [list(s.gold) for s in sets], f"the 'gold' labels in {cfg.samples}", failures
    flat = score_model(cfg.gold, items, sets, cfg.batch_size, "gold model")
    return _split(sets, flat), f"reward model {cfg.gold}", failures


def _curve_entry(proxy_rows, gold_rows, ns, cfg: BonConfig, how: str) -> dict:
    curve = best_of_n_curve(proxy_rows, gold_rows, ns, n_boot=cfg.n_boot, seed=cfg.seed)
    kl = kl_curve(proxy_rows, ns)
    entry = {"made_by": how, "curve": {k: v for k, v in curve.items() if k != "per_prompt"}, "kl": kl}
    if len(ns) >= 3 and ns[0] == 1:
        try:
            entry["gao"] = gao_analysis(
                np.asarray(curve["per_prompt"]["gold"]), ns, kl[cfg.kl], n_boot=cfg.n_boot, seed=cfg.seed
            )
            entry["gao"]["kl"] = cfg.kl
        except ValueError as e:
            entry["gao"] = {"skipped": str(e)}
    else:
        entry["gao"] = {"skipped": "the Gao fit needs n = 1 and at least two more n"}
    return entry


def analyse(
    cfg: BonConfig,
    sets: list[CandidateSet],
    ns: list[int],
    proxies: dict[str, list[list[float]]],
    gold: list[list],
    gold_how: str,
    failures: list[dict],
) -> dict:
    """Everything the report shows, from scores already made. ``proxies``: name → per-prompt scores."""
    keep = [k for k, g in enumerate(gold) if all(v is not None for v in g)]
    if not keep:
        raise RewardlabError(
            f"every prompt has a sample whose gold failed ({len(failures)} samples; first: "
            f"{failures[0]['sample']}: {failures[0]['reason']}): nothing to analyse"
        )
    scorers: dict[str, tuple[list[list[float]], str]] = {
        name: (rows, f"proxy {name}") for name, rows in proxies.items()
    }
    names = list(proxies)
    if len(names) >= 2:
        members = np.stack([np.concatenate([np.asarray(r, dtype=np.float64) for r in proxies[n]]) for n in names])
        for obj in cfg.ensemble or ENSEMBLE_OBJECTIVES:
            combined = combine(members, obj, lam=cfg.uwo_lambda, standardize=cfg.standardize)
            scorers[f"ensemble-{obj}"] = (
                _split(sets, combined.tolist()),
                f"ensemble of {', '.join(names)}: {describe(obj, cfg.uwo_lambda, cfg.standardize)}",
            )
    kept_sets = [sets[k] for k in keep]
    kept_gold = [gold[k] for k in keep]
    results = {}
    for name, (rows, how) in scorers.items():
        kept_rows = [rows[k] for k in keep]
        entry = _curve_entry(kept_rows, kept_gold, ns, cfg, how)
        tasks = sorted({s.meta.get("task") for s in kept_sets if s.meta.get("task")})
        if len(tasks) > 1:
            entry["by_task"] = {}
            for t in tasks:
                idx = [i for i, s in enumerate(kept_sets) if s.meta.get("task") == t]
                c = best_of_n_curve(
                    [kept_rows[i] for i in idx], [kept_gold[i] for i in idx], ns, n_boot=cfg.n_boot, seed=cfg.seed
                )
                entry["by_task"][t] = {k: v for k, v in c.items() if k != "per_prompt"}
        results[name] = entry
    return {
        "ns": ns,
        "n_prompts": len(sets),
        "n_prompts_analysed": len(keep),
        "samples_per_prompt": {"min": min(len(s.responses) for s in sets), "max": max(len(s.responses) for s in sets)},
        "gold": gold_how,
        "gold_failures": {
            "samples": len(failures),
            "prompts_left_out": len(sets) - len(keep),
            "first": failures[:20],
            "rule": "a sample whose gold checker failed (raised, or returned None / a non-finite value) gets no gold "
            "and is never scored 0; prompts with such a sample are left out of every curve",
        },
        "kl_plotted": cfg.kl,
        "kl_methods": dict(KL_METHODS),
        "scorers": results,
    }


def run_bon(cfg: BonConfig) -> Path:
    if not cfg.proxy:
        raise RewardlabError("--proxy: give at least one proxy reward model")
    if cfg.kl not in KL_METHODS:
        raise RewardlabError(f"--kl {cfg.kl!r}: choose one of {', '.join(KL_METHODS)}")
    bad = [o for o in cfg.ensemble or [] if o not in ENSEMBLE_OBJECTIVES]
    if bad:
        raise RewardlabError(f"--ensemble {bad[0]!r}: choose from mean, min, uwo")
    out = claim_output_dir(cfg.output_dir, overwrite=cfg.overwrite, written=OUTPUTS)
    sets = read_candidates(cfg.samples)
    ns = check_ns(sets, cfg.ns)
    items = _items(sets)
    labels = {}
    for p in cfg.proxy:
        name = model_label(p)
        labels[name if name not in labels else f"{name}-{len(labels) + 1}"] = p
    proxies = {name: _split(sets, score_model(p, items, sets, cfg.batch_size, "proxy")) for name, p in labels.items()}
    gold, how, failures = gold_scores(cfg, sets, items)
    results = analyse(cfg, sets, ns, proxies, gold, how, failures)
    results["proxies"] = labels
    write_bon_report(out, cfg, results, sets, proxies, gold)
    return out
