from __future__ import annotations

import numpy as np
import torch

from mbpo.buffer import ReplayBuffer


def test_rows_hold_the_transition_in_order():
    buf = ReplayBuffer(4, obs_dim=2, act_dim=1, device=torch.device("cpu"))
    buf.add(np.array([1, 2]), np.array([3]), 4.0, np.array([5, 6]), True)
    assert buf.size == 1
    assert buf.data[0].tolist() == [1, 2, 3, 4, 5, 6, 1]


def test_ring_overwrites_oldest_and_size_saturates():
    buf = ReplayBuffer(3, obs_dim=1, act_dim=1, device=torch.device("cpu"))
    for i in range(5):
        buf.add(np.array([i]), np.array([0]), float(i), np.array([i + 1]), False)
    assert buf.size == 3
    assert sorted(buf.data[:, 2].tolist()) == [2.0, 3.0, 4.0]


def test_sample_draws_only_filled_rows_and_is_seeded():
    buf = ReplayBuffer(100, obs_dim=1, act_dim=1, device=torch.device("cpu"))
    for i in range(10):
        buf.add(np.array([i]), np.array([0]), float(i), np.array([i]), False)
    a = buf.sample(500, torch.Generator().manual_seed(0))
    b = buf.sample(500, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert set(a[:, 2].tolist()) == {float(i) for i in range(10)}


def test_add_batch_wraps_around_and_keeps_the_newest():
    buf = ReplayBuffer(5, obs_dim=1, act_dim=1, device=torch.device("cpu"))

    def rows(lo, hi):
        return torch.arange(lo, hi, dtype=torch.float32).unsqueeze(1).expand(-1, buf.row_dim)

    buf.add_batch(rows(0, 3))
    buf.add_batch(rows(3, 7))  # wraps: 5 and 6 overwrite 0 and 1
    assert buf.size == 5
    assert sorted(buf.data[:, 0].tolist()) == [2, 3, 4, 5, 6]
    buf.add_batch(rows(10, 22))  # more than the capacity: only the newest 5 stay
    assert sorted(buf.data[:, 0].tolist()) == [17, 18, 19, 20, 21]
