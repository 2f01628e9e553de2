"""The experiment described by `config/config.yaml`: which runs exist and how each is launched.

The Snakefile asks this module for the run list and for each run's `python -m mbpo train`
arguments, so that the workflow files hold only wiring and this logic is unit-tested.

A run is identified by (env, algo, variant, device, seed), which is also its folder:
`{output}/runs/{env}/{algo}/{variant}/{device}/seed{seed}/`, `output` being `results` unless
the config says otherwise (config/ci.yaml writes under `results/ci`). `algo` is a key of the config's
`algorithms` (`mbpo`, `sac`, `sac_mbpo_utd`: SAC at MBPO's update ratio, the control); the
variant is the rollout length for MBPO (`h1`, `h3`, `h20-100-1-15` for a schedule) and the
update ratio for SAC (`utd1`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

ALGORITHMS = {"mbpo": "mbpo", "sac": "sac", "sac_mbpo_utd": "sac"}  # config key -> `--algo`
RUN_DIR = "{output}/runs/{env}/{algo}/{variant}/{device}/seed{seed}"
DEFAULT_OUTPUT = "results"  # the config's `output`: the folder of runs, tables, figures and logs


class ExperimentError(ValueError):
    """The experiment config is invalid; the message names the field."""


@dataclass(frozen=True)
class Run:
    env: str
    algo: str
    variant: str
    device: str
    seed: int
    output: str = DEFAULT_OUTPUT

    @property
    def path(self) -> str:
        return RUN_DIR.format(**self.__dict__)


_NUMBER = re.compile(r"^-?\d+(\.\d*)?([eE][-+]?\d+)?$")


def numbers_from_command_line(value: Any) -> Any:
    """Snakemake's `--config key=[0,1]` parses every scalar as a string; turn the strings that
    are numbers back into numbers (env ids, presets and schedules like "20,100,1,15" never are)."""
    if isinstance(value, dict):
        return {k: numbers_from_command_line(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers_from_command_line(v) for v in value]
    if isinstance(value, str) and _NUMBER.match(value):
        return int(value) if re.fullmatch(r"-?\d+", value) else float(value)
    return value


def rollout_variant(length: str | int) -> str:
    """`3` -> `h3`; `"20,100,1,15"` -> `h20-100-1-15`."""
    parts = [p.strip() for p in str(length).split(",")]
    if len(parts) not in (1, 4) or not all(p.isdigit() for p in parts):
        raise ExperimentError(f"algorithms.mbpo.rollout_lengths: {length!r} is not N or start_epoch,end_epoch,start,end")
    return "h" + "-".join(parts)


def rollout_flag(variant: str) -> str:
    """`h20-100-1-15` -> `20,100,1,15` (the CLI's --rollout-length)."""
    return variant[1:].replace("-", ",")


@functools.cache
def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_devices(devices: list[str]) -> list[str]:
    """`auto` means the CPU, plus CUDA where torch sees a GPU."""
    out: list[str] = []
    for device in devices:
        wanted = ["cpu", "cuda"] if device == "auto" else [device]
        for d in wanted:
            if d == "cuda" and not cuda_available():
                if device == "cuda":
                    raise ExperimentError("devices: 'cuda' requested but torch sees no CUDA device (use auto)")
                continue
            if d not in out:
                out.append(d)
    return out


def check_envs(envs: list[str]) -> None:
    import gymnasium as gym

    for env in envs:
        if env not in gym.envs.registry:
            raise ExperimentError(f"envs: unknown environment {env!r}")


def variants(config: dict[str, Any], algo: str) -> list[str]:
    spec = config["algorithms"][algo]
    if algo == "mbpo":
        return [rollout_variant(length) for length in spec["rollout_lengths"]]
    return [f"utd{spec.get('updates_per_step', 1)}"]


def runs(config: dict[str, Any]) -> list[Run]:
    """Every run of the experiment, in a stable order."""
    check_envs(config["envs"])
    devices = resolve_devices(config["devices"])
    output = config.get("output", DEFAULT_OUTPUT)
    return [
        Run(env, algo, variant, device, seed, output)
        for env in config["envs"]
        for algo in config["algorithms"]
        for variant in variants(config, algo)
        for device in devices
        for seed in config["seeds"]
    ]


def train_args(config: dict[str, Any], env: str, algo: str, variant: str, device: str, seed: int) -> list[str]:
    """The `python -m mbpo train` arguments of one run (without `--out`)."""
    spec = config["algorithms"][algo]
    evaluation = config["evaluation"]
    args = [
        "--algo", ALGORITHMS[algo], "--env", env, "--seed", str(seed), "--device", device,
        "--preset", spec.get("preset", "default"), "--total-steps", str(spec["total_steps"]),
        "--eval-every", str(evaluation["every"]), "--eval-episodes", str(evaluation["episodes"]),
    ]  # fmt: skip
    if algo == "mbpo":
        args += ["--rollout-length", rollout_flag(variant)]
    else:
        args += ["--updates-per-step", variant.removeprefix("utd")]
    for key, value in spec.get("options", {}).items():
        args += ["--" + key.replace("_", "-"), ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return args
