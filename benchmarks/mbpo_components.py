"""MBPO's arithmetic parts on one thread: model training rate and rollout throughput.

    python benchmarks/mbpo_components.py [--threads 1]

1. Model training: one ensemble step (forward, hand-written backward, Adam) at the seed preset's
   shapes (5 members, batch 64, 4 x 200, Pendulum: 4 inputs, 4 outputs) and the paper's
   (7 members, batch 256, 4 x 200, HalfCheetah: 23 inputs, 18 outputs). Its matmul flops are
   counted as the implementation computes them (forward; weight gradients; input gradients past
   the first layer) and the rate is compared with a plain batched matmul of the hidden layers'
   shape (E x B x 200 x 200) and with a 2048^3 matmul, timed in the same process.
2. Rollouts: model transitions per second of `branched_rollout` from 100k start states through
   the elites (5 of 7, 4 x 200) with a 256 x 256 policy, lengths 1 and 5.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import require, threads_check, timeit

from mbpo.config import MBPOConfig, SACConfig
from mbpo.ensemble import GaussianEnsemble
from mbpo.rollout import branched_rollout
from mbpo.sac import SAC
from mbpo.termination import never
from mbpo.usage import OneLineParser


def step_flops(sizes: list[int], ensemble: int, batch: int) -> int:
    fwd = [2 * ensemble * batch * i * o for i, o in zip(sizes[:-1], sizes[1:])]
    return sum(fwd) + sum(fwd) + sum(fwd[1:])


def model_training(label: str, obs: int, act: int, ensemble: int, batch: int, repeat: int) -> float:
    cfg = MBPOConfig(ensemble_size=ensemble, num_elites=min(5, ensemble), model_batch_size=batch)
    gen = torch.Generator().manual_seed(0)
    model = GaussianEnsemble(obs, act, cfg, torch.device("cpu"), gen)
    x = torch.randn(ensemble, batch, obs + act, generator=gen)
    y = torch.randn(ensemble, batch, 1 + obs, generator=gen)
    hidden = cfg.model_hidden[0]
    a, w = torch.randn(ensemble, batch, hidden), torch.randn(ensemble, hidden, hidden)
    flops = step_flops([obs + act, *cfg.model_hidden, 2 * (1 + obs)], ensemble, batch)
    step = timeit(lambda: model.step(x, y), repeat, 50)
    bmm = 2 * ensemble * batch * hidden * hidden / timeit(lambda: torch.bmm(a, w), repeat, 200)
    rate = flops / step
    print(f"model step, {label}: {ensemble} members, batch {batch}, {len(cfg.model_hidden)} x {hidden}")
    print(f"  matmul flops per step     {flops / 1e6:9.1f} MFLOP")
    print(f"  step                      {step * 1e3:9.3f} ms   {rate / 1e9:6.1f} GFLOP/s")
    print(f"  plain bmm {ensemble}x{batch}x{hidden}x{hidden}    {bmm / 1e9:9.1f} GFLOP/s   ratio {rate / bmm:5.0%}")
    return rate


def rollouts(repeat: int) -> None:
    obs, act, starts = 17, 6, 100_000
    gen = torch.Generator().manual_seed(0)
    model = GaussianEnsemble(obs, act, MBPOConfig(), torch.device("cpu"), gen)
    agent = SAC(obs, -np.ones(act, np.float32), np.ones(act, np.float32), SACConfig(), torch.device("cpu"), gen)
    start = torch.randn(starts, obs, generator=gen)
    for length in (1, 5):
        seconds = timeit(
            lambda: branched_rollout(
                start,
                length,
                lambda o: agent.sample(o, "rollout").action,
                lambda o, a: model.sample_next(o, a, gen),
                never,
            ),
            max(repeat // 2, 1),
            1,
        )
        print(
            f"rollouts from {starts} start states, length {length}: {seconds:6.2f} s, "
            f"{starts * length / seconds / 1e3:8.1f} k model transitions/s"
        )


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    require(
        parser,
        threads_check(args.threads),
        ("--repeat", args.repeat >= 1, ">= 1", args.repeat),
    )
    torch.set_num_threads(args.threads)
    n = 2048
    x, y = torch.randn(n, n), torch.randn(n, n)
    big = 2 * n**3 / timeit(lambda: torch.mm(x, y), args.repeat, 3)
    print(f"{torch.get_num_threads()} thread(s); plain matmul 2048^3: {big / 1e9:.1f} GFLOP/s")
    for label, obs, act, ensemble, batch in (("seed preset", 3, 1, 5, 64), ("paper", 17, 6, 7, 256)):
        rate = model_training(label, obs, act, ensemble, batch, args.repeat)
        print(f"  ratio to 2048^3 matmul    {rate / big:9.0%}")
    rollouts(args.repeat)


if __name__ == "__main__":
    main()
