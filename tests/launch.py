"""``rewardlab train`` (or another command) under torchrun, for the tests that compare 2 processes with 1 (gloo on
CPU)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import rewardlab


def torchrun_train(
    args: list[str], nproc: int = 2, cwd=None, timeout: int = 300, command: str = "train"
) -> subprocess.CompletedProcess:
    """Run ``rewardlab COMMAND ARGS`` in ``nproc`` processes; output captured, the exit code left to the caller.

    A free port (another torchrun on the machine may hold the default one), this tree's rewardlab whatever the
    cwd, one OMP thread per process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    src = str(Path(rewardlab.__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--master_port",
        str(port),
    ]
    return subprocess.run(
        [*launcher, "-m", "rewardlab.cli", command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_ranks(
    args: list[str], command: str, nproc: int = 2, env: dict | None = None, timeout: int = 300
) -> tuple[list[tuple[int, str, str]], float]:
    """``rewardlab COMMAND ARGS`` as ``nproc`` real processes joined over gloo, started here with the launcher's
    environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``) instead of through torchrun, so that each
    process's own exit code and stderr can be read. Returns ``([(returncode, stdout, stderr) per rank], seconds
    until the last one ended)``; a process still running after ``timeout`` is killed (returncode -9)."""
    import time

    port = free_port()
    src = str(Path(rewardlab.__file__).resolve().parents[1])
    base = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(nproc),
        "LOCAL_WORLD_SIZE": str(nproc),
        **(env or {}),
    }
    t0 = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rewardlab.cli", command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**base, "RANK": str(r), "LOCAL_RANK": str(r)},
        )
        for r in range(nproc)
    ]
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(1.0, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        results.append((p.returncode, out, err))
    return results, time.monotonic() - t0
