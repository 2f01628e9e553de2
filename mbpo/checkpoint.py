"""Checkpoints: a run's whole state, saved atomically so that an interrupted run resumes exactly.

A checkpoint (`checkpoint.pt` in the run folder) holds the resolved config (a resume with a
different one is refused), the trainer's state (`mbpo.train.Trainer.state_dict`: networks,
target networks, temperature, every optimiser, the ensemble with its normaliser and elites, both
replay buffers' filled rows, every random generator, the current episode's reset RNG state and
actions, the timing counters), the length each `*.csv.part` file had when it was taken, and the
code revision. Resuming cuts each part file back to that length and continues from the state, so
a run killed at any moment and resumed writes the same bytes as one never interrupted (clock
columns aside; `tests/test_checkpoint.py` kills one with SIGKILL and compares).

Checkpoints are taken at env-step boundaries, every `interval` seconds of wall-clock (a time
interval bounds the work lost whatever the run's speed), and at once when the process receives
SIGTERM (a SLURM preemption or time limit), after which the run stops with `Preempted`.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any, Callable

import torch

from mbpo.record import CHECKPOINT_FILE, atomic_file
from mbpo.usage import first_line

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not belong to this run."""


class Preempted(Exception):
    """The run saved a checkpoint after SIGTERM and stopped; re-running the command resumes it."""


def save(path: Path, payload: dict[str, Any], before_commit: Callable[[], None] | None = None) -> float:
    """Write `payload` to `path` atomically (temp file, fsync, rename); returns the seconds taken.
    A failed write (a full disk, ...) raises the `OSError` behind it, naming `path`: torch wraps
    it in a `RuntimeError` of its own, and the temporary file is removed either way."""
    t = time.perf_counter()
    try:
        with atomic_file(path, "wb", before_commit=before_commit) as handle:
            torch.save({"format": FORMAT, **payload}, handle)
    except RuntimeError as exc:
        cause = _os_error_behind(exc)
        if cause is None:
            raise
        raise OSError(cause.errno, cause.strerror or str(cause), str(path)) from None
    return time.perf_counter() - t


