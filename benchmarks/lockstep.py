"""What training S seeds in lockstep costs per seed, phase by phase, against one seed alone.

    python benchmarks/lockstep.py [--env Hopper-v5] [--preset paper] [--seeds 1,2,5] [--device cpu|cuda]

For one configuration (`--preset` on `--env`, as `python -m mbpo train` resolves it), times on one
device and thread count each phase of an MBPO env step with S seeds as one batched computation:
`updates_per_step` SAC updates (one batch per seed), one epoch of model training at the real-data
size of `--data` env steps, one rollout phase (`rollout_batch_size` branches per seed at length 1),
and one action. It prints, for each S, milliseconds per seed (the phase's time divided by S) and
the speed-up over S = 1 measured in the same process, then the ms per seed-env-step they add up to
at that data size (model training counted as `--epochs` epochs every `model_train_freq` steps).
Lockstep gains where a step is bound by per-operation overhead (small networks, a GPU's kernel
launches), little where the arithmetic dominates (the paper's sizes on a CPU core).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import check_device, require, sync, threads_check, timed  # noqa: E402

from mbpo.config import build_config  # noqa: E402
from mbpo.ensemble import GaussianEnsemble  # noqa: E402
from mbpo.envs import make_env  # noqa: E402
from mbpo.record import cpu_info  # noqa: E402
from mbpo.rollout import branched_rollouts  # noqa: E402
from mbpo.sac import SAC  # noqa: E402
from mbpo.termination import termination_fn  # noqa: E402
from mbpo.transition import Layout  # noqa: E402
from mbpo.usage import OneLineParser  # noqa: E402


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--seeds", default="1,2,5", help="the group sizes S to time (default: 1,2,5)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--data", type=int, default=25_000, help="real transitions the model trains on (default: 25000)"
    )
    parser.add_argument("--epochs", type=float, default=20.0, help="model epochs per fit (default: 20)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    require(
        parser,
        ("--seeds", all(s >= 1 for s in args.sizes), "group sizes >= 1", args.seeds),
        ("--data", args.data >= 10, "at least 10 transitions", args.data),
        ("--epochs", args.epochs > 0, "> 0", args.epochs),
        ("--repeat", args.repeat >= 1, ">= 1", args.repeat),
        threads_check(args.threads),
    )
    check_device(parser, args.device)
    return args


def phase_seconds(cfg, obs_dim: int, act_dim: int, low, high, s: int, device, data: int, repeat: int) -> dict:
    """Seconds of each phase for `s` seeds in lockstep (one call each, waited for)."""
    gens = [torch.Generator(device=device).manual_seed(i) for i in range(s)]
    layout = Layout(obs_dim, act_dim)
    out: dict[str, float] = {}
    agent = SAC(obs_dim, low, high, cfg.sac, device, gens)
    batch = torch.stack([layout.random_rows(cfg.sac.batch_size, g, device) for g in gens])
    out["update"] = timed(lambda: agent.update(batch), device, repeat, 10) * cfg.sac.updates_per_step
    obs = np.zeros((s, obs_dim), dtype=np.float32)
    out["act"] = timed(lambda: agent.act(obs, deterministic=False), device, repeat, 20)
    if cfg.run.algo == "mbpo":
        mcfg = cfg.mbpo
        model = GaussianEnsemble(obs_dim, act_dim, mcfg, device, gens)
        model.cfg = dataclasses.replace(mcfg, model_max_epochs=1)  # one epoch per fit
        x = torch.stack([torch.randn(data, obs_dim + act_dim, generator=g, device=device) for g in gens])
        y = torch.stack([0.1 * torch.randn(data, 1 + obs_dim, generator=g, device=device) for g in gens])
        out["epoch"] = timed(lambda: model.fit(x, y, gens), device, max(1, repeat // 2), 1)
        start = torch.zeros(s, mcfg.rollout_batch_size, obs_dim, device=device)
        terminated = termination_fn(cfg.run.env)

        def rollout() -> None:
            branched_rollouts(
                start, 1,
                lambda o, draw: agent.sample(o, "rollout", draw).action,
                lambda o, a, draw: model.sample_next(o, a, gens, draw),
                terminated,
            )  # fmt: skip

        out["rollout"] = timed(rollout, device, repeat, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    device = torch.device(args.device)
    cfg = build_config({"algo": "mbpo", "preset": args.preset, "env": args.env})
    env = make_env(cfg.run.env, cfg.run.truncate_obs)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = env.action_space.low.astype(np.float32), env.action_space.high.astype(np.float32)
    cpu = cpu_info()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes")
    print(
        f"# {when}, {cpu['model']} ({os.cpu_count()} cores, {', '.join(cpu['simd'])}), torch {torch.__version__}, {gpu}"
    )
    print(f"# python benchmarks/lockstep.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(
        f"# {args.env} --preset {args.preset} on {args.device}, {args.threads} thread(s): batch {cfg.sac.batch_size}, "
        f"{cfg.sac.updates_per_step} updates/step, actor {cfg.sac.actor_hidden}, critic {cfg.sac.critic_hidden}, "
        f"model {cfg.mbpo.ensemble_size} x {cfg.mbpo.model_hidden} on {args.data} transitions, "
        f"{cfg.mbpo.rollout_batch_size} rollouts per phase"
    )
    rows = {}
    for s in args.sizes:
        rows[s] = phase_seconds(cfg, obs_dim, act_dim, low, high, s, device, args.data, args.repeat)
        sync(device)
    base = rows[args.sizes[0]] if args.sizes[0] == 1 else None
    freq = cfg.mbpo.model_train_freq
    print(f"{'S':>3}  {'phase':<8} {'ms per seed':>12} {'x vs S=1':>9}")
    for s, phases in rows.items():
        per_step = 0.0
        for name, seconds in phases.items():
            ms = 1e3 * seconds / s
            ratio = f"{(1e3 * base[name]) / ms:.2f}" if base is not None else "-"
            print(f"{s:>3}  {name:<8} {ms:>12.3f} {ratio:>9}")
            per_step += ms * (args.epochs / freq if name == "epoch" else 1 / freq if name == "rollout" else 1)
        print(
            f"{s:>3}  {'env step':<8} {per_step:>12.3f}   (ms per seed-env-step: updates + act + model and rollout amortised)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
