"""What a run asks a cluster for (plan/resources.py), checked by hand."""

from __future__ import annotations

import math

import pytest

from plan import resources
from plan.resources import (
    COSTS,
    DEFAULT_COSTS,
    Cost,
    cost_of,
    run_resources as resources_of,
)
from mbpo.cli import resolve_args


def cfg(*args: str):
    """A resolved config and its env's sizes, as the plan holds them for each run."""
    return resolve_args(list(args))


def run_resources(resolved):
    return resources_of(*resolved)


def test_a_cost_integrates_its_growth_and_scales_with_the_update_ratio():
    cost = Cost("E", "mbpo", "cpu", 0.5, 1e-5, 20, "by hand")
    assert cost.seconds(1000, 20) == pytest.approx(0.5 * 1000 + 1e-5 * 1000**2 / 2)
    assert cost.seconds(1000, 40) == pytest.approx(2 * cost.seconds(1000, 20))
    assert cost.seconds(1000, 10) == cost.seconds(1000, 20)  # fewer updates: never less than measured


def test_the_cost_is_the_measurement_at_the_nearest_update_ratio_else_the_default():
    assert cost_of("Pendulum-v1", "sac", "cpu", 10).updates_per_step == 10
    assert cost_of("Pendulum-v1", "sac", "cpu", 1).updates_per_step == 1
    assert cost_of("Pendulum-v1", "sac", "cpu", 3).updates_per_step == 1  # then scaled x3
    assert cost_of("NoMeasurement-v0", "mbpo", "cuda", 20) is DEFAULT_COSTS[("mbpo", "cuda")]
    for algo_device, default in DEFAULT_COSTS.items():  # the default is the costliest measured
        measured = [c for c in COSTS if (c.algo, c.device) == algo_device]
        if measured:
            assert all(c.seconds(10_000, 1) <= default.seconds(10_000, 1) for c in measured)
    assert all(c.source for c in COSTS)


def test_runtime_is_budget_times_cost_times_margin_plus_startup():
    c = cfg("--algo", "mbpo", "--env", "Pendulum-v1", "--preset", "default", "--total-steps", "4000")
    expected = math.ceil(4000 * 0.0108 * resources.MARGIN / 60) + resources.STARTUP_MINUTES
    assert run_resources(c).runtime == expected == 7
    hopper = cfg("--algo", "mbpo", "--env", "Hopper-v5", "--preset", "paper")
    assert run_resources(hopper).runtime == resources.MAX_RUNTIME_MINUTES  # longer: capped, resumed by retries


def test_memory_is_both_buffers_twice_plus_the_overhead():
    # Pendulum: 3 observations, 1 action: a row is (2 x 3 + 1 + 2) x 4 = 36 bytes
    sac = cfg("--algo", "sac", "--env", "Pendulum-v1", "--total-steps", "20000")
    assert run_resources(sac).mem_mb == math.ceil(resources.OVERHEAD_MB + 2 * 20_000 * 36 / 2**20)
    # Hopper at the paper's settings: 11 + 3 -> 108-byte rows; model buffer 400 x 1000 x 15 x 1
    hopper = cfg("--algo", "mbpo", "--env", "Hopper-v5", "--preset", "paper")
    rows = 125_000 + hopper[0].mbpo.model_buffer_size()
    assert hopper[0].mbpo.model_buffer_size() == 100_000 * 4 * 15
    assert run_resources(hopper).mem_mb == math.ceil(resources.OVERHEAD_MB + 2 * rows * 108 / 2**20)


def test_threads_and_gpu():
    short = run_resources(cfg("--algo", "sac", "--env", "Pendulum-v1", "--total-steps", "1000"))
    assert (short.threads, short.gpu) == (1, 0)
    cuda = run_resources(cfg("--algo", "mbpo", "--env", "Hopper-v5", "--preset", "paper", "--device", "cuda"))
    assert (cuda.threads, cuda.gpu) == (1, 1)


def test_a_lockstep_job_asks_for_its_seeds_buffers_and_their_runtimes_in_turn():
    from plan.resources import OVERHEAD_MB, STARTUP_MINUTES, job_resources

    resolved = cfg("--algo", "mbpo", "--preset", "paper", "--env", "Hopper-v5", "--total-steps", "20000")
    one = run_resources(resolved)
    five = job_resources(*resolved, 5)
    assert five.mem_mb - OVERHEAD_MB == pytest.approx(5 * (one.mem_mb - OVERHEAD_MB), abs=1)
    assert five.runtime - STARTUP_MINUTES == 5 * (one.runtime - STARTUP_MINUTES)
    assert (five.threads, five.gpu) == (one.threads, one.gpu)
    assert job_resources(*resolved, 1) == one
