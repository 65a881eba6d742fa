"""The model a benchmark runs: a trained checkpoint, or an untrained default model labelled so."""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from edge_taaf import CONFIG_DIR
from quant.qmodel import QuantTwoModalitySNN, build_quant_model

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
        return model.eval(), cfg.data, f"checkpoint {checkpoint}"
    data = OmegaConf.load(CONFIGS / "data" / "fsdd_mnist.yaml")
    data.cochlea = OmegaConf.load(CONFIGS / "sensor" / "default.yaml").cochlea
    data.dvs = OmegaConf.load(CONFIGS / "sensor" / "default.yaml").dvs
    model_cfg = OmegaConf.to_container(OmegaConf.load(CONFIGS / "model" / "snn.yaml"), resolve=False)
    model_cfg["T"] = int(data.T)
    torch.manual_seed(0)
    model = QuantTwoModalitySNN(model_cfg, 8, (int(data.clip), int(data.clip_audio)))
    return model.eval(), data, "UNTRAINED default model (random weights): pass --checkpoint for the trained one"
