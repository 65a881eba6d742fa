"""The typed schemas of the ``data`` and ``sensor`` config groups: one dataclass per preset family.

Each YAML preset under configs/data/ and configs/sensor/ names its schema first in its defaults list
(``defaults: [base_data_fsdd_mnist, _self_]``); edge_taaf.schema registers them in Hydra's ConfigStore.
OmegaConf then checks every value's type and rejects unknown keys when the config is composed, naming the
full key (``data.T``). The types and defaults live here, once; ranges and cross-field rules live in
sensors/options.py. Plain dataclasses: sensors imports neither Hydra nor torch.

Units: time in microseconds (``*_us``) or seconds (``tau``, ``refractory``), frequencies in Hz, levels in dB.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import II, MISSING

from sensors.cochlea import CochleaParams
from sensors.dvs_emulator import DVSParams

DATA_CACHE = II("oc.env:EDGE_TAAF_CACHE,${oc.env:HOME}/.cache/edge_taaf")
DATA_ROOT = II("oc.env:EDGE_TAAF_DATA,null")


# --- sensor group: the cochlea (audio -> spikes) and the DVS emulator (image -> events) ---------------------

@dataclass
class CochleaSchema:
    """Gammatone filterbank + LIF (sensors/cochlea.py); the defaults are CochleaParams' own."""
    n_channels: int = CochleaParams.n_channels
    f_min: float = CochleaParams.f_min             # Hz
    f_max: float = CochleaParams.f_max            # Hz
    spacing: str = CochleaParams.spacing
    normalize: bool = CochleaParams.normalize
    gain: float = CochleaParams.gain
    compression: str = CochleaParams.compression
    exponent: float = CochleaParams.exponent
    threshold: float = CochleaParams.threshold
    tau: float = CochleaParams.tau               # s
    refractory: float = CochleaParams.refractory        # s
    channel_norm: str = CochleaParams.channel_norm
    channel_level: float = CochleaParams.channel_level
    channel_floor_db: float = CochleaParams.channel_floor_db  # dB


@dataclass
class DvsSchema:
    """The DVS emulator and its saccades (sensors/dvs_emulator.py); the defaults are DVSParams' own."""
    theta_on: float = DVSParams.theta_on
    theta_off: float = DVSParams.theta_off
    mismatch_sigma: float = DVSParams.mismatch_sigma
    refractory_us: int = DVSParams.refractory_us
    noise_rate_hz: float = DVSParams.noise_rate_hz
    noise_on_fraction: float = DVSParams.noise_on_fraction
    eps: float = DVSParams.eps
    dt_us: int = DVSParams.dt_us
    interpolate_time: bool = DVSParams.interpolate_time
    saccade_us: int = DVSParams.saccade_us
    saccade_vertices_px: List[List[float]] = field(default_factory=lambda: [list(v) for v in DVSParams.saccade_vertices_px])
    saccade_profile: str = DVSParams.saccade_profile
    origin_px: List[float] = field(default_factory=lambda: list(DVSParams.origin_px))
    canvas_size: List[int] = field(default_factory=lambda: list(DVSParams.canvas_size))
    seed: int = DVSParams.seed


@dataclass
class SensorSchema:
    cochlea: CochleaSchema = field(default_factory=CochleaSchema)
    dvs: DvsSchema = field(default_factory=DvsSchema)


# --- data group -------------------------------------------------------------------------------------------

@dataclass
class AudioAugmentSchema:
    """Waveform augmentation of the train split's copies (sensors/audio_augment.py); ranges are [low, high]."""
    speed: List[float] = field(default_factory=lambda: [0.9, 1.1])
    speed_prob: float = 1.0
    vtlp: List[float] = field(default_factory=lambda: [0.9, 1.1])
    vtlp_prob: float = 1.0
    vtlp_boundary_hz: float = 3200.0
    gain_db: List[float] = field(default_factory=lambda: [-6.0, 6.0])
    gain_prob: float = 1.0
    snr_db: List[float] = field(default_factory=lambda: [5.0, 30.0])
    noise_prob: float = 0.5
    noise_kinds: List[str] = field(default_factory=lambda: ["white", "pink", "babble"])
    babble_talkers: int = 4
    rt60_s: List[float] = field(default_factory=lambda: [0.1, 0.6])
    drr_db: List[float] = field(default_factory=lambda: [0.0, 10.0])
    reverb_prob: float = 0.3


@dataclass
class VisionAugmentSchema:
    """Digit-image augmentation of the train split's copies (sensors/image_augment.py)."""
    scale: List[float] = field(default_factory=lambda: [0.9, 1.1])
    scale_prob: float = 1.0
    rotation_deg: List[float] = field(default_factory=lambda: [-15.0, 15.0])
    rotation_prob: float = 1.0
    translate_px: List[float] = field(default_factory=lambda: [-2.0, 2.0])
    translate_prob: float = 1.0
    thickness_px: List[float] = field(default_factory=lambda: [-0.5, 1.0])
    thickness_prob: float = 0.5
    blur_sigma_px: List[float] = field(default_factory=lambda: [0.0, 0.8])
    blur_prob: float = 0.3


@dataclass
class AugmentSchema:
    enabled: bool = False
    copies: int = 2
    seed: int = 0
    audio: AudioAugmentSchema = field(default_factory=AudioAugmentSchema)
    vision: VisionAugmentSchema = field(default_factory=VisionAugmentSchema)


