"""Resource checks that name the limit (issue #26 item 2): a program's needs per layer against a chip profile,
before anything is written for the chip.

    layer_needs(program)            per spiking layer: neurons, synapses (weights), connections, fan-in, fan-out,
                                    weight and state memory (bytes)
    resource_report(program, p)     every need of the program against profile ``p``: the rows, and the
                                    violations in order (empty: it fits)
    check_resources(program, p)     the first violation as a DesignRuleError naming the layer, the resource, the
                                    need and the limit

Profiles (:data:`PROFILES`), each from published limits, cited in its ``source``:
    speck     Speck / DYNAP-CNN: 9 convolutional cores, one spiking layer each (a dense layer maps as a conv
              whose kernel covers its input, as sinabs maps Linear); per core kernel memory
              K = c * 2^(ceil(log2(kx ky)) + ceil(log2 f)), neuron memory N = f * 2^(ceil(log2 fy) + ceil(log2 fx)),
              bias memory 1024 (sinabs, backend/dynapcnn/mapping.py); the layers are assigned to cores by
              bipartite matching, as sinabs does by max-flow; one event-camera input of 128 x 128 x 2; no attention.
    xylo      Xylo (Rockpool's Xylo mapper, SYNS61201): dense layers only, at most 16 input channels, 1000 hidden
              neurons and 8 outputs, int8 weights, no biases.
The accelerator's own limits come from a hardware config (:func:`hardware_profile`): its largest SRAM (the
weight and state memories); its event FIFO is reported against the worst case (every neuron of the largest
layer spiking in one step), not checked, since it overflows only at a spike share the report states.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from firmware_sim import spec
from firmware_sim.program import CONCAT, ContractError, Program


class DesignRuleError(ContractError):
    """A program needs more of a resource than the profile has; the message names the layer, the resource,
    the need and the limit."""


@dataclass(frozen=True)
class LayerNeeds:
    """One spiking layer's needs. connections: synapses counted per output neuron (a conv's kernel reused at
    every position); fan_out: the most targets one input neuron reaches; memories in bytes."""
    name: str
    kind: str
    neurons: int
    synapses: int
    connections: int
    fan_in: int
    fan_out: int
    weight_bytes: int
    state_bytes: int
    kernel_entries: int           # Speck's K for this layer
    neuron_entries: int           # Speck's N for this layer


def _log2_ceil(n: int) -> int:
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def layer_needs(program: Program) -> list[LayerNeeds]:
    """Per spiking layer of ``program``, in order."""
    out = []
    for layer in program.layers:
        if layer.kind == "conv":
            c_out, c_in, k, _ = layer.weight.shape
            fy, fx = layer.out_shape[1:]
            fan_out = c_out * math.ceil(k / layer.stride) ** 2
        else:                                    # dense: a conv whose kernel covers the input (sinabs)
            c_out, c_in, k, fy, fx = layer.n_out, layer.n_in, 1, 1, 1
            fan_out = layer.n_out
        out.append(LayerNeeds(
            name=layer.name, kind=layer.kind, neurons=layer.n_out, synapses=int(layer.weight.size),
            connections=layer.n_out * layer.fan_in, fan_in=layer.fan_in, fan_out=fan_out,
            weight_bytes=math.ceil(layer.weight.size * program.weight_bits / 8),
            state_bytes=math.ceil(layer.n_out * program.state_bits / 8),
            kernel_entries=c_in * 2 ** (_log2_ceil(k * k) + _log2_ceil(c_out)) if layer.kind == "conv"
            else c_in * 2 ** _log2_ceil(c_out),
            neuron_entries=c_out * 2 ** (_log2_ceil(fy) + _log2_ceil(fx))))
    return out


@dataclass(frozen=True)
class Profile:
    """A chip's limits. A field left None is not a limit of this chip."""
    name: str
    source: str
    cores: tuple[tuple[int, int, int], ...] | None = None   # per core: (kernel, neuron, bias) memory entries
    max_inputs: int | None = None                            # input channels (a dense chip's input width)
    max_hidden: int | None = None
    max_outputs: int | None = None
    input_shapes: tuple[tuple[int, ...], ...] | None = None  # the inputs the chip has
    dense_only: bool = False
    biases: bool = True
    attention: bool = True
    weight_bits: int | None = None                           # the widest weight the chip stores
    weight_memory_bytes: int | None = None
    state_memory_bytes: int | None = None
    event_buffer_bytes: int | None = None
    max_synops_per_s: float | None = None                    # synaptic operations the chip completes per second


