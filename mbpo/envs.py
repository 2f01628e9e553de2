"""Environment creation and checks, with errors a user can act on."""

from __future__ import annotations

import difflib
import warnings

import gymnasium as gym
import numpy as np

from mbpo.usage import first_line


class EnvError(ValueError):
    """The environment id or its spaces cannot be used."""


def check_env_id(env_id: str) -> None:
    """Raise EnvError for an id gymnasium does not know, suggesting close matches."""
    if env_id in gym.envs.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.envs.registry), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise EnvError(f"unknown environment {env_id!r}{hint}")


# The MBPO paper's observations for Ant and Humanoid: contact forces (and, for Humanoid, the
# centre-of-mass inertia, velocity and actuator-force terms) removed; gymnasium v5 has a flag for each.
TRUNCATED_OBS: dict[str, dict[str, bool]] = {
    "Ant": {"include_cfrc_ext_in_observation": False},
    "Humanoid": {
        "include_cinert_in_observation": False,
        "include_cvel_in_observation": False,
        "include_qfrc_actuator_in_observation": False,
        "include_cfrc_ext_in_observation": False,
    },
}


def make_env(env_id: str, truncate_obs: bool = False) -> gym.Env:
    """Make a continuous-control env: flat Box observations and Box actions.

    `truncate_obs` gives Ant and Humanoid the paper's observations (`TRUNCATED_OBS`)."""
    check_env_id(env_id)
    kwargs = {}
    if truncate_obs:
        name = env_id.split("/")[-1].split("-v")[0]
        if name not in TRUNCATED_OBS or not env_id.endswith("-v5"):
            raise EnvError(f"truncate_obs applies to Ant-v5 and Humanoid-v5 only, not {env_id!r}")
        kwargs = TRUNCATED_OBS[name]
    # warnings while making (gymnasium's "out of date" for old ids) are shown only if it succeeds:
    # when it fails, the one error line says what matters
    with warnings.catch_warnings(record=True) as caught:
        try:
            env = gym.make(env_id, **kwargs)
        except gym.error.DependencyNotInstalled as exc:
            raise EnvError(f"environment {env_id!r} needs an extra dependency: {first_line(exc)}") from None
        except ImportError as exc:  # a registered id whose module needs a package that is not here
            raise EnvError(f"environment {env_id!r} cannot be made here: {first_line(exc)}") from None
        except Exception as exc:  # any registered constructor may fail in its own way
            raise EnvError(f"environment {env_id!r} cannot be made ({type(exc).__name__}: {first_line(exc)})") from None
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if not isinstance(env.action_space, gym.spaces.Box):
        env.close()
        raise EnvError(
            f"environment {env_id!r} has a {type(env.action_space).__name__} action space; SAC and MBPO need a continuous (Box) one"
        )
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env.close()
        raise EnvError(f"environment {env_id!r} needs a flat Box observation space, got {env.observation_space}")
    if not (np.isfinite(env.action_space.low).all() and np.isfinite(env.action_space.high).all()):
        env.close()
        raise EnvError(f"environment {env_id!r} has an unbounded action space; a squashed policy needs finite bounds")
    return env
