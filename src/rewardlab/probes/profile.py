"""Scoring probe pairs with any scorer and summarising them as a *bias profile*.

For each probe (:data:`rewardlab.probes.pairs.PROBES`), over its ``n`` pairs:

* ``biased_preferred`` — the share of pairs where the scorer rewards ``biased`` above ``reference``
  (an exact tie counts ½), with a Wilson 95% interval (``ci95``). 0 is no bias; 0.5 is "cannot tell".
* ``control_rate`` (probes that add text to the worse response) — the same share for the control pair
  (reference, base): how often the worse response won *before* the text was added. ``effect`` =
  ``biased_preferred − control_rate`` is what the added text alone did.
* ``margin`` — mean ``r(biased) − r(reference)`` with a bootstrap 95% interval (``margin_ci95``).
* ``shift`` (added-text probes) — mean ``r(biased) − r(base)``, the *reward shift* the added text caused,
  with a bootstrap 95% interval (``shift_ci95``).
* ``n_cut`` (added-text probes, scorers with a token limit) — pairs whose biased variant is longer than the
  model's ``max_length``: the model is shown it cut, so the factor was not fully applied; ``shift_uncut``
  (``shift_uncut_ci95``) is the shift over the other pairs.
* ``position`` (judges only) — each (chosen, worse) pair in both orders; ``biased_preferred`` = the share
  of the 2n orders in which the response shown first wins, ``consistency`` = the share of pairs whose winner
  is the same in both orders. Run a judge with ``position=single`` to see its raw position bias (with
  ``both``/``average`` it already combines the two orders).

A pointwise scorer (``capabilities.pointwise``: a reward model of any kind) scores each (prompt, response) once
(:func:`rewardlab.benchmarks.base.score_records`), so a control pair costs only the base response.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from rewardlab.benchmarks.base import score_records
from rewardlab.core.errors import RewardlabError
from rewardlab.data.record import Comparison
from rewardlab.metrics.statistics import bootstrap_ci
from rewardlab.probes.pairs import JUDGE_ONLY, PROBES, ProbePair

Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion ``successes / n`` (``successes`` may hold halves for ties)."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact ends: the bounds are 0 and 1 there
    hi = 1.0 if successes >= n else min(1.0, centre + half)
    return lo, hi


def win_credit(a: float, b: float) -> float:
    """1 if ``a > b``, ½ on an exact tie, else 0."""
    return 1.0 if a > b else (0.5 if a == b else 0.0)


def parse_probe_names(spec: str | Sequence[str] | None) -> list[str]:
    """``"all"``/None/empty → every probe; else a comma list (or list) of names from :data:`PROBES`."""
    if spec is None or spec == "" or spec == "all" or spec == ["all"]:
        return list(PROBES)
    names = [n.strip() for part in ([spec] if isinstance(spec, str) else spec) for n in part.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROBES]
    if unknown:
        raise RewardlabError(f"unknown probe(s) {', '.join(unknown)}; known: {', '.join(PROBES)}")
    return names


def _ci(values: np.ndarray, n_boot: int, seed: int) -> list | None:
    return list(bootstrap_ci(values, n=n_boot, seed=seed)) if n_boot > 0 and values.size else None


def build_pairs(
    records: Sequence[Comparison], probes: Sequence[str], seed: int = 0, pointwise: bool = True
) -> dict[str, list[ProbePair]]:
    """Each probe's pairs (judge-only probes left out for a pointwise scorer)."""
    return {name: PROBES[name](records, seed) for name in probes if not (pointwise and name in JUDGE_ONLY)}


def _cut(scorer: Any, pairs: Sequence[ProbePair]) -> list[bool] | None:
    """Per pair: is its biased variant longer than the scorer's max_length (None: no limit rewardlab can read)."""
    encoder = scorer.text_encoder()  # the declared interface (rewardlab.core.scorer)
    if encoder is None:
        return None
    return [encoder.untruncated_length(p.prompt, p.biased) > encoder.spec.max_length for p in pairs]


