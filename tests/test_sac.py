"""SAC's hand-written math against autograd and torch.distributions on the same noise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.distributions import AffineTransform, Normal, TanhTransform, TransformedDistribution

from mbpo.config import SACConfig
from mbpo.sac import LOG_STD_MAX, LOG_STD_MIN, SAC

torch.set_default_dtype(torch.float32)

OBS, ACT, B = 3, 2, 32
LOW, HIGH = np.array([-2.0, 0.0]), np.array([2.0, 1.0])  # asymmetric box: scale and bias both matter


def make_agent(**overrides) -> SAC:
    cfg = dataclasses.replace(SACConfig(actor_hidden=(16, 8), critic_hidden=(16, 8), init_alpha=0.3), **overrides)
    return SAC(OBS, LOW, HIGH, cfg, torch.device("cpu"), torch.Generator().manual_seed(0))


def make_batch(gen: torch.Generator) -> torch.Tensor:
    obs = torch.randn(B, OBS, generator=gen)
    act = torch.rand(B, ACT, generator=gen) * torch.tensor(HIGH - LOW, dtype=torch.float32) + torch.tensor(LOW, dtype=torch.float32)
    rew = torch.randn(B, 1, generator=gen)
    nxt = torch.randn(B, OBS, generator=gen)
    term = (torch.rand(B, 1, generator=gen) < 0.3).float()
    return torch.cat((obs, act, rew, nxt, term), dim=1)


def mlp(x, weights, biases):
    """Autograd reference of BatchedMLP.forward for E x B x in inputs."""
    for i, (w, b) in enumerate(zip(weights, biases)):
        x = torch.baddbmm(b, x, w)
        if i < len(weights) - 1:
            x = torch.relu(x)
    return x


def leaf_views(net, flat):
    """Weight and bias views of a leaf copy of `net`'s flat parameters."""
    return net.views(flat)


def reference_dist(agent, actor_flat, obs):
    w, b = leaf_views(agent.actor, actor_flat)
    out = mlp(obs.unsqueeze(0), w, b)[0]
    mean, pre = out[:, :ACT], out[:, ACT:]
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(pre) + 1)
    return TransformedDistribution(
        Normal(mean, log_std.exp()),
        [TanhTransform(cache_size=1), AffineTransform(agent.action_bias, agent.action_scale, cache_size=1)],
    )


def test_log_prob_matches_torch_distributions_with_action_scale():
    agent = make_agent()
    obs = torch.randn(B, OBS, generator=torch.Generator().manual_seed(1))
    sample = agent.sample(obs)
    dist = reference_dist(agent, agent.actor.params.clone(), obs)
    expected = dist.log_prob(sample.action).sum(dim=1)
    assert torch.allclose(sample.logp, expected, atol=2e-4, rtol=1e-4)
    assert (sample.action >= torch.tensor(LOW, dtype=torch.float32)).all()
    assert (sample.action <= torch.tensor(HIGH, dtype=torch.float32)).all()


def test_deterministic_action_is_squashed_mean():
    agent = make_agent()
    obs = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    a = agent.act(obs, deterministic=True)
    dist = reference_dist(agent, agent.actor.params.clone(), torch.as_tensor(obs).unsqueeze(0))
    mean = dist.base_dist.mean
    expected = agent.action_bias + agent.action_scale * torch.tanh(mean[0])
    np.testing.assert_allclose(a, expected.numpy(), rtol=1e-6, atol=1e-6)
    # deterministic means repeatable; a stochastic action generally differs
    np.testing.assert_array_equal(a, agent.act(obs, deterministic=True))
    assert not np.allclose(agent.act(obs, deterministic=False), a)


