"""The probabilistic ensemble: gradients, shapes, learning a known system, elites, early stopping."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mbpo.config import MBPOConfig
from mbpo.ensemble import GaussianEnsemble

import reference

OBS, ACT = 2, 1


def make(**overrides) -> GaussianEnsemble:
    cfg = dataclasses.replace(
        MBPOConfig(ensemble_size=4, num_elites=2, model_hidden=(16, 16), model_weight_decay=(1e-3, 2e-3, 3e-3)),
        **overrides,
    )
    return GaussianEnsemble(OBS, ACT, cfg, torch.device("cpu"), torch.Generator().manual_seed(0))


def linear_system(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """next = A obs + B act (so delta = (A - I) obs + B act), reward = c . obs, small noise."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, OBS + ACT, generator=gen)
    a = torch.tensor([[0.9, 0.2], [-0.1, 0.8]])
    b = torch.tensor([[0.5], [1.0]])
    c = torch.tensor([1.0, -2.0])
    obs, act = x[:, :OBS], x[:, OBS:]
    delta = obs @ (a - torch.eye(OBS)).T + act @ b.T
    reward = obs @ c
    y = torch.cat((reward.unsqueeze(1), delta), dim=1) + 0.01 * torch.randn(n, 1 + OBS, generator=gen)
    return x, y


def test_shapes():
    model = make()
    mean, logvar, _, _ = model.predict(torch.randn(5, OBS + ACT), "s")
    assert mean.shape == logvar.shape == (4, 5, 1 + OBS)
    assert torch.all(logvar <= 0.5 + 1e-6) and torch.all(logvar >= -10 - 1e-6)
    reward, next_obs = model.sample_next(torch.randn(6, OBS), torch.randn(6, ACT), torch.Generator().manual_seed(1))
    assert reward.shape == (6,) and next_obs.shape == (6, OBS)


