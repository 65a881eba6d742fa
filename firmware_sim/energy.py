"""Counts -> energy and latency per inference, from a hardware config (configs/hardware/*.yaml).

Pricing (pJ; ``hw`` is the config; widths from firmware_sim.spec):
  synaptic accumulate   add(ACC_BITS)                      one add into the 32-bit accumulator
  neuron update         4 x add(STATE_BITS)                leak subtract, add current, compare, reset subtract
  catch-up leak         2 x add(STATE_BITS) per leak op    shift + subtract for a skipped step (counted as neuron update)
  readout MAC           mult(16) + add(ACC_BITS)           int8 weight x <= 16-bit activation
  other add             add(ACC_BITS);  exp2 lookup: add8 (16-entry table + shift)
  weight memory         weights read x bits / W words x SRAM(size of that unit's weights)
  state memory          (reads + writes x write_factor) x E / W words x SRAM(size of that unit's state), where an
                        entry E = STATE_BITS membrane + spec.stamp_bits(max_T) time stamp; plus the activity
                        flags: flag_bits / W words x (1 + write_factor) x SRAM(one bit per neuron)
  spike routing         (input events + spikes out x write_factor) x EVENT_BITS / W words x SRAM(event FIFO)
W = ``sram_word_bits`` of the config (the access width its SRAM costs are given for). Entries are
packed: neighbours read together (a position's C_out membranes, a fan-out row) share words.
  static                static_power x latency
add(b) interpolates linearly in b between add8 and add32 (adder energy grows with width);
mult(b) geometrically between mult8 and mult32 (multiplier energy grows with width squared).
SRAM(size) interpolates the table as a power law of size (log-log), clamped at its smallest entry.

Latency: layers run one after another; within one, ``syn_units`` accumulators, ``neuron_units``
LIF units and ``mac_units`` multipliers work in parallel: cycles = ceil(syn_ops / syn_units) +
ceil((neuron_updates + leak_ops) / neuron_units) + flag_bits / W (one flag word scanned per cycle)
+ ceil(macs / mac_units) + ...; us = cycles / clock_mhz.

ANN baselines: the same layer shapes run densely on the same T input frames (one frame per
step, as a frame-based network would consume the binned stream): every MAC of every layer,
int8 (mult8 + add32) or fp32 (fp32_mac), weights read once per frame per layer (ideal
weight-stationary reuse, the ANN's best case), activations read and written once, the same
SRAM table, ``syn_units`` MAC units. ``per_frame`` numbers allow any other frame count.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from edge_taaf import CONFIG_DIR
from firmware_sim import spec
from firmware_sim.counters import Counts
from firmware_sim.program import Program

HARDWARE_DIR = Path(CONFIG_DIR) / "hardware"   # configs/hardware/, shipped in the package
ENERGY_KEYS = ("add8", "add32", "mult8", "mult32", "fp32_mac", "fp32_add")
PARALLEL_KEYS = ("syn_units", "neuron_units", "mac_units")
OPERATIONS = ("synaptic accumulate", "neuron update", "MAC", "other compute", "weight memory", "state memory",
              "spike routing", "static")
READOUT_MAC_BITS = 16


class HardwareConfigError(ValueError):
    """A hardware config lacks a constant or holds an invalid one; the message names it."""


@dataclass(frozen=True)
class Hardware:
    name: str
    energy_pj: dict
    sram: tuple[tuple[int, float], ...]    # (size bytes, pJ per read of one sram_word_bits word), ascending size
    sram_word_bits: int
    sram_write_factor: float
    event_fifo_bytes: int
    static_power_mw: float
    clock_mhz: float
    syn_units: int
    neuron_units: int
    mac_units: int

    def add(self, bits: int) -> float:
        e8, e32 = self.energy_pj["add8"], self.energy_pj["add32"]
        return e8 + (e32 - e8) * (bits - 8) / 24

    def mult(self, bits: int) -> float:
        e8, e32 = self.energy_pj["mult8"], self.energy_pj["mult32"]
        return e8 * (e32 / e8) ** ((math.log2(bits) - 3) / 2) if e8 > 0 else e32 * (bits / 32) ** 2

    def sram_word(self, size_bytes: float) -> float:
        """pJ per access (one sram_word_bits word) of an SRAM of size_bytes."""
        smallest, cost = self.sram[0]
        return cost if size_bytes <= smallest else _interpolate(self.sram, size_bytes)


def _interpolate(table, size):
    """Power law between table entries (linear in log size and log cost); past the last entry,
    along the last segment's power law."""
    if len(table) == 1:
        return table[0][1]
    x = math.log2(size)
    pts = [(math.log2(s), math.log2(c) if c > 0 else -math.inf) for s, c in table]
    for (x0, c0), (x1, c1) in zip(pts, pts[1:]):
        if x <= x1:
            break
    return 2.0 ** (c0 + (c1 - c0) * (x - x0) / (x1 - x0)) if math.isfinite(c0) and math.isfinite(c1) else 0.0


