"""Run a Program over a whole data set (batch-first numpy arrays): accuracy, counters, energy, latency."""
from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from tqdm import tqdm

from firmware_sim.energy import Hardware, energy_report
from firmware_sim.program import ContractError, Program
from firmware_sim.program_io import batch_axis
from firmware_sim.run import Runner


def evaluate(program: Program, inputs: Mapping[str, np.ndarray], labels: np.ndarray, hardware: Hardware,
             batch_size: int = 64, progress: bool = False, keep_outputs: bool = False,
             also_priced: tuple[Hardware, ...] = (), allow_other_T: bool = False) -> dict:
    """inputs: name -> (N, T, *shape) integer spike counts (PairedSpikes layout); labels (N,).

    Returns a JSON-ready dict: accuracy, simulator speed, energy / latency report (per inference,
    per unit, per modality, ANN baselines), counters per inference, saturations; and under
    ``predictions`` the (N,) predicted classes. With ``keep_outputs``, ``outputs`` holds every
    output under its ONNX name over the whole set (logits and logits_<m> (N, K), the rest (T, N, ...)), int64 / uint8.
    ``also_priced``: more hardware configs; the same counts priced by each go under ``energy_by_hardware``
    (the main one included), so a report shows the range. ``allow_other_T``: run a data set whose T is not the
    program's (1..max_T, over exactly its own steps); without it such a set is refused (firmware_sim.run.check_steps)."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    if n < 1:
        raise ContractError("evaluate: the data set is empty")
    if batch_size < 1:
        raise ContractError(f"evaluate: batch_size={batch_size}, expected >= 1")
    for name, arr in inputs.items():
        if len(arr) != n:
            raise ContractError(f"evaluate: input {name!r} has {len(arr)} samples but there are {n} labels")
    runner = Runner(program)
    predictions = np.empty(n, np.int64)
    counts, steps, parts = None, None, []
    start = time.perf_counter()
    with tqdm(total=n, unit="sample", disable=not progress, desc="simulate") as bar:
        for i in range(0, n, batch_size):
            batch = {k: np.swapaxes(np.asarray(v[i:i + batch_size]), 0, 1) for k, v in inputs.items()}
            result = runner(batch, allow_other_T)
            predictions[i:i + batch_size] = result.predictions
            if keep_outputs:
                parts.append(result.outputs())
            counts = result.counts if counts is None else counts.merge(result.counts)
            steps = result.step_logits.shape[0]
            bar.update(len(result.predictions))
    seconds = time.perf_counter() - start
    energy = energy_report(program, counts, hardware, steps)
    by_hardware = {hw.name: energy_report(program, counts, hw, steps) for hw in also_priced}
    outputs = {k: np.concatenate([p[k] for p in parts], axis=batch_axis(k)) for k in parts[0]} if parts else {}
    return {
        **({"outputs": outputs} if keep_outputs else {}),
        "samples": int(n), "steps": int(steps), "accuracy": float((predictions == labels).mean()),
        "sim_seconds": seconds, "sim_samples_per_s": n / seconds if seconds > 0 else float("inf"),
        "energy_uj_per_inference": energy["energy_uj"], "latency_us_per_inference": energy["latency_us"],
        "cycles_per_inference": energy["cycles"],
        "saturations": {name: u.counts["saturations"] for name, u in counts.units.items() if u.kind in ("conv", "dense")},
        "exact_limit_hits": counts.total("exact_limit"),
        "energy": energy, "counts_per_inference": counts.as_dict(per_inference=True),
        "energy_by_hardware": {hardware.name: _headline(energy),
                               **{name: _headline(e) for name, e in by_hardware.items()}},
        "predictions": predictions,
    }


def _headline(energy: dict) -> dict:
    """Energy, latency and the three ANN ratios of one hardware config's report, with the config's kind
    (component or operation_count) and what the energy covers."""
    return {"energy_uj": energy["energy_uj"], "latency_us": energy["latency_us"], **energy["ratios"],
            "hardware_kind": energy["hardware_kind"], "covers": energy["covers"]}
