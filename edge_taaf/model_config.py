"""The model config, parsed once into frozen dataclasses that the float and the quantized network share.

    config = ModelConfig.parse(cfg.model)      # a mapping (configs/model/*.yaml, resolved) or a ModelConfig

Every field is checked here, once; an error names the option (model.vision.channels, ...). Both
edge_taaf.model.TwoModalitySNN and its quantized form (quant.qmodel) are built from a ModelConfig, so a
change of architecture (one more conv layer, another width) is a change to the config alone.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edge_taaf.frontend import FrontEndConfig
from edge_taaf.neurons import LIFParams

FUSIONS = ("taaf", "concat", "taaf_modal")
MODALITIES = ("audio", "vision")


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Spatial size after a conv with padding kernel // 2."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


@dataclass(frozen=True)
class VisionConfig:
    """Strided spiking convs then one spiking dense layer. in_shape (P, H, W) as the front-end gives it (the
    sensor's shape is model.vision.in_shape); per conv: channels, kernel, stride."""

    in_shape: tuple[int, int, int]
    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    features: int

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) after each conv, input first."""
        c, h, w = self.in_shape
        shapes = [(c, h, w)]
        for c_out, k, s in zip(self.channels, self.kernels, self.strides):
            h, w = conv_out(h, k, s), conv_out(w, k, s)
            shapes.append((c_out, h, w))
        return shapes


@dataclass(frozen=True)
class AudioConfig:
    """A stack of spiking dense layers: in_channels (after the front-end) -> hidden... -> features."""

    in_channels: int
    hidden: tuple[int, ...]
    features: int


@dataclass(frozen=True)
class ModelConfig:
    fusion: str
    T: int
    modalities: tuple[str, ...]
    n_classes: int
    neuron: LIFParams
    vision: VisionConfig | None
    audio: AudioConfig | None
    warp_max_delay: int
    score_hidden: int
    frontends: Mapping[str, FrontEndConfig]      # modality -> its sensor front-end (edge_taaf.frontend)
    sensor_shapes: Mapping[str, tuple[int, ...]]  # modality -> the sensor's shape ((P, H, W) or (C,)), before it
    modality_logits: bool = False  # taaf_modal: the deployed graph also outputs each modality's own prediction

    @property
    def d_audio(self) -> int:
        """Features the audio encoder gives the fusion (0 without audio)."""
        return self.audio.features if self.audio is not None else 0

    @property
    def d_vision(self) -> int:
        return self.vision.features if self.vision is not None else 0

    @classmethod
    def parse(cls, cfg) -> "ModelConfig":
        """A ModelConfig from the model group's mapping; ValueError naming the option on a bad value."""
        if isinstance(cfg, ModelConfig):
            return cfg
        if not isinstance(cfg, Mapping) and not hasattr(cfg, "get"):
            raise ValueError(f"model config must be a mapping, got {type(cfg).__name__}")
        fusion = cfg["fusion"]
        if fusion not in FUSIONS:
            raise ValueError(f"model.fusion must be one of {FUSIONS}, got {fusion!r}")
        modalities = parse_modalities(cfg.get("modalities"))
        vision = audio = None
        frontend_cfg = cfg.get("frontend") or {}
        sensors, frontends = {}, {}
        if "vision" in modalities:
            sensors["vision"] = _ints(cfg["vision"]["in_shape"], "model.vision.in_shape", 3)
        if "audio" in modalities:
            sensors["audio"] = (_positive(cfg["audio"]["in_channels"], "model.audio.in_channels"),)
        for m, shape in sensors.items():
            frontends[m] = FrontEndConfig.parse(frontend_cfg.get(m), shape, f"model.frontend.{m}")
        if "vision" in modalities:
            vc = cfg["vision"]
            vision = VisionConfig(frontends["vision"].out_shape(sensors["vision"]), _ints(vc["channels"], "model.vision.channels"),
                                  _ints(vc["kernels"], "model.vision.kernels"), _ints(vc["strides"], "model.vision.strides"),
                                  _positive(vc["features"], "model.vision.features"))
            if not len(vision.channels) == len(vision.kernels) == len(vision.strides):
                raise ValueError("model.vision: channels, kernels and strides must have the same length")
        if "audio" in modalities:
            ac = cfg["audio"]
            audio = AudioConfig(frontends["audio"].out_shape(sensors["audio"])[0],
                                _ints(ac["hidden"], "model.audio.hidden", allow_empty=True),
                                _positive(ac["features"], "model.audio.features"))
        delay = cfg["warp_max_delay"]
        if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
            raise ValueError(f"model.warp_max_delay must be an integer >= 0, got {delay!r}")
        return cls(fusion, _positive(cfg["T"], "model.T"), modalities, _positive(cfg["n_classes"], "model.n_classes"),
                   LIFParams(**dict(cfg["neuron"])), vision, audio, delay,
                   _positive(cfg["score_hidden"], "model.score_hidden"), frontends, sensors,
                   parse_modality_logits(cfg.get("modality_logits"), fusion))


def parse_modality_logits(value, fusion: str) -> bool:
    """model.modality_logits: null (default: on for taaf_modal, off otherwise), true (taaf_modal only) or false."""
    if value is None:
        return fusion == "taaf_modal"
    if not isinstance(value, bool):
        raise ValueError(f"model.modality_logits must be true, false or null, got {value!r}")
    if value and fusion != "taaf_modal":
        raise ValueError(f"model.modality_logits=true needs model.fusion=taaf_modal (only it has per-modality "
                         f"predictions), got model.fusion={fusion}")
    return value


def parse_modalities(names) -> tuple[str, ...]:
    """The sensors a model config uses (``modalities``, default both), in MODALITIES order."""
    names = list(MODALITIES) if not names else names
    if isinstance(names, str) or not set(names) <= set(MODALITIES) or len(set(names)) != len(names):
        raise ValueError(f"model.modalities={names!r}; expected a non-empty list of distinct names from {MODALITIES}")
    return tuple(m for m in MODALITIES if m in names)


def _positive(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} must be an integer >= 1, got {value!r}")
    return value


def _ints(values, where: str, length: int | None = None, allow_empty: bool = False) -> tuple[int, ...]:
    if values is None or isinstance(values, (str, int)):
        raise ValueError(f"{where} must be a list of integers >= 1, got {values!r}")
    out = tuple(_positive(v, where) for v in values)
    if (not out and not allow_empty) or (length is not None and len(out) != length):
        raise ValueError(f"{where} must be a list of {length or 'one or more'} integers >= 1, got {list(values)!r}")
    return out
