"""Composed Hydra configs for tests: the config folder, a tiny fast model and data set, compose_config."""
from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from edge_taaf import CONFIG_DIR

CONFIGS = Path(CONFIG_DIR)

# A model and data set small enough that an epoch takes well under a second on one CPU core.
# trainer=default: the pipeline's own default (trainer=sparse) targets the layers of the full model.
TINY = [
    "data=synth", "trainer=default", "data.n_train=60", "data.n_test=30", "data.T=6",
    "model.vision.channels=[4,4]", "model.vision.kernels=[5,3]", "model.vision.strides=[2,2]",
    "model.vision.features=16", "model.audio.hidden=[16]", "model.audio.features=16", "model.score_hidden=8",
    "trainer.epochs=3", "trainer.batch_size=16", "trainer.progress=false",
]


def compose_config(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def composition_error(name: str, overrides: list[str]) -> str:
    """The text of the error Hydra raises while composing ``name`` with ``overrides`` (the schema's type and
    unknown-key checks: edge_taaf/schema.py, sensors/schema.py), causes included; fails when it composes."""
    from hydra.errors import ConfigCompositionException

    try:
        compose_config(name, overrides)
    except ConfigCompositionException as exc:
        texts, cause = [str(exc)], exc.__cause__
        while cause is not None:
            texts.append(str(cause))
            cause = cause.__cause__
        return "\n".join(texts)
    raise AssertionError(f"{name} composed with {overrides}; expected a schema error")
