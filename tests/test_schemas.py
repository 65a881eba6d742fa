"""Every preset of every typed config group composes onto its schema, and the schema refuses what it must."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from edge_taaf import CONFIG_DIR
from edge_taaf.schema import SCHEMAS
from tests.support.configs import compose_config, composition_error

TYPED_GROUPS = ("data", "sensor", "model", "frontend", "loss", "trainer", "hardware")
PRESETS = [(group, path.stem) for group in TYPED_GROUPS for path in sorted((Path(CONFIG_DIR) / group).glob("*.yaml"))]


def test_every_typed_group_has_presets_and_a_registered_schema():
    assert {group for group, _ in PRESETS} == set(TYPED_GROUPS)
    assert {group for group, _, _ in SCHEMAS} >= set(TYPED_GROUPS)


@pytest.mark.parametrize("group, preset", PRESETS)
def test_every_preset_composes_onto_its_schema(group, preset):
    node = compose_config("pipeline", [f"{group}={preset}"])[group]
    schema = OmegaConf.get_type(node)
    assert dataclasses.is_dataclass(schema) and schema in {s for _, _, s in SCHEMAS}, (group, preset, schema)
    with pytest.raises(ConfigAttributeError):      # a key the schema lacks cannot be set
        node.no_such_key = 1


@pytest.mark.parametrize("override, key", [
    ("hardware.clock_mhz=fast", "hardware.clock_mhz"),
    ("hardware.no_such_key=1", "hardware.no_such_key"),
    ("sensor.cochlea.n_channels=many", "sensor.cochlea.n_channels"),
    ("model.vision.channels=[a,b]", "model.vision.channels[0]"),
    ("frontend.vision.clip=x", "frontend.vision.clip"),
])
def test_a_wrong_type_or_unknown_key_fails_at_composition_naming_the_key(override, key):
    assert f"full_key: {key}" in composition_error("pipeline", [override])


def test_an_older_data_config_reads_with_the_options_added_since_at_their_defaults():
    from sensors.schema import upgrade_data_config

    old = OmegaConf.to_container(compose_config("data_app", ["data=fsdd_mnist", "sensor.cochlea.n_channels=32"]).data,
                                 resolve=True)
    for added in ("step_ms", "stream"):
        old.pop(added)
    upgraded = upgrade_data_config(old)
    assert upgraded.step_ms is None and upgraded.stream.duration_s == 60.0
    assert upgraded.cochlea.n_channels == 32 and upgraded.audio_channels == 32       # the old values kept
    with pytest.raises(ConfigKeyError, match="gone"):
        upgrade_data_config({**old, "gone": 1})                                      # an option that no longer exists
