"""Shared fixtures: composed Hydra configs for tiny, fast runs."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import settings

from edge_taaf import CONFIG_DIR

# Real-data gating: fixture_data_root (tests/data), full_data_root and @pytest.mark.full_data
# (EDGE_TAAF_DATA; skipped without it, a failure under --require-data). See tests/support/data_gating.py.
pytest_plugins = ["tests.support.data_gating"]

# No per-example deadline: a loaded CI machine (or a first Numba compile) must not fail a property.
settings.register_profile("edge_taaf", deadline=None)
settings.load_profile("edge_taaf")

CONFIGS = Path(CONFIG_DIR)

# A model and data set small enough that an epoch takes well under a second on one CPU core.
TINY = [
    "data=synth", "data.n_train=60", "data.n_test=30", "data.T=6",
    "model.vision.channels=[4,4]", "model.vision.kernels=[5,3]", "model.vision.strides=[2,2]",
    "model.vision.features=16", "model.audio.hidden=[16]", "model.audio.features=16", "model.score_hidden=8",
    "trainer.epochs=3", "trainer.batch_size=16", "trainer.progress=false",
]


def compose_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


@pytest.fixture
def tiny_train_cfg(tmp_path):
    """A tiny synth training config whose data cache lives in tmp_path."""
    def make(*extra: str):
        return compose_config("train", [*TINY, f"data.cache_dir={tmp_path / 'cache'}", *extra])
    return make
