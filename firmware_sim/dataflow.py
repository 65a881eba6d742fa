"""The SNN's counts -> pJ and cycles, unit by unit (docs/accelerator.md, "Dataflow" and "Pricing rules").

Every access to a memory is a whole number of words of ``sram_word_bits`` (W); an SRAM's cost per
word comes from the config's table by the memory's size (power law between entries). Widths come from
firmware_sim.spec: weights ``weight_bits``, accumulators ACC_BITS, membranes STATE_BITS plus a
time stamp of spec.stamp_bits(max_T) bits (entry E), address-events EVENT_BITS.

A spiking layer is priced under two dataflows; the config's ``dataflow`` picks one, or ``auto`` (the
default) the cheaper one per layer:

  scatter (event-driven, as SNE and Loihi): each input event reads its weight row(s) and does a
    read-modify-write of the accumulators of every neuron group it reaches, in an accumulator SRAM
    sized to the layer (N_out x ACC_BITS); a step's update reads and clears those accumulators and
    reads and writes the membrane + time-stamp entries (a state SRAM sized to the layer) of the
    listed groups only, with the catch-up leak of the skipped steps; the list is an update queue.
      weights   weight_rows x ceil(row x wbits / W)                     x SRAM(layer weights)
      buffer    conv: syn_ops reads of the C_out x k x k tap buffer      x register access
      accum.    (fanout_groups + group_updates) x ceil(group x ACC / W) x (1 + wf) x SRAM(N_out x ACC)
                + single_updates x ceil(ACC / W) x (1 + wf)             (dense armed neurons, one by one)
      state     (group_updates x ceil(group x E / W) + single_updates x ceil(E / W)) x (1 + wf) x SRAM(N_out x E)
      queue     (group_updates + single_updates) x (1 + wf) words of the event FIFO
      compute   syn_ops x add(ACC) + neuron_updates x 4 add(STATE) (3 for IF: no leak) + leak_ops x 2 add(STATE)
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

Operand and reuse buffers are priced, on this side as on the ANNs' (firmware_sim.ann_cost): an operand
read straight from SRAM costs its SRAM words; an operand loaded once and used again (a conv tap held in
the tap buffer for the channel's run of events) costs one register access per use. A scatter dense
event's row and a gather tile's weights go straight from SRAM to the adders (no buffer).

The warps, readout, score MLP and attention are priced alike under both: MACs mult(16) + add(ACC),
weight rows whole words, the exp2 lookup as an add8, plain adds add(ACC). The concatenation z = [a ; v]
is an address offset (no operation).

An operation_count config (``per_op_pj``) prices every synaptic add and every other add (front-end,
attention, lookups) as one ``synaptic_op``, every neuron update and every catch-up leak step as one
``neuron_update``, every MAC as one ``mac``; nothing else (memory, buffers, static: in the figures).

add(b) interpolates linearly in b between add8 and add32; mult(b) geometrically between mult8 and
mult32. Latency: layers run one after another; within one, ``syn_units`` accumulators,
``neuron_units`` LIF units and ``mac_units`` multipliers work in parallel, one memory word per cycle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from firmware_sim import spec
from firmware_sim.counters import Counts
from firmware_sim.hardware import Hardware, ceil_div
from firmware_sim.program import Program

OPERATIONS = ("synaptic accumulate", "neuron update", "MAC", "other compute", "weight memory", "accumulator memory",
              "state memory", "input bitmap", "register file", "spike routing", "static")
# how the operations add up to the three terms every figure is split into (SNN and ANNs alike)
COMPUTE_OPERATIONS = ("synaptic accumulate", "neuron update", "MAC", "other compute")
MEMORY_OPERATIONS = ("weight memory", "accumulator memory", "state memory", "input bitmap", "register file",
                     "spike routing")
READOUT_MAC_BITS = 16


def empty() -> dict[str, float]:
    """pJ by operation, all zero."""
    return dict.fromkeys(OPERATIONS, 0.0)


def terms(pj: dict) -> dict[str, float]:
    """pJ by operation -> pJ by term (compute, memory, static)."""
    return {"compute": sum(pj.get(k, 0.0) for k in COMPUTE_OPERATIONS),
            "memory": sum(pj.get(k, 0.0) for k in MEMORY_OPERATIONS), "static": pj.get("static", 0.0)}


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
    tap_buffer: bool = False   # a conv layer: scatter reads its weights through the tap buffer
    update_adds: int = 4       # adds of one neuron update: leak v - (v >> k), + I, the compare, the reset; 3 for IF


def geometry(program: Program, layer) -> Geometry:
    top = program.input_max(layer.input)
    if layer.kind == "conv":
        group, positions = layer.out_shape[0], layer.out_shape[1] * layer.out_shape[2]
        rf = layer.in_shape[0] * layer.kernel ** 2
    else:
        group, positions, rf = layer.n_out, 1, layer.n_in
    return Geometry(group, positions, rf, layer.n_in, layer.n_out, int(top).bit_length(),
                    layer.weight.size * program.weight_bits / 8, tap_buffer=layer.kind == "conv",
                    update_adds=3 if program.leak_shift >= spec.LEAK_OFF else 4)


def price_scatter(c: dict, g: Geometry, hw: Hardware, weight_bits: int, entry_bits: int) -> tuple[dict, float]:
    """(pJ by operation, cycles) of a spiking layer's counters under the scatter dataflow (module doc)."""
    wf, acc = hw.sram_write_factor, spec.ACC_BITS
    pj = empty()
    pj["synaptic accumulate"] = c["syn_ops"] * hw.add(acc)
    pj["neuron update"] = (c["neuron_updates"] * g.update_adds * hw.add(spec.STATE_BITS)
                           + c["leak_ops"] * 2 * hw.add(spec.STATE_BITS))
    pj["weight memory"] = (c["weight_rows"] * hw.words(g.group * weight_bits) * hw.sram_word(g.weight_bytes)
                           if c["weight_rows"] else 0.0)
    pj["register file"] = c["syn_ops"] * hw.register_pj if g.tap_buffer else 0.0      # tap-buffer reads, one per use
    acc_words = ((c["fanout_groups"] + c["group_updates"]) * hw.words(g.group * acc)
                 + c["single_updates"] * hw.words(acc))
    pj["accumulator memory"] = acc_words * (1 + wf) * hw.sram_word(g.n_out * acc / 8) if acc_words else 0.0
    state_words = c["group_updates"] * hw.words(g.group * entry_bits) + c["single_updates"] * hw.words(entry_bits)
    pj["state memory"] = state_words * (1 + wf) * hw.sram_word(g.n_out * entry_bits / 8) if state_words else 0.0
    fifo = hw.sram_word(hw.event_fifo_bytes)
    queue = c["group_updates"] + c["single_updates"]
    pj["spike routing"] = (c["input_events"] * hw.words(spec.EVENT_BITS) + wf * c["spikes_out"] * hw.words(spec.EVENT_BITS)
                           + queue * (1 + wf)) * fifo
    cycles = (ceil_div(c["syn_ops"], hw.syn_units) + ceil_div(c["neuron_updates"] + c["leak_ops"], hw.neuron_units)
              + queue)
    return pj, cycles


