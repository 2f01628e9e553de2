"""The transition row, defined once: `[obs | action | reward | next_obs | terminated]`.

Replay buffers store one float row per transition so that sampling a batch is a single gather;
`Layout` is the one place that knows where each field sits in a row, and `Layout.split` gives a
batch's fields as named views (slices of the same memory, no copies), as Stable-Baselines3's
`ReplayBufferSamples` names its fields. `terminated` is 1.0 only for a true terminal state:
time-limit truncation is stored as 0.0, so the critic bootstraps through it.

The model's targets are encoded here too, beside their inverse: the ensemble learns
`[reward | next_obs - obs]` from `[obs | action]` (`model_targets`), and a prediction is turned
back into a reward and a next observation by `from_model_output`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # torch is imported where tensors are made: the plan sizes rows without it
    import torch


class Transitions(NamedTuple):
    """A batch's fields: views into its rows (`B x ...`; reward and terminated are `B`)."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    obs_action: torch.Tensor  # `[obs | action]`, contiguous in the row: the critic's and model's input


@dataclass(frozen=True)
class Layout:
    obs_dim: int
    act_dim: int

    # cached: the slices are computed once per layout, not on every row written
    @cached_property
    def row_dim(self) -> int:
        return 2 * self.obs_dim + self.act_dim + 2

    @cached_property
    def obs(self) -> slice:
        return slice(0, self.obs_dim)

    @cached_property
    def action(self) -> slice:
        return slice(self.obs_dim, self.obs_dim + self.act_dim)

    @cached_property
    def reward(self) -> int:
        return self.obs_dim + self.act_dim

    @cached_property
    def next_obs(self) -> slice:
        return slice(self.reward + 1, self.reward + 1 + self.obs_dim)

    @cached_property
    def terminated(self) -> int:
        return self.row_dim - 1

    @cached_property
    def obs_action(self) -> slice:
        return slice(0, self.reward)

    def split(self, rows: torch.Tensor) -> Transitions:
        """Named views of `N x row_dim` rows, or of `S x N x row_dim` (one batch per seed), no copies."""
        return Transitions(
            rows[..., self.obs],
            rows[..., self.action],
            rows[..., self.reward],
            rows[..., self.next_obs],
            rows[..., self.terminated],
            rows[..., self.obs_action],
        )

    def random_rows(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
        """`n` standard-normal rows with no terminal state: batches for benchmarks and tests."""
        import torch

        rows = torch.randn(n, self.row_dim, generator=generator, device=device)
        rows[:, self.terminated] = 0.0
        return rows

    @staticmethod
    def join(
        obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_obs: torch.Tensor, terminated: torch.Tensor
    ) -> torch.Tensor:
        """Rows from a batch of fields (reward and terminated `N`; terminated boolean or float);
        the sizes come with the fields, so any layout's rows are joined the same way."""
        import torch

        return torch.cat((obs, action, reward.unsqueeze(1), next_obs, terminated.unsqueeze(1).to(obs.dtype)), dim=1)


def model_targets(batch: Transitions) -> torch.Tensor:
    """What the model learns to predict: `[reward | next_obs - obs]` (`N x (1 + obs_dim)`)."""
    import torch

    return torch.cat((batch.reward.unsqueeze(1), batch.next_obs - batch.obs), dim=1)


def from_model_output(obs: torch.Tensor, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of `model_targets`: reward `N` and next observation `N x obs_dim`."""
    return output[:, 0], obs + output[:, 1:]
