"""Config resolution: defaults < preset < explicit values; validation names the field."""

from __future__ import annotations

import pytest

from mbpo.config import PRESETS, ConfigError, MBPOConfig, SACConfig, build_config


def test_explicit_values_beat_the_preset_which_beats_defaults():
    cfg = build_config({"algo": "sac", "preset": "seed", "batch_size": 32})
    assert cfg.sac.batch_size == 32  # explicit
    assert cfg.sac.actor_hidden == (128,)  # preset
    assert cfg.sac.updates_per_step == SACConfig.updates_per_step  # default


def test_presets_are_per_algorithm():
    assert build_config({"algo": "sac", "preset": "seed"}).sac.updates_per_step == 1
    assert build_config({"algo": "mbpo", "preset": "seed"}).sac.updates_per_step == 10
    paper = build_config({"algo": "mbpo", "preset": "paper"})
    assert paper.mbpo == MBPOConfig() and paper.sac.updates_per_step == 20 and paper.sac.random_steps == 5000
    assert set(PRESETS["sac"]) >= {"default", "paper", "seed"} and set(PRESETS["mbpo"]) >= {"default", "paper", "seed"}


def test_resolved_config_has_the_mbpo_section_only_for_mbpo():
    assert "mbpo" not in build_config({"algo": "sac"}).to_dict()
    assert build_config({"algo": "mbpo"}).to_dict()["mbpo"]["ensemble_size"] == 5


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"preset": "nope"}, "unknown preset 'nope' for sac"),
        ({"algo": "ppo"}, "algo must be one of sac, mbpo"),
        ({"no_such_field": 1}, "unknown config field(s): no_such_field"),
        ({"algo": "mbpo", "num_elites": 9}, "num_elites must be in [1, ensemble_size=5]"),
        (
            {"algo": "mbpo", "rollout_batch_size": 1001},
            "rollout_batch_size must be a positive multiple of num_elites=4",
        ),
        ({"algo": "mbpo", "rollout_length": (1, 2)}, "rollout_length takes N or"),
        ({"algo": "mbpo", "rollout_length": (10, 5, 1, 3)}, "0 <= start_epoch <= end_epoch"),
        ({"algo": "mbpo", "model_hidden": (64,)}, "model_weight_decay needs one value per model layer (2), got 4"),
        ({"algo": "mbpo", "real_ratio": 1.5}, "real_ratio must be in [0, 1]"),
        ({"algo": "mbpo", "holdout_ratio": 0.0}, "holdout_ratio must be in (0, 1)"),
    ],
)
def test_invalid_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError) as info:
        build_config(overrides)
    assert message in str(info.value)
