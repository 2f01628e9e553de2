"""The completion record of a job that trained several seeds in lockstep (the workflow's marker).

    python -m plan.jobs RECORD RUN_DIR [RUN_DIR ...]

Run after `python -m mbpo train --seeds ...` succeeded: every run folder must hold a complete run
(metadata.json verified against its files), and RECORD lists them with the SHA-256 of each
metadata.json, written atomically. The record is the job's only declared output: when a job
fails, Snakemake deletes the record alone, and the seeds that completed keep their folders
(a re-run finds them complete and trains only the others).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path


def record(path: Path, runs: list[Path]) -> None:
    from mbpo.record import METADATA_FILE, RunFileError, verify_run_files, write_atomic

    entries = []
    for run in runs:
        meta_path = run / METADATA_FILE
        try:
            text = meta_path.read_text(encoding="utf-8")
            verify_run_files(run, json.loads(text))
        except (OSError, ValueError, RunFileError) as exc:
            raise SystemExit(f"python -m plan.jobs: error: {run} holds no complete run ({exc})") from None
        entries.append({"run": str(run), "metadata_sha256": hashlib.sha256(text.encode()).hexdigest()})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"runs": entries}, indent=2) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m plan.jobs RECORD RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    record(Path(argv[0]), [Path(a) for a in argv[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
