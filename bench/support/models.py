"""The model a benchmark runs: a trained checkpoint, or an untrained default model labelled so."""
from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from edge_taaf import CONFIG_DIR
from quant.qmodel import build_quant_model
from sensors.schema import upgrade_data_config

CONFIGS = Path(CONFIG_DIR)


def load_model(checkpoint: str | None):
    """(quantized model, data config, label) from a checkpoint, or an untrained default model."""
    if checkpoint:
        from edge_taaf.checkpoint import load_checkpoint
        ckpt = load_checkpoint(checkpoint)
        cfg = OmegaConf.create(ckpt["config"])
        if not cfg.get("quant") or cfg.quant.get("weight_bits") is None:
            cfg.quant = {"weight_bits": 8}   # post-training quantization of a float run
        model = build_quant_model(cfg)
        model.load_init_state(ckpt["model"])
        return model.eval(), upgrade_data_config(cfg.data), f"checkpoint {checkpoint}"   # an older one: new options' defaults
    # the train app's composed config (data=fsdd_mnist, int8): every interpolation resolved as the apps resolve it
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["data=fsdd_mnist", "quant.weight_bits=8"])
    torch.manual_seed(0)
    model = build_quant_model(cfg)
    return model.eval(), cfg.data, "UNTRAINED default model (random weights): pass --checkpoint for the trained one"
