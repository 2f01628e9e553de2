"""SAC's hand-written math against autograd and torch.distributions on the same noise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mbpo.config import SACConfig
from mbpo.sac import SAC
import reference

torch.set_default_dtype(torch.float32)

OBS, ACT, B = 3, 2, 32
LOW, HIGH = np.array([-2.0, 0.0]), np.array([2.0, 1.0])  # asymmetric box: scale and bias both matter


def make_agent(**overrides) -> SAC:
    cfg = dataclasses.replace(SACConfig(actor_hidden=(16, 8), critic_hidden=(16, 8), init_alpha=0.3), **overrides)
    return SAC(OBS, LOW, HIGH, cfg, torch.device("cpu"), torch.Generator().manual_seed(0))


def make_batch(gen: torch.Generator) -> torch.Tensor:
    obs = torch.randn(B, OBS, generator=gen)
    act = torch.rand(B, ACT, generator=gen) * torch.tensor(HIGH - LOW, dtype=torch.float32) + torch.tensor(
        LOW, dtype=torch.float32
    )
    rew = torch.randn(B, 1, generator=gen)
    nxt = torch.randn(B, OBS, generator=gen)
    term = (torch.rand(B, 1, generator=gen) < 0.3).float()
    return torch.cat((obs, act, rew, nxt, term), dim=1)


def test_log_prob_is_of_the_squashed_action_whatever_the_action_scale():
    agent = make_agent()
    obs = torch.randn(B, OBS, generator=torch.Generator().manual_seed(1))
    sample = agent.sample(obs)
    dist = reference.policy(agent, agent.actor.params.clone(), obs)
    squashed = (sample.action - agent.action_bias) / agent.action_scale
    expected = dist.log_prob(squashed).sum(dim=1)
    assert torch.allclose(sample.logp, expected, atol=2e-4, rtol=1e-4)
    assert (sample.action >= torch.tensor(LOW, dtype=torch.float32)).all()
    assert (sample.action <= torch.tensor(HIGH, dtype=torch.float32)).all()
    # the same policy on a [-1, 1] action box: the same log p (the target entropy means one
    # thing for every env, as in the original MBPO), actions differing by the scale only
    unit = SAC(OBS, -np.ones(ACT), np.ones(ACT), agent.cfg, torch.device("cpu"), torch.Generator().manual_seed(0))
    fresh = make_agent()  # the same initial weights and noise as `unit`, on the asymmetric box
    unit_sample, fresh_sample = unit.sample(obs), fresh.sample(obs)
    assert torch.equal(unit_sample.logp, fresh_sample.logp)
    assert torch.equal(fresh.action_bias + fresh.action_scale * unit_sample.action, fresh_sample.action)


def test_deterministic_action_is_squashed_mean():
    agent = make_agent()
    obs = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    a = agent.act(obs, deterministic=True)
    dist = reference.policy(agent, agent.actor.params.clone(), torch.as_tensor(obs).unsqueeze(0))
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
    ref = reference.SACReference(agent)
    target0, log_alpha0 = ref.target.clone(), agent.log_alpha.clone()
    noise = torch.Generator()
    noise.set_state(agent.generators[0].get_state())

    agent.update(batch)
    # the update draws one noise matrix for its single actor pass: next states, then states
    ref.update(batch, torch.randn((2 * B, ACT), generator=noise))

    torch.testing.assert_close(agent.critic.grads, ref.grads["critic"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(agent.actor.grads, ref.grads["actor"], atol=1e-5, rtol=1e-4)
    if learn_alpha:
        torch.testing.assert_close(agent._alpha_grad, ref.grads["log_alpha"], atol=1e-5, rtol=1e-4)
        assert not torch.equal(agent.log_alpha, log_alpha0)
    else:
        assert torch.equal(agent.log_alpha, log_alpha0)
    # Polyak: target <- (1 - tau) target + tau critic
    expected_target = target0 + agent.cfg.tau * (agent.critic.params - target0)
    torch.testing.assert_close(agent.critic_target.params, expected_target)


def test_consecutive_updates_follow_the_autograd_reference():
    """Ten updates on fresh batches: optimiser moments, the target critic, the temperature and
    the reused buffers carry from one update to the next exactly as autograd's would."""
    agent = make_agent(gamma=0.95)
    ref = reference.SACReference(agent)
    noise = torch.Generator()
    noise.set_state(agent.generators[0].get_state())
    batches = torch.Generator().manual_seed(7)
    for step in range(10):
        batch = make_batch(batches)
        agent.update(batch)
        ref.update(batch, torch.randn((2 * B, ACT), generator=noise))
        for ours, theirs in (
            (agent.actor.params, ref.actor),
            (agent.critic.params, ref.critic),
            (agent.critic_target.params, ref.target),
            (agent.log_alpha, ref.log_alpha),
        ):
            torch.testing.assert_close(ours, theirs.detach(), atol=2e-5, rtol=1e-4, msg=lambda m: f"update {step}: {m}")


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