PROFILES = {
    "speck": Profile(
        name="speck", source="sinabs backend/dynapcnn/mapping.py (DYNAP-CNN / Speck core memories); Speck's DVS 128 x 128",
        cores=tuple((k * 1024, n * 1024, 1024) for k, n in zip((16, 16, 16, 32, 32, 64, 64, 16, 16),
                                                                (64, 64, 64, 32, 32, 16, 16, 16, 16))),
        input_shapes=((2, 128, 128),), attention=False, weight_bits=8),
    "xylo": Profile(
        name="xylo", source="Rockpool Xylo mapper design rules (SYNS61201): 16 inputs, 1000 hidden, 8 outputs, int8, no biases",
        max_inputs=16, max_hidden=1000, max_outputs=8, dense_only=True, biases=False, weight_bits=8),
}


def hardware_profile(hw) -> Profile:
    """Our accelerator's limits under a hardware config (firmware_sim.hardware.Hardware): for a component
    config, the largest SRAM it prices holds the weights and, apart, the membranes, and its event FIFO is
    reported against the worst case; an operation-count config (per_op_pj) declares no memories, so none is
    checked."""
    source = f"hardware config {hw.name} (firmware_sim/hardware.py)"
    throughput = hw.clock_mhz * 1e6 * hw.syn_units     # parallel.syn_units synaptic adds per clock
    if hw.kind == "operation_count":
        return Profile(name=hw.name, source=source + ", an operation-count model: no memory sizes",
                       max_synops_per_s=throughput)
    largest = max(size for size, _ in hw.sram)
    return Profile(name=hw.name, source=source, weight_memory_bytes=largest, state_memory_bytes=largest,
                   event_buffer_bytes=hw.event_fifo_bytes, max_synops_per_s=throughput)


def _violation(layer: str, resource: str, need, limit) -> dict:
    return {"layer": layer, "resource": resource, "need": need, "limit": limit}


def _core_assignment(needs: list[LayerNeeds], cores) -> tuple[list[int] | None, list[dict]]:
    """Layers onto distinct cores whose memories hold them (bipartite matching by augmenting paths)."""
    fits = [[i for i, (k, n, _) in enumerate(cores) if nd.kernel_entries <= k and nd.neuron_entries <= n] for nd in needs]
    violations = [_violation(nd.name, "kernel/neuron memory of any core", (nd.kernel_entries, nd.neuron_entries),
                             (max(k for k, _, _ in cores), max(n for _, n, _ in cores)))
                  for nd, f in zip(needs, fits) if not f]
    if violations:
        return None, violations
    core_of: dict[int, int] = {}

    def place(i: int, seen: set) -> bool:
        for c in fits[i]:
            if c not in seen:
                seen.add(c)
                if c not in core_of or place(core_of[c], seen):
                    core_of[c] = i
                    return True
        return False
    for i in range(len(needs)):
        if not place(i, set()):
            return None, [_violation(needs[i].name, "cores", len(needs), len(cores))]
    by_layer = {i: c for c, i in core_of.items()}
    return [by_layer[i] for i in range(len(needs))], []


