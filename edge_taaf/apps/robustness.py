"""Robustness of an exported program, measured in the simulator (firmware_sim): the fused accuracy, each
sensor's own accuracy, and the accuracy with a sensor silent. Used by the leave-one-speaker-out study
(edge_taaf/apps/loso.py) and bench/robustness.py.

Each modality's own accuracy comes from the program's per-modality predictions when the file has them
(outputs ``logits_audio`` / ``logits_vision``), else from the fused output with the other sensor silent
(all zeros): the accelerator's answer when only that sensor works. ``unimodal_source`` says which.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from firmware_sim.program import Program
from firmware_sim.run import Runner

MODALITIES = ("audio", "vision")
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
