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

Gradients are written by hand (see `mbpo.nets` for why) and checked against autograd in
`tests/test_sac.py`. One `update` is: critic step, then actor and temperature steps from the
same policy sample against the updated critic, then Polyak averaging of the target critic.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from mbpo.config import SACConfig
from mbpo.nets import Adam, BatchedMLP
from mbpo.transition import Layout

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_HALF_LOG_STD_RANGE = 0.5 * (LOG_STD_MAX - LOG_STD_MIN)
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class PolicySample:
    """A reparameterised policy sample and what the actor's backward pass needs.

    All `B x action_dim` except `logp` (`B`).
    """

    action: torch.Tensor
    logp: torch.Tensor
    tanh_u: torch.Tensor
    std: torch.Tensor
    eps: torch.Tensor
    tanh_pre_log_std: torch.Tensor

    def rows(self, index: slice) -> PolicySample:
        return PolicySample(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))


class SAC:
    """Twin-Q soft actor-critic on flat-parameter networks.

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
        generator: torch.Generator,
    ) -> None:
        act_dim = len(action_low)
        self.obs_dim, self.act_dim, self.cfg, self.device = obs_dim, act_dim, cfg, device
        self.layout = Layout(obs_dim, act_dim)  # of the transition rows `update` takes
        self.generator = generator
        self.actor = BatchedMLP(1, [obs_dim, *cfg.actor_hidden, 2 * act_dim], "relu", device, generator)
        self.critic = BatchedMLP(2, [obs_dim + act_dim, *cfg.critic_hidden, 1], "relu", device, generator)
        self.critic_target = self.critic.copy()
        self.log_alpha = torch.full((1,), math.log(cfg.init_alpha), device=device)
        self._alpha_grad = torch.zeros(1, device=device)
        self.actor_opt = Adam(self.actor.params, self.actor.grads, cfg.actor_lr)
        self.critic_opt = Adam(self.critic.params, self.critic.grads, cfg.critic_lr)
        self.alpha_opt = Adam(self.log_alpha, self._alpha_grad, cfg.alpha_lr)
        low = torch.as_tensor(action_low, dtype=torch.float32, device=device)
        high = torch.as_tensor(action_high, dtype=torch.float32, device=device)
        self.action_scale = (high - low) / 2
        self.action_bias = (high + low) / 2
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        # constant part of log p: Gaussian normaliser and the 2 log 2 of the stable tanh
        # correction (no action scale: log p is of the squashed action in [-1, 1])
        self._logp_const = float(-act_dim * (0.5 * _LOG_2PI + 2.0 * math.log(2.0)))
        self.updates = 0

    def state_dict(self) -> dict:
        """Everything an update reads or writes (networks, temperature, optimisers, counter)."""
        return {
            "actor": self.actor.params.clone(),
            "critic": self.critic.params.clone(),
            "critic_target": self.critic_target.params.clone(),
            "log_alpha": self.log_alpha.clone(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "alpha_opt": self.alpha_opt.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        for name in ("actor", "critic", "critic_target"):
            getattr(self, name).params.copy_(state[name])
        self.log_alpha.copy_(state["log_alpha"])
        for name in ("actor_opt", "critic_opt", "alpha_opt"):
            getattr(self, name).load_state_dict(state[name])
        self.updates = state["updates"]

    # ---- policy ---------------------------------------------------------------------------

    def _heads(self, obs: torch.Tensor, slot: str) -> tuple[torch.Tensor, torch.Tensor]:
        """obs `B x obs_dim` -> (mean, tanh of the pre-log-std), each `B x act_dim`."""
        out = self.actor.forward(obs.unsqueeze(0), slot)[0]
        return out[:, : self.act_dim], torch.tanh(out[:, self.act_dim :])

    def _noise(self, shape: torch.Size) -> torch.Tensor:
        """Standard normal policy noise from the run's generator."""
        return torch.randn(shape, generator=self.generator, device=self.device)

    def sample(self, obs: torch.Tensor, slot: str = "sample") -> PolicySample:
        """Reparameterised sample with its log-probability. obs: `B x obs_dim`.

        `slot` names the actor's buffers (see `mbpo.nets`); backward needs the same name.
        """
        mean, tanh_pre = self._heads(obs, slot)
        log_std = tanh_pre.mul(_HALF_LOG_STD_RANGE).add_(LOG_STD_MIN + _HALF_LOG_STD_RANGE)
        std = log_std.exp()
        eps = self._noise(mean.shape)
        u = torch.addcmul(mean, std, eps)
        tanh_u = torch.tanh(u)
        action = torch.addcmul(self.action_bias, tanh_u, self.action_scale)
        # per dimension: -eps^2/2 - log std + 2u + 2 softplus(-2u), plus constants
        terms = torch.nn.functional.softplus(u.mul(-2.0)).add_(u).mul_(2.0)
        terms.addcmul_(eps, eps, value=-0.5).sub_(log_std)
        logp = terms.sum(dim=1).add_(self._logp_const)
        return PolicySample(action, logp, tanh_u, std, eps, tanh_pre)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """One action for one observation (`obs_dim`) -> `act_dim` numpy array."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        if deterministic:
            mean, _ = self._heads(x, "act")
            action = torch.addcmul(self.action_bias, torch.tanh(mean), self.action_scale)
        else:
            action = self.sample(x, "act").action
        return action[0].cpu().numpy()

    # ---- update ---------------------------------------------------------------------------

    def update(self, batch: torch.Tensor, stats: bool = False) -> dict[str, torch.Tensor] | None:
        """One SAC update from a batch of transition rows (`B x row_dim`).

        Returns 0-d diagnostic tensors when `stats` (kept off in the hot loop: no extra work).
        """
        obs, _, reward, next_obs, terminated, obs_action = self.layout.split(batch)
        n = batch.shape[0]
        alpha = self.log_alpha.exp()

        # One actor pass serves the target (rows :n, next states) and the actor loss (rows n:,
        # current states); both use the actor as it is before this update.
        both = self.sample(torch.cat((next_obs, obs), dim=0), "pi")
        nxt, pi = both.rows(slice(None, n)), both.rows(slice(n, None))

        # critic target: r + gamma (1 - terminated) (min_j Q'_j(s', a') - alpha log p(a'|s'))
        q_next = self.critic_target.forward(torch.cat((next_obs, nxt.action), dim=1), "next")
        soft_v = torch.addcmul(torch.minimum(q_next[0, :, 0], q_next[1, :, 0]), alpha, nxt.logp, value=-1.0)
        discount = terminated.mul(-self.cfg.gamma).add_(self.cfg.gamma)
        target = torch.addcmul(reward, discount, soft_v)

        # critic: loss = sum_j mean_b (Q_j(s, a) - target)^2
        q = self.critic.forward(obs_action, "q")
        td = q.sub_(target.view(1, n, 1))
        self.critic.backward("q", td.mul(2.0 / n))
        self.critic_opt.step()

        # actor: loss = mean_b (alpha log p(a|s) - min_j Q_j(s, a)),  a ~ pi(.|s) reparameterised
        q_pi = self.critic.forward(torch.cat((obs, pi.action), dim=1), "pi")
        first_is_min = (q_pi[0] <= q_pi[1]).to(q_pi.dtype)
        grad_q = torch.stack((first_is_min, 1.0 - first_is_min)).mul_(-1.0 / n)
        grad_x = self.critic.backward("pi", grad_q, param_grads=False, input_grad=True)
        grad_action = grad_x.sum(dim=0)[:, self.obs_dim :]  # the critic's input is [obs | action]
        grad_logp = alpha * (1.0 / n)
        # d log p / du = 2 tanh(u);  d action / du = scale (1 - tanh(u)^2)
        one_minus_t2 = torch.addcmul(torch.ones_like(pi.tanh_u), pi.tanh_u, pi.tanh_u, value=-1.0)
        grad_u = (grad_action * self.action_scale).mul_(one_minus_t2)
        grad_u.add_(pi.tanh_u * (2.0 * grad_logp))
        # log std enters through u = mean + std eps and through log p's -log std term
        grad_log_std = (grad_u * pi.std).mul_(pi.eps).sub_(grad_logp)
        grad_pre = grad_log_std.mul_(_HALF_LOG_STD_RANGE).mul_(
            torch.addcmul(torch.ones_like(pi.tanh_pre_log_std), pi.tanh_pre_log_std, pi.tanh_pre_log_std, value=-1.0)
        )
        self.actor.backward("pi", torch.cat((grad_u, grad_pre), dim=1).unsqueeze(0), rows=slice(n, None))
        self.actor_opt.step()

        # temperature: loss = -log_alpha * mean_b (log p + target_entropy)
        if self.cfg.learn_alpha:
            torch.mean(pi.logp, dim=0, keepdim=True, out=self._alpha_grad)
            self._alpha_grad.add_(self.target_entropy).neg_()
            self.alpha_opt.step()

        self.critic_target.params.lerp_(self.critic.params, self.cfg.tau)
        self.updates += 1
        if not stats:
            return None
        min_q = torch.minimum(q_pi[0], q_pi[1])
        return {
            "critic_loss": td.square().mean(dim=(1, 2)).sum(),
            "actor_loss": (alpha * pi.logp - min_q[:, 0]).mean(),
            "alpha": alpha[0],
            "q_mean": q_pi.mean(),
            "entropy": -pi.logp.mean(),
        }
