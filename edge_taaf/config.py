"""Start-up checks of a training config, which parse it once: every error names the option and what was
expected; the parsed model and corruption settings go down to the training (edge_taaf/apps/options.py)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from omegaconf import OmegaConf

from edge_taaf.corrupt import CorruptSettings
from edge_taaf.losses import LOSSES, check_fused_weights, check_label_smoothing, check_window
from edge_taaf.model import FUSIONS, model_modalities
from edge_taaf.model_config import ATTENTION_FUSIONS, TAAF_MODAL, ModelConfig, parse_modality_logits
from sensors.data_options import DataSettings, parse_data_config
from sensors.options import OptionError, check_choice, check_number


# The one error class of an invalid option in sensors, edge_taaf and quant (sensors/options.py).
ConfigError = OptionError


DEVICES = ("auto", "cpu", "cuda")   # trainer.device: auto picks cuda when torch sees a GPU
SELECT_ON = "val"   # the split every choice is made on (docs/evaluation.md); the test split only reports


def check_select_on(cfg) -> str:
    """The config's ``select_on``: only "val". Anything else, e.g. ``select_on=test``, is a ConfigError naming
    the option: choices (recipes, sizes, Pareto points, thresholds, hyperparameters) are made on validation data,
    and the test split is read once per reported number. The apps call this before building any data."""
    value = cfg.select_on
    if value != SELECT_ON:
        raise ConfigError(f"select_on={value!r}: choices are made on the validation split; expected {SELECT_ON!r} "
                          "(the test split is read once per reported number, never to choose)")
    return value


@dataclass(frozen=True)
class TrainingOptions:
    """A training config's parts parsed once, at the app's boundary, and handed down: the model (both the float
    network and its quantized form are built from it), the sensor corruption of training batches and the data
    set's parsed settings (sensors/data_options.py)."""
    model: ModelConfig
    corruption: CorruptSettings
    data: DataSettings


def check_train_config(cfg, data: DataSettings | None = None) -> TrainingOptions:
    """The training's ranges and cross-field rules (model, loss, trainer, the data's sensors); the apps run it
    once per config (edge_taaf/apps/options.py), with the data's and the accelerator's checks, and pass the
    parsed TrainingOptions down."""
    fusion, loss = cfg.model.fusion, cfg.loss.name
    if fusion not in FUSIONS:
        raise ConfigError(f"model.fusion={fusion!r} is unknown; expected one of {FUSIONS}")
    if loss not in LOSSES:
        raise ConfigError(f"loss={loss!r} is unknown; expected one of {LOSSES}")
    if loss == "taaf_balanced" and fusion not in ATTENTION_FUSIONS:
        raise ConfigError("loss=taaf_balanced needs model.fusion=taaf or taaf_modal (it reads TAAF's attention shares)")
    try:
        if loss == "taaf_balanced":
            check_fused_weights(cfg.loss.step_ce, cfg.loss.fused_ce)
            check_label_smoothing(cfg.loss.label_smoothing)
        if loss in ("taaf_balanced", "ogm_ge"):
            check_window(cfg.loss.window)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        parse_modality_logits(cfg.model.modality_logits, fusion)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        wanted = model_modalities(cfg.model)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    held = list(cfg.data.modalities)
    if held and not set(wanted) <= set(held):
        raise ConfigError(f"model.modalities={list(wanted)} but data={cfg.data.name} holds only {held}")
    if int(cfg.model.T) != int(cfg.data.T):
        raise ConfigError(f"model.T={cfg.model.T} does not match the data's T (data.T={cfg.data.T}); set them equal")
    tr = cfg.trainer
    check_number("trainer.lr", tr.lr, 0, low_open=True)
    check_number("trainer.lr_min", tr.lr_min, 0, tr.lr)
    check_number("trainer.epochs", tr.epochs, 1, integer=True)
    check_number("trainer.batch_size", tr.batch_size, 1, integer=True)
    for name in ("weight_decay", "spike_penalty", "rate_penalty", "modal_balance"):
        check_number(f"trainer.{name}", tr[name], 0)
    check_choice("trainer.device", tr.device, DEVICES)
    if tr.modal_balance and (fusion != TAAF_MODAL or len(wanted) < 2):
        raise ConfigError(f"trainer.modal_balance={tr.modal_balance} balances taaf_modal's attention mass between two "
                          f"sensors; model.fusion={fusion} with model.modalities={list(wanted)} has none (set it to 0)")
    settings = corrupt_settings(cfg)
    for name, what in (("silence_prob", "silences one of two sensors"),
                       ("crosstalk_prob", "replaces one of two sensors' streams")):
        if getattr(settings, name) and len(wanted) < 2:
            raise ConfigError(f"trainer.corrupt.{name}={getattr(settings, name)} {what}; "
                              f"model.modalities={list(wanted)} has one (set it to 0)")
    try:
        model = ModelConfig.parse(OmegaConf.to_container(cfg.model, resolve=True) if OmegaConf.is_config(cfg.model)
                                  else cfg.model)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return TrainingOptions(model, settings, parse_data_config(cfg.data) if data is None else data)


