"""The one writer of a run's results folder.

A run folder holds, once complete:
- `eval.csv`: one row per evaluation episode (env_step, episode, return, length, wall_seconds);
- `train.csv`: training diagnostics every `log_every` env steps (MBPO adds `model.csv`, `rollouts.csv`);
- `metadata.json`: resolved config, provenance, timings, the size, row count and SHA-256 of every
  CSV (`files`), every process that worked on the run (`resumes`), and `"status": "complete"`.

While a run is in progress only `*.csv.part` files, `checkpoint.pt` (see `mbpo.checkpoint`),
`.history.jsonl` (one line per process that worked on the run) and `.lock` exist.

Finishing is a journalled commit, restartable at every instruction (`finish`, `complete_finish`):
the part files are fsynced and their records (size, rows, SHA-256) written with the whole metadata
to `.finish.json` (atomically); then each part is renamed into place, `metadata.json` is written
(atomically), and the checkpoint and the history are removed. `.finish.json` stays in the complete
folder as its commit record: a crash anywhere in that sequence, or a `metadata.json` removed
afterwards (Snakemake deletes a failed job's declared outputs before it runs the job again), is
completed from it by the same command without training. A folder with a complete `metadata.json`
is a complete run and a crash never leaves one that looks complete but is not.

Ownership: a writer holds an exclusive `flock` on `.lock` (which names the holder) for its whole
life, so a second process writing the same folder is refused; the kernel releases the lock when
the holder dies, even by SIGKILL, so a stale lock never blocks a re-run. Since a lock on a path
that someone deletes (or replaces) no longer excludes anyone, the writer checks before every write
and every commit step that `.lock` is still the file it locked, and stops without writing if not
(`OwnershipLost`). A run only ever removes the files named in `OWNED_FILES` (and their temporary
files, which a killed writer may leave: any process that takes the lock removes them), never
anything else in the folder.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import fcntl
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Iterator

if TYPE_CHECKING:
    import torch

    from mbpo.config import TrainConfig

EVAL_FILE, METADATA_FILE, LOCK_FILE, CHECKPOINT_FILE = "eval.csv", "metadata.json", ".lock", "checkpoint.pt"
FINISH_FILE, HISTORY_FILE = ".finish.json", ".history.jsonl"
EVAL_COLUMNS = ("env_step", "episode", "return", "length", "wall_seconds")
RUN_STREAMS = ("eval", "train", "model", "rollouts")  # every CSV a run may write
# in the order a fresh start removes them: the completion marker first, then the commit record that
# could complete the run, so an interrupted clean-up never looks complete or completable
OWNED_FILES = (
    METADATA_FILE,
    FINISH_FILE,
    CHECKPOINT_FILE,
    HISTORY_FILE,
    *(f"{name}.csv" for name in RUN_STREAMS),
    *(f"{name}.csv.part" for name in RUN_STREAMS),
)


TRAIN_COLUMNS = (
    "env_step",
    "wall_seconds",
    "updates",
    "critic_loss",
    "actor_loss",
    "alpha",
    "q_mean",
    "entropy",
    "behaviour_return",
    "behaviour_episodes",
)
ROLLOUT_COLUMNS = (
    "env_step",
    "rollout_length",
    "steps",
    "started",
    "kept",
    "alive_at_end",
    "model_buffer_size",
    "seconds",
)
PHASES = ("env", "act", "update", "model", "rollout", "eval")


def model_columns(ensemble_size: int) -> tuple[str, ...]:
    return (
        "env_step",
        "epochs",
        "train_size",
        "holdout_size",
        "train_loss",
        *(f"holdout_mse_{i}" for i in range(ensemble_size)),
        "elites",
        "seconds",
    )


def streams(cfg: "TrainConfig") -> dict[str, tuple[str, ...]]:
    """The CSV files a run writes besides eval.csv, with their columns."""
    out = {"train": TRAIN_COLUMNS}
    if cfg.run.algo == "mbpo":
        out["model"] = model_columns(cfg.mbpo.ensemble_size)
        out["rollouts"] = ROLLOUT_COLUMNS
    return out


class OutputExistsError(FileExistsError):
    """The output folder already holds a complete run."""


class RunLockedError(RuntimeError):
    """Another live process is writing the run folder."""


class RunFileError(ValueError):
    """A run file does not match what the run's metadata says of it."""


