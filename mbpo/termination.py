"""Termination functions for model rollouts: pure tensor functions of a batch of transitions.

Each takes `obs`, `action`, `next_obs` (`M x dim`) and returns a bool tensor `M`: True where the
real environment would terminate (not truncate) after this transition. They follow gymnasium's
v4/v5 environments (default observation layout: positions without the x coordinate first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # tensor methods only: the command line checks an env's function without torch
    import torch

TerminationFn = Callable[["torch.Tensor", "torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def never(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Pendulum, HalfCheetah, Swimmer, Reacher: only time limits end episodes."""
    return next_obs.new_zeros(next_obs.shape[0], dtype=bool)


def _finite(next_obs: torch.Tensor) -> torch.Tensor:
    return next_obs.isfinite().all(dim=1)


def hopper(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Healthy: z > 0.7, |angle| < 0.2, every other state entry within (-100, 100)."""
    z, angle = next_obs[:, 0], next_obs[:, 1]
    healthy = (z > 0.7) & (angle.abs() < 0.2) & (next_obs[:, 1:].abs() < 100).all(dim=1) & _finite(next_obs)
    return ~healthy


def walker2d(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Healthy: 0.8 < z < 2.0 and -1 < angle < 1."""
    z, angle = next_obs[:, 0], next_obs[:, 1]
    healthy = (z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0) & _finite(next_obs)
    return ~healthy


def ant(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Healthy: 0.2 <= z <= 1.0 and a finite state."""
    z = next_obs[:, 0]
    return ~((z >= 0.2) & (z <= 1.0) & _finite(next_obs))


def humanoid(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Healthy: 1.0 < z < 2.0."""
    z = next_obs[:, 0]
    return ~((z > 1.0) & (z < 2.0))


def inverted_pendulum(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Terminates when the pole angle leaves [-0.2, 0.2] or the state is not finite."""
    return (next_obs[:, 1].abs() > 0.2) | ~_finite(next_obs)


def inverted_double_pendulum(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Terminates when the tip height y <= 1, with y = 0.6 (cos t1 + cos(t1 + t2)) recovered from
    the observation's sines (entries 1, 2) and cosines (entries 3, 4)."""
    t1 = next_obs[:, 1].atan2(next_obs[:, 3])
    t2 = next_obs[:, 2].atan2(next_obs[:, 4])
    return 0.6 * (t1.cos() + (t1 + t2).cos()) <= 1.0


def mountain_car(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """MountainCarContinuous: the goal (position >= 0.45 moving right) ends the episode."""
    return (next_obs[:, 0] >= 0.45) & (next_obs[:, 1] >= 0.0)


BY_ENV_NAME: dict[str, TerminationFn] = {
    "Pendulum": never,
    "HalfCheetah": never,
    "Swimmer": never,
    "Reacher": never,
    "Hopper": hopper,
    "Walker2d": walker2d,
    "Ant": ant,
    "Humanoid": humanoid,
    "InvertedPendulum": inverted_pendulum,
    "InvertedDoublePendulum": inverted_double_pendulum,
    "MountainCarContinuous": mountain_car,
}


def termination_fn(env_id: str) -> TerminationFn:
    """The termination function of a gymnasium env id (any version), or a ValueError."""
    name = env_id.split("/")[-1].split("-v")[0]
    if name not in BY_ENV_NAME:
        raise ValueError(
            f"MBPO has no termination function for {env_id!r} (known: {', '.join(sorted(BY_ENV_NAME))}); "
            "add one to mbpo/termination.py"
        )
    return BY_ENV_NAME[name]
