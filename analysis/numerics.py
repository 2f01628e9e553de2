"""A numerics fingerprint: evidence, not a CPU name, of whether this machine can reproduce a
reference's runs byte for byte.

    python -m analysis.numerics [--reference results/reference]

The fingerprint of a run config is the SHA-256 of the bytes a canonical computation with the
run's shapes produces on the CPU, one torch thread, denormals flushed (as training runs):
200 steps of the run's env under fixed actions (numpy's math), a few SAC updates on synthetic
batches from a fixed generator (the run's actor and critic sizes and batch size: the matmul,
Adam and elementwise kernels training uses), and for MBPO a few ensemble training steps and a
prediction (the model's batched matmuls and activations). Two machines whose fingerprints agree
ran every kernel the runs use to the same bits; where they differ, runs differ (in the 9th
digit, then everywhere, as training amplifies it) and only the statistical verdict can compare.

`analysis.reference` records the fingerprint of each group in `reference.json`
(`numerics_fingerprint`); a reference without one is "unknown": byte-identical is not assumed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mbpo.usage import OneLineParser

if TYPE_CHECKING:
    import torch

FINGERPRINT_VERSION = 1
SAC_UPDATES = 6
MODEL_STEPS = 3
ENV_STEPS = 200


def _section(cls: type, values: dict[str, Any]) -> Any:
    """A config dataclass from a metadata section: known fields only, lists as tuples."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known})


def _update(digest: hashlib._Hash, *tensors: torch.Tensor | np.ndarray) -> None:
    import torch

    for t in tensors:
        array = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        digest.update(np.ascontiguousarray(array).tobytes())


def fingerprint(config: dict[str, Any]) -> str:
    """The fingerprint (hex) of one run config (the `config` of a run's metadata.json)."""
    import torch

    from mbpo.config import MBPOConfig, SACConfig
    from mbpo.ensemble import GaussianEnsemble
    from mbpo.envs import make_env
    from mbpo.sac import SAC

    threads, flush = torch.get_num_threads(), torch.set_flush_denormal(True)
    torch.set_num_threads(1)
    try:
        digest = hashlib.sha256(f"v{FINGERPRINT_VERSION}".encode())
        cpu = torch.device("cpu")
        env = make_env(config["run"]["env"])
        obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
        low, high = env.action_space.low.astype(np.float32), env.action_space.high.astype(np.float32)
        rng = np.random.default_rng(0)
        obs, _ = env.reset(seed=0)
        for _ in range(ENV_STEPS):
            obs, reward, terminated, truncated, _ = env.step(rng.uniform(low, high).astype(np.float32))
            _update(digest, obs, np.float64(reward))
            if terminated or truncated:
                obs, _ = env.reset(seed=1)
        env.close()

        gen = torch.Generator(device=cpu).manual_seed(0)
        sac_cfg = _section(SACConfig, config.get("sac", {}))
        agent = SAC(obs_dim, low, high, sac_cfg, cpu, gen)
        for _ in range(SAC_UPDATES):
            o = torch.randn(sac_cfg.batch_size, obs_dim, generator=gen)
            a = torch.rand(sac_cfg.batch_size, act_dim, generator=gen) * 2 - 1
            r = torch.randn(sac_cfg.batch_size, 1, generator=gen)
            done = (torch.rand(sac_cfg.batch_size, 1, generator=gen) < 0.1).float()
            agent.update(torch.cat((o, a, r, o + 0.1 * torch.randn(o.shape, generator=gen), done), dim=1))
        _update(digest, agent.actor.params, agent.critic.params, agent.critic_target.params, agent.log_alpha)
        _update(digest, agent.act(np.asarray(obs, dtype=np.float32), deterministic=True))

        if config["run"].get("algo") == "mbpo":
            mbpo_cfg = _section(MBPOConfig, config.get("mbpo", {}))
            model = GaussianEnsemble(obs_dim, act_dim, mbpo_cfg, cpu, gen)
            shape = (mbpo_cfg.ensemble_size, mbpo_cfg.model_batch_size)
            x = torch.randn(*shape, obs_dim + act_dim, generator=gen)
            y = torch.randn(*shape, obs_dim + 1, generator=gen)
            for _ in range(MODEL_STEPS):
                _update(digest, model.step(x, y))
            mean, logvar, _, _ = model.predict(x, "holdout")
            _update(digest, model.net.params, mean, logvar)
        return digest.hexdigest()
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(flush)


def group_configs(reference: Path) -> dict[str, dict[str, Any]]:
    """One run config per (env, algo, variant, device) group of a reference (or of any runs)."""
    from analysis.regress import find_runs
    from analysis.runs import RunFolderError, metadata

    configs: dict[str, dict[str, Any]] = {}
    for ident, run_dir in sorted(find_runs(reference).runs.items()):
        config = metadata(run_dir).get("config")  # an object of sections where present (analysis.runs)
        if not isinstance(config, dict) or not isinstance(config.get("run", {}).get("env"), str):
            raise RunFolderError(f"{Path(run_dir) / 'metadata.json'}: 'config' records no run.env")
        configs.setdefault("/".join(map(str, ident[:4])), config)
    return configs


def fingerprints(configs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The fingerprint of each group (CPU groups only: CUDA's numerics are another question)."""
    return {group: fingerprint(config) for group, config in configs.items() if group.split("/")[3] == "cpu"}


class NumericsError(ValueError):
    """A reference's record of its fingerprints cannot be read: the message says why."""


def recorded(reference: Path) -> dict[str, str] | None:
    """The fingerprints a reference records; None when it records none (no reference.json, or
    one from before fingerprints: unknown). NumericsError when reference.json cannot be read,
    is not a JSON object, or its `numerics_fingerprint` is not an object of group: fingerprint."""
    path = Path(reference) / "reference.json"
    if not path.exists():
        return None
    from analysis.runs import read_json_object

    info = read_json_object(path, NumericsError)
    found = info.get("numerics_fingerprint")
    if found is None or found == {}:
        return None
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise NumericsError(f"{path}: 'numerics_fingerprint' is not an object of group: fingerprint")
    return found


def byte_identical_possible(reference: Path) -> tuple[bool, str]:
    """Whether this machine can reproduce the reference's runs byte for byte, and why (not)."""
    want = recorded(reference)
    if want is None:
        return (
            False,
            f"{reference}/reference.json records no numerics fingerprint (unknown: refresh the reference to record one)",
        )
    have = fingerprints(group_configs(reference))
    differ = sorted(g for g in want if have.get(g) != want[g])
    if differ:
        return False, f"this machine's numerics fingerprint differs from the reference's for {', '.join(differ)}"
    return True, "this machine's numerics fingerprint equals the reference's"


def main(argv: list[str] | None = None) -> int:
    from analysis.regress import RegressError
    from analysis.runs import RunFolderError, error_line

    parser = OneLineParser(prog="python -m analysis.numerics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=Path("results/reference"))
    args = parser.parse_args(argv)
    try:
        recorded(args.reference)  # an unreadable reference.json is said before the computation
        start = time.perf_counter()
        have = fingerprints(group_configs(args.reference))
        seconds = time.perf_counter() - start
        possible, why = byte_identical_possible(args.reference)
    except (RegressError, RunFolderError, NumericsError, OSError) as exc:
        print(f"{parser.prog}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    for group, value in have.items():
        print(f"{group}: {value}")
    import torch

    print(
        f"capability {torch.backends.cpu.get_cpu_capability()}; {seconds:.2f} s; byte-identical runs possible: {possible} ({why})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
