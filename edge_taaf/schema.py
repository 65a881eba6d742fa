"""The typed schemas of the training config groups (model, frontend, loss, trainer) and their registration.

Each YAML preset of a group names its schema first in its defaults list (``defaults: [base_trainer,
_self_]``); :func:`register_schemas` stores these and sensors/schema.py's (data, sensor) in Hydra's
ConfigStore. OmegaConf then checks every value's type and rejects unknown keys when the config is composed,
naming the full key: ``edge-taaf-train trainer.lr=abc`` fails with ``Value 'abc' ... full_key: trainer.lr``
before anything is built. Types and defaults live here, once (where a runtime dataclass exists, the neuron's,
the front-end's and the corruption's, the schema takes that class's default instead of writing it again);
ranges and cross-field rules live in edge_taaf/config.py (the training boundary's one checker).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import II, MISSING

from edge_taaf.corrupt import CorruptSettings
from edge_taaf.frontend import FrontEndConfig
from edge_taaf.neurons import LIFParams
from sensors.schema import SCHEMAS as SENSOR_SCHEMAS


# --- model group ------------------------------------------------------------------------------------------

@dataclass
class NeuronSchema:
    """The LIF neuron (edge_taaf/neurons.py): v <- v - (v >> leak_shift) + input; spike at theta."""
    leak_shift: int = LIFParams.leak_shift           # the defaults are the neuron's own (edge_taaf/neurons.py)
    theta: float = LIFParams.theta
    reset: str = LIFParams.reset
    surrogate: str = LIFParams.surrogate
    slope: float = LIFParams.slope


@dataclass
class VisionEncoderSchema:
    in_shape: Optional[List[int]] = II("data.vision_shape")   # (P, H, W) of the sensor
    channels: List[int] = field(default_factory=lambda: [12, 24, 16])
    kernels: List[int] = field(default_factory=lambda: [5, 3, 3])
    strides: List[int] = field(default_factory=lambda: [2, 2, 2])
    features: int = 64


@dataclass
class AudioEncoderSchema:
    in_channels: Optional[int] = II("data.audio_channels")
    hidden: List[int] = field(default_factory=lambda: [128])
    features: int = 64


@dataclass
class ModelSchema:
    """The two-modality SNN (edge_taaf/model_config.py parses it into frozen dataclasses)."""
    fusion: str = "taaf"
    modality_logits: Optional[bool] = None
    T: int = II("data.T")                     # data.T owns the step count
    modalities: List[str] = II("data.modalities")
    frontend: Any = II("frontend")
    n_classes: int = 10
    neuron: NeuronSchema = field(default_factory=NeuronSchema)
    vision: VisionEncoderSchema = field(default_factory=VisionEncoderSchema)
    audio: AudioEncoderSchema = field(default_factory=AudioEncoderSchema)
    warp_max_delay: int = 3
    score_hidden: int = 16


# --- frontend group ---------------------------------------------------------------------------------------

@dataclass
class FrontEndSideSchema:
    """One sensor's front-end (edge_taaf/frontend.py, firmware_sim/frontend.py)."""
    pool: List[int] = MISSING
    mode: str = FrontEndConfig.mode                  # the defaults are the front-end's own (edge_taaf/frontend.py)
    min_count: int = FrontEndConfig.min_count
    clip: Optional[int] = FrontEndConfig.clip
    refractory: int = FrontEndConfig.refractory
    leak_shift: int = FrontEndConfig.leak_shift
    gain_shift: int = FrontEndConfig.gain_shift


@dataclass
class FrontEndSchema:
    vision: FrontEndSideSchema = field(default_factory=lambda: FrontEndSideSchema(pool=[1, 1, 1]))
    audio: FrontEndSideSchema = field(default_factory=lambda: FrontEndSideSchema(pool=[1]))


# --- loss group: one schema per loss ----------------------------------------------------------------------

@dataclass
class CeLossSchema:
    name: str = "ce"


@dataclass
class OgmGeLossSchema:
    name: str = "ogm_ge"
    alpha: float = 0.5
    window: List[int] = field(default_factory=lambda: [0, 1000])


@dataclass
class TaafBalancedLossSchema:
    name: str = "taaf_balanced"
    lambda_unimodal: float = 0.5
    gamma: float = 1.0
    window: List[int] = field(default_factory=lambda: [0, 1000])
    step_ce: float = 1.0
    fused_ce: float = 0.0
    label_smoothing: float = 0.0


