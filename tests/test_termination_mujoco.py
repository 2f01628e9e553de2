"""Termination functions against the real MuJoCo environments (the notes' first pitfall)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbpo.config import build_config
from mbpo.envs import make_env
from mbpo.progress import Progress
from mbpo.record import RunWriter, streams
from mbpo.seeding import make_generators
from mbpo.termination import termination_fn
from mbpo.train import Trainer

gym = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco", reason="MuJoCo envs need gymnasium[mujoco]")

ENVS = [
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "Humanoid-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "HalfCheetah-v5",
]


VARIANTS = [(env_id, False) for env_id in ENVS] + [("Ant-v5", True), ("Humanoid-v5", True)]


@pytest.mark.parametrize("env_id, truncate_obs", VARIANTS)
def test_termination_matches_the_environment(env_id, truncate_obs):
    """Random-action trajectories: every transition's `terminated` equals ours."""
    env = make_env(env_id, truncate_obs)
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


def test_truncated_observations_are_the_papers():
    assert make_env("Ant-v5", truncate_obs=True).observation_space.shape == (27,)
    assert make_env("Humanoid-v5", truncate_obs=True).observation_space.shape == (45,)
    assert make_env("Ant-v5").observation_space.shape == (105,)


@pytest.mark.parametrize("env_id, truncate_obs", VARIANTS)
def test_termination_matches_on_policy_transitions(env_id, truncate_obs, tmp_path):
    """Transitions of a policy being trained (SAC after 200 random steps): the real env's stored
    `terminated` flag of every transition in the replay buffer equals ours."""
    cfg = build_config(
        {
            "algo": "sac",
            "env": env_id,
            "truncate_obs": truncate_obs,
            "total_steps": 700,
            "random_steps": 200,
            "actor_hidden": (32, 32),
            "critic_hidden": (32, 32),
            "batch_size": 64,
            "eval_every": 700,
            "eval_episodes": 1,
        }
    )
    device = torch.device("cpu")
    writer = RunWriter(tmp_path, streams(cfg))
    trainer = Trainer(cfg, device, make_generators(0, device), writer, Progress(700, "t", 700, quiet=True))
    trainer.run()
    writer.close()
    real = trainer.runs[0].real
    rows = real.layout.split(real.data[: real.size])
    ours = termination_fn(env_id)(rows.obs, rows.action, rows.next_obs)
    stored = rows.terminated.bool()
    assert torch.equal(ours, stored), f"{int((ours != stored).sum())} disagreements"
