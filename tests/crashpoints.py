"""Run `python -m mbpo train` and crash it at the N-th filesystem operation of one phase.

    python tests/crashpoints.py PHASE MODE N train ARGS...

PHASE is `finish` (every operation after the training loop returns: committing the run) or
`checkpoint` (the operations of the run's first checkpoint save). The operations counted are the
ones that make a run's files durable: each write to a file opened by `mbpo.record.atomic_file`,
`os.fsync`, `os.replace`, `os.rename` and `os.unlink`. At the N-th, MODE `kill` sends the process
SIGKILL before the operation runs (a power cut or an OOM kill), and MODE `enospc` makes it fail
with "No space left on device". When the phase has fewer than N operations nothing is injected and
the launcher prints `crashpoints: PHASE had K operations` on stderr, so a test can walk N = 1, 2, ...
until then.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from typing import Any, Callable

from mbpo import checkpoint, cli, record, train

PHASES = ("finish", "checkpoint")
MODES = ("kill", "enospc")


class Injector:
    def __init__(self, mode: str, target: int) -> None:
        self.mode, self.target = mode, target
        self.active, self.count = False, 0

    def op(self, what: str, path: Any = None) -> None:
        if not self.active:
            return
        if self.mode == "enospc" and what == "unlink":
            return  # removing a file does not fail for want of space
        self.count += 1
        if self.count != self.target:
            return
        if self.mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        # as the kernel reports it: a call on a path names it, a write or fsync on a handle does not
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else os.fspath(path))


class CountedFile:
    """A file handle whose writes are counted operations (torch.save and json writes go through it)."""

    def __init__(self, handle: Any, injector: Injector) -> None:
        self._handle, self._injector = handle, injector

    def write(self, data: Any) -> int:
        self._injector.op("write")
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> "CountedFile":
        self._handle.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._handle.__exit__(*exc)


def counted(func: Callable, injector: Injector, what: str) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        injector.op(what, args[0] if what != "fsync" else None)
        return func(*args, **kwargs)

    return wrapper


def install(phase: str, injector: Injector) -> None:
    for name in ("fsync", "replace", "rename", "unlink"):
        setattr(os, name, counted(getattr(os, name), injector, name))
    real_fdopen = os.fdopen
    record.os.fdopen = lambda *a, **k: CountedFile(real_fdopen(*a, **k), injector)  # atomic_file's handles
    if phase == "finish":
        real_run = train.Trainer.run

        def run(self, checkpointer=None):
            summary = real_run(self, checkpointer)
            injector.active = True
            return summary

        train.Trainer.run = run
    else:
        real_save = checkpoint.Checkpointer.save

        def save(self, payload):
            first = self.saves == 0
            injector.active = first
            try:
                return real_save(self, payload)
            finally:
                injector.active = False

        checkpoint.Checkpointer.save = save


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] not in PHASES or argv[1] not in MODES or not argv[2].isdigit():
        print(f"usage: python tests/crashpoints.py {{{','.join(PHASES)}}} {{{','.join(MODES)}}} N train [ARGS...]")
        return 2
    phase, mode, target = argv[0], argv[1], int(argv[2])
    injector = Injector(mode, target)
    install(phase, injector)
    status = cli.main(argv[3:])
    if injector.count < target:
        print(f"crashpoints: {phase} had {injector.count} operations", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
