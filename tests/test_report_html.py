"""report.html: self-contained, with the four plots; and a headless-Chromium screenshot that is not blank."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.record import Comparison
from rewardlab.evaluation.report import example_rows, write_report
from rewardlab.metrics.summary import evaluate_scores

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ("subsets", "histograms", "reliability", "length")


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("screenshot_report", ROOT / "scripts" / "screenshot_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(n: int = 80, seed: int = 0):
    """Two 'models' on n records from three sources: a weak and a better one (reward = skill · label + noise,
    a little length bias)."""
    rng = np.random.default_rng(seed)
    records, results, examples = [], {}, {}
    for i in range(n):
        k = 3 if i % 10 == 0 else 2
        responses = tuple("word " * int(rng.integers(1, 40)) + str(j) for j in range(k))
        records.append(
            Comparison(f"prompt {i}", responses, chosen=int(rng.integers(0, k)), source=f"src{i % 3}", id=f"r{i}")
        )
    for name, skill in (("weak", 0.2), ("better", 1.5)):
        scores = [
            [float(skill * (j == r.chosen) + 0.01 * len(x) + rng.normal()) for j, x in enumerate(r.responses)]
            for r in records
        ]
        results[name] = evaluate_scores(records, scores, n_boot=100)
        examples[name] = example_rows(records, scores)
    return records, results, examples


def _pngs(html: str) -> dict[str, bytes]:
    found = re.findall(r'data-plot="([a-z]+)"><img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    return {name: base64.b64decode(data) for name, data in found}


def test_html_is_self_contained_with_all_plots(tmp_path):
    pytest.importorskip("matplotlib")
    _, results, examples = _run()
    write_report(
        tmp_path,
        results,
        "Two <models> & a plot",
        {"command": ["rewardlab", "eval"]},
        notes=["n <b>1</b>"],
        examples=examples,
    )
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    pngs = _pngs(html)
    assert set(pngs) == set(PLOTS)
    for data in pngs.values():
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from elsewhere
    assert "<link" not in html and "<script" not in html
    assert "Two &lt;models&gt; &amp; a plot" in html and "n &lt;b&gt;1&lt;/b&gt;" in html  # escaped
    assert "<th>weak</th><th>better</th>" in html  # one table, a column per model
    assert "Per-source accuracy" in html and "Provenance" in html
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| metric | weak | better |" in md


def test_html_reads_example_files_when_not_given(tmp_path):
    """write_report picks up examples-<column>.jsonl in the output directory (the quickstart's files);
    without them the per-example plots are replaced by a line saying what is missing."""
    pytest.importorskip("matplotlib")
    _, results, examples = _run(n=30)
    write_report(tmp_path / "bare", results, "t", {})
    bare = (tmp_path / "bare" / "report.html").read_text()
    assert set(_pngs(bare)) == {"subsets", "reliability"}
    assert 'data-missing-plot="histograms"' in bare and "no per-example rewards" in bare
    for name, rows in examples.items():
        (tmp_path / "files").mkdir(exist_ok=True)
        (tmp_path / "files" / f"examples-{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_report(tmp_path / "files", results, "t", {})
    assert set(_pngs((tmp_path / "files" / "report.html").read_text())) == set(PLOTS)


def test_html_without_matplotlib_still_has_the_tables(tmp_path, monkeypatch):
    _, results, examples = _run(n=20)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    write_report(tmp_path, results, "t", {}, examples=examples)
    html = (tmp_path / "report.html").read_text()
    assert "matplotlib is not installed" in html and "data:image/png" not in html and "<table>" in html


def test_screenshot_in_headless_chromium_is_not_blank(tmp_path):
    """Render the report in headless Chromium (skipped when it is not installed): the screenshot has the
    plots' colours; an empty page at the same size is detected as blank."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    shot = _screenshot_module()
    if shot.find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    _, results, examples = _run()
    write_report(tmp_path, results, "screenshot test", {}, examples=examples)
    png = shot.screenshot(tmp_path / "report.html", tmp_path / "shot.png", width=1000, height=1600, timeout=90)
    stats = shot.image_stats(png)
    assert (stats["width"], stats["height"]) == (1000, 1600)
    assert not shot.is_blank(png), stats
    (tmp_path / "empty.html").write_text("<!DOCTYPE html><html><body></body></html>")
    empty = shot.screenshot(tmp_path / "empty.html", tmp_path / "empty.png", width=1000, height=1600, timeout=90)
    assert shot.is_blank(empty)
