"""Progress output: a bar on a terminal, plain periodic lines otherwise (logs, Snakemake, CI)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, label: str, interval: int, stream: TextIO = sys.stderr, quiet: bool = False) -> None:
        self.total, self.label, self.interval, self.stream, self.quiet = total, label, interval, stream, quiet
        self.start = time.perf_counter()
        self.info: dict[str, Any] = {}
        self.bar = None
        self._printed = -1
        self._from = 0
        if not quiet and stream.isatty():
            self.bar = tqdm(total=total, desc=label, unit="step", file=stream, dynamic_ncols=True, mininterval=0.5)

    def update(self, step: int, **info: Any) -> None:
        """Report that `step` env steps are done; `info` (e.g. the last eval return) is shown."""
        if info:
            self.info.update(info)
            if self.bar is not None:
                self.bar.set_postfix(self.info, refresh=False)
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
        elif not self.quiet and step != self._printed and (step % self.interval == 0 or step == self.total):
            self._printed = step
            elapsed = time.perf_counter() - self.start
            rate = (step - self._from) / elapsed if elapsed > 0 else 0.0
            # no step taken yet (step 0, or just resumed): no rate to estimate from
            eta = f"{(self.total - step) / rate:.0f}s" if rate > 0 else "?"
            extra = " ".join(f"{k}={v}" for k, v in self.info.items())
            print(
                f"[{self.label}] step {step}/{self.total} ({100 * step / self.total:.0f}%) "
                f"{rate:.0f} steps/s elapsed {elapsed:.0f}s eta {eta} {extra}".rstrip(),
                file=self.stream,
                flush=True,
            )

    def resumed(self, step: int) -> None:
        """The run continues from `step`: rates count from here."""
        self.start = time.perf_counter()
        self._from = step
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