def bias_profile(
    scorer: Any,
    records: Sequence[Comparison],
    probes: Sequence[str] | str | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    batch_size: int = 32,
    keep_pairs: bool = True,
) -> dict:
    """``{"probes": {name: summary}, "pairs": {name: [per-pair rows]}, "skipped": {name: why}}`` (see the
    module docstring for the summary fields; ``keep_pairs=False`` leaves the per-pair rows out)."""
    names = parse_probe_names(probes)
    pointwise = scorer.capabilities.pointwise
    built = build_pairs(list(records), names, seed, pointwise)
    skipped = {
        n: "judges only (a pointwise reward model sees one response at a time)"
        for n in names
        if pointwise and n in JUDGE_ONLY
    }
    batch: list[Comparison] = []
    layout: dict[str, tuple[int, int, int]] = {}  # probe -> (start, n pairs, n controls)
    for name, pairs in built.items():
        if not pairs:
            skipped[name] = "no usable records (none with a strict preference, or only one prompt)"
            continue
        start = len(batch)
        if name == "position":
            batch += [p.comparison() for p in pairs]
            batch += [
                Comparison(p.prompt, (p.biased, p.reference), chosen=1, source=p.probe, id=f"position:{p.key}:BA")
                for p in pairs
            ]
            layout[name] = (start, len(pairs), 0)
            continue
        controls = [p.control() for p in pairs]
        batch += [p.comparison() for p in pairs]
        batch += [c for c in controls if c is not None]
        layout[name] = (start, len(pairs), sum(c is not None for c in controls))
    scores = score_records(scorer, batch, batch_size) if batch else []
    out: dict[str, dict] = {}
    rows: dict[str, list[dict]] = {}
    for name, (start, n, n_ctl) in layout.items():
        pairs = built[name]
        if name == "position":
            ab, ba = scores[start : start + n], scores[start + n : start + 2 * n]
            first = [win_credit(s[0], s[1]) for s in ab] + [win_credit(s[0], s[1]) for s in ba]
            winner_ab = [win_credit(s[0], s[1]) for s in ab]  # 1: reference won in AB
            winner_ba = [win_credit(s[1], s[0]) for s in ba]  # 1: reference won in BA
            consistent = [float(a == b and a != 0.5) for a, b in zip(winner_ab, winner_ba)]
            out[name] = {
                "n": 2 * n,
                "n_pairs": n,
                "biased_preferred": float(np.mean(first)),
                "ci95": wilson_interval(sum(first), 2 * n),
                "ties": int(sum(f == 0.5 for f in first)),
                "consistency": float(np.mean(consistent)),
                "consistency_ci95": wilson_interval(sum(consistent), n),
            }
            rows[name] = [{"id": p.key, "scores_AB": list(a), "scores_BA": list(b)} for p, a, b in zip(pairs, ab, ba)]
            continue
        main = scores[start : start + n]
        ctl = iter(scores[start + n : start + n + n_ctl])
        credits = np.array([win_credit(s[1], s[0]) for s in main])
        margins = np.array([s[1] - s[0] for s in main])
        ctl_credit, shifts, prow = [], [], []
        for p, s in zip(pairs, main):
            row = {"id": p.key, "r_reference": s[0], "r_biased": s[1]}
            if p.base is not None:
                c = next(ctl)
                ctl_credit.append(win_credit(c[1], c[0]))
                shifts.append(s[1] - c[1])
                row["r_base"] = c[1]
            prow.append(row)
        summary = {
            "n": n,
            "biased_preferred": float(credits.mean()),
            "ci95": wilson_interval(float(credits.sum()), n),
            "ties": int((credits == 0.5).sum()),
            "margin": float(margins.mean()),
            "margin_ci95": _ci(margins, n_boot, seed),
            "control_rate": None,
            "control_ci95": None,
            "effect": None,
            "shift": None,
            "shift_ci95": None,
        }
        if ctl_credit:
            c = np.array(ctl_credit)
            sh = np.array(shifts)
            cut = _cut(scorer, [p for p in pairs if p.base is not None])
            if cut is not None:
                keep = ~np.array(cut, dtype=bool)
                summary.update(
                    n_cut=int(sum(cut)),
                    shift_uncut=float(sh[keep].mean()) if keep.any() else None,
                    shift_uncut_ci95=_ci(sh[keep], n_boot, seed) if keep.any() else None,
                )
            summary.update(
                control_rate=float(c.mean()),
                control_ci95=wilson_interval(float(c.sum()), c.size),
                effect=float(credits.mean() - c.mean()),
                shift=float(sh.mean()),
                shift_ci95=_ci(sh, n_boot, seed),
            )
        out[name] = summary
        rows[name] = prow
    profile = {
        "probes": out,
        "pairs": rows,
        "skipped": skipped,
        "seed": seed,
        "n_records": len(records),
        "pointwise": pointwise,
    }
    if not keep_pairs:
        del profile["pairs"]
    return profile
