"""The apps' one option check: every range and cross-field rule of a composed config, run once, before any
data, model or cache folder is built.

Types and unknown keys were checked when Hydra composed the config (the schemas: sensors/schema.py,
edge_taaf/schema.py). What a type cannot say is checked here by each package's own checker, once per app
run: the data set's (sensors.data_options.parse_data_config), the training's (edge_taaf.config), the
accelerator's weight widths (firmware_sim.spec, through quant) and front-ends (quant.qmodel), and the
hardware config's (firmware_sim.hardware). Every error names the option; the apps print it as one line.
"""
from __future__ import annotations

import copy

from omegaconf import OmegaConf

from edge_taaf.config import ConfigError, TrainingOptions, check_select_on, check_train_config
from firmware_sim import spec
from firmware_sim.hardware import HardwareConfigError, hardware_from_dict
from firmware_sim.program import ContractError
from quant.qmodel import check_frontends
from sensors.data_options import parse_data_config
from sensors.options import check_number


def frozen(cfg, drop: tuple[str, ...] = (), **changes):
    """A read-only copy of a checked config, its schema types kept: what an app hands down (nothing below it
    can change an option). ``changes`` (dotted keys) are set first, ``drop`` (top-level keys) removed."""
    out = copy.deepcopy(cfg)
    OmegaConf.set_readonly(out, False)
    OmegaConf.set_struct(out, False)
    for key in drop:
        out.pop(key, None)
    for key, value in changes.items():
        OmegaConf.update(out, key, value, force_add=True)
    OmegaConf.set_struct(out, True)
    OmegaConf.set_readonly(out, True)
    return out


def weight_bits(cfg) -> int | None:
    """quant.weight_bits: None (float training) or one of the accelerator's weight widths (firmware_sim.spec)."""
    bits = cfg["quant"]["weight_bits"]
    if bits is None:
        return None
    check_number("quant.weight_bits", bits, spec.WEIGHT_BITS_MIN, spec.WEIGHT_BITS_MAX, integer=True)
    return int(bits)


def check_training_options(cfg) -> TrainingOptions:
    """A train config (edge-taaf-train, and the pipeline's training stages): data, quantization, training and
    the front-ends the accelerator must run; returns the config's parsed parts, for the training."""
    data = parse_data_config(cfg.data)
    weight_bits(cfg)
    options = check_train_config(cfg, data)
    try:
        check_frontends(cfg, options.model)      # the accelerator must run the front-end the network learns from
    except (ContractError, ValueError) as err:
        raise ConfigError(str(err)) from None
    return options


def check_pipeline_options(cfg) -> TrainingOptions:
    """A pipeline config (edge-taaf-pipeline, each LOSO fold, each sweep point): the training's options, the
    stage options and the hardware config the simulator prices with; returns the parsed training parts."""
    check_select_on(cfg)
    options = check_training_options(cfg)
    check_number("float_epochs", cfg.float_epochs, 1, integer=True)
    check_number("qat_epochs", cfg.qat_epochs, 1, integer=True)
    check_number("qat_lr", cfg.qat_lr, 0, low_open=True)
    try:
        hardware_from_dict(OmegaConf.to_container(cfg.hardware, resolve=True), "hardware")
    except HardwareConfigError as err:
        raise ConfigError(str(err)) from None
    return options
