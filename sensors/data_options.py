"""A data config parsed once: every range and cross-field rule of ``cfg.data`` checked without reading a
file, and the parsed parts (:class:`DataSettings`) that the builders (sensors/datasets.py,
sensors/tonic_pairs.py) take instead of checking the config again.

The schema (sensors/schema.py) checked the types and keys when Hydra composed the config; this module
checks what a type cannot say. The apps call :func:`parse_data_config` once (edge_taaf/apps/options.py)
and hand the DataSettings down; ``build_dataset(cfg, split)`` without settings (a test, a bench script)
parses the config itself. Every error is a DataConfigError (sensors/options.py's OptionError) naming the
option.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sensors.audio_augment import AudioAugmentParams
from sensors.cochlea import CochleaParams
from sensors.dvs_emulator import DVSParams
from sensors.image_augment import ImageAugmentParams
from sensors.options import check_number
from sensors.splits import SPLITS, DataConfigError, FsddSplit, vision_test_source
from sensors.synth import ModalityKnobs, SynthParams
from sensors.tonic_pairs import modality_sections, val_fraction

#: The builder families; a Tonic preset names its family in ``data.source``, the others in ``data.name``.
KINDS = ("synth", "fsdd_mnist", "tonic")
AUGMENT_KEYS = ("enabled", "copies", "seed", "audio", "vision")


def _check_common(cfg) -> tuple[int, int, int]:
    """(T, vision clip, audio clip) from the data config."""
    t, clip, clip_audio = int(cfg["T"]), int(cfg["clip"]), int(cfg["clip_audio"])
    if t < 1:
        raise DataConfigError(f"data.T must be >= 1, got {t}")
    for name, value in (("data.clip", clip), ("data.clip_audio", clip_audio)):
        if not 1 <= value <= 255:
            raise DataConfigError(f"{name} must lie in 1..255, got {value}")
    return t, clip, clip_audio


def synth_params(cfg) -> SynthParams:
    return SynthParams(
        vision=ModalityKnobs(**dict(cfg["vision"])),
        audio=ModalityKnobs(**dict(cfg["audio"])),
        n_channels=int(cfg["n_channels"]),
        window_us=int(cfg["window_us"]),
        active_us=int(cfg["active_us"]),
        jitter_us=int(cfg["jitter_us"]),
        pattern_seed=int(cfg["pattern_seed"]),
    )


@dataclass(frozen=True)
class AugmentSettings:
    """``data.augment`` of fsdd_mnist, checked.

    enabled: augment the train split. copies: augmented copies of the train split added to the
    originals (0 = none). seed: the augmentation seed; copy k of a clip (an MNIST digit) draws from
    ``default_rng([seed, k, 0, crc32(file name)])`` (``[seed, k, 1, MNIST row]``), so one (seed, clip)
    gives the same copy whatever split or file list it sits in. audio, vision: the transforms' settings.
    """

    enabled: bool = False
    copies: int = 0
    seed: int = 0
    audio: AudioAugmentParams = AudioAugmentParams()
    vision: ImageAugmentParams = ImageAugmentParams()


def _plain(value):
    """A config value (Hydra's DictConfig / ListConfig too) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def augment_settings(cfg, sample_rate: int) -> AugmentSettings:
    """``cfg.augment`` checked. Raises DataConfigError naming the option,
    e.g. ``data.augment.audio.speed=[1.2, 0.8]; expected min <= max``, for an unknown key or any value
    out of range, enabled or not."""
    section = _plain(cfg["augment"])
    if not isinstance(section, dict):
        raise DataConfigError(f"data.augment={section!r}; expected a mapping with keys {list(AUGMENT_KEYS)}")
    unknown = sorted(set(section) - set(AUGMENT_KEYS))
    if unknown:
        raise DataConfigError(f"data.augment.{unknown[0]} is unknown; expected one of {list(AUGMENT_KEYS)}")
    enabled = section["enabled"]
    if not isinstance(enabled, bool):
        raise DataConfigError(f"data.augment.enabled={enabled!r}; expected true or false")
    counts = {name: check_number(f"data.augment.{name}", section[name], 0, integer=True) for name in ("copies", "seed")}
    params = {}
    for name, cls in (("audio", AudioAugmentParams), ("vision", ImageAugmentParams)):
        sub = section[name]
        if sub is not None and not isinstance(sub, dict):
            raise DataConfigError(f"data.augment.{name}={sub!r}; expected a mapping of options")
        try:
            params[name] = cls.from_mapping(sub)
            if name == "audio":
                params[name].check_sample_rate(sample_rate)
        except ValueError as exc:
            raise DataConfigError(f"data.augment.{name}.{exc}") from None
    return AugmentSettings(enabled, counts["copies"], counts["seed"], **params)



@dataclass(frozen=True)
class DataSettings:
    """The parsed parts of a data config, by family: the step count and count limits of every family;
    synth's generator knobs; fsdd_mnist's augmentation, split rules, test-digit source and encoder
    parameters; a Tonic preset's sensor sections and validation share."""

    kind: str
    t_bins: int
    clip: int
    clip_audio: int
    synth: SynthParams | None = None
    augment: AugmentSettings | None = None
    split: FsddSplit | None = None
    vision_test_source: str | None = None
    cochlea: CochleaParams | None = None
    dvs: DVSParams | None = None
    step_us: int | None = None      # data.step_ms in microseconds; None: each clip binned over its own duration
    tonic_sections: Mapping | None = None
    val_fraction: float | None = None


def data_kind(cfg) -> str:
    """The builder family of a data config: data.source (tonic) or data.name."""
    kind = cfg.get("source") or cfg["name"]
    if kind not in KINDS:
        raise DataConfigError(f"data.name={cfg['name']!r} has no builder; expected one of {KINDS} "
                              "or a config with source: tonic")
    return kind


def parse_data_config(cfg) -> DataSettings:
    """Every range and cross-field rule of a data config (``cfg.data``), checked without reading a file or
    building anything, and its parsed parts. DataConfigError names the option."""
    kind = data_kind(cfg)
    t_bins, clip, clip_audio = _check_common(cfg)
    if kind == "synth":
        for split in SPLITS:
            check_number(f"data.n_{split}", cfg[f"n_{split}"], 1, integer=True)
        return DataSettings(kind, t_bins, clip, clip_audio, synth=synth_params(cfg))
    if kind == "fsdd_mnist":
        encoders = {}
        for section, params in (("cochlea", CochleaParams), ("dvs", DVSParams)):
            try:
                encoders[section] = params(**dict(cfg[section]))
            except (TypeError, ValueError) as exc:
                raise DataConfigError(f"data.{section}: {exc}") from None
        return DataSettings(kind, t_bins, clip, clip_audio, augment=augment_settings(cfg, int(cfg["sample_rate"])),
                            split=FsddSplit.from_config(cfg), vision_test_source=vision_test_source(cfg),
                            step_us=fixed_step_us(cfg["step_ms"], int(cfg["sample_rate"]), encoders["dvs"]), **encoders)
    return DataSettings(kind, t_bins, clip, clip_audio, tonic_sections=modality_sections(cfg),
                        val_fraction=val_fraction(cfg))


def fixed_step_us(step_ms, sample_rate: int, dvs: DVSParams) -> int | None:
    """``data.step_ms`` as whole microseconds (None: clip-normalised binning). A fixed step must be a step both
    sensors produce: a whole number of the DVS emulator's time steps (dvs.dt_us) and of audio samples at
    ``sample_rate``; anything else (zero, negative, a fraction of a sample) is a DataConfigError naming it."""
    if step_ms is None:
        return None
    step = check_number("data.step_ms", step_ms, 0, low_open=True)
    step_us = round(step * 1000)
    samples = step_us * sample_rate / 1e6
    if abs(step * 1000 - step_us) > 1e-9 or step_us % dvs.dt_us or samples != int(samples):
        raise DataConfigError(f"data.step_ms={step_ms!r}; expected a whole number of the DVS emulator's "
                              f"{dvs.dt_us} us steps (data.dvs.dt_us) and of audio samples at {sample_rate} Hz "
                              f"(e.g. {dvs.dt_us * 10 / 1000:g} ms)")
    return step_us


def step_key(settings: DataSettings) -> dict:
    """The fixed step in an encoded set's cache key; empty for clip-normalised binning, so the caches made
    before the option existed stay valid."""
    return {"step_us": settings.step_us} if settings.step_us else {}
