"""Branched rollouts, the rollout-length schedule, termination functions, MBPO runs."""

from __future__ import annotations

import csv
import io

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from mbpo import cli
from mbpo.config import MBPOConfig, build_config
from mbpo.rollout import branched_rollout
from mbpo.termination import BY_ENV_NAME, mountain_car, termination_fn


def count_up_model(obs, action):
    """Dummy dynamics: every coordinate grows by 1 + action; the reward is the first coordinate."""
    return obs[:, 0].clone(), obs + 1.0 + action


def reaches_three(obs, action, next_obs):
    return next_obs[:, 0] >= 3.0


def zero_policy(obs):
    return torch.zeros(obs.shape[0], 1)


def test_rollout_returns_and_termination():
    start = torch.tensor([[0.0], [10.0], [-5.0]])
    result = branched_rollout(start, 4, zero_policy, count_up_model, reaches_three)
    rows = result.rows  # [obs | action | reward | next_obs | terminated]
    assert result.started == 3 and result.steps == 4
    # branch from 10 terminates at once; from 0 after 3 steps; from -5 never within 4 steps
    assert result.alive == 1
    first = rows[:, 0]
    returns = {}
    for s in (0.0, 10.0, -5.0):
        # reconstruct each branch by following obs -> next_obs
        obs, total, length, terminal = s, 0.0, 0, False
        while True:
            match = rows[(first == obs)]
            if len(match) == 0:
                break
            total += float(match[0, 2])
            length += 1
            terminal = bool(match[0, -1])
            obs = float(match[0, 3])
            if terminal:
                break
        returns[s] = (total, length, terminal)
    assert returns[0.0] == (0.0 + 1.0 + 2.0, 3, True)
    assert returns[10.0] == (10.0, 1, True)
    assert returns[-5.0] == (-5.0 - 4.0 - 3.0 - 2.0, 4, False)
    assert rows.shape[0] == 3 + 1 + 4  # terminated branches stop adding transitions


def test_rollout_stops_when_every_branch_terminated():
    result = branched_rollout(torch.tensor([[2.0], [5.0]]), 10, zero_policy, count_up_model, reaches_three)
    assert result.steps == 1 and result.alive == 0 and result.rows[:, -1].tolist() == [1.0, 1.0]


def test_schedule_changes_length_at_the_right_epochs():
    cfg = MBPOConfig(rollout_length=(20, 100, 1, 15), epoch_length=1000)
    steps = (0, 20_999, 25_999, 26_000, 60_000, 100_000, 500_000)
    lengths = {step: cfg.rollout_length_at(step, random_steps=0) for step in steps}
    # 1 + 14 (epoch - 20) / 80 first reaches 2 at epoch 26 (1 + 14 * 6 / 80 = 2.05)
    assert lengths == {0: 1, 20_999: 1, 25_999: 1, 26_000: 2, 60_000: 8, 100_000: 15, 500_000: 15}
    # epochs count from the end of the random steps, as the original's from its exploration's end
    after = {step + 5000: cfg.rollout_length_at(step + 5000, random_steps=5000) for step in steps}
    assert after == {step + 5000: length for step, length in lengths.items()}
    assert cfg.rollout_length_at(30_999, random_steps=5000) == 1
    assert MBPOConfig(rollout_length=(5,)).rollout_length_at(123_456, random_steps=5000) == 5


def test_model_buffer_holds_retained_epochs_of_rollouts():
    cfg = MBPOConfig(
        rollout_batch_size=400,
        model_train_freq=250,
        epoch_length=1000,
        model_retain_epochs=2,
        rollout_length=(1, 10, 1, 5),
    )
    assert cfg.model_buffer_size() == 2 * 4 * 400 * 5
    assert [cfg.model_buffer_retained(length) for length in (1, 3)] == [2 * 4 * 400, 2 * 4 * 400 * 3]


def test_termination_functions_exist_for_the_paper_envs_and_reject_others():
    for name in ("Hopper", "Walker2d", "HalfCheetah", "Ant", "Humanoid", "InvertedPendulum", "InvertedDoublePendulum"):
        assert name in BY_ENV_NAME
    assert termination_fn("Hopper-v5") is BY_ENV_NAME["Hopper"]
    with pytest.raises(ValueError, match="no termination function"):
        termination_fn("CarRacing-v3")


def test_hand_checked_terminations():
    hopper = BY_ENV_NAME["Hopper"]
    healthy = torch.zeros(1, 11)
    healthy[0, 0] = 1.25
    fallen = healthy.clone()
    fallen[0, 0] = 0.5
    tilted = healthy.clone()
    tilted[0, 1] = 0.3
    states = torch.cat((healthy, fallen, tilted))
    assert hopper(states, None, states).tolist() == [False, True, True]
    upright = torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0]])  # sin 0, cos 1: tip at 1.2
    bent = torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0]])  # first pole horizontal: tip at 0.6
    dp = BY_ENV_NAME["InvertedDoublePendulum"]
    assert dp(upright, None, upright).tolist() == [False] and dp(bent, None, bent).tolist() == [True]


