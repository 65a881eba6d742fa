"""What resume=true says and refuses: silence on a first run, the epoch on a real resume, and a
CheckpointError naming the mismatch when the run folder holds another architecture's checkpoint."""
from __future__ import annotations

import pytest

from edge_taaf.checkpoint import CheckpointError
from edge_taaf.apps.train import run_training


def test_a_first_run_says_nothing_about_resuming(tiny_train_cfg, tmp_path, capsys):
    run_training(tiny_train_cfg("trainer.epochs=1", "resume=true", "trainer.log_epochs=false"), tmp_path / "run")
    out = capsys.readouterr().out
    assert "resum" not in out and "does not exist" not in out


def test_a_resumed_run_names_the_epoch_it_continues_from(tiny_train_cfg, tmp_path, capsys):
    run = tmp_path / "run"
    run_training(tiny_train_cfg("trainer.epochs=1", "trainer.log_epochs=false"), run)
    capsys.readouterr()
    run_training(tiny_train_cfg("trainer.epochs=2", "resume=true", "trainer.log_epochs=false"), run)
    assert f"resuming from epoch 2 ({run / 'checkpoint.pt'})" in capsys.readouterr().out


def test_resuming_another_architecture_is_a_checkpoint_error(tiny_train_cfg, tmp_path):
    run = tmp_path / "run"
    run_training(tiny_train_cfg("trainer.epochs=1", "trainer.log_epochs=false"), run)
    before = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointError, match=r"another architecture or config.*shape mismatch "
                                              r"audio.layers.0.fc.weight: checkpoint \(16, 64\), model \(24, 64\)"):
        run_training(tiny_train_cfg("trainer.epochs=2", "resume=true", "model.audio.hidden=[24]"), run)
    with pytest.raises(CheckpointError, match=r"unexpected \['head_vision.bias'"):
        run_training(tiny_train_cfg("trainer.epochs=2", "resume=true", "model.modalities=[audio]"), run)
    assert (run / "checkpoint.pt").read_bytes() == before      # nothing overwritten