def load_hardware(source) -> Hardware:
    """A Hardware from a mapping, a YAML path, or a name in configs/hardware/ (e.g. 'horowitz45nm')."""
    if isinstance(source, Mapping):
        return hardware_from_dict(dict(source), "<mapping>")
    path = Path(source)
    if not path.suffix:
        path = HARDWARE_DIR / f"{source}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in HARDWARE_DIR.glob("*.yaml"))
        raise HardwareConfigError(f"hardware config {os.fspath(source)!r}: no file {path} (known names: {known})")
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise HardwareConfigError(f"hardware config {path}: expected a YAML mapping")
    return hardware_from_dict(data, str(path))


def _number(d: Mapping, key: str, where: str, positive: bool = False) -> float:
    if key not in d or d[key] is None:
        raise HardwareConfigError(f"hardware config {where}: {key} is missing")
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HardwareConfigError(f"hardware config {where}: {key}={value!r} is not a number")
    if value < 0 or (positive and value == 0):
        raise HardwareConfigError(f"hardware config {where}: {key}={value} must be {'> 0' if positive else '>= 0'}")
    return float(value)


def _section(d: Mapping, key: str, where: str) -> Mapping:
    if not isinstance(d.get(key), Mapping):
        raise HardwareConfigError(f"hardware config {where}: section {key!r} is missing or not a mapping")
    return d[key]


def hardware_from_dict(d: dict, where: str) -> Hardware:
    energy = _section(d, "energy_pj", where)
    e = {k: _number(energy, k, f"{where} energy_pj") for k in ENERGY_KEYS}
    table = _section(d, "sram_read_pj", where)
    sram = []
    for size, cost in table.items():
        try:
            s = int(size)
        except (TypeError, ValueError):
            raise HardwareConfigError(f"hardware config {where}: sram_read_pj key {size!r} is not a size in bytes") from None
        if s <= 0:
            raise HardwareConfigError(f"hardware config {where}: sram_read_pj size {s} must be > 0")
        sram.append((s, _number(table, size, f"{where} sram_read_pj")))
    if not sram:
        raise HardwareConfigError(f"hardware config {where}: sram_read_pj needs at least one size: cost entry")
    word_bits = _number(d, "sram_word_bits", where, positive=True)
    if word_bits != int(word_bits) or int(word_bits) % 8:
        raise HardwareConfigError(f"hardware config {where}: sram_word_bits={word_bits} must be a whole number of bytes (8, 16, 32, 64, ...)")
    par = _section(d, "parallel", where)
    units = {}
    for k in PARALLEL_KEYS:
        v = _number(par, k, f"{where} parallel", positive=True)
        if v != int(v):
            raise HardwareConfigError(f"hardware config {where} parallel: {k}={v} must be a whole number")
        units[k] = int(v)
    return Hardware(str(d.get("name", where)), e, tuple(sorted(sram)), int(word_bits), _number(d, "sram_write_factor", where),
                    int(_number(d, "event_fifo_bytes", where, positive=True)), _number(d, "static_power_mw", where),
                    _number(d, "clock_mhz", where, positive=True), **units)


# ---------------------------------------------------------------- pricing

def _ceil_div(a: float, b: int) -> float:
    return math.ceil(a / b) if a else 0


