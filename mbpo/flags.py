"""The one owner of how a config field is spelled on the command line, both ways.

`python -m mbpo train`'s flags are generated from the config dataclasses (`mbpo.cli`); a run's
metadata records the command that repeats it (`reproduce_command`); the pipeline's plan turns an
experiment's `options` into flags (`option_args`). All three spell a field `--field-name`, a
boolean `--field-name` / `--no-field-name`, a tuple or list `a,b,c`, and None `auto`, here. No
torch is imported.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from mbpo.config import TrainConfig


def flag(name: str) -> str:
    """`updates_per_step` -> `--updates-per-step`."""
    return "--" + name.replace("_", "-")


def field_name(flag_text: str) -> str:
    """`--updates-per-step` -> `updates_per_step` (the inverse of `flag`)."""
    return flag_text.removeprefix("--").replace("-", "_")


def show(value: Any) -> str:
    """A field's value as its flag takes it."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if value is None:
        return "auto"
    return str(value)


def option_args(options: Mapping[str, Any]) -> list[str]:
    """The flags that set `options` (field name -> value)."""
    words: list[str] = []
    for name, value in options.items():
        if isinstance(value, bool):
            words.append(flag(name) if value else "--no-" + name.replace("_", "-"))
        else:
            words += [flag(name), show(value)]
    return words


def reproduce_command(cfg: "TrainConfig", out: Path) -> str:
    """The command that repeats this run with every hyperparameter spelled out."""
    from mbpo.config import SECTIONS

    words = ["python", "-m", "mbpo", "train"]
    for section in SECTIONS:
        if section == "mbpo" and cfg.run.algo != "mbpo":
            continue
        words += option_args(getattr(cfg, section).__dict__)
    words += ["--out", str(out)]
    return shlex.join(words)