def test_step_gradients_match_autograd():
    model = make()
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(4, 8, OBS + ACT, generator=gen), torch.randn(4, 8, 1 + OBS, generator=gen)
    flat = model.net.params.clone().requires_grad_(True)
    bounds = model.bounds[0].clone().requires_grad_(True)
    model.step(x, y)

    loss = reference.ensemble_loss(model, flat, bounds, x, y)
    g_flat, g_bounds = torch.autograd.grad(loss, (flat, bounds))
    torch.testing.assert_close(model.net.grads, g_flat, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(model.bounds_grad[0], g_bounds, atol=1e-5, rtol=1e-4)


def test_weight_decay_is_per_layer_l2_on_weights_only():
    """The optimiser step equals torch.optim.Adam on the loss plus sum_l wd_l / 2 ||W_l||^2."""
    model = make()
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randn(4, 8, OBS + ACT, generator=gen), torch.randn(4, 8, 1 + OBS, generator=gen)
    flat = model.net.params.clone().requires_grad_(True)
    ref = torch.optim.Adam([flat], lr=model.cfg.model_lr)
    model.step(x, y)
    weights, _ = model.net.views(flat)
    decay = sum(wd / 2 * (w**2).sum() for wd, w in zip(model.cfg.model_weight_decay, weights))
    (g_decay,) = torch.autograd.grad(decay, flat)
    flat.grad = model.net.grads + g_decay
    ref.step()
    torch.testing.assert_close(model.net.params, flat.detach(), atol=1e-6, rtol=1e-6)


def test_consecutive_steps_follow_the_autograd_reference():
    """Eight Adam steps on fresh batches, weight decay and log-variance bounds included."""
    model = make()
    ref = reference.EnsembleReference(model)
    gen = torch.Generator().manual_seed(6)
    for step in range(8):
        x, y = torch.randn(4, 8, OBS + ACT, generator=gen), torch.randn(4, 8, 1 + OBS, generator=gen)
        model.step(x, y)
        ref.step(x, y)
        torch.testing.assert_close(model.net.params, ref.flat, atol=1e-5, rtol=1e-4, msg=lambda m: f"step {step}: {m}")
        torch.testing.assert_close(model.bounds[0], ref.bounds.detach(), atol=1e-5, rtol=1e-4)


def test_learns_a_linear_system_and_its_loss_falls():
    model = make(model_max_epochs=1, model_batch_size=64)
    x, y = linear_system(2000, seed=0)
    gen = torch.Generator().manual_seed(0)
    first = model.fit(x, y, gen)
    model.cfg = dataclasses.replace(model.cfg, model_max_epochs=200)
    later = model.fit(x, y, gen)
    assert later.train_loss < first.train_loss - 2.0  # NLL per member, summed: falls by a lot
    test_x, test_y = linear_system(500, seed=1)
    mean, logvar, _, _ = model.predict(model.normalize(test_x), "test")
    err = (mean - test_y).abs().mean(dim=1)  # per member
    assert torch.all(err.mean(dim=1) < 0.05), err.mean(dim=1)  # targets have unit scale
    assert torch.all(logvar.exp().sqrt().mean() < 0.1)  # and it knows the noise is small
    assert max(later.holdout_mse) < 0.005


def scripted_holdout(model: GaussianEnsemble, losses: list[list[float]], snapshots: list[torch.Tensor]):
    """Make holdout_mse return scripted per-member losses (of the one seed: `1 x E`) and
    remember the params it saw."""
    calls = iter(losses)

    def holdout_mse(x, y):
        snapshots.append(model.net.params.clone())
        return torch.tensor([next(calls)])

    model.holdout_mse = holdout_mse


def test_early_stopping_restores_each_members_best_weights_and_picks_elites():
    model = make(ensemble_size=3, num_elites=2, model_patience=2, model_batch_size=32)
    x, y = linear_system(200, seed=2)
    epochs = [
        [5.0, 5.0, 5.0],  # epoch 1: everyone improves (from infinity)
        [4.0, 6.0, 4.99],  # epoch 2: member 0 improves; member 2's 0.2% is below the 1% bar
        [4.5, 4.0, 5.0],  # epoch 3: member 1 improves
        [4.1, 4.5, 5.0],  # epoch 4: nobody
        [4.2, 4.5, 5.0],  # epoch 5: nobody
        [4.2, 4.5, 5.0],  # epoch 6: nobody -> more than patience 2 epochs without improvement
    ]
    final = [0.3, 0.1, 0.2]  # after restoring: elites are members 1 and 2
    snapshots: list[torch.Tensor] = []
    scripted_holdout(model, epochs + [final], snapshots)
    report = model.fit(x, y, torch.Generator().manual_seed(0))
    assert report.epochs == 6
    best_epoch = {0: 2, 1: 3, 2: 1}
    for member, epoch in best_epoch.items():
        for now, then in zip(*(model.net.views(p) for p in (model.net.params, snapshots[epoch - 1]))):
            for a, b in zip(now, then):
                assert torch.equal(a[member], b[member]), (member, epoch)
    assert report.elites == [1, 2]
    x_norm = model.normalize(x[:5])
    torch.testing.assert_close(model.elite_net.forward(x_norm, "e"), model.net.forward(x_norm, "a")[model.elites[0]])


def test_model_max_epochs_caps_training():
    model = make(model_max_epochs=3, model_patience=100)
    x, y = linear_system(100, seed=3)
    assert model.fit(x, y, torch.Generator().manual_seed(0)).epochs == 3


def test_training_needs_data():
    with pytest.raises(ValueError, match="at least 2 transitions"):
        make().fit(torch.zeros(1, OBS + ACT), torch.zeros(1, 1 + OBS), torch.Generator())


def test_each_member_sees_its_own_bootstrap_sample():
    """Members trained from identical weights on their own resamples end up different."""
    model = make(model_max_epochs=2)
    for w, b in zip(model.net.weights, model.net.biases):
        w.copy_(w[:1].expand_as(w))
        b.copy_(b[:1].expand_as(b))
    x, y = linear_system(300, seed=4)
    model.fit(x, y, torch.Generator().manual_seed(0))
    w = model.net.weights[0]
    assert not torch.allclose(w[0], w[1])
