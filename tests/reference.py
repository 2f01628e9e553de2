"""Plain autograd references of every network and update the project differentiates by hand.

Written the obvious way (CleanRL style: forward with torch ops, `loss.backward()` or
`torch.autograd.grad`, `torch.optim.Adam`), sharing nothing with `mbpo` but the parameter
layout (`BatchedMLP.views`) and the transition layout, so every gradient test compares the
hand-written backward passes (`mbpo.nets`, `mbpo.sac`, `mbpo.ensemble`) against code a reader can
check line by line. `SACReference` and `EnsembleReference` also run consecutive updates, which
catches state carried wrongly from one update to the next (optimiser moments, target networks,
reused buffers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from mbpo.ensemble import BOUNDS_PENALTY
from mbpo.nets import BatchedMLP
from mbpo.sac import LOG_STD_MAX, LOG_STD_MIN, SAC
from mbpo.transition import Layout


def mlp(net: BatchedMLP, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`net`'s forward pass with parameters `flat` (laid out like `net.params`), by autograd ops.
    x: `E x B x in`, or `B x in` shared by the members -> `E x B x out`."""
    weights, biases = net.views(flat)
    if x.dim() == 2:
        x = x.expand(net.ensemble, *x.shape)
    for i, (w, b) in enumerate(zip(weights, biases)):
        x = torch.baddbmm(b, x, w)
        if i < len(weights) - 1:
            x = torch.relu(x) if net.activation == "relu" else F.silu(x)
    return x


# ---- SAC ------------------------------------------------------------------------------------


def policy(agent: SAC, actor: torch.Tensor, obs: torch.Tensor) -> TransformedDistribution:
    """The squashed Gaussian policy over [-1, 1]^d: N(mean, std) -> tanh. The env's action is
    `agent.action_bias + agent.action_scale * x`; log-probabilities are of x (the original's
    normalised action space)."""
    out = mlp(agent.actor, actor, obs)[0]
    mean, pre = out[:, : agent.act_dim], out[:, agent.act_dim :]
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(pre) + 1)
    return TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform(cache_size=1)])


def policy_sample(agent: SAC, actor: torch.Tensor, obs: torch.Tensor, eps: torch.Tensor):
    """A reparameterised action in the normalised box [-1, 1]^d (what the critics see) for
    standard normal noise `eps`, and its log-probability."""
    dist = policy(agent, actor, obs)
    u = dist.base_dist.loc + dist.base_dist.scale * eps
    squashed = torch.tanh(u)
    return squashed, dist.log_prob(squashed).sum(1)


def critic_loss(agent, critic, target, actor, log_alpha, batch, eps_next) -> torch.Tensor:
    """sum over the twin critics of mean_b (Q_j(s, a) - y)^2, y = r + gamma (1 - d) soft V(s')."""
    t = Layout(agent.obs_dim, agent.act_dim).split(batch)
    alpha = log_alpha.detach().exp()
    with torch.no_grad():
        a_next, logp_next = policy_sample(agent, actor.detach(), t.next_obs, eps_next)
        q_next = mlp(agent.critic, target, torch.cat((t.next_obs, a_next), 1))[..., 0]
        y = t.reward + agent.cfg.gamma * (1 - t.terminated) * (q_next.min(0).values - alpha * logp_next)
    q = mlp(agent.critic, critic, t.obs_action)[..., 0]
    return ((q - y) ** 2).mean(1).sum()


def actor_loss(agent, critic, actor, log_alpha, batch, eps_pi) -> tuple[torch.Tensor, torch.Tensor]:
    """mean_b (alpha log p(a|s) - min_j Q_j(s, a)), a ~ pi reparameterised; also log p (detached)."""
    obs = Layout(agent.obs_dim, agent.act_dim).split(batch).obs
    a_pi, logp = policy_sample(agent, actor, obs, eps_pi)
    q_pi = mlp(agent.critic, critic.detach(), torch.cat((obs, a_pi), 1))[..., 0]
    return (log_alpha.detach().exp() * logp - q_pi.min(0).values).mean(), logp.detach()


def alpha_loss(agent, log_alpha, logp) -> torch.Tensor:
    return -(log_alpha * (logp + agent.target_entropy)).mean()


