"""Fault injection: every fault stops with exit code 2, a message naming what is wrong, no traceback, and
nothing already written lost or changed (the run directory's files hashed before and after).

One class per section, as in issue 16: divergence, output directories, settings, files.
"""

import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rewardlab.cli import main


def rows(n, heavy=None):
    """``n`` TRL pairs; row ``heavy`` has a loss weight of 1e300, which is +inf in float32: its step's loss is inf."""
    fruits = "apple pear plum fig kiwi lime lemon mango".split()
    out = [
        {
            "prompt": f"Tell me about {fruits[i % 8]} #{i}",
            "chosen": f"{fruits[i % 8]} is a fruit.",
            "rejected": f"{fruits[(i + 3) % 8]} is a fruit.",
        }
        for i in range(n)
    ]
    if heavy is not None:
        out[heavy]["weight"] = 1e300
    return out


def write_jsonl(path, items):
    path.write_text("".join(json.dumps(r) + "\n" for r in items))
    return path


def snapshot(root: Path) -> dict:
    """sha256 of every file under ``root`` (tensorboard event files excluded: each start adds one)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "tensorboard" not in p.parts
    }


def unchanged(before: dict, after: dict) -> bool:
    """Nothing that existed was lost or changed (new files may appear)."""
    return all(after.get(k) == v for k, v in before.items())


def run_cli(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# ---- 1. divergence ------------------------------------------------------------------------------
def _train_args(tiny_llama, data, out, *extra):
    return [
        "train",
        "--data",
        str(data),
        "--backbone",
        tiny_llama,
        "--batch-size",
        "4",
        "--max-length",
        "48",
        "--eval-fraction",
        "0",
        "--log-every",
        "1",
        "--save-every",
        "1",
        "--keep-checkpoints",
        "2",
        "--lr-schedule",
        "constant",
        "--warmup-ratio",
        "0",
        "--output-dir",
        str(out),
        *extra,
    ]


def test_nonfinite_loss_stops_at_its_step_keeps_good_checkpoints_and_skip_continues(tmp_path, tiny_llama, capsys):
    from rewardlab.training.samplers import random_plan

    heavy = random_plan(24, 4, 1, 0, 0)[3][0]  # a row of the 4th step (seed 0, epoch 0)
    data = write_jsonl(tmp_path / "d.jsonl", rows(24, heavy=heavy))
    out = tmp_path / "run"
    code, err = run_cli(capsys, _train_args(tiny_llama, data, out))
    assert code == 2 and "diverged at step" in err and "non-finite loss inf" in err
    step = int(err.split("diverged at step ")[1].split(":")[0])
    assert step == 4
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("step-*"))
    # the good checkpoints before the bad step are there, none after it; no model was written
    assert ckpts == ["step-00000002", "step-00000003"]
    assert not (out / "model").exists()
    assert f"the last good checkpoint {out / 'checkpoints' / ckpts[-1]} is kept" in err
    steps = [json.loads(line)["step"] for line in open(out / "metrics.jsonl")]
    assert steps == list(range(1, step))  # no row for the bad step
    # resuming without --skip-nonfinite hits the same step again, and changes nothing already written
    before = snapshot(out)
    code, err = run_cli(capsys, _train_args(tiny_llama, data, out, "--resume"))
    assert code == 2 and f"diverged at step {step}:" in err
    assert unchanged(before, snapshot(out))
    # with --skip-nonfinite 1 the bad step's update is skipped, said so, and the run finishes with finite weights
    code, err = run_cli(capsys, _train_args(tiny_llama, data, out, "--resume", "--skip-nonfinite", "1"))
    assert code == 0 and f"step {step}: non-finite loss inf: update skipped (1 of at most 1" in err
    from safetensors.torch import load_file

    weights = load_file(str(out / "model" / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())
    for line in open(out / "metrics.jsonl"):
        assert "NaN" not in line and "Infinity" not in line


def test_checkpoint_of_nonfinite_weights_is_refused_and_the_good_ones_kept(tmp_path, tiny_llama, capsys, monkeypatch):
    """A weight turns Inf after step 2's update (finite loss and gradient: the guard let it through). The checkpoint
    of step 2 is refused (every process checks, so none waits on another), step 1's is kept, exit 2, no traceback."""
    import rewardlab.training.train as train_module

    real = train_module.train_step

    def poison_after_step_2(run, step, window):
        result = real(run, step, window)
        if step == 1:
            with torch.no_grad():
                next(run.rm.model.parameters()).view(-1)[0] = float("inf")
        return result

    monkeypatch.setattr(train_module, "train_step", poison_after_step_2)
    data = write_jsonl(tmp_path / "d.jsonl", rows(24))
    out = tmp_path / "run"
    code, err = run_cli(capsys, _train_args(tiny_llama, data, out))
    assert code == 2 and "step 2: refusing to write checkpoint" in err and "non-finite (NaN/Inf) weights" in err
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-00000001"]
    assert not (out / "model").exists()


