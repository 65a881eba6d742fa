"""Counts -> energy and latency per inference, for the SNN and the ANN baselines, priced alike
(docs/accelerator.md, "Pricing rules").

The parts live apart: the hardware config in firmware_sim.hardware, the SNN's dataflows in
firmware_sim.dataflow, every ANN (baselines and trained competitor) in firmware_sim.ann_cost. This
module adds the rows both sides pay and assembles the report:

  sensor front-end  per input with a ``sensor_frontend`` entry in the hardware config (the cochlea's
                    gammatone filterbank): channels x sample_rate_hz x window_s channel-samples per
                    inference, each mults_per_sample multiplies and adds_per_sample adds at operand_bits
                    and register_accesses_per_sample register accesses (state and coefficients); on an
                    operation_count config each multiply one mac and each add beyond them one synaptic_op.
                    It runs beside the sensor during the window: no cycles, its leakage not priced.
  event front-end   the units of kind "frontend" (pooling, threshold, refractory, adaptive level:
                    firmware_sim.dataflow.price_frontend), whose output every network reads.

Both rows are in the SNN's figure and are added to each ANN baseline's (``shared``); every figure
carries a ``covers`` list. ``ratios`` (the headline) compare the networks priced alike, without the
shared rows: a row both sides pay equally says nothing about the networks, and the filterbank's size is
our own estimate, so it must not pull every ratio towards 1. ``ratios_with_frontend`` compare the
totals with the shared rows, the system figure a device pays; both are reported side by side.
"""
from __future__ import annotations

import math

from firmware_sim.ann_cost import ANN_RATIOS, ann_shapes, price_baselines, window_bits
from firmware_sim.counters import Counts
from firmware_sim.dataflow import (COMPUTE_OPERATIONS, OPERATIONS, READOUT_MAC_BITS, Geometry, empty, price_frontend, price_gather,
                                   price_scatter, price_units, terms)
from firmware_sim.hardware import Hardware, HardwareConfigError, hardware_from_dict, load_hardware
from firmware_sim.program import Program

__all__ = ["ANN_RATIOS", "OPERATIONS", "READOUT_MAC_BITS", "Geometry", "Hardware", "HardwareConfigError",
           "ann_shapes", "energy_report", "hardware_from_dict", "load_hardware", "price_frontend", "price_gather",
           "price_scatter", "price_sensor", "window_bits"]

SNN_COVERS = ["spiking layers: synaptic adds, neuron updates and catch-up leaks, weight, accumulator and state "
              "memory, operand buffers and registers, spike routing (the chosen dataflow per layer)",
              "readout: warps, logits, score MLP and attention", "static power over the latency"]
NOT_COVERED = ["the sensors themselves (DVS pixel array, microphone and ADC): the same for every network",
               "the cochlea's rectifier, compression and spike encoder (paid alike; not priced)",
               "off-chip I/O"]


def price_sensor(program: Program, name: str, hw: Hardware) -> tuple[dict, float, dict] | None:
    """(pJ by operation, cycles, description) per inference of input ``name``'s sensor front-end, or None
    when the config declares none for it. Channels: the input's sensor elements (program.inputs)."""
    fb = dict(hw.sensors).get(name)
    if fb is None or name not in program.inputs:
        return None
    channels = math.prod(program.inputs[name][0])
    samples = channels * fb.sample_rate_hz * fb.window_s
    mults, adds = samples * fb.mults_per_sample, samples * fb.adds_per_sample
    pj = empty()
    if hw.operation_count:
        pj["MAC"] = mults * hw.per_op_pj["mac"]
        pj["other compute"] = max(adds - mults, 0.0) * hw.per_op_pj["synaptic_op"]
    else:
        pj["MAC"] = mults * hw.mult(fb.operand_bits)
        pj["other compute"] = adds * hw.add(fb.operand_bits)
        pj["register file"] = samples * fb.register_accesses_per_sample * hw.register_pj
    about = {"description": fb.description, "channels": channels, "sample_rate_hz": fb.sample_rate_hz,
             "window_s": fb.window_s, "channel_samples": samples, "mults": mults, "adds": adds,
             "register_accesses": samples * fb.register_accesses_per_sample, "operand_bits": fb.operand_bits}
    return pj, 0.0, about


def _snn_units(program: Program, counts: Counts, hw: Hardware) -> tuple[dict, dict, dict]:
    """Per unit (sensor rows first): its row of the report; the dataflow choices; the sensors' descriptions."""
    n = max(counts.n_samples, 1)
    priced, choice = price_units(program, counts, hw)
    rows = {}
    sensors = {}
    for name in program.inputs:
        sensor = price_sensor(program, name, hw)
        if sensor is not None:
            rows[f"sensor.{name}"] = ("sensor", name, sensor[0], sensor[1])
            sensors[name] = sensor[2]
    for name, unit in counts.units.items():
        pj, cycles = priced[name]
        rows[name] = (unit.kind, unit.modality, {k: v / n for k, v in pj.items()}, cycles / n)
    units = {}
    for name, (kind, modality, pj, cycles) in rows.items():
        pj = {**pj, "static": hw.static_power_mw * cycles / hw.clock_mhz * 1e3}
        units[name] = {"modality": modality, "kind": kind, "energy_uj": sum(pj.values()) * 1e-6, "cycles": cycles,
                       "latency_us": cycles / hw.clock_mhz, "pj_by_operation": pj,
                       **({"dataflow": choice[name]["chosen"]} if name in choice else {})}
    return units, choice, sensors


