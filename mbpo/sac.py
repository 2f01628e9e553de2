"""Soft actor-critic (Haarnoja et al. 2018) with twin Q networks and a learned temperature.

The policy is a tanh-squashed diagonal Gaussian scaled to the action box:
    u = mean + std * eps,  eps ~ N(0, I);   action = bias + scale * tanh(u)
    log p = sum_i [ log N(eps_i) - log std_i - log(1 - tanh(u_i)^2) ]
with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) for numerical stability. log p is the
density of the squashed action tanh(u) in [-1, 1]^d, not of the action in the env's units: the
entropy and its target are the same for every action scale, as in the original MBPO (softlearning
normalises every action space to [-1, 1]) and the tutorial. InvertedPendulum's actions span
[-3, 3]: in the env's units its target entropy -0.05 would be -0.05 - log 3 = -1.15 in [-1, 1],
a policy three times less noisy than the paper's.

The critics see actions in that normalised box too, as softlearning's do (its envs are wrapped
to [-1, 1]): transitions store the normalised action (`to_unit`), the policy's own action enters
the critic as tanh(u), and only the env receives bias + scale * tanh(u). In the env's units a
critic's initial sensitivity to the action, and the speed at which Adam moves it, would grow with
the action scale (InvertedPendulum's 3, Pendulum's 2). For a [-1, 1] box (Hopper, HalfCheetah,
Walker2d, ...) both are the same numbers.

Gradients are written by hand (see `mbpo.nets` for why) and checked against autograd in
`tests/test_sac.py`. One `update` is: critic step, then actor and temperature steps from the
same policy sample against the updated critic, then Polyak averaging of the target critic.

Seeds in lockstep: one `SAC` holds S independent agents (one generator each) as one batched
computation. The actor is a `BatchedMLP` of S members, the critics of 2S (seed s's twin critics are
members 2s and 2s+1), the temperature has S entries, and every loss is a mean over one seed's
batch: nothing is averaged across seeds. Inputs and outputs carry a leading seed axis
(`S x B x ...`); with one seed the axis may be left out.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from mbpo.config import SACConfig
from mbpo.nets import Adam, BatchedMLP, padded
from mbpo.transition import Layout

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_HALF_LOG_STD_RANGE = 0.5 * (LOG_STD_MAX - LOG_STD_MIN)
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class PolicySample:
    """A reparameterised policy sample and what the actor's backward pass needs.

    All `S x B x action_dim` except `logp` (`S x B`).
    """

    action: torch.Tensor
    logp: torch.Tensor
    tanh_u: torch.Tensor
    std: torch.Tensor
    eps: torch.Tensor
    tanh_pre_log_std: torch.Tensor

    def rows(self, index: slice) -> PolicySample:
        """The batch rows `index` of every seed."""
        return PolicySample(*(getattr(self, f.name)[:, index] for f in dataclasses.fields(self)))

    def seed_axis_dropped(self) -> PolicySample:
        return PolicySample(*(getattr(self, f.name)[0] for f in dataclasses.fields(self)))


class SAC:
    """Twin-Q soft actor-critic on flat-parameter networks, for one seed or S in lockstep.

    Transitions are rows laid out by `mbpo.transition.Layout`; `terminated` is 1 only at true
    termination, never at a time limit, so the critic bootstraps through truncation.
    """

    def __init__(
        self,
        obs_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
        cfg: SACConfig,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator],
    ) -> None:
        """`generator`: the run's, or one per seed (S of them): seed s draws everything
        (initial weights, policy noise) from its own, as its run alone would."""
        act_dim = len(action_low)
        self.generators = list(generator) if isinstance(generator, list) else [generator]
        self.seeds = s = len(self.generators)
        self.obs_dim, self.act_dim, self.cfg, self.device = obs_dim, act_dim, cfg, device
        self.layout = Layout(obs_dim, act_dim)  # of the transition rows `update` takes
        # one run draws its actor's weights, then its critics': so does each seed from its generator
        self.actor = BatchedMLP(s, [obs_dim, *cfg.actor_hidden, 2 * act_dim], "relu", device, self.generators)
        self.critic = BatchedMLP(2 * s, [obs_dim + act_dim, *cfg.critic_hidden, 1], "relu", device, self.generators)
        self.critic_target = self.critic.copy()
        self.log_alpha = torch.full((s,), math.log(cfg.init_alpha), device=device)
        self._alpha_grad = torch.zeros(s, device=device)
        self._actor_groups = self.actor.group_slices(s)
        self._critic_groups = self.critic.group_slices(s)
        self._alpha_groups = [[slice(i, i + 1)] for i in range(s)]
        self.actor_opt = Adam(self.actor.params, self.actor.grads, cfg.actor_lr, groups=self._actor_groups)
        self.critic_opt = Adam(self.critic.params, self.critic.grads, cfg.critic_lr, groups=self._critic_groups)
        self.alpha_opt = Adam(self.log_alpha, self._alpha_grad, cfg.alpha_lr, groups=self._alpha_groups)
        low = torch.as_tensor(action_low, dtype=torch.float32, device=device)
        high = torch.as_tensor(action_high, dtype=torch.float32, device=device)
        self.action_scale = (high - low) / 2
        self.action_bias = (high + low) / 2
        self._unit = (self.action_bias.cpu().numpy(), self.action_scale.cpu().numpy())
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        # constant part of log p: Gaussian normaliser and the 2 log 2 of the stable tanh
        # correction (no action scale: log p is of the squashed action in [-1, 1])
        self._logp_const = float(-act_dim * (0.5 * _LOG_2PI + 2.0 * math.log(2.0)))
        self.updates = 0

    def state_dict(self, seed: int | None = None) -> dict:
        """Everything an update reads or writes (networks, temperature, optimisers, counter):
        of the one seed, or with `seed` of that seed alone, in the layout its run alone saves
        (a checkpoint of a seed trained in lockstep resumes alone and the other way round)."""
        if seed is None:
            if self.seeds != 1:
                raise ValueError(f"state_dict of {self.seeds} seeds: name the seed")
            seed = 0
        nets = {"actor": self._actor_groups, "critic": self._critic_groups, "critic_target": self._critic_groups}
        out: dict = {
            name: getattr(self, name).group_params(getattr(self, name).params, seed, self.seeds) for name in nets
        }
        out["log_alpha"] = self.log_alpha[seed : seed + 1].clone()
        for name, groups in (
            ("actor_opt", self._actor_groups), ("critic_opt", self._critic_groups), ("alpha_opt", self._alpha_groups)
        ):  # fmt: skip
            out[name] = getattr(self, name).state_dict(seed, groups[seed])
        out["updates"] = self.updates
        return out

    def load_state_dict(self, state: dict, seed: int | None = None) -> None:
        """Restore `state_dict`'s result (into seed `seed`'s part with `seed`). The update
        counter is shared: seeds in lockstep have made the same number of updates."""
        seed = 0 if seed is None else seed
        for name in ("actor", "critic", "critic_target"):
            net = getattr(self, name)
            net.set_group_params(net.params, seed, self.seeds, state[name])
        self.log_alpha[seed : seed + 1].copy_(state["log_alpha"])
        for name, groups in (
            ("actor_opt", self._actor_groups), ("critic_opt", self._critic_groups), ("alpha_opt", self._alpha_groups)
        ):  # fmt: skip
            getattr(self, name).load_state_dict(state[name], seed, groups[seed])
        self.updates = state["updates"]

    # ---- policy ---------------------------------------------------------------------------

    def _heads(self, obs: torch.Tensor, slot: str) -> tuple[torch.Tensor, torch.Tensor]:
        """obs `S x B x obs_dim` -> (mean, tanh of the pre-log-std), each `S x B x act_dim`."""
        out = self.actor.forward(obs, slot)
        return out[..., : self.act_dim], torch.tanh(out[..., self.act_dim :])

    def _noise(self, shape: torch.Size, rows: int, draw: list[bool] | None) -> torch.Tensor:
        """Standard normal policy noise `S x R x act_dim` for the first `rows` of R rows (the
        others, padding, get zeros): seed s's from seed s's generator, drawn as its run alone
        draws it; a seed not in `draw` draws nothing and gets zeros (its rollout is over: its run
        would not draw)."""
        if self.seeds == 1 and draw is None and rows == shape[1]:
            return torch.randn(shape[1:], generator=self.generators[0], device=self.device).unsqueeze(0)
        eps = torch.zeros(shape, device=self.device)
        for i, gen in enumerate(self.generators):
            if draw is None or draw[i]:
                torch.randn((rows, shape[2]), generator=gen, device=self.device, out=eps[i, :rows])
        return eps

    def sample(self, obs: torch.Tensor, slot: str = "sample", draw: list[bool] | None = None) -> PolicySample:
        """Reparameterised sample with its log-probability. obs: `S x B x obs_dim` (or `B x obs_dim`
        with one seed, and the sample without the seed axis). `draw`: see `_noise`.

        `slot` names the actor's buffers (see `mbpo.nets`); backward needs the same name. Each
        seed's rows are computed padded to a multiple of `mbpo.nets.LANES`, so that its numbers
        are the same alone and among other seeds (the padding rows are dropped from the result).
        """
        if obs.dim() == 2:
            return self.sample(obs.unsqueeze(0), slot, draw).seed_axis_dropped()
        rows = obs.shape[1]
        if padded(rows) != rows:
            full = torch.zeros(obs.shape[0], padded(rows), obs.shape[2], device=obs.device)
            full[:, :rows] = obs
            obs = full
        mean, tanh_pre = self._heads(obs, slot)
        log_std = tanh_pre.mul(_HALF_LOG_STD_RANGE).add_(LOG_STD_MIN + _HALF_LOG_STD_RANGE)
        std = log_std.exp()
        eps = self._noise(mean.shape, rows, draw)
        u = torch.addcmul(mean, std, eps)
        tanh_u = torch.tanh(u)
        action = torch.addcmul(self.action_bias, tanh_u, self.action_scale)
        # per dimension: -eps^2/2 - log std + 2u + 2 softplus(-2u), plus constants
        terms = torch.nn.functional.softplus(u.mul(-2.0)).add_(u).mul_(2.0)
        terms.addcmul_(eps, eps, value=-0.5).sub_(log_std)
        logp = terms.sum(dim=-1).add_(self._logp_const)
        sample = PolicySample(action, logp, tanh_u, std, eps, tanh_pre)
        return sample if rows == obs.shape[1] else sample.rows(slice(None, rows))

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """One action per seed: obs `S x obs_dim` -> `S x act_dim` (or `obs_dim` -> `act_dim`
        with one seed) numpy array. Each seed's row is computed in a block of `LANES` rows (see
        `sample`), so a seed acts alike alone and among others."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        single = x.dim() == 1
        x = x.view(self.seeds, 1, self.obs_dim)
        if deterministic:
            block = torch.zeros(self.seeds, padded(1), self.obs_dim, device=self.device)
            block[:, :1] = x
            mean, _ = self._heads(block, "act")
            action = torch.addcmul(self.action_bias, torch.tanh(mean), self.action_scale)
        else:
            action = self.sample(x, "act").action
        out = action[:, 0].cpu().numpy()
        return out[0] if single else out

    def to_unit(self, action: np.ndarray) -> np.ndarray:
        """An action in the env's units -> the normalised box [-1, 1]^d the critics see (what a
        transition stores)."""
        bias, scale = self._unit
        return ((action - bias) / scale).astype(np.float32)

    def _pairs(self, x: torch.Tensor) -> torch.Tensor:
        """Each seed's critic input `S x B x in` for both of its critics -> `2S x B x in` (with
        one seed a view, as a batch shared by the two members)."""
        s, b, i = x.shape
        return x.unsqueeze(1).expand(s, 2, b, i).reshape(2 * s, b, i)

    # ---- update ---------------------------------------------------------------------------

    def update(self, batch: torch.Tensor, stats: bool = False) -> dict[str, torch.Tensor] | None:
        """One SAC update per seed from a batch of transition rows per seed (`S x B x row_dim`,
        or `B x row_dim` with one seed).

        Returns diagnostic tensors (one value per seed) when `stats` (kept off in the hot loop:
        no extra work).
        """
        if batch.dim() == 2:
            batch = batch.unsqueeze(0)
        obs, _, reward, next_obs, terminated, obs_action = self.layout.split(batch)
        s, n = batch.shape[0], batch.shape[1]
        alpha = self.log_alpha.exp()
        alpha_col = alpha.view(s, 1)

        # One actor pass serves the target (rows :n, next states) and the actor loss (rows n:,
        # current states); both use the actor as it is before this update.
        both = self.sample(torch.cat((next_obs, obs), dim=1), "pi")
        nxt, pi = both.rows(slice(None, n)), both.rows(slice(n, None))

        # critic target: r + gamma (1 - terminated) (min_j Q'_j(s', a') - alpha log p(a'|s'))
        q_next = self.critic_target.forward(self._pairs(torch.cat((next_obs, nxt.tanh_u), dim=2)), "next")
        q_next = q_next.view(s, 2, n)
        soft_v = torch.addcmul(torch.minimum(q_next[:, 0], q_next[:, 1]), alpha_col, nxt.logp, value=-1.0)
        discount = terminated.mul(-self.cfg.gamma).add_(self.cfg.gamma)
        target = torch.addcmul(reward, discount, soft_v)

        # critic: loss = sum_j mean_b (Q_j(s, a) - target)^2, per seed
        q = self.critic.forward(self._pairs(obs_action), "q")
        td = q.view(s, 2, n, 1).sub_(target.view(s, 1, n, 1)).view(2 * s, n, 1)
        self.critic.backward("q", td.mul(2.0 / n))
        self.critic_opt.step()

        # actor: loss = mean_b (alpha log p(a|s) - min_j Q_j(s, a)),  a ~ pi(.|s) reparameterised
        q_pi = self.critic.forward(self._pairs(torch.cat((obs, pi.tanh_u), dim=2)), "pi").view(s, 2, n, 1)
        first_is_min = (q_pi[:, 0] <= q_pi[:, 1]).to(q_pi.dtype)
        grad_q = torch.stack((first_is_min, 1.0 - first_is_min), dim=1).mul_(-1.0 / n).view(2 * s, n, 1)
        grad_x = self.critic.backward("pi", grad_q, param_grads=False, input_grad=True)
        # the critic's input is [obs | action]; a seed's two critics' gradients add up
        grad_action = grad_x.view(s, 2, n, -1).sum(dim=1)[..., self.obs_dim :]
        grad_logp = alpha.view(s, 1, 1) * (1.0 / n)
        # d log p / du = 2 tanh(u);  the critic's action is tanh(u): d tanh(u) / du = 1 - tanh(u)^2
        one_minus_t2 = torch.addcmul(torch.ones_like(pi.tanh_u), pi.tanh_u, pi.tanh_u, value=-1.0)
        grad_u = grad_action * one_minus_t2
        grad_u.add_(pi.tanh_u * (2.0 * grad_logp))
        # log std enters through u = mean + std eps and through log p's -log std term
        grad_log_std = (grad_u * pi.std).mul_(pi.eps).sub_(grad_logp)
        grad_pre = grad_log_std.mul_(_HALF_LOG_STD_RANGE).mul_(
            torch.addcmul(torch.ones_like(pi.tanh_pre_log_std), pi.tanh_pre_log_std, pi.tanh_pre_log_std, value=-1.0)
        )
        self.actor.backward("pi", torch.cat((grad_u, grad_pre), dim=2), rows=slice(n, 2 * n))
        self.actor_opt.step()

        # temperature: loss = -log_alpha * mean_b (log p + target_entropy), per seed
        if self.cfg.learn_alpha:
            torch.mean(pi.logp, dim=1, out=self._alpha_grad)
            self._alpha_grad.add_(self.target_entropy).neg_()
            self.alpha_opt.step()

        self.critic_target.params.lerp_(self.critic.params, self.cfg.tau)
        self.updates += 1
        if not stats:
            return None
        min_q = torch.minimum(q_pi[:, 0], q_pi[:, 1])[..., 0]
        return {
            "critic_loss": td.square().mean(dim=(1, 2)).view(s, 2).sum(dim=1),
            "actor_loss": (alpha_col * pi.logp - min_q).mean(dim=1),
            "alpha": alpha.clone(),
            "q_mean": q_pi.reshape(s, 2 * n).mean(dim=1),
            "entropy": -pi.logp.mean(dim=1),
        }
