"""Standard ONNX for the integer model (docs/accelerator.md, "The ONNX file").

Why onnx.helper and not torch.onnx / brevitas.export: a Python time loop traced by torch.onnx is
unrolled into T copies (silently wrong for another T), and brevitas' ``export_onnx_qcdq`` exports
Brevitas layers but cannot express the integer LIF state carried through an ONNX ``Scan`` nor the
shift requantisation and exp2-lookup readout. So the graph is written here from the integer
model's program and weights: weights through QuantizeLinear -> Clip -> DequantizeLinear (QCDQ),
one time step as a ``Scan`` body with every neuron's state as a Scan state, the readout in
plain arithmetic. Every tensor is float32 holding integers (exact below 2^24).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from firmware_sim import spec
from firmware_sim.program import TAAF, TAAF_MODAL, ContractError, Program
from firmware_sim.program_io import MODALITY_LOGITS, to_metadata
from quant.int_readout import EXP2_TABLE, Q_CAP
from quant.qmodel import QuantTwoModalitySNN

OPSET = 17
IR_VERSION = 8
F32 = TensorProto.FLOAT


class ExportError(ContractError):
    """The model is outside the accelerator contract or not a quantized model; the message names the layer."""


class _Graph:
    """A node list with unique output names."""

    def __init__(self, prefix: str):
        self.prefix, self.nodes, self.count = prefix, [], 0

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        if out is None:
            out = f"{self.prefix}{op_type.lower()}_{self.count}"
            self.count += 1
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=f"{self.prefix}n{len(self.nodes)}_{op_type}",
                                           **attrs))
        return out


class _Consts:
    """Initializers of the main graph (the Scan body reads them from the outer scope)."""

    def __init__(self):
        self.inits, self.names = [], {}

    def add(self, name: str, value, dtype=np.float32) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def scalar(self, value, dtype=np.float32) -> str:
        key = (float(value), np.dtype(dtype).name)
        if key not in self.names:
            self.names[key] = self.add(f"const.{np.dtype(dtype).name}.{len(self.names)}", value, dtype)
        return self.names[key]

    def once(self, name: str, value) -> str:
        """An initializer added the first time it is asked for (the exp2 table, read by every lookup)."""
        if name not in self.names.values():
            self.names[("once", name)] = self.add(name, value)
        return name

    def vec(self, values, dtype=np.int64) -> str:
        key = (tuple(int(v) for v in values), np.dtype(dtype).name)
        if key not in self.names:
            self.names[key] = self.add(f"const.vec.{len(self.names)}", list(values), dtype)
        return self.names[key]


def _qcdq(g: _Graph, c: _Consts, name: str, w_int: np.ndarray, log2: int, bits: int) -> str:
    """Initializer w_int * 2^log2 -> QuantizeLinear -> Clip(narrow) -> DequantizeLinear -> * 2^-log2: integer weights."""
    c.add(name, w_int.astype(np.float64) * 2.0 ** log2)
    scale = c.add(f"{name}.scale", 2.0 ** log2)
    zero = c.scalar(0, np.int8)
    lim = spec.weight_limit(bits)
    q = g.op("QuantizeLinear", name, scale, zero)
    q = g.op("Clip", q, c.scalar(-lim, np.int8), c.scalar(lim, np.int8))
    dq = g.op("DequantizeLinear", q, scale, zero)
    return g.op("Mul", dq, c.scalar(2.0 ** -log2), out=f"{name}.int")


def _lif(g: _Graph, c: _Consts, v: str, current: str, theta: int, leak_shift: int, state_bits: int, v_out: str) -> str:
    """u = clip(v - floor(v / 2^k) + I) (u = clip(v + I) at k = LEAK_OFF, no leak); s = (u >= theta);
    v' = u - theta s. Returns s."""
    lo, hi = spec.state_range(state_bits)
    leaked = v if leak_shift >= spec.LEAK_OFF else g.op("Sub", v, g.op("Floor", g.op("Div", v, c.scalar(2.0 ** leak_shift))))
    u = g.op("Clip", g.op("Add", leaked, current), c.scalar(lo), c.scalar(hi))
    s = g.op("Cast", g.op("GreaterOrEqual", u, c.scalar(theta)), to=F32)
    g.op("Sub", u, g.op("Mul", s, c.scalar(theta)), out=v_out)
    return s


