"""Typed configuration of one training run.

Every hyperparameter lives in a dataclass field with a default and a help text; the CLI
(`mbpo.cli`) is generated from these fields and the resolved values are written to the run's
`metadata.json`, so the dataclasses are the single source of truth for what a run did.

Presets are named sets of overrides applied on top of the defaults, before explicit CLI flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

ALGOS = ("sac",)
DEVICES = ("cpu", "cuda", "auto")


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field carrying its CLI help text."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default, metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class RunConfig:
    """What is run, where, and how it is observed (not learning hyperparameters)."""

    algo: str = _f("sac", "training algorithm", choices=ALGOS)
    env: str = _f("Pendulum-v1", "gymnasium environment id")
    seed: int = _f(0, "run seed; every random draw of the run derives from it")
    total_steps: int = _f(20_000, "real environment steps to train for")
    device: str = _f("cpu", "torch device: cpu, cuda, or auto (cuda when available)", choices=DEVICES)
    threads: int = _f(1, "torch intra-op threads (1 lets several runs share a machine)")
    eval_every: int = _f(1000, "evaluate the deterministic policy every N env steps (and at 0)")
    eval_episodes: int = _f(10, "episodes per evaluation, on a separate env with its own seeds")
    log_every: int = _f(1000, "write training diagnostics to train.csv every N env steps")
    preset: str = _f("default", "named hyperparameter preset applied before explicit flags")


@dataclass(frozen=True)
class SACConfig:
    """Soft actor-critic hyperparameters (Haarnoja et al. 2018, learned temperature)."""

    actor_hidden: tuple[int, ...] = _f((256, 256), "actor hidden layer widths, e.g. 256,256")
    critic_hidden: tuple[int, ...] = _f((256, 256), "twin-Q hidden layer widths, e.g. 256,256")
    batch_size: int = _f(256, "transitions per gradient update")
    actor_lr: float = _f(3e-4, "Adam learning rate of the policy")
    critic_lr: float = _f(3e-4, "Adam learning rate of the twin Q networks")
    alpha_lr: float = _f(3e-4, "Adam learning rate of the log-temperature")
    gamma: float = _f(0.99, "discount factor")
    tau: float = _f(0.005, "Polyak averaging rate of the target Q networks")
    init_alpha: float = _f(1.0, "initial entropy temperature")
    learn_alpha: bool = _f(True, "learn the temperature toward target_entropy (else keep init_alpha)")
    target_entropy: float | None = _f(None, "target policy entropy; 'auto' means -action_dim")
    updates_per_step: int = _f(1, "gradient updates per env step (the update-to-data ratio)")
    random_steps: int = _f(1000, "initial env steps with uniformly random actions, no updates")
    buffer_size: int = _f(1_000_000, "replay capacity in transitions (capped at total_steps)")


@dataclass(frozen=True)
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    sac: SACConfig = field(default_factory=SACConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Named overrides, per section. `seed` reproduces the tutorial the project started from
# (Hands-on RL's SAC on Pendulum: one hidden layer of 128, batch 64, gamma 0.98, ...), with its
# defects fixed by construction (see ../shared/baseline/README.md).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {},
    "seed": {
        "sac": {
            "actor_hidden": (128,),
            "critic_hidden": (128,),
            "batch_size": 64,
            "actor_lr": 5e-4,
            "critic_lr": 5e-3,
            "alpha_lr": 1e-3,
            "gamma": 0.98,
            "tau": 0.005,
            "init_alpha": 0.01,
            "target_entropy": -1.0,
            "random_steps": 1000,
            "buffer_size": 10_000,
        },
    },
}

SECTIONS: dict[str, type] = {"run": RunConfig, "sac": SACConfig}


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


def build_config(overrides: dict[str, Any]) -> TrainConfig:
    """Resolve a config: defaults, then the preset named in `overrides`, then `overrides`.

    `overrides` maps flat field names (as on the CLI, e.g. ``batch_size``) to values.
    """
    preset_name = overrides.get("preset") or RunConfig.preset
    if preset_name not in PRESETS:
        raise ConfigError(f"unknown preset {preset_name!r} (choose from {', '.join(PRESETS)})")
    owner = {f.name: sec for sec, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(owner))
    if unknown:
        raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
    values: dict[str, dict[str, Any]] = {sec: {} for sec in SECTIONS}
    for sec, fields_ in PRESETS[preset_name].items():
        values[sec].update(fields_)
    for name, value in overrides.items():
        values[owner[name]][name] = value
    cfg = TrainConfig(**{sec: SECTIONS[sec](**vals) for sec, vals in values.items()})
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Raise ConfigError naming the first invalid field."""
    r, s = cfg.run, cfg.sac
    checks: list[tuple[bool, str]] = [
        (r.algo in ALGOS, f"algo must be one of {', '.join(ALGOS)}, got {r.algo!r}"),
        (r.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got {r.device!r}"),
        (r.seed >= 0, f"seed must be >= 0, got {r.seed}"),
        (r.total_steps > 0, f"total_steps must be > 0, got {r.total_steps}"),
        (r.threads > 0, f"threads must be > 0, got {r.threads}"),
        (r.eval_every > 0, f"eval_every must be > 0, got {r.eval_every}"),
        (r.eval_episodes > 0, f"eval_episodes must be > 0, got {r.eval_episodes}"),
        (r.log_every > 0, f"log_every must be > 0, got {r.log_every}"),
        (len(s.actor_hidden) > 0 and min(s.actor_hidden) > 0, "actor_hidden needs positive widths"),
        (len(s.critic_hidden) > 0 and min(s.critic_hidden) > 0, "critic_hidden needs positive widths"),
        (s.batch_size > 0, f"batch_size must be > 0, got {s.batch_size}"),
        (s.actor_lr > 0, f"actor_lr must be > 0, got {s.actor_lr}"),
        (s.critic_lr > 0, f"critic_lr must be > 0, got {s.critic_lr}"),
        (s.alpha_lr > 0, f"alpha_lr must be > 0, got {s.alpha_lr}"),
        (0 <= s.gamma <= 1, f"gamma must be in [0, 1], got {s.gamma}"),
        (0 < s.tau <= 1, f"tau must be in (0, 1], got {s.tau}"),
        (s.init_alpha > 0, f"init_alpha must be > 0, got {s.init_alpha}"),
        (s.updates_per_step >= 0, f"updates_per_step must be >= 0, got {s.updates_per_step}"),
        (s.random_steps >= 0, f"random_steps must be >= 0, got {s.random_steps}"),
        (s.buffer_size > 0, f"buffer_size must be > 0, got {s.buffer_size}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
