"""Energy and latency of ANNs, by one set of rules: the three baselines built from the SNN's layer shapes
and any ANN given as a list of layer shapes (``AnnLayer``, e.g. the trained competitor of
quant/ann_competitor.py) are priced by the same function, ``price_ann_pass``.

Per layer and pass, on a component config (docs/accelerator.md, "Pricing rules"):

  MAC          a weight_bits x in_bits multiply at the inputs' real width (``Hardware.mult_narrow``: a
               1-bit input is an AND row, not an 8x8 multiply) + add(ACC)
  outputs      one add(ACC) per output (requantisation)
  weights      read once per pass as a block, whole ``sram_word_bits`` words, in an SRAM sized to them
  activations  inputs read once, outputs written once (x sram_write_factor), whole words, in an SRAM
               sized to the layer's input and output
  registers    per MAC, the accumulator read and written (2 accesses) and one access per operand taken
               from a reuse buffer: the weight when a weight serves more than one MAC per pass (a
               convolution), the input when an input serves more than one MAC (any fan-out > 1)
  count frame  a layer that reads the sensors' events (``frame_events`` set) first accumulates them into
               a frame of in_bits counters: per event one add and a read-modify-write of its counter's
               word, and the frame cleared once per pass (written whole); reading the frame is the
               layer's input read above
  zero-skip    multiply only the nonzero inputs (measured ``nonzero_in``, ``nonzero_macs``), plus a read
               of the layer's nonzero bitmap (one bit per input); its best case (weights still read once)
  cycles       MACs / syn_units + outputs / neuron_units + one per frame event and cleared word
  static       static_power_mw over the latency

On an operation_count config (``per_op_pj``): each MAC one ``mac``, each output one ``neuron_update``
(the ANN's activation is its neuron), each frame event one ``synaptic_op`` (an add); memory, buffers and
static power are inside those figures, as they are for the SNN.

The baselines (``price_baselines``), from the SNN's Program and its counted run:
  (a) ann_int8_T: dense int8 over the same T frames: every MAC every frame; the input layers read each
      step's frame at its real width (bits of the input's largest count: 1 for binary spikes), hidden
      activations 8 bits; each frame formed from the step's events.
  (b) ann_single_pass: one pass over the window (Yan et al., arXiv 2409.08290): activations are counts
      over the window, ceil(log2(T + 1)) bits (an input layer: bits of T x its largest count), formed
      into a count frame from the window's events; the readout K x D logits only.
  (c) ann_single_pass_zero_skip: (b) multiplying only the nonzero activations (the SNN run's active
      inputs, neurons and synapses stand for the ANN's nonzeros).
Units: energies in pJ inside, uJ in the results; latency in us at ``clock_mhz``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace

from firmware_sim import spec
from firmware_sim.counters import Counts
from firmware_sim.hardware import Hardware, ceil_div
from firmware_sim.program import Program

TERMS = ("compute", "memory", "static")
HIDDEN_BITS_INT8 = 8        # baseline (a)'s hidden activations
# the three baselines of the report and the key of their ratio to the SNN
ANN_RATIOS = (("ann_int8_T", "energy_ann_int8_vs_snn"), ("ann_single_pass", "energy_single_pass_ann_vs_snn"),
              ("ann_single_pass_zero_skip", "energy_single_pass_zero_skip_vs_snn"))


@dataclass(frozen=True)
class AnnLayer:
    """One layer of an ANN, per pass (one frame, or one window).

    macs / weights: multiply-accumulates of one pass and weights stored (``weight_bits`` each);
    n_in / in_bits: input activations read and the bits of one; n_out / out_bits: the same for outputs;
    nonzero_in / nonzero_macs: measured means per pass of the nonzero inputs and of the MACs whose
    input is nonzero (None: not measured; the zero-skip price needs them);
    frame_events: for a layer that reads the sensors' events, the mean events per pass accumulated into
    its input frame (the count frame is then priced); None for a layer fed by another layer."""

    name: str
    macs: int
    weights: int
    n_in: int
    in_bits: int
    n_out: int
    out_bits: int
    weight_bits: int = 8
    nonzero_in: float | None = None
    nonzero_macs: float | None = None
    frame_events: float | None = None

    def __post_init__(self):
        where = f"ANN layer {self.name!r}"
        for key in ("macs", "weights", "n_in", "n_out"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{where}: {key}={value!r}; expected a whole number >= 0")
        for key in ("in_bits", "out_bits", "weight_bits"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
                raise ValueError(f"{where}: {key}={value!r}; expected a bit width 1..32")
        for key, top in (("nonzero_in", self.n_in), ("nonzero_macs", self.macs), ("frame_events", math.inf)):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or not 0 <= value <= top):
                raise ValueError(f"{where}: {key}={value!r}; expected a measured mean in [0, {top}]")

    def as_dict(self) -> dict:
        return asdict(self)


def as_layers(layers: Iterable[AnnLayer | Mapping]) -> list[AnnLayer]:
    """AnnLayer objects from AnnLayer objects or mappings with the same keys."""
    out = [layer if isinstance(layer, AnnLayer) else AnnLayer(**dict(layer)) for layer in layers]
    if not out:
        raise ValueError("an ANN needs at least one layer")
    names = [layer.name for layer in out]
    if len(set(names)) != len(names):
        raise ValueError(f"ANN layer names repeat: {names}")
    return out


def window_bits(steps: int, top: int = 1) -> int:
    """Bits of a count over the window: ceil(log2(steps x top + 1))."""
    return max(1, math.ceil(math.log2(steps * top + 1)))


def _per_op_layer(s: AnnLayer, hw: Hardware, macs: float) -> dict:
    op, events = hw.per_op_pj, s.frame_events or 0.0
    frame = events * op["synaptic_op"]
    return {"compute": macs * op["mac"] + s.n_out * op["neuron_update"] + frame, "memory": 0.0, "count_frame": frame,
            "cycles": ceil_div(macs, hw.syn_units) + ceil_div(s.n_out, hw.neuron_units) + ceil_div(events, hw.syn_units)}


def layer_cost(s: AnnLayer, hw: Hardware, zero_skip: bool = False) -> dict:
    """pJ (compute, memory, of which count_frame) and cycles of one pass of one layer (module doc)."""
    macs, n_in = s.macs, s.n_in
    if zero_skip:
        if s.nonzero_in is None or s.nonzero_macs is None:
            raise ValueError(f"ANN layer {s.name!r}: zero-skip pricing needs its measured nonzero_in and nonzero_macs")
        macs, n_in = s.nonzero_macs, s.nonzero_in
    if hw.operation_count:
        return _per_op_layer(s, hw, macs)
    wf, acc = hw.sram_write_factor, spec.ACC_BITS
    compute = macs * (hw.mult_narrow(s.weight_bits, s.in_bits) + hw.add(acc)) + s.n_out * hw.add(acc)
    weight_bits = s.weights * s.weight_bits
    memory = hw.words(weight_bits) * hw.sram_word(weight_bits / 8)
    act_bytes = (s.n_in * s.in_bits + s.n_out * s.out_bits) / 8
    memory += (hw.words(n_in * s.in_bits) + wf * hw.words(s.n_out * s.out_bits)) * hw.sram_word(act_bytes)
    buffered = (s.macs > s.weights) + (s.macs > s.n_in)          # operands served from a reuse buffer
    memory += macs * (2 + buffered) * hw.register_pj
    if zero_skip:
        memory += hw.words(s.n_in) * hw.sram_word(s.n_in / 8)    # the nonzero bitmap that drives the skip
    frame, cycles = 0.0, ceil_div(macs, hw.syn_units) + ceil_div(s.n_out, hw.neuron_units)
    if s.frame_events is not None:
        frame_bits = s.n_in * s.in_bits
        word = hw.sram_word(frame_bits / 8)
        frame_compute = s.frame_events * hw.add(max(s.in_bits, 8))
        frame = frame_compute + (s.frame_events * (1 + wf) + wf * hw.words(frame_bits)) * word
        compute += frame_compute
        memory += frame - frame_compute
        cycles += s.frame_events + hw.words(frame_bits)
    return {"compute": compute, "memory": memory, "count_frame": frame, "cycles": cycles}


def covers(hw: Hardware, layers: list[AnnLayer], zero_skip: bool) -> list[str]:
    """What an ANN figure priced by price_ann_pass covers, in words."""
    framed = [s.name for s in layers if s.frame_events is not None]
    frame = [f"the count frame of {framed}: an add and a counter-word read-modify-write per event, cleared per pass"
             if framed else "no count frame (no layer reads the sensors' events)"]
    if hw.operation_count:
        return [f"operation count ({hw.name}): each MAC one mac, each output one neuron_update, each frame event "
                "one synaptic_op; memory, buffers and static power inside the chip's per-operation figures", *frame]
    return ["MACs at the operands' real widths" + (", nonzero inputs only, plus the nonzero bitmap" if zero_skip else ""),
            "requantisation of every output", "weights read once per pass", "activations read once and written once",
            "accumulator registers and operand reuse buffers: one register access per use", *frame,
            "static power over the latency"]


def price_ann_pass(layers: Iterable[AnnLayer | Mapping], hw: Hardware, zero_skip: bool = False, passes: int = 1,
                   name: str | None = None, label: str | None = None) -> dict:
    """``passes`` passes of the ANN on ``hw``: energy_uj and its compute_uj / memory_uj / static_uj split (the
    count frame's share apart as count_frame_uj), the term that dominates (``dominant``), cycles, latency_us,
    by_layer (energy_uj, compute_uj, memory_uj, count_frame_uj), hardware, hardware_kind and ``covers``.

    zero_skip: multiply only the measured nonzero inputs and read each layer's nonzero bitmap;
    raises ValueError naming a layer that has no measurement."""
    layers = as_layers(layers)
    rows = {s.name: layer_cost(s, hw, zero_skip) for s in layers}
    default = (("ann_zero_skip", "single-pass int8 ANN, zero inputs skipped (measured)") if zero_skip
               else ("ann_dense", "single-pass int8 ANN, every MAC"))
    compute = sum(r["compute"] for r in rows.values()) * passes
    memory = sum(r["memory"] for r in rows.values()) * passes
    cycles = sum(r["cycles"] for r in rows.values()) * passes
    latency_us = cycles / hw.clock_mhz
    static = hw.static_power_mw * latency_us * 1e3
    total = {"name": name or default[0], "label": label or default[1], "passes": passes,
             "energy_uj": (compute + memory + static) * 1e-6, "compute_uj": compute * 1e-6, "memory_uj": memory * 1e-6,
             "static_uj": static * 1e-6, "count_frame_uj": sum(r["count_frame"] for r in rows.values()) * passes * 1e-6,
             "cycles": cycles, "latency_us": latency_us,
             "by_layer": {k: {"energy_uj": (r["compute"] + r["memory"]) * passes * 1e-6,
                              "compute_uj": r["compute"] * passes * 1e-6, "memory_uj": r["memory"] * passes * 1e-6,
                              "count_frame_uj": r["count_frame"] * passes * 1e-6} for k, r in rows.items()},
             "hardware": hw.name, "hardware_kind": hw.kind, "covers": covers(hw, layers, zero_skip)}
    total["dominant"] = max(TERMS, key=lambda term: total[f"{term}_uj"])
    return total


def price_ann(layers: Iterable[AnnLayer | Mapping], hw: Hardware) -> dict:
    """{"dense": price_ann_pass(...), "zero_skip": price_ann_pass(..., zero_skip=True) or None when some
    layer lacks its nonzero measurement}."""
    layers = as_layers(layers)
    measured = all(s.nonzero_in is not None and s.nonzero_macs is not None for s in layers)
    return {"dense": price_ann_pass(layers, hw), "zero_skip": price_ann_pass(layers, hw, True) if measured else None}


# ---------------------------------------------------------------- the baselines from the SNN's shapes

def ann_shapes(program: Program) -> list[dict]:
    """Per layer of the network as a dense ANN: MACs, weights, input and output activations per frame,
    the input it reads and the bits of that input's largest count."""
    out = []
    for layer in program.layers:
        top = program.input_max(layer.input)
        out.append({"name": layer.name, "modality": layer.modality, "macs": layer.n_out * layer.fan_in,
                    "weights": int(layer.weight.size), "in": layer.n_in, "out": layer.n_out, "input": layer.input,
                    "input_layer": layer.input in program.inputs, "input_max": int(top)})
    r = program.readout
    d = r.weight.shape[1]
    warps = {m: getattr(r, f"warp_{m}").size for m in r.modalities}
    warp = sum(size * program.feature_width(m) for m, size in warps.items())
    # logits, score MLP(s) (taaf_modal: each feature feeds its own branch's H units), weighted sum
    branches = max(r.n_branches, 1)
    head = (r.n_classes + r.n_hidden) * d + r.n_branches * r.n_hidden + branches * r.n_classes
    weights = int(r.weight.size + sum(warps.values()) + r.score_weights)
    out.append({"name": "readout", "modality": "fusion", "macs": warp + head, "weights": weights, "in": d,
                "out": r.n_classes + branches * (r.n_hidden + 1), "input": None, "input_layer": False, "input_max": 1,
                "single_pass_macs": r.n_classes * d, "single_pass_weights": int(r.weight.size)})
    return out


def _events(counts: Counts, shapes: list[dict]) -> dict[str, float]:
    """Mean events per inference into each input layer's frame: the events its SNN twin read (each input's
    frame is formed once, by the first layer that reads it)."""
    n, seen, out = max(counts.n_samples, 1), set(), {}
    for s in shapes:
        if s["input_layer"] and s["input"] not in seen:
            seen.add(s["input"])
            out[s["name"]] = counts.units[s["name"]].counts["input_events"] / n
    return out


def frame_layers(program: Program, counts: Counts, frames: int) -> list[AnnLayer]:
    """Baseline (a)'s layers, per frame: inputs at their real width, hidden activations 8 bits."""
    bits, events = program.weight_bits, _events(counts, ann_shapes(program))
    return [AnnLayer(s["name"], s["macs"], s["weights"], s["in"],
                     int(s["input_max"]).bit_length() if s["input_layer"] else HIDDEN_BITS_INT8, s["out"],
                     HIDDEN_BITS_INT8, bits, frame_events=events[s["name"]] / frames if s["name"] in events else None)
            for s in ann_shapes(program)]


def window_layers(program: Program, counts: Counts, steps: int) -> list[AnnLayer]:
    """Baselines (b) and (c)'s layers, one pass over the window of ``steps`` steps, with the SNN run's
    active inputs, neurons and synapses as the measured nonzeros (per inference)."""
    n, shapes = max(counts.n_samples, 1), ann_shapes(program)
    bits, hidden, events = program.weight_bits, window_bits(steps), _events(counts, shapes)
    out = []
    for s in shapes:
        in_bits = window_bits(steps, s["input_max"]) if s["input_layer"] else hidden
        if s["name"] == "readout":
            r = program.readout
            active = sum(counts.units[getattr(r, f"{m}_input")].counts["active_neurons"] for m in r.modalities) / n
            out.append(AnnLayer("readout", s["single_pass_macs"], s["single_pass_weights"], s["in"], in_bits,
                                program.n_classes, hidden, bits, nonzero_in=active,
                                nonzero_macs=program.n_classes * active))
            continue
        c = counts.units[s["name"]].counts
        out.append(AnnLayer(s["name"], s["macs"], s["weights"], s["in"], in_bits, s["out"], hidden, bits,
                            nonzero_in=c["active_inputs"] / n, nonzero_macs=c["active_synapses"] / n,
                            frame_events=events.get(s["name"])))
    return out


def price_baselines(program: Program, counts: Counts, hw: Hardware, steps: int) -> dict:
    """The three baselines (module doc), each a price_ann_pass result (their own cost only: the shared
    sensor and event front-end rows are added by firmware_sim.energy)."""
    hidden = window_bits(steps)
    window = window_layers(program, counts, steps)
    return {
        "ann_int8_T": price_ann_pass(frame_layers(program, counts, steps), hw, passes=steps, name="ann_int8_T",
                                     label=f"dense int8 ANN over the same {steps} frames"),
        "ann_single_pass": price_ann_pass([replace(s, nonzero_in=None, nonzero_macs=None) for s in window], hw,
                                          name="ann_single_pass",
                                          label=f"single-pass int8 ANN, {hidden}-bit window counts"),
        "ann_single_pass_zero_skip": price_ann_pass(
            window, hw, zero_skip=True, name="ann_single_pass_zero_skip",
            label=f"single-pass int8 ANN, {hidden}-bit counts, zero activations skipped (its best case)"),
    }
