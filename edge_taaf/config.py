"""Start-up checks of a training config: every error names the option and what was expected."""
from __future__ import annotations

from edge_taaf.losses import LOSSES
from edge_taaf.model import FUSIONS


class ConfigError(ValueError):
    """A config value is invalid; the message names the option."""


def check_train_config(cfg) -> None:
    fusion, loss = cfg.model.fusion, cfg.loss.name
    if fusion not in FUSIONS:
        raise ConfigError(f"model.fusion={fusion!r} is unknown; expected one of {FUSIONS}")
    if loss not in LOSSES:
        raise ConfigError(f"loss={loss!r} is unknown; expected one of {LOSSES}")
    if loss == "taaf_balanced" and fusion != "taaf":
        raise ConfigError("loss=taaf_balanced needs model.fusion=taaf (it reads TAAF's attention shares)")
    if int(cfg.model.T) != int(cfg.data.T):
        raise ConfigError(f"model.T={cfg.model.T} does not match the data's T (data.T={cfg.data.T}); set them equal")
    tr = cfg.trainer
    checks = [("trainer.lr", tr.lr, tr.lr > 0, "> 0"), ("trainer.lr_min", tr.lr_min, 0 <= tr.lr_min <= tr.lr, "in [0, trainer.lr]"),
              ("trainer.epochs", tr.epochs, tr.epochs >= 1, ">= 1"), ("trainer.batch_size", tr.batch_size, tr.batch_size >= 1, ">= 1"),
              ("trainer.weight_decay", tr.weight_decay, tr.weight_decay >= 0, ">= 0"),
              ("trainer.spike_penalty", tr.get("spike_penalty", 0.0), tr.get("spike_penalty", 0.0) >= 0, ">= 0"),
              ("trainer.device", tr.device, tr.device in ("auto", "cpu", "cuda"), "auto, cpu or cuda")]
    for name, value, ok, expected in checks:
        if not ok:
            raise ConfigError(f"{name}={value} is invalid; expected {expected}")
