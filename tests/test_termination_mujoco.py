"""Termination functions against the real MuJoCo environments (the notes' first pitfall)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbpo.termination import termination_fn

gym = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco", reason="MuJoCo envs need gymnasium[mujoco]")

ENVS = ["Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "InvertedPendulum-v5", "InvertedDoublePendulum-v5",
        "HalfCheetah-v5"]  # fmt: skip


@pytest.mark.parametrize("env_id", ENVS)
def test_termination_matches_the_environment(env_id):
    """Random-action trajectories: every transition's `terminated` equals ours."""
    env = gym.make(env_id)
    fn = termination_fn(env_id)
    rng = np.random.default_rng(0)
    obs_list, act_list, next_list, flags = [], [], [], []
    obs, _ = env.reset(seed=0)
    while len(flags) < 600:
        action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        nxt, _, terminated, truncated, _ = env.step(action)
        obs_list.append(obs)
        act_list.append(action)
        next_list.append(nxt)
        flags.append(terminated)
        obs = env.reset()[0] if terminated or truncated else nxt

    def as_tensor(xs):
        return torch.from_numpy(np.asarray(xs, dtype=np.float32))

    ours = fn(as_tensor(obs_list), as_tensor(act_list), as_tensor(next_list)).numpy()
    assert (ours == np.asarray(flags)).all(), f"{(ours != np.asarray(flags)).sum()} disagreements"
    if env_id != "HalfCheetah-v5":
        assert any(flags), "random actions should terminate some episodes"