def price_unit(unit, hw: Hardware, max_T: int) -> tuple[dict[str, float], float]:
    """(pJ by operation, cycles) of one unit's counters (totals over the samples run); max_T sizes
    the neurons' time stamps."""
    c = unit.counts
    acc, st = hw.add(spec.ACC_BITS), hw.add(spec.STATE_BITS)
    wf = hw.sram_write_factor
    entry_bits = spec.STATE_BITS + spec.stamp_bits(max_T)
    weight_bytes = unit.n_weights * unit.weight_bits / 8
    state_bytes = unit.n_neurons * entry_bits / 8
    word = hw.sram_word_bits
    pj = dict.fromkeys(OPERATIONS, 0.0)
    pj["synaptic accumulate"] = c["syn_ops"] * acc
    pj["neuron update"] = c["neuron_updates"] * 4 * st + c["leak_ops"] * 2 * st
    pj["MAC"] = c["macs"] * (hw.mult(READOUT_MAC_BITS) + acc)
    pj["other compute"] = c["adds"] * acc + c["lut_reads"] * hw.energy_pj["add8"]
    pj["weight memory"] = c["weight_reads"] * unit.weight_bits / word * hw.sram_word(weight_bytes) if c["weight_reads"] else 0.0
    pj["state memory"] = ((c["state_reads"] + wf * c["state_writes"]) * entry_bits / word * hw.sram_word(state_bytes)
                          + c["flag_bits"] / word * (1 + wf) * hw.sram_word(unit.n_neurons / 8)
                          if c["state_reads"] or c["state_writes"] or c["flag_bits"] else 0.0)
    pj["spike routing"] = (c["input_events"] + wf * c["spikes_out"]) * spec.EVENT_BITS / word * hw.sram_word(hw.event_fifo_bytes)
    cycles = (_ceil_div(c["syn_ops"] + c["adds"], hw.syn_units)
              + _ceil_div(c["neuron_updates"] + c["leak_ops"], hw.neuron_units) + _ceil_div(c["flag_bits"], word)
              + _ceil_div(c["macs"], hw.mac_units) + c["lut_reads"])
    return pj, cycles


def ann_shapes(program: Program) -> list[dict]:
    """Per layer of the network as a dense ANN: MACs, weights, input and output activations per frame."""
    out = []
    for layer in program.layers:
        out.append({"name": layer.name, "modality": layer.modality, "macs": layer.n_out * layer.fan_in,
                    "weights": int(layer.weight.size), "in": layer.n_in, "out": layer.n_out})
    r = program.readout
    d = r.weight.shape[1]
    warps = {m: getattr(r, f"warp_{m}").size for m in r.modalities}
    warp = sum(size * program.feature_width(m) for m, size in warps.items())
    head = (r.n_classes + r.n_hidden) * d + r.n_hidden + r.n_classes   # logits, score MLP, weighted sum
    weights = int(r.weight.size + sum(warps.values())
                  + (r.hidden_weight.size + r.out_weight.size if r.fusion == "taaf" else 0))
    out.append({"name": "readout", "modality": "fusion", "macs": warp + head, "weights": weights, "in": d,
                "out": r.n_classes + r.n_hidden + 1})
    return out