def _nan_model(tmp_path, tiny_llama) -> Path:
    """A saved model whose head weight is NaN (written around RewardModel.save, which refuses it), with its
    rewardlab.json hashes recorded for the NaN weights."""
    from safetensors.torch import load_file, save_file

    from rewardlab.models.reward_model import RewardModel

    d = tmp_path / "nanmodel"
    RewardModel.from_backbone(tiny_llama, max_length=48).save(d)
    state = load_file(str(d / "model.safetensors"))
    head = next(k for k in state if k.startswith("score") or "classifier" in k)
    state[head] = torch.full_like(state[head], math.nan)
    save_file(state, str(d / "model.safetensors"), metadata={"format": "pt"})
    from rewardlab.models.reward_model import write_spec

    write_spec(d, json.loads((d / "rewardlab.json").read_text()))  # hashes as if saved so: only the NaN is wrong
    return d


@pytest.mark.parametrize("command", ["score", "eval", "serve"])
def test_a_model_with_nan_weights_is_refused_at_load(tmp_path, tiny_llama, capsys, command):
    model = _nan_model(tmp_path, tiny_llama)
    data = write_jsonl(tmp_path / "d.jsonl", rows(4))
    argv = {
        "score": ["score", "--model", str(model), "--data", str(data), "--output", str(tmp_path / "s.jsonl")],
        "eval": ["eval", "--model", str(model), "--data", str(data), "--output-dir", str(tmp_path / "ev")],
        "serve": ["serve", "--model", str(model), "--port", "0"],
    }[command]
    before = snapshot(tmp_path)
    code, err = run_cli(capsys, argv)
    assert code == 2 and "non-finite" in err and str(model) in err and "score" in err
    assert not (tmp_path / "s.jsonl").exists() and not (tmp_path / "ev").exists()
    assert unchanged(before, snapshot(tmp_path))


def test_nonfinite_weights_are_never_saved(tmp_path, tiny_llama):
    from rewardlab.core.finite import NonFiniteError
    from rewardlab.models.reward_model import RewardModel

    rm = RewardModel.from_backbone(tiny_llama, max_length=48)
    with torch.no_grad():
        next(rm.model.parameters()).view(-1)[0] = math.inf
    with pytest.raises(NonFiniteError, match="refusing to write"):
        rm.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_server_answers_an_error_not_null_and_health_turns_unhealthy(tmp_path, tiny_llama):
    from fastapi.testclient import TestClient

    from rewardlab.models.reward_model import RewardModel
    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    rm = RewardModel.from_backbone(tiny_llama, max_length=48)
    app = create_app(ServeConfig(model="", max_wait_ms=0), rm)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        ok = client.post("/v1/score", json={"prompt": "hi", "responses": ["hello"]})
        assert ok.status_code == 200 and math.isfinite(ok.json()["rewards"][0])
        with torch.no_grad():  # the weights break while serving
            for p in rm.model.parameters():
                p.fill_(math.nan)
        bad = client.post("/v1/score", json={"prompt": "hi", "responses": ["hello"]})
        assert bad.status_code == 500 and "non-finite reward" in bad.json()["detail"]
        health = client.get("/health")
        assert health.status_code == 503 and "non-finite" in health.json()["detail"]


