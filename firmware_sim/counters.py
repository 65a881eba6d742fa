"""What the integer run did, per unit (spiking layer or readout stage) and per modality.

Counter meanings (all summed over the samples run; divide by ``n_samples`` for one inference):
  input_events    active (input, step) pairs: one address-event each, carrying a count >= 1
  input_spikes    sum of those counts
  syn_ops         synaptic accumulates: count x reached neurons, per event (warps: one add per spike per tap)
  weight_rows     weight rows read from weight memory: a conv tap's C_out weights (once per tap per input
                  channel per step, into the tap buffer), a dense event's N_out fan-out row (once, whatever
                  its count), a readout row of K (score: H) weights per nonzero fused feature
  fanout_groups   (event, reached neuron group) pairs: a conv event and each output position it reaches
                  (the C_out neurons there), a dense event and its layer
  neuron_updates  LIF updates: neurons that received an event this step or were still >= theta
  leak_ops        catch-up leak steps applied at an update for the steps a neuron was skipped
  group_updates   state groups read and written by the updates (a conv position's C_out entries; a dense
                  layer's whole row, on a step with an event)
  single_updates  single entries read and written (a dense layer's armed neurons on a step without events)
  steps           (step, sample) pairs run (T per inference)
  active_inputs   (sample, input) pairs whose input is nonzero at some step (the zero-skipping ANN's work)
  active_neurons  (sample, neuron) pairs that spiked at some step
  active_synapses synapses from those active inputs: the MACs of a single pass that skips zero inputs
  spikes_out      spikes emitted (and routed to the next unit)
  saturations     neuron-steps whose membrane hit the 16-bit limit
  macs            multiply-accumulates (readout, score MLP, attention-weighted sum)
  adds            plain integer adds outside synapses (attention's max and differences; concat's sum over steps)
  lut_reads       exp2 lookups (attention)
  exact_limit     values that reached 2^24 (where the float32 ONNX graph stops being exact)
Front-end units (firmware_sim.frontend) count input_events (nonzero raw (element, step) pairs), steps and:
  pooled_events   nonzero pooled (element, step) pairs (each meets the threshold test)
  passed          (element, step) pairs passed on to the first layer
  refractory_blocked  pairs that met the threshold but were held back by the refractory countdown
  level_updates   adaptive-level updates (every element, every step, in adaptive mode)
"""
from __future__ import annotations

from dataclasses import dataclass, field

COUNTERS = ("input_events", "input_spikes", "syn_ops", "weight_rows", "fanout_groups", "neuron_updates", "leak_ops",
            "group_updates", "single_updates", "steps", "active_inputs", "active_neurons", "active_synapses", "spikes_out", "saturations",
            "macs", "adds", "lut_reads", "exact_limit", "pooled_events", "passed", "refractory_blocked", "level_updates")


@dataclass
class Unit:
    """Counters of one unit. kind: frontend | conv | dense | warp | readout | score | attention."""

    modality: str
    kind: str
    weight_bits: int
    n_weights: int
    n_neurons: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    def add(self, **values: int) -> None:
        for key, value in values.items():
            if key not in self.counts:
                raise KeyError(f"unknown counter {key!r}; known: {COUNTERS}")
            self.counts[key] += int(value)


@dataclass
class Counts:
    """Counters of every unit over ``n_samples`` inferences."""

    n_samples: int
    units: dict[str, Unit]

    def total(self, counter: str) -> int:
        return sum(u.counts[counter] for u in self.units.values())

    def by_modality(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for unit in self.units.values():
            acc = out.setdefault(unit.modality, dict.fromkeys(COUNTERS, 0))
            for key, value in unit.counts.items():
                acc[key] += value
        return out

    def merge(self, other: "Counts") -> "Counts":
        """Sum of two runs of the same program (e.g. successive batches)."""
        if set(other.units) != set(self.units):
            raise ValueError("cannot merge counters of different programs")
        for name, unit in other.units.items():
            self.units[name].add(**unit.counts)
        self.n_samples += other.n_samples
        return self

    def then(self, other: "Counts") -> "Counts":
        """The counters of the same streams after their next chunk (Runner.stream): every counter adds, the
        number of streams stays."""
        if set(other.units) != set(self.units) or other.n_samples != self.n_samples:
            raise ValueError(f"cannot continue counters of {self.n_samples} streams of one program with "
                             f"{other.n_samples} streams or another program's units")
        for name, unit in other.units.items():
            self.units[name].add(**unit.counts)
        return self

    def as_dict(self, per_inference: bool = True) -> dict:
        scale = 1.0 / max(self.n_samples, 1) if per_inference else 1.0
        return {"n_samples": self.n_samples, "per_inference": per_inference,
                "units": {name: {"modality": u.modality, "kind": u.kind,
                                 **{k: v * scale for k, v in u.counts.items()}} for name, u in self.units.items()},
                "by_modality": {m: {k: v * scale for k, v in c.items()} for m, c in self.by_modality().items()}}
