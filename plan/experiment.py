"""The experiment described by `config/config.yaml`: which runs exist and how each is launched.

The Snakefile asks this module for the run list and for each run's `python -m mbpo train`
arguments, so that the workflow files hold only wiring and this logic is unit-tested.

A run is identified by (env, algo, variant, device, seed), which is also its folder under
`output` (`results` unless the config says otherwise; config/ci.yaml writes under `results/ci`):
`plan.identity` owns those names, the layout and the algorithms.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import math
import re
from pathlib import Path, PurePosixPath
from dataclasses import dataclass, field, replace
from typing import Any

from mbpo.flags import option_args
from plan import identity
from plan.identity import PAPER_VARIANT, VariantError, rollout_length, rollout_variant, trainer, updates_per_step

DEFAULT_OUTPUT = "results"  # the config's `output`: the folder of runs, tables, figures and logs


class ExperimentError(ValueError):
    """The experiment config is invalid; the message names the field."""


@dataclass(frozen=True)
class Run:
    """A planned run: its identity, and, once `runs` planned it, its `python -m mbpo train`
    arguments (without `--out`), the config they resolve to and its env's observation and action
    sizes, so nothing downstream parses them again."""

    env: str
    algo: str
    variant: str
    device: str
    seed: int
    output: str = DEFAULT_OUTPUT
    args: tuple[str, ...] = field(default=(), compare=False)
    config: Any = field(default=None, compare=False, repr=False)  # mbpo.config.TrainConfig
    sizes: tuple[int, int] = field(default=(0, 0), compare=False)

    @property
    def path(self) -> str:
        return identity.run_dir(self.output, self.env, self.algo, self.variant, self.device, self.seed)

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.env, self.algo, self.variant, self.device, self.seed)


_NUMBER = re.compile(r"^-?\d+(\.\d*)?([eE][-+]?\d+)?$")


def _strict_loader():
    """yaml's SafeLoader, refusing a key given twice in one mapping (plain YAML keeps the last)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # an unhashable key: yaml's own constructor says so
                    break
                if first != key_node.start_mark.line + 1:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"key {key!r} given twice, on lines {first} and {key_node.start_mark.line + 1} "
                        "(one value must go)",
                        key_node.start_mark,
                    )
            return super().construct_mapping(node, deep)

    return StrictLoader


