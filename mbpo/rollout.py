"""Batched branched rollouts: M model trajectories advanced together, one tensor op per stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from mbpo.termination import TerminationFn
from mbpo.transition import Layout

PolicyFn = Callable[[torch.Tensor], torch.Tensor]  # obs M x obs_dim -> action M x act_dim
ModelFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # -> reward M, next_obs


@dataclass
class RolloutResult:
    rows: torch.Tensor  # N x row_dim transition rows (mbpo.transition.Layout)
    steps: int  # model steps taken (fewer than the length when every branch terminated)
    started: int  # branches started
    alive: int  # branches not terminated at the end


@torch.no_grad()
def branched_rollout(
    start_obs: torch.Tensor, length: int, policy: PolicyFn, model: ModelFn, terminated: TerminationFn
) -> RolloutResult:
    """Roll `length` model steps from each of the M start states (`M x obs_dim`).

    A branch that terminates stores its terminal transition (terminated = 1) and takes no further
    steps. The batch keeps its shape (terminated branches are masked, not removed) so that every
    step is the same batched computation; only live transitions are returned.
    """
    obs = start_obs
    alive = torch.ones(obs.shape[0], dtype=torch.bool, device=obs.device)
    chunks, steps = [], 0
    for _ in range(length):
        action = policy(obs)
        reward, next_obs = model(obs, action)
        done = terminated(obs, action, next_obs)
        rows = Layout.join(obs, action, reward, next_obs, done)
        chunks.append(rows[alive])
        steps += 1
        alive = alive & ~done
        if not bool(alive.any()):
            break
        obs = next_obs
    return RolloutResult(torch.cat(chunks), steps, int(start_obs.shape[0]), int(alive.sum()))
