"""Preallocated replay buffer: one float32 row per transition, on the training device."""

from __future__ import annotations

import numpy as np
import torch

from mbpo.transition import Layout


class ReplayBuffer:
    """Ring buffer of transition rows (`capacity x row_dim`, laid out by `mbpo.transition.Layout`).

    One row per transition keeps sampling to a single gather; `layout.split` names a batch's fields.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, device: torch.device) -> None:
        self.capacity, self.obs_dim, self.act_dim = capacity, obs_dim, act_dim
        self.layout = Layout(obs_dim, act_dim)
        self.row_dim = self.layout.row_dim
        lay = self.layout
        self._fields = (lay.obs, lay.action, lay.reward, lay.next_obs, lay.terminated)
        self.data = torch.zeros(capacity, self.row_dim, device=device)
        # on the CPU, rows are written through a numpy view of the same memory (no copy, no torch
        # dispatch); on an accelerator, a host row is staged and copied once
        self._host = self.data.numpy() if self.data.device.type == "cpu" else None
        self._stage = np.zeros(self.row_dim, dtype=np.float32)
        self.size = 0
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
        self.size = min(self.size + 1, self.capacity)

    def add_batch(self, rows: torch.Tensor) -> None:
        """Append rows (`N x row_dim`, on the buffer's device), overwriting the oldest when full."""
        n = rows.shape[0]
        if n >= self.capacity:
            rows, n = rows[-self.capacity :], self.capacity
        first = min(n, self.capacity - self._next)
        self.data[self._next : self._next + first] = rows[:first]
        self.data[: n - first] = rows[first:]
        self._next = (self._next + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def state_dict(self) -> dict:
        """The filled rows only (a young buffer is saved small) and the ring's position."""
        return {"rows": self.data[: self.size].clone(), "size": self.size, "next": self._next}

    def load_state_dict(self, state: dict) -> None:
        rows = state["rows"]
        if rows.shape[1] != self.row_dim or state["size"] > self.capacity or rows.shape[0] != state["size"]:
            raise ValueError(
                f"buffer state of {tuple(rows.shape)} rows does not fit a {self.capacity} x {self.row_dim} buffer"
            )
        self.data[: state["size"]].copy_(rows)
        self.size, self._next = state["size"], state["next"]

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """`batch_size` rows drawn uniformly with replacement -> `B x row_dim` (one gather)."""
        index = torch.randint(self.size, (batch_size,), generator=generator, device=self.data.device)
        return self.data.index_select(0, index)
