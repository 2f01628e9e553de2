"""Batched branched rollouts: M model trajectories advanced together, one tensor op per stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from mbpo.termination import TerminationFn
from mbpo.transition import Layout

PolicyFn = Callable[[torch.Tensor], torch.Tensor]  # obs M x obs_dim -> action M x act_dim
ModelFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # -> reward M, next_obs
# seeds in lockstep: obs S x M x obs_dim, and which seeds still draw (a seed whose branches have
# all terminated draws no more random numbers, as its run alone would have stopped)
SeedsPolicyFn = Callable[[torch.Tensor, list[bool]], torch.Tensor]  # -> action S x M x act_dim
SeedsModelFn = Callable[[torch.Tensor, torch.Tensor, list[bool]], tuple[torch.Tensor, torch.Tensor]]


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
    (result,) = branched_rollouts(
        start_obs.unsqueeze(0),
        length,
        lambda obs, draw: policy(obs[0]).unsqueeze(0),
        lambda obs, action, draw: tuple(t.unsqueeze(0) for t in model(obs[0], action[0])),
        terminated,
    )
    return result


@torch.no_grad()
def branched_rollouts(
    start_obs: torch.Tensor, length: int, policy: SeedsPolicyFn, model: SeedsModelFn, terminated: TerminationFn
) -> list[RolloutResult]:
    """`branched_rollout` for S seeds in lockstep (`S x M x obs_dim`), one result per seed. A
    seed stops stepping (and drawing) once all its branches have terminated, as its run alone
    does; the batch still computes its rows, which are dropped."""
    obs = start_obs
    s, m = obs.shape[0], obs.shape[1]
    alive = torch.ones(s, m, dtype=torch.bool, device=obs.device)
    chunks: list[list[torch.Tensor]] = [[] for _ in range(s)]
    steps, stepping = [0] * s, [True] * s
    for _ in range(length):
        action = policy(obs, stepping)
        reward, next_obs = model(obs, action, stepping)
        flat = (s * m, -1)
        done = terminated(obs.reshape(flat), action.reshape(flat), next_obs.reshape(flat)).view(s, m)
        rows = Layout.join(
            obs.reshape(flat), action.reshape(flat), reward.reshape(-1), next_obs.reshape(flat), done.view(-1)
        )
        rows = rows.view(s, m, -1)
        for i in range(s):
            if stepping[i]:
                chunks[i].append(rows[i][alive[i]])
                steps[i] += 1
        alive &= ~done
        stepping = [a and b for a, b in zip(stepping, alive.any(dim=1).tolist())]
        if not any(stepping):
            break
        obs = next_obs
    left = alive.sum(dim=1).tolist()
    return [RolloutResult(torch.cat(chunks[i]), steps[i], m, int(left[i])) for i in range(s)]
