"""The one grouped bar chart of the reports (evaluation/bars.py): bar lengths, positions and whiskers read back from
the matplotlib artists."""

import math

import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402

from rewardlab.evaluation.bars import grouped_barh  # noqa: E402


def test_bars_whiskers_and_missing_values():
    """Two labels x two columns. Column a: x = 0.6 in [0.5, 0.9] -> whiskers 0.1 left, 0.3 right; y = 0.2 with no
    interval -> no whisker. Column b has only y = 0.7 in [0.65, 0.8]; its x bar is missing (NaN width). Bar height
    0.8 / 2 columns = 0.4, drawn at 0.92 of that; column a sits at label - 0.4 + 0.2, column b at label - 0.4 + 0.6.
    """
    ax = Figure().subplots()
    values = {"a": {"x": (0.6, 0.5, 0.9), "y": (0.2, None, None)}, "b": {"y": (0.7, 0.65, 0.8)}}
    grouped_barh(ax, ["x", "y"], ["a", "b"], values, ["red", "blue"])
    from matplotlib.container import BarContainer

    a, b = [c for c in ax.containers if isinstance(c, BarContainer)]
    widths_a = [p.get_width() for p in a.patches]
    widths_b = [p.get_width() for p in b.patches]
    assert widths_a == pytest.approx([0.6, 0.2])
    assert math.isnan(widths_b[0]) and widths_b[1] == pytest.approx(0.7)
    centres_a = [p.get_y() + p.get_height() / 2 for p in a.patches]
    centres_b = [p.get_y() + p.get_height() / 2 for p in b.patches]
    assert centres_a == pytest.approx([-0.2, 0.8]) and centres_b == pytest.approx([0.2, 1.2])
    assert a.patches[0].get_height() == pytest.approx(0.4 * 0.92)
    segs = a.errorbar.lines[2][0].get_segments()
    assert [s[0][0] for s in segs] == pytest.approx([0.5, 0.2]) and [s[1][0] for s in segs] == pytest.approx([0.9, 0.2])
    assert list(ax.get_yticks()) == [0, 1]
    assert ax.yaxis_inverted()
