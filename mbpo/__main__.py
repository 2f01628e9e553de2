"""`python -m mbpo`: the command line (mbpo.cli).

Ctrl-C while the interpreter imports the command line's modules is held until the imports finish,
then ends the program with one line and exit status 130 (a KeyboardInterrupt in the middle of an
import would print a traceback). `mbpo.cli.main` holds it the same way while it parses the
arguments and imports torch and the training code, then restores Python's handler: during the run
Ctrl-C is a KeyboardInterrupt, which `mbpo.launch.train` turns into one line and status 130."""

import signal
import sys

_held: list[int] = []
signal.signal(signal.SIGINT, lambda signum, frame: _held.append(signum))

from mbpo.cli import main  # noqa: E402  (after the handler: the imports are what it guards)

if _held:
    print("python -m mbpo: interrupted while starting; nothing was written", file=sys.stderr)
    sys.exit(130)
sys.exit(main())
