"""MBPO's cost per env step at the paper's Hopper settings, phase by phase, and a cost model.

    python benchmarks/paper_scale.py [--device cpu|cuda] [--threads 1] [--model-csv RUN/model.csv]

Times, on one device and thread count, each phase of an MBPO env step at `--preset paper` on
Hopper-v5 (11 observations, 3 actions): 20 SAC updates (batch 256, 2 x 256), one epoch of model
training at the real-data sizes of 10k, 25k and 50k env steps (7 members of 4 x 200, batch 256,
with the holdout pass), a rollout phase (100k branches through 5 elites) at the schedule's length
at those steps, and one env step with its action. Model fits happen every 250 env steps and
run until early stopping, so their cost per env step is epochs x epoch time / 250: the epochs per
fit come from `--model-csv` (a real run's model.csv: the mean over its fits after the first) or `--epochs`.

It prints ms per env step with its split at 10k, 25k and 50k steps, then integrates the model
over 125k steps (epoch time linear in the data, rollout time linear in the length) into the
projected hours of a whole Hopper run on this device (epochs per fit held constant;
`benchmarks/experiment_cost.py` projects every run of an experiment, first fit apart).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import check_device, env_step_seconds, epoch_seconds, require, threads_check, timed  # noqa: E402
from experiment_cost import fit_epochs  # noqa: E402

from mbpo.config import build_config  # noqa: E402
from mbpo.ensemble import GaussianEnsemble  # noqa: E402
from mbpo.envs import make_env  # noqa: E402
from mbpo.rollout import branched_rollout  # noqa: E402
from mbpo.sac import SAC  # noqa: E402
from mbpo.termination import termination_fn  # noqa: E402
from mbpo.usage import OneLineParser  # noqa: E402

OBS, ACT = 11, 3
STEPS = (10_000, 25_000, 50_000)


def main() -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model-csv", type=Path, help="a Hopper run's model.csv: epochs per fit from its fits")
    parser.add_argument("--epochs", type=float, default=40.0, help="epochs per model fit without --model-csv")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    require(
        parser,
        threads_check(args.threads),
        ("--epochs", 0 < args.epochs < np.inf, "a finite number > 0", args.epochs),
        ("--repeat", args.repeat >= 1, ">= 1", args.repeat),
    )
    check_device(parser, args.device)
    epochs = args.epochs
    if args.model_csv:
        try:
            epochs = fit_epochs([args.model_csv])[1]
        except ValueError as exc:
            parser.error(f"--model-csv {exc}")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    device = torch.device(args.device)
    cfg = build_config({"algo": "mbpo", "preset": "paper", "env": "Hopper-v5", "device": args.device})
    gen = torch.Generator(device=device).manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {device} ({name}), {torch.get_num_threads()} thread(s), torch {torch.__version__}")

    low, high = -np.ones(ACT, np.float32), np.ones(ACT, np.float32)
    agent = SAC(OBS, low, high, cfg.sac, device, gen)
    batch = agent.layout.random_rows(256, gen, device)
    update = timed(lambda: agent.update(batch), device, args.repeat, 50)

    env_act = env_step_seconds(make_env("Hopper-v5"), agent, args.repeat)

    model_cfg = dataclasses.replace(cfg.mbpo, model_max_epochs=2, model_patience=1000)
    model = GaussianEnsemble(OBS, ACT, model_cfg, device, gen)
    epoch_ms = {}
    for steps in STEPS:
        epoch_seconds(model, steps, OBS, device, gen)  # warm-up (slots, allocator)
        epoch_ms[steps] = epoch_seconds(model, steps, OBS, device, gen) * 1e3

    terminated = termination_fn("Hopper-v5")
    start = torch.randn(cfg.mbpo.rollout_batch_size, OBS, device=device, generator=gen) * 0.1
    start[:, 0] += 1.25  # standing height: most branches stay alive
    rollout_ms = {}
    for steps in STEPS:
        length = cfg.mbpo.rollout_length_at(steps, cfg.sac.random_steps)
        rollout_ms[steps] = 1e3 * timed(
            lambda n=length: branched_rollout(
                start,
                n,
                lambda o: agent.sample(o, "rollout").action,
                lambda o, a: model.sample_next(o, a, gen),
                terminated,
            ),
            device,
            max(args.repeat - 1, 1),
            1,
        )

    per_fit = cfg.mbpo.model_train_freq
    ups = cfg.sac.updates_per_step
    print(
        f"SAC update {update * 1e3:.2f} ms; env step + action {env_act * 1e3:.2f} ms; "
        f"model epochs per fit {epochs:.1f}; fit and rollouts every {per_fit} env steps"
    )
    print(
        f"{'env steps':>10} {'updates':>9} {'model fit':>10} {'rollouts':>9} {'env+act':>8} {'total':>8}  ms per env step"
    )
    totals = {}
    for steps in STEPS:
        parts = (ups * update * 1e3, epochs * epoch_ms[steps] / per_fit, rollout_ms[steps] / per_fit, env_act * 1e3)
        totals[steps] = sum(parts)
        print(
            f"{steps:>10} {parts[0]:>9.1f} {parts[1]:>10.1f} {parts[2]:>9.1f} {parts[3]:>8.2f} {totals[steps]:>8.1f}"
            f"   (epoch {epoch_ms[steps]:.0f} ms, rollout phase {rollout_ms[steps]:.0f} ms at length "
            f"{cfg.mbpo.rollout_length_at(steps, cfg.sac.random_steps)})"
        )

    # cost model: epoch time linear in the data, rollout phase time linear in the length
    n = np.array(STEPS, dtype=float)
    slope, intercept = np.polyfit(n, [epoch_ms[s] for s in STEPS], 1)
    lengths = np.array([cfg.mbpo.rollout_length_at(s, cfg.sac.random_steps) for s in STEPS], dtype=float)
    r_slope, r_int = (
        np.polyfit(lengths, [rollout_ms[s] for s in STEPS], 1) if len(set(lengths)) > 1 else (0.0, rollout_ms[STEPS[0]])
    )
    total_s = 0.0
    random_steps = cfg.sac.random_steps
    for step in range(random_steps, 125_001, per_fit):
        length = cfg.mbpo.rollout_length_at(step, cfg.sac.random_steps)
        total_s += (epochs * (intercept + slope * step) + r_int + r_slope * length) / 1e3
        total_s += per_fit * (ups * update + env_act)
    print(
        f"projected whole Hopper run (125k env steps): {total_s / 3600:.1f} h on this device "
        f"(epochs per fit held at {epochs:.1f}; model epoch {intercept:.0f} + {slope * 1e3:.2f} ms per 1k samples)"
    )


if __name__ == "__main__":
    main()