def test_cli_fault_in_a_real_process_has_no_traceback(tmp_path):
    """The same contract seen from outside: exit code 2 and one line on stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "rewardlab.cli", "score", "--batch-size", "-2", "--model", "m", "--data", "d"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--batch-size: should be greater than or equal to 1, got -2" in proc.stderr


# ---- 3. output directories ----------------------------------------------------------------------
def test_a_second_train_into_a_finished_run_is_refused_and_changes_nothing(tmp_path, tiny_llama, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", rows(16))
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(data),
        "--backbone",
        tiny_llama,
        "--batch-size",
        "4",
        "--max-length",
        "48",
        "--max-steps",
        "2",
        "--log-every",
        "1",
        "--output-dir",
        str(out),
    ]
    assert run_cli(capsys, args)[0] == 0
    before = snapshot(out)
    code, err = run_cli(capsys, args + ["--lr", "0.5"])
    assert code == 2 and f"--output-dir {out} is not empty" in err and "--resume" in err and "--overwrite" in err
    assert snapshot(out) == before
    # --overwrite replaces the run: metrics.jsonl holds one run, not two
    assert run_cli(capsys, args + ["--lr", "0.5", "--overwrite"])[0] == 0
    steps = [json.loads(line)["step"] for line in open(out / "metrics.jsonl")]
    assert steps == [1, 2, 2]  # two train rows and the final eval row, once
    assert json.loads((out / "train_summary.json").read_text())["config"]["lr"] == 0.5


def test_resume_from_a_moved_directory_spelt_relatively_has_no_duplicated_steps(
    tmp_path, tiny_llama, capsys, monkeypatch
):
    data = write_jsonl(tmp_path / "d.jsonl", rows(16))
    common = [
        "--data",
        str(data),
        "--backbone",
        tiny_llama,
        "--batch-size",
        "4",
        "--max-length",
        "48",
        "--max-steps",
        "4",
        "--log-every",
        "1",
        "--save-every",
        "2",
    ]
    # as if killed after logging step 3 but before its checkpoint: the newest checkpoint is step 2, so step 3
    # runs and is logged again after the resume
    assert run_cli(capsys, ["train", *common, "--output-dir", str(tmp_path / "a"), "--stop-after", "3"])[0] == 0
    shutil.rmtree(tmp_path / "a" / "checkpoints" / "step-00000003")
    (tmp_path / "a").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, ["train", *common, "--output-dir", "./moved", "--resume"])
    assert code == 0 and "resumed from" in err and "step 2" in err
    steps = [
        json.loads(line)["step"] for line in open(tmp_path / "moved" / "metrics.jsonl") if "loss" in json.loads(line)
    ]
    assert steps == [1, 2, 3, 4]


def test_score_and_eval_outputs_are_not_overwritten_silently(tmp_path, tiny_llama, capsys):
    from rewardlab.models.reward_model import RewardModel

    model = tmp_path / "m"
    RewardModel.from_backbone(tiny_llama, max_length=48).save(model)
    data = write_jsonl(tmp_path / "d.jsonl", rows(4))
    scores = tmp_path / "s.jsonl"
    scores.write_text("precious\n")
    code, err = run_cli(capsys, ["score", "--model", str(model), "--data", str(data), "--output", str(scores)])
    assert code == 2 and f"--output {scores} exists" in err and scores.read_text() == "precious\n"
    assert (
        run_cli(capsys, ["score", "--model", str(model), "--data", str(data), "--output", str(scores), "--overwrite"])[
            0
        ]
        == 0
    )
    assert len(scores.read_text().splitlines()) == 4
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "notes.txt").write_text("mine")
    before = snapshot(ev)
    code, err = run_cli(capsys, ["eval", "--model", str(model), "--data", str(data), "--output-dir", str(ev)])
    assert code == 2 and f"--output-dir {ev} is not empty (notes.txt)" in err and snapshot(ev) == before
    assert (
        run_cli(capsys, ["eval", "--model", str(model), "--data", str(data), "--output-dir", str(ev), "--overwrite"])[0]
        == 0
    )
    assert (ev / "notes.txt").read_text() == "mine" and (ev / "report.json").exists()


def test_every_json_file_a_run_writes_is_strict_json(tmp_path, tiny_llama, capsys):
    """No NaN/Infinity tokens: each file parses with a reader that refuses them."""
    data = write_jsonl(tmp_path / "d.jsonl", rows(16))
    out = tmp_path / "run"
    assert (
        run_cli(
            capsys,
            [
                "train",
                "--data",
                str(data),
                "--backbone",
                tiny_llama,
                "--batch-size",
                "4",
                "--max-length",
                "48",
                "--max-steps",
                "2",
                "--log-every",
                "1",
                "--save-every",
                "1",
                "--output-dir",
                str(out),
            ],
        )[0]
        == 0
    )

    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")

    files = [p for p in out.rglob("*") if p.suffix in (".json", ".jsonl")]
    assert len(files) >= 4
    for p in files:
        for line in p.read_text().splitlines() if p.suffix == ".jsonl" else [p.read_text()]:
            json.loads(line, parse_constant=refuse)


def test_strict_json_turns_undefined_statistics_into_null():
    import numpy as np

    from rewardlab.core.jsonstrict import dumps_strict

    assert (
        dumps_strict({"a": math.nan, "b": [1.5, math.inf, np.float32("nan")], "c": np.float64(2.0)})
        == '{"a": null, "b": [1.5, null, null], "c": 2.0}'
    )


# ---- 5. files -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("empty.jsonl", b"", "no rows: the input is empty"),
        ("trunc.jsonl.gz", None, "cannot read the file after"),
        ("notgz.jsonl.gz", b'{"prompt": "p"}\n', "cannot read the file after 0 line(s)"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("surrogate.jsonl", b'{"prompt": "p", "chosen": "a\\ud800", "rejected": "b"}\n', "lone UTF-16 surrogate"),
        ("latin1.jsonl", b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n', "not valid UTF-8"),
        (
            "shifted.csv",
            b"prompt,chosen,rejected\nhi,a,b\nhello, world,a,b\n",
            "line 3: 4 fields, but the header has 3",
        ),
    ],
)
def test_broken_input_files_are_errors_naming_file_and_line(tmp_path, tiny_llama, capsys, name, content, needle):
    path = tmp_path / name
    if content is None:  # a gzip stream cut in the middle
        import gzip

        full = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in rows(200)))
        content = full[: len(full) // 2]
    path.write_bytes(content)
    out = tmp_path / "run"
    code, err = run_cli(capsys, ["train", "--data", str(path), "--backbone", tiny_llama, "--output-dir", str(out)])
    assert code == 2 and str(path) in err and needle in err, err
    assert not out.exists() or not any(p for p in out.rglob("*") if p.is_file())


def test_score_of_an_empty_file_is_an_error_not_an_empty_output(tmp_path, tiny_llama, capsys):
    from rewardlab.models.reward_model import RewardModel

    RewardModel.from_backbone(tiny_llama, max_length=48).save(tmp_path / "m")
    (tmp_path / "e.jsonl").write_text("\n\n")
    code, err = run_cli(
        capsys,
        [
            "score",
            "--model",
            str(tmp_path / "m"),
            "--data",
            str(tmp_path / "e.jsonl"),
            "--output",
            str(tmp_path / "s.jsonl"),
        ],
    )
    assert code == 2 and "e.jsonl: no rows: the input is empty" in err and not (tmp_path / "s.jsonl").exists()


def test_a_list_response_in_prompt_response_rows_names_the_line(tmp_path, tiny_llama, capsys):
    from rewardlab.models.reward_model import RewardModel

    RewardModel.from_backbone(tiny_llama, max_length=48).save(tmp_path / "m")
    write_jsonl(tmp_path / "r.jsonl", [{"prompt": "p", "response": "ok"}, {"prompt": "p", "response": ["a", "b"]}])
    code, err = run_cli(
        capsys,
        [
            "score",
            "--model",
            str(tmp_path / "m"),
            "--data",
            str(tmp_path / "r.jsonl"),
            "--output",
            str(tmp_path / "s.jsonl"),
        ],
    )
    assert code == 2 and "r.jsonl, line 2, field 'response'" in err


def test_csv_quoted_commas_and_newlines_and_gzip(tmp_path):
    import gzip

    from rewardlab.data import load_comparisons

    text = 'prompt,chosen,rejected\n"Hi, there","line one\nline two","b"\n'
    (tmp_path / "q.csv.gz").write_bytes(gzip.compress(text.encode()))
    rec = load_comparisons(str(tmp_path / "q.csv.gz")).records
    assert len(rec) == 1 and rec[0].prompt == "Hi, there" and rec[0].responses[0] == "line one\nline two"


def test_a_missing_local_looking_path_fails_at_once(tmp_path, monkeypatch):
    """``data/train`` (no extension) where ``data/`` is here is a local path, not a hub id: no hub retries."""
    import time

    from rewardlab.core.errors import DataError
    from rewardlab.data import load_comparisons
    from rewardlab.data.readers import looks_local

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for source in ("data/train", "a/b/c", "mydata.txt", "./x", "C:\\data\\x"):
        assert looks_local(source), source
    assert not looks_local("Anthropic/hh-rlhf") and not looks_local("org/name.v2")
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="data/train: no such file or directory"):
        load_comparisons("data/train")
    assert time.perf_counter() - t0 < 1.0


# ---- 2. the model contract ----------------------------------------------------------------------
@pytest.fixture
def saved_model(tmp_path, tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    d = tmp_path / "m"
    RewardModel.from_backbone(tiny_llama, max_length=48).save(d)
    return d


def _score_argv(model, tmp_path, *extra):
    data = tmp_path / "d.jsonl"
    if not data.exists():
        write_jsonl(data, rows(4))
    return ["score", "--model", str(model), "--data", str(data), "--output", str(tmp_path / "s.jsonl"), *extra]


@pytest.mark.parametrize(
    "tamper, needle",
    [
        (lambda d: (d / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        (
            lambda d: (d / "tokenizer_config.json").write_text(
                (d / "tokenizer_config.json").read_text().replace('"model_max_length"', '"model_max_length_"')
            ),
            "tokenizer_config.json was modified",
        ),
        (
            lambda d: (d / "config.json").write_text((d / "config.json").read_text().replace("}", ', "x": 1}', 1)),
            "config.json was modified",
        ),
        (lambda d: (d / "chat_template.jinja").write_text("{{ messages }}"), "chat_template.jinja was"),
        (lambda d: (d / "vocab.txt").write_text("[UNK]\n"), "vocab.txt was added"),
    ],
)
def test_a_tampered_model_directory_is_refused_naming_the_file(saved_model, tmp_path, capsys, tamper, needle):
    tamper(saved_model)
    argv = _score_argv(saved_model, tmp_path)
    before = snapshot(tmp_path)
    code, err = run_cli(capsys, argv)
    assert code == 2 and needle in err and "--trust-modified" in err
    assert snapshot(tmp_path) == before


def test_trust_modified_loads_and_is_recorded_in_the_report(saved_model, tmp_path, capsys):
    (saved_model / "generation_config.json").write_text("{}")  # not a scoring file: not checked
    (saved_model / "vocab.txt").write_text("[UNK]\n")
    code, err = run_cli(capsys, _score_argv(saved_model, tmp_path, "--trust-modified"))
    assert code == 0 and "warning" in err and "vocab.txt was added" in err
    ev = tmp_path / "ev"
    assert (
        run_cli(
            capsys,
            [
                "eval",
                "--model",
                str(saved_model),
                "--data",
                str(tmp_path / "d.jsonl"),
                "--output-dir",
                str(ev),
                "--trust-modified",
            ],
        )[0]
        == 0
    )
    report = json.loads((ev / "report.json").read_text())
    model_info = next(iter(report["results"].values()))["model"]
    assert model_info["trust_modified"] == ["vocab.txt was added (not recorded in rewardlab.json)"]
    (saved_model / "tokenizer.json").unlink()  # even trusted, a model without its tokenizer is an error
    code, err = run_cli(capsys, _score_argv(saved_model, tmp_path, "--trust-modified", "--overwrite"))
    assert code == 2 and "cannot load the tokenizer" in err


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("max_length", 0, "rewardlab.json: max_length: should be greater than or equal to 1, got 0"),
        ("truncation", "middle", "truncation must be prompt_left or right, not 'middle'"),
        ("padding_side", "middle", "padding_side must be left or right, not 'middle'"),
    ],
)
def test_a_rewardlab_json_value_the_trainer_refuses_is_refused_at_load(
    saved_model, tmp_path, capsys, key, value, needle
):
    spec = json.loads((saved_model / "rewardlab.json").read_text())
    spec[key] = value
    (saved_model / "rewardlab.json").write_text(json.dumps(spec))
    code, err = run_cli(capsys, _score_argv(saved_model, tmp_path))  # the seal names the edited field first
    assert code == 2 and f"field '{key}' was modified" in err and "--trust-modified" in err, err
    code, err = run_cli(capsys, _score_argv(saved_model, tmp_path, "--trust-modified"))  # loaded: its value checked
    assert code == 2 and needle in err, err
    assert "rewardlab.json" in err


def test_the_trainer_refuses_the_same_values_with_the_same_message(capsys):
    code, err = run_cli(capsys, ["train", "--max-length", "0"])
    assert code == 2 and "max_length" not in err.split(":")[0] and "should be greater than or equal to 1, got 0" in err
    code, err = run_cli(capsys, ["train", "--truncation", "middle"])
    assert code == 2 and "truncation must be prompt_left or right, not 'middle'" in err


# ---- 6. checkpoints and disks -------------------------------------------------------------------
def _truncate(p: Path):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


CORRUPTIONS = {
    "truncated weights": lambda ck: _truncate(ck / "model.safetensors"),
    "missing weights": lambda ck: (ck / "model.safetensors").unlink(),
    "missing optimizer state": lambda ck: (ck / "trainer.pt").unlink(),
    "truncated optimizer state": lambda ck: _truncate(ck / "trainer.pt"),
    "garbage state.json": lambda ck: (ck / "state.json").write_text("{not json"),
    "missing state.json": lambda ck: (ck / "state.json").unlink(),
    "empty directory": lambda ck: [p.unlink() for p in ck.iterdir()],
}


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, tiny_llama):
    """A run stopped after step 3 with checkpoints at steps 2 and 3, and its arguments."""
    root = tmp_path_factory.mktemp("stopped")
    data = write_jsonl(root / "d.jsonl", rows(16))
    args = [
        "train",
        "--data",
        str(data),
        "--backbone",
        tiny_llama,
        "--batch-size",
        "4",
        "--max-length",
        "48",
        "--max-steps",
        "4",
        "--log-every",
        "1",
        "--save-every",
        "2",
        "--keep-checkpoints",
        "3",
    ]
    assert main([*args, "--output-dir", str(root / "run"), "--stop-after", "3"]) == 0
    assert sorted(p.name for p in (root / "run" / "checkpoints").iterdir()) == ["step-00000002", "step-00000003"]
    return root / "run", args


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupt_newest_checkpoint_falls_back_to_the_newest_intact_one(stopped_run, tmp_path, capsys, kind):
    src, args = stopped_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    newest = run / "checkpoints" / "step-00000003"
    CORRUPTIONS[kind](newest)
    intact = snapshot(run / "checkpoints" / "step-00000002")
    code, err = run_cli(capsys, [*args, "--output-dir", str(run), "--resume"])
    assert code == 0, err
    assert f"checkpoint {newest} is unreadable" in err and "resumed from" in err and "(step 2)" in err
    assert snapshot(run / "checkpoints" / "step-00000002") == intact
    steps = [json.loads(line)["step"] for line in open(run / "metrics.jsonl") if "loss" in json.loads(line)]
    assert steps == [1, 2, 3, 4]


def test_no_intact_checkpoint_is_an_error(stopped_run, tmp_path, capsys):
    src, args = stopped_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    for ck in (run / "checkpoints").iterdir():
        (ck / "trainer.pt").unlink()
    before = snapshot(run)
    code, err = run_cli(capsys, [*args, "--output-dir", str(run), "--resume"])
    assert code == 2 and "none of the 2 checkpoints" in err and "--overwrite" in err
    assert snapshot(run) == before


def test_leftover_temporary_directories_are_removed_at_the_next_start(stopped_run, tmp_path, capsys):
    src, args = stopped_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    (run / ".model.tmp99999").mkdir()
    (run / ".model.tmp99999" / "model.safetensors").write_bytes(b"x" * 1000)
    (run / "checkpoints" / ".tmp-step-00000004").mkdir()
    code, err = run_cli(capsys, [*args, "--output-dir", str(run), "--resume"])
    assert code == 0 and "removed 2 temporary" in err
    assert not (run / ".model.tmp99999").exists() and not (run / "checkpoints" / ".tmp-step-00000004").exists()


def test_an_unwritable_output_dir_is_reported_before_training(tmp_path, tiny_llama, capsys):
    import os

    if os.geteuid() == 0:  # root writes anywhere: use a path under a file instead
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "run"
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        out = tmp_path / "ro" / "run"
    data = write_jsonl(tmp_path / "d.jsonl", rows(8))
    code, err = run_cli(capsys, ["train", "--data", str(data), "--backbone", tiny_llama, "--output-dir", str(out)])
    assert code == 2 and str(out) in err and ("not writable" in err or "is a file" in err or "Not a directory" in err)


def test_too_little_free_space_is_reported_before_training(tmp_path, tiny_llama, capsys, monkeypatch):
    import shutil as sh

    real = sh.disk_usage
    monkeypatch.setattr(sh, "disk_usage", lambda p: real(p)._replace(free=1000))
    data = write_jsonl(tmp_path / "d.jsonl", rows(8))
    code, err = run_cli(
        capsys,
        [
            "train",
            "--data",
            str(data),
            "--backbone",
            tiny_llama,
            "--output-dir",
            str(tmp_path / "run"),
            "--save-every",
            "1",
        ],
    )
    assert code == 2 and "only 0 MiB free" in err and "checkpoints" in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


# ---- 7. server ------------------------------------------------------------------------------------
class Served:
    """A real uvicorn server on a free port in a thread (as tests/test_serve.py)."""

    def __init__(self, cfg, rm):
        import socket
        import threading
        import time

        from rewardlab.serve.app import make_server

        self.server = make_server(cfg, rm)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.01)

    def stop(self, timeout=60) -> float:
        import time

        t0 = time.monotonic()
        self.server.should_exit = True
        self.thread.join(timeout)
        assert not self.thread.is_alive()
        return time.monotonic() - t0


@pytest.fixture(scope="module")
def tiny_rm(tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    return RewardModel.from_backbone(tiny_llama, max_length=48)


def test_token_guards_docs_and_schema_and_answers_401_before_reading_the_body(tiny_rm):
    import httpx

    from rewardlab.serve.config import ServeConfig

    run = Served(ServeConfig(token="s3cret", max_wait_ms=0), tiny_rm)
    try:
        for path in ("/docs", "/openapi.json", "/metrics"):
            r = httpx.get(run.url + path)
            assert r.status_code == 401 and "bearer token" in r.json()["detail"], path
        r = httpx.post(run.url + "/v1/score", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 401 and r.json()["detail"].startswith("missing or wrong bearer token")
        ok = {"Authorization": "Bearer s3cret"}
        assert httpx.get(run.url + "/openapi.json", headers=ok).status_code == 200
        assert httpx.get(run.url + "/health").status_code == 200  # health stays open for probes
        r = httpx.post(
            run.url + "/v1/score",
            headers={**ok, "content-type": "application/json"},
            content=b'{"prompt": "hi", "responses": ["a\\ud800"]}',
        )
        assert r.status_code == 400 and "lone UTF-16 surrogate" in r.json()["detail"]
    finally:
        run.stop()


def test_idle_and_half_sent_connections_do_not_hold_the_shutdown(tiny_rm):
    """60 idle keep-alive connections and 5 half-sent bodies: the half-sent ones get a JSON 408 after the body
    timeout, and the shutdown ends within its grace period (2 s here), not 30 s."""
    import socket
    import time

    from rewardlab.serve.config import ServeConfig

    run = Served(ServeConfig(max_wait_ms=0, shutdown_timeout=2.0, body_timeout=1.0, keep_alive_timeout=1.0), tiny_rm)
    idle = [socket.create_connection(("127.0.0.1", run.port)) for _ in range(60)]
    half = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", run.port))
        s.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
            b'{"prompt": "hi",'
        )
        half.append(s)
    time.sleep(1.5)
    answers = []
    for s in half:
        s.settimeout(5)
        answers.append(s.recv(4096))
    assert all(a.startswith(b"HTTP/1.1 408") and b'"detail"' in a for a in answers), answers[:1]
    took = run.stop()
    assert took < 2.0 + 1.0, f"shutdown took {took:.1f} s"
    for s in idle + half:
        s.close()


def test_train_judge_and_export_refuse_an_existing_output(tmp_path, saved_model, capsys):
    out = tmp_path / "judge-run"
    out.mkdir()
    (out / "report.md").write_text("an earlier run")
    write_jsonl(tmp_path / "d.jsonl", rows(4))  # the data exists: the output directory is what is refused
    before = snapshot(out)
    code, err = run_cli(capsys, ["train-judge", "--data", str(tmp_path / "d.jsonl"), "--output-dir", str(out)])
    assert code == 2 and f"--output-dir {out} is not empty (report.md)" in err and snapshot(out) == before
    code, err = run_cli(capsys, ["export", "--model", str(saved_model), "--output", str(out)])
    assert code == 2 and f"{out} exists" in err and snapshot(out) == before


def test_probe_refuses_an_existing_output_dir(tmp_path, saved_model, capsys):
    out = tmp_path / "probe-run"
    out.mkdir()
    (out / "probes.md").write_text("an earlier profile")
    before = snapshot(out)
    data = write_jsonl(tmp_path / "d.jsonl", rows(4))
    code, err = run_cli(capsys, ["probe", "--model", str(saved_model), "--data", str(data), "--output-dir", str(out)])
    assert code == 2 and f"--output-dir {out} is not empty (probes.md)" in err and snapshot(out) == before


def test_multiobjective_train_refuses_a_finished_run_dir(tmp_path, tiny_llama, capsys):
    out = tmp_path / "mo-run"
    out.mkdir()
    (out / "train_summary.json").write_text("{}")
    before = snapshot(out)
    data = write_jsonl(
        tmp_path / "hs.jsonl",
        [
            {
                "prompt": f"q{i}",
                "response": f"a{i}",
                "helpfulness": i % 5,
                "correctness": 2,
                "coherence": 3,
                "complexity": 1,
                "verbosity": 2,
            }
            for i in range(8)
        ],
    )
    code, err = run_cli(
        capsys,
        [
            "train",
            "--objective",
            "regression",
            "--stage1",
            "ridge",
            "--backbone",
            tiny_llama,
            "--data",
            str(data),
            "--output-dir",
            str(out),
        ],
    )
    assert code == 2 and f"--output-dir {out} is not empty (train_summary.json)" in err and snapshot(out) == before