class OwnershipLost(RuntimeError):
    """The run folder's `.lock` was removed or replaced under a live writer: another process may
    be writing the folder, so this one stops without writing anything more."""


_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def atomic_file(path: Path, mode: str = "w", before_commit: Callable[[], None] | None = None) -> Iterator[IO]:
    """A handle on a temporary file beside `path` that replaces `path` (fsynced, renamed) when the
    block ends without error, so readers see the old file or the whole new one, never a part.
    `before_commit` runs just before the rename (a writer's ownership check) and may raise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would create it, not mkstemp's owner-only 0600
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if before_commit is not None:
            before_commit()
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a write or fsync on the handle: name the file it was for
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """Re-raise an `OSError` without a file name (a write or fsync on a handle) as one naming `path`."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise


def write_atomic(path: Path, text: str, before_commit: Callable[[], None] | None = None) -> None:
    """Write `text` to `path` atomically (see `atomic_file`)."""
    with atomic_file(path, before_commit=before_commit) as handle:
        handle.write(text)


def fsync_folder(folder: Path) -> None:
    """Make the renames and removals in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP, errno.EROFS):
            raise OSError(exc.errno, exc.strerror or str(exc), str(folder)) from None
        # some filesystems cannot fsync a folder: the renames are atomic all the same
    finally:
        os.close(fd)


def _unlink_temporaries(folder: Path, name: str) -> None:
    for tmp in folder.glob(f".{name}.*.tmp"):
        if tmp.is_symlink() or not tmp.is_dir():  # a folder of that name is not one of ours: kept
            tmp.unlink(missing_ok=True)


class RunFolder:
    """Exclusive ownership of a run folder for as long as the object lives (see the module doc).

    Raises `NotADirectoryError`/`PermissionError` for an unusable path, `RunFileError` for a
    folder where the run writes a file (never deleted, even with `--overwrite`), and
    `RunLockedError` naming the holder when another live process owns the folder."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(self.out))
        for name in (LOCK_FILE, *OWNED_FILES):
            path = self.out / name
            if path.is_dir() and not path.is_symlink():
                raise RunFileError(f"{path} is a folder where the run writes a file; move it out of the way")
        self.out.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.out / LOCK_FILE, "a+")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "another process"
            self._handle.close()
            raise RunLockedError(f"{self.out} is being written by {holder}; wait for it or stop it first") from None
        # the lock is on this file: remember which one, so a `.lock` deleted or replaced under us
        # (which lets a second writer in) is noticed before the next write
        stat = os.fstat(self._handle.fileno())
        self._identity = (stat.st_dev, stat.st_ino)
        self.check()  # locked a file that was unlinked between open and flock: not ours
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {now_iso()}\n")
        self._handle.flush()
        self.remove_temporaries()  # a killed writer's half-written files: never valid, ours now

    def check(self) -> None:
        """Raise `OwnershipLost` unless `.lock` is still the file this process locked."""
        try:
            stat = os.stat(self.out / LOCK_FILE)
        except FileNotFoundError:
            found = None
        else:
            found = (stat.st_dev, stat.st_ino)
        if found != self._identity:
            what = "removed" if found is None else "replaced"
            raise OwnershipLost(
                f"{self.out / LOCK_FILE} was {what} while this run was writing {self.out}, so another process may "
                "be writing it too; stopped without writing more (run the command again once no other process "
                "writes the folder)"
            )

    def remove_temporaries(self) -> None:
        for name in OWNED_FILES:
            _unlink_temporaries(self.out, name)

    def remove_owned(self) -> None:
        """Delete every file a run writes (and nothing else) before a fresh start."""
        # in OWNED_FILES' order: the completion marker and the journal first
        for name in OWNED_FILES:
            (self.out / name).unlink(missing_ok=True)
            _unlink_temporaries(self.out, name)

    def log_process(self, event: str, env_step: int, extra: dict[str, Any] | None = None) -> None:
        """Append this process to the run's history (`.history.jsonl`, fsynced), before it works
        on the run: the history, not the checkpoint, lists the processes, so one killed before
        its first checkpoint is still counted."""
        self.check()
        entry = {"event": event, "env_step": env_step, "time": now_iso(), "pid": os.getpid(), **(extra or {})}
        with open(self.out / HISTORY_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def release(self) -> None:
        if not self._handle.closed:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


def read_history(out: Path) -> list[dict[str, Any]] | None:
    """The processes `.history.jsonl` lists, oldest first; None when there is no history (a run
    started before it was kept). A line cut short by a crash while it was written is skipped."""
    path = Path(out) / HISTORY_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("event"), str):
            entries.append(entry)
    return entries


