"""What names a run, in one place: its identity, its folder, its variant and its labels.

A run is identified by (env, algo, variant, device, seed), and that identity is its folder,
`{output}/runs/{env}/{algo}/{variant}/{device}/seed{seed}`, its log and its benchmark record.
`algo` is a key of an experiment config's `algorithms` (`ALGORITHMS` says which trainer runs
it and how figures name it); `variant` is the rollout length for MBPO (`h1`, `h20-100-1-15` for a
schedule, `hpaper` for the preset's own) and the update ratio for SAC (`utd1`).

Everything that builds or reads these names (the workflow's rules and wildcard constraints,
`plan.experiment`, `analysis.runs`, the tables, the regression check, the figures) goes
through this module, so a change to the layout is made here once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Algorithm:
    trainer: str  # `python -m mbpo train --algo`
    label: str  # how figures and tables name it


ALGORITHMS = {
    "mbpo": Algorithm("mbpo", "MBPO"),
    "sac": Algorithm("sac", "SAC"),
    "sac_mbpo_utd": Algorithm("sac", "SAC at MBPO's update ratio"),  # the control
    "sac_asymptote": Algorithm("sac", "SAC asymptote"),  # longer runs: the paper figure's dashed line
    "mbpo_ablation": Algorithm("mbpo", "MBPO"),  # the rollout-length ablation's lengths beside `mbpo`'s
    "sb3_sac": Algorithm("sb3_sac", "SAC (Stable-Baselines3)"),  # the cross-check's independent SAC
}

FIELDS = ("env", "algo", "variant", "device", "seed")
GROUP = list(FIELDS[:4])  # a run's group: every field but the seed
IDENTITY = list(FIELDS)

# what each field may be: the workflow's wildcard constraints, and this module's parser
PATTERNS = {
    "env": r"[A-Za-z0-9_.\-]+",
    "algo": "|".join(ALGORITHMS),
    "variant": r"[a-z0-9\-]+",
    "device": r"cpu|cuda",
    "seed": r"\d+",
}

_RUN = "{env}/{algo}/{variant}/{device}/seed{seed}"
RUN_DIR = "{output}/runs/" + _RUN
LOG = "{output}/logs/train/" + _RUN + ".log"
BENCHMARK = "{output}/benchmarks/" + _RUN + ".tsv"

# a job that trains several seeds of a group in lockstep: its completion record lists its runs
# (the runs' own folders are as above: each seed's is what its run alone writes)
_JOB = "{env}/{algo}/{variant}/{device}/seeds{seeds}"
JOB_RECORD = "{output}/jobs/" + _JOB + ".json"
JOB_LOG = "{output}/logs/train/" + _JOB + ".log"
JOB_BENCHMARK = "{output}/benchmarks/" + _JOB + ".tsv"
JOB_PATTERNS = {**{f: PATTERNS[f] for f in FIELDS[:4]}, "seeds": r"\d+(-\d+)+"}

PAPER_SCHEDULE = "paper"  # a rollout length meaning "the preset's own (per-environment) schedule"
PAPER_VARIANT = "h" + PAPER_SCHEDULE


class VariantError(ValueError):
    """A rollout length or variant that names no run."""


def run_dir(output: str, env: str, algo: str, variant: str, device: str, seed: int) -> str:
    return RUN_DIR.format(output=output, env=env, algo=algo, variant=variant, device=device, seed=seed)


def job_seeds(seeds: tuple[int, ...] | list[int]) -> str:
    """`0-1-2`: the `seeds` field of a job's paths."""
    return "-".join(map(str, seeds))


def job_path(template: str, output: str, env: str, algo: str, variant: str, device: str, seeds) -> str:
    """A job's record, log or benchmark file (`JOB_RECORD`, `JOB_LOG`, `JOB_BENCHMARK`)."""
    return template.format(output=output, env=env, algo=algo, variant=variant, device=device, seeds=job_seeds(seeds))


def job_wildcards(template: str, output: str) -> str:
    """A job template with `output` filled in and its other fields left as Snakemake wildcards."""
    return template.format(output=output, **{f: "{" + f + "}" for f in (*FIELDS[:4], "seeds")})


