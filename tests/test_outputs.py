"""The one output claim (rewardlab.core.outputs) and the one write layer (rewardlab.core.atomic), through the commands.

Issue 23, items 1 and 7: an output never destroys what is not its own (devices, FIFOs, links out of the tree, the
command's own inputs, another model), and a full or read-only disk ends every writing command with one line naming
the path, no traceback, no temporary file left and nothing already there changed. Disk faults are injected at the
write layer every command goes through (``atomic._write_all`` / ``atomic._flush``): tests run as root here, where
permission bits do not stop a write, so the layer's handling of the errno is what is tested.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
from tests.test_faults import rows, snapshot, write_jsonl

from rewardlab.cli import main
from rewardlab.core import atomic


def run_cli(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".tmp" in p.name or ".old" in p.name]


@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_llama):
    from rewardlab.models.reward_model import RewardModel

    d = tmp_path_factory.mktemp("model") / "m"
    RewardModel.from_backbone(tiny_llama, max_length=48, seed=0).save(d)
    return d


@pytest.fixture
def data(tmp_path):
    return write_jsonl(tmp_path / "d.jsonl", rows(4))


# ---- 1. non-regular targets ---------------------------------------------------------------------------------
def _fifo(p: Path):
    os.mkfifo(p)


def _char_device(p: Path):
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null node


def _link_out(p: Path):
    outside = p.parent.parent / f"outside-{p.parent.name}.txt"
    outside.write_text("not yours\n")
    p.symlink_to(outside)


@pytest.mark.parametrize(
    "make, needle",
    [(_fifo, "FIFO"), (_char_device, "character device"), (_link_out, "symbolic link")],
    ids=["fifo", "device", "symlink-out-of-tree"],
)
def test_score_overwrite_refuses_a_target_that_is_not_a_regular_file(tmp_path, model, data, capsys, make, needle):
    """Before: the atomic rename replaced the FIFO / device node / link with a regular file, exit 0."""
    out = tmp_path / "out" / "scores.jsonl"
    out.parent.mkdir()
    make(out)
    before = os.lstat(out)
    target = out.resolve() if out.is_symlink() else None
    target_text = target.read_text() if target else None
    code, err = run_cli(
        capsys, ["score", "--model", str(model), "--data", str(data), "--output", str(out), "--overwrite"]
    )
    assert code == 2 and needle in err and str(out) in err and "--overwrite" in err or "outside" in err, err
    after = os.lstat(out)
    assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode) and after.st_ino == before.st_ino
    if target:
        assert target.read_text() == target_text


def test_a_link_inside_the_tree_is_written_through_and_stays_a_link(tmp_path, model, data, capsys):
    real = tmp_path / "scores-real.jsonl"
    real.write_text("")
    link = tmp_path / "scores.jsonl"
    link.symlink_to(real.name)
    code, _ = run_cli(
        capsys, ["score", "--model", str(model), "--data", str(data), "--output", str(link), "--overwrite"]
    )
    assert code == 0 and link.is_symlink() and len(real.read_text().splitlines()) == 4


# ---- 1. inputs and other models --------------------------------------------------------------------------------
def test_score_refuses_to_write_its_own_input(tmp_path, model, data, capsys):
    """Before: ``score --data X --output X --overwrite`` replaced the input with scores, exit 0."""
    before = data.read_bytes()
    code, err = run_cli(
        capsys, ["score", "--model", str(model), "--data", str(data), "--output", str(data), "--overwrite"]
    )
    assert code == 2 and "is the input of --data" in err
    assert data.read_bytes() == before


def test_score_refuses_an_output_that_would_change_the_model_it_reads(tmp_path, model, data, capsys):
    before = snapshot(model)
    for name in ("rewardlab.json", "tokenizer.json", "extra.safetensors"):
        code, err = run_cli(
            capsys,
            ["score", "--model", str(model), "--data", str(data), "--output", str(model / name), "--overwrite"],
        )
        assert code == 2 and "inside --model" in err, err
    assert snapshot(model) == before


def test_compose_into_a_members_directory_is_refused_and_the_member_still_loads(tmp_path, model, capsys):
    """Before: ``compose --output-dir <member> --overwrite`` replaced the member's rewardlab.json, then failed."""
    from rewardlab.models.reward_model import RewardModel

    before = snapshot(model)
    argv = ["compose", "--safety", str(model), "--helpfulness", str(model), "--output-dir", str(model), "--overwrite"]
    code, err = run_cli(capsys, argv)
    assert code == 2 and "is the input of --safety" in err
    assert snapshot(model) == before
    RewardModel.load(model)