def _chip_violations(program: Program, needs: list[LayerNeeds], p: Profile, synops_per_s: float | None) -> list[dict]:
    """Every limit of ``p`` the program breaks, in the order a user meets them: inputs, layers, readout."""
    found = []
    for name, (shape, _) in program.inputs.items():
        if p.input_shapes is not None and tuple(shape) not in p.input_shapes:
            found.append(_violation(f"input {name}", "input shape", list(shape), [list(s) for s in p.input_shapes]))
        if p.max_inputs is not None and math.prod(shape) > p.max_inputs:
            found.append(_violation(f"input {name}", "input channels", math.prod(shape), p.max_inputs))
    if p.weight_bits is not None and program.weight_bits > p.weight_bits:
        found.append(_violation("every layer", "weight bits", program.weight_bits, p.weight_bits))
    for nd in needs:
        if p.dense_only and nd.kind == "conv":
            found.append(_violation(nd.name, "layer kind", "conv", "dense only"))
    if p.max_hidden is not None and sum(nd.neurons for nd in needs) > p.max_hidden:
        found.append(_violation("hidden layers", "hidden neurons", sum(nd.neurons for nd in needs), p.max_hidden))
    for what, need, limit in (("weight memory", sum(nd.weight_bytes for nd in needs), p.weight_memory_bytes),
                              ("state memory", sum(nd.state_bytes for nd in needs), p.state_memory_bytes)):
        if limit is not None and need > limit:
            found.append(_violation("every layer", what, need, limit))
    if p.cores is not None:
        found += _core_assignment(needs, p.cores)[1]
    if synops_per_s is not None and p.max_synops_per_s is not None and synops_per_s > p.max_synops_per_s:
        found.append(_violation("every layer", "synaptic operations per second", synops_per_s, p.max_synops_per_s))
    r = program.readout
    if p.max_outputs is not None and program.n_classes > p.max_outputs:
        found.append(_violation("readout", "outputs", program.n_classes, p.max_outputs))
    if not p.attention and r.fusion != CONCAT:
        found.append(_violation("readout", f"{r.fusion} attention (score MLP, exp2 softmax over time)", "attention",
                                "no attention primitive"))
    if not p.biases and r.fusion == CONCAT and r.bias is not None and r.bias.any():
        found.append(_violation("readout", "biases", int((r.bias != 0).sum()), 0))
    return found


def resource_report(program: Program, profile: Profile, synops_per_s: float | None = None) -> dict:
    """The program's needs per layer against ``profile``; ``fits`` 1 when no limit is broken, else
    ``first_violation`` (layer, resource, need, limit) and every violation in order. ``synops_per_s``: the
    synaptic operations per second the model needs at its input rate (measured by the simulator's counters),
    checked against the profile's throughput when both are known."""
    needs = layer_needs(program)
    violations = _chip_violations(program, needs, profile, synops_per_s)
    report = {"profile": profile.name, "source": profile.source, "layers": [asdict(nd) for nd in needs],
              "fits": int(not violations), "violations": violations,
              "first_violation": violations[0] if violations else None}
    if profile.event_buffer_bytes is not None and needs:
        # not a fit rule: a step's events fill the FIFO only when a large share of a layer fires at once
        worst = max(nd.neurons for nd in needs) * spec.EVENT_BITS // 8
        report["event_buffer"] = {"fifo_bytes": profile.event_buffer_bytes, "worst_case_bytes": worst,
                                  "spike_share_that_fills_it": min(1.0, profile.event_buffer_bytes / worst)}
    if synops_per_s is not None:
        report["throughput"] = {"synops_per_s": synops_per_s, "limit": profile.max_synops_per_s}
    if profile.cores is not None and not violations:
        report["cores"] = _core_assignment(needs, profile.cores)[0]
    return report


def check_resources(program: Program, profile: Profile, synops_per_s: float | None = None) -> dict:
    """:func:`resource_report`, raising a DesignRuleError for the first limit the program breaks."""
    report = resource_report(program, profile, synops_per_s)
    v = report["first_violation"]
    if v is not None:
        raise DesignRuleError(f"design rule ({profile.name}, {profile.source}): {v['layer']} needs {v['need']} "
                              f"{v['resource']}, the limit is {v['limit']}")
    return report
