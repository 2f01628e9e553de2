"""Run `python -m mbpo train` with a real bug injected, to prove the regression check catches it.

    python tests/faults.py FAULT train --algo mbpo --seed 3 ... --out DIR

The bugs are made by editing one line of the real source at import time (mutation testing), so
the code under test is the project's own code with one mistake, not a stand-in. When a line a
fault edits is no longer in the source, the launcher stops with an error instead of silently
running correct code (the fault must then be rewritten for the new code).
"""

from __future__ import annotations

import __future__
import inspect
import sys
import textwrap
from typing import Callable

from mbpo import cli, sac, train


class FaultError(RuntimeError):
    """A fault no longer applies to the code."""


def mutate(owner: type, name: str, old: str, new: str) -> None:
    """Replace `old` (which must occur exactly once) by `new` in the source of `owner.name` and
    install the recompiled function in its place."""
    func = getattr(owner, name)
    source = textwrap.dedent(inspect.getsource(func))
    if source.count(old) != 1:
        raise FaultError(f"{owner.__name__}.{name} does not contain {old!r} exactly once: update tests/faults.py")
    flags = __future__.annotations.compiler_flag
    code = compile(source.replace(old, new), inspect.getsourcefile(func), "exec", flags=flags, dont_inherit=True)
    namespace: dict = {}
    exec(code, vars(sys.modules[func.__module__]), namespace)
    setattr(owner, name, namespace[name])


def model_off() -> None:
    """MBPO with its model switched off: the ensemble is never fitted, so the rollouts (and half
    of every policy batch) come from the untrained networks."""
    train.ModelPhase.fit = lambda self, real, step, writer: None


def no_model_data() -> None:
    """MBPO without model data: no fits, no rollouts, every policy batch is real data (SAC at
    MBPO's update ratio). Not a regression in return on Pendulum: SAC at 10 updates per step
    learns it at least as fast (the check says "improved" or "pass", and should)."""
    train.ModelPhase.due = lambda self, step: False


def broken_discount() -> None:
    """The terminal mask inverted in the critic target: it bootstraps only from terminal states
    (never, in Pendulum), so the critic learns the immediate reward alone."""
    mutate(
        sac.SAC,
        "update",
        "discount = terminated.mul(-self.cfg.gamma).add_(self.cfg.gamma)",
        "discount = terminated.mul(self.cfg.gamma)",
    )


def wrong_logprob() -> None:
    """The policy's log-probability with its normalising constant (Gaussian normaliser and the
    2 log 2 of the tanh correction) of the wrong sign: log p is 4.6 nats too high on Pendulum,
    the policy's entropy looks too low, and the learned temperature runs away."""
    mutate(
        sac.SAC,
        "__init__",
        "-act_dim * (0.5 * _LOG_2PI + 2.0 * math.log(2.0))",
        "act_dim * (0.5 * _LOG_2PI + 2.0 * math.log(2.0))",
    )


def seed_1_diverges() -> None:
    """Seed 1's evaluations after its first return NaN, as when its training has diverged (the
    other seeds' are untouched): for seeds in lockstep, which must stop that seed alone."""
    import torch

    from mbpo.seeding import make_generators

    target = make_generators(1, torch.device("cpu")).eval_seed  # the run re-seeds everything after this
    real, calls = train.evaluate_seeds, {"n": 0}

    def evaluate_seeds(policy, envs, episodes, seeds):  # noqa: ANN001, ANN202
        results = real(policy, envs, episodes, seeds)
        for i, seed in enumerate(seeds):
            if seed == target:
                calls["n"] += 1
                if calls["n"] > 1:
                    results[i] = [(float("nan"), length) for _, length in results[i]]
        return results

    train.evaluate_seeds = evaluate_seeds


FAULTS: dict[str, Callable[[], None]] = {
    "seed_1_diverges": seed_1_diverges,
    "model_off": model_off,
    "no_model_data": no_model_data,
    "broken_discount": broken_discount,
    "wrong_logprob": wrong_logprob,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in FAULTS:
        print(f"usage: python tests/faults.py {{{','.join(FAULTS)}}} train [ARGS...]", file=sys.stderr)
        return 2
    FAULTS[argv[0]]()
    return cli.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
