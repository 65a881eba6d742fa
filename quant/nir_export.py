"""The integer program as a NIR graph (the Neuromorphic Intermediate Representation: Pedersen et al., Nat. Commun.
2024; the ``nir`` package), and the check that an importer can read a graph back.

NIR is continuous-time and has no bit widths, so the export is a mapping, not a copy (docs/nir.md lists every
difference). Per spiking layer of the program (firmware_sim.program.Layer):

- ``<layer>.syn``: the synapses, ``nir.Conv2d`` (zero bias, the layer's stride and padding) or ``nir.Affine``
  (zero bias), holding the *integer* weights (scaled integer weights: the scale 2^log2 folds into the threshold
  on the accelerator, so the integers are the network);
- ``<layer>.lif``: ``nir.LIF`` in the normalised form of our shift-leak neuron. Our step is
  u = v - (v >> k) + I; NIR's LIF, tau dv/dt = (v_leak - v) + r I, under forward Euler with step dt gives
  v <- (1 - dt / tau) v + (dt / tau) r I. With tau = dt * 2^k, r = 1 and v_leak = 0 this is our step on the
  membrane scaled by 2^-k (v_nir = u 2^-k), so the threshold is written at that scale;
- ``<layer>.flatten`` before a dense layer that reads a multi-dimensional source (``nir.Flatten``, negative dims,
  so that importers that see a batch axis flatten the same axes).

The concat readout is an ``nir.Affine`` per modality and warp tap: ``readout.<m>`` (tap 0, always written) and
``readout.<m>.tap<d>`` behind ``warp.<m>.delay<d>`` (``nir.Delay`` of d steps) for a tap d >= 1 with a nonzero
weight; each holds W_m * w_d (the warp weight folded in), the first also the bias. They all feed ``output``:
the step logits W z_t + b, before the ``>> logit_shift`` and the sum over steps that the device applies.
The graph's inputs (``input.<name>``) are the sensors' counts when the front-end is a block sum (written as
``frontend.<name>``, a conv or affine of ones, or nothing for the identity), else the counts the front-end passes
to its first layer: its thresholds, clip and countdown have no NIR node. The metadata's ``inputs`` says which.

TAAF (``taaf``, ``taaf_modal``) is refused: its attention is a softmax over time of a learned score, the product
of two signals, and NIR has no node for either. The threshold carries a half step: NIR fires on v > v_threshold,
ours on u >= theta, which over integer membranes is u > theta - 1/2.
"""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from firmware_sim.program import CONCAT, Program

NIR_DOC = "docs/nir.md"


class NIRError(ValueError):
    """A program NIR cannot carry, or a graph an importer cannot read; the message names the node and why."""


def lif_node(shape: tuple[int, ...], theta: int, leak_shift: int, dt_s: float):
    """Our integer LIF (theta, leak shift k) as nir.LIF in the normalised form above: tau = dt 2^k, r = 1,
    v_leak = 0, v_threshold = (theta - 1/2) 2^-k, v_reset = 0 (NIR has no subtractive reset; docs/nir.md)."""
    scale = 2.0 ** -leak_shift
    full = lambda value: np.full(shape, value, dtype=np.float32)   # noqa: E731 (NIR wants per-neuron arrays)
    return nir.LIF(tau=full(dt_s / scale), r=full(1.0), v_leak=full(0.0),
                   v_threshold=full((theta - 0.5) * scale), v_reset=full(0.0))


def synapse_node(layer):
    """The layer's synapses with its integer weights as float32 (exact: |w| <= 127)."""
    weight = layer.weight.astype(np.float32)
    if layer.kind == "conv":
        return nir.Conv2d(input_shape=tuple(int(d) for d in layer.in_shape[1:]), weight=weight, stride=layer.stride,
                          padding=layer.padding, dilation=1, groups=1, bias=np.zeros(weight.shape[0], np.float32))
    return nir.Affine(weight=weight, bias=np.zeros(weight.shape[0], np.float32))


