"""How close one SAC update at the paper's sizes comes to this core's matmul rate.

    python benchmarks/sac_update_flops.py [--obs-dim 17 --act-dim 6 --batch 256 --hidden 256,256]

Counts the multiply-adds of every matmul the update performs (2 flops each; elementwise work is
not counted, so the rate is a lower bound on what the core does), times the update, and prints
the achieved rate against plain matmuls timed in the same process on the same thread:
a large square one (2048^3) and one with the update's own layer shapes. It also times a
conventional autograd + torch.nn + torch.optim SAC update (the shape of Stable-Baselines3's and
CleanRL's) side by side, as the naive counterpart.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import require, threads_check, timeit
from torch import nn

from mbpo.config import SACConfig
from mbpo.sac import SAC
from mbpo.usage import OneLineParser


def mlp_flops(sizes: list[int], batch: int, ensemble: int) -> list[int]:
    """Forward flops per layer of an ensemble MLP."""
    return [2 * ensemble * batch * i * o for i, o in zip(sizes[:-1], sizes[1:])]


def update_flops(obs: int, act: int, hidden: list[int], batch: int) -> int:
    """Matmul flops of one `SAC.update`, counted as the implementation computes them."""
    actor = mlp_flops([obs, *hidden, 2 * act], batch, 1)
    critic = mlp_flops([obs + act, *hidden, 1], batch, 2)
    fwd_a, fwd_c = sum(actor), sum(critic)
    target = fwd_a + fwd_c
    # backward: weight grads for every layer, input grads for all but the first layer
    critic_step = fwd_c + fwd_c + (fwd_c - critic[0])
    # actor step: actor and critic forward; critic input grads only (first layer included);
    # actor weight grads and input grads past the first layer
    actor_step = fwd_a + fwd_c + fwd_c + fwd_a + (fwd_a - actor[0])
    return target + critic_step + actor_step


class NaiveActor(nn.Module):
    def __init__(self, obs: int, act: int, hidden: list[int]) -> None:
        super().__init__()
        layers, last = [], obs
        for h in hidden:
            layers += [nn.Linear(last, h), nn.ReLU()]
            last = h
        self.body = nn.Sequential(*layers)
        self.mean, self.log_std = nn.Linear(last, act), nn.Linear(last, act)

    def forward(self, x):
        h = self.body(x)
        log_std = -5 + 3.5 * (torch.tanh(self.log_std(h)) + 1)
        normal = torch.distributions.Normal(self.mean(h), log_std.exp())
        u = normal.rsample()
        a = torch.tanh(u)
        logp = (normal.log_prob(u) - torch.log(1 - a.pow(2) + 1e-6)).sum(1)
        return a, logp


def naive_q(obs: int, act: int, hidden: list[int]) -> nn.Module:
    layers, last = [], obs + act
    for h in hidden:
        layers += [nn.Linear(last, h), nn.ReLU()]
        last = h
    return nn.Sequential(*layers, nn.Linear(last, 1))


def naive_update_fn(obs: int, act: int, hidden: list[int], batch: int):
    """A conventional SAC update: nn.Modules, autograd, torch.optim.Adam, per-network steps."""
    torch.manual_seed(0)
    actor = NaiveActor(obs, act, hidden)
    q1, q2 = naive_q(obs, act, hidden), naive_q(obs, act, hidden)
    t1, t2 = naive_q(obs, act, hidden), naive_q(obs, act, hidden)
    t1.load_state_dict(q1.state_dict())
    t2.load_state_dict(q2.state_dict())
    log_alpha = torch.zeros(1, requires_grad=True)
    q_opt = torch.optim.Adam([*q1.parameters(), *q2.parameters()], lr=3e-4)
    pi_opt = torch.optim.Adam(actor.parameters(), lr=3e-4)
    a_opt = torch.optim.Adam([log_alpha], lr=3e-4)
    s, a, r = torch.randn(batch, obs), torch.rand(batch, act) * 2 - 1, torch.randn(batch)
    s2, d = torch.randn(batch, obs), torch.zeros(batch)

    def update():
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = actor(s2)
            x2 = torch.cat((s2, a2), 1)
            y = r + 0.99 * (1 - d) * (torch.min(t1(x2), t2(x2))[:, 0] - alpha * logp2)
        x = torch.cat((s, a), 1)
        q_loss = ((q1(x)[:, 0] - y) ** 2).mean() + ((q2(x)[:, 0] - y) ** 2).mean()
        q_opt.zero_grad()
        q_loss.backward()
        q_opt.step()
        pi, logp = actor(s)
        xp = torch.cat((s, pi), 1)
        pi_loss = (alpha * logp - torch.min(q1(xp), q2(xp))[:, 0]).mean()
        pi_opt.zero_grad()
        pi_loss.backward()
        pi_opt.step()
        a_loss = -(log_alpha * (logp.detach() - act)).mean()
        a_opt.zero_grad()
        a_loss.backward()
        a_opt.step()
        with torch.no_grad():
            for net, tgt in ((q1, t1), (q2, t2)):
                for p, tp in zip(net.parameters(), tgt.parameters()):
                    tp.lerp_(p, 0.005)

    return update


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obs-dim", type=int, default=17, help="HalfCheetah's observation size")
    parser.add_argument("--act-dim", type=int, default=6, help="HalfCheetah's action size")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sizes = args.hidden.split(",")
    require(
        parser,
        ("--obs-dim", args.obs_dim >= 1, ">= 1", args.obs_dim),
        ("--act-dim", args.act_dim >= 1, ">= 1", args.act_dim),
        ("--batch", args.batch >= 1, ">= 1", args.batch),
        (
            "--hidden",
            all(h.strip().isdecimal() and int(h) >= 1 for h in sizes),
            "comma-separated sizes >= 1",
            args.hidden,
        ),
        ("--repeat", args.repeat >= 1, ">= 1", args.repeat),
        threads_check(args.threads),
    )
    torch.set_num_threads(args.threads)
    hidden = [int(h) for h in sizes]
    obs, act, batch = args.obs_dim, args.act_dim, args.batch

    n = 2048
    x, y = torch.randn(n, n), torch.randn(n, n)
    big = 2 * n**3 / timeit(lambda: torch.mm(x, y), args.repeat, 3)
    # the update's own dominant shape: a batched (2 x B x h) @ (2 x h x h) as in the twin critic
    xs, ws = torch.randn(2, batch, hidden[-1]), torch.randn(2, hidden[-1], hidden[-1])
    same = 2 * 2 * batch * hidden[-1] ** 2 / timeit(lambda: torch.bmm(xs, ws), args.repeat, 200)

    cfg = SACConfig(actor_hidden=tuple(hidden), critic_hidden=tuple(hidden), batch_size=batch)
    gen = torch.Generator().manual_seed(0)
    agent = SAC(obs, -np.ones(act, np.float32), np.ones(act, np.float32), cfg, torch.device("cpu"), gen)
    rows = agent.layout.random_rows(batch, gen)
    naive = naive_update_fn(obs, act, hidden, batch)
    ours_s, naive_s = [], []
    for _ in range(3):  # interleaved, so both see the same machine state
        ours_s.append(timeit(lambda: agent.update(rows), args.repeat, 20))
        naive_s.append(timeit(naive, args.repeat, 20))
    ours, slow = float(np.median(ours_s)), float(np.median(naive_s))
    flops = update_flops(obs, act, hidden, batch)
    rate = flops / ours

    print(f"SAC update, obs {obs}, act {act}, batch {batch}, hidden {hidden}, {torch.get_num_threads()} thread(s)")
    print(f"  matmul flops per update            {flops / 1e6:10.1f} MFLOP")
    print(f"  plain matmul 2048^3                {big / 1e9:10.1f} GFLOP/s")
    print(f"  plain bmm 2x{batch}x{hidden[-1]}x{hidden[-1]}           {same / 1e9:10.1f} GFLOP/s")
    print(f"  this SAC update                    {ours * 1e3:10.2f} ms   {rate / 1e9:6.1f} GFLOP/s")
    print(f"  autograd nn.Module SAC update      {slow * 1e3:10.2f} ms   {flops / slow / 1e9:6.1f} GFLOP/s")
    print(f"  ratio to plain matmul 2048^3       {rate / big:10.0%}")
    print(f"  ratio to same-shape bmm            {rate / same:10.0%}")
    print(f"  speedup over the autograd update   {slow / ours:10.2f}x")


if __name__ == "__main__":
    main()