class SACReference:
    """SAC with autograd and torch.optim.Adam, started from `agent`'s parameters; one `update`
    does what `SAC.update` does, in the same order (critic step; actor and temperature steps
    against the updated critic, from one policy sample; Polyak averaging)."""

    def __init__(self, agent: SAC) -> None:
        self.agent, cfg = agent, agent.cfg
        self.actor = agent.actor.params.clone().requires_grad_(True)
        self.critic = agent.critic.params.clone().requires_grad_(True)
        self.target = agent.critic_target.params.clone()
        self.log_alpha = agent.log_alpha.clone().requires_grad_(True)
        self.critic_opt = torch.optim.Adam([self.critic], lr=cfg.critic_lr)
        self.actor_opt = torch.optim.Adam([self.actor], lr=cfg.actor_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)
        self.grads: dict[str, torch.Tensor] = {}  # of the last update

    def update(self, batch: torch.Tensor, eps: torch.Tensor) -> None:
        """`eps`: the update's policy noise, `2B x act` (next states' rows, then the states')."""
        agent = self.agent
        eps_next, eps_pi = eps.split(batch.shape[0])
        self.critic_opt.zero_grad()
        critic_loss(agent, self.critic, self.target, self.actor, self.log_alpha, batch, eps_next).backward()
        self.grads["critic"] = self.critic.grad.clone()
        self.critic_opt.step()

        self.actor_opt.zero_grad()
        loss, logp = actor_loss(agent, self.critic, self.actor, self.log_alpha, batch, eps_pi)
        loss.backward()
        self.grads["actor"] = self.actor.grad.clone()
        self.actor_opt.step()

        self.alpha_opt.zero_grad()
        alpha_loss(agent, self.log_alpha, logp).backward()
        self.grads["log_alpha"] = self.log_alpha.grad.clone()
        if agent.cfg.learn_alpha:
            self.alpha_opt.step()

        with torch.no_grad():
            self.target.lerp_(self.critic, agent.cfg.tau)


# ---- the model ensemble ---------------------------------------------------------------------


def ensemble_loss(model, flat: torch.Tensor, bounds: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gaussian NLL (mean over rows and outputs, summed over members) with soft-bounded
    log-variance, plus the bounds' penalty; weight decay is the optimiser's (L2 per layer)."""
    out = mlp(model.net, flat, x)
    mean, raw = out[..., : model.out_dim], out[..., model.out_dim :]
    logvar = bounds[0] - F.softplus(bounds[0] - raw)
    logvar = bounds[1] + F.softplus(logvar - bounds[1])
    nll = (((mean - y) ** 2) * torch.exp(-logvar) + logvar).mean(dim=(1, 2)).sum()
    return nll + BOUNDS_PENALTY * (bounds[0].sum() - bounds[1].sum())


class EnsembleReference:
    """`GaussianEnsemble.step` with autograd and torch.optim.Adam (per-layer weight decay as
    parameter groups), started from `model`'s weights and bounds."""

    def __init__(self, model) -> None:
        self.model, cfg = model, model.cfg
        self.params = model.net.params.clone()
        self.bounds = model.bounds[0].clone().requires_grad_(True)
        decay = dict(zip(((s.start, s.stop) for s in model.net.weight_slices()), cfg.model_weight_decay))
        self.parts, groups, cursor = [], [], 0
        for start, stop in sorted(decay):  # weight slices (decayed) and the bias gaps between them
            for lo, hi, wd in ((cursor, start, 0.0), (start, stop, decay[(start, stop)])):
                if hi > lo:
                    part = self.params[lo:hi].clone().requires_grad_(True)
                    self.parts.append(part)
                    groups.append({"params": [part], "weight_decay": wd})
            cursor = stop
        if cursor < self.params.numel():
            part = self.params[cursor:].clone().requires_grad_(True)
            self.parts.append(part)
            groups.append({"params": [part], "weight_decay": 0.0})
        self.opt = torch.optim.Adam(groups, lr=cfg.model_lr)
        self.bounds_opt = torch.optim.Adam([self.bounds], lr=cfg.model_lr)

    @property
    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach() for p in self.parts])

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.opt.zero_grad()
        self.bounds_opt.zero_grad()
        ensemble_loss(self.model, torch.cat(self.parts), self.bounds, x, y).backward()
        self.opt.step()
        self.bounds_opt.step()