def check_exportable(program: Program) -> None:
    """Raise NIRError naming the node when ``program`` holds something NIR cannot express."""
    fusion = program.readout.fusion
    if fusion != CONCAT:
        raise NIRError(f"node 'readout' (fusion {fusion!r}) cannot be written as NIR: TAAF's attention is a softmax "
                       "over time of a learned per-step score, multiplied into the step logits; NIR has no node for a "
                       "softmax or for the product of two signals. Export a model with model.fusion=concat "
                       f"(configs/experiment/nir.yaml; {NIR_DOC})")


def program_to_nir(program: Program, dt_s: float):
    """The NIR graph of ``program``, one accelerator step being ``dt_s`` seconds (> 0); see the module doc.

    Raises NIRError (attention readouts) before building anything."""
    if not (isinstance(dt_s, (int, float)) and np.isfinite(dt_s) and dt_s > 0):
        raise NIRError(f"dt_s={dt_s!r}: the duration of one accelerator step must be a positive number of seconds")
    check_exportable(program)
    nodes, edges = {}, []
    source = {}                                        # program name -> (NIR node name, per-sample shape)
    graph_inputs = {}                                  # input -> what the graph's input node holds
    for name in program.inputs:
        graph_inputs[name] = _input_nodes(program, name, nodes, edges, source)
    for layer in program.layers:
        src, shape = source[layer.input]
        if layer.kind == "dense" and len(shape) > 1:
            flat = f"{layer.name}.flatten"
            nodes[flat] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=-len(shape), end_dim=-1)
            edges.append((src, flat))
            src = flat
        nodes[f"{layer.name}.syn"] = synapse_node(layer)
        nodes[f"{layer.name}.lif"] = lif_node(tuple(layer.out_shape), layer.theta, program.leak_shift, dt_s)
        edges += [(src, f"{layer.name}.syn"), (f"{layer.name}.syn", f"{layer.name}.lif")]
        source[layer.name] = (f"{layer.name}.lif", tuple(layer.out_shape))
    _readout_nodes(program, dt_s, source, nodes, edges)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={
        "source": "edge-taaf", "dt_s": float(dt_s), "leak_shift": int(program.leak_shift),
        "inputs": ",".join(f"{k}={v}" for k, v in graph_inputs.items()),
        "state_bits": int(program.state_bits), "logit_shift": int(program.readout.logit_shift),
        "T": int(program.T), "output": "step logits W z_t + b (before >> logit_shift and the sum over steps)"})


SENSOR, FRONTEND_OUTPUT = "sensor", "frontend_output"   # what an input node of the graph holds


def linear_frontend(program: Program, name: str) -> bool:
    """The input's front-end is a plain block sum (count mode, min_count 1, no countdown, a clip its pooled counts
    never reach): a linear map NIR can carry."""
    fe = program.frontend(name)
    top = program.inputs[name][1]
    return fe.mode == "count" and fe.min_count == 1 and fe.refractory == 0 and fe.clip >= top * fe.volume


