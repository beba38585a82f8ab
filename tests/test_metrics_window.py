"""Windowed ``metrics.jsonl`` rows across a kill (issue 23 item 10): a row whose logging window spans the stop equals
the uninterrupted run's row after ``--resume`` (every field but the timing ones), because the open window's sums are
saved in the checkpoint (rewardlab.training.recipe.gathered_window / restored_window). Before, the resumed row counted only
the steps after the checkpoint."""

import json

from rewardlab.cli import main

TIMING = {"pairs_per_s", "tokens_per_s", "rows_per_s", "seconds"}


def _rows(path):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in path.read_text().splitlines()]


def _data(path, n=24):
    rows = [{"prompt": f"Q{i}: name a fruit", "chosen": f"apple {i}", "rejected": f"stone {i}"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _argv(tiny_llama, data, out, *extra):
    return ["train", "--data", str(data), "--backbone", tiny_llama, "--batch-size", "4", "--max-length", "32",
            "--eval-fraction", "0", "--max-steps", "8", "--log-every", "4", "--lr-schedule", "constant",
            "--warmup-ratio", "0", "--output-dir", str(out), *extra]  # fmt: skip


def test_a_window_that_spans_a_stop_is_the_uninterrupted_row(tmp_path, tiny_llama):
    data = _data(tmp_path / "d.jsonl")
    assert main(_argv(tiny_llama, data, tmp_path / "whole")) == 0
    assert main(_argv(tiny_llama, data, tmp_path / "cut", "--stop-after", "6")) == 0  # step 6: inside window 5..8
    assert main(_argv(tiny_llama, data, tmp_path / "cut", "--resume")) == 0
    whole, cut = _rows(tmp_path / "whole" / "metrics.jsonl"), _rows(tmp_path / "cut" / "metrics.jsonl")
    assert [r["step"] for r in whole if "loss" in r] == [4, 8]
    assert cut == whole


def test_regression_window_rows_survive_a_stop(tmp_path, tiny_llama):
    args = ["--objective", "regression", "--data", "embedded", "--embedded-size", "40"]
    base = lambda out, *x: ["train", *args, "--backbone", tiny_llama, "--batch-size", "4", "--max-length", "32",  # noqa: E731
                            "--max-steps", "8", "--log-every", "4", "--output-dir", str(out), *x]  # fmt: skip
    assert main(base(tmp_path / "whole")) == 0
    assert main(base(tmp_path / "cut", "--stop-after", "5")) == 0
    assert main(base(tmp_path / "cut", "--resume")) == 0
    assert _rows(tmp_path / "cut" / "metrics.jsonl") == _rows(tmp_path / "whole" / "metrics.jsonl")
