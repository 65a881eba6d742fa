"""Robustness of an exported program, measured in the simulator (firmware_sim): the fused accuracy, each
sensor's own accuracy, and the accuracy with a sensor silent. Used by the leave-one-speaker-out study
(edge_taaf/apps/loso.py) and bench/robustness.py.

Each modality's own accuracy comes from the program's per-modality predictions when the file has them
(outputs ``logits_audio`` / ``logits_vision``), else from the fused output with the other sensor silent
(all zeros): the accelerator's answer when only that sensor works. ``unimodal_source`` says which.

Failures never seen in training (:data:`OOD_FAILURES`, :func:`ood_accuracies`) are measured apart from the
in-distribution ones; :func:`loso_summary` reads a leave-one-speaker-out study, single- or multi-seed, and
:func:`ann_loso_summary` the ANN competitor's (edge_taaf/apps/ann_loso.py). :func:`ann_accuracies` runs the
exported ANN competitor (quant/ann_onnx.py, integer run in onnxruntime) healthy and with each sensor silent.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from edge_taaf.intervals import interval
from firmware_sim.program import Program
from firmware_sim.run import Runner
from sensors.dvs_background import load_stats, real_background
from sensors.datasets import dvs_bin_us
from sensors.ood import WaveformFailure, dead_channels, dead_pixels, fsdd_failed_audio, hot_pixels
from sensors.options import MODALITIES

FROM_OUTPUTS = "outputs logits_audio / logits_vision (the program's per-modality predictions)"
FROM_SILENCE = "fused output with the other sensor silent (all zeros)"


def sim_logits(program: Program, inputs: Mapping[str, np.ndarray], batch_size: int = 64,
               runner: Runner | None = None) -> dict[str, np.ndarray]:
    """The simulator's ``logits`` (N, K) over batch-first (N, T, ...) inputs, and ``logits_<m>`` (N, K) of
    each modality when the program outputs them."""
    runner = runner or Runner(program)
    n = len(next(iter(inputs.values())))
    parts = []
    for i in range(0, n, batch_size):
        out = runner({k: np.swapaxes(np.asarray(v[i:i + batch_size]), 0, 1) for k, v in inputs.items()}).outputs()
        parts.append({k: v for k, v in out.items() if k == "logits" or k in {f"logits_{m}" for m in MODALITIES}})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """argmax (lowest index on ties, as the simulator's predictions) against the labels."""
    return float((np.argmax(logits, axis=1) == np.asarray(labels)).mean())


def silenced(inputs: Mapping[str, np.ndarray], modality: str) -> dict[str, np.ndarray]:
    """The inputs with ``modality`` all zeros (a dead sensor)."""
    return {k: (np.zeros_like(v) if k == modality else v) for k, v in inputs.items()}


def modality_accuracies(program: Program, inputs: Mapping[str, np.ndarray], labels: np.ndarray,
                        batch_size: int = 64, silent_runs: bool = True) -> dict:
    """Simulator accuracies over one data set (inputs name -> (N, T, ...), labels (N,)):

    fused_acc; for a two-sensor program audio_only_acc, vision_only_acc (from the per-modality outputs when
    the program has them, else from the silent runs), unimodal_source, best_unimodal_acc,
    fused_minus_best_unimodal, and (``silent_runs``, or when needed for the unimodal figures)
    audio_silent_acc / vision_silent_acc: the fused accuracy with that sensor all zeros."""
    labels = np.asarray(labels)
    runner = Runner(program)
    clean = sim_logits(program, inputs, batch_size, runner)
    out = {"samples": int(labels.size), "fused_acc": accuracy(clean["logits"], labels)}
    present = [m for m in MODALITIES if m in program.inputs]
    if len(present) < 2:
        out.update({f"{present[0]}_only_acc": out["fused_acc"], "unimodal_source": "one-sensor program"})
        return out
    heads = all(f"logits_{m}" in clean for m in MODALITIES)
    if silent_runs or not heads:
        for m in MODALITIES:
            out[f"{m}_silent_acc"] = accuracy(sim_logits(program, silenced(inputs, m), batch_size, runner)["logits"], labels)
    for m in MODALITIES:
        other = "vision" if m == "audio" else "audio"
        out[f"{m}_only_acc"] = accuracy(clean[f"logits_{m}"], labels) if heads else out[f"{other}_silent_acc"]
    out["unimodal_source"] = FROM_OUTPUTS if heads else FROM_SILENCE
    out["best_unimodal_acc"] = max(out["audio_only_acc"], out["vision_only_acc"])
    out["fused_minus_best_unimodal"] = out["fused_acc"] - out["best_unimodal_acc"]
    return out


# ---- failures never seen in training (sensors/ood.py, sensors/dvs_background.py), reported apart ----------------
# name -> (the sensor it hits, what it is, its settings). Each is applied to the official test split at the level
# where it happens: binned DVS spikes, cochlea spikes, or the waveform before the cochlea.
OOD_FAILURES = {
    "hot_pixels": ("vision", "2 % of DVS pixels fire at 500 Hz whatever the scene (half ON)",
                   {"fraction": 0.02, "rate_hz": 500.0, "on_fraction": 0.5}),
    "dead_pixels": ("vision", "20 % of DVS pixels never fire", {"fraction": 0.2}),
    "dead_channels": ("audio", "25 % of the cochlea's channels silent", {"fraction": 0.25}),
    "mains_hum_50hz": ("audio", "50 Hz mains hum + 4 harmonics (amplitude 1/k) at 0 dB SNR on the waveform",
                       WaveformFailure("hum", {"mains_hz": 50.0, "snr_db": 0.0, "harmonics": 5})),
    "mains_hum_60hz": ("audio", "60 Hz mains hum + 4 harmonics (amplitude 1/k) at 0 dB SNR on the waveform",
                       WaveformFailure("hum", {"mains_hz": 60.0, "snr_db": 0.0, "harmonics": 5})),
    "clipping": ("audio", "waveform hard-clipped at 10 % of its peak", WaveformFailure("clip", {"fraction": 0.1})),
    "babble_0db": ("audio", "babble of 4 other test clips at 0 dB SNR (training: 5-30 dB)",
                   WaveformFailure("babble", {"snr_db": 0.0, "talkers": 4})),
    "babble_m5db": ("audio", "babble of 4 other test clips at -5 dB SNR (training: 5-30 dB)",
                    WaveformFailure("babble", {"snr_db": -5.0, "talkers": 4})),
    "dvs_background_nmnist": ("vision", "DVS background measured on the real N-MNIST sample (rate, ON share, "
                              "hot-pixel tail; sensors/dvs_background.json)", "sample_nmnist"),
    "dvs_background_dvxplorer": ("vision", "DVS background measured on the real DVXplorer sample (rate, ON share, "
                                 "hot-pixel tail; sensors/dvs_background.json)", "sample_aedat4"),
}


def failed_inputs(name: str, data_cfg, inputs: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """The official test inputs (name -> (N, T, ...), the first N of data_cfg's test split) with failure ``name``
    of :data:`OOD_FAILURES`; the other sensor untouched."""
    sensor, _, setting = OOD_FAILURES[name]
    x = inputs[sensor]
    if name == "hot_pixels":
        x = hot_pixels(x, setting["fraction"], setting["rate_hz"], dvs_bin_us(data_cfg), int(data_cfg.clip), seed,
                       setting["on_fraction"])
    elif name == "dead_pixels":
        x = dead_pixels(x, setting["fraction"], seed)
    elif name == "dead_channels":
        x = dead_channels(x, setting["fraction"], seed)
    elif isinstance(setting, WaveformFailure):
        x = fsdd_failed_audio(data_cfg, "test", setting, seed)[:len(x)]
    else:
        x = real_background(x, load_stats(setting), dvs_bin_us(data_cfg), int(data_cfg.clip), seed)
    return {**inputs, sensor: x}


def ood_accuracies(program: Program, data_cfg, inputs: Mapping[str, np.ndarray], labels: np.ndarray, seed: int = 0,
                   runner: Runner | None = None) -> dict[str, dict]:
    """Per failure of :data:`OOD_FAILURES`: the simulator's fused accuracy with it, and each sensor's own accuracy
    when the program outputs logits_audio / logits_vision (else null: the silent-sensor stand-in would hide the
    failure behind the healthy sensor's silence)."""
    runner = runner or Runner(program)
    out = {}
    for name, (sensor, what, _) in OOD_FAILURES.items():
        logits = sim_logits(program, failed_inputs(name, data_cfg, inputs, seed), runner=runner)
        own = {f"{m}_only_acc": accuracy(logits[f"logits_{m}"], labels) if f"logits_{m}" in logits else None
               for m in MODALITIES}
        out[name] = {"sensor": sensor, "failure": what, "fused_acc": accuracy(logits["logits"], labels), **own}
    return out


def loso_summary(study: Mapping) -> dict:
    """loso_fused_mean, loso_fused_ci95_low / _high and loso_seeds of a loso.json (edge_taaf/apps/loso.py): a
    multi-seed study's summary["fused_acc"] interval (top-level "seeds"), or for a single-seed file (no "seeds")
    intervals.interval over its one seed's mean (the summary's mean, else the folds' mean fused accuracy)."""
    fused = (study.get("summary") or {}).get("fused_acc") or {}
    if "seeds" in study:
        fused = seed_interval(study, "fused_acc", "loso.json")
        return {"loso_fused_mean": fused["mean"], "loso_fused_ci95_low": fused["low"],
                "loso_fused_ci95_high": fused["high"], "loso_seeds": len(study["seeds"])}
    folds = [f["fused_acc"] for f in study.get("folds", []) if f.get("fused_acc") is not None]
    if "mean" not in fused and not folds:
        raise ValueError("loso.json: no summary.fused_acc.mean and no fold with fused_acc")
    one = interval([fused["mean"] if "mean" in fused else sum(folds) / len(folds)])
    return {"loso_fused_mean": one.mean, "loso_fused_ci95_low": one.low, "loso_fused_ci95_high": one.high,
            "loso_seeds": 1}


def seed_interval(study: Mapping, key: str, file: str) -> dict[str, float]:
    """mean, low and high of a multi-seed study's summary[key] (edge_taaf/intervals.py's Interval over the seeds'
    fold means, as edge_taaf/apps/loso.py's summarise writes it); ValueError naming ``file`` and the key when absent."""
    entry = (study.get("summary") or {}).get(key) or {}
    if not {"mean", "low", "high"} <= set(entry):
        raise ValueError(f"{file}: has 'seeds' but summary.{key} lacks mean / low / high (expected "
                         "edge_taaf/intervals.py's Interval fields)")
    return {k: float(entry[k]) for k in ("mean", "low", "high")}


def ann_loso_summary(study: Mapping) -> dict:
    """ann_loso_mean, ann_loso_ci95_low / _high, ann_loso_seeds (number of seeds) and ann_loso_<m>_silent_mean of an
    ann_loso.json (edge_taaf/apps/ann_loso.py): its summary's test_acc interval over seeds and the silent-sensor means."""
    if not study.get("seeds"):
        raise ValueError("ann_loso.json: no top-level 'seeds' (expected the output of edge-taaf-ann-loso)")
    test = seed_interval(study, "test_acc", "ann_loso.json")
    out = {"ann_loso_mean": test["mean"], "ann_loso_ci95_low": test["low"], "ann_loso_ci95_high": test["high"],
           "ann_loso_seeds": len(study["seeds"])}
    for m in MODALITIES:
        out[f"ann_loso_{m}_silent_mean"] = seed_interval(study, f"{m}_silent_acc", "ann_loso.json")["mean"]
    return out


def ann_accuracies(onnx_path, inputs: Mapping[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """The exported ANN competitor (quant.ann_onnx.ann_logits: its integer run in onnxruntime) over one data set
    (inputs vision (N, T, P, H, W) and audio (N, T, C) counts, labels (N,)): fused_acc, and audio_silent_acc /
    vision_silent_acc, the accuracy with that sensor all zeros (a dead sensor)."""
    from quant.ann_onnx import ann_logits     # onnxruntime, loaded only where the competitor is run

    def acc(x):
        return accuracy(ann_logits(onnx_path, x["vision"], x["audio"]), labels)
    return {"fused_acc": acc(inputs), **{f"{m}_silent_acc": acc(silenced(inputs, m)) for m in MODALITIES}}
