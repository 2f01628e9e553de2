"""Environment creation: every id that cannot be used is an `EnvError` naming it and the cause."""

from __future__ import annotations

import gymnasium as gym
import pytest

from mbpo.envs import EnvError, make_env


class Broken(gym.Env):
    def __init__(self) -> None:
        raise RuntimeError("the simulator failed to start\nsecond line of detail")


@pytest.fixture
def broken_id():
    env_id = "MbpoTestBroken-v0"
    gym.register(env_id, entry_point=Broken)
    yield env_id
    del gym.envs.registry[env_id]


def test_a_constructor_that_fails_is_an_env_error_naming_the_env_and_cause(broken_id):
    with pytest.raises(EnvError) as info:
        make_env(broken_id)
    assert str(info.value) == (
        "environment 'MbpoTestBroken-v0' cannot be made (RuntimeError: the simulator failed to start)"
    )


def test_an_id_whose_module_is_missing_is_an_env_error(monkeypatch):
    gym.register("MbpoTestMissing-v0", entry_point="no_such_module_for_mbpo:Env")
    try:
        with pytest.raises(EnvError, match="environment 'MbpoTestMissing-v0' cannot be made here: No module named"):
            make_env("MbpoTestMissing-v0")
    finally:
        del gym.envs.registry["MbpoTestMissing-v0"]


def test_an_out_of_date_id_that_fails_shows_no_warning(recwarn):
    with pytest.raises(EnvError, match="'Hopper-v2' cannot be made here"):
        make_env("Hopper-v2")
    assert not [w for w in recwarn if "out of date" in str(w.message)]
