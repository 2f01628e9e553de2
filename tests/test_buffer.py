from __future__ import annotations

import numpy as np
import pytest
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


def rows_numbered(buf: ReplayBuffer, first: int, n: int) -> None:
    """Add rows first..first+n-1 (the number in the reward column) in one batch."""
    rows = torch.zeros(n, buf.row_dim)
    rows[:, buf.layout.reward] = torch.arange(first, first + n, dtype=torch.float32)
    buf.add_batch(rows)


def sampled_numbers(buf: ReplayBuffer, seed: int = 0, n: int = 4000) -> torch.Tensor:
    return buf.sample(n, torch.Generator().manual_seed(seed))[:, buf.layout.reward].flatten()


def test_retain_keeps_only_the_newest_rows_live_across_the_wrap():
    buf = ReplayBuffer(10, obs_dim=1, act_dim=1, device=torch.device("cpu"))
    rows_numbered(buf, 0, 8)
    buf.retain(3)  # as MBPO's pool at a shorter rollout length: rows 5, 6, 7
    assert buf.size == 3 and set(sampled_numbers(buf).tolist()) == {5.0, 6.0, 7.0}
    rows_numbered(buf, 8, 4)  # 8..11: the ring wraps (10 and 11 overwrite rows 0 and 1)
    assert buf.size == 3 and set(sampled_numbers(buf).tolist()) == {9.0, 10.0, 11.0}
    buf.retain(6)  # the length grew: the live window grows with new rows only, as a reallocated pool
    assert buf.size == 3 and set(sampled_numbers(buf).tolist()) == {9.0, 10.0, 11.0}
    rows_numbered(buf, 12, 2)
    assert buf.size == 5 and set(sampled_numbers(buf).tolist()) == {9.0, 10.0, 11.0, 12.0, 13.0}
    with pytest.raises(ValueError, match="not in 1..10"):
        buf.retain(11)


def test_retain_at_capacity_samples_the_same_rows_as_a_plain_ring():
    plain, retained = (ReplayBuffer(10, obs_dim=1, act_dim=1, device=torch.device("cpu")) for _ in range(2))
    retained.retain(10)
    for buf in (plain, retained):
        rows_numbered(buf, 0, 13)
    assert torch.equal(sampled_numbers(plain), sampled_numbers(retained))


def test_state_dict_saves_live_rows_only_and_a_resumed_buffer_samples_the_same():
    buf = ReplayBuffer(10, obs_dim=1, act_dim=1, device=torch.device("cpu"))
    rows_numbered(buf, 0, 8)
    buf.retain(3)
    rows_numbered(buf, 8, 4)  # live: 9, 10, 11 at positions 9, 0, 1
    state = buf.state_dict()
    assert state["rows"][:, buf.layout.reward].flatten().tolist() == [9.0, 10.0, 11.0]
    resumed = ReplayBuffer(10, obs_dim=1, act_dim=1, device=torch.device("cpu"))
    resumed.load_state_dict(state)
    assert torch.equal(sampled_numbers(resumed, seed=3), sampled_numbers(buf, seed=3))
    buf.retain(6), resumed.retain(6)
    rows_numbered(buf, 12, 2), rows_numbered(resumed, 12, 2)
    assert torch.equal(sampled_numbers(resumed, seed=4), sampled_numbers(buf, seed=4))
    state["rows"] = state["rows"][:2]
    with pytest.raises(ValueError, match="does not fit"):
        resumed.load_state_dict(state)


def test_a_state_from_before_retain_loads_as_all_live():
    buf = ReplayBuffer(10, obs_dim=1, act_dim=1, device=torch.device("cpu"))
    rows_numbered(buf, 0, 12)
    old = {"rows": buf.data.clone(), "size": 10, "next": 2}  # the format before `retain`
    resumed = ReplayBuffer(10, obs_dim=1, act_dim=1, device=torch.device("cpu"))
    resumed.load_state_dict(old)
    assert resumed.size == 10 and torch.equal(sampled_numbers(resumed), sampled_numbers(buf))