def resumes_from_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """metadata.json's `resumes`: every process after the first that worked on the run."""
    return [{k: v for k, v in entry.items() if k != "event"} for entry in history if entry["event"] != "start"]


def file_record(path: Path) -> dict[str, Any]:
    """Size, data rows (lines after the header) and SHA-256 of a CSV file."""
    digest, rows, size = hashlib.sha256(), 0, 0
    with open(path, "rb") as handle:
        for line in handle:
            digest.update(line)
            rows += 1
            size += len(line)
    return {"rows": max(rows - 1, 0), "bytes": size, "sha256": digest.hexdigest()}


def verify_run_files(run_dir: Path, metadata: dict[str, Any]) -> None:
    """Check every CSV named in `metadata["files"]` against its recorded size, rows and checksum;
    raise `RunFileError` naming the first file that differs. Metadata written before checksums
    were recorded has no `files`: then nothing is checked here (readers still parse the files)."""
    for name, expected in metadata.get("files", {}).items():
        path = Path(run_dir) / name
        if not path.is_file():
            raise RunFileError(f"{path}: missing (its metadata.json lists it)")
        found = file_record(path)
        for key in ("bytes", "rows", "sha256"):
            if found[key] != expected.get(key):
                raise RunFileError(
                    f"{path}: {key} {found[key]} differs from {expected.get(key)} recorded in metadata.json "
                    "(the file was changed or truncated after the run finished)"
                )


