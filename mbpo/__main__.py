"""`python -m mbpo`: the command line (mbpo.cli).

Ctrl-C while the interpreter imports torch, gymnasium and the rest is held until the imports
finish, then ends the program with one line and exit status 130: a KeyboardInterrupt raised in
the middle of an import can leave a library half-initialised (numpy without `logical_or`) or be
swallowed by one, after which the run would go on or fail with a traceback. From `main` on,
Ctrl-C is an ordinary KeyboardInterrupt, which `main` turns into one line and status 130."""

import signal
import sys

_held: list[int] = []
signal.signal(signal.SIGINT, lambda signum, frame: _held.append(signum))

from mbpo.cli import main  # noqa: E402  (after the handler: the imports are what it guards)

signal.signal(signal.SIGINT, signal.default_int_handler)
if _held:
    print("python -m mbpo: interrupted while starting; nothing was written", file=sys.stderr)
    sys.exit(130)
sys.exit(main())
