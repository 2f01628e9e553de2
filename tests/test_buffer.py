from __future__ import annotations

import numpy as np
import torch

from mbpo.buffer import ReplayBuffer
from mbpo.transition import Layout, from_model_output, model_targets


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


def test_named_views_are_the_fields_written_and_share_the_rows_memory():
    buf = ReplayBuffer(4, obs_dim=2, act_dim=3, device=torch.device("cpu"))
    buf.add(np.array([1, 2]), np.array([3, 4, 5]), 6.0, np.array([7, 8]), False)
    buf.add(np.array([9, 10]), np.array([11, 12, 13]), 14.0, np.array([15, 16]), True)
    rows = buf.data[: buf.size]
    t = buf.layout.split(rows)
    assert t.obs.tolist() == [[1, 2], [9, 10]] and t.action.tolist() == [[3, 4, 5], [11, 12, 13]]
    assert t.reward.tolist() == [6, 14] and t.next_obs.tolist() == [[7, 8], [15, 16]]
    assert t.terminated.tolist() == [0, 1] and t.obs_action.tolist() == [[1, 2, 3, 4, 5], [9, 10, 11, 12, 13]]
    assert all(view.data_ptr() >= rows.data_ptr() for view in t)  # views, not copies
    assert torch.equal(Layout.join(*t[:5]), rows)  # join is split's inverse


def test_model_targets_and_their_inverse_round_trip():
    layout = Layout(obs_dim=3, act_dim=1)
    rows = torch.randn(5, layout.row_dim, generator=torch.Generator().manual_seed(0))
    t = layout.split(rows)
    targets = model_targets(t)
    assert targets.shape == (5, 4) and torch.equal(targets[:, 0], t.reward)
    reward, next_obs = from_model_output(t.obs, targets)
    assert torch.equal(reward, t.reward) and torch.allclose(next_obs, t.next_obs, atol=1e-6)
