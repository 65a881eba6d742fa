"""Tiny quantized models with random weights, and random spike inputs, for the quant/ and simulator tests."""
from __future__ import annotations

import dataclasses
import math

import torch
from omegaconf import OmegaConf

from edge_taaf.frontend import FrontEndConfig
from quant.qmodel import QuantTwoModalitySNN
from tests.support.configs import CONFIGS, TINY, compose_config


SENSOR_AXES = {"vision": 3, "audio": 1}    # (P, H, W) and (C,)


def full_frontend(frontend: dict | None) -> dict | None:
    """A test's partial model.frontend mapping completed as the frontend schema completes a preset: every
    field a section leaves out takes FrontEndConfig's default (the identity pool for a missing pool)."""
    if frontend is None:
        return None
    defaults = {f.name: f.default for f in dataclasses.fields(FrontEndConfig) if f.name != "pool"}
    return {m: {"pool": [1] * SENSOR_AXES[m], **defaults, **section} for m, section in frontend.items()}


def tiny_model_cfg(**changes) -> dict:
    cfg = OmegaConf.to_container(compose_config("train", TINY).model, resolve=True)
    if "frontend" in changes:
        changes["frontend"] = full_frontend(changes["frontend"])
    cfg.update(changes)
    return cfg


def random_quant_model(seed: int, bits: int = 8, input_max=(1, 8), sigma: float = 0.4, **changes) -> QuantTwoModalitySNN:
    """A tiny quantized model with random float weights (std ``sigma`` x 1 / sqrt(fan-in) x 4) and biases."""
    torch.manual_seed(seed)
    model = QuantTwoModalitySNN(tiny_model_cfg(**changes), bits, input_max)
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn_like(p) * sigma * 4 / math.sqrt(fan_in))
    return model


def random_spikes(seed: int, T: int, B: int, input_max=(1, 8), density=0.15):
    g = torch.Generator().manual_seed(seed)
    v = (torch.rand(T, B, 2, 34, 34, generator=g) < density).float() * torch.randint(1, input_max[0] + 1, (T, B, 2, 34, 34), generator=g)
    a = (torch.rand(T, B, 64, generator=g) < 2 * density).float() * torch.randint(1, input_max[1] + 1, (T, B, 64), generator=g)
    return v, a


def tiny_model(fusion: str, bits: int, scale: float, seed: int, T: int = 8, frontend: dict | None = None,
               modalities=("audio", "vision"), modality_logits: bool | None = None,
               warp_max_delay: int | None = None, leak_shift: int | None = None) -> QuantTwoModalitySNN:
    """A tiny quantized model of configs/model/snn.yaml (vision 2x34x34, audio 64; both sensors unless
    ``modalities`` says otherwise) in eval mode: scale > 0 multiplies the random conv/dense weights, scale < 0
    makes them all negative; frontend: the model.frontend mapping (None: the identity); modality_logits:
    model.modality_logits (taaf_modal); warp_max_delay, leak_shift: model.warp_max_delay and
    model.neuron.leak_shift (None: the config's)."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONFIGS / "model" / "snn.yaml"), resolve=False)
    if warp_max_delay is not None:
        cfg["warp_max_delay"] = warp_max_delay
    if leak_shift is not None:
        cfg["neuron"]["leak_shift"] = leak_shift
    cfg.update(T=T, fusion=fusion, score_hidden=8, modalities=list(modalities), frontend=full_frontend(frontend),
               modality_logits=modality_logits)
    cfg["vision"].update(in_shape=[2, 34, 34], channels=[4, 6], kernels=[5, 3], strides=[2, 2], features=16)
    cfg["audio"].update(in_channels=64, hidden=[16], features=12)
    torch.manual_seed(seed)
    model = QuantTwoModalitySNN(cfg, bits, (1, 8))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ("vision" in name or "audio" in name) and p.dim() > 1:
                p.copy_(p * scale if scale > 0 else p.abs() * scale)   # scale < 0: all-negative weights
            if "warp" in name:
                p.add_(torch.randn_like(p) * 0.3)
    return model.eval()