def test_mountain_car_termination_agrees_with_the_env():
    env = gym.make("MountainCarContinuous-v0")
    rng = np.random.default_rng(0)
    agree = 0
    for _ in range(300):
        env.reset(seed=int(rng.integers(1 << 30)))
        position, velocity = rng.uniform(0.3, 0.6), rng.uniform(-0.07, 0.07)
        env.unwrapped.state = np.array([position, velocity])
        action = rng.uniform(-1, 1, size=1).astype(np.float32)
        obs = np.array([position, velocity], np.float32)
        nxt, _, terminated, _, _ = env.step(action)
        predicted = mountain_car(
            torch.from_numpy(obs[None]), torch.from_numpy(action[None]), torch.from_numpy(nxt[None])
        )
        agree += int(bool(predicted[0]) == terminated)
    assert agree == 300


def test_mbpo_requires_a_termination_function(tmp_path):
    assert cli.main(["train", "--algo", "mbpo", "--env", "CartPole-v1", "--out", str(tmp_path / "r")]) == 2
    assert cli.main(["train", "--algo", "mbpo", "--env", "Acrobot-v1", "--out", str(tmp_path / "r")]) == 2


def test_mbpo_flags_on_a_sac_run_are_an_error():
    with pytest.raises(ValueError, match="only apply to algo mbpo"):
        build_config({"algo": "sac", "rollout_length": (5,)})


TINY_MBPO = [
    "train",
    "--algo",
    "mbpo",
    "--preset",
    "seed",
    "--total-steps",
    "400",
    "--random-steps",
    "100",
    "--model-train-freq",
    "50",
    "--rollout-batch-size",
    "200",
    "--epoch-length",
    "100",
    "--rollout-length",
    "1,3,1,3",
    "--eval-every",
    "200",
    "--eval-episodes",
    "2",
    "--log-every",
    "100",
    "--model-max-epochs",
    "5",
    "--quiet",
]


def drop_columns(text: str, columns: set[str]) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, name in enumerate(rows[0]) if name not in columns]
    return "\n".join(",".join(row[i] for i in keep) for row in rows)


@pytest.fixture(scope="module")
def tiny_mbpo(tmp_path_factory):
    root = tmp_path_factory.mktemp("mbpo")
    for name in ("a", "b"):
        assert cli.main([*TINY_MBPO, "--out", str(root / name)]) == 0
    return root


def test_mbpo_run_writes_model_and_rollout_diagnostics_and_follows_the_schedule(tiny_mbpo):
    out = tiny_mbpo / "a"
    assert sorted(p.name for p in out.iterdir()) == [
        ".finish.json",
        ".lock",
        "eval.csv",
        "metadata.json",
        "model.csv",
        "rollouts.csv",
        "train.csv",
    ]
    rollouts = pd.read_csv(out / "rollouts.csv")
    # model phases at 100, 150, ..., 400; epoch = (step - 100 random steps) // 100;
    # length 1 + (epoch - 1) / 2 * 2, clipped to [1, 3]
    assert rollouts.env_step.tolist() == list(range(100, 401, 50))
    expected = {100: 1, 150: 1, 200: 1, 250: 1, 300: 2, 350: 2, 400: 3}
    assert dict(zip(rollouts.env_step, rollouts.rollout_length)) == expected
    assert (rollouts.kept == rollouts.started * rollouts.rollout_length).all()  # Pendulum never terminates
    # the model buffer keeps one epoch (2 phases x 200 rollouts) at the current length live:
    # 200 x length rows come in per phase; the capacity (length 3: 1200 rows) is not the limit
    assert rollouts.model_buffer_size.tolist() == [200, 400, 400, 400, 800, 800, 1200]
    model = pd.read_csv(out / "model.csv")
    assert len(model) == len(rollouts) and (model.epochs <= 5).all()
    assert model.elites.str.split(";").map(len).eq(4).all()
    meta = pd.read_json(out / "metadata.json", typ="series")
    assert set(meta["seconds"]) == {"env", "act", "update", "model", "rollout", "eval"}
    assert meta["config"]["mbpo"]["rollout_length"] == [1, 3, 1, 3]


def test_mbpo_is_deterministic_on_cpu(tiny_mbpo):
    clocks = {"wall_seconds", "seconds"}
    for name in ("eval.csv", "train.csv", "model.csv", "rollouts.csv"):
        a = (tiny_mbpo / "a" / name).read_text()
        b = (tiny_mbpo / "b" / name).read_text()
        assert drop_columns(a, clocks) == drop_columns(b, clocks), name
