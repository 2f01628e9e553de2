"""Bad input on the command line: one line naming the problem and exit status 2, never a usage
block or a traceback. Every command-line tool of the project (`python -m mbpo`, `python -m
analysis.*`, `benchmarks/*.py`) parses its arguments with `OneLineParser`."""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_USAGE = 2


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type's name if it has none), for the one
    line a command prints."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


class ArgumentError(ValueError):
    """Arguments a parser used as a library (`raise_errors = True`) would refuse."""


class OneLineParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose errors are `prog: error: message` on one line, exit 2
    (argparse prints the usage block first). `--help` is unchanged. With `raise_errors` set, an
    error raises `ArgumentError` instead, and so does any other attempt to exit (`--help` among
    the arguments), so a caller checking arguments is never ended by them."""

    raise_errors = False

    def error(self, message: str) -> NoReturn:
        if self.raise_errors:
            raise ArgumentError(message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if self.raise_errors:
            raise ArgumentError((message or f"{self.prog} would exit with status {status}").strip())
        super().exit(status, message)

    def print_help(self, file=None) -> None:  # noqa: ANN001 (argparse's signature)
        if self.raise_errors:
            raise ArgumentError("--help is not a run setting")
        super().print_help(file)