def price_gather(c: dict, g: Geometry, hw: Hardware, weight_bits: int) -> tuple[dict, float]:
    """(pJ by operation, cycles) of a spiking layer's counters under the gather dataflow (module doc)."""
    wf = hw.sram_write_factor
    tiles = math.ceil(g.group / hw.syn_units)
    pj = empty()
    bitmap_words = c["steps"] * g.positions * tiles * hw.words(g.rf_inputs * g.in_bits)
    nonzero = c["fanout_groups"] * tiles
    pj["input bitmap"] = bitmap_words * hw.sram_word(g.n_in * g.in_bits / 8)
    pj["other compute"] = (bitmap_words + nonzero) * hw.energy_pj["add8"]          # zero test, index of a nonzero
    pj["weight memory"] = nonzero * hw.words(min(hw.syn_units, g.group) * weight_bits) * hw.sram_word(g.weight_bytes)
    pj["synaptic accumulate"] = c["syn_ops"] * hw.add(spec.ACC_BITS)
    pj["register file"] = c["syn_ops"] * 2 * hw.register_pj
    updates = c["steps"] * g.n_out
    pj["neuron update"] = updates * g.update_adds * hw.add(spec.STATE_BITS)
    pj["state memory"] = (c["steps"] * g.positions * hw.words(g.group * spec.STATE_BITS) * (1 + wf)
                          * hw.sram_word(g.n_out * spec.STATE_BITS / 8))
    pj["spike routing"] = c["steps"] * hw.words(g.n_out) * wf * hw.sram_word(g.n_out / 8)   # the output bitmap
    cycles = ceil_div(c["syn_ops"], hw.syn_units) + bitmap_words + ceil_div(updates, hw.neuron_units)
    return pj, cycles