# --- trainer group ----------------------------------------------------------------------------------------

@dataclass
class CorruptSchema:
    """trainer.corrupt (edge_taaf/corrupt.py); a noise level is k x the sample's own event rate, or a range
    [k_min, k_max] drawn log-uniformly (hence Any: a number or a pair, checked in edge_taaf/config.py)."""
    silence_prob: float = CorruptSettings.silence_prob   # the defaults are the corruption's own (edge_taaf/corrupt.py)
    silence_audio_share: float = CorruptSettings.silence_audio_share
    noise_prob: float = CorruptSettings.noise_prob
    vision_noise: Any = CorruptSettings.vision_noise
    audio_noise: Any = CorruptSettings.audio_noise
    vision_noise_on_share: float = CorruptSettings.vision_noise_on_share
    shift_prob: float = CorruptSettings.shift_prob
    max_shift: int = CorruptSettings.max_shift
    crosstalk_prob: float = CorruptSettings.crosstalk_prob
    crosstalk_audio_share: float = CorruptSettings.crosstalk_audio_share


@dataclass
class TrainerSchema:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3.0e-3
    lr_min: float = 1.0e-4
    weight_decay: float = 0.0
    grad_clip: Optional[float] = 1.0
    device: str = "auto"
    progress: bool = True
    log_epochs: bool = True
    init_firing_rate: Optional[float] = 0.1
    save_rank_weights: bool = False
    augment_shift: int = 2
    spike_penalty: float = 0.0
    rate_targets: Dict[str, Any] = field(default_factory=dict)    # {vision: {conv0: 0.03}, ...}
    modal_balance: float = 0.0
    rate_penalty: float = 0.0
    corrupt: CorruptSchema = field(default_factory=CorruptSchema)


# --- hardware group: one schema per kind -----------------------------------------------------------------
# Types and keys only: every value is the preset's own (configs/hardware/*.yaml), and firmware_sim/hardware.py,
# which also reads these files without Hydra, checks the ranges (firmware_sim imports nothing of ours).

@dataclass
class ComponentHardwareSchema:
    """kind: component: every operation, memory word, register access and static power priced."""
    name: str = MISSING
    kind: str = MISSING
    note: str = MISSING
    energy_pj: Dict[str, float] = MISSING                # add8, add32, mult8, mult32 (pJ)
    sram_word_bits: int = MISSING
    sram_read_pj: Dict[int, float] = MISSING             # SRAM size (bytes) -> pJ per word read
    sram_write_factor: float = MISSING
    event_fifo_bytes: int = MISSING
    register_file: Dict[str, float] = MISSING           # bytes, pj_per_access
    dataflow: str = MISSING                              # scatter, gather or auto
    static_power_mw: float = MISSING
    clock_mhz: float = MISSING
    parallel: Dict[str, int] = MISSING                   # syn_units, neuron_units, mac_units
    sensor_frontend: Dict[str, Dict[str, Any]] = MISSING  # the rows both sides pay (firmware_sim/energy.py)


@dataclass
class OperationCountHardwareSchema:
    """kind: operation_count: a published energy per operation (per_op_pj) prices everything."""
    name: str = MISSING
    kind: str = MISSING
    note: str = MISSING
    per_op_pj: Dict[str, float] = MISSING               # synaptic_op, neuron_update, mac (pJ)
    static_power_mw: float = MISSING
    clock_mhz: float = MISSING
    parallel: Dict[str, int] = MISSING
    sensor_frontend: Dict[str, Dict[str, Any]] = MISSING


SCHEMAS = (*SENSOR_SCHEMAS, ("hardware", "base_hardware_component", ComponentHardwareSchema),
           ("hardware", "base_hardware_operation_count", OperationCountHardwareSchema), ("model", "base_model", ModelSchema), ("frontend", "base_frontend", FrontEndSchema),
           ("loss", "base_loss_ce", CeLossSchema), ("loss", "base_loss_ogm_ge", OgmGeLossSchema),
           ("loss", "base_loss_taaf_balanced", TaafBalancedLossSchema), ("trainer", "base_trainer", TrainerSchema))


def register_schemas() -> None:
    """Store every group schema in Hydra's ConfigStore (idempotent); the presets name them in their defaults."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group, name, node in SCHEMAS:
        store.store(group=group, name=name, node=node)
