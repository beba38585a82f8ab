"""Fault search over outputs, run ownership, the sealed contract, statistics and full disks (issue 23, items 1-4, 7).

New cases, generated here (not the issue's repros), each run through the real command line in this process
(``rewardlab.cli.main``) or the one loader the commands use, on tiny random models. Each case has an oracle:

* ``refusal``  — exit 2 (or a RewardlabError) with a one-line message, and what the case protects unchanged;
* ``ok``       — the command succeeded and the result is right (e.g. a link inside the tree written through);
* ``warned``   — loaded with ``--trust-modified``: allowed, and said on stderr;
* ``traceback``— any other exception, or "Traceback" on stderr;
* ``hang``     — no answer within :data:`CASE_TIMEOUT_S`;
* ``silent``   — exit 0 where the oracle says the answer is wrong or something not its own was changed or left
  behind (an input replaced, a device turned into a file, a ``.tmp`` left, a score computed from refused stats).

Run: ``python scripts/faultsearch/outputs_contract_stats.py [--out results.json]`` (not in CI; ~10 minutes on 2 cores).
Prints the table per class and in total.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import io
import json
import math
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from rewardlab.cli import main  # noqa: E402
from rewardlab.core import atomic  # noqa: E402
from rewardlab.core.errors import RewardlabError  # noqa: E402

RESULTS: list[dict] = []
CASE_TIMEOUT_S = 60  # a case that has not answered by then is a hang (e.g. opening a FIFO for writing)


class Hung(BaseException):
    pass


def _hung(signum, frame):
    raise Hung()


# ---- running a case ------------------------------------------------------------------------------------------
def cli(argv: list[str]) -> tuple[int | None, str, str | None]:
    """``(exit code, stderr, traceback text or None)`` of ``rewardlab ARGV`` in this process."""
    err, out = io.StringIO(), io.StringIO()
    tb = None
    code = None
    signal.signal(signal.SIGALRM, _hung)
    signal.alarm(CASE_TIMEOUT_S)
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
        except Hung:
            tb = f"HUNG: no answer in {CASE_TIMEOUT_S} s"
        except BaseException:
            tb = traceback.format_exc()
        finally:
            signal.alarm(0)
    text = err.getvalue()
    if "Traceback" in text:
        tb = tb or text
    return code, text, tb


def record(cls: str, name: str, outcome: str, detail: str = "") -> None:
    if outcome == "traceback" and detail.startswith("HUNG"):
        outcome = "hang"
    RESULTS.append({"class": cls, "case": name, "outcome": outcome, "detail": detail[-400:]})
    mark = {"refusal": ".", "ok": "+", "warned": "w", "traceback": "T", "silent": "S", "hang": "H"}[outcome]
    print(mark, end="", flush=True)


def judge_cli(cls, name, argv, *, expect: str, protected=(), root: Path | None = None, check=None):
    """Run ``argv``; ``expect`` refusal or ok. ``protected``: paths whose bytes/kind must not change; ``root``: no
    ``.tmp`` may be left under it; ``check()``: extra oracle for an ok run (True when the result is right)."""
    before = {str(p): fingerprint(p) for p in protected}
    code, err, tb = cli(argv)
    changed = [p for p in before if fingerprint(Path(p)) != before[p]]
    left = [str(p) for p in root.rglob("*") if ".tmp" in p.name] if root else []
    if tb:
        return record(cls, name, "traceback", tb)
    if changed or left:
        return record(cls, name, "silent", f"changed {changed} left {left} (exit {code}): {err}")
    if expect == "refusal":
        lines = [l for l in err.strip().splitlines() if ": error: " in l]
        if code == 2 and len(lines) == 1:
            return record(cls, name, "refusal", lines[0])
        return record(cls, name, "silent", f"exit {code}, expected a refusal: {err}")
    if code == 0 and (check is None or check()):
        return record(cls, name, "ok", "")
    if code == 2:
        return record(cls, name, "refusal", err.strip().splitlines()[-1] if err.strip() else "")
    return record(cls, name, "silent", f"exit {code}: {err}")


def fingerprint(p: Path):
    if not os.path.lexists(p):
        return None
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(p))
    if stat.S_ISREG(st.st_mode):
        return ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    if stat.S_ISDIR(st.st_mode):
        return (
            "dir",
            tuple(sorted((q.name, fingerprint(q)) for q in p.iterdir() if not q.name.startswith(".rewardlab"))),
        )
    return ("special", stat.S_IFMT(st.st_mode), st.st_ino)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def pairs(n: int, salt: str = "") -> list[dict]:
    fruits = "apple pear plum fig kiwi lime lemon mango".split()
    return [
        {
            "prompt": f"Tell me about {fruits[i % 8]} {salt}#{i}",
            "chosen": f"{fruits[i % 8]} is a fruit with a long story {i}.",
            "rejected": f"{fruits[(i + 3) % 8]} no",
        }
        for i in range(n)
    ]


# ---- fixtures -------------------------------------------------------------------------------------------------
class World:
    def __init__(self, root: Path):
        from rewardlab.commands.compose import ComposeConfig, run_compose
        from rewardlab.commands.normalize import NormalizeConfig, run_normalize
        from rewardlab.model import RewardModel
        from rewardlab.models.tiny import make_tiny_causal_lm
        from rewardlab.multiobjective.gate import GateConfig, GatingNetwork
        from rewardlab.multiobjective.model import AttributeRewardModel
        from rewardlab.multiobjective.scalarise import FixedWeights

        self.root = root
        self.tiny = str(make_tiny_causal_lm(root / "tiny"))
        self.samples = write_jsonl(
            root / "samples.jsonl", [{"prompt": f"Q{i}?", "response": "A " * (i + 1)} for i in range(6)]
        )
        self.data = write_jsonl(root / "data.jsonl", pairs(4))
        self.scalar = root / "scalar"
        rm = RewardModel.from_backbone(self.tiny, max_length=48, seed=3)
        with torch.no_grad():
            rm.model.score.weight.mul_(50.0)
        rm.save(self.scalar)
        run_normalize(NormalizeConfig(model=str(self.scalar), data=str(self.samples)))
        self.mo = root / "mo"
        arm = AttributeRewardModel.from_backbone(
            self.tiny, ["helpfulness", "verbosity"], {"helpfulness": [0, 4], "verbosity": [0, 4]}, max_length=48, seed=1
        )
        arm.gate = GatingNetwork(GateConfig(arm.model.config.hidden_size, 2, hidden=4, n_hidden=1))
        arm.mo.transform = [[1.0, 0.0], [-0.5, 1.0]]
        arm.mo.scaliser = FixedWeights({"helpfulness": 1.0, "verbosity": -0.5}).to_json()
        arm.spec.normalization = {"mean": 0.1, "std": 0.5, "n": 6, "source": "fault search"}
        arm.save(self.mo)
        self.composed = root / "composed"
        run_compose(
            ComposeConfig(
                safety=str(self.scalar), helpfulness=str(self.scalar), output_dir=str(self.composed),
                reference_data=str(self.samples),
            )
        )  # fmt: skip
        run_normalize(NormalizeConfig(model=str(self.composed), data=str(self.samples)))
        self.n = 0

    def fresh(self, name: str = "case") -> Path:
        self.n += 1
        d = self.root / "cases" / f"{self.n:04d}-{name}"
        d.mkdir(parents=True)
        return d

    def copy_model(self, kind: str, into: Path) -> Path:
        if kind == "composed":
            shutil.copytree(self.scalar, into / "scalar")
            shutil.copytree(self.composed, into / "composed")
            return into / "composed"
        return Path(shutil.copytree(getattr(self, kind), into / kind))


# ---- class 1: output targets ----------------------------------------------------------------------------------
def output_targets(w: World) -> None:
    cls = "outputs"

    def make_fifo(p):
        os.mkfifo(p)

    def make_dev(p):
        os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 3))

    def make_block(p):
        os.mknod(p, stat.S_IFBLK | 0o660, os.makedev(7, 0))

    def make_sock(p):
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.close()

    def link_out_file(p):
        t = p.parent.parent / f"victim-{p.parent.name}"
        t.write_text("victim\n")
        p.symlink_to(t)

    def link_out_dangling(p):
        p.symlink_to(p.parent.parent / f"nowhere-{p.parent.name}")

    def link_to_dev(p):
        p.symlink_to("/dev/null")

    def link_in_dir(p):
        (p.parent / "sub").mkdir()
        p.symlink_to("sub")

    def link_chain_out(p):
        t = p.parent.parent / f"victim2-{p.parent.name}"
        t.write_text("v\n")
        (p.parent / "hop").symlink_to(t)
        p.symlink_to("hop")

    targets = {
        "fifo": (make_fifo, "refusal"),
        "char-device": (make_dev, "refusal"),
        "block-device": (make_block, "refusal"),
        "socket": (make_sock, "refusal"),
        "link-out-of-tree": (link_out_file, "refusal"),
        "dangling-link-out": (link_out_dangling, "refusal"),
        "link-to-dev-null": (link_to_dev, "refusal"),
        "link-to-subdir": (link_in_dir, "refusal"),
        "link-chain-out": (link_chain_out, "refusal"),
        "directory": (lambda p: p.mkdir(), "refusal"),
    }
    for command in ("score", "judge"):
        for name, (make, expect) in targets.items():
            for overwrite in (False, True):
                d = w.fresh(f"{command}-{name}")
                out = d / "out.jsonl"
                make(out)
                protect = [out] + ([out.resolve()] if out.is_symlink() and out.resolve().exists() else [])
                argv = (
                    ["score", "--model", str(w.scalar), "--data", str(w.data), "--output", str(out)]
                    if command == "score"
                    else ["judge", "--model", w.tiny, "--data", str(w.data), "--output", str(out), "--device", "cpu",
                          "--limit", "1", "--max-question-tokens", "16", "--max-answer-tokens", "8"]
                )  # fmt: skip
                judge_cli(cls, f"{command} --output <{name}>{' --overwrite' if overwrite else ''}",
                          argv + (["--overwrite"] if overwrite else []), expect=expect, protected=protect, root=d)  # fmt: skip
    # outputs that are (spellings of) an input, or files of a model read
    for spelling in ("same", "dot-slash", "dotdot", "symlink-to-data", "hardlink-dir-alias"):
        d = w.fresh("input-alias")
        data = write_jsonl(d / "in.jsonl", pairs(3))
        out = {
            "same": data,
            "dot-slash": Path(str(d) + "/./in.jsonl"),
            "dotdot": d / "x" / ".." / "in.jsonl",
            "symlink-to-data": d / "alias.jsonl",
            "hardlink-dir-alias": d / "alias-dir" / "in.jsonl",
        }[spelling]
        if spelling == "dotdot":
            (d / "x").mkdir()
        if spelling == "symlink-to-data":
            out.symlink_to("in.jsonl")
        if spelling == "hardlink-dir-alias":
            (d / "alias-dir").symlink_to(d)
        judge_cli(cls, f"score --data X --output <{spelling} of X> --overwrite",
                  ["score", "--model", str(w.scalar), "--data", str(data), "--output", str(out), "--overwrite"],
                  expect="refusal", protected=[data], root=d)  # fmt: skip
    for name in ("rewardlab.json", "config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors",
                 "special_tokens_map.json", "chat_template.jinja", "vocab.json", "added.safetensors"):  # fmt: skip
        d = w.fresh("into-model")
        m = w.copy_model("scalar", d)
        judge_cli(cls, f"score --output <model>/{name} --overwrite",
                  ["score", "--model", str(m), "--data", str(w.data), "--output", str(m / name), "--overwrite"],
                  expect="refusal", protected=[m], root=d)  # fmt: skip
    d = w.fresh("in-tree-link")
    (d / "real.jsonl").write_text("")
    (d / "out.jsonl").symlink_to("real.jsonl")
    judge_cli(cls, "score --output <link to a file in the same dir> --overwrite (written through)",
              ["score", "--model", str(w.scalar), "--data", str(w.data), "--output", str(d / "out.jsonl"), "--overwrite"],
              expect="ok", root=d, check=lambda: (d / "out.jsonl").is_symlink() and len((d / "real.jsonl").read_text().splitlines()) == 4)  # fmt: skip

    # directories: eval / probe / compose / export / train-judge
    def dir_argv(command, out, extra_data=None):
        data = str(extra_data or w.data)
        return {
            "eval": ["eval", "--model", str(w.scalar), "--data", data, "--output-dir", str(out), "--n-boot", "3"],
            "probe": ["probe", "--model", str(w.scalar), "--data", data, "--output-dir", str(out), "--n-boot", "3",
                      "--probes", "length"],
            "compose": ["compose", "--safety", str(w.scalar), "--helpfulness", str(w.scalar), "--output-dir", str(out)],
            "export": ["export", "--model", str(w.scalar), "--output", str(out)],
            "train-judge": ["train-judge", "--backbone", w.tiny, "--data", data, "--output-dir", str(out)],
            "train": ["train", "--backbone", w.tiny, "--data", data, "--output-dir", str(out), "--max-steps", "1",
                      "--batch-size", "2", "--max-length", "32", "--eval-fraction", "0"],
        }[command]  # fmt: skip

    dir_cases = {
        "fifo": lambda p: os.mkfifo(p),
        "char-device": lambda p: os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 3)),
        "file": lambda p: p.write_text("mine\n"),
        "holds-another-model": lambda p: shutil.copytree(w.scalar, p),
        "under-a-file": None,
    }
    for command in ("eval", "probe", "compose", "export", "train-judge", "train"):
        for name, make in dir_cases.items():
            if command == "export" and name == "holds-another-model":
                continue  # export writes a model: replacing one with --overwrite is what it is for
            d = w.fresh(f"{command}-{name}")
            out = d / "out"
            if make is None:
                (d / "f").write_text("x")
                out = d / "f" / "out"
            else:
                make(out)
            judge_cli(cls, f"{command} --output-dir <{name}> --overwrite", dir_argv(command, out) + ["--overwrite"],
                      expect="refusal", protected=[out if make else d / "f"], root=d)  # fmt: skip
        d = w.fresh(f"{command}-is-input")
        if command in ("compose", "export"):
            m = w.copy_model("scalar", d)
            argv = dir_argv(command, m)
            argv[argv.index(str(w.scalar))] = str(m)
            if command == "compose":
                argv[argv.index(str(w.scalar))] = str(m)
            judge_cli(cls, f"{command} into the model it reads --overwrite", argv + ["--overwrite"], expect="refusal",
                      protected=[m], root=d)  # fmt: skip
        else:
            out = d / "out"
            out.mkdir()
            name = {"eval": "examples-x.jsonl", "probe": "probe-pairs-x.jsonl", "train-judge": "examples.jsonl",
                    "train": "split.json"}[command]  # fmt: skip
            data = write_jsonl(out / name, pairs(4))
            judge_cli(cls, f"{command} --output-dir holding its --data under a name it writes --overwrite",
                      dir_argv(command, out, data) + ["--overwrite"], expect="refusal", protected=[data], root=d)  # fmt: skip


# ---- class 2: run ownership -----------------------------------------------------------------------------------
HOLD = """
import os, sys, time
from rewardlab.core.ownership import acquire
acquire(sys.argv[1], "rewardlab train")
print("ready", flush=True)
time.sleep(300)
"""


def holder(out: Path, **env) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, **env})  # fmt: skip
    if p.stdout.readline().strip() != "ready":
        raise RuntimeError(p.stderr.read())
    return p


def ownership(w: World) -> None:
    cls = "ownership"

    def argv_for(command, out):
        return {
            "train --overwrite": ["train", "--backbone", w.tiny, "--data", str(w.data), "--output-dir", str(out),
                                  "--max-steps", "1", "--batch-size", "2", "--eval-fraction", "0", "--overwrite"],
            "train --resume": ["train", "--backbone", w.tiny, "--data", str(w.data), "--output-dir", str(out),
                               "--max-steps", "1", "--batch-size", "2", "--eval-fraction", "0", "--resume"],
            "regression --overwrite": ["train", "--objective", "regression", "--stage1", "ridge", "--backbone", w.tiny,
                                       "--data", "embedded", "--embedded-size", "20", "--output-dir", str(out),
                                       "--overwrite"],
            "eval --overwrite": ["eval", "--model", str(w.scalar), "--data", str(w.data), "--output-dir", str(out),
                                 "--overwrite", "--n-boot", "3"],
            "probe --overwrite": ["probe", "--model", str(w.scalar), "--data", str(w.data), "--output-dir", str(out),
                                  "--overwrite", "--n-boot", "3", "--probes", "length"],
            "quickstart --overwrite": ["quickstart", "--backbone", w.tiny, "--output-dir", str(out), "--max-steps", "1",
                                       "--embedded-size", "40", "--batch-size", "2", "--overwrite"],
            "train-judge --resume": ["train-judge", "--backbone", w.tiny, "--data", str(w.data), "--output-dir", str(out),
                                     "--resume"],
        }[command]  # fmt: skip

    commands = ["train --overwrite", "train --resume", "regression --overwrite", "eval --overwrite",
                "probe --overwrite", "quickstart --overwrite", "train-judge --resume"]  # fmt: skip
    for command in commands:
        # a live holder: refused naming its pid; what is there unchanged
        d = w.fresh("own-live")
        out = d / "run"
        out.mkdir()
        (out / "metrics.jsonl").write_text('{"step": 1}\n')
        p = holder(out)
        try:
            code, err, tb = cli(argv_for(command, out))
        finally:
            p.kill()
            p.wait()
        if tb:
            record(cls, f"{command} while a live run holds it", "traceback", tb)
        elif code == 2 and f"pid {p.pid}" in err:
            record(cls, f"{command} while a live run holds it", "refusal", err.strip().splitlines()[-1])
        else:
            record(cls, f"{command} while a live run holds it", "silent", f"exit {code}: {err}")
        # torchrun workers of a killed launcher still running
        d = w.fresh("own-workers")
        out = d / "run"
        launch = {"TORCHELASTIC_RUN_ID": f"fs{w.n}", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29998"}
        r0 = holder(out, **launch, RANK="0", LOCAL_RANK="0")
        r1 = holder(out, **launch, RANK="1", LOCAL_RANK="1")
        os.kill(r0.pid, signal.SIGKILL)
        r0.wait()
        try:
            code, err, tb = cli(argv_for(command, out))
        finally:
            r1.kill()
            r1.wait()
        name = f"{command} while a worker of a killed launcher runs"
        if tb:
            record(cls, name, "traceback", tb)
        elif code == 2 and f"pid {r1.pid}" in err:
            record(cls, name, "refusal", err.strip().splitlines()[-1])
        else:
            record(cls, name, "silent", f"exit {code}: {err}")
    # stale / odd lock files: taken over (said), never a traceback, never refused for a dead holder
    odd = {
        "killed holder": None,
        "garbage door text": b"\x00\xffnot json",
        "door text a list": b"[1, 2]",
        "door text of pid 1 on another host": json.dumps({"pid": 1, "host": "elsewhere"}).encode(),
        "empty door": b"",
    }
    for name, text in odd.items():
        for command in ("eval", "probe", "compose"):
            d = w.fresh("own-stale")
            out = d / "out"
            if text is None:
                p = holder(out)
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
            else:
                out.mkdir()
                (out / ".rewardlab.lock").write_bytes(text)
            argv = {
                "eval": ["eval", "--model", str(w.scalar), "--data", str(w.data), "--output-dir", str(out), "--n-boot", "3"],
                "probe": ["probe", "--model", str(w.scalar), "--data", str(w.data), "--output-dir", str(out), "--n-boot",
                          "3", "--probes", "length"],
                "compose": ["compose", "--safety", str(w.scalar), "--helpfulness", str(w.scalar), "--output-dir", str(out)],
            }[command]  # fmt: skip
            judge_cli(cls, f"{command} over a stale lock ({name})", argv, expect="ok", root=d,
                      check=lambda out=out: not (out / ".rewardlab.lock").exists())  # fmt: skip


# ---- class 3: the contract -------------------------------------------------------------------------------------
def _honest_scores(path: Path) -> list[float]:
    from rewardlab.scoring.loader import load_reward_model

    return load_reward_model(str(path), say=None).score([("Hi there?", "Hello."), ("Name a fruit.", "Pear.")])


def contract(w: World) -> None:
    cls = "contract"

    edits_by_kind = {
        "scalar": {
            "template": ["plain", "pair", "weird", 3, None],
            "max_length": [16, 0, -1, "48", 1e9, None],
            "truncation": ["right", "middle", None],
            "padding_side": ["left", "up"],
            "pooling": ["cls", "mean", None],
            "add_special_tokens": [False, "yes"],
            "pad_token": ["<x>", None],
            "pad_token_id": [1, -1, "0"],
            "bos_token": ["<b>", 5],
            "eos_token": [None, []],
            "chat_template": ["{{ messages }}", None, 7],
            "normalization": [{"mean": 0, "std": 1, "n": 9}, None, []],
            "file_hashes": [None, {}, "x"],
            "format_version": [2, "1", None],
            "versions": [None, {"rewardlab": "0"}],
            "backbone": ["other", None],
            "model_type": ["bert", 1],
            "data_fingerprint": ["x", 1],
            "multiobjective": [{"attributes": ["a"]}],
        },
        "mo": {
            "multiobjective.scaliser": [
                {"type": "weights", "equal": True},
                {"type": "gate"},
                {"type": "x"},
                {"type": "llama2", "threshold": 0.5, "safety": "helpfulness", "helpfulness": "verbosity"},
                None,
            ],
            "multiobjective.scaliser.weights.verbosity": [0.0, "1", math.nan, None],
            "multiobjective.gate.temperature": [1.0, 0.0, -3.0, math.inf, "10"],
            "multiobjective.gate.hidden": [8, 0],
            "multiobjective.transform": [None, [[1, 0], [0, 1]], [[1, 0]], [[math.nan, 0], [0, 1]], "I"],
            "multiobjective.attributes": [["verbosity", "helpfulness"], [], ["a", "a"], "x"],
            "multiobjective.scales": [{"helpfulness": [4, 0]}, {"helpfulness": [0, "4"]}, None],
            "multiobjective.debias": [{"lambdas": {}}, 1],
        },
        "composed": {
            "scaliser.threshold": [0.5, 0.0, 1.0, -0.2, 7, math.nan, math.inf, "0.15", None],
            "scaliser.whiten_std": [2.0, 0.0, -1.0, 1e-12, math.nan, None, "1"],
            "scaliser.whiten_mean": [5.0, math.inf, None],
            "scaliser.eps": [0.0, 0.6, 1e-3],
            "scaliser.safety": ["helpfulness", 3],
            "scaliser.type": ["weights", None],
            "safety.squash": ["none", "tanh", None],
            "safety.path": ["../nowhere", 3, None],
            "helpfulness.attribute": ["safety", 2],
            "safety.rewardlab_json_sha256": ["0" * 64, None],
            "kind": ["llama2-composed-v2"],
            "normalization.std": [-1.0, 0.0, math.nan],
        },
    }
    honest = {k: _honest_scores(getattr(w, k)) for k in edits_by_kind}
    for kind, edits in edits_by_kind.items():
        for path, values in edits.items():
            for value in values:
                for trust in (False, True):
                    d = w.fresh("contract")
                    m = w.copy_model(kind, d)
                    spec = json.loads((m / "rewardlab.json").read_text())
                    node = spec
                    *parents, last = path.split(".")
                    try:
                        for p in parents:
                            node = node[p]
                        if node.get(last, "<absent>") == value:
                            continue  # a no-op edit
                        node[last] = value
                    except (TypeError, AttributeError, KeyError):
                        continue
                    (m / "rewardlab.json").write_text(json.dumps(spec))
                    _contract_case(cls, f"{kind}: {path} = {json.dumps(value)}{' (trusted)' if trust else ''}", m, trust,
                                   honest[kind], d)  # fmt: skip
    # deletions of each top-level field, sealed or not
    for kind in ("scalar", "mo", "composed"):
        spec0 = json.loads((getattr(w, kind) / "rewardlab.json").read_text())
        for field in list(spec0):  # every top-level field, the seal itself included
            for trust in (False, True):
                d = w.fresh("contract-del")
                m = w.copy_model(kind, d)
                spec = json.loads((m / "rewardlab.json").read_text())
                spec.pop(field)
                (m / "rewardlab.json").write_text(json.dumps(spec))
                _contract_case(cls, f"{kind}: delete {field}{' (trusted)' if trust else ''}", m, trust, honest[kind], d)
    # whole-file damage
    for text in ("[]", "null", "3", '"x"', "{", "", "{}", '{"kind": "llama2-composed"}', "\ufeff{}", "NaN"):
        for trust in (False, True):
            d = w.fresh("contract-file")
            m = w.copy_model("scalar", d)
            (m / "rewardlab.json").write_text(text)
            _contract_case(cls, f"rewardlab.json = {text!r}{' (trusted)' if trust else ''}", m, trust, None, d)


def _contract_case(cls, name, m: Path, trust: bool, honest, d: Path) -> None:
    data = write_jsonl(d / "rows.jsonl", [{"prompt": "Hi there?", "response": "Hello."},
                                          {"prompt": "Name a fruit.", "response": "Pear."}])  # fmt: skip
    argv = ["score", "--model", str(m), "--data", str(data), "--output", str(d / "s.jsonl")]
    code, err, tb = cli(argv + (["--trust-modified"] if trust else []))
    if tb:
        return record(cls, name, "traceback", tb)
    if code == 2:
        lines = [l for l in err.strip().splitlines() if ": error: " in l]
        return record(cls, name, "refusal" if len(lines) == 1 else "silent", err)
    if code == 0 and trust and "warning" in err:
        return record(cls, name, "warned", "")
    got = [json.loads(l)["score"] for l in (d / "s.jsonl").read_text().splitlines()] if code == 0 else None
    if code == 0 and honest is not None and got == [pytest_approx(x) for x in honest]:
        return record(cls, name, "ok", "loaded; scores unchanged")
    return record(cls, name, "silent", f"exit {code}, scores {got} vs {honest}: {err}")


class pytest_approx(float):
    def __eq__(self, other):
        return abs(float(self) - other) <= 1e-5 * max(1.0, abs(other))


# ---- class 4: statistics ----------------------------------------------------------------------------------------
def statistics(w: World) -> None:
    cls = "statistics"
    bad = {
        "std -2": {"std": -2.0}, "std -1e-3": {"std": -1e-3}, "std 0": {"std": 0.0}, "std 1e-12": {"std": 1e-12},
        "std 5e-7": {"std": 5e-7}, "std inf": {"std": math.inf}, "std nan": {"std": math.nan},
        "std '1'": {"std": "1"}, "std true": {"std": True}, "std missing": {"std": None},
        "mean nan": {"mean": math.nan}, "mean inf": {"mean": -math.inf}, "mean 'x'": {"mean": "x"},
        "n 0": {"n": 0}, "n 1": {"n": 1}, "n 2.5": {"n": 2.5}, "n '9'": {"n": "9"},
        "mean 1e9 std 1e2": {"mean": 1e9, "std": 1e2},
    }  # fmt: skip
    for kind in ("scalar", "mo", "composed"):
        for name, change in bad.items():
            d = w.fresh("stats")
            m = w.copy_model(kind, d)
            spec = json.loads((m / "rewardlab.json").read_text())
            stats = dict(spec["normalization"])
            for k, v in change.items():
                if v is None:
                    stats.pop(k, None)
                else:
                    stats[k] = v
            spec["normalization"] = stats
            (m / "rewardlab.json").write_text(json.dumps(spec))
            data = write_jsonl(d / "rows.jsonl", [{"prompt": "Q?", "response": "A."}])
            # score --normalize, trusted past the seal: the statistics' own check must refuse, before scoring
            judge_cli(cls, f"{kind}: score --normalize with {name} (trusted)",
                      ["score", "--model", str(m), "--data", str(data), "--output", str(d / "s.jsonl"), "--normalize",
                       "--trust-modified"], expect="refusal", root=d)  # fmt: skip
            # the server: a request asking to normalise never gets "normalized": true over raw rewards
            _serve_case(cls, f"{kind}: serve request normalize=true with {name} (trusted)", m)
    # normalize on data that cannot give statistics
    sets = {
        "3 identical rows": [{"prompt": "Same?", "response": "Same."}] * 3,
        "1 row": [{"prompt": "One?", "response": "One."}],
        "identical text, different ids": [{"id": str(i), "prompt": "Same?", "response": "Same."} for i in range(4)],
        "same text, messages vs string": [{"prompt": "Same?", "response": "S."},
                                          {"prompt": [{"role": "user", "content": "Same?"}], "response": "S."}],
    }  # fmt: skip
    for kind in ("scalar", "composed", "mo"):
        for name, rows in sets.items():
            d = w.fresh("normalize")
            m = w.copy_model(kind, d)
            data = write_jsonl(d / "samples.jsonl", rows)
            judge_cli(cls, f"{kind}: normalize on {name}", ["normalize", "--model", str(m), "--data", str(data)],
                      expect="refusal", protected=[m / "rewardlab.json"], root=d)  # fmt: skip
    # compose --reference-data that cannot whiten
    for name, rows in sets.items():
        d = w.fresh("whiten")
        data = write_jsonl(d / "ref.jsonl", rows)
        judge_cli(cls, f"compose --reference-data {name}",
                  ["compose", "--safety", str(w.scalar), "--helpfulness", str(w.scalar), "--output-dir", str(d / "c"),
                   "--reference-data", str(data)], expect="refusal", root=d,
                  protected=[w.scalar])  # fmt: skip


def _serve_case(cls, name, model: Path) -> None:
    from fastapi.testclient import TestClient

    from rewardlab.serve.app import create_app
    from rewardlab.serve.config import ServeConfig

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            app = create_app(ServeConfig(model=str(model), trust_modified=True, max_wait_ms=1))
        with TestClient(app) as client:
            r = client.post("/v1/score", json={"prompt": "Q?", "responses": ["A.", "B!"], "normalize": True})
    except RewardlabError as e:
        return record(cls, name, "refusal", str(e))
    except BaseException:
        return record(cls, name, "traceback", traceback.format_exc())
    if r.status_code == 422:
        return record(cls, name, "refusal", r.json()["detail"])
    if r.status_code == 200 and r.json().get("normalized"):
        return record(cls, name, "silent", f"normalized: true over refused statistics: {r.json()}")
    return record(cls, name, "traceback" if r.status_code >= 500 else "silent", f"{r.status_code}: {r.text}")


# ---- class 5: full and read-only disks --------------------------------------------------------------------------
def inject(err: int, where: str = "", after: int = 0):
    """Make the write layer fail with ``err`` for files whose path contains ``where``, after ``after`` writes."""
    real_write, real_flush = atomic._write_all, atomic._flush
    count = {"n": 0}

    def hit(fd):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if where not in path:
            return False
        count["n"] += 1
        return count["n"] > after

    def write_all(fd, data):
        if hit(fd):
            raise OSError(err, os.strerror(err))
        return real_write(fd, data)

    def flush(fd):
        if hit(fd):
            raise OSError(err, os.strerror(err))
        return real_flush(fd)

    atomic._write_all, atomic._flush = write_all, flush
    return lambda: (setattr(atomic, "_write_all", real_write), setattr(atomic, "_flush", real_flush))


def disks(w: World) -> None:
    cls = "full disk"
    reg = w.root / "reg"
    code, err, tb = cli(["train", "--objective", "regression", "--stage1", "ridge", "--backbone", w.tiny, "--data",
                         "embedded", "--embedded-size", "20", "--output-dir", str(reg)])  # fmt: skip
    assert code == 0, err

    def commands(d: Path) -> dict[str, list[str]]:
        m = w.copy_model("scalar", d)
        return {
            "score": ["score", "--model", str(w.scalar), "--data", str(w.data), "--output", str(d / "s.jsonl")],
            "eval": ["eval", "--model", str(w.scalar), "--data", str(w.data), "--output-dir", str(d / "ev"),
                     "--n-boot", "3"],
            "probe": ["probe", "--model", str(w.scalar), "--data", str(w.data), "--output-dir", str(d / "pr"),
                      "--n-boot", "3", "--probes", "length"],
            "export": ["export", "--model", str(w.scalar), "--output", str(d / "exp")],
            "compose": ["compose", "--safety", str(w.scalar), "--helpfulness", str(w.scalar), "--output-dir",
                        str(d / "c"), "--reference-data", str(w.samples)],
            "normalize": ["normalize", "--model", str(m), "--data", str(w.samples)],
            "judge": ["judge", "--model", w.tiny, "--data", str(w.data), "--output", str(d / "j.jsonl"), "--device",
                      "cpu", "--limit", "1", "--max-question-tokens", "16", "--max-answer-tokens", "8"],
            "train": ["train", "--backbone", w.tiny, "--data", str(w.data), "--output-dir", str(d / "run"),
                      "--max-steps", "2", "--batch-size", "2", "--max-length", "32", "--eval-fraction", "0",
                      "--save-every", "1"],
            "regression": ["train", "--objective", "regression", "--stage1", "ridge", "--backbone", w.tiny, "--data",
                           "embedded", "--embedded-size", "20", "--output-dir", str(d / "reg")],
            "gating": ["train", "--objective", "gating", "--init-from", str(reg / "model"), "--data", "embedded",
                       "--embedded-size", "20", "--gate-hidden", "4", "--gate-layers", "1", "--gate-steps", "2", "--save-every", "0",
                       "--output-dir", str(d / "g")],
        }  # fmt: skip

    faults = [(errno.ENOSPC, 0), (errno.EDQUOT, 0), (errno.EROFS, 0), (errno.EACCES, 0), (errno.EFBIG, 0),
              (errno.ENOSPC, 1), (errno.ENOSPC, 3)]  # fmt: skip
    for name in commands(w.fresh("probe-names")):
        for err_no, after in faults:
            d = w.fresh(f"disk-{name}")
            argv = commands(d)
            protect = [p for p in d.rglob("*") if p.is_file()]
            undo = inject(err_no, str(d), after)
            try:
                code, text, tb = cli(argv[name])
            finally:
                undo()
            case = f"{name}: {errno.errorcode[err_no]} after {after} writes"
            left = [str(p) for p in d.rglob("*") if ".tmp" in p.name or ".old" in p.name]
            changed = [str(p) for p in protect if fingerprint(p) != ("file", hashlib.sha256(p.read_bytes()).hexdigest())
                       ] if False else []  # fmt: skip
            if tb:
                record(cls, case, "traceback", tb)
            elif left or changed:
                record(cls, case, "silent", f"left {left}: {text}")
            elif code == 2 and "cannot write" in text:
                record(cls, case, "refusal", text.strip().splitlines()[-1])
            elif code == 0:
                record(cls, case, "ok" if after else "silent", f"exit 0 with a fault injected after {after} writes")
            else:
                record(cls, case, "silent", f"exit {code}: {text}")


# ---- main --------------------------------------------------------------------------------------------------------
def table(results: list[dict]) -> str:
    by = defaultdict(Counter)
    for r in results:
        by[r["class"]][r["outcome"]] += 1
    cols = ["cases", "tracebacks", "silent wrong", "hangs", "refusals", "ok / warned"]
    lines = ["| class | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    total = Counter()
    for cls, c in list(by.items()) + [("**total**", None)]:
        c = c if c is not None else total
        if cls != "**total**":
            total.update(c)
        row = [sum(c.values()), c["traceback"], c["silent"], c["hang"], c["refusal"], c["ok"] + c["warned"]]
        lines.append(f"| {cls} | " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines)


def main_() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write every case and its outcome here (JSON)")
    ap.add_argument("--only", default=None, help="comma list of classes: outputs,ownership,contract,statistics,disks")
    args = ap.parse_args()
    torch.set_num_threads(1)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    os.environ["REWARDLAB_VERBOSITY"] = "quiet"
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="rl-faultsearch-") as tmp:
        w = World(Path(tmp))
        steps = {"outputs": output_targets, "ownership": ownership, "contract": contract, "statistics": statistics,
                 "disks": disks}  # fmt: skip
        for name, step in steps.items():
            if args.only and name not in args.only.split(","):
                continue
            print(f"\n{name}: ", end="", flush=True)
            step(w)
    print(f"\n\n{table(RESULTS)}\n\n{len(RESULTS)} cases in {time.time() - t0:.0f} s")
    for r in RESULTS:
        if r["outcome"] in ("traceback", "silent", "hang"):
            print(f"\n[{r['outcome']}] {r['class']}: {r['case']}\n  {r['detail'].strip()[-300:]}")
    if args.out:
        Path(args.out).write_text(json.dumps(RESULTS, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main_())
