"""configs/experiment/robust.yaml (issue #14's recipe, docs/robustness.md): it composes for the pipeline and the
leave-one-speaker-out study alike, holds what the docs say it holds, and passes the training config checks."""
from __future__ import annotations

import pytest

from edge_taaf.config import check_train_config, corrupt_settings
from edge_taaf.losses import build_loss
from edge_taaf.model import TwoModalitySNN
from tests.support.configs import compose_config


@pytest.mark.parametrize("app", ["pipeline", "loso"])
def test_the_robust_recipe_composes_and_passes_the_checks(app):
    cfg = compose_config(app, ["+experiment=robust"])
    assert cfg.data.name == "fsdd_mnist" and cfg.data.T == 16 and cfg.model.T == 16
    assert cfg.model.fusion == "taaf_modal" and cfg.trainer.modal_balance > 0
    assert cfg.data.augment.enabled and cfg.data.augment.copies == 2
    assert cfg.data.cochlea.channel_norm == "per_channel"      # interpolated from sensor.cochlea
    corrupt = corrupt_settings(cfg)
    assert corrupt.silence_prob > 0 and corrupt.noise_prob > 0 and corrupt.shift_prob > 0
    assert (cfg.float_epochs, cfg.qat_epochs) == (20, 3)
    assert (cfg.loss.step_ce, cfg.loss.fused_ce) == (0, 1)
    assert list(cfg.loss.window) == [0, 0]        # the paper's learning-rate modulation off (docs/robustness.md)
    assert list(cfg.model.vision.channels) == [24, 48, 16]   # wider vision convolutions (round 4)
    assert TwoModalitySNN(cfg.model).weight_count() <= 64 * 1024   # the 64 KiB weight budget at int8 (configs/model)
    check_train_config(cfg)
    objective = build_loss(cfg.loss)
    assert objective.lr_coefficients({"score_audio": 0.2, "score_vision": 0.9}, 0) == {"audio": 1.0, "vision": 1.0}


def test_the_recipe_leaves_the_split_to_the_command_line():
    cfg = compose_config("pipeline", ["+experiment=robust", "data.split=speaker", "seed=1"])
    assert cfg.data.split == "speaker" and cfg.seed == 1 and cfg.model.fusion == "taaf_modal"
