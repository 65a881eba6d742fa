"""Energy and latency of one pass of a single-pass int8 ANN, priced like firmware_sim.energy's ANN baselines.

The baselines in firmware_sim.energy derive their layer shapes from the SNN's Program; this module
prices any ANN given as a list of layer shapes (``AnnLayer``: MACs, weights, input and output
activations with their bit widths), e.g. the trained competitor of quant/ann_competitor.py. The rules
are the baselines' own, through the same functions (``_ann_layer``, ``_ann_total``):

  dense       every MAC once, a weight_bits x in_bits multiply costed mult8 x wbits x in_bits / 64 plus
              add(ACC) and two register accesses (``Hardware.mac_pj``), one add(ACC) per output
              (requantisation), weights read once as a block, input activations read once and output
              activations written once, whole ``sram_word_bits`` words in SRAMs sized to what they hold.
  zero-skip   the same pass multiplying only nonzero inputs (``nonzero_macs``, ``nonzero_in``: MEASURED
              means per inference), plus a read of the layer's nonzero bitmap (one bit per input),
              as price_ann_single_pass does for its variant (c); its best case (weights still read once).

Not priced, as in the baselines: forming the inputs (e.g. summing a window's events into a count frame:
about one read-modify-write of a count word per event).

A ``per_op_pj`` config (a chip's system-level energy per operation) prices every MAC at ``mac`` and adds
nothing else (no memory, no bitmap; static power is the config's, 0 for sne22nm).
Units: energies in pJ inside, uJ in the results; latency in us at ``clock_mhz``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from firmware_sim.energy import Hardware, _ann_layer, _ann_total

TERMS = ("compute", "memory", "static")


@dataclass(frozen=True)
class AnnLayer:
    """One layer of a single-pass ANN, per inference (one sample).

    macs / weights: multiply-accumulates of one pass and weights stored (``weight_bits`` each);
    n_in / in_bits: input activations read and the bits of one; n_out / out_bits: the same for outputs;
    nonzero_in / nonzero_macs: measured means per inference of the nonzero inputs and of the MACs whose
    input is nonzero (None: not measured; the zero-skip price needs them)."""

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
        for key, top in (("nonzero_in", self.n_in), ("nonzero_macs", self.macs)):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= top):
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


def _dominant(total: dict) -> str:
    return max(TERMS, key=lambda term: total[f"{term}_uj"])


def price_ann_pass(layers: Iterable[AnnLayer | Mapping], hw: Hardware, zero_skip: bool = False) -> dict:
    """One pass of the ANN on ``hw``: energy_uj and its compute_uj / memory_uj / static_uj split, the term
    that dominates (``dominant``), cycles, latency_us, by_layer (energy_uj, compute_uj, memory_uj each).

    zero_skip: multiply only the measured nonzero inputs and read each layer's nonzero bitmap;
    raises ValueError naming a layer that has no measurement."""
    layers = as_layers(layers)
    rows = {}
    for s in layers:
        macs, n_in = s.macs, s.n_in
        if zero_skip:
            if s.nonzero_in is None or s.nonzero_macs is None:
                raise ValueError(f"ANN layer {s.name!r}: zero-skip pricing needs its measured nonzero_in and nonzero_macs")
            macs, n_in = s.nonzero_macs, s.nonzero_in
        compute, memory, cycles = _ann_layer(hw, macs, hw.mac_pj(s.weight_bits, s.in_bits), s.weights, s.weight_bits,
                                             n_in, s.in_bits, s.n_out, s.out_bits)
        if zero_skip and hw.per_op_pj is None:
            memory += hw.words(s.n_in) * hw.sram_word(s.n_in / 8)      # the nonzero bitmap that drives the skip
        rows[s.name] = (compute, memory, cycles)
    name, label = (("ann_zero_skip", "single-pass int8 ANN, zero inputs skipped (measured)") if zero_skip
                   else ("ann_dense", "single-pass int8 ANN, every MAC"))
    total = _ann_total(name, rows, hw, 1, label)
    for key, (compute, memory, _) in rows.items():
        total["by_layer"][key].update(compute_uj=compute * 1e-6, memory_uj=memory * 1e-6)
    total["dominant"] = _dominant(total)
    total["hardware"] = hw.name
    return total


def price_ann(layers: Iterable[AnnLayer | Mapping], hw: Hardware) -> dict:
    """{"dense": price_ann_pass(...), "zero_skip": price_ann_pass(..., zero_skip=True) or None when some
    layer lacks its nonzero measurement}."""
    layers = as_layers(layers)
    measured = all(s.nonzero_in is not None and s.nonzero_macs is not None for s in layers)
    return {"dense": price_ann_pass(layers, hw), "zero_skip": price_ann_pass(layers, hw, True) if measured else None}
