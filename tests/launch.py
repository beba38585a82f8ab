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
