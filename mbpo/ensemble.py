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

Seeds in lockstep: one `GaussianEnsemble` holds the models of S independent runs (one generator
each) as one `BatchedMLP` of S x E members, with log-variance bounds, input normaliser and elites
per seed. A fit stops per seed: a seed whose early stopping has ended is frozen (its parameters,
Adam moments and step counts do not change, and it draws nothing more) while the others train, and
the fit ends when every seed's has. Tensors carry a leading seed axis (`S x N x ...`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mbpo.config import MBPOConfig
from mbpo.nets import Adam, BatchedMLP, padded
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
        self,
        obs_dim: int,
        act_dim: int,
        cfg: MBPOConfig,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator],
    ) -> None:
        """`generator`: the run's, or one per seed (S of them), each drawing its seed's weights."""
        gens = list(generator) if isinstance(generator, list) else [generator]
        self.cfg, self.device, self.seeds = cfg, device, len(gens)
        self.in_dim, self.out_dim = obs_dim + act_dim, 1 + obs_dim
        s, e = self.seeds, cfg.ensemble_size
        self.net = BatchedMLP(s * e, [self.in_dim, *cfg.model_hidden, 2 * self.out_dim], "swish", device, gens)
        # per seed, row 0: max log-variance, row 1: min log-variance (shared by its members)
        bounds = [[INIT_MAX_LOGVAR] * self.out_dim, [INIT_MIN_LOGVAR] * self.out_dim]
        self.bounds = torch.tensor([bounds] * s, device=device)
        self.bounds_grad = torch.zeros_like(self.bounds)
        self._groups = self.net.group_slices(s)
        size = 2 * self.out_dim
        self._bound_groups = [[slice(i * size, (i + 1) * size)] for i in range(s)]
        decay = list(zip(self.net.weight_slices(), cfg.model_weight_decay))
        self.opt = Adam(self.net.params, self.net.grads, cfg.model_lr, weight_decay=decay, groups=self._groups)
        self.bounds_opt = Adam(self.bounds.view(-1), self.bounds_grad.view(-1), cfg.model_lr, groups=self._bound_groups)
        self.input_mean = torch.zeros(s, 1, self.in_dim, device=device)
        self.input_std = torch.ones(s, 1, self.in_dim, device=device)
        self.elites = torch.arange(cfg.num_elites, device=device).repeat(s, 1)
        self.elite_net = self.net.subset(self._elite_members())

    def _elite_members(self) -> torch.Tensor:
        """The elites' member indices in `net` (seed by seed)."""
        offsets = torch.arange(self.seeds, device=self.device).view(-1, 1) * self.cfg.ensemble_size
        return (self.elites + offsets).view(-1)

    def state_dict(self, seed: int | None = None) -> dict:
        """Weights, log-variance bounds, optimisers, input normaliser and elites: of the one
        seed, or with `seed` of that seed alone, in the layout its run alone saves."""
        if seed is None:
            if self.seeds != 1:
                raise ValueError(f"state_dict of {self.seeds} seeds: name the seed")
            seed = 0
        return {
            "params": self.net.group_params(self.net.params, seed, self.seeds),
            "bounds": self.bounds[seed].clone(),
            "opt": self.opt.state_dict(seed, self._groups[seed]),
            "bounds_opt": self.bounds_opt.state_dict(seed, self._bound_groups[seed]),
            "input_mean": self.input_mean[seed, 0].clone(),
            "input_std": self.input_std[seed, 0].clone(),
            "elites": self.elites[seed].clone(),
        }

    def load_state_dict(self, state: dict, seed: int | None = None) -> None:
        """Restore `state_dict`'s result (into seed `seed`'s part with `seed`)."""
        seed = 0 if seed is None else seed
        self.net.set_group_params(self.net.params, seed, self.seeds, state["params"])
        self.bounds[seed].copy_(state["bounds"])
        self.opt.load_state_dict(state["opt"], seed, self._groups[seed])
        self.bounds_opt.load_state_dict(state["bounds_opt"], seed, self._bound_groups[seed])
        self.input_mean[seed, 0].copy_(state["input_mean"])
        self.input_std[seed, 0].copy_(state["input_std"])
        self.elites[seed].copy_(state["elites"])
        self.elite_net = self.net.subset(self._elite_members(), into=self.elite_net)

    # ---- prediction -------------------------------------------------------------------------

    def normalize(self, inputs: torch.Tensor) -> torch.Tensor:
        """Standardise `S x N x in` inputs with each seed's normaliser (`N x in` with one seed)."""
        if inputs.dim() == 2:
            return (inputs - self.input_mean[0]) / self.input_std[0]
        return (inputs - self.input_mean) / self.input_std

    def _per_member(self, x: torch.Tensor, members: int) -> torch.Tensor:
        """Each seed's inputs `S x B x in` for every one of its `members` -> `S*members x B x in`
        (with one seed a view, as a batch shared by the members)."""
        s, b, i = x.shape
        return x.unsqueeze(1).expand(s, members, b, i).reshape(s * members, b, i)

    def predict(
        self, x: torch.Tensor, slot: str, net: BatchedMLP | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Standardised inputs (`S*M x B x in`, M members per seed) -> mean and log-variance
        (`S*M x B x out`), plus the two sigmoids the backward pass needs."""
        out = (net or self.net).forward(x, slot)
        mean, raw = out[..., : self.out_dim], out[..., self.out_dim :]
        s = self.seeds
        raw = raw.view(s, -1, *raw.shape[1:])  # S x M x B x out: each seed's bounds
        max_lv, min_lv = self.bounds[:, 0].view(s, 1, 1, -1), self.bounds[:, 1].view(s, 1, 1, -1)
        a = max_lv - raw
        upper = max_lv - F.softplus(a)
        b = upper - min_lv
        logvar = min_lv + F.softplus(b)
        flat = (-1, *out.shape[1:-1], self.out_dim)
        return mean, logvar.view(flat), torch.sigmoid(a).view(flat), torch.sigmoid(b).view(flat)

    def sample_next(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        generator: torch.Generator | list[torch.Generator],
        draw: list[bool] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One model step for M samples per seed (`S x M x obs_dim`, `S x M x act_dim`; or
        without the seed axis for one seed), each through a random elite of its seed: a seed's
        rows are randomly permuted and split evenly among its elites (so M must be a multiple of
        the number of elites), then every prediction's Gaussian is sampled, all from the seed's
        generator. A seed not in `draw` draws nothing (its rollout is over; its rows are garbage).
        Returns reward `S x M` and next observation `S x M x obs_dim`."""
        if obs.dim() == 2:
            reward, next_obs = self.sample_next(obs.unsqueeze(0), action.unsqueeze(0), generator, draw)
            return reward[0], next_obs[0]
        gens = generator if isinstance(generator, list) else [generator]
        s, m = obs.shape[0], obs.shape[1]
        k = self.cfg.num_elites
        r = m // k  # rows per elite, computed padded to a multiple of LANES (see `mbpo.nets`)
        x = self.normalize(torch.cat((obs, action), dim=2))
        perms = [
            torch.randperm(m, generator=g, device=obs.device) if draw is None or draw[i]
            else torch.arange(m, device=obs.device)
            for i, g in enumerate(gens)
        ]  # fmt: skip
        shuffled = torch.stack([x[i, p] for i, p in enumerate(perms)]).view(s * k, r, self.in_dim)
        if padded(r) != r:
            shuffled = torch.cat((shuffled, shuffled.new_zeros(s * k, padded(r) - r, self.in_dim)), dim=1)
        mean, logvar, _, _ = self.predict(shuffled, "rollout", self.elite_net)
        noise = torch.zeros(mean.shape, device=obs.device)
        per_seed = noise.view(s, k, padded(r), self.out_dim)
        for i, g in enumerate(gens):
            if draw is None or draw[i]:
                if padded(r) == r:  # the seed's block is contiguous: drawn in place
                    torch.randn((k, r, self.out_dim), generator=g, device=obs.device, out=per_seed[i])
                else:
                    per_seed[i, :, :r] = torch.randn((k, r, self.out_dim), generator=g, device=obs.device)
        sampled = torch.addcmul(mean, logvar.mul(0.5).exp_(), noise)[:, :r].reshape(s, m, self.out_dim)
        delta = torch.empty(s, m, self.out_dim, device=obs.device)
        for i, p in enumerate(perms):
            delta[i].index_copy_(0, p, sampled[i])
        reward, next_obs = from_model_output(obs.reshape(s * m, -1), delta.view(s * m, self.out_dim))
        return reward.view(s, m), next_obs.view(s, m, -1)

    # ---- training ---------------------------------------------------------------------------

    def step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        slot: str = "train",
        active: tuple[int, ...] | None = None,
        rows: int | None = None,
    ) -> torch.Tensor:
        """One Adam step on standardised inputs `S*E x B x in` and targets `S*E x B x out`, for
        every seed or the `active` ones; with `rows`, only the first `rows` of the B rows are data
        (a last, partial minibatch padded to the full size: the rest add nothing to the loss or
        its gradients). Returns each seed's NLL summed over its members (`S`, without the bound
        and decay terms)."""
        s = self.seeds
        rows = x.shape[1] if rows is None else rows
        n = rows * self.out_dim
        mean, logvar, sig_a, sig_b = self.predict(x, slot)
        inv_var = torch.exp(-logvar)
        err = mean - y
        weighted = err * err * inv_var
        nll = weighted + logvar
        loss = (nll if rows == x.shape[1] else nll[:, :rows]).reshape(s, -1).sum(dim=1) / n
        grad_mean = err.mul_(inv_var).mul_(2.0 / n)
        grad_logvar = weighted.neg_().add_(1.0).div_(n)
        if rows < x.shape[1]:
            grad_mean[:, rows:] = 0.0
            grad_logvar[:, rows:] = 0.0
        grad_raw = grad_logvar * sig_a * sig_b
        # bounds: d logvar / d max = sig_b (1 - sig_a), d logvar / d min = 1 - sig_b
        per_seed = (s, -1, *grad_logvar.shape[1:])
        self.bounds_grad[:, 0] = (grad_logvar * sig_b * (1.0 - sig_a)).view(per_seed).sum(dim=(1, 2)) + BOUNDS_PENALTY
        self.bounds_grad[:, 1] = (grad_logvar * (1.0 - sig_b)).view(per_seed).sum(dim=(1, 2)) - BOUNDS_PENALTY
        self.net.backward(slot, torch.cat((grad_mean, grad_raw), dim=2))
        self.opt.step(active)
        self.bounds_opt.step(active)
        return loss

    def _subset(self, seeds: tuple[int, ...]) -> GaussianEnsemble:
        """A model of these seeds only, their whole state copied (weights, bounds, optimisers
        with their step counts, normaliser): what their fit continues on. Its own initial draws
        come from fresh generators, not the seeds'."""
        obs_dim = self.out_dim - 1
        gens = [torch.Generator(device=self.device) for _ in seeds]
        sub = GaussianEnsemble(obs_dim, self.in_dim - obs_dim, self.cfg, self.device, gens)
        for j, i in enumerate(seeds):
            sub.load_state_dict(self.state_dict(i), j)
        return sub

    def _write_back(self, work: GaussianEnsemble, seeds: tuple[int, ...]) -> None:
        """Copy the state of `work` (a `_subset` of `seeds`) back into this model."""
        if work is not self:
            for j, i in enumerate(seeds):
                self.load_state_dict(work.state_dict(j), i)

    @torch.no_grad()
    def holdout_mse(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared error of each member's mean on standardised inputs `S x B x in` (targets
        `S x B x out`) -> `S x E` (`B x in` -> `E` with one seed)."""
        if x.dim() == 2:
            return self.holdout_mse(x.unsqueeze(0), y.unsqueeze(0))[0]
        e = self.cfg.ensemble_size
        mean, _, _, _ = self.predict(self._per_member(x, e), "holdout")
        return (mean.view(self.seeds, e, *mean.shape[1:]) - y.unsqueeze(1)).square_().mean(dim=(2, 3))

    def fit(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | list[torch.Generator]
    ) -> TrainingReport | list[TrainingReport]:
        """Fit (warm-started) to all real data: inputs `S x N x in`, targets `S x N x out` (or
        without the seed axis for one seed, which returns one report instead of one per seed).
        Every seed holds the same number N of transitions (seeds in lockstep step together)."""
        if inputs.dim() == 2:
            return self.fit(inputs.unsqueeze(0), targets.unsqueeze(0), generator)[0]
        gens = generator if isinstance(generator, list) else [generator]
        cfg, e, s = self.cfg, self.cfg.ensemble_size, self.seeds
        device = inputs.device
        n_all = inputs.shape[1]
        n_hold = max(1, min(int(n_all * cfg.holdout_ratio), cfg.max_holdout))
        if n_all - n_hold < 1:
            raise ValueError(f"model training needs at least 2 transitions, got {n_all}")
        train_x, train_y, hold_x, hold_y, bootstrap = [], [], [], [], []
        n = n_all - n_hold
        for i, g in enumerate(gens):  # each seed's split, normaliser and bootstrap, from its generator
            perm = torch.randperm(n_all, generator=g, device=device)
            tx, ty = inputs[i][perm[n_hold:]], targets[i][perm[n_hold:]]
            self.input_mean[i, 0] = tx.mean(dim=0)
            std = tx.std(dim=0) if len(tx) > 1 else torch.ones_like(self.input_mean[i, 0])
            self.input_std[i, 0] = torch.where(std < 1e-12, torch.ones_like(std), std)
            train_x.append(tx)
            train_y.append(ty)
            hold_x.append(inputs[i][perm[:n_hold]])
            hold_y.append(targets[i][perm[:n_hold]])
            bootstrap.append(torch.randint(n, (e, n), generator=g, device=device))
        train_x, hold_x = self.normalize(torch.stack(train_x)), self.normalize(torch.stack(hold_x))
        train_y, hold_y, bootstrap = torch.stack(train_y), torch.stack(hold_y), torch.stack(bootstrap)
        size = cfg.model_batch_size

        best = torch.full((s, e), math.inf, device=device)
        best_params = self.net.params.clone()
        best_w, best_b = self.net.views(best_params)
        epochs, since_improved = [0] * s, [0] * s
        train_loss = [math.nan] * s
        # `work` trains the seeds whose early stopping has not ended (`members`): all of them at
        # first (this model itself), then a smaller model of the rest whenever one stops, so a
        # stopped seed costs nothing more and the fit costs the sum of each seed's epochs
        work, members, active = self, tuple(range(s)), tuple(range(s))
        while active:
            if active != members:
                self._write_back(work, members)
                work, members = self._subset(active), active
            wx, wy, hx, hy, boot = (train_x, train_y, hold_x, hold_y, bootstrap)
            if len(members) < s:
                wx, wy, hx, hy, boot = (t[list(members)] for t in (wx, wy, hx, hy, boot))
            k = len(members)
            rows = torch.arange(k, device=device).view(k, 1, 1)
            index = torch.empty(k, e, n, dtype=torch.long, device=device)
            x_tail = torch.zeros(k * e, size, self.in_dim, device=device)
            y_tail = torch.zeros(k * e, size, self.out_dim, device=device)
            full = torch.tensor([i * e + m for i in members for m in range(e)], device=device)
            while active == members:
                for j, i in enumerate(members):
                    order = torch.argsort(torch.rand(e, n, generator=gens[i], device=device), dim=1)
                    torch.gather(boot[j], 1, order, out=index[j])
                losses = []
                for start in range(0, n, size):
                    batch = index[:, :, start : start + size]
                    if batch.shape[2] == size:
                        x = wx[rows, batch].view(k * e, size, self.in_dim)
                        y = wy[rows, batch].view(k * e, size, self.out_dim)
                        losses.append(work.step(x, y, "train"))
                    else:  # the last, partial minibatch, padded (see `step`) to the others' shape
                        t = batch.shape[2]
                        x_tail.zero_()
                        y_tail.zero_()
                        x_tail[:, :t] = wx[rows, batch].view(k * e, t, self.in_dim)
                        y_tail[:, :t] = wy[rows, batch].view(k * e, t, self.out_dim)
                        losses.append(work.step(x_tail, y_tail, "train", rows=t))
                holdout = work.holdout_mse(hx, hy)
                ours = best[list(members)]
                improved = torch.isinf(ours) | ((ours - holdout) / ours > cfg.model_min_improvement)
                any_improved = improved.any(dim=1).tolist()
                if any(any_improved):
                    best[list(members)] = torch.where(improved, holdout, ours)
                    keep = improved.view(-1)
                    for src, dst in zip(work.net.weights + work.net.biases, best_w + best_b):
                        dst.index_copy_(0, full[keep], src[keep])
                still = []
                for j, i in enumerate(members):
                    epochs[i] += 1
                    since_improved[i] = 0 if any_improved[j] else since_improved[i] + 1
                    if since_improved[i] > cfg.model_patience or (
                        cfg.model_max_epochs and epochs[i] >= cfg.model_max_epochs
                    ):
                        train_loss[i] = float(torch.stack([loss[j] for loss in losses]).mean())
                    else:
                        still.append(i)
                active = tuple(still)
        self._write_back(work, members)
        self.net.params.copy_(best_params)
        holdout = self.holdout_mse(hold_x, hold_y)
        self.elites = torch.argsort(holdout, dim=1)[:, : cfg.num_elites]
        self.elite_net = self.net.subset(self._elite_members(), into=self.elite_net)
        return [
            TrainingReport(
                epochs=epochs[i],
                train_size=n,
                holdout_size=n_hold,
                holdout_mse=holdout[i].tolist(),
                elites=sorted(self.elites[i].tolist()),
                train_loss=train_loss[i],
            )
            for i in range(s)
        ]