def price_per_op(c: dict, hw: Hardware) -> tuple[dict, float]:
    """An operation_count config: each add one synaptic_op, each neuron update or catch-up leak step one
    neuron_update, each MAC one mac (module doc); nothing else is added."""
    op = hw.per_op_pj
    pj = empty()
    pj["synaptic accumulate"] = c["syn_ops"] * op["synaptic_op"]
    pj["neuron update"] = (c["neuron_updates"] + c["leak_ops"]) * op["neuron_update"]
    pj["MAC"] = c["macs"] * op["mac"]
    pj["other compute"] = (c["adds"] + c["lut_reads"]) * op["synaptic_op"]
    cycles = (ceil_div(c["syn_ops"] + c["adds"], hw.syn_units) + c["lut_reads"]
              + ceil_div(c["neuron_updates"] + c["leak_ops"], hw.neuron_units) + ceil_div(c["macs"], hw.mac_units))
    return pj, cycles


def price_fusion(c: dict, row: int, n_weights: int, hw: Hardware, weight_bits: int) -> tuple[dict, float]:
    """(pJ by operation, cycles) of a warp, readout, score or attention unit: ``row`` weights per row read."""
    pj = empty()
    pj["synaptic accumulate"] = c["syn_ops"] * hw.add(spec.ACC_BITS)
    pj["MAC"] = c["macs"] * (hw.mult(READOUT_MAC_BITS) + hw.add(spec.ACC_BITS))
    pj["other compute"] = c["adds"] * hw.add(spec.ACC_BITS) + c["lut_reads"] * hw.energy_pj["add8"]
    if c["weight_rows"]:
        pj["weight memory"] = c["weight_rows"] * hw.words(row * weight_bits) * hw.sram_word(n_weights * weight_bits / 8)
    cycles = (ceil_div(c["syn_ops"] + c["adds"], hw.syn_units) + ceil_div(c["macs"], hw.mac_units) + c["lut_reads"])
    return pj, cycles


def price_frontend(c: dict, program: Program, name: str, hw: Hardware) -> tuple[dict, float]:
    """(pJ by operation, cycles) of input ``name``'s event front-end (firmware_sim.frontend): the identity
    costs nothing; otherwise, with n_out pooled elements of 8-bit counts (spec.COUNT_BITS):
      pooling (volume > 1)  one add8 and a read-modify-write of the element's count word per input event,
                            then each step the buffer scanned and cleared (words(n_out x 8), read + write)
      threshold and clip    one add8 (compare) per nonzero pooled element
      refractory (> 0)      per nonzero pooled element a read of its countdown word, per passed one a write
      adaptive level        every element every step: 2 add(16) and its level read and written
                            (words(n_out x LEVEL_BITS) per step, read + write)
    in SRAMs sized to what they hold. An operation_count config prices each of these adds as one synaptic
    op (an upper bound: a compare is cheaper than a synaptic event)."""
    fe = program.frontend(name)
    shape, top = program.inputs[name]
    pj = empty()
    if fe.is_identity(top):
        return pj, 0.0
    n_out = math.prod(fe.out_shape(shape))
    pooling = fe.volume > 1
    adds8 = (c["input_events"] if pooling else 0) + c["pooled_events"]
    adds16 = 2 * c["level_updates"]
    if hw.operation_count:
        pj["other compute"] = (adds8 + adds16) * hw.per_op_pj["synaptic_op"]
        return pj, ceil_div(adds8 + adds16, hw.syn_units)
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
    return pj, ceil_div(adds8 + adds16, hw.syn_units) + words


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
        if hw.operation_count:
            priced[name] = price_per_op(c, hw)
            if name in layers:
                total = sum(priced[name][0].values())
                choice[name] = {"scatter_pj": total, "gather_pj": total, "chosen": "per_op"}
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