def name(ident: tuple | dict) -> str:
    """`Hopper-v5/mbpo/hpaper/cpu/seed0`: a run's identity as its folder below `runs/`."""
    values = ident if isinstance(ident, dict) else dict(zip(FIELDS, ident))
    return _RUN.format(**values)


def group_name(group: tuple) -> str:
    """`Hopper-v5/mbpo/hpaper/cpu`: a group's identity (every field but the seed)."""
    return "/".join(map(str, group))


def wildcards(template: str, output: str, file: str | None = None) -> str:
    """A template with `output` filled in and every identity field left as a Snakemake wildcard
    (`file`: a file inside that folder)."""
    path = template.format(output=output, **{field: "{" + field + "}" for field in FIELDS})
    return path if file is None else f"{path}/{file}"


# the parser accepts any folder names (a user's own runs too); `seed` must be a number
_PARSE = re.compile(
    _RUN.replace("{seed}", r"(?P<seed>\d+)").format(**{f: f"(?P<{f}>[^/]+)" for f in FIELDS[:4]}) + "/?$"
)


def parse(path: str) -> dict[str, Any] | None:
    """The identity a run folder's path ends in (seed as an int), or None outside the layout."""
    match = _PARSE.search(path)
    if match is None:
        return None
    return {**match.groupdict(), "seed": int(match["seed"])}


def trainer(algo: str) -> str:
    return ALGORITHMS[algo].trainer


def label(algo: str, variant: str | None = None) -> str:
    """`MBPO`, or `MBPO (h1)` with a variant; an unknown algorithm keeps its own name."""
    known = ALGORITHMS.get(algo)
    text = known.label if known else algo
    return f"{text} ({variant})" if variant is not None else text


def rollout_variant(length: str | int) -> str:
    """`3` -> `h3`; `"20,100,1,15"` -> `h20-100-1-15`; `"paper"` -> `hpaper`."""
    if length == PAPER_SCHEDULE:
        return PAPER_VARIANT
    parts = [p.strip() for p in str(length).split(",")]
    if len(parts) not in (1, 4) or not all(p.isdigit() for p in parts):
        raise VariantError(f"{length!r} is not N or start_epoch,end_epoch,start,end")
    return "h" + "-".join(parts)


def rollout_length(variant: str) -> str:
    """The inverse of `rollout_variant`: `h20-100-1-15` -> `20,100,1,15`, `hpaper` -> `paper`
    (the config's spelling, and for a number or schedule the CLI's `--rollout-length`)."""
    return variant.removeprefix("h").replace("-", ",")


_ROLLOUT_VARIANT = re.compile(r"h[0-9]+(-[0-9]+-[0-9]+-[0-9]+)?")


def _rollout_parts(variant: str) -> list[str]:
    """`h20-100-1-15` -> ["20", "100", "1", "15"]; VariantError for what is no MBPO variant."""
    if not isinstance(variant, str) or not _ROLLOUT_VARIANT.fullmatch(variant):
        raise VariantError(f"{variant!r} is not an MBPO rollout variant (hN, hE0-E1-L0-L1 or {PAPER_VARIANT})")
    return rollout_length(variant).split(",")


def rollout_order(variant: str) -> tuple:
    """h1 < h3 < h20-100-1-15 < hpaper (schedules after fixed lengths, the preset's last)."""
    if variant == PAPER_VARIANT:
        return (5, [])
    parts = [int(p) for p in _rollout_parts(variant)]
    return (len(parts), parts)


def rollout_label(variant: str) -> str:
    """`h3` -> `3`; `h20-100-1-15` -> `1->15, epochs 20-100`; `hpaper` -> the preset's schedule."""
    if variant == PAPER_VARIANT:
        return "paper schedule"
    parts = _rollout_parts(variant)
    if len(parts) == 1:
        return parts[0]
    return f"{parts[2]}->{parts[3]}, epochs {parts[0]}-{parts[1]}"


def utd_variant(updates_per_step: int) -> str:
    return f"utd{updates_per_step}"


def updates_per_step(variant: str) -> int:
    """The inverse of `utd_variant`: `utd20` -> 20."""
    return int(variant.removeprefix("utd"))
