"""What one training run asks a cluster for: runtime, memory, threads and GPUs.

The Snakefile's `train` rule takes its `resources:` from `run_resources` (through
workflow/rules/common.smk), so a SLURM job asks for what its run needs instead of one size for all:

- runtime (minutes): the run's env steps x a measured cost per env step (`COSTS`, each number with
  where it came from) x `MARGIN`, plus `STARTUP_MINUTES`. MBPO's cost grows with its data (the
  model is refitted on every real transition so far), so a cost is `seconds_per_step +
  growth_per_step x step`, integrated over the run. An env or algorithm without a measurement
  takes the costliest measured one (`DEFAULT_COSTS`). At most `MAX_RUNTIME_MINUTES`: a run that
  outlives its time limit is not lost, it checkpoints on SLURM's warning signal and the retry
  resumes it (profiles/slurm).
- mem_mb: both replay buffers at full capacity (real: min(buffer_size, total_steps) rows; MBPO's
  model buffer: `MBPOConfig.model_buffer_size()` rows; a row is 2 x obs + act + 2 float32), twice
  (a checkpoint serialises the filled rows, a second copy for a moment), plus `OVERHEAD_MB`.
- threads: one. Byte-identical results need the same thread count, and every cost was measured
  at one thread.
- gpu: one for a CUDA run, none otherwise.

Every run is a SLURM job of its own (no Snakemake groups): snakemake-executor-plugin-slurm 2.8.0's
job step runs a group's jobs one at a time (`--jobs 1`) and stops at the group's first failure, so
a group of short runs neither ran side by side nor kept going past a failed run.

Partition and account are the cluster's business: the user's flags or own profile set them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mbpo.config import TrainConfig

MARGIN = 2.0  # the costs come from a 2-core VM shared with other runs; cluster cores and load vary
STARTUP_MINUTES = 5  # interpreter and imports, evaluations and checkpoints (outside the measured cost)
OVERHEAD_MB = 1500  # Python, torch, MuJoCo, networks and optimisers: a paper Hopper MBPO run's RSS was
# 2.0 GB at 10k env steps with its 648 MB model buffer preallocated; Pendulum runs peak under 280 MB
MAX_RUNTIME_MINUTES = 24 * 60  # a job's time limit at most (many partitions' limit); a run needing
# longer checkpoints when SLURM signals the limit and the retry resumes it (profiles/slurm `retries`)


@dataclass(frozen=True)
class Cost:
    """Seconds per env step at env step `step`: `seconds_per_step + growth_per_step * step`, at
    `updates_per_step` policy updates per env step (more updates scale it up proportionally)."""

    env: str
    algo: str  # `python -m mbpo train --algo`
    device: str
    seconds_per_step: float
    growth_per_step: float
    updates_per_step: int
    source: str

    def seconds(self, total_steps: int, updates_per_step: int) -> float:
        """Seconds for a whole run of `total_steps` env steps (the integral of the cost)."""
        base = self.seconds_per_step * total_steps + self.growth_per_step * total_steps**2 / 2
        return base * max(1.0, updates_per_step / self.updates_per_step)


_VM = "this project's 2-core AMD EPYC VM, one torch thread, shared with other runs"

COSTS: tuple[Cost, ...] = (
    Cost(
        "Pendulum-v1",
        "mbpo",
        "cpu",
        0.0108,
        0.0,
        10,
        f"README 'What the default run produces': MBPO `default` preset, 4000 steps, slowest rollout length (h1), mean of 5 seeds; {_VM}",
    ),
    Cost(
        "Pendulum-v1",
        "sac",
        "cpu",
        0.0009,
        0.0,
        1,
        f"README 'What the default run produces': SAC `seed` preset, UTD 1, 12000 steps, mean of 5 seeds; {_VM}",
    ),
    Cost(
        "Pendulum-v1",
        "sac",
        "cpu",
        0.0046,
        0.0,
        10,
        f"README 'What the default run produces': SAC `seed` preset at UTD 10, 4000 steps, mean of 5 seeds; {_VM}",
    ),
    Cost(
        "InvertedPendulum-v5",
        "sac",
        "cpu",
        0.0244,
        0.0,
        1,
        f"config/validation.yaml runs, `paper` preset, 15000 steps: the largest seconds_per_env_step of 3 complete seeds; {_VM}",
    ),
    Cost(
        "InvertedPendulum-v5",
        "mbpo",
        "cpu",
        0.288,
        0.0,
        20,
        f"config/validation.yaml, `paper` preset, seed 1: train.csv between env steps 1000 and 1250 (a partial run); {_VM}",
    ),
    Cost(
        "Hopper-v5",
        "mbpo",
        "cpu",
        0.314,
        7.7e-6,
        20,
        "config/validation.yaml, `paper` preset, seeds 1 and 2 run to 50k: eval.csv's wall_seconds, 421 and 438 ms per step "
        f"over steps 5000-25000 and 605 and 600 over 25000-50000, a line through each, averaged; {_VM}",
    ),
    Cost(
        "Hopper-v5",
        "mbpo",
        "cuda",
        0.0282,
        4.3e-7,
        20,
        "results/gpu-h200/paper_scale_cuda.txt: benchmarks/paper_scale.py on an idle NVIDIA H200, 32.5 ms per step at 10k "
        "env steps and 49.6 at 50k, a line through both (its 125k-step projection: 1.9 h)",
    ),
)

# Without a measurement for the env: the costliest measured run of the algorithm on the device
# (a CUDA SAC run takes the CPU's: no CUDA SAC run was measured).
DEFAULT_COSTS: dict[tuple[str, str], Cost] = {
    ("mbpo", "cpu"): COSTS[5],
    ("mbpo", "cuda"): COSTS[6],
    ("sac", "cpu"): COSTS[3],
    ("sac", "cuda"): COSTS[3],
}


SB3_FACTOR = 2.0  # Stable-Baselines3's SAC (`sb3_sac`) per env step, over this harness's SAC's: the
# cross-check's runs (results/validation/runs/*/{sac,sb3_sac}/utd1, `seconds_per_env_step`), made side by
# side on a 2-core Intel Xeon: Hopper-v5 10.8 ms against 6.4-7.2, InvertedPendulum-v5 11.4-13.1 against 6.4


def cost_of(env: str, algo: str, device: str, updates_per_step: int) -> Cost:
    """The measured cost for (env, algo, device): at the same update ratio if measured, else the
    measurement at the nearest ratio; without one, the default for (algo, device). `sb3_sac`
    takes this SAC's cost times `SB3_FACTOR`."""
    if algo == "sb3_sac":
        sac = cost_of(env, "sac", device, updates_per_step)
        return Cost(
            env,
            algo,
            device,
            sac.seconds_per_step * SB3_FACTOR,
            sac.growth_per_step * SB3_FACTOR,
            sac.updates_per_step,
            f"{sac.source}; times {SB3_FACTOR} for Stable-Baselines3",
        )
    measured = [c for c in COSTS if (c.env, c.algo, c.device) == (env, algo, device)]
    if not measured:
        return DEFAULT_COSTS[(algo, device)]
    return min(measured, key=lambda c: (abs(c.updates_per_step - updates_per_step), -c.updates_per_step))


