"""The "Bias profile" section of a report: one table (a column per model) and one plot.

Both read ``result["bias_profile"]`` (:func:`rewardlab.probes.profile.bias_profile`) of each result column;
columns without one are shown as "—". Imports nothing from :mod:`rewardlab.evaluation.report` (which imports this).
"""

from __future__ import annotations

from typing import Any

from rewardlab.evaluation.bars import grouped_barh

HEADING = "Bias profile"
TEXT = (
    "Share of probe pairs in which the model rewards the biased variant above the chosen response (ties ½), "
    'Wilson 95% interval; lower is better. "control" is the same share without the factor under test '
    "(length: the worse response as it was; filler: the same number of the response's own words instead of "
    'the polite sentences); "reward shift" is the mean r(biased) − r(control variant), bootstrap 95% interval '
    "(its sign is the direction of the preference). position (judges): share of orders in which the response "
    "shown first wins. "
    "Probe texts: rewardlab.probes.templates."
)
MISSING = "—"


def _f(x: Any) -> str:
    return MISSING if x is None else f"{float(x):.4f}"


def with_ci(value: Any, ci: Any) -> str:
    if value is None:
        return MISSING
    if not ci or any(c is None for c in ci):
        return _f(value)
    return f"{_f(value)} [{_f(ci[0])}, {_f(ci[1])}]"


def _profile(result: Any) -> dict:
    profile = result.get("bias_profile") if isinstance(result, dict) else None
    return profile.get("probes", {}) if isinstance(profile, dict) else {}


def probe_names(results: dict[str, dict]) -> list[str]:
    names: list[str] = []
    for result in results.values():
        names += [n for n in _profile(result) if n not in names]
    return names


def bias_tables(results: dict[str, dict]) -> list[dict]:
    """``[{heading, header, rows, text}]`` (empty when no column has a bias profile)."""
    names = probe_names(results)
    if not names:
        return []
    columns = list(results)
    rows = []
    for name in names:
        cells = [_profile(results[c]).get(name) for c in columns]
        label = "first shown wins" if name == "position" else "biased preferred"
        rows.append(
            [
                f"{name}: {label} (n)",
                *(MISSING if s is None else f"{with_ci(s['biased_preferred'], s['ci95'])} (n={s['n']})" for s in cells),
            ]
        )
        if any(s and s.get("control_rate") is not None for s in cells):
            rows.append(
                [
                    f"{name}: control",
                    *(with_ci(s.get("control_rate"), s.get("control_ci95")) if s else MISSING for s in cells),
                ]
            )
            rows.append(
                [
                    f"{name}: reward shift",
                    *(with_ci(s.get("shift"), s.get("shift_ci95")) if s else MISSING for s in cells),
                ]
            )
        if any(s and s.get("consistency") is not None for s in cells):
            rows.append(
                [
                    f"{name}: consistent in both orders",
                    *(with_ci(s.get("consistency"), s.get("consistency_ci95")) if s else MISSING for s in cells),
                ]
            )
    return [{"heading": HEADING, "header": ["probe", *columns], "rows": rows, "text": [TEXT]}]


PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def fig_bias_profile(results: dict[str, dict]):
    """Horizontal bars: per probe, one bar per model at its biased-preferred share, Wilson 95% whiskers;
    None when no column has a bias profile. Needs matplotlib (an optional dependency)."""
    from matplotlib.figure import Figure

    names = probe_names(results)
    if not names:
        return None
    columns = [c for c in results if _profile(results[c])]
    fig = Figure(figsize=(9, 0.45 * len(names) * max(1, len(columns)) ** 0.5 + 1.6), layout="constrained")
    ax = fig.subplots()
    values = {}
    for column in columns:
        prof = _profile(results[column])
        values[column] = {}
        for name in names:
            s = prof.get(name)
            if s is None:
                continue
            ci = s.get("ci95")
            values[column][name] = (s["biased_preferred"], *(ci if ci else (None, None)))
    grouped_barh(ax, names, columns, values, PALETTE)
    ax.set_yticklabels(names, fontsize=9)
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="#999", lw=0.8, ls="--")
    ax.set_xlabel("share of pairs where the biased variant is preferred (Wilson 95% interval)")
    ax.set_title("Bias profile")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig
