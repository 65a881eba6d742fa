"""The sensor front-end in the model: the torch stage equals the accelerator's, the encoders read its shape, and
a setting the accelerator cannot run is a config error at training time."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edge_taaf.apps.options import check_training_options
from edge_taaf.apps.train import build_model, run_training
from edge_taaf.config import ConfigError
from edge_taaf.frontend import FrontEndConfig, SensorFrontEnd
from edge_taaf.model import TwoModalitySNN
from firmware_sim.frontend import FrontEnd
from tests.support.configs import TINY, compose_config
from tests.support.quant_models import tiny_model_cfg


def test_torch_frontend_equals_the_accelerator_on_random_settings():
    rng = np.random.default_rng(0)
    modes = set()
    for i in range(40):
        vision = i % 2 == 0
        shape, top = ((2, 8, 8), 1) if vision else ((12,), 8)
        pool = [int(rng.choice([1, 2])), *[int(rng.choice([1, 2, 4]))] * 2] if vision else [int(rng.choice([1, 2, 4]))]
        leak = int(rng.integers(1, 5))
        cfg = FrontEndConfig(tuple(pool), str(rng.choice(["count", "adaptive"])), int(rng.integers(1, 4)),
                             None if rng.random() < 0.3 else int(rng.integers(1, 5)), int(rng.integers(0, 4)),
                             leak, leak + int(rng.integers(0, 3)))
        modes.add((cfg.mode, cfg.refractory > 0, cfg.volume > 1))
        x = rng.integers(0, top + 1, (int(rng.integers(1, 10)), 3, *shape)) * (rng.random((1, 1, *shape)) < 0.5)
        ours = SensorFrontEnd(cfg)(torch.as_tensor(x, dtype=torch.float32))
        clip = cfg.clip if cfg.clip is not None else top * cfg.volume
        fe = FrontEnd(cfg.pool, cfg.mode, cfg.min_count, clip, cfg.refractory, cfg.leak_shift, cfg.gain_shift)
        assert np.array_equal(ours.numpy().astype(np.int64), fe.run(x)[0].astype(np.int64)), cfg
    assert len(modes) >= 6, modes


def test_the_encoders_read_the_frontend_shape():
    frontend = {"vision": {"pool": [2, 2, 2], "clip": 1}, "audio": {"pool": [4], "mode": "adaptive"}}
    model = TwoModalitySNN(tiny_model_cfg(frontend=frontend))
    assert model.config.vision.in_shape == (1, 17, 17) and model.config.audio.in_channels == 16
    out = model(torch.ones(4, 2, 2, 34, 34), torch.ones(4, 2, 64))
    assert out.logits.shape == (2, 10)


@pytest.mark.parametrize("frontend, fragments", [
    ({"vision": {"pool": [1, 3, 3]}}, ("model.frontend.vision.pool=[1, 3, 3]", "does not divide")),
    ({"vision": {"pool": [2, 2]}}, ("model.frontend.vision.pool=[2, 2]", "expected 3")),
    ({"audio": {"mode": "delta"}}, ("model.frontend.audio.mode='delta'",)),
    ({"audio": {"min_count": 0}}, ("model.frontend.audio.min_count=0",)),
    ({"audio": {"threshold": 2}}, ("model.frontend.audio", "unknown field(s) ['threshold']")),
])
def test_bad_frontend_settings_name_the_option(frontend, fragments):
    with pytest.raises(ValueError) as err:
        TwoModalitySNN(tiny_model_cfg(frontend=frontend))
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


@pytest.mark.parametrize("override, fragments", [
    ("frontend.vision.pool=[1,3,3]", ("model.frontend.vision.pool",)),
    ("frontend.audio.refractory=16", ("model.frontend.audio.refractory=16", "0..15")),
    ("frontend.audio.clip=256", ("model.frontend.audio.clip=256", "1..255")),
    ("frontend.audio.gain_shift=16", ("model.frontend.audio.gain_shift=16",)),
    ("frontend.vision.pool=[2,2,2]", ()),     # runs: the control
])
def test_settings_the_accelerator_cannot_run_fail_at_training_time(override, fragments):
    """When the config is checked, before anything is built, float training included (quant.weight_bits=null)."""
    cfg = compose_config("train", [*TINY, override])
    if not fragments:
        assert build_model(cfg, check_training_options(cfg)).config.vision.in_shape == (1, 17, 17)
        return
    with pytest.raises(ConfigError) as err:
        check_training_options(cfg)           # the apps' one check (edge_taaf/apps/options.py), before build_model
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_training_and_qat_with_a_sparse_frontend(tmp_path):
    """A float epoch (with the firing-rate init, which reads the front-end's output) then a QAT epoch."""
    sparse = ["frontend.vision.pool=[2,2,2]", "frontend.vision.clip=1", "frontend.audio.mode=adaptive",
              "frontend.audio.clip=1", "frontend.audio.pool=[2]", "trainer.epochs=1"]
    run_training(compose_config("train", [*TINY, *sparse]), tmp_path / "float")
    qat = compose_config("train", [*TINY, *sparse, "quant.weight_bits=8", f"init_from={tmp_path / 'float' / 'checkpoint.pt'}"])
    metrics = run_training(qat, tmp_path / "qat")
    assert 0.0 <= metrics["val_fused_acc"] <= 1.0 and (tmp_path / "qat" / "checkpoint.pt").is_file()
