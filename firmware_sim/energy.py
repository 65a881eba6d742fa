"""Counts -> energy and latency per inference, from a hardware config (configs/hardware/*.yaml).

Every access to a memory is a whole number of words of ``sram_word_bits`` (W); an SRAM's cost per
word comes from the config's table by the memory's size (power law between entries). Widths come from
firmware_sim.spec: weights ``weight_bits``, accumulators ACC_BITS, membranes STATE_BITS plus a
time stamp of spec.stamp_bits(max_T) bits (entry E), address-events EVENT_BITS.

A spiking layer is priced under two dataflows (docs/accelerator.md, "Dataflow"); the config's
``dataflow`` picks one, or ``auto`` (the default) the cheaper one per layer:

  scatter (event-driven, as SNE and Loihi): each input event reads its weight row(s) and does a
    read-modify-write of the accumulators of every neuron group it reaches, in an accumulator SRAM
    sized to the layer (N_out x ACC_BITS); a step's update reads and clears those accumulators and
    reads and writes the membrane + time-stamp entries (a state SRAM sized to the layer) of the
    listed groups only, with the catch-up leak of the skipped steps; the list is an update queue.
      weights   weight_rows x ceil(row x wbits / W)                     x SRAM(layer weights)
      accum.    (fanout_groups + group_updates) x ceil(group x ACC / W) x (1 + wf) x SRAM(N_out x ACC)
                + single_updates x ceil(ACC / W) x (1 + wf)             (dense armed neurons, one by one)
      state     (group_updates x ceil(group x E / W) + single_updates x ceil(E / W)) x (1 + wf) x SRAM(N_out x E)
      queue     (group_updates + single_updates) x (1 + wf) words of the event FIFO
      compute   syn_ops x add(ACC) + neuron_updates x 4 add(STATE) + leak_ops x 2 add(STATE)
      routing   input_events x 1 + spikes_out x wf words of the event FIFO
  gather (output-stationary, as SpinalFlow and SATA): for each output position and each tile of R
    accumulators (R = parallel.syn_units, in the register file), read the input bitmap of the
    receptive field (C_in k k inputs of b_in bits, b_in = bits of the input's largest count), skip
    zeros, and for each nonzero input read its weights for the tile and accumulate in registers;
    then update every membrane of the position once per step (no time stamps, no catch-up).
      bitmap    steps x positions x tiles x ceil(C_in k k b_in / W)      x SRAM(input bitmap)
      zero-skip one add8 per bitmap word scanned + one add8 per nonzero input found
      weights   fanout_groups x tiles x ceil(min(R, group) x wbits / W)  x SRAM(layer weights)
      compute   syn_ops x (add(ACC) + 2 register accesses) + steps x N_out x 4 add(STATE)
      state     steps x positions x ceil(group x STATE / W) x (1 + wf)   x SRAM(N_out x STATE)
      routing   steps x ceil(N_out / W) x wf words written to the output bitmap
  (group = C_out at one position for a conv layer, N_out for a dense one; positions = H' W' or 1.)

The warps, readout, score MLP and attention are priced alike under both: MACs mult(16) + add(ACC),
weight rows whole words, the exp2 lookup as an add8, plain adds add(ACC). The concatenation z = [a ; v]
is an address offset (no operation). taaf_modal counts the same operations for each modality's branch
(its score MLP, its T lookups and T x K MACs of the joint attention, and with modality_logits its own
lookups and MACs of y_m): run.Runner counts them, nothing else changes here.

A config may instead give ``per_op_pj`` (a published chip's system-level energy per synaptic operation
and per MAC, memory and control included): then spiking layers cost syn_ops x synaptic_op, every MAC
(readout, attention, ANN baselines) mac, and nothing else is added.

add(b) interpolates linearly in b between add8 and add32; mult(b) geometrically between mult8 and
mult32; a register access costs ``register_file.pj_per_access`` (a declared size and a cited cost).

Latency: layers run one after another; within one, ``syn_units`` accumulators, ``neuron_units``
LIF units and ``mac_units`` multipliers work in parallel, one memory word per cycle per memory.

ANN baselines, from the same layer shapes, the same memory rules (whole words, the same SRAM table,
register accumulators) and ``syn_units`` MAC units (int8 weights):
  (a) ann_int8_T: dense int8 over the same T frames, one frame per step: every MAC of every layer each
      frame (mult8 + add(ACC) + 2 register accesses), weights read once per frame per layer (ideal
      weight reuse within a frame), 8-bit activations read once and written once per frame.
  (b) ann_single_pass: one pass over the window (Yan et al., arXiv 2409.08290): activations are the
      counts over the window, ceil(log2(T + 1)) bits (the input layer: bits of T x its largest count);
      every MAC once, a multiply of wbits x b bits costed mult8 x b / 8 (array multiplier), weights read
      once, activations read and written once at b bits.
  (c) ann_single_pass_zero_skip: (b) multiplying only nonzero activations (the SNN run's inputs and
      neurons that were active in the window stand for the ANN's nonzero activations), plus a nonzero
      bitmap read per layer; its best case (weights still read once, no index overhead beyond the bitmap).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from firmware_sim import spec
from firmware_sim.counters import Counts
from firmware_sim.program import Program

ENERGY_KEYS = ("add8", "add32", "mult8", "mult32")
PARALLEL_KEYS = ("syn_units", "neuron_units", "mac_units")
DATAFLOWS = ("scatter", "gather")
PER_OP_KEYS = ("synaptic_op", "mac")
OPERATIONS = ("synaptic accumulate", "neuron update", "MAC", "other compute", "weight memory", "accumulator memory",
              "state memory", "input bitmap", "register file", "spike routing", "static")
READOUT_MAC_BITS = 16
# the three ANN baselines of the report and the key of their ratio to the SNN
ANN_RATIOS = (("ann_int8_T", "energy_ann_int8_vs_snn"), ("ann_single_pass", "energy_single_pass_ann_vs_snn"),
              ("ann_single_pass_zero_skip", "energy_single_pass_zero_skip_vs_snn"))


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
    register_file_bytes: int = 0           # the accumulators' register file (gather, ANN baselines)
    register_pj: float = 0.0               # pJ per access of one accumulator register
    dataflow: str = "auto"                 # scatter | gather | auto (the cheaper per layer)
    per_op_pj: dict | None = None          # a chip's system-level energy per synaptic op and per MAC

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

    def words(self, bits: float) -> int:
        """Whole memory words one access of ``bits`` bits takes."""
        return math.ceil(bits / self.sram_word_bits) if bits > 0 else 0

    def mac_pj(self, weight_bits: int, act_bits: int) -> float:
        """One integer MAC of a weight_bits x act_bits multiply (array multiplier: energy ~ product of widths,
        from mult8) into a register accumulator (add(ACC) + one read and one write of the register)."""
        if self.per_op_pj is not None:
            return self.per_op_pj["mac"]
        return self.mult(8) * weight_bits * act_bits / 64 + self.add(spec.ACC_BITS) + 2 * self.register_pj


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


def load_hardware(source, folder: str | os.PathLike | None = None) -> Hardware:
    """A Hardware from a mapping, a YAML path, or a name (e.g. 'horowitz45nm') of a YAML file in ``folder``
    (the project's configs/hardware/, which the apps pass: firmware_sim itself knows no config folder)."""
    if isinstance(source, Mapping):
        return hardware_from_dict(dict(source), "<mapping>")
    path = Path(source)
    if not path.suffix:
        if folder is None:
            raise HardwareConfigError(f"hardware config {os.fspath(source)!r}: a bare name needs the folder of "
                                      "hardware YAML files (or give a path or a mapping)")
        path = Path(folder) / f"{source}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
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
    """A Hardware from a config mapping; HardwareConfigError names the constant at fault. A config with
    ``per_op_pj`` (a chip's system-level energy per operation) needs no component table."""
    par = _section(d, "parallel", where)
    units = {}
    for k in PARALLEL_KEYS:
        v = _number(par, k, f"{where} parallel", positive=True)
        if v != int(v):
            raise HardwareConfigError(f"hardware config {where} parallel: {k}={v} must be a whole number")
        units[k] = int(v)
    common = dict(name=str(d.get("name", where)), static_power_mw=_number(d, "static_power_mw", where),
                  clock_mhz=_number(d, "clock_mhz", where, positive=True), **units)
    if d.get("per_op_pj") is not None:
        section = _section(d, "per_op_pj", where)
        per_op = {k: _number(section, k, f"{where} per_op_pj", positive=True) for k in PER_OP_KEYS}
        extra = sorted(set(d) & {"energy_pj", "sram_read_pj", "register_file", "dataflow"})
        if extra:
            raise HardwareConfigError(f"hardware config {where}: per_op_pj prices every operation; {extra} would be "
                                      "ignored (remove them, or per_op_pj)")
        return Hardware(energy_pj={}, sram=((1, 0.0),), sram_word_bits=64, sram_write_factor=0.0, event_fifo_bytes=1,
                        per_op_pj=per_op, **common)
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
    dataflow = d.get("dataflow", "auto")
    if dataflow not in (*DATAFLOWS, "auto"):
        raise HardwareConfigError(f"hardware config {where}: dataflow={dataflow!r}; expected scatter, gather or auto")
    rf = _section(d, "register_file", where)
    rf_bytes = _number(rf, "bytes", f"{where} register_file", positive=True)
    need = units["syn_units"] * spec.ACC_BITS // 8
    if rf_bytes < need:
        raise HardwareConfigError(f"hardware config {where}: register_file.bytes={rf_bytes:g} cannot hold the "
                                  f"{units['syn_units']} {spec.ACC_BITS}-bit accumulators of parallel.syn_units "
                                  f"({need} bytes)")
    return Hardware(energy_pj=e, sram=tuple(sorted(sram)), sram_word_bits=int(word_bits),
                    sram_write_factor=_number(d, "sram_write_factor", where),
                    event_fifo_bytes=int(_number(d, "event_fifo_bytes", where, positive=True)),
                    register_file_bytes=int(rf_bytes), register_pj=_number(rf, "pj_per_access", f"{where} register_file"),
                    dataflow=dataflow, **common)


# ---------------------------------------------------------------- pricing

def _ceil_div(a: float, b: int) -> float:
    return math.ceil(a / b) if a else 0


@dataclass(frozen=True)
class Geometry:
    """The shape facts of a spiking layer that its dataflows depend on."""

    group: int          # neurons per group: C_out at one position (conv) or N_out (dense)
    positions: int      # groups: output positions H' W' (conv) or 1 (dense)
    rf_inputs: int      # inputs a position reads: C_in k k (conv) or N_in (dense)
    n_in: int
    n_out: int
    in_bits: int        # bits of one input value (bits of its largest count)
    weight_bytes: float


def geometry(program: Program, layer) -> Geometry:
    top = program.input_max(layer.input)
    if layer.kind == "conv":
        group, positions = layer.out_shape[0], layer.out_shape[1] * layer.out_shape[2]
        rf = layer.in_shape[0] * layer.kernel ** 2
    else:
        group, positions, rf = layer.n_out, 1, layer.n_in
    return Geometry(group, positions, rf, layer.n_in, layer.n_out, int(top).bit_length(),
                    layer.weight.size * program.weight_bits / 8)


def _empty() -> dict[str, float]:
    return dict.fromkeys(OPERATIONS, 0.0)


def price_scatter(c: dict, g: Geometry, hw: Hardware, weight_bits: int, entry_bits: int) -> tuple[dict, float]:
    """(pJ by operation, cycles) of a spiking layer's counters under the scatter dataflow (module doc)."""
    wf, acc = hw.sram_write_factor, spec.ACC_BITS
    pj = _empty()
    pj["synaptic accumulate"] = c["syn_ops"] * hw.add(acc)
    pj["neuron update"] = c["neuron_updates"] * 4 * hw.add(spec.STATE_BITS) + c["leak_ops"] * 2 * hw.add(spec.STATE_BITS)
    pj["weight memory"] = (c["weight_rows"] * hw.words(g.group * weight_bits) * hw.sram_word(g.weight_bytes)
                           if c["weight_rows"] else 0.0)
    acc_words = ((c["fanout_groups"] + c["group_updates"]) * hw.words(g.group * acc)
                 + c["single_updates"] * hw.words(acc))
    pj["accumulator memory"] = acc_words * (1 + wf) * hw.sram_word(g.n_out * acc / 8) if acc_words else 0.0
    state_words = c["group_updates"] * hw.words(g.group * entry_bits) + c["single_updates"] * hw.words(entry_bits)
    pj["state memory"] = state_words * (1 + wf) * hw.sram_word(g.n_out * entry_bits / 8) if state_words else 0.0
    fifo = hw.sram_word(hw.event_fifo_bytes)
    queue = c["group_updates"] + c["single_updates"]
    pj["spike routing"] = (c["input_events"] * hw.words(spec.EVENT_BITS) + wf * c["spikes_out"] * hw.words(spec.EVENT_BITS)
                           + queue * (1 + wf)) * fifo
    cycles = (_ceil_div(c["syn_ops"], hw.syn_units) + _ceil_div(c["neuron_updates"] + c["leak_ops"], hw.neuron_units)
              + queue)
    return pj, cycles


def price_gather(c: dict, g: Geometry, hw: Hardware, weight_bits: int) -> tuple[dict, float]:
    """(pJ by operation, cycles) of a spiking layer's counters under the gather dataflow (module doc)."""
    wf = hw.sram_write_factor
    tiles = math.ceil(g.group / hw.syn_units)
    pj = _empty()
    bitmap_words = c["steps"] * g.positions * tiles * hw.words(g.rf_inputs * g.in_bits)
    nonzero = c["fanout_groups"] * tiles
    pj["input bitmap"] = bitmap_words * hw.sram_word(g.n_in * g.in_bits / 8)
    pj["other compute"] = (bitmap_words + nonzero) * hw.energy_pj["add8"]          # zero test, index of a nonzero
    pj["weight memory"] = nonzero * hw.words(min(hw.syn_units, g.group) * weight_bits) * hw.sram_word(g.weight_bytes)
    pj["synaptic accumulate"] = c["syn_ops"] * hw.add(spec.ACC_BITS)
    pj["register file"] = c["syn_ops"] * 2 * hw.register_pj
    updates = c["steps"] * g.n_out
    pj["neuron update"] = updates * 4 * hw.add(spec.STATE_BITS)
    pj["state memory"] = (c["steps"] * g.positions * hw.words(g.group * spec.STATE_BITS) * (1 + wf)
                          * hw.sram_word(g.n_out * spec.STATE_BITS / 8))
    pj["spike routing"] = c["steps"] * hw.words(g.n_out) * wf * hw.sram_word(g.n_out / 8)   # the output bitmap
    cycles = _ceil_div(c["syn_ops"], hw.syn_units) + bitmap_words + _ceil_div(updates, hw.neuron_units)
    return pj, cycles


def price_per_op(c: dict, hw: Hardware) -> tuple[dict, float]:
    """A chip's system-level energy per synaptic op and per MAC (``per_op_pj``): nothing else is added."""
    pj = _empty()
    pj["synaptic accumulate"] = c["syn_ops"] * hw.per_op_pj["synaptic_op"]
    pj["MAC"] = c["macs"] * hw.per_op_pj["mac"]
    cycles = (_ceil_div(c["syn_ops"], hw.syn_units) + _ceil_div(c["neuron_updates"] + c["leak_ops"], hw.neuron_units)
              + _ceil_div(c["macs"], hw.mac_units))
    return pj, cycles


def price_fusion(c: dict, row: int, n_weights: int, hw: Hardware, weight_bits: int) -> tuple[dict, float]:
    """(pJ by operation, cycles) of a warp, readout, score or attention unit: ``row`` weights per row read."""
    pj = _empty()
    pj["synaptic accumulate"] = c["syn_ops"] * hw.add(spec.ACC_BITS)
    pj["MAC"] = c["macs"] * (hw.mult(READOUT_MAC_BITS) + hw.add(spec.ACC_BITS))
    pj["other compute"] = c["adds"] * hw.add(spec.ACC_BITS) + c["lut_reads"] * hw.energy_pj["add8"]
    if c["weight_rows"]:
        pj["weight memory"] = c["weight_rows"] * hw.words(row * weight_bits) * hw.sram_word(n_weights * weight_bits / 8)
    cycles = (_ceil_div(c["syn_ops"] + c["adds"], hw.syn_units) + _ceil_div(c["macs"], hw.mac_units) + c["lut_reads"])
    return pj, cycles


def price_frontend(c: dict, program: Program, name: str, hw: Hardware) -> tuple[dict, float]:
    """(pJ by operation, cycles) of input ``name``'s front-end (firmware_sim.frontend): the identity costs
    nothing; otherwise, with n_out pooled elements of 8-bit counts (spec.COUNT_BITS):
      pooling (volume > 1)  one add8 and a read-modify-write of the element's count word per input event,
                            then each step the buffer scanned and cleared (words(n_out x 8), read + write)
      threshold and clip    one add8 (compare) per nonzero pooled element
      refractory (> 0)      per nonzero pooled element a read of its countdown word, per passed one a write
      adaptive level        every element every step: 2 add(16) and its level read and written
                            (words(n_out x LEVEL_BITS) per step, read + write)
    in SRAMs sized to what they hold. A per-op config prices each of these adds as one synaptic op (an
    upper bound: a compare is cheaper than a synaptic event)."""
    fe = program.frontend(name)
    shape, top = program.inputs[name]
    pj = _empty()
    if fe.is_identity(top):
        return pj, 0.0
    n_out = math.prod(fe.out_shape(shape))
    pooling = fe.volume > 1
    adds8 = (c["input_events"] if pooling else 0) + c["pooled_events"]
    adds16 = 2 * c["level_updates"]
    if hw.per_op_pj is not None:
        pj["other compute"] = (adds8 + adds16) * hw.per_op_pj["synaptic_op"]
        return pj, _ceil_div(adds8 + adds16, hw.syn_units)
    wf, count_bits = hw.sram_write_factor, spec.COUNT_BITS
    pj["other compute"] = adds8 * hw.energy_pj["add8"] + adds16 * hw.add(spec.LEVEL_BITS)
    words = 0.0
    if pooling:
        buffer = hw.sram_word(n_out * count_bits / 8)
        scan = c["steps"] * hw.words(n_out * count_bits)
        words += c["input_events"] * (1 + wf) + scan * (1 + wf)
        pj["state memory"] += (c["input_events"] + scan) * (1 + wf) * buffer
    if fe.refractory:
        stamp = hw.sram_word(n_out * spec.REFRACTORY_BITS / 8)
        pj["state memory"] += (c["pooled_events"] + wf * c["passed"]) * stamp
        words += c["pooled_events"] + c["passed"]
    if fe.adaptive:
        per_step = hw.words(n_out * spec.LEVEL_BITS)
        pj["state memory"] += c["steps"] * per_step * (1 + wf) * hw.sram_word(n_out * spec.LEVEL_BITS / 8)
        words += c["steps"] * per_step * 2
    return pj, _ceil_div(adds8 + adds16, hw.syn_units) + words


def fusion_row(program: Program, name: str) -> int:
    """Weights per row read by a fusion unit: a warp's D taps, the readout's K, the score MLP's H."""
    r = program.readout
    if name.startswith("warp."):
        return int(getattr(r, f"warp_{name.split('.', 1)[1]}").size)
    return {"readout": r.n_classes, "score": r.n_hidden}.get(name, 0)


def price_units(program: Program, counts: Counts, hw: Hardware) -> tuple[dict, dict]:
    """Per unit: (pJ by operation, cycles) of the chosen dataflow, summed over the samples run; and per
    spiking layer the total pJ of each dataflow and the one chosen."""
    entry = spec.STATE_BITS + spec.stamp_bits(program.max_T)
    layers = {layer.name: layer for layer in program.layers}
    priced, choice = {}, {}
    for name, unit in counts.units.items():
        c = unit.counts
        if unit.kind == "frontend":
            priced[name] = price_frontend(c, program, unit.modality, hw)
            continue
        if hw.per_op_pj is not None:
            priced[name] = price_per_op(c, hw)
            if name in layers:
                choice[name] = {"scatter_pj": sum(priced[name][0].values()), "gather_pj": sum(priced[name][0].values()),
                                "chosen": "per_op"}
            continue
        if name not in layers:
            priced[name] = price_fusion(c, fusion_row(program, name), unit.n_weights, hw, unit.weight_bits)
            continue
        g = geometry(program, layers[name])
        options = {"scatter": price_scatter(c, g, hw, unit.weight_bits, entry),
                   "gather": price_gather(c, g, hw, unit.weight_bits)}
        totals = {k: sum(pj.values()) for k, (pj, _) in options.items()}
        chosen = hw.dataflow if hw.dataflow != "auto" else min(totals, key=totals.get)
        priced[name] = options[chosen]
        choice[name] = {"scatter_pj": totals["scatter"], "gather_pj": totals["gather"], "chosen": chosen}
    return priced, choice


# ---------------------------------------------------------------- ANN baselines

def ann_shapes(program: Program) -> list[dict]:
    """Per layer of the network as a dense ANN: MACs, weights, input and output activations per frame,
    and the bits of its input's largest count."""
    out = []
    for layer in program.layers:
        top = program.input_max(layer.input)
        out.append({"name": layer.name, "modality": layer.modality, "macs": layer.n_out * layer.fan_in,
                    "weights": int(layer.weight.size), "in": layer.n_in, "out": layer.n_out,
                    "input_layer": layer.input in program.inputs, "input_max": int(top)})
    r = program.readout
    d = r.weight.shape[1]
    warps = {m: getattr(r, f"warp_{m}").size for m in r.modalities}
    warp = sum(size * program.feature_width(m) for m, size in warps.items())
    # logits, score MLP(s) (taaf_modal: each feature feeds its own branch's H units), weighted sum
    terms = max(r.n_branches, 1)
    head = (r.n_classes + r.n_hidden) * d + r.n_branches * r.n_hidden + terms * r.n_classes
    weights = int(r.weight.size + sum(warps.values()) + r.score_weights)
    out.append({"name": "readout", "modality": "fusion", "macs": warp + head, "weights": weights, "in": d,
                "out": r.n_classes + terms * (r.n_hidden + 1), "input_layer": False, "input_max": 1,
                "single_pass_macs": r.n_classes * d, "single_pass_weights": int(r.weight.size)})
    return out


def _ann_layer(hw: Hardware, macs: float, mac_pj: float, weights: int, weight_bits: int, n_in: float, in_bits: int,
               n_out: int, out_bits: int) -> tuple[float, float, float]:
    """(compute pJ, memory pJ, cycles) of one pass of one ANN layer: weights read once as a block,
    activations read once and written once, whole words."""
    wf = hw.sram_write_factor
    if hw.per_op_pj is not None:
        return macs * hw.per_op_pj["mac"], 0.0, _ceil_div(macs, hw.syn_units) + _ceil_div(n_out, hw.neuron_units)
    compute = macs * mac_pj + n_out * hw.add(spec.ACC_BITS)                 # accumulate, then requantise each output
    memory = hw.words(weights * weight_bits) * hw.sram_word(weights * weight_bits / 8)
    act_bytes = (n_in * in_bits + n_out * out_bits) / 8
    memory += (hw.words(n_in * in_bits) + wf * hw.words(n_out * out_bits)) * hw.sram_word(act_bytes)
    return compute, memory, _ceil_div(macs, hw.syn_units) + _ceil_div(n_out, hw.neuron_units)


def _ann_total(name: str, rows: dict, hw: Hardware, passes: int, label: str) -> dict:
    compute = sum(r[0] for r in rows.values()) * passes
    memory = sum(r[1] for r in rows.values()) * passes
    cycles = sum(r[2] for r in rows.values()) * passes
    latency_us = cycles / hw.clock_mhz
    static_pj = hw.static_power_mw * latency_us * 1e3
    return {"name": name, "label": label, "passes": passes, "energy_uj": (compute + memory + static_pj) * 1e-6,
            "compute_uj": compute * 1e-6, "memory_uj": memory * 1e-6, "static_uj": static_pj * 1e-6,
            "cycles": cycles, "latency_us": latency_us,
            "by_layer": {k: {"energy_uj": (r[0] + r[1]) * passes * 1e-6} for k, r in rows.items()}}


def price_ann_frames(program: Program, hw: Hardware, frames: int) -> dict:
    """(a) the dense int8 ANN over ``frames`` frames (8-bit activations, every MAC every frame)."""
    bits = program.weight_bits
    rows = {s["name"]: _ann_layer(hw, s["macs"], hw.mac_pj(bits, 8), s["weights"], bits, s["in"], 8, s["out"], 8)
            for s in ann_shapes(program)}
    return _ann_total("ann_int8_T", rows, hw, frames, f"dense int8 ANN over the same {frames} frames")


def window_bits(steps: int, top: int = 1) -> int:
    """Bits of a count over the window: ceil(log2(steps x top + 1))."""
    return max(1, math.ceil(math.log2(steps * top + 1)))


def price_ann_single_pass(program: Program, hw: Hardware, steps: int, counts: Counts | None = None) -> dict:
    """(b) one pass over the window with ceil(log2(T + 1))-bit activations; with ``counts`` (the SNN
    run's active inputs and neurons standing for the nonzero activations): (c), skipping zeros."""
    bits, n = program.weight_bits, max(counts.n_samples, 1) if counts is not None else 1
    hidden = window_bits(steps)
    rows = {}
    for s in ann_shapes(program):
        a_in = window_bits(steps, s["input_max"]) if s["input_layer"] else hidden
        if s["name"] == "readout":
            macs, weights, n_in, n_out = s["single_pass_macs"], s["single_pass_weights"], s["in"], program.n_classes
            if counts is not None:   # the fused features that were active in the window
                r = program.readout
                active = sum(counts.units[getattr(r, f"{m}_input")].counts["active_neurons"] for m in r.modalities) / n
                macs, n_in = program.n_classes * active, active
        else:
            macs, weights, n_in, n_out = s["macs"], s["weights"], s["in"], s["out"]
            if counts is not None:
                c = counts.units[s["name"]].counts
                macs, n_in = c["active_synapses"] / n, c["active_inputs"] / n
        compute, memory, cycles = _ann_layer(hw, macs, hw.mac_pj(bits, a_in), weights, bits, n_in, a_in, n_out, hidden)
        if counts is not None and hw.per_op_pj is None:
            memory += hw.words(s["in"]) * hw.sram_word(s["in"] / 8)      # the nonzero bitmap that drives the skip
        rows[s["name"]] = (compute, memory, cycles)
    if counts is None:
        return _ann_total("ann_single_pass", rows, hw, 1, f"single-pass int8 ANN, {hidden}-bit window counts")
    return _ann_total("ann_single_pass_zero_skip", rows, hw, 1,
                      f"single-pass int8 ANN, {hidden}-bit counts, zero activations skipped (its best case)")


def energy_report(program: Program, counts: Counts, hw: Hardware, steps: int) -> dict:
    """Energy and latency per inference of the counted run (``steps`` = T it ran), per unit, per
    modality and per kind of operation, the dataflow of each spiking layer, the three ANN baselines
    and the ratios."""
    n = max(counts.n_samples, 1)
    priced, choice = price_units(program, counts, hw)
    units, by_mod, by_op = {}, {}, dict.fromkeys(OPERATIONS, 0.0)
    total_pj, total_cycles = 0.0, 0.0
    for name, unit in counts.units.items():
        pj, cycles = priced[name]
        pj = {k: v / n for k, v in pj.items()}
        cycles /= n
        static = hw.static_power_mw * cycles / hw.clock_mhz * 1e3
        pj["static"] = static
        e = sum(pj.values())
        units[name] = {"modality": unit.modality, "kind": unit.kind, "energy_uj": e * 1e-6, "cycles": cycles,
                       "latency_us": cycles / hw.clock_mhz, "pj_by_operation": pj,
                       **({"dataflow": choice[name]["chosen"]} if name in choice else {})}
        m = by_mod.setdefault(unit.modality, {"energy_uj": 0.0, "cycles": 0.0, "latency_us": 0.0})
        m["energy_uj"] += e * 1e-6
        m["cycles"] += cycles
        m["latency_us"] += cycles / hw.clock_mhz
        for k, v in pj.items():
            by_op[k] += v * 1e-6
        total_pj += e
        total_cycles += cycles
    dataflows = {k: {"scatter_uj": v["scatter_pj"] / n * 1e-6, "gather_uj": v["gather_pj"] / n * 1e-6,
                     "chosen": v["chosen"]} for k, v in choice.items()}
    ann = {"ann_int8_T": price_ann_frames(program, hw, steps), "ann_single_pass": price_ann_single_pass(program, hw, steps),
           "ann_single_pass_zero_skip": price_ann_single_pass(program, hw, steps, counts)}
    snn_uj = total_pj * 1e-6
    snn_compute = sum(by_op[k] for k in ("synaptic accumulate", "neuron update", "MAC", "other compute"))
    # The layers that read the encoders' events cost what the input makes them cost (their events,
    # weight rows, reached neurons) whatever the later layers do: an upper bound on the ratio.
    first_uj = sum(units[layer.name]["energy_uj"] for layer in program.layers if layer.input in program.inputs)

    def ratio(a, b):
        return a / b if b else math.inf
    return {
        "hardware": hw.name, "clock_mhz": hw.clock_mhz, "samples": counts.n_samples, "steps": steps,
        "energy_uj": snn_uj, "cycles": total_cycles, "latency_us": total_cycles / hw.clock_mhz,
        "energy_uj_by_operation": by_op, "by_modality": by_mod, "by_unit": units, "dataflows": dataflows, **ann,
        "ratios": {"energy_ann_int8_vs_snn": ratio(ann["ann_int8_T"]["energy_uj"], snn_uj),
                   "energy_single_pass_ann_vs_snn": ratio(ann["ann_single_pass"]["energy_uj"], snn_uj),
                   "energy_single_pass_zero_skip_vs_snn": ratio(ann["ann_single_pass_zero_skip"]["energy_uj"], snn_uj),
                   "latency_ann_int8_vs_snn": ratio(ann["ann_int8_T"]["cycles"], total_cycles),
                   # arithmetic only, memory and static left out (the usual figure in SNN papers)
                   "compute_ann_int8_vs_snn": ratio(ann["ann_int8_T"]["compute_uj"], snn_compute),
                   "bound_ann_int8_vs_snn_if_later_layers_free": ratio(ann["ann_int8_T"]["energy_uj"], first_uj)},
    }
