"""perf/bench_train.py: the report arithmetic (fast) and an end-to-end smoke run (slow)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "perf" / "bench_train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_derived_numbers_and_table():
    bench = _bench()
    info = {
        "non_embedding_params": 1_000_000,
        "params": 2_000_000,
        "backbone": "x",
        "n_train": 10,
        "n_eval": 5,
        "n_score": 5,
        "real_tokens_per_pair": 300.0,
    }
    results = {
        "trl": {"pairs_per_s": 2.0, "tokens_per_s": 600.0, "peak_memory_gib": 1.0, "heldout_accuracy": 0.5},
        "trl-nockpt": {"pairs_per_s": 3.0, "tokens_per_s": 900.0, "peak_memory_gib": 2.0, "heldout_accuracy": 0.5},
        "rewardlab-packed": {
            "pairs_per_s": 6.0,
            "tokens_per_s": 1800.0,
            "peak_memory_gib": 1.0,
            "heldout_accuracy": 0.6,
        },
        "score-hf-loop": {"texts_per_s": 10.0, "tokens_per_s": 1000.0, "peak_memory_gib": 1.0},
        "score-packed": {"texts_per_s": 40.0, "tokens_per_s": 4000.0, "peak_memory_gib": 1.0},
        "trl-broken": {"error": "boom"},
    }
    peak = {"tflops": 0.1, "n": 2048, "dtype": "float32"}
    bench.derive(results, info, peak)
    packed = results["rewardlab-packed"]
    assert packed["useful_tflops"] == pytest.approx(6 * 1e6 * 1800 / 1e12)
    assert packed["fraction_of_peak"] == pytest.approx(packed["useful_tflops"] / 0.1)
    assert packed["speedup_vs_fastest_trl"] == pytest.approx(2.0)  # against the faster TRL run
    assert results["score-packed"]["speedup_vs_hf_loop"] == pytest.approx(4.0)
    assert results["score-packed"]["useful_tflops"] == pytest.approx(2 * 1e6 * 4000 / 1e12)
    report = {
        "config": "cpu",
        "device": "cpu",
        "date": "d",
        "command": "c",
        "data": "hh",
        "batch_size": 16,
        "max_length": 512,
        "threads": 2,
        "setup": info,
        "matmul_peak": peak,
        "results": results,
        "environment": {
            "cpu": "cpu",
            "cpu_count": 2,
            "torch_threads": 2,
            "python": "3",
            "torch": "t",
            "transformers": "t",
            "trl": "t",
        },
    }
    md = bench.markdown(report)
    assert "| rewardlab-packed | 6.00 | 1800 |" in md and "| score-packed | 40.0 |" in md and "failed: boom" in md


@pytest.mark.slow
@pytest.mark.skipif(not DATA.exists(), reason="shared hh-rlhf data absent")
def test_smoke_run_end_to_end(tmp_path):
    import subprocess

    pytest.importorskip("trl")
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "perf" / "bench_train.py"),
            "--config",
            "smoke",
            "--out",
            str(tmp_path),
            "--data",
            str(DATA),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    for name in ("rewardlab-padded", "rewardlab-packed", "trl", "score-hf-loop", "score-packed"):
        assert report["results"][name]["useful_tflops"] > 0, name
    assert report["results"]["score-packed"]["max_abs_diff_vs_hf"] < 1e-4
    assert (tmp_path / "bench.md").exists() and not (tmp_path / "work").exists()