def test_a_directory_holding_another_model_is_refused_even_with_overwrite(tmp_path, model, data, capsys):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(model, other)
    before = snapshot(other)
    code, err = run_cli(
        capsys, ["eval", "--model", str(model), "--data", str(data), "--output-dir", str(other), "--overwrite"]
    )
    assert code == 2 and "holds a model" in err
    assert snapshot(other) == before


def test_an_input_inside_the_output_directory_that_overwrite_would_remove_is_refused(tmp_path, model, capsys):
    out = tmp_path / "ev"
    out.mkdir()
    data = write_jsonl(out / "examples-m.jsonl", rows(4))  # eval --overwrite removes examples-*.jsonl
    code, err = run_cli(
        capsys, ["eval", "--model", str(model), "--data", str(data), "--output-dir", str(out), "--overwrite"]
    )
    assert code == 2 and "contains the input of --data" in err and data.exists()


def test_overwrite_refuses_to_remove_a_fifo_among_the_files_it_would_replace(tmp_path, model, data, capsys):
    out = tmp_path / "ev"
    out.mkdir()
    os.mkfifo(out / "report.json")
    code, err = run_cli(
        capsys, ["eval", "--model", str(model), "--data", str(data), "--output-dir", str(out), "--overwrite"]
    )
    assert code == 2 and "FIFO" in err and stat.S_ISFIFO(os.lstat(out / "report.json").st_mode)


# ---- 7. writability and space, up front ---------------------------------------------------------------------
def test_a_read_only_place_is_refused_before_any_work(tmp_path, model, data, capsys, monkeypatch):
    """The claim's write probe meets the file system's answer (EROFS here, injected: root writes through modes)."""
    from rewardlab.core import outputs

    real_open = os.open

    def ro(path, flags, *a):
        if ".rewardlab-write-test" in str(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *a)

    monkeypatch.setattr(outputs.os, "open", ro)
    code, err = run_cli(
        capsys, ["score", "--model", str(model), "--data", str(data), "--output", str(tmp_path / "s.jsonl")]
    )
    assert code == 2 and "not writable" in err and "Read-only file system" in err and "loading the model" not in err


def test_free_space_is_checked_up_front_for_a_file_output(tmp_path, model, data, capsys, monkeypatch):
    import shutil as sh

    from rewardlab.core.outputs import OutputClaimError, claim_output_file

    real = sh.disk_usage
    monkeypatch.setattr(sh, "disk_usage", lambda p: real(p)._replace(free=10))
    with pytest.raises(OutputClaimError, match="only 0 MiB free"):
        claim_output_file(tmp_path / "x.jsonl", overwrite=False, need_bytes=10_000)
    (tmp_path / "x.jsonl").write_bytes(b"x" * 10_000)  # replacing a file of the same size needs nothing more
    claim_output_file(tmp_path / "x.jsonl", overwrite=True, need_bytes=10_000)


# ---- 7. disk faults during the writes, every writing command ---------------------------------------------------
def inject(monkeypatch, err: int = errno.ENOSPC, where: str = ""):
    """Every write or flush of a file whose path contains ``where`` fails with ``err`` (at the one write layer)."""
    real_write, real_flush = atomic._write_all, atomic._flush

    def hit(fd):
        try:
            return where in os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return True

    def write_all(fd, data):
        if hit(fd):
            raise OSError(err, os.strerror(err))
        return real_write(fd, data)

    def flush(fd):
        if hit(fd):
            raise OSError(err, os.strerror(err))
        return real_flush(fd)

    monkeypatch.setattr(atomic, "_write_all", write_all)
    monkeypatch.setattr(atomic, "_flush", flush)


REASONS = {errno.ENOSPC: "no space left", errno.EROFS: "read-only", errno.EACCES: "permission denied"}


def _assert_clean_fault(code, err, root, before, reason="no space left"):
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("rewardlab ") and ": error: cannot write " in last and reason in last, err
    assert not leftovers(root), leftovers(root)
    after = snapshot(root)
    assert all(after.get(k) == v for k, v in before.items()), "a file that was there changed"


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_score_on_a_full_or_read_only_disk_is_one_line_and_keeps_the_old_output(
    tmp_path, model, data, capsys, monkeypatch, err
):
    """Before: a traceback after the scoring was done."""
    out = tmp_path / "s.jsonl"
    out.write_text("old\n")
    before = snapshot(tmp_path)
    inject(monkeypatch, err)
    code, msg = run_cli(
        capsys, ["score", "--model", str(model), "--data", str(data), "--output", str(out), "--overwrite"]
    )
    _assert_clean_fault(code, msg, tmp_path, before, REASONS[err])
    assert str(out) in msg and out.read_text() == "old\n"


