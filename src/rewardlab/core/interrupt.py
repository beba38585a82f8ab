"""Ctrl-C (SIGINT) and SIGTERM during training: finish the step, write a checkpoint, say how to resume, exit 130.

The training loops (``rewardlab train``'s scalar trainer and :func:`rewardlab.training.recipe.run_steps`, which the judge
trainers run on) hold a :class:`StopSignals` while they step. The first SIGINT or SIGTERM only sets a flag (and
says so on stderr); after the step in progress the loop sees it (:meth:`StopSignals.agreed`: every process of a
``torchrun`` world stops at the same step), writes a checkpoint and raises :class:`Interrupted`, which the CLI
prints without a traceback, naming the checkpoint and the exact ``--resume`` command, and exits with 130 (the
shell's code for "ended by SIGINT"). A second signal while the step finishes stops at once (KeyboardInterrupt:
exit 130, the newest periodic checkpoint is what is left).

No heavy imports here (torch only inside :meth:`StopSignals.agreed` for worlds of several processes).
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading

from rewardlab.core.errors import RewardlabError

EXIT_CODE = 130  # 128 + SIGINT, what a shell reports for a program ended by Ctrl-C
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_command_line: list[str] | None = None  # the CLI's own arguments (set by rewardlab.cli.main)


def set_command_line(argv: list[str] | None) -> None:
    """What the user typed after ``rewardlab`` (:func:`rewardlab.cli.main` records it for :func:`resume_command`)."""
    global _command_line
    _command_line = list(argv) if argv is not None else None


def resume_command(command: str, output_dir: str) -> str:
    """The command that continues the run: the one typed, with ``--resume`` added (once); without a recorded
    command line (library use), the command with ``--output-dir`` and ``--resume``."""
    argv = list(_command_line or [command, "--output-dir", str(output_dir)])
    if "--resume" not in argv:
        argv.append("--resume")
    return shlex.join(["rewardlab", *argv])


class Interrupted(RewardlabError):
    """The run stopped on a signal after a whole step and wrote a checkpoint; the CLI exits with 130."""

    exit_code = EXIT_CODE


class StopSignals:
    """While held (``with StopSignals() as stop:``), SIGINT and SIGTERM set :attr:`received` instead of ending
    the process; the previous handlers come back on exit. Outside the main thread (signals cannot be caught
    there) it does nothing and :attr:`received` stays None."""

    def __init__(self, say=None):
        self.received: str | None = None
        self._previous: dict = {}
        self._say = say or (lambda text: print(text, file=sys.stderr, flush=True))

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:  # the second one: stop now, without waiting for the step
            self.__exit__()
            raise KeyboardInterrupt(f"a second {name}")
        self.received = name
        self._say(
            f"\nrewardlab: {name} received: finishing this step, then writing a checkpoint "
            "(again to stop at once, without one)"
        )

    def agreed(self, accelerator=None) -> bool:
        """Whether to stop after this step: this process got a signal, or (``torchrun`` world) any process did."""
        mine = self.received is not None
        if accelerator is None or accelerator.num_processes == 1:
            return mine
        import torch  # lazy: only multi-process worlds need the reduction

        flag = torch.tensor([1.0 if mine else 0.0], device=accelerator.device)
        return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


def interrupted(signal_name: str | None, step: int, total: int, checkpoint: str, command: str) -> Interrupted:
    """The :class:`Interrupted` a loop raises after writing ``checkpoint`` at ``step``."""
    return Interrupted(
        f"stopped by {signal_name or 'a signal'} after step {step} of {total}; checkpoint written: {checkpoint}\n"
        f"continue exactly where it stopped with:\n  {command}"
    )
