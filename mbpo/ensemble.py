"""Probabilistic dynamics ensemble (Chua et al. 2018, as used by MBPO).

E Gaussian networks, computed as one batched MLP, each predicting the mean and log-variance of
`(reward, next_obs - obs)` from standardised `(obs, action)`. The log-variance is soft-bounded
by learned bounds shared by the members:
    logvar = max - softplus(max - raw);  logvar = min + softplus(logvar - min)
and each member minimises the Gaussian negative log-likelihood (up to constants)
    mean_{b,d} [ (mu - y)^2 exp(-logvar) + logvar ]
plus 0.01 (sum max - sum min), which keeps the bounds tight, and L2 weight decay per layer
(applied inside Adam's kernel, so `net.grads` holds the gradient of the loss without it).
Gradients are hand-written (see `mbpo.nets`) and checked against autograd in
`tests/test_ensemble.py`.

Training: a holdout split (`holdout_ratio`, at most `max_holdout`); a bootstrap resample of the
rest per member, drawn once per training and reshuffled every epoch; early stopping once no
member has improved its holdout MSE by `model_min_improvement` (relative) for more than
`model_patience` epochs (as MBPO's original code counts); each member's best weights restored; elites are the members with the lowest holdout MSE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mbpo.config import MBPOConfig
from mbpo.nets import Adam, BatchedMLP
from mbpo.transition import from_model_output

BOUNDS_PENALTY = 0.01
INIT_MAX_LOGVAR, INIT_MIN_LOGVAR = 0.5, -10.0


@dataclass
class TrainingReport:
    """What one model training did (one row of `model.csv`)."""

    epochs: int
    train_size: int
    holdout_size: int
    holdout_mse: list[float]  # per member, after restoring the best weights
    elites: list[int]
    train_loss: float  # mean NLL of the last epoch's minibatches, summed over members


class GaussianEnsemble:
    def __init__(
        self, obs_dim: int, act_dim: int, cfg: MBPOConfig, device: torch.device, generator: torch.Generator
    ) -> None:
        self.cfg, self.device = cfg, device
        self.in_dim, self.out_dim = obs_dim + act_dim, 1 + obs_dim
        self.net = BatchedMLP(
            cfg.ensemble_size, [self.in_dim, *cfg.model_hidden, 2 * self.out_dim], "swish", device, generator
        )
        # row 0: max log-variance, row 1: min log-variance (shared by the members)
        self.bounds = torch.tensor([[INIT_MAX_LOGVAR] * self.out_dim, [INIT_MIN_LOGVAR] * self.out_dim], device=device)
        self.bounds_grad = torch.zeros_like(self.bounds)
        decay = list(zip(self.net.weight_slices(), cfg.model_weight_decay))
        self.opt = Adam(self.net.params, self.net.grads, cfg.model_lr, weight_decay=decay)
        self.bounds_opt = Adam(self.bounds, self.bounds_grad, cfg.model_lr)
        self.input_mean = torch.zeros(self.in_dim, device=device)
        self.input_std = torch.ones(self.in_dim, device=device)
        self.elites = torch.arange(cfg.num_elites, device=device)
        self.elite_net = self.net.subset(self.elites)

    def state_dict(self) -> dict:
        """Weights, log-variance bounds, optimisers, input normaliser and elites."""
        return {
            "params": self.net.params.clone(),
            "bounds": self.bounds.clone(),
            "opt": self.opt.state_dict(),
            "bounds_opt": self.bounds_opt.state_dict(),
            "input_mean": self.input_mean.clone(),
            "input_std": self.input_std.clone(),
            "elites": self.elites.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.net.params.copy_(state["params"])
        self.bounds.copy_(state["bounds"])
        self.opt.load_state_dict(state["opt"])
        self.bounds_opt.load_state_dict(state["bounds_opt"])
        self.input_mean = state["input_mean"].to(self.device)
        self.input_std = state["input_std"].to(self.device)
        self.elites = state["elites"].to(self.device)
        self.elite_net = self.net.subset(self.elites, into=self.elite_net)

    # ---- prediction -------------------------------------------------------------------------

    def normalize(self, inputs: torch.Tensor) -> torch.Tensor:
        return (inputs - self.input_mean) / self.input_std

    def predict(
        self, x: torch.Tensor, slot: str, net: BatchedMLP | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Standardised inputs (`E x B x in` or `B x in`) -> mean and log-variance (`E x B x out`),
        plus the two sigmoids the backward pass needs."""
        out = (net or self.net).forward(x, slot)
        mean, raw = out[..., : self.out_dim], out[..., self.out_dim :]
        max_lv, min_lv = self.bounds[0], self.bounds[1]
        a = max_lv - raw
        upper = max_lv - F.softplus(a)
        b = upper - min_lv
        logvar = min_lv + F.softplus(b)
        return mean, logvar, torch.sigmoid(a), torch.sigmoid(b)

    def sample_next(
        self, obs: torch.Tensor, action: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One model step for M samples (`M x obs_dim`, `M x act_dim`), each through a random
        elite: the rows are randomly permuted and split evenly among the elites (so M must be a
        multiple of the number of elites), then every prediction's Gaussian is sampled.
        Returns reward `M` and next observation `M x obs_dim`."""
        m, k = obs.shape[0], self.elite_net.ensemble
        x = self.normalize(torch.cat((obs, action), dim=1))
        perm = torch.randperm(m, generator=generator, device=obs.device)
        mean, logvar, _, _ = self.predict(x[perm].view(k, m // k, self.in_dim), "rollout", self.elite_net)
        noise = torch.randn(mean.shape, generator=generator, device=obs.device)
        delta = torch.empty(m, self.out_dim, device=obs.device)
        delta.index_copy_(0, perm, torch.addcmul(mean, logvar.mul(0.5).exp_(), noise).view(m, self.out_dim))
        return from_model_output(obs, delta)

    # ---- training ---------------------------------------------------------------------------

    def step(self, x: torch.Tensor, y: torch.Tensor, slot: str = "train") -> torch.Tensor:
        """One Adam step on standardised inputs `E x B x in` and targets `E x B x out`.
        Returns the NLL summed over members (0-d tensor, without the bound and decay terms)."""
        n = x.shape[1] * self.out_dim
        mean, logvar, sig_a, sig_b = self.predict(x, slot)
        inv_var = torch.exp(-logvar)
        err = mean - y
        weighted = err * err * inv_var
        loss = (weighted + logvar).sum() / n
        grad_mean = err.mul_(inv_var).mul_(2.0 / n)
        grad_logvar = weighted.neg_().add_(1.0).div_(n)
        grad_raw = grad_logvar * sig_a * sig_b
        # bounds: d logvar / d max = sig_b (1 - sig_a), d logvar / d min = 1 - sig_b
        self.bounds_grad[0] = (grad_logvar * sig_b * (1.0 - sig_a)).sum(dim=(0, 1)) + BOUNDS_PENALTY
        self.bounds_grad[1] = (grad_logvar * (1.0 - sig_b)).sum(dim=(0, 1)) - BOUNDS_PENALTY
        self.net.backward(slot, torch.cat((grad_mean, grad_raw), dim=2))
        self.opt.step()
        self.bounds_opt.step()
        return loss

    @torch.no_grad()
    def holdout_mse(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error of each member's mean on standardised inputs `B x in` -> `E`."""
        mean, _, _, _ = self.predict(x, "holdout")
        return (mean - y).square_().mean(dim=(1, 2))

    def fit(self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator) -> TrainingReport:
        """Fit (warm-started) to all real data: inputs `N x in`, targets `N x out`."""
        cfg, e = self.cfg, self.cfg.ensemble_size
        n_all = inputs.shape[0]
        n_hold = max(1, min(int(n_all * cfg.holdout_ratio), cfg.max_holdout))
        if n_all - n_hold < 1:
            raise ValueError(f"model training needs at least 2 transitions, got {n_all}")
        perm = torch.randperm(n_all, generator=generator, device=inputs.device)
        train_x, train_y = inputs[perm[n_hold:]], targets[perm[n_hold:]]
        self.input_mean = train_x.mean(dim=0)
        std = train_x.std(dim=0) if len(train_x) > 1 else torch.ones_like(self.input_mean)
        self.input_std = torch.where(std < 1e-12, torch.ones_like(std), std)
        train_x = self.normalize(train_x)
        hold_x, hold_y = self.normalize(inputs[perm[:n_hold]]), targets[perm[:n_hold]]
        n = train_x.shape[0]
        bootstrap = torch.randint(n, (e, n), generator=generator, device=inputs.device)

        best = torch.full((e,), math.inf, device=inputs.device)
        best_params = self.net.params.clone()
        best_w, best_b = self.net.views(best_params)
        epochs, since_improved = 0, 0
        while True:
            order = torch.argsort(torch.rand(e, n, generator=generator, device=inputs.device), dim=1)
            index = torch.gather(bootstrap, 1, order)
            losses = []
            for start in range(0, n, cfg.model_batch_size):
                batch = index[:, start : start + cfg.model_batch_size]
                slot = "train" if batch.shape[1] == cfg.model_batch_size else "train_tail"
                losses.append(self.step(train_x[batch], train_y[batch], slot))
            epochs += 1
            holdout = self.holdout_mse(hold_x, hold_y)
            improved = torch.isinf(best) | ((best - holdout) / best > cfg.model_min_improvement)
            if bool(improved.any()):
                since_improved = 0
                best = torch.where(improved, holdout, best)
                keep = improved.view(e, 1, 1)
                for src, dst in zip(self.net.weights + self.net.biases, best_w + best_b):
                    dst.copy_(torch.where(keep, src, dst))
            else:
                since_improved += 1
            if since_improved > cfg.model_patience or (cfg.model_max_epochs and epochs >= cfg.model_max_epochs):
                break
        self.net.params.copy_(best_params)
        holdout = self.holdout_mse(hold_x, hold_y)
        self.elites = torch.argsort(holdout)[: cfg.num_elites]
        self.elite_net = self.net.subset(self.elites, into=self.elite_net)
        return TrainingReport(
            epochs=epochs,
            train_size=n,
            holdout_size=n_hold,
            holdout_mse=holdout.tolist(),
            elites=sorted(self.elites.tolist()),
            train_loss=float(torch.stack(losses).mean()),
        )
