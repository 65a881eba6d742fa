"""edge-taaf-train: train the two-modality spiking network, float or quantization-aware (Hydra app).

    edge-taaf-train data=fsdd_mnist model.fusion=taaf loss=taaf_balanced trainer.epochs=20
    edge-taaf-train data=fsdd_mnist quant.weight_bits=8 init_from=<float checkpoint.pt> trainer.epochs=3
    torchrun --nproc_per_node=2 -m edge_taaf.apps.train data=synth

This app is the one place that knows both the float model (edge_taaf.model) and its quantized form
(quant.qmodel): it builds the one the config asks for and hands it to the training loop
(edge_taaf.train.train), which writes checkpoint.pt, metrics.jsonl and the plots into the run folder.
"""
from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig
from torch import nn

from edge_taaf import CONFIG_DIR
from edge_taaf.checkpoint import CheckpointError
from edge_taaf.apps.options import check_training_options, frozen, weight_bits
from edge_taaf.config import ConfigError, TrainingOptions
from edge_taaf.model import TwoModalitySNN
from edge_taaf.train import TrainingDiverged, seed_everything, train
from quant.qmodel import build_quant_model


def build_model(cfg, options: TrainingOptions) -> nn.Module:
    """The float TwoModalitySNN, or its quantization-aware form (quant/) when the config sets a weight
    width, both from the parsed ``options.model``; weights drawn after seeding with cfg.seed."""
    seed_everything(cfg.seed)
    if weight_bits(cfg) is not None:
        return build_quant_model(cfg, options.model)
    return TwoModalitySNN(options.model)


def run_training(cfg: DictConfig, run_dir: str | Path, hooks: dict | None = None) -> dict:
    """Check every option (before anything is built), then :func:`train_model`; the last epoch's metrics."""
    options = check_training_options(cfg)
    return train_model(frozen(cfg), run_dir, options, hooks)


def train_model(cfg: DictConfig, run_dir: str | Path, options: TrainingOptions, hooks: dict | None = None) -> dict:
    """Build the model a checked config asks for (its parsed ``options``) and train it in ``run_dir``; the last
    epoch's metrics."""
    return train(cfg, Path(run_dir), build_model(cfg, options), options, hooks)


# CONFIG_DIR is an absolute path (the shipped edge_taaf.configs package): a relative one would be read
# relative to the console script, not to this module.
@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    try:
        run_training(cfg, run_dir)
    except (ConfigError, CheckpointError, TrainingDiverged) as exc:
        raise SystemExit(f"edge-taaf-train: {exc}") from None


if __name__ == "__main__":
    main()