def _commands(model: Path, data: Path, tmp: Path, tiny: str) -> dict[str, list[str]]:
    samples = write_jsonl(
        tmp / "samples.jsonl", [{"prompt": f"p{i}", "response": f"r {i} " * (i + 1)} for i in range(6)]
    )
    norm_model = tmp / "norm-model"
    import shutil

    shutil.copytree(model, norm_model)
    return {
        "eval": ["eval", "--model", str(model), "--data", str(data), "--output-dir", str(tmp / "ev"), "--n-boot", "5"],
        "probe": [
            "probe", "--model", str(model), "--data", str(data), "--output-dir", str(tmp / "pr"), "--n-boot", "5",
            "--probes", "length",
        ],
        "export": ["export", "--model", str(model), "--output", str(tmp / "exp")],
        "compose": ["compose", "--safety", str(model), "--helpfulness", str(model), "--output-dir", str(tmp / "c")],
        "normalize": ["normalize", "--model", str(norm_model), "--data", str(samples)],
        "judge": [
            "judge", "--model", tiny, "--data", str(data), "--output", str(tmp / "j.jsonl"), "--device", "cpu",
            "--limit", "2", "--max-question-tokens", "32", "--max-answer-tokens", "16",
        ],
        "train": [
            "train", "--data", str(data), "--backbone", tiny, "--max-steps", "2", "--batch-size", "2",
            "--max-length", "48", "--eval-fraction", "0", "--output-dir", str(tmp / "run"),
        ],
    }  # fmt: skip


@pytest.mark.parametrize("command", ["eval", "probe", "export", "compose", "normalize", "judge", "train"])
def test_every_writing_command_on_a_full_disk_ends_in_one_line(
    tmp_path, model, data, tiny_llama, capsys, monkeypatch, command
):
    """Before: a traceback (usually after the work was done) for every command but preference train."""
    argv = _commands(model, data, tmp_path, tiny_llama)[command]
    before = snapshot(tmp_path)
    inject(monkeypatch)
    code, err = run_cli(capsys, argv)
    _assert_clean_fault(code, err, tmp_path, before)


@pytest.mark.slow
def test_train_judge_on_a_full_disk_ends_in_one_line(tmp_path, data, tiny_llama, capsys, monkeypatch):
    argv = [
        "train-judge", "--backbone", tiny_llama, "--data", str(data), "--output-dir", str(tmp_path / "tj"),
        "--max-train", "2", "--max-eval", "2", "--eval-before", "false", "--batch-size", "2", "--device", "cpu",
        "--max-question-tokens", "32", "--max-answer-tokens", "16", "--eval-fraction", "0.5",
    ]  # fmt: skip
    before = snapshot(tmp_path)
    inject(monkeypatch)
    code, err = run_cli(capsys, argv)
    _assert_clean_fault(code, err, tmp_path, before)


@pytest.mark.parametrize("objective", ["regression", "gating"])
def test_multiobjective_training_on_a_full_disk_ends_in_one_line(tmp_path, tiny_llama, capsys, monkeypatch, objective):
    reg = tmp_path / "reg"
    base = ["train", "--data", "embedded", "--embedded-size", "30", "--eval-batch-size", "16"]
    if objective == "gating":
        assert run_cli(capsys, [*base, "--objective", "regression", "--stage1", "ridge", "--backbone", tiny_llama,
                                "--weights", "equal", "--output-dir", str(reg)])[0] == 0  # fmt: skip
        argv = [*base, "--objective", "gating", "--init-from", str(reg / "model"), "--gate-hidden", "8",
                "--gate-layers", "1", "--gate-steps", "3", "--save-every", "0", "--output-dir", str(tmp_path / "g")]  # fmt: skip
    else:
        argv = [*base, "--objective", "regression", "--stage1", "ridge", "--backbone", tiny_llama, "--weights",
                "equal", "--output-dir", str(reg)]  # fmt: skip
    before = snapshot(tmp_path)
    inject(monkeypatch)
    code, err = run_cli(capsys, argv)
    _assert_clean_fault(code, err, tmp_path, before)


def _train_argv(tiny, data, out, *extra):
    return [
        "train", "--data", str(data), "--backbone", tiny, "--batch-size", "2", "--max-length", "48",
        "--eval-fraction", "0", "--save-every", "1", "--keep-checkpoints", "2", "--max-steps", "4",
        "--lr-schedule", "constant", "--warmup-ratio", "0", "--output-dir", str(out), *extra,
    ]  # fmt: skip