CORRUPT_PROBABILITIES = ("silence_prob", "silence_audio_share", "noise_prob", "shift_prob", "crosstalk_prob",
                         "crosstalk_audio_share", "vision_noise_on_share")
CORRUPT_LEVELS = ("vision_noise", "audio_noise")


def corrupt_settings(cfg) -> CorruptSettings:
    """``trainer.corrupt`` (absent or null: all off) checked against the data's T: a ConfigError naming the
    option for an unknown key or any value out of range, e.g. ``trainer.corrupt.silence_prob=1.5, expected a
    probability in [0, 1]``."""
    section = (cfg.get("trainer") or {}).get("corrupt")
    if section is None:
        return CorruptSettings()
    if not isinstance(section, Mapping) and not hasattr(section, "items"):
        raise ConfigError(f"trainer.corrupt={section!r}, expected a mapping with keys {list(CorruptSettings.keys())}")
    values = dict(section.items())
    unknown = sorted(set(values) - set(CorruptSettings.keys()))
    if unknown:
        raise ConfigError(f"trainer.corrupt.{unknown[0]} is unknown; expected one of {list(CorruptSettings.keys())}")

    def number(name):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ConfigError(f"trainer.corrupt.{name}={value!r} is not a number")
        return value
    for name in CORRUPT_PROBABILITIES:
        if name in values and not 0 <= number(name) <= 1:
            raise ConfigError(f"trainer.corrupt.{name}={values[name]}, expected a probability in [0, 1]")
    for name in CORRUPT_LEVELS:
        if name in values and not isinstance(values[name], (int, float, str)) and hasattr(values[name], "__len__"):
            pair = list(values[name])
            if len(pair) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair) \
                    or not 0 < pair[0] <= pair[1] < float("inf"):
                raise ConfigError(f"trainer.corrupt.{name}={pair}, expected a noise level >= 0 or a range "
                                  "[k_min, k_max] with 0 < k_min <= k_max (k x the sample's own event rate)")
            values[name] = (float(pair[0]), float(pair[1]))
        elif name in values and not 0 <= number(name) < float("inf"):
            raise ConfigError(f"trainer.corrupt.{name}={values[name]}, expected a noise level >= 0 "
                              "(k x the sample's own event rate)")
    steps = int(cfg.data.T)
    if "max_shift" in values:
        shift = values["max_shift"]
        if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift < steps:
            raise ConfigError(f"trainer.corrupt.max_shift={shift!r}, expected a whole number of steps in 0..{steps - 1} "
                              f"(below data.T={steps})")
    share = values.get("vision_noise_on_share", CorruptSettings.vision_noise_on_share)   # the ANN's section may omit it
    shape = list((cfg.get("data") or {}).get("vision_shape") or [])
    if share != 0.5 and shape and shape[0] != 2:
        raise ConfigError(f"trainer.corrupt.vision_noise_on_share={share} splits the flood between ON and OFF events; "
                          f"the vision input (data.vision_shape={shape}) has {shape[0]} polarity channel(s), not 2 "
                          "(leave it at 0.5)")
    return CorruptSettings(**values)