@dataclass(frozen=True)
class Resources:
    runtime: int  # minutes (Snakemake's `runtime`, SLURM's --time)
    mem_mb: int
    threads: int
    gpu: int


def runtime_minutes(cfg: TrainConfig) -> int:
    cost = cost_of(cfg.run.env, cfg.run.algo, cfg.run.device, cfg.sac.updates_per_step)
    minutes = math.ceil(cost.seconds(cfg.run.total_steps, cfg.sac.updates_per_step) * MARGIN / 60) + STARTUP_MINUTES
    return min(minutes, MAX_RUNTIME_MINUTES)


def memory_mb(cfg: TrainConfig, sizes: tuple[int, int]) -> int:
    """Twice the replay buffers' bytes (`mbpo.memory`, their one owner) plus the interpreter's."""
    from mbpo.memory import buffer_bytes

    return math.ceil(OVERHEAD_MB + 2 * buffer_bytes(cfg, *sizes) / 2**20)


def run_resources(cfg: TrainConfig, sizes: tuple[int, int]) -> Resources:
    """What the run described by `cfg` (a resolved `python -m mbpo train` config) on an env of
    observation and action sizes `sizes` asks for (a planned run carries both: `plan.experiment.Run`)."""
    return Resources(
        runtime=runtime_minutes(cfg),
        mem_mb=memory_mb(cfg, sizes),
        threads=1,
        gpu=int(cfg.run.device == "cuda"),
    )


def job_resources(cfg: TrainConfig, sizes: tuple[int, int], seeds: int) -> Resources:
    """What a job training `seeds` seeds of `cfg` in lockstep asks for: each seed's buffers, and
    the runtime of the seeds one after another (an upper bound: lockstep costs at most that, and
    on the paper's sizes on a CPU core about that; see docs/performance.md)."""
    one = run_resources(cfg, sizes)
    training = one.runtime - STARTUP_MINUTES
    return Resources(
        runtime=min(STARTUP_MINUTES + seeds * training, MAX_RUNTIME_MINUTES),
        mem_mb=math.ceil(OVERHEAD_MB + seeds * (one.mem_mb - OVERHEAD_MB)),
        threads=one.threads,
        gpu=one.gpu,
    )
