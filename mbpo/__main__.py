"""`python -m mbpo`: the command line (mbpo.cli).

Ctrl-C is held from here on, while the interpreter imports the command line and `mbpo.cli.main`
parses the arguments and imports gymnasium, torch and the training code: a KeyboardInterrupt in
the middle of an import can leave a library half-initialised or print a traceback. A Ctrl-C held
then ends the program with one line and exit status 130 before anything is written. From the run's
start on, Ctrl-C is Python's KeyboardInterrupt, which `mbpo.launch.train` turns into one line and
status 130."""

import signal
import sys

_held: list[int] = []
signal.signal(signal.SIGINT, lambda signum, frame: _held.append(signum))

from mbpo.cli import main  # noqa: E402  (after the handler: the imports are what it guards)

sys.exit(main(pending=_held))