@pytest.mark.parametrize("learn_alpha", [True, False])
def test_update_gradients_match_autograd(learn_alpha):
    agent = make_agent(learn_alpha=learn_alpha, gamma=0.9)
    batch = make_batch(torch.Generator().manual_seed(2))
    actor0 = agent.actor.params.clone().requires_grad_(True)
    critic0 = agent.critic.params.clone().requires_grad_(True)
    target0 = agent.critic_target.params.clone()
    log_alpha0 = agent.log_alpha.clone().requires_grad_(True)
    noise = torch.Generator()
    noise.set_state(agent.generator.get_state())

    agent.update(batch)

    o, a = OBS, ACT
    obs, act, rew = batch[:, :o], batch[:, o : o + a], batch[:, o + a]
    nxt, term = batch[:, o + a + 1 : 2 * o + a + 1], batch[:, -1]
    alpha = log_alpha0.detach().exp()
    # the update draws one noise matrix for its single actor pass: next states, then states
    eps_next, eps_pi = torch.randn((2 * B, ACT), generator=noise).split(B)
    with torch.no_grad():
        dist_next = reference_dist(agent, actor0.detach(), nxt)
        eps = eps_next
        u = dist_next.base_dist.loc + dist_next.base_dist.scale * eps
        a_next = agent.action_bias + agent.action_scale * torch.tanh(u)
        logp_next = dist_next.log_prob(a_next).sum(1)
        tw, tb = leaf_views(agent.critic, target0)
        q_next = mlp(torch.cat((nxt, a_next), 1).expand(2, B, o + a), tw, tb)[..., 0]
        y = rew + 0.9 * (1 - term) * (q_next.min(0).values - alpha * logp_next)
    cw, cb = leaf_views(agent.critic, critic0)
    q = mlp(torch.cat((obs, act), 1).expand(2, B, o + a), cw, cb)[..., 0]
    critic_loss = ((q - y) ** 2).mean(1).sum()
    (critic_grad,) = torch.autograd.grad(critic_loss, critic0)
    torch.testing.assert_close(agent.critic.grads, critic_grad, atol=1e-5, rtol=1e-4)

    # actor against the critic as it is after its step (what the update used)
    dist = reference_dist(agent, actor0, obs)
    eps = eps_pi
    u = dist.base_dist.loc + dist.base_dist.scale * eps
    a_pi = agent.action_bias + agent.action_scale * torch.tanh(u)
    logp = dist.log_prob(a_pi).sum(1)
    uw, ub = leaf_views(agent.critic, agent.critic.params.clone())
    q_pi = mlp(torch.cat((obs, a_pi), 1).expand(2, B, o + a), uw, ub)[..., 0]
    actor_loss = (alpha * logp - q_pi.min(0).values).mean()
    (actor_grad,) = torch.autograd.grad(actor_loss, actor0)
    torch.testing.assert_close(agent.actor.grads, actor_grad, atol=1e-5, rtol=1e-4)

    alpha_loss = -(log_alpha0 * (logp.detach() + agent.target_entropy)).mean()
    (alpha_grad,) = torch.autograd.grad(alpha_loss, log_alpha0)
    if learn_alpha:
        torch.testing.assert_close(agent._alpha_grad, alpha_grad, atol=1e-5, rtol=1e-4)
        assert not torch.equal(agent.log_alpha, log_alpha0.detach())
    else:
        assert torch.equal(agent.log_alpha, log_alpha0.detach())

    # Polyak: target <- (1 - tau) target + tau critic
    expected_target = target0 + agent.cfg.tau * (agent.critic.params - target0)
    torch.testing.assert_close(agent.critic_target.params, expected_target)


@pytest.mark.parametrize("terminated, gamma_matters", [(1.0, False), (0.0, True)])
def test_only_termination_stops_bootstrapping(terminated, gamma_matters):
    """A terminated row's target is its reward whatever gamma is; a non-terminated row (which
    includes a time-limit truncation) bootstraps, so gamma changes the critic gradient."""
    batch = make_batch(torch.Generator().manual_seed(3))
    batch[:, -1] = terminated
    discounted, undiscounted = make_agent(gamma=0.99), make_agent(gamma=0.0)
    discounted.update(batch)
    undiscounted.update(batch)
    same = torch.equal(discounted.critic.grads, undiscounted.critic.grads)
    assert same != gamma_matters