@dataclass
class StreamSchema:
    """data.stream: how a split's always-on streams are made (sensors/streams.py); used with data.step_ms."""
    duration_s: float = 60.0                 # each stream's length, s
    gap_s: List[float] = field(default_factory=lambda: [0.5, 2.5])    # idle before each utterance, s (uniform)
    snr_db: Optional[float] = 20.0           # noise floor under the whole stream vs the utterances' power; null: none
    noise: str = "pink"                      # white | pink
    jitter_ms: List[float] = field(default_factory=lambda: [-50.0, 50.0])   # the digit's start vs the word's, ms
    dvs_background: float = 1.0              # x the real N-MNIST recording's background (sensors/dvs_background.json)
    seed: int = 0


@dataclass
class FsddMnistSchema:
    """data=fsdd_mnist: FSDD spoken digits paired with DVS-emulated MNIST digits of the same class."""
    name: str = "fsdd_mnist"
    root: Optional[str] = DATA_ROOT
    T: int = 16
    modalities: List[str] = field(default_factory=lambda: ["audio", "vision"])
    vision_shape: List[int] = field(default_factory=lambda: [2, 34, 34])
    audio_channels: int = II(".cochlea.n_channels")
    clip: int = 1
    clip_audio: int = 8
    step_ms: Optional[float] = None     # null: each clip (saccade sequence) binned over its own duration into T
                                        # bins; a number: a fixed real-time step, T bins of step_ms from the start
    split: str = "official"
    test_speakers: List[str] = field(default_factory=lambda: ["lucas", "george"])
    val_speakers: List[str] = field(default_factory=lambda: ["nicolas"])
    val_takes: List[int] = field(default_factory=lambda: [5, 6, 7, 8, 9])
    mnist_test_per_class: int = 100
    mnist_val_per_class: int = 50
    vision_test_source: str = "mnist5k"
    mnist_test_root: Optional[str] = None
    pair_seed: int = 0
    repair_each_epoch: bool = True
    sample_rate: int = 8000
    cache_dir: str = DATA_CACHE
    cochlea: CochleaSchema = II("sensor.cochlea")
    dvs: DvsSchema = II("sensor.dvs")
    augment: AugmentSchema = field(default_factory=AugmentSchema)
    stream: StreamSchema = field(default_factory=StreamSchema)


@dataclass
class SynthStreamSchema:
    """One sensor of the SYNTHETIC set: the share of class-informative spikes and the rates."""
    informative: float = 0.95
    rate_hz: float = 200.0
    noise_hz: float = 0.5


@dataclass
class SynthSchema:
    """data=synth: the embedded SYNTHETIC paired streams (sensors/synth.py)."""
    name: str = "synth"
    T: int = 16
    modalities: List[str] = field(default_factory=lambda: ["audio", "vision"])
    vision_shape: List[int] = field(default_factory=lambda: [2, 34, 34])
    audio_channels: int = II(".n_channels")
    clip: int = 1
    clip_audio: int = 1
    n_train: int = 2000
    n_test: int = 500
    n_val: int = II(".n_test")
    n_channels: int = 64
    window_us: int = 300_000
    active_us: int = 150_000
    jitter_us: int = 0
    pattern_seed: int = 1234
    vision: SynthStreamSchema = field(default_factory=SynthStreamSchema)
    audio: SynthStreamSchema = field(default_factory=lambda: SynthStreamSchema(0.95, 400.0, 2.0))
    cache_dir: str = DATA_CACHE


@dataclass
class TonicSourceSchema:
    """One sensor read from a Tonic data set in data.root (sensors/tonic_datasets.py)."""
    dataset: str = MISSING
    sensor_size: List[int] = MISSING
    window_us: Optional[int] = None
    max_per_class: Optional[int] = None
    options: Dict[str, Any] = field(default_factory=dict)
    classes: List[Optional[int]] = MISSING   # Tonic target -> class; null drops the target


@dataclass
class TonicSchema:
    """data=nmnist, dvsgesture, shd, ntidigits18 and their pairs: one or two sensors from Tonic data sets."""
    name: str = MISSING
    source: str = "tonic"
    root: Optional[str] = DATA_ROOT
    modalities: List[str] = MISSING
    vision_shape: Optional[List[int]] = None
    audio_channels: Optional[int] = None
    T: int = 16
    clip: int = 1
    clip_audio: int = II(".clip")
    n_classes: int = 10
    pair_seed: int = 0
    repair_each_epoch: bool = False     # a pair preset: a new same-class pairing of the sensors every epoch
    val_fraction: float = 0.1
    vision: Optional[TonicSourceSchema] = None
    audio: Optional[TonicSourceSchema] = None
    cache_dir: str = DATA_CACHE


#: (group, name, schema) of every schema here; edge_taaf.schema registers them with Hydra's ConfigStore.
SCHEMAS = (("data", "base_data_fsdd_mnist", FsddMnistSchema), ("data", "base_data_synth", SynthSchema),
           ("data", "base_data_tonic", TonicSchema), ("data/tonic", "base_tonic_source", TonicSourceSchema),
           ("sensor", "base_sensor", SensorSchema))


def upgrade_data_config(data):
    """A data section written by an older version (a checkpoint's or a run folder's config) merged onto its
    schema: options added since take their defaults from the schema, an option that no longer exists is an
    error naming it. Returns a typed DictConfig (plain values resolved)."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(data, resolve=True) if OmegaConf.is_config(data) else dict(data)
    kind = plain.get("source") or plain.get("name")
    schema = {"fsdd_mnist": FsddMnistSchema, "synth": SynthSchema, "tonic": TonicSchema}.get(kind)
    if schema is None:
        raise ValueError(f"data.name={plain.get('name')!r}: no schema to read this data config with")
    concrete = {"cochlea": CochleaSchema(), "dvs": DvsSchema()} if schema is FsddMnistSchema else {}
    base = OmegaConf.structured(schema(**concrete))            # no reference to a sensor group outside it
    return OmegaConf.merge(base, plain)