def _floor_shift(g: _Graph, c: _Consts, x: str, shift: int, out: str | None = None) -> str:
    return g.op("Floor", g.op("Div", x, c.scalar(2.0 ** shift)), out=out)


def _exp2_lookup(g: _Graph, c: _Consts, scores: str, axes: list[int], score_log2: int, out: str) -> str:
    """docs/accelerator.md step 5 in one table: ``out`` = TABLE[min(q, Q_CAP)] of d = max(scores over ``axes``) -
    scores (taaf: over time; taaf_modal: over time and modality, and each modality's own over time)."""
    d = g.op("Sub", g.op("ReduceMax", scores, axes=axes, keepdims=1), scores)
    shift = -score_log2 - spec.EXP2_FRAC_BITS
    if shift >= 0:
        q = _floor_shift(g, c, d, shift)
    else:
        q = g.op("Mul", g.op("Min", d, c.scalar(Q_CAP)), c.scalar(2.0 ** -shift))
    idx = g.op("Cast", g.op("Min", q, c.scalar(Q_CAP)), to=TensorProto.INT64)
    return g.op("Gather", c.once("exp2_table", EXP2_TABLE), idx, axis=0, out=out)


def frontend_states(program: dict) -> list[tuple[str, str, list[int]]]:
    """(state name, input, per-sample shape) of the front-ends' Scan states: a refractory countdown and
    an adaptive level per pooled element, where the front-end has them."""
    out = []
    for m, fe in program["frontends"].items():
        shape = [d // f for d, f in zip(program["inputs"][m]["shape"], fe["pool"])]
        if fe["refractory"]:
            out.append((f"fe.{m}.countdown", m, shape))
        if fe["mode"] == "adaptive":
            out.append((f"fe.{m}.level", m, shape))
    return out


def _frontend(g: _Graph, c: _Consts, m: str, fe: dict, in_shape: list[int]) -> str:
    """The front-end of input ``m`` in the Scan body (firmware_sim.frontend): ``{m}_t`` (B, *in_shape) ->
    ``fe.{m}.out`` (B, *out_shape). Value names are fixed: the loader checks the graph by them."""
    x = f"{m}_t"
    if any(f > 1 for f in fe["pool"]):
        blocks = [0]
        for d, f in zip(in_shape, fe["pool"]):
            blocks += [d // f, f]
        x = g.op("ReduceSum", g.op("Reshape", x, c.vec(blocks)), c.vec([2 + 2 * i for i in range(len(in_shape))]),
                 keepdims=0, out=f"fe.{m}.pooled")
    th = c.scalar(fe["min_count"])
    if fe["mode"] == "adaptive":
        adapt = _floor_shift(g, c, f"fe.{m}.level.in", fe["gain_shift"], out=f"fe.{m}.adapt")
        th = g.op("Max", adapt, th, out=f"fe.{m}.threshold")
        leak = _floor_shift(g, c, f"fe.{m}.level.in", fe["leak_shift"], out=f"fe.{m}.leak")
        g.op("Add", g.op("Sub", f"fe.{m}.level.in", leak), x, out=f"fe.{m}.level.out")
    ok = g.op("GreaterOrEqual", x, th, out=f"fe.{m}.over")
    if fe["refractory"]:
        ready = g.op("Equal", f"fe.{m}.countdown.in", c.scalar(0), out=f"fe.{m}.ready")
        ok = g.op("And", ok, ready, out=f"fe.{m}.ok")
        down = g.op("Max", g.op("Sub", f"fe.{m}.countdown.in", c.scalar(1)), c.scalar(0))
        g.op("Where", ok, c.scalar(fe["refractory"]), down, out=f"fe.{m}.countdown.out")
    clipped = g.op("Min", x, c.scalar(fe["clip"]), out=f"fe.{m}.clipped")
    return g.op("Mul", g.op("Cast", ok, to=F32), clipped, out=f"fe.{m}.out")


def _modal_step(body: _Graph, main: _Graph, c: _Consts, r: dict, present: list[str], warped: dict[str, str],
                feat: dict[str, int], ro: str, ro_b: str, branch: dict) -> None:
    """taaf_modal in the Scan body: ``lp_t`` (B, M, K) = (W_m z^m_t + b_m) >> logit_shift and ``e_t`` (B, M).

    One MatMul reads W: its input holds, for each modality m, z_t with every column outside m's zeroed
    (B, M, D: row m = [a ; 0] or [0 ; v], Pad with zeros), so row m of the product is W_m z^m_t."""
    d, offset, rows = sum(feat.values()), 0, []
    for m in present:
        pads = c.vec([0, offset, 0, d - offset - feat[m]])
        rows.append(body.op("Unsqueeze", body.op("Pad", warped[m], pads), c.vec([1])))
        offset += feat[m]
    blocks = body.op("Concat", *rows, axis=1)
    logits = body.op("Add", body.op("MatMul", blocks, main.op("Transpose", ro, perm=[1, 0])), ro_b)
    _floor_shift(body, c, logits, r["logit_shift"], out="lp_t")
    scores = []
    for m in present:
        hidden_w, hidden_b, out_w, out_b = branch[m]
        h = _floor_shift(body, c, body.op("Relu", body.op("Gemm", warped[m], hidden_w, hidden_b, transB=1)),
                         r["hidden_shift"])
        scores.append(body.op("Gemm", h, out_w, out_b, transB=1))
    body.op("Concat", *scores, axis=1, out="e_t")


@dataclass
class _Export:
    """What the steps of build_onnx share: the program's file form, the main graph, the Scan body's graph
    and their initializers, and the names every step reads (z = [audio ; vision] order in ``present``,
    graph and Scan input order in ``inputs``, the warp length ``D``, each warped modality's width ``feat``)."""
    program: dict
    weights: dict
    c: _Consts = field(default_factory=_Consts)
    main: _Graph = field(default_factory=lambda: _Graph("main."))
    body: _Graph = field(default_factory=lambda: _Graph("step."))

    def __post_init__(self):
        p, r = self.program, self.program["readout"]
        self.bits, self.layers, self.r = p["weight_bits"], p["layers"], r
        self.taaf = p["fusion"] == TAAF
        self.modal = p["fusion"] == TAAF_MODAL   # per-modality branches (docs/accelerator.md, "taaf_modal readout")
        self.own = self.modal and r["modality_logits"]
        self.present = [m for m in ("audio", "vision") if r[f"{m}_input"] is not None]   # z = [audio ; vision]
        self.inputs = [m for m in ("vision", "audio") if m in p["inputs"]]               # graph and Scan input order
        out_shape = {e["name"]: e["out_shape"] for e in self.layers}
        self.feat = {m: out_shape[r[f"{m}_input"]][0] for m in self.present}
        self.shapes = {m: [d // f for d, f in zip(p["inputs"][m]["shape"], p["frontends"][m]["pool"])]
                       for m in self.inputs}
        self.shapes |= {e["name"]: e["out_shape"] for e in self.layers}

    def qcdq(self, name: str, log2: int) -> str:
        """The integer weights of tensor ``name`` (main graph, QCDQ)."""
        return _qcdq(self.main, self.c, name, self.weights[name], log2, self.bits)

    def bias(self, name: str) -> str:
        """An int32 bias initializer, cast to float in the main graph."""
        self.c.add(name, self.weights[name], np.int32)
        return self.main.op("Cast", name, to=F32, out=f"{name}.float")


@dataclass
class _Tensors:
    """Main-graph names of the weights the Scan body reads: per layer, the warps, the readout and the scores
    (taaf: one score MLP; taaf_modal: ``branch``, one per modality)."""
    layer: dict[str, str]
    warp: dict[str, str]
    readout: str
    readout_bias: str
    branch: dict[str, tuple[str, str, str, str]] | None = None
    score: tuple[str, str, str, str] | None = None


def _warp_length(ex: _Export) -> int:
    """D, the one warp length of every present modality; ExportError when they differ."""
    sizes = {int(np.asarray(ex.weights[ex.r[f"warp_{m}"]]).size) for m in ex.present}
    if len(sizes) != 1:
        raise ExportError(f"the warps of {ex.present} have different lengths {sorted(sizes)}; the contract has one D")
    return sizes.pop()


def _weight_tensors(ex: _Export, D: int) -> _Tensors:
    """Weights (QCDQ) and biases (int32 -> float), all in the main graph."""
    r = ex.r
    layer = {e["name"]: ex.qcdq(e["weight"], e["weight_log2"]) for e in ex.layers}
    warp = {m: ex.main.op("Reshape", ex.qcdq(r[f"warp_{m}"], r["warp_log2"]), ex.c.vec([D, 1, 1])) for m in ex.present}
    t = _Tensors(layer, warp, ex.qcdq(r["readout_weight"], r["readout_log2"]), "")
    if ex.modal:   # b (M, K): one row per present modality, in z order
        rows = [ex.main.op("Unsqueeze", ex.bias(r[f"{m}_readout_bias"]), ex.c.vec([0])) for m in ex.present]
        t.readout_bias = ex.main.op("Concat", *rows, axis=0, out="readout.bias.modal")
        t.branch = {m: (ex.qcdq(r[f"{m}_score_hidden_weight"], r["score_hidden_log2"]),
                        ex.bias(r[f"{m}_score_hidden_bias"]),
                        ex.qcdq(r[f"{m}_score_out_weight"], r["score_out_log2"]),
                        ex.bias(r[f"{m}_score_out_bias"])) for m in ex.present}
    else:
        t.readout_bias = ex.bias(r["readout_bias"])
    if ex.taaf:
        t.score = (ex.qcdq(r["score_hidden_weight"], r["score_hidden_log2"]), ex.bias(r["score_hidden_bias"]),
                   ex.qcdq(r["score_out_weight"], r["score_out_log2"]), ex.bias(r["score_out_bias"]))
    return t


def _initial_states(ex: _Export, D: int) -> tuple[list[str], list[str]]:
    """The Scan states' names and their initial values: zeros of (B, ...) per layer and front-end state,
    (D - 1, B, F) delay lines per modality."""
    main, c = ex.main, ex.c
    batch = main.op("Slice", main.op("Shape", ex.inputs[0]), c.vec([1]), c.vec([2]))
    states = [(f"v.{e['name']}", [batch, c.vec(e["out_shape"])]) for e in ex.layers]
    states += [(name, [batch, c.vec(shape)]) for name, _, shape in frontend_states(ex.program)]
    if D > 1:
        states += [(f"hist.{m}", [c.vec([D - 1]), batch, c.vec([ex.feat[m]])]) for m in ex.present]
    init_names = []
    for name, parts in states:
        zeros = helper.make_tensor(f"{name}.zero", F32, [1], [0.0])
        init_names.append(main.op("ConstantOfShape", main.op("Concat", *parts, axis=0), value=zeros, out=f"{name}.init"))
    return [name for name, _ in states], init_names


def _layers_step(ex: _Export, t: _Tensors) -> dict[str, str]:
    """One time step of the front-ends and the spiking layers in the Scan body: the spikes of every input and
    layer by name (the per-step copies ``fe_seq.{m}`` and ``spk.{layer}`` are the Scan outputs)."""
    body, c, p = ex.body, ex.c, ex.program
    x = {m: _frontend(body, c, m, p["frontends"][m], p["inputs"][m]["shape"]) for m in ex.inputs}
    for m in ex.inputs:
        body.op("Identity", x[m], out=f"fe_seq.{m}")
    for e in ex.layers:
        src = x[e["input"]]
        if e["kind"] == "conv":
            pad, s = e["padding"], e["stride"]
            cur = body.op("Conv", src, t.layer[e["name"]], kernel_shape=[e["kernel"]] * 2, strides=[s, s],
                          pads=[pad] * 4)
        else:
            if len(ex.shapes[e["input"]]) > 1:
                src = body.op("Flatten", src, axis=1)   # (C, H, W) row-major
            cur = body.op("Gemm", src, t.layer[e["name"]], transB=1)
        x[e["name"]] = _lif(body, c, f"v.{e['name']}.in", cur, e["theta"], p["leak_shift"], p["state_bits"],
                            f"v.{e['name']}.out")
        body.op("Identity", x[e["name"]], out=f"spk.{e['name']}")
    return x


def _readout_step(ex: _Export, t: _Tensors, x: dict[str, str], D: int) -> list[str]:
    """One time step of the warps (delay lines), the per-step logits ``lp_t`` and scores ``e_t`` in the
    Scan body; returns the Scan body's per-step outputs."""
    body, c, r = ex.body, ex.c, ex.r
    warped = {}
    for m in ex.present:
        stack = body.op("Unsqueeze", x[r[f"{m}_input"]], c.vec([0]))
        if D > 1:
            stack = body.op("Concat", stack, f"hist.{m}.in", axis=0)
            body.op("Slice", stack, c.vec([0]), c.vec([D - 1]), c.vec([0]), out=f"hist.{m}.out")
        warped[m] = body.op("ReduceSum", body.op("Mul", stack, t.warp[m]), c.vec([0]), keepdims=0)
    if ex.modal:
        _modal_step(body, ex.main, c, r, ex.present, warped, ex.feat, t.readout, t.readout_bias, t.branch)
    else:
        z = (body.op("Concat", *[warped[m] for m in ex.present], axis=1) if len(ex.present) > 1
             else warped[ex.present[0]])
        _floor_shift(body, c, body.op("Gemm", z, t.readout, t.readout_bias, transB=1), r["logit_shift"], out="lp_t")
    scan_out = [f"fe_seq.{m}" for m in ex.inputs] + [f"spk.{e['name']}" for e in ex.layers] + ["lp_t"]
    scan_out += ["e_t"] if ex.modal else []
    if ex.taaf:
        sh, sh_b, so, so_b = t.score
        h = _floor_shift(body, c, body.op("Relu", body.op("Gemm", z, sh, sh_b, transB=1)), r["hidden_shift"])
        body.op("Reshape", body.op("Gemm", h, so, so_b, transB=1), c.vec([-1]), out="e_t")
        scan_out.append("e_t")
    return scan_out


def _vi(name: str, shape=None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, F32, shape)


def _time_loop(ex: _Export, states: list[str], init_names: list[str], scan_out: list[str]) -> None:
    """The Scan node ``time_loop`` in the main graph: the body over T steps, the states' final values and
    the sequences frontend.{m}, spikes.{layer}, step_logits (and scores)."""
    body_graph = helper.make_graph(
        ex.body.nodes, "step",
        [_vi(f"{n}.in") for n in states] + [_vi(f"{m}_t", ["B", *ex.program["inputs"][m]["shape"]]) for m in ex.inputs],
        [_vi(f"{n}.out") for n in states] + [_vi(n) for n in scan_out])
    final = [f"{n}.final" for n in states]
    seq_names = ([f"frontend.{m}" for m in ex.inputs] + [f"spikes.{e['name']}" for e in ex.layers] + ["step_logits"]
                 + (["scores"] if ex.taaf or ex.modal else []))
    ex.main.nodes.append(helper.make_node("Scan", init_names + ex.inputs, final + seq_names, name="time_loop",
                                          body=body_graph, num_scan_inputs=len(ex.inputs)))


def _sequence_readout(ex: _Export) -> None:
    """The readout over the whole sequence in the main graph: exp2 lookup attention and y = sum_t u_t l'_t
    (``logits``; taaf_modal with modality_logits: each modality's own logits too)."""
    main, c, r = ex.main, ex.c, ex.r
    if ex.taaf:
        u = _exp2_lookup(main, c, "scores", [0], r["score_log2"], "attention")
        weighted = main.op("Mul", main.op("Unsqueeze", u, c.vec([2])), "step_logits")
    elif ex.modal:   # u^m_t: one lookup over every (t, m); y = sum over t and m
        u = _exp2_lookup(main, c, "scores", [0, 2], r["score_log2"], "attention")
        weighted = main.op("Mul", main.op("Unsqueeze", u, c.vec([3])), "step_logits")
    else:
        shape_tb = main.op("Slice", main.op("Shape", "step_logits"), c.vec([0]), c.vec([2]))
        main.op("ConstantOfShape", shape_tb, value=helper.make_tensor("one", F32, [1], [1.0]), out="attention")
        weighted = "step_logits"
    main.op("ReduceSum", weighted, c.vec([0, 2] if ex.modal else [0]), keepdims=0, out="logits")
    if ex.own:       # y_m = sum_t own^m_t l^m_t, own^m: each modality's lookup over its T scores
        u_own = _exp2_lookup(main, c, "scores", [0], r["score_log2"], "attention_own")
        per = main.op("ReduceSum", main.op("Mul", main.op("Unsqueeze", u_own, c.vec([3])), "step_logits"), c.vec([0]),
                      keepdims=0)
        for i, m in enumerate(ex.present):
            main.op("Gather", per, c.scalar(i, np.int64), axis=1, out=MODALITY_LOGITS[m])


def _model(ex: _Export) -> onnx.ModelProto:
    """The main graph's inputs and outputs, the model and its metadata (contract version, the program)."""
    K, present, layers = ex.program["n_classes"], ex.present, ex.layers
    per_step = [len(present)] if ex.modal else []    # taaf_modal: one term per modality and step
    outputs = [_vi("logits", ["B", K]), _vi("step_logits", ["T", "B", *per_step, K])]
    outputs += [_vi("scores", ["T", "B", *per_step])] if ex.taaf or ex.modal else []
    outputs += [_vi("attention", ["T", "B", *per_step])]
    outputs += [_vi(MODALITY_LOGITS[m], ["B", K]) for m in present] if ex.own else []
    outputs += [_vi(f"spikes.{e['name']}", ["T", "B", *e["out_shape"]]) for e in layers]
    outputs += [_vi(f"frontend.{m}", ["T", "B", *ex.shapes[m]]) for m in ex.inputs]
    graph = helper.make_graph(
        ex.main.nodes, "edge_taaf_int",
        [_vi(m, ["T", "B", *ex.program["inputs"][m]["shape"]]) for m in ex.inputs],
        outputs, initializer=ex.c.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="edge-taaf", doc_string=f"{spec.CONTRACT_VERSION} integer SNN (TAAF readout)")
    helper.set_model_props(model, {spec.METADATA_VERSION_KEY: spec.CONTRACT_VERSION,
                                   spec.METADATA_PROGRAM_KEY: json.dumps(ex.program)})
    return model


def build_onnx(checked: Program) -> onnx.ModelProto:
    """The ONNX model of a Program (``QuantTwoModalitySNN.to_program``); checked by onnx.checker.

    The graph is written from the program's file form (firmware_sim.program_io.to_metadata: the JSON
    and tensor names the loader reads back), so writer and reader share one set of names. The steps, in
    the order they add nodes and initializers: weights, initial states, one time step (front-ends and
    layers, then warps and per-step readout) as the Scan body, the Scan, the readout over the sequence,
    the model with its metadata."""
    ex = _Export(*to_metadata(checked))          # runs Program.check(): the contract's one check
    D = _warp_length(ex)
    tensors = _weight_tensors(ex, D)
    states, init_names = _initial_states(ex, D)
    spikes = _layers_step(ex, tensors)
    _time_loop(ex, states, init_names, _readout_step(ex, tensors, spikes, D))
    _sequence_readout(ex)
    model = _model(ex)
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(model, path: str | Path | None = None) -> onnx.ModelProto:
    """Export a QuantTwoModalitySNN (raises ExportError / ContractError naming an uncovered layer)."""
    if not isinstance(model, QuantTwoModalitySNN):
        raise ExportError(f"model {type(model).__name__} is not a quantized QuantTwoModalitySNN; "
                          "quantize it first (quant.qmodel.build_quant_model / load_init_state)")
    proto = build_onnx(model.to_program())
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        onnx.save(proto, str(path))
    return proto
