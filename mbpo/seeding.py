"""The one place that turns a run seed into generators (and the only code touching global seeds)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Generators:
    """Independent random streams of one run, all derived from its seed."""

    torch: torch.Generator  # network init, policy noise, replay sampling (on the run's device)
    numpy: np.random.Generator  # exploration actions
    env_seed: int  # first reset of the training env
    eval_seed: int  # evaluation episode k resets its env with eval_seed + k


def make_generators(seed: int, device: torch.device) -> Generators:
    """Seed every stream of a run from `seed`.

    Global RNGs are seeded too, only so that library code we do not control (a gymnasium
    wrapper, say) is repeatable; the project's own code draws from the returned generators.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch_seq, numpy_seq, env_seq, eval_seq = np.random.SeedSequence(seed).spawn(4)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(torch_seq.generate_state(1, np.uint64)[0] >> 1))
    return Generators(
        torch=gen,
        numpy=np.random.default_rng(numpy_seq),
        env_seed=int(env_seq.generate_state(1)[0]),
        eval_seed=int(eval_seq.generate_state(1)[0]) % 2**30,
    )
