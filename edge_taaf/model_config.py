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
from sensors.options import MODALITIES, check_ints, check_modalities, check_number  # noqa: F401 (MODALITIES re-exported)

TAAF, CONCAT, TAAF_MODAL = "taaf", "concat", "taaf_modal"   # model.fusion (docs/taaf.md)
FUSIONS = (TAAF, CONCAT, TAAF_MODAL)
ATTENTION_FUSIONS = (TAAF, TAAF_MODAL)   # the fusions with TAAF attention (what loss=taaf_balanced reads)


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
            sensors["vision"] = check_ints("model.vision.in_shape", cfg["vision"]["in_shape"], length=3)
        if "audio" in modalities:
            sensors["audio"] = (check_number("model.audio.in_channels", cfg["audio"]["in_channels"], 1, integer=True),)
        for m, shape in sensors.items():
            frontends[m] = FrontEndConfig.parse(frontend_cfg.get(m), shape, f"model.frontend.{m}")
        if "vision" in modalities:
            vc = cfg["vision"]
            vision = VisionConfig(frontends["vision"].out_shape(sensors["vision"]),
                                  *(check_ints(f"model.vision.{k}", vc[k]) for k in ("channels", "kernels", "strides")),
                                  check_number("model.vision.features", vc["features"], 1, integer=True))
            if not len(vision.channels) == len(vision.kernels) == len(vision.strides):
                raise ValueError("model.vision: channels, kernels and strides must have the same length")
        if "audio" in modalities:
            ac = cfg["audio"]
            audio = AudioConfig(frontends["audio"].out_shape(sensors["audio"])[0],
                                check_ints("model.audio.hidden", ac["hidden"], allow_empty=True),
                                check_number("model.audio.features", ac["features"], 1, integer=True))
        delay = check_number("model.warp_max_delay", cfg["warp_max_delay"], 0, integer=True)
        return cls(fusion, check_number("model.T", cfg["T"], 1, integer=True), modalities,
                   check_number("model.n_classes", cfg["n_classes"], 1, integer=True),
                   LIFParams(**dict(cfg["neuron"])), vision, audio, delay,
                   check_number("model.score_hidden", cfg["score_hidden"], 1, integer=True), frontends, sensors,
                   parse_modality_logits(cfg.get("modality_logits"), fusion))


def parse_modality_logits(value, fusion: str) -> bool:
    """model.modality_logits: null (default: on for taaf_modal, off otherwise), true (taaf_modal only) or false."""
    if value is None:
        return fusion == TAAF_MODAL
    if not isinstance(value, bool):
        raise ValueError(f"model.modality_logits must be true, false or null, got {value!r}")
    if value and fusion != TAAF_MODAL:
        raise ValueError(f"model.modality_logits=true needs model.fusion=taaf_modal (only it has per-modality "
                         f"predictions), got model.fusion={fusion}")
    return value


def parse_modalities(names) -> tuple[str, ...]:
    """The sensors a model config uses (``modalities``, default both), in MODALITIES order."""
    return check_modalities("model.modalities", names)
