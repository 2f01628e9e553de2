"""Time the README's two commands from a fresh clone, as a new user runs them, and record it.

    python benchmarks/fresh_clone.py [--only main|tests] [--out results/quickstart/record.json]

Clones the repository's committed HEAD into a temporary folder, runs each of the README's Quick
start commands there (a new virtual environment each, install included), and writes a record:
the date, the machine (CPU model and SIMD flags, cores, memory, torch build, GPU), the revision,
each command with its exit status, minutes, and the test runner's summary line, and the load
average when it started (other work on the machine slows both). The README's cost line is
rendered from it (`python -m analysis.docs`). Takes as long as the two commands: tens of minutes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_readme import readme_commands  # noqa: E402  the README's commands, read as CI reads them

from mbpo.record import atomic_file, cpu_name, write_atomic  # noqa: E402
from mbpo.usage import OneLineParser  # noqa: E402


def machine() -> dict:
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    memory_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return {
        "cpu": cpu_name(),
        "simd": [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags],
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "platform": platform.platform(),
        "gpu": None,  # these commands run on the CPU: the pinned CPU build of torch
    }


def run(command: str, where: Path) -> dict:
    load = os.getloadavg()[0]
    start = time.monotonic()
    result = subprocess.run(["bash", "-c", command], cwd=where, capture_output=True, text=True)
    minutes = (time.monotonic() - start) / 60
    summary = [line.strip("= ") for line in result.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return {
        "command": command,
        "exit_status": result.returncode,
        "minutes": round(minutes, 1),
        "summary": summary[-1] if summary else None,
        "load_average_at_start": round(load, 2),
        "tail": (result.stdout + result.stderr)[-2000:] if result.returncode else "",
    }


def keep_default_experiment(clone: Path, record: dict, command: str) -> None:
    """The main job's summary table and sample-efficiency figure, kept as the record of the default
    experiment (`results/default/`: the docs' table is rendered, and their figure copied, from
    there by `python -m analysis.docs`)."""
    out = ROOT / "results" / "default"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("summary.csv", "summary.md"):
        write_atomic(out / name, (clone / "results" / "tables" / name).read_text())
    with atomic_file(out / "sample_efficiency.png", "wb") as handle:
        handle.write((clone / "results" / "figures" / "sample_efficiency.png").read_bytes())
    m = record["machine"]
    write_atomic(
        out / "README.md",
        "# The default experiment (config/config.yaml)\n\n"
        f"Made {record['date']} on a {m['cores']}-core {m['cpu']} ({', '.join(m['simd'])}), no GPU, by the README's "
        f"main command from a fresh clone at {record['revision'][:12]} (`{record['recorded_by']}`): `{command}`. "
        "`summary.{csv,md}` are its `results/tables/summary.*` and `sample_efficiency.png` its "
        "`results/figures/sample_efficiency.png`; the docs' table and figure come from them.\n",
    )


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="benchmarks/fresh_clone.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["main", "tests"], help="time one command only")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "quickstart" / "record.json")
    args = parser.parse_args(argv)
    main_command, test_command = readme_commands()
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    record = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes"),
        "machine": machine(),
        "revision": revision,
        "recorded_by": "python benchmarks/fresh_clone.py" + (f" --only {args.only}" if args.only else ""),
        "commands": {},
    }
    with tempfile.TemporaryDirectory(prefix="fresh-clone-") as tmp:
        for name, command in (("main", main_command), ("tests", test_command)):
            if args.only and args.only != name:
                continue
            clone = Path(tmp) / name
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            print(f"{parser.prog}: {name}: {command}", file=sys.stderr)
            record["commands"][name] = run(command, clone)
            if name == "main" and record["commands"][name]["exit_status"] == 0:
                keep_default_experiment(clone, record, command)
            print(f"{parser.prog}: {name}: {record['commands'][name]['minutes']} min, exit "
                  f"{record['commands'][name]['exit_status']}", file=sys.stderr)  # fmt: skip
    import torch

    record["machine"]["torch"] = torch.__version__
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, json.dumps(record, indent=2) + "\n")
    return 0 if all(c["exit_status"] == 0 for c in record["commands"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
