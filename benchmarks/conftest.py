"""pytest-benchmark suite (outside the normal test run): `pytest benchmarks/ --benchmark-only`.

Every test times one thing on one torch thread and records itself under its benchmark group as
`ours` or as a counterpart (`autograd`: a conventional nn.Module + autograd + torch.optim version;
`seed`: the tutorial's code in ../shared/baseline, skipped where that folder is absent). At the
end the summary prints, per group, each counterpart's median time over ours: the speedup,
measured in the same run; the ratios also go into the saved JSON (`--benchmark-autosave`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = Path(os.environ.get("MBPO_SEED_DIR", ROOT.parent / "shared" / "baseline"))
_MEDIANS: dict[str, dict[str, float]] = {}  # group -> kind -> median seconds per call
_SCALE: dict[tuple[str, str], float] = {}  # (group, kind) -> divisor (e.g. env steps per call)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture()
def record(benchmark):
    """Call after the benchmark ran: `record("ours")`, `record("seed", per=steps)`."""

    def _record(kind: str, per: float = 1.0) -> None:
        stats = benchmark.stats
        if stats is None:  # --benchmark-disable: nothing was timed
            return
        _MEDIANS.setdefault(benchmark.group, {})[kind] = stats.stats.median / per
        benchmark.extra_info["kind"] = kind
        benchmark.extra_info["median_seconds_per_unit"] = stats.stats.median / per

    return _record


@pytest.fixture(scope="session")  # pytest's scope: one per test run
def seed_module():
    """The seed tutorial's MBPO module, imported from ../shared/baseline (skips without it)."""
    if not (SEED_DIR / "seed_mbpo.py").is_file():
        pytest.skip(f"no seed code in {SEED_DIR} (set MBPO_SEED_DIR)")
    sys.path.insert(0, str(SEED_DIR))
    import seed_mbpo

    seed_mbpo.target_entropy = -1  # the seed's SAC.update reads this module global
    return seed_mbpo


def ratios() -> dict[str, dict[str, float]]:
    out = {}
    for group, kinds in sorted(_MEDIANS.items()):
        if "ours" in kinds:
            out[group] = {kind: t / kinds["ours"] for kind, t in kinds.items() if kind != "ours"}
    return out


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["speedups_over_counterparts"] = ratios()


def pytest_terminal_summary(terminalreporter):
    found = {g: r for g, r in ratios().items() if r}
    if not found:
        return
    terminalreporter.section("speedup of ours over each counterpart (median time ratio, same run)")
    for group, kinds in found.items():
        shown = ", ".join(f"{kind} {ratio:.2f}x" for kind, ratio in kinds.items())
        ours = _MEDIANS[group]["ours"]
        terminalreporter.write_line(f"{group:<28} ours {ours * 1e3:9.3f} ms/unit   {shown}")