def load_yaml(path: str | Path) -> Any:
    """The YAML file at `path`, refusing a key given twice; ExperimentError naming the file, line
    and column where it stops parsing (Snakemake's own loader says only that some config file is
    not valid YAML, and silently keeps the last of two equal keys)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_strict_loader())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ExperimentError(f"{path}, line {mark.line + 1}, column {mark.column + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ExperimentError(f"{path}: not valid YAML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ExperimentError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ExperimentError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def check_yaml(path: str | Path) -> None:
    """ExperimentError for a config file that is not valid YAML or gives a key twice (`load_yaml`)."""
    load_yaml(path)


def check_schema(config: dict[str, Any], schema_path: str) -> None:
    """ExperimentError with one line naming the first field that breaks the schema (Snakemake's
    own validation prints schema fragments over many lines), or the first number that is not
    finite (JSON schema's bounds let NaN through: every comparison with it is false)."""
    import jsonschema
    import yaml

    check_finite(config)
    schema = yaml.safe_load(open(schema_path))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        hint = (
            error.schema.get("description") if error.validator == "oneOf" and isinstance(error.schema, dict) else None
        )
        raise ExperimentError(f"{where or 'config'}: {error.message}" + (f" ({hint})" if hint else ""))


SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


def load_experiment(path: str | Path) -> dict[str, Any]:
    """The experiment config file at `path` as the pipeline reads it: strict YAML, checked
    against the schema, its defaults filled in. ExperimentError with one line naming the file."""
    from snakemake.utils import validate

    config = load_yaml(path)
    if not isinstance(config, dict):
        raise ExperimentError(f"{path}: not a mapping of settings")
    try:
        check_schema(config, str(SCHEMA))
        validate(config, str(SCHEMA))  # fills the schema's defaults, as the Snakefile does
    except ValueError as exc:
        raise ExperimentError(f"{path}: {exc}") from None
    return config


def planned_configs(config: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
    """Every planned run's identity (env, algo, variant, device, seed) -> its resolved config
    (`mbpo.config.TrainConfig.to_dict`), as `python -m mbpo train` will resolve it."""
    return {run.key: run.config.to_dict() for run in runs(config)}


def check_finite(value: Any, where: str = "") -> None:
    """ExperimentError naming the first NaN or infinite number in a config (no setting takes one)."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_finite(item, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ExperimentError(f"{where or 'config'}: {value} is not a finite number")


def numbers_from_command_line(value: Any) -> Any:
    """Snakemake's `--config key=[0,1]` parses every scalar as a string; turn the strings that
    are numbers back into numbers (env ids, presets and schedules like "20,100,1,15" never are)."""
    if isinstance(value, dict):
        return {k: numbers_from_command_line(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers_from_command_line(v) for v in value]
    if isinstance(value, str) and _NUMBER.match(value):
        return int(value) if re.fullmatch(r"-?\d+", value) else float(value)
    return value


def built_without_gpu(version_file: Path) -> bool:
    """True when a torch build's `version.py` says it has neither CUDA nor ROCm (`cuda` and
    `hip` both assigned None), so `torch.cuda.is_available()` must be False. Anything else,
    unreadable or unexpected, is False: the caller then asks torch itself."""
    try:
        tree = ast.parse(version_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, SyntaxError):
        return False
    says_none: dict[str, bool] = {}  # the last module-level assignment of each name is the one torch sees
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("cuda", "hip"):
            says_none[target.id] = isinstance(value, ast.Constant) and value.value is None
    return says_none.get("cuda", False) and says_none.get("hip", False)


@functools.cache
def cuda_available() -> bool:
    """`torch.cuda.is_available()`, without importing torch (~2.5 s of every Snakemake
    invocation's planning) where the installed build is CPU-only."""
    spec = importlib.util.find_spec("torch")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if built_without_gpu(Path(folder) / "version.py"):
            return False
    import torch

    return torch.cuda.is_available()


def resolve_devices(devices: list[str]) -> list[str]:
    """`auto` means the CPU, plus CUDA where torch sees a GPU."""
    out: list[str] = []
    for device in devices:
        wanted = ["cpu", "cuda"] if device == "auto" else [device]
        for d in wanted:
            if d == "cuda" and not cuda_available():
                if device == "cuda":
                    raise ExperimentError("devices: 'cuda' requested but torch sees no CUDA device (use auto)")
                continue
            if d not in out:
                out.append(d)
    return out


def check_envs(envs: list[str], where: str = "envs") -> None:
    import gymnasium as gym

    for env in envs:
        if env not in gym.envs.registry:
            raise ExperimentError(f"{where}: unknown environment {env!r}")


def variants(config: dict[str, Any], algo: str) -> list[str]:
    spec = config["algorithms"][algo]
    if trainer(algo) == "mbpo":
        try:
            return [rollout_variant(length) for length in spec["rollout_lengths"]]
        except VariantError as exc:
            raise ExperimentError(f"algorithms.{algo}.rollout_lengths: {exc}") from None
    return [identity.utd_variant(spec.get("updates_per_step", 1))]


def algorithm_envs(config: dict[str, Any], algo: str) -> list[str]:
    """The envs an algorithm runs on: the config's, or the subset its own `envs` names."""
    return [env for env in config["envs"] if env in config["algorithms"][algo].get("envs", config["envs"])]


def env_seeds(config: dict[str, Any], env: str) -> list[int]:
    """The seeds an env runs: `seeds` itself, or its entry where `seeds` maps envs to lists."""
    seeds = config["seeds"]
    return seeds[env] if isinstance(seeds, dict) else seeds


def check_seeds(config: dict[str, Any]) -> None:
    """ExperimentError naming the field where `seeds` (a list, or a map env -> list) lists
    something other than integers, or maps envs unknown or missing from `envs`."""
    seeds = config["seeds"]
    if isinstance(seeds, dict):
        check_envs(list(seeds), where="seeds")  # envs not run now may keep their seeds; a typo is refused
        missing = [env for env in config["envs"] if env not in seeds]
        if missing:
            raise ExperimentError(f"seeds: no seeds for {', '.join(missing)} (a map of seeds names every env in envs)")
        lists = {f"seeds.{env}": seeds[env] for env in config["envs"]}
    else:
        lists = {"seeds": seeds}
    for where, values in lists.items():
        if not isinstance(values, list):
            raise ExperimentError(f"{where}: {values!r} is not a list of seeds")
        for seed in values:
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise ExperimentError(f"{where}: {seed!r} is not an integer")


def runs(config: dict[str, Any]) -> list[Run]:
    """Every run of the experiment, in a stable order; each run's arguments are checked with the
    training CLI's own parser and config validation, so a bad option fails here, before any run."""
    check_envs(config["envs"])
    check_seeds(config)
    for algo, spec in config["algorithms"].items():
        stray = sorted(set(spec.get("envs", [])) - set(config["envs"]))
        if stray:
            raise ExperimentError(f"algorithms.{algo}.envs: {', '.join(stray)} not in envs")
        total = spec.get("total_steps")
        if isinstance(total, dict):  # envs not run now may keep their lengths; a typo is refused
            check_envs(list(total), where=f"algorithms.{algo}.total_steps")
        lengths = {str(length) for length in spec.get("rollout_lengths", [])}
        stray = sorted(set(map(str, spec.get("variant_options", {}))) - lengths)
        if stray:
            raise ExperimentError(
                f"algorithms.{algo}.variant_options: {', '.join(stray)} not among its rollout_lengths"
            )
    devices = resolve_devices(config["devices"])
    output = config.get("output", DEFAULT_OUTPUT)
    if ".." in PurePosixPath(output).parts:
        raise ExperimentError(f"output: {output!r} leaves the working directory ('..' is not allowed)")
    planned = []
    for env in config["envs"]:
        for algo in config["algorithms"]:
            if env not in algorithm_envs(config, algo):
                continue
            for variant in variants(config, algo):
                for device in devices:
                    # resolved once per group: the seed changes nothing that is checked or sized
                    where = f"algorithms.{algo} ({env}, {variant})"
                    seeds = env_seeds(config, env)
                    cfg, sizes = resolve_args(where, train_args(config, env, algo, variant, device, seeds[0]))
                    for seed in seeds:
                        args = tuple(train_args(config, env, algo, variant, device, seed))
                        resolved = replace(cfg, run=replace(cfg.run, seed=seed))
                        planned.append(Run(env, algo, variant, device, seed, output, args, resolved, sizes))
    return planned


@dataclass(frozen=True)
class Job:
    """What one `python -m mbpo train` process trains: one run, or several seeds of one group
    (env, algo, variant, device) in lockstep (`--seeds`), each into its own run folder."""

    runs: tuple[Run, ...]

    @property
    def run(self) -> Run:
        return self.runs[0]

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(run.seed for run in self.runs)

    @property
    def lockstep(self) -> bool:
        return len(self.runs) > 1

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        r = self.run
        return (r.env, r.algo, r.variant, r.device, identity.job_seeds(self.seeds))

    @property
    def record(self) -> str:
        """The job's completion marker: its runs' metadata.json alone, a record of them in lockstep."""
        r = self.run
        if not self.lockstep:
            return f"{r.path}/metadata.json"
        return identity.job_path(identity.JOB_RECORD, r.output, r.env, r.algo, r.variant, r.device, self.seeds)

    @property
    def args(self) -> tuple[str, ...]:
        """The `python -m mbpo train` arguments (without `--out`): `--seeds` in lockstep."""
        if not self.lockstep:
            return self.run.args
        args = list(self.run.args)
        at = args.index("--seed")
        args[at : at + 2] = ["--seeds", ",".join(map(str, self.seeds))]
        return tuple(args)

    @property
    def out(self) -> str:
        """`--out`: the run's folder, or in lockstep the pattern of its seeds' folders."""
        r = self.run
        return (
            r.path
            if not self.lockstep
            else identity.RUN_DIR.format(
                output=r.output, env=r.env, algo=r.algo, variant=r.variant, device=r.device, seed="{seed}"
            )
        )


@functools.lru_cache(maxsize=1)
def _schema_defaults() -> dict[str, Any]:
    schema = load_yaml(Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml")
    return {key: spec.get("default") for key, spec in schema["properties"].items()}


def seeds_per_job(config: dict[str, Any], device: str) -> int:
    """How many seeds of a group one job trains on `device` (the config's `seeds_per_job`)."""
    per_device = {**_schema_defaults()["seeds_per_job"], **config.get("seeds_per_job", {})}
    return int(per_device[device])


def jobs(config: dict[str, Any], planned: list[Run]) -> list[Job]:
    """The planned runs as jobs: each group's seeds, in the config's order, in chunks of
    `seeds_per_job` for its device (sb3_sac's one seed per process). Adding seeds adds jobs for
    them; a job whose seeds are complete finds nothing to train (`--skip-complete`)."""
    groups: dict[tuple, list[Run]] = {}
    for run in planned:
        groups.setdefault(run.key[:4], []).append(run)
    out = []
    for (env, algo, variant, device), members in groups.items():
        size = 1 if trainer(algo) == "sb3_sac" else seeds_per_job(config, device)
        for start in range(0, len(members), size):
            out.append(Job(tuple(members[start : start + size])))
    return out


def lookup(planned: list[Run]) -> dict[tuple, Run]:
    """The planned runs by identity (env, algo, variant, device, seed): how the rules find a run."""
    return {run.key: run for run in planned}


def resolve_args(where: str, args: list[str]) -> tuple[Any, tuple[int, int]]:
    """A run's arguments resolved as `python -m mbpo train` would: (its TrainConfig, its env's
    observation and action sizes); ExperimentError naming `where`."""
    from mbpo.cli import ArgumentError, resolve_args as resolve

    try:
        return resolve(args)
    except ArgumentError as exc:
        raise ExperimentError(f"{where}: {exc}") from None


_SHARED_FLAGS = {
    "preset": "is the algorithm's own field (preset)",
    "total_steps": "is the algorithm's own field (total_steps)",
    "eval_every": "comes from evaluation.every",
    "eval_episodes": "comes from evaluation.episodes",
}
# `options` that would contradict what the run's folder says it is (the variant), its budget or
# the evaluation every run shares: refused at planning time, naming the field to use instead
IDENTITY_FLAGS = {
    "mbpo": {**_SHARED_FLAGS, "rollout_length": "is the variant: list it in rollout_lengths"},
    "sac": {**_SHARED_FLAGS, "updates_per_step": "is the variant: set the algorithm's own updates_per_step"},
    "sb3_sac": {**_SHARED_FLAGS, "updates_per_step": "is the variant: set the algorithm's own updates_per_step"},
}


def paper_total_steps(algo: str, env: str, preset: str) -> int:
    """The run length a preset gives `env` (the paper's per-environment length for `paper`)."""
    from mbpo.config import build_config

    return build_config({"algo": trainer(algo), "preset": preset, "env": env}).run.total_steps


def train_args(config: dict[str, Any], env: str, algo: str, variant: str, device: str, seed: int) -> list[str]:
    """The `python -m mbpo train` arguments of one run (without `--out`).

    Values the config leaves out (`total_steps`, or an env missing from a per-env `total_steps`
    map; `evaluation.every`; a `paper` rollout length)
    come from the run's preset, which for `paper` holds the environment's own settings;
    `budget_factor` scales the preset's run length (the SAC asymptote's longer runs)."""
    spec = config["algorithms"][algo]
    evaluation = config["evaluation"]
    preset = spec.get("preset", "default")
    args = ["--algo", trainer(algo), "--env", env, "--seed", str(seed), "--device", device, "--preset", preset]
    total = spec.get("total_steps")
    if isinstance(total, dict):  # per env; the others take the preset's
        total = total.get(env)
    if total is not None:
        args += ["--total-steps", str(total)]
    elif "budget_factor" in spec:
        args += ["--total-steps", str(round(spec["budget_factor"] * paper_total_steps(algo, env, preset)))]
    if "every" in evaluation:
        args += ["--eval-every", str(evaluation["every"])]
    args += ["--eval-episodes", str(evaluation["episodes"])]
    sources = {f"algorithms.{algo}.options": dict(spec.get("options", {}))}
    if trainer(algo) == "mbpo":
        if variant != PAPER_VARIANT:
            args += ["--rollout-length", rollout_length(variant)]
        per_length = {
            str(length): extra for length, extra in spec.get("variant_options", {}).items()
        }  # YAML: 500 or "500"
        length = rollout_length(variant)
        sources[f"algorithms.{algo}.variant_options.{length}"] = dict(per_length.get(length, {}))
    else:
        args += ["--updates-per-step", str(updates_per_step(variant))]
    for where, extra in sources.items():  # the run's identity and budget come from their own fields
        for key in extra:
            if key in IDENTITY_FLAGS[trainer(algo)]:
                raise ExperimentError(f"{where}: {key} {IDENTITY_FLAGS[trainer(algo)][key]}")
    options = {key: value for extra in sources.values() for key, value in extra.items()}
    return args + option_args(options)