def is_complete(out: Path) -> bool:
    """Whether `out` holds a complete run: False without a `metadata.json`; `RunFileError` for
    one that is not a complete run's (unreadable, not JSON, not an object, no `status: complete`):
    a run writes its metadata only on completion, so such a file is foreign or damaged, and the
    caller decides whether it may be replaced."""
    meta = out / METADATA_FILE
    if not meta.exists():
        return False
    try:
        data = json.loads(meta.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RunFileError(f"{meta}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(f"{meta}: not a run's metadata (not JSON text: {exc})") from None
    if not isinstance(data, dict) or data.get("status") != "complete":
        kind = "no status 'complete'" if isinstance(data, dict) else f"a JSON {type(data).__name__}, not an object"
        raise RunFileError(f"{meta}: not a complete run's metadata ({kind})")
    return True


def _format(value: Any) -> Any:
    # repr keeps every bit of a float, so byte-identical files mean identical numbers
    if isinstance(value, float):
        return repr(value)
    return value


class RunWriter:
    """Streams a run's rows into `<name>.csv.part` files and commits them with the metadata.

    `streams` maps a file stem to its columns; `eval` is always one of them. The caller owns the
    folder (`RunFolder`) and has cleaned it for a fresh start. To resume, pass `offsets` (from
    `offsets()` at the checkpoint): each part file is cut back to that length, which drops the
    rows written after the checkpoint, and appended to.
    """

    def __init__(
        self,
        out: Path,
        streams: dict[str, Iterable[str]],
        offsets: dict[str, int] | None = None,
        check: Callable[[], None] | None = None,
    ) -> None:
        self.out = Path(out)
        self.check = check if check is not None else (lambda: None)  # the folder's ownership check
        self.check()
        self.columns = {"eval": EVAL_COLUMNS, **{name: tuple(cols) for name, cols in streams.items()}}
        if offsets is not None:
            self._handles = {}
            for name in self.columns:
                part = self.out / f"{name}.csv.part"
                if not part.is_file() or part.stat().st_size < offsets[name]:
                    raise RunFileError(
                        f"{part}: shorter than its checkpoint says ({offsets[name]} bytes); cannot resume"
                    )
                handle = part.open("r+", newline="")
                handle.truncate(offsets[name])
                handle.seek(offsets[name])
                self._handles[name] = handle
            self._writers = {name: csv.writer(h, lineterminator="\n") for name, h in self._handles.items()}
            return
        self._handles = {name: (self.out / f"{name}.csv.part").open("w", newline="") for name in self.columns}
        self._writers = {name: csv.writer(h, lineterminator="\n") for name, h in self._handles.items()}
        for name, columns in self.columns.items():
            self._writers[name].writerow(columns)

    def offsets(self) -> dict[str, int]:
        """Flush every part file to disk and return its length: what a checkpoint records."""
        self.check()
        out = {}
        for name, handle in self._handles.items():
            with naming(self.out / f"{name}.csv.part"):
                handle.flush()
                os.fsync(handle.fileno())
            out[name] = handle.tell()
        return out

    def eval_rows(self, rows: Iterable[tuple]) -> None:
        self.check()
        with naming(self.out / "eval.csv.part"):
            self._writers["eval"].writerows([[_format(v) for v in row] for row in rows])
            self._handles["eval"].flush()

    def row(self, stream: str, row: dict[str, Any]) -> None:
        """Append one row to `stream`; keys not in its columns are an error, missing ones blank."""
        unknown = set(row) - set(self.columns[stream])
        if unknown:
            raise KeyError(f"{stream}.csv has no column(s) {sorted(unknown)}")
        self.check()
        with naming(self.out / f"{stream}.csv.part"):
            self._writers[stream].writerow([_format(row.get(c, "")) for c in self.columns[stream]])
            self._handles[stream].flush()

    def finish(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Commit the run: fsync the part files, journal their records with the whole metadata
        (`.finish.json`), then `complete_finish`. Returns the metadata written."""
        files = {}
        for name, handle in self._handles.items():
            with naming(self.out / f"{name}.csv.part"):
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
            files[f"{name}.csv"] = file_record(self.out / f"{name}.csv.part")
        record = {**json_safe(metadata), "files": files, "status": "complete"}
        journal = json.dumps({"metadata": record}, indent=2, allow_nan=False) + "\n"
        write_atomic(self.out / FINISH_FILE, journal, before_commit=self.check)
        return complete_finish(self.out, self.check)

    def close(self) -> None:
        """Close without committing (after a failure): only `*.part` files remain."""
        for handle in self._handles.values():
            if not handle.closed:
                handle.close()


def read_finish(out: Path) -> dict[str, Any] | None:
    """The metadata journalled in `.finish.json` by a run that was finishing, or None if there
    is no journal. `RunFileError` for one that is not a finishing run's (it is written
    atomically, so a damaged one was changed by something else)."""
    path = Path(out) / FINISH_FILE
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(f"{path}: not a finishing run's journal (not JSON text: {exc})") from None
    meta = data.get("metadata") if isinstance(data, dict) else None
    if not (
        isinstance(meta, dict)
        and meta.get("status") == "complete"
        and isinstance(meta.get("files"), dict)
        and all(isinstance(name, str) and isinstance(rec, dict) for name, rec in meta["files"].items())
    ):
        raise RunFileError(f"{path}: not a finishing run's journal (no complete metadata with its files)")
    return meta


def commit_pending(out: Path) -> bool:
    """Whether the commit that `.finish.json` records is unfinished in `out`: its metadata.json
    missing or other than recorded, or a part file, the checkpoint or the history still there."""
    out = Path(out)
    meta = read_finish(out)
    if meta is None:
        return False
    try:
        current = (out / METADATA_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return True
    if current != _metadata_text(meta):
        return True
    leftovers = [CHECKPOINT_FILE, HISTORY_FILE, *(f"{name}.part" for name in meta["files"])]
    return any((out / name).exists() for name in leftovers)


def _metadata_text(meta: dict[str, Any]) -> str:
    return json.dumps(meta, indent=2, allow_nan=False) + "\n"


def complete_finish(out: Path, check: Callable[[], None] | None = None) -> dict[str, Any]:
    """Carry out (or carry on) the commit that `.finish.json` records; every step can be
    repeated, so a crash at any instruction leaves a state this completes: each part file whose
    record matches is renamed into place (a file already in place must match its record),
    `metadata.json` is written, then the checkpoint, the history and temporary files are removed.
    `RunFileError` when a file matches neither its part nor its record."""
    out = Path(out)
    check = check if check is not None else (lambda: None)
    meta = read_finish(out)
    if meta is None:
        raise RunFileError(f"{out / FINISH_FILE}: missing")
    for name, expected in meta["files"].items():
        final, part = out / name, out / f"{name}.part"
        if part.is_file():
            found = file_record(part)
            if found != {k: expected.get(k) for k in found}:
                raise RunFileError(
                    f"{part}: differs from the record in {out / FINISH_FILE} (changed after the run finished); "
                    "pass --overwrite to start over"
                )
            check()
            os.replace(part, final)
        elif final.is_file():
            verify_run_files(out, {"files": {name: expected}})
        else:
            raise RunFileError(
                f"{final}: missing, and so is its part file ({out / FINISH_FILE} records it); "
                "pass --overwrite to start over"
            )
    fsync_folder(out)
    text = _metadata_text(meta)
    meta_path = out / METADATA_FILE
    try:
        current = meta_path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        current = None
    if current != text:
        write_atomic(meta_path, text, before_commit=check)
    for name in (CHECKPOINT_FILE, HISTORY_FILE):
        check()
        (out / name).unlink(missing_ok=True)
    for name in OWNED_FILES:
        _unlink_temporaries(out, name)
    fsync_folder(out)
    return meta


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, so the JSON is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _read_cpuinfo() -> str:
    """/proc/cpuinfo's text; empty off Linux."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpuinfo(key: str, text: str | None = None) -> str | None:
    """The first value of `key` in /proc/cpuinfo (or `text`), matched exactly ("model" is not
    "model name"); None off Linux or where the key is missing."""
    for line in (_read_cpuinfo() if text is None else text).splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == key:
            return value.strip()
    return None


SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def cpu_name(text: str | None = None) -> str:
    return _cpuinfo("model name", text) or platform.processor() or platform.machine()


def cpu_info(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU's vendor, model, its family/model/stepping numbers and SIMD flags (a VM may name
    only "AMD EPYC": the numbers tell its generation, the flags which kernels MKL and torch can
    pick), and the instruction set torch's CPU kernels use. Two machines of one name can differ in
    floating-point results; these fields say whether they are the same CPU."""
    import torch  # here, not at the top: the analysis commands read run files without torch

    text = _read_cpuinfo() if cpuinfo is None else cpuinfo
    flags = set((_cpuinfo("flags", text) or "").split())
    return {
        "vendor": _cpuinfo("vendor_id", text) or platform.machine(),
        "model": cpu_name(text),
        "family_model_stepping": [_cpuinfo(k, text) for k in ("cpu family", "model", "stepping")],
        "microcode": _cpuinfo("microcode", text),
        "simd": [f for f in SIMD_FLAGS if f in flags],
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
    }


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    return cpu_name()


def provenance(device: torch.device) -> dict[str, Any]:
    """Where and with what a run was made: versions, git revision, host, device."""
    import gymnasium
    import numpy as np
    import torch

    revision = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_info(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "gymnasium": gymnasium.__version__,
            "numpy": np.__version__,
        },
        "git_revision": revision,
        "git_dirty": None if status is None else bool(status),
        "argv": sys.argv,
    }


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
