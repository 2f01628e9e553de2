"""Preallocated replay buffer: one float32 row per transition, on the training device."""

from __future__ import annotations

import numpy as np
import torch

from mbpo.memory import is_allocation_failure
from mbpo.transition import Layout


class AllocationError(MemoryError):
    """A buffer too large for the memory left on its device."""


class ReplayBuffer:
    """Ring buffer of transition rows (`capacity x row_dim`, laid out by `mbpo.transition.Layout`).

    One row per transition keeps sampling to a single gather; `layout.split` names a batch's fields.
    `retain(n)` keeps only the newest `n` rows live (sampled) without moving any: MBPO's model
    buffer holds one epoch of rollouts at the current rollout length, so its live size grows
    with the length while its memory is allocated once, for the longest.
    """

    def __init__(
        self, capacity: int, obs_dim: int, act_dim: int, device: torch.device, name: str = "replay buffer"
    ) -> None:
        self.capacity, self.obs_dim, self.act_dim = capacity, obs_dim, act_dim
        self.layout = Layout(obs_dim, act_dim)
        self.row_dim = self.layout.row_dim
        lay = self.layout
        self._fields = (lay.obs, lay.action, lay.reward, lay.next_obs, lay.terminated)
        try:
            self.data = torch.zeros(capacity, self.row_dim, device=device)
        except (MemoryError, RuntimeError) as exc:
            if not is_allocation_failure(exc):
                raise
            need = capacity * self.row_dim * 4  # float32
            raise AllocationError(
                f"cannot allocate the {name}: {capacity} rows of {self.row_dim} float32 need {need} bytes on {device}"
            ) from None
        # on the CPU, rows are written through a numpy view of the same memory (no copy, no torch
        # dispatch); on an accelerator, a host row is staged and copied once
        self._host = self.data.numpy() if self.data.device.type == "cpu" else None
        self._stage = np.zeros(self.row_dim, dtype=np.float32)
        self.size = 0  # live rows: the newest `size` rows, ending just before `_next`
        self.limit = capacity  # the most rows live at once (`retain`)
        self._filled = 0  # rows ever written, up to capacity
        self._next = 0

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        row = self._host[self._next] if self._host is not None else self._stage
        o, a, r, n, t = self._fields  # the layout's, unpacked here: this runs every env step
        row[o] = obs
        row[a] = action
        row[r] = reward
        row[n] = next_obs
        row[t] = float(terminated)
        if self._host is None:
            self.data[self._next].copy_(torch.from_numpy(self._stage))
        self._next = (self._next + 1) % self.capacity
        self.size = min(self.size + 1, self.limit)
        self._filled = min(self._filled + 1, self.capacity)

    def add_batch(self, rows: torch.Tensor) -> None:
        """Append rows (`N x row_dim`, on the buffer's device), overwriting the oldest when full."""
        n = rows.shape[0]
        if n >= self.capacity:
            rows, n = rows[-self.capacity :], self.capacity
        first = min(n, self.capacity - self._next)
        self.data[self._next : self._next + first] = rows[:first]
        self.data[: n - first] = rows[first:]
        self._next = (self._next + n) % self.capacity
        self.size = min(self.size + n, self.limit)
        self._filled = min(self._filled + n, self.capacity)

    def retain(self, limit: int) -> None:
        """Keep at most the newest `limit` rows live from now on (at most `capacity`). Rows that
        fell out stay out when the limit grows again: a pool reallocated to a larger size keeps
        the samples it had, no older ones."""
        if not 0 < limit <= self.capacity:
            raise ValueError(f"retain: limit {limit} is not in 1..{self.capacity}")
        self.limit = limit
        self.size = min(self.size, limit)

    def _live_positions(self) -> torch.Tensor:
        """Where the live rows sit, oldest first."""
        return torch.arange(self._next - self.size, self._next, device=self.data.device).remainder_(self.capacity)

    def state_dict(self) -> dict:
        """The live rows only (a young buffer, or one retaining less than it holds, is saved
        small), oldest first, with the ring's position: rows no longer live are never read
        again, so a resumed buffer samples exactly what the saved one would have."""
        if self.size == self._filled:  # live rows are the first `size` (the ring never dropped any)
            rows = self.data[: self.size].clone()
            positions = "first"
        else:
            rows = self.data.index_select(0, self._live_positions())
            positions = "ring"
        return {
            "rows": rows,
            "size": self.size,
            "next": self._next,
            "limit": self.limit,
            "filled": self._filled,
            "positions": positions,
        }

    def load_state_dict(self, state: dict) -> None:
        rows, size = state["rows"], state["size"]
        limit = state.get("limit", self.capacity)  # checkpoints from before `retain`: all live
        filled = state.get("filled", size)
        if (
            rows.ndim != 2
            or rows.shape[1] != self.row_dim
            or rows.shape[0] != size
            or not size <= min(filled, limit)
            or filled > self.capacity
            or limit > self.capacity
            or not 0 <= state["next"] < self.capacity
        ):
            raise ValueError(
                f"buffer state of {tuple(rows.shape)} rows ({size} live of {filled} written, at most {limit}) "
                f"does not fit a {self.capacity} x {self.row_dim} buffer"
            )
        self.size, self._next, self.limit, self._filled = size, state["next"], limit, filled
        if state.get("positions", "first") == "first":
            self.data[:size].copy_(rows)
        else:
            self.data.index_copy_(0, self._live_positions(), rows)

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """`batch_size` live rows drawn uniformly with replacement -> `B x row_dim` (one gather)."""
        index = torch.randint(self.size, (batch_size,), generator=generator, device=self.data.device)
        if self.size < self._filled:  # live rows are the newest `size`, possibly across the wrap
            index.add_(self._next - self.size).remainder_(self.capacity)
        return self.data.index_select(0, index)