def _input_nodes(program: Program, name: str, nodes: dict, edges: list, source: dict) -> str:
    """The graph's input for sensor ``name``: the sensor itself, through ``frontend.<name>`` when its front-end is a
    block sum (a conv or affine of ones: the importers read those, snnTorch has no SumPool2d); else the front-end's
    output (its thresholds, clip and countdown have no NIR node). Returns SENSOR or FRONTEND_OUTPUT."""
    fe = program.frontend(name)
    if not linear_frontend(program, name):
        shape = tuple(int(d) for d in program.shape_of(name))
        nodes[f"input.{name}"] = nir.Input(input_type={"input": np.array(shape)})
        source[name] = (f"input.{name}", shape)
        return FRONTEND_OUTPUT
    raw = tuple(int(d) for d in program.inputs[name][0])
    nodes[f"input.{name}"] = nir.Input(input_type={"input": np.array(raw)})
    source[name] = (f"input.{name}", raw)
    if fe.volume == 1:
        return SENSOR
    out = fe.out_shape(raw)
    if len(raw) == 3:                                  # (P, H, W): output channel o sums input channels o*pc ..
        pc, ph, pw = fe.pool
        weight = np.zeros((out[0], raw[0], ph, pw), np.float32)
        for o in range(out[0]):
            weight[o, o * pc:(o + 1) * pc] = 1.0
        nodes[f"frontend.{name}"] = nir.Conv2d(input_shape=raw[1:], weight=weight, stride=(ph, pw), padding=0,
                                               dilation=1, groups=1, bias=np.zeros(out[0], np.float32))
    else:
        weight = np.kron(np.eye(out[0], dtype=np.float32), np.ones((1, fe.pool[0]), np.float32))
        nodes[f"frontend.{name}"] = nir.Affine(weight=weight, bias=np.zeros(out[0], np.float32))
    edges.append((f"input.{name}", f"frontend.{name}"))
    source[name] = (f"frontend.{name}", tuple(int(d) for d in out))
    return SENSOR


def _readout_nodes(program: Program, dt_s: float, source: dict, nodes: dict, edges: list) -> None:
    """The concat readout: an affine per modality and nonzero warp tap, all summed into ``output``."""
    r = program.readout
    d_audio = program.feature_width("audio")
    nodes["output"] = nir.Output(output_type={"output": np.array([r.n_classes])})
    bias = r.bias.astype(np.float32)
    for m in r.modalities:
        feature_node, _ = source[getattr(r, f"{m}_input")]
        w_m = r.weight[:, r.columns(m, d_audio)].astype(np.float32)
        warp = getattr(r, f"warp_{m}")
        for d, w_d in enumerate(np.asarray(warp).tolist()):
            if w_d == 0 and d > 0:
                continue                               # tap 0 is always written: it keeps the branch connected
            name = f"readout.{m}" if d == 0 else f"readout.{m}.tap{d}"
            nodes[name] = nir.Affine(weight=w_m * np.float32(w_d), bias=bias)
            bias = np.zeros_like(bias)                 # the bias enters once
            if d == 0:
                edges.append((feature_node, name))
            else:
                delay = f"warp.{m}.delay{d}"
                nodes[delay] = nir.Delay(delay=np.full(w_m.shape[1], d * dt_s, dtype=np.float32))
                edges += [(feature_node, delay), (delay, name)]
            edges.append((name, "output"))


def write_nir(program: Program, path: str | Path, dt_s: float) -> dict:
    """Write ``program`` as a NIR file (HDF5) atomically; read it back and check every node is there.

    Returns {"nir": path, "nir_nodes": n, "nir_node_types": {type: count}}."""
    from sensors.atomic import atomic_write
    graph = program_to_nir(program, dt_s)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.build")
    try:
        nir.write(tmp, graph)
        back = nir.read(tmp)
        if set(back.nodes) != set(graph.nodes) or sorted(back.edges) != sorted(graph.edges):
            raise NIRError(f"{path}: the NIR file read back differs from the graph written")
        atomic_write(path, lambda f: f.write(tmp.read_bytes()))
    finally:
        tmp.unlink(missing_ok=True)
    types: dict[str, int] = {}
    for node in graph.nodes.values():
        types[type(node).__name__] = types.get(type(node).__name__, 0) + 1
    return {"nir": str(path), "nir_nodes": len(graph.nodes), "nir_node_types": types}


def check_importable(graph, readable: set[str], importer: str) -> None:
    """Raise NIRError naming the first node (and its type) whose type ``importer`` cannot read;
    ``readable`` holds NIR class names (``"LIF"``, ``"Conv2d"``, ...)."""
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind not in readable:
            raise NIRError(f"NIR node {name!r} is a nir.{kind}, which {importer}'s NIR importer cannot read "
                           f"(it reads {', '.join(sorted(readable))})")
