"""Grouped horizontal bars with interval whiskers, the one bar chart the reports draw (the eval report's
per-subset figure, the probe report's bias profile). Takes a matplotlib ``Axes``; imports no matplotlib itself."""

from __future__ import annotations

import numpy as np


def grouped_barh(ax, labels, columns, values, palette) -> None:
    """One row per label, one bar per column at ``values[column][label] = (value, low, high)`` with whiskers to the
    interval; a missing value (or ``None``) draws no bar and no whisker. Sets the y ticks to the labels, top first.
    Shared by the eval report's per-subset figure and the probe report's bias profile."""
    y = np.arange(len(labels))
    bar_h = 0.8 / max(len(columns), 1)
    for k, column in enumerate(columns):
        vals, lo, hi = [], [], []
        for label in labels:
            v, low, high = values[column].get(label, (None, None, None))
            vals.append(np.nan if v is None else v)
            lo.append(0.0 if v is None or low is None else max(v - low, 0.0))
            hi.append(0.0 if v is None or high is None else max(high - v, 0.0))
        ax.barh(
            y - 0.4 + bar_h * (k + 0.5),
            vals,
            height=bar_h * 0.92,
            xerr=[lo, hi],
            color=palette[k % len(palette)],
            error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "#333"},
            label=column,
        )
    ax.set_yticks(y)
    ax.invert_yaxis()