def test_a_full_disk_at_a_checkpoint_or_the_final_save_leaves_no_temporary_directory(
    tmp_path, data, tiny_llama, capsys, monkeypatch
):
    """Before: ``.model.tmp<pid>`` (final save) or ``checkpoints/.tmp-step-N`` stayed behind, with a traceback. The
    checkpoints already written stay, and --resume continues from them once the disk has room."""
    run = tmp_path / "run"
    assert run_cli(capsys, _train_argv(tiny_llama, data, run, "--stop-after", "2"))[0] == 0
    before = snapshot(run)
    with monkeypatch.context() as m:
        inject(m, where="step-00000003")  # the next checkpoint cannot be written
        code, err = run_cli(capsys, _train_argv(tiny_llama, data, run, "--resume"))
    assert code == 2 and "cannot write" in err and "step-00000003" in err
    assert not leftovers(run) and all(snapshot(run).get(k) == v for k, v in before.items() if "metrics" not in k)
    with monkeypatch.context() as m:
        inject(m, where=".model.tmp")  # the final model cannot be written
        code, err = run_cli(capsys, _train_argv(tiny_llama, data, run, "--resume"))
    assert code == 2 and "cannot write" in err and str(run / "model") in err
    assert not leftovers(run) and not (run / "model").exists() and (run / "checkpoints" / "step-00000003").is_dir()
    code, err = run_cli(capsys, _train_argv(tiny_llama, data, run, "--resume"))
    assert code == 0 and (run / "model" / "rewardlab.json").is_file(), err


def test_resume_after_freeing_space_counts_its_own_checkpoints_as_present(
    tmp_path, data, tiny_llama, capsys, monkeypatch
):
    """Before: the estimate asked for room for every checkpoint again, so --resume was refused though the disk had
    room for what was still to write. Worked numbers: need = 1.1·(w + 3c) for the model (w) and keep+1 = 3
    checkpoints (c each); two checkpoints (≈ 2c) are on disk, so 1.1·w + 1.5·c free is enough (and less than need)."""
    import shutil as sh

    run = tmp_path / "run"
    assert run_cli(capsys, _train_argv(tiny_llama, data, run, "--stop-after", "2"))[0] == 0
    ckpt = run / "checkpoints" / "step-00000002"
    w = (ckpt / "model.safetensors").stat().st_size
    c = sum(p.stat().st_size for p in ckpt.iterdir())
    free = int(1.1 * w + 1.5 * c)
    assert free < 1.1 * (w + 3 * c)
    real = sh.disk_usage
    monkeypatch.setattr(sh, "disk_usage", lambda p: real(p)._replace(free=free))
    code, err = run_cli(capsys, _train_argv(tiny_llama, data, run, "--resume"))
    assert code == 0, err
    monkeypatch.setattr(sh, "disk_usage", lambda p: real(p)._replace(free=1000))  # and a really full disk: refused
    code, err = run_cli(capsys, _train_argv(tiny_llama, data, tmp_path / "run2"))
    assert code == 2 and "MiB free" in err


def test_the_write_layer_removes_its_temporary_file_and_names_the_path(tmp_path, monkeypatch):
    from rewardlab.core.atomic import OutputWriteError, atomic_write_text, publish_dir

    target = tmp_path / "a.json"
    target.write_text("old")
    inject(monkeypatch, errno.EDQUOT)
    with pytest.raises(OutputWriteError, match=f"cannot write {target}: the disk quota is exceeded"):
        atomic_write_text(target, "new")
    with pytest.raises(OutputWriteError, match="cannot write .*model"):
        publish_dir(tmp_path / "model", lambda d: (d / "w.bin").write_bytes(b"x"))
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_non_disk_error_is_not_disguised(tmp_path, monkeypatch):
    from rewardlab.core.atomic import atomic_write_text

    inject(monkeypatch, errno.EIO)
    with pytest.raises(OSError) as e:
        atomic_write_text(tmp_path / "x", "y")
    assert e.value.errno == errno.EIO and list(tmp_path.iterdir()) == []


def test_the_metrics_log_on_a_full_disk_names_its_file(tmp_path, monkeypatch):
    from rewardlab.core.atomic import OutputWriteError
    from rewardlab.training.recipe import MetricsLog

    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.log({"step": 1})
    inject(monkeypatch)
    with pytest.raises(OutputWriteError, match="metrics.jsonl"):
        log.log({"step": 2})
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"step": 1}