def price_ann(program: Program, hw: Hardware, frames: int, precision: str) -> dict:
    """Energy (uJ) and latency of the dense ANN on ``frames`` frames; precision 'int8' or 'fp32'."""
    nbytes = 1 if precision == "int8" else 4
    mac = hw.mult(8) + hw.add(32) if precision == "int8" else hw.energy_pj["fp32_mac"]
    act = hw.add(32) if precision == "int8" else hw.energy_pj["fp32_add"]
    per_layer, total_pj, total_cycles, total_macs, compute_pj = {}, 0.0, 0, 0, 0.0
    word_bytes = hw.sram_word_bits / 8
    for s in ann_shapes(program):
        compute = s["macs"] * mac + s["out"] * act
        compute_pj += compute * frames
        weights = s["weights"] * nbytes / word_bytes * hw.sram_word(s["weights"] * nbytes)
        acts = (s["in"] + hw.sram_write_factor * s["out"]) * nbytes / word_bytes * hw.sram_word((s["in"] + s["out"]) * nbytes)
        cycles = _ceil_div(s["macs"], hw.syn_units) + _ceil_div(s["out"], hw.neuron_units)
        pj = (compute + weights + acts) * frames
        per_layer[s["name"]] = {"modality": s["modality"], "energy_uj": pj * 1e-6, "macs": s["macs"] * frames}
        total_pj += pj
        total_cycles += cycles * frames
        total_macs += s["macs"] * frames
    latency_us = total_cycles / hw.clock_mhz
    static_pj = hw.static_power_mw * latency_us * 1e3
    energy_uj = (total_pj + static_pj) * 1e-6
    return {"precision": precision, "frames": frames, "energy_uj": energy_uj, "per_frame_uj": energy_uj / frames,
            "compute_uj": compute_pj * 1e-6,
            "static_uj": static_pj * 1e-6, "macs": total_macs, "cycles": total_cycles, "latency_us": latency_us,
            "by_layer": per_layer}


def energy_report(program: Program, counts: Counts, hw: Hardware, steps: int) -> dict:
    """Energy and latency per inference of the counted run (``steps`` = T it ran), per unit, per
    modality and per kind of operation, with the dense int8 and fp32 ANN baselines and the ratios."""
    n = max(counts.n_samples, 1)
    units, by_mod, by_op = {}, {}, dict.fromkeys(OPERATIONS, 0.0)
    total_pj, total_cycles = 0.0, 0.0
    for name, unit in counts.units.items():
        pj, cycles = price_unit(unit, hw, program.max_T)
        pj = {k: v / n for k, v in pj.items()}
        cycles /= n
        e = sum(pj.values())
        static = hw.static_power_mw * cycles / hw.clock_mhz * 1e3
        pj["static"] = static
        units[name] = {"modality": unit.modality, "kind": unit.kind, "energy_uj": (e + static) * 1e-6, "cycles": cycles,
                       "latency_us": cycles / hw.clock_mhz, "pj_by_operation": pj}
        m = by_mod.setdefault(unit.modality, {"energy_uj": 0.0, "cycles": 0.0, "latency_us": 0.0})
        m["energy_uj"] += (e + static) * 1e-6
        m["cycles"] += cycles
        m["latency_us"] += cycles / hw.clock_mhz
        for k, v in pj.items():
            by_op[k] += v * 1e-6
        total_pj += e + static
        total_cycles += cycles
    ann8 = price_ann(program, hw, steps, "int8")
    ann32 = price_ann(program, hw, steps, "fp32")
    snn_uj = total_pj * 1e-6
    snn_compute = sum(by_op[k] for k in ("synaptic accumulate", "neuron update", "MAC", "other compute"))
    # The layers that read the encoders' events cost what the input makes them cost (their events,
    # weight rows, reached neurons) whatever the later layers do: an upper bound on the ratio.
    first_uj = sum(units[layer.name]["energy_uj"] for layer in program.layers if layer.input in program.inputs)
    return {
        "hardware": hw.name, "clock_mhz": hw.clock_mhz, "samples": counts.n_samples, "steps": steps,
        "energy_uj": snn_uj, "cycles": total_cycles, "latency_us": total_cycles / hw.clock_mhz,
        "energy_uj_by_operation": by_op, "by_modality": by_mod, "by_unit": units,
        "ann_int8": ann8, "ann_fp32": ann32,
        "ratios": {"energy_ann_int8_vs_snn": ann8["energy_uj"] / snn_uj if snn_uj else math.inf,
                   "energy_ann_fp32_vs_snn": ann32["energy_uj"] / snn_uj if snn_uj else math.inf,
                   "latency_ann_int8_vs_snn": ann8["cycles"] / total_cycles if total_cycles else math.inf,
                   # arithmetic only, memory and static left out (the usual figure in SNN papers)
                   "compute_ann_int8_vs_snn": ann8["compute_uj"] / snn_compute if snn_compute else math.inf,
                   "bound_ann_int8_vs_snn_if_later_layers_free": ann8["energy_uj"] / first_uj if first_uj else math.inf},
    }