def _shared(units: dict, sensors: dict) -> dict:
    """The rows every network pays: the sensor front-ends and the event front-ends, by term."""
    rows = {k: u for k, u in units.items() if u["kind"] in ("sensor", "frontend")}
    pj = dict.fromkeys(OPERATIONS, 0.0)
    for u in rows.values():
        for k, v in u["pj_by_operation"].items():
            pj[k] += v
    by_term = terms(pj)
    covers = [f"sensor front-end {k}: {s['description'] or 'digital filterbank'}, {s['channels']} channels x "
              f"{s['sample_rate_hz']:g} Hz x {s['window_s']:g} s" for k, s in sensors.items()]
    covers += [f"event front-end {u['modality']} (firmware_sim/frontend.py)" for u in rows.values() if u["kind"] == "frontend"]
    return {"energy_uj": sum(u["energy_uj"] for u in rows.values()), "compute_uj": by_term["compute"] * 1e-6,
            "memory_uj": by_term["memory"] * 1e-6, "static_uj": by_term["static"] * 1e-6,
            "cycles": sum(u["cycles"] for u in rows.values()),
            "by_row": {k: u["energy_uj"] for k, u in rows.items()}, "sensors": sensors, "covers": covers}


def _with_shared(ann: dict, shared: dict, hw: Hardware) -> dict:
    """An ANN baseline's own figure plus the shared rows: own_uj keeps the figure without them."""
    out = dict(ann)
    out["own_uj"] = ann["energy_uj"]
    for key in ("energy_uj", "compute_uj", "memory_uj", "static_uj"):
        out[key] = ann[key] + shared[key]
    out["cycles"] = ann["cycles"] + shared["cycles"]
    out["latency_us"] = out["cycles"] / hw.clock_mhz
    out["shared_uj"] = shared["energy_uj"]
    out["covers"] = [*shared["covers"], *ann["covers"]]
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def energy_report(program: Program, counts: Counts, hw: Hardware, steps: int) -> dict:
    """Energy and latency per inference of the counted run (``steps`` = T it ran), per unit, per
    modality and per kind of operation, the dataflow of each spiking layer, the three ANN baselines
    priced alike (shared rows included), the ratios, and what every figure covers."""
    n = max(counts.n_samples, 1)
    units, choice, sensors = _snn_units(program, counts, hw)
    by_mod, by_op = {}, dict.fromkeys(OPERATIONS, 0.0)
    for u in units.values():
        m = by_mod.setdefault(u["modality"], {"energy_uj": 0.0, "cycles": 0.0, "latency_us": 0.0})
        m["energy_uj"] += u["energy_uj"]
        m["cycles"] += u["cycles"]
        m["latency_us"] += u["latency_us"]
        for k, v in u["pj_by_operation"].items():
            by_op[k] += v * 1e-6
    snn_uj = sum(u["energy_uj"] for u in units.values())
    total_cycles = sum(u["cycles"] for u in units.values())
    shared = _shared(units, sensors)
    dataflows = {k: {"scatter_uj": v["scatter_pj"] / n * 1e-6, "gather_uj": v["gather_pj"] / n * 1e-6,
                     "chosen": v["chosen"]} for k, v in choice.items()}
    own = price_baselines(program, counts, hw, steps)
    ann = {k: _with_shared(v, shared, hw) for k, v in own.items()}
    snn_core = snn_uj - shared["energy_uj"]
    snn_compute = sum(by_op[k] for k in COMPUTE_OPERATIONS) - shared["compute_uj"]
    # The layers that read the encoders' events cost what the input makes them cost (their events,
    # weight rows, reached neurons) whatever the later layers do: an upper bound on the ratio.
    first_uj = sum(units[layer.name]["energy_uj"] for layer in program.layers if layer.input in program.inputs)
    a = ann["ann_int8_T"]
    return {
        "hardware": hw.name, "hardware_kind": hw.kind, "hardware_note": hw.note, "clock_mhz": hw.clock_mhz,
        "samples": counts.n_samples, "steps": steps, "energy_uj": snn_uj, "core_energy_uj": snn_core,
        "cycles": total_cycles, "latency_us": total_cycles / hw.clock_mhz,
        "covers": [*shared["covers"], *SNN_COVERS], "not_covered": NOT_COVERED, "shared": shared,
        "energy_uj_by_operation": by_op, "by_modality": by_mod, "by_unit": units, "dataflows": dataflows, **ann,
        # the networks priced alike, the shared rows left out of both sides (the headline)
        "ratios": {**{key: _ratio(own[name]["energy_uj"], snn_core) for name, key in ANN_RATIOS},
                   "latency_ann_int8_vs_snn": _ratio(a["cycles"], total_cycles),
                   # arithmetic only, memory and static left out too (the usual figure in SNN papers)
                   "compute_ann_int8_vs_snn": _ratio(own["ann_int8_T"]["compute_uj"], snn_compute),
                   "bound_ann_int8_vs_snn_if_later_layers_free": _ratio(own["ann_int8_T"]["energy_uj"], first_uj)},
        # the device's totals: each side with the sensor filterbank and event front-end rows it also pays
        "ratios_with_frontend": {key: _ratio(ann[name]["energy_uj"], snn_uj) for name, key in ANN_RATIOS},
    }
