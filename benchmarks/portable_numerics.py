"""Cost of a portable-numerics mode, measured side by side in one run.

    python benchmarks/portable_numerics.py [--repeats 2]

Modes are environment variables set before torch starts (they cannot be switched inside a
process): `default` (torch's and MKL's own dispatch) and `portable` (ATen's baseline kernels,
MKL's SSE2 "COMPATIBLE" reproducibility branch, numpy without AVX-512 loops). For each mode,
alternating, it times the numerics fingerprint (analysis.numerics) and two short CI-experiment
trainings (SAC `seed` preset 2000 steps, MBPO `default` preset 1000 steps; one thread), and
prints each mode's fingerprint (equal fingerprints across machines = byte-identical runs) and
the portable/default time ratios.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mbpo.usage import OneLineParser

ROOT = Path(__file__).resolve().parent.parent
MODES = {
    "default": {},
    "portable": {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_CBWR": "COMPATIBLE",
        "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR",
    },
}
TRAININGS = {
    "sac 2000 steps": ["--algo", "sac", "--preset", "seed", "--total-steps", "2000"],
    "mbpo 1000 steps": ["--algo", "mbpo", "--preset", "default", "--total-steps", "1000", "--rollout-length", "1"],
}
COMMON = [
    "--env",
    "Pendulum-v1",
    "--seed",
    "0",
    "--eval-every",
    "200",
    "--eval-episodes",
    "5",
    "--threads",
    "1",
    "--quiet",
]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(cmd, env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{result.stderr[-2000:]}")
    return time.perf_counter() - start, result.stdout


def main() -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    times: dict[tuple[str, str], list[float]] = {}
    prints: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for mode, env in MODES.items():
                _, out = timed([sys.executable, "-m", "analysis.numerics"], env)
                prints[mode] = (
                    out.strip().splitlines()[-1].split(";")[0]
                    + "; "
                    + ", ".join(line.split(": ")[1][:16] for line in out.splitlines()[:-1])
                )
                times.setdefault((mode, "fingerprint"), []).append(float(out.strip().split("; ")[1].split()[0]))
                for name, flags in TRAININGS.items():
                    out_dir = Path(tmp) / f"{mode}-{name.split()[0]}-{rep}"
                    seconds, _ = timed(
                        [sys.executable, "-m", "mbpo", "train", *flags, *COMMON, "--out", str(out_dir)], env
                    )
                    times.setdefault((mode, name), []).append(seconds)
    for mode, line in prints.items():
        print(f"{mode:9} fingerprint: {line}")
    for what in ["fingerprint", *TRAININGS]:
        d, p = statistics.median(times["default", what]), statistics.median(times["portable", what])
        print(f"{what:16} default {d:7.2f} s  portable {p:7.2f} s  ratio {p / d:5.2f}x  (medians of {args.repeats})")


if __name__ == "__main__":
    main()