def _os_error_behind(exc: BaseException) -> OSError | None:
    """The `OSError` that `exc` was raised from or during, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def load(path: Path, device: torch.device) -> dict[str, Any]:
    """Read a checkpoint onto `device`; `CheckpointError` if it is unreadable or of another format."""
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # a torn or foreign file: torch raises several kinds
        first = first_line(exc)
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {first})") from None
    problem = structure_problem(payload)
    if problem is not None:
        raise CheckpointError(f"{path}: not a checkpoint of this version of mbpo ({problem})")
    return payload


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def structure_problem(payload: Any) -> str | None:
    """What is wrong with the top level of a loaded checkpoint (the parts the resume path reads
    before the trainer's own state, which `Trainer.load_state_dict` checks), or None."""
    if not isinstance(payload, dict):
        return f"a {type(payload).__name__}, not a dict"
    if payload.get("format") != FORMAT:
        return f"format {payload.get('format')!r}, expected {FORMAT}"
    expected = {"config": dict, "start_time": str, "resumes": list, "offsets": dict, "trainer": dict}
    for key, kind in expected.items():
        if key not in payload:
            return f"no {key!r}"
        if not isinstance(payload[key], kind):
            return f"{key!r} is a {type(payload[key]).__name__}, not a {kind.__name__}"
    if not all(isinstance(r, dict) for r in payload["resumes"]):
        return "'resumes' holds something other than dicts"
    if not all(isinstance(k, str) and _is_int(v) and v >= 0 for k, v in payload["offsets"].items()):
        return "'offsets' is not a map of file names to byte lengths"
    step = payload["trainer"].get("step")
    if not (_is_int(step) and step >= 0):
        return f"the trainer's step is {step!r}"
    counts = payload.get("checkpoints")  # absent in checkpoints written before the counts were carried
    if counts is not None and not (
        isinstance(counts, dict)
        and _is_int(counts.get("saves"))
        and counts["saves"] >= 1
        and isinstance(counts.get("seconds"), (int, float))
        and counts["seconds"] >= 0
    ):
        return f"'checkpoints' is {counts!r}"
    return None


def config_difference(saved: dict, current: dict, prefix: str = "") -> str | None:
    """The first field where two resolved configs differ, as `name: saved -> current`."""
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = config_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            return f"{prefix}{key}: {a!r} in the checkpoint, {b!r} now"
    return None


class Checkpointer:
    """Decides when to checkpoint and writes the file; catches SIGTERM while it lives.

    The counts of saves and of their seconds cover the whole run: each checkpoint carries them
    (`checkpoints`: its own save included, its own write time not, which is unknown until it is
    written) and a resumed run passes the loaded checkpoint's as `resumed_from`."""

    def __init__(
        self,
        out: Path,
        interval: float,
        header: dict[str, Any],
        resumed_from: dict[str, Any] | None = None,
        check: Callable[[], None] | None = None,
        catch_sigterm: bool = True,
    ) -> None:
        """`catch_sigterm=False`: a `CheckpointGroup` catches it for its members."""
        self.path = Path(out) / CHECKPOINT_FILE
        self.check = check  # the run folder's ownership check, before and at the commit of each save
        self.interval, self.header = interval, header
        self.last = time.monotonic()
        self.saves, self.seconds, self.bytes = 0, 0.0, 0
        self.saves_before, self.seconds_before, self.counts_known = 0, 0.0, True
        if resumed_from is not None:
            counts = resumed_from.get("checkpoints")
            # a checkpoint from before the counts were carried: at least itself was saved
            self.saves_before = counts["saves"] if counts is not None else 1
            self.seconds_before = float(counts["seconds"]) if counts is not None else 0.0
            self.counts_known = counts is not None
            self.bytes = self.path.stat().st_size if self.path.exists() else 0
        self.terminate = False
        self._previous = signal.signal(signal.SIGTERM, self._on_term) if catch_sigterm else None

    def _on_term(self, signum: int, frame: Any) -> None:
        self.terminate = True

    def due(self) -> bool:
        return self.terminate or (self.interval > 0 and time.monotonic() - self.last >= self.interval)

    def save(self, payload: dict[str, Any]) -> None:
        counts = {"saves": self.saves_before + self.saves + 1, "seconds": self.seconds_before + self.seconds}
        if self.check is not None:
            self.check()
        self.seconds += save(self.path, {**self.header, **payload, "checkpoints": counts}, self.check)
        self.saves += 1
        self.bytes = self.path.stat().st_size
        self.last = time.monotonic()
        if self.terminate:
            raise Preempted(f"SIGTERM: checkpoint saved at env step {payload['trainer']['step']} in {self.path}")

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def summary(self) -> dict[str, Any]:
        """Saves and write seconds of the whole run, across resumes (the write time of the last
        checkpoint before each interruption is not known, so not counted), the last one's size,
        and this process's interval."""
        out = {
            "saves": self.saves_before + self.saves,
            "seconds": self.seconds_before + self.seconds,
            "last_bytes": self.bytes,
            "interval_seconds": self.interval,
        }
        if not self.counts_known:
            out["saves_before_resume_unknown"] = True
        return out


class CheckpointGroup:
    """The checkpoints of seeds trained in lockstep: one `Checkpointer` per seed (each seed's
    folder gets the checkpoint its run alone would write), saved together at the same env step.
    SIGTERM is caught once for all: every seed's checkpoint is saved, then `Preempted`."""

    def __init__(self, members: dict[int, Checkpointer]) -> None:
        self.members = members  # by the seed's position in the trainer
        self.interval = next(iter(members.values())).interval
        self.last = time.monotonic()
        self.terminate = False
        self._previous = signal.signal(signal.SIGTERM, self._on_term)

    def _on_term(self, signum: int, frame: Any) -> None:
        self.terminate = True

    def due(self) -> bool:
        return self.terminate or (self.interval > 0 and time.monotonic() - self.last >= self.interval)

    def save(self, payloads: dict[int, dict[str, Any]]) -> None:
        """Save each seed's payload (by position; seeds that stopped have none)."""
        for position, payload in payloads.items():
            self.members[position].save(payload)
        self.last = time.monotonic()
        if self.terminate:
            step = next(iter(payloads.values()))["trainer"]["step"] if payloads else "?"
            raise Preempted(f"SIGTERM: every seed's checkpoint saved at env step {step}")

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
        for member in self.members.values():
            member.close()
