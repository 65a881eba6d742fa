"""The graph of an ONNX file against its program (docs/accelerator.md, 'The ONNX file').

firmware_sim.loader reads the program from the file's metadata; onnxruntime computes with the graph.
Wherever the program fixes a number that onnxruntime reads from the graph, the two are cross-checked
here: the graph's inputs and outputs with their static dims (``check_io``); each weight's QCDQ chain
and its ``* 2^-log2`` (firmware_sim.weight_chains); the Conv (kernel_shape, strides, pads, dilations,
group, no bias) or Gemm / MatMul (orientation of the (out, in) weight, alpha, no bias) that reads each
spiking layer's weight; the layer's LIF constants (leak divisor 2^leak_shift, the state Clip limits,
theta at the spike test and at the reset); the front-end nodes of each input; the readout's shift
divisors 2^logit_shift and 2^hidden_shift (of every taaf_modal branch); and the attention: the exp2
table (recomputed here from spec.EXP2_LUT), its index cap Q_CAP, the score shift 2^(-score_log2 - 4)
and the axes of the maximum (taaf_modal: the joint ``attention`` over time and modality, and with
modality_logits each modality's own ``attention_own`` over time) (``check_graph``). A file whose graph
computes something else than its program says is refused, so onnxruntime and the simulator cannot
silently disagree on it. Every problem raises ContractError naming the file and the field, node or
op at fault.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from firmware_sim import spec
from firmware_sim.program import CONCAT, TAAF_MODAL, ContractError, Layer, Program
from firmware_sim.program_io import MODALITY_LOGITS
from firmware_sim.weight_chains import WeightChains


# ---------------------------------------------------------------- program fields

def _dims(value_info) -> list:
    t = value_info.type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim] if t.HasField("shape") else None


def check_io(graph: onnx.GraphProto, program: Program, source: str) -> None:
    """Graph inputs and outputs as docs/accelerator.md names them; static dims must match the program."""
    init = {i.name for i in graph.initializer}
    inputs = {v.name: v for v in graph.input if v.name not in init}
    if set(inputs) != set(program.inputs):
        raise ContractError(f"{source}: graph inputs {sorted(inputs)} differ from the program's inputs {sorted(program.inputs)}")
    for name, (shape, _) in program.inputs.items():
        _check_value(inputs[name], [None, None, *shape], source, "graph input")
    k, r = program.n_classes, program.readout
    per_step = [len(r.modalities)] if r.fusion == TAAF_MODAL else []   # taaf_modal: one term per modality
    expected = {"logits": [None, k], "step_logits": [None, None, *per_step, k], "attention": [None, None, *per_step]}
    if r.n_branches:
        expected["scores"] = [None, None, *per_step]
    if r.modality_logits:
        expected.update({MODALITY_LOGITS[m]: [None, k] for m in r.modalities})
    expected.update({f"spikes.{layer.name}": [None, None, *layer.out_shape] for layer in program.layers})
    expected.update({f"frontend.{name}": [None, None, *program.shape_of(name)] for name in program.inputs})
    outputs = {v.name: v for v in graph.output}
    missing = sorted(set(expected) - set(outputs))
    if missing:
        raise ContractError(f"{source}: graph output(s) {missing} missing (docs/accelerator.md lists the outputs)")
    unannounced = sorted(set(MODALITY_LOGITS.values()) & set(outputs) - set(expected))
    if unannounced:
        raise ContractError(f"{source}: graph output(s) {unannounced} are per-modality predictions, but the program "
                            f"says edge_taaf.program.readout.modality_logits={str(r.modality_logits).lower()} for "
                            f"modalities {list(r.modalities)}")
    for name, dims in expected.items():
        _check_value(outputs[name], dims, source, "graph output")


def _check_value(value_info, dims: list, source: str, what: str) -> None:
    t = value_info.type.tensor_type
    if t.elem_type != onnx.TensorProto.FLOAT:
        raise ContractError(f"{source}: {what} {value_info.name!r} has element type "
                            f"{onnx.TensorProto.DataType.Name(t.elem_type)}, expected FLOAT")
    have = _dims(value_info)
    if have is None:
        return
    if len(have) != len(dims) or any(h is not None and e is not None and h != e for h, e in zip(have, dims)):
        fmt = lambda ds: "[" + ", ".join("?" if d is None else str(d) for d in ds) + "]"  # noqa: E731
        raise ContractError(f"{source}: {what} {value_info.name!r} has shape {fmt(have)}, expected {fmt(dims)} (? = any)")


# ---------------------------------------------------------------- graph against program

def exp2_table() -> tuple[np.ndarray, int]:
    """The attention lookup (docs/accelerator.md, step 5) as one table, recomputed from spec.EXP2_LUT:
    TABLE[q] = EXP2_LUT[q & 15] >> (q >> 4) for q < Q_CAP, TABLE[Q_CAP] = 0, with Q_CAP = 16 x the bit
    length of the largest LUT entry (from there on every entry shifts to 0). Returns (TABLE, Q_CAP)."""
    frac = 2 ** spec.EXP2_FRAC_BITS
    q_cap = frac * max(spec.EXP2_LUT).bit_length()
    table = [spec.EXP2_LUT[q % frac] >> (q // frac) for q in range(q_cap)] + [0]
    return np.asarray(table, np.int64), q_cap


class _Graph:
    """Lookups over every graph of the model (Scan bodies read main-graph values by name)."""

    def __init__(self, chain: WeightChains, producers: dict, source: str):
        self.consts, self.consumers, self.producers, self.source = chain.consts, chain.consumers, producers, source

    def fail(self, msg: str):
        raise ContractError(f"{self.source}: {msg}")

    @staticmethod
    def label(node: onnx.NodeProto) -> str:
        return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node writing {node.output[0]!r}"

    @staticmethod
    def attr(node: onnx.NodeProto, name: str, default):
        for a in node.attribute:
            if a.name == name:
                value = helper.get_attribute_value(a)
                if isinstance(value, bytes):
                    return value.decode()
                return [int(v) for v in value] if isinstance(value, (list, tuple)) or hasattr(value, "extend") else value
        return default

    def uses(self, value: str) -> list:
        return self.consumers.get(value, [])

    def only_use(self, value: str, op: str, what: str) -> onnx.NodeProto:
        uses = self.uses(value)
        if len(uses) != 1 or uses[0].op_type != op:
            self.fail(f"{what}: expected exactly one {op} reading {value!r}, found {[self.label(n) for n in uses]}")
        return uses[0]

    def use(self, value: str, op: str, what: str, position: int | None = None) -> onnx.NodeProto:
        found = [n for n in self.uses(value) if n.op_type == op and (position is None or
                                                                     (len(n.input) > position and n.input[position] == value))]
        if len(found) != 1:
            self.fail(f"{what}: expected one {op} reading {value!r}, found {[self.label(n) for n in self.uses(value)]}")
        return found[0]

    def producer(self, value: str, op: str, what: str) -> onnx.NodeProto:
        node = self.producers.get(value)
        if node is None or node.op_type != op:
            have = "a graph input or initializer" if node is None else self.label(node)
            self.fail(f"{what}: expected {value!r} to come from a {op} node, it comes from {have}")
        return node

    @staticmethod
    def other(node: onnx.NodeProto, value: str) -> str:
        return node.input[1] if node.input[0] == value else node.input[0]

    def scalar(self, name: str, expected: float, what: str, field: str) -> None:
        """Constant `name` must be the scalar `expected` (the program's `field`)."""
        value = self.consts.get(name)
        if value is None:
            self.fail(f"{what}: {name!r} is not a constant; the program's {field} fixes it to {expected:g}")
        if value.size != 1 or float(value.reshape(())) != float(expected):
            have = value.ravel()[:4].tolist() if value.size != 1 else value.reshape(()).item()
            self.fail(f"{what} is {have} in the graph, but the program says {field} (expected {expected:g})")


def check_graph(program: Program, chain: WeightChains, producers: dict, source: str) -> None:
    """Cross-check the graph against the program (see the module doc): raise ContractError naming the
    layer, the node and attribute or constant, the graph's value and the program's. chain: the weights
    as the loader read them (its int_value leads to each weight's use); producers: value -> node."""
    g = _Graph(chain, producers, source)
    meta_layers = program.meta["layers"]
    for i, layer in enumerate(program.layers):
        label = f"edge_taaf.program.layers[{i}] ({layer.name!r})"
        value = chain.int_value[meta_layers[i]["weight"]]
        node, transposed, value = _weight_use(g, value, label)
        if layer.kind == "conv":
            _check_conv(g, node, transposed, value, layer, label)
        else:
            _check_dense(g, node, transposed, value, label, bias_ok=False)
        if layer.input in program.inputs:
            _check_reads_frontend(g, node, layer.input, label)
        _check_lif(g, node.output[0], layer, label, program)
    for name in program.inputs:
        _check_frontend(g, program, name)
    _check_readout(g, program, chain)


def _check_reads_frontend(g: _Graph, node, name: str, label: str) -> None:
    """A first layer reads its input's front-end output fe.<name>.out (a dense one through a Flatten)."""
    src = node.input[0]
    flat = g.producers.get(src)
    if flat is not None and flat.op_type == "Flatten":
        src = flat.input[0]
    if src != f"fe.{name}.out":
        g.fail(f"{label}: {g.label(node)} reads {node.input[0]!r}; a layer reading input {name!r} must read its "
               f"front-end's output 'fe.{name}.out' (edge_taaf.program.frontends.{name})")


def _check_frontend(g: _Graph, program: Program, name: str) -> None:
    """The front-end nodes of input ``name`` (quant/export.py writes them under fixed value names) against
    edge_taaf.program.frontends.<name>: the pooling blocks, min_count, clip, refractory and the adaptive
    level's shifts."""
    fe = program.frontend(name)
    shape = program.inputs[name][0]
    where = f"edge_taaf.program.frontends.{name}"
    what = f"the front-end of {name!r}"
    out = g.producer(f"fe.{name}.out", "Mul", f"{what}: y = ok * min(x, clip)")
    cast = [g.producers.get(v) for v in out.input]
    cast = next((n for n in cast if n is not None and n.op_type == "Cast"), None)
    if cast is None or f"fe.{name}.clipped" not in out.input:
        g.fail(f"{what}: {g.label(out)} must multiply Cast(ok) by 'fe.{name}.clipped'; inputs {list(out.input)}")
    clip = g.producer(f"fe.{name}.clipped", "Min", f"{what}: min(x, clip)")
    x = next((v for v in clip.input if v not in g.consts), None)
    g.scalar(g.other(clip, x), fe.clip, f"{what}: the clip of {g.label(clip)}", f"{where}.clip={fe.clip}")
    if fe.volume > 1:
        if x != f"fe.{name}.pooled":
            g.fail(f"{what}: the program pools by {list(fe.pool)} but the clip reads {x!r}, not 'fe.{name}.pooled'")
        total = g.producer(x, "ReduceSum", f"{what}: the pooling sum")
        blocks = [0]
        for d, f in zip(shape, fe.pool):
            blocks += [d // f, f]
        reshape = g.producer(total.input[0], "Reshape", f"{what}: the pooling blocks")
        have = g.consts.get(reshape.input[1])
        if reshape.input[0] != f"{name}_t" or have is None or [int(v) for v in np.ravel(have)] != blocks:
            g.fail(f"{what}: {g.label(reshape)} reshapes {reshape.input[0]!r} to "
                   f"{None if have is None else np.ravel(have).tolist()}, but {where}.pool={list(fe.pool)} on an input "
                   f"of shape {list(shape)} needs blocks {blocks} of '{name}_t'")
        axes = g.consts.get(total.input[1]) if len(total.input) > 1 else None
        want = [2 + 2 * i for i in range(len(shape))]
        if axes is None or [int(v) for v in np.ravel(axes)] != want or g.attr(total, "keepdims", 1) != 0:
            g.fail(f"{what}: {g.label(total)} must sum the block axes {want} (keepdims=0) for {where}.pool={list(fe.pool)}")
    elif x != f"{name}_t":
        g.fail(f"{what}: the program has no pooling ({where}.pool={list(fe.pool)}) but the clip reads {x!r}, "
               f"not the input '{name}_t'")
    ok = cast.input[0]
    if fe.refractory:
        both = g.producer(ok, "And", f"{what}: ok = over and ready ({where}.refractory={fe.refractory})")
        ok = next((v for v in both.input if v == f"fe.{name}.over"), None)
        if ok is None or f"fe.{name}.ready" not in both.input:
            g.fail(f"{what}: {g.label(both)} must combine 'fe.{name}.over' and 'fe.{name}.ready'; inputs {list(both.input)}")
        where_node = g.producer(f"fe.{name}.countdown.out", "Where", f"{what}: the refractory countdown")
        g.scalar(where_node.input[1], fe.refractory, f"{what}: the countdown reload of {g.label(where_node)}",
                 f"{where}.refractory={fe.refractory}")
    elif ok != f"fe.{name}.over":
        g.fail(f"{what}: the program has refractory=0 but the pass test is {ok!r}, not 'fe.{name}.over' "
               f"({where}.refractory)")
    over = g.producer(ok, "GreaterOrEqual", f"{what}: x >= threshold")
    if over.input[0] != x:
        g.fail(f"{what}: {g.label(over)} compares {over.input[0]!r}, expected the pooled count {x!r}")
    if fe.adaptive:
        top = g.producer(over.input[1], "Max", f"{what}: threshold = max(m >> gain_shift, min_count) ({where}.mode=adaptive)")
        const = next((v for v in top.input if v in g.consts), None)
        g.scalar(const, fe.min_count, f"{what}: the min_count of {g.label(top)}", f"{where}.min_count={fe.min_count}")
        for value, shift, field in ((g.other(top, const), fe.gain_shift, "gain_shift"), (f"fe.{name}.leak", fe.leak_shift, "leak_shift")):
            div = g.producer(g.producer(value, "Floor", f"{what}: m >> {field}").input[0], "Div", f"{what}: m >> {field}")
            g.scalar(div.input[1], 2 ** shift, f"{what}: the {field} divisor of {g.label(div)}", f"{where}.{field}={shift}")
    else:
        g.scalar(over.input[1], fe.min_count, f"{what}: the threshold of {g.label(over)}",
                 f"{where}.min_count={fe.min_count} (mode count)")


def _weight_use(g: _Graph, value: str, what: str):
    """Follow the integer weights through Transpose nodes to the node computing with them.
    Returns (node, transposed, the value that node reads)."""
    transposed = False
    while True:
        uses = g.uses(value)
        if len(uses) != 1:
            g.fail(f"{what}: expected one node reading the integer weights {value!r}, found {[g.label(n) for n in uses]}")
        node = uses[0]
        if node.op_type != "Transpose":
            return node, transposed, value
        perm = g.attr(node, "perm", None)
        if perm not in (None, [1, 0]):
            g.fail(f"{what}: {g.label(node)} permutes the weight with perm={perm}; expected [1, 0]")
        transposed, value = not transposed, node.output[0]


def _check_conv(g: _Graph, node, transposed: bool, value: str, layer: Layer, label: str) -> None:
    if node.op_type != "Conv" or transposed or list(node.input[1:2]) != [value]:
        g.fail(f"{label}: a conv layer's weights must be the W input of a Conv node; {value!r} is read by {g.label(node)}"
               + (" after a Transpose" if transposed else ""))
    k, s, p = layer.kernel, layer.stride, layer.padding
    expected = [("kernel_shape", [k, k], [k, k], f"the program says kernel={k}"),
                ("strides", [s, s], [1, 1], f"the program says stride={s}"),
                ("pads", [p] * 4, [0] * 4, f"the program says padding={p}"),
                ("dilations", [1, 1], [1, 1], "the contract has no dilation"),
                ("group", 1, 1, "the contract has no grouped convolutions"),
                ("auto_pad", "NOTSET", "NOTSET", f"the program says explicit padding={p}")]
    for name, want, default, field in expected:
        have = g.attr(node, name, default)
        if have != want:
            g.fail(f"{label}: {g.label(node)} has {name}={have}, but {field} (expected {name}={want})")
    if len(node.input) > 2 and node.input[2]:
        g.fail(f"{label}: {g.label(node)} adds a bias {node.input[2]!r}; the contract's convolutions have none")


def _check_dense(g: _Graph, node, transposed: bool, value: str, label: str, bias_ok: bool) -> None:
    """y = x W^T for a PyTorch-layout (out, in) weight W: Gemm(x, W, transB=1), or MatMul / Gemm
    (transB=0) on Transpose(W)."""
    if node.op_type not in ("Gemm", "MatMul") or len(node.input) < 2 or node.input[1] != value:
        g.fail(f"{label}: a dense weight must be the B input of a Gemm or MatMul node; {value!r} is read by {g.label(node)}")
    trans_b = g.attr(node, "transB", 0) if node.op_type == "Gemm" else 0
    if transposed == bool(trans_b):
        g.fail(f"{label}: {g.label(node)} multiplies by the (out, in) weight untransposed ("
               + ("a Transpose and transB=1" if transposed else f"transB={trans_b}")
               + "); expected x W^T (transB=1, or a Transpose before MatMul)")
    if node.op_type == "Gemm":
        for name, want in (("transA", 0), ("alpha", 1.0)):
            if g.attr(node, name, want) != want:
                g.fail(f"{label}: {g.label(node)} has {name}={g.attr(node, name, want)}, expected {want}")
        if len(node.input) > 2 and node.input[2]:
            if not bias_ok:
                g.fail(f"{label}: {g.label(node)} adds a bias {node.input[2]!r}; the contract's spiking layers have none")
            if g.attr(node, "beta", 1.0) != 1.0:
                g.fail(f"{label}: {g.label(node)} scales its bias by beta={g.attr(node, 'beta', 1.0)}, expected 1")


def _check_lif(g: _Graph, current: str, layer: Layer, label: str, program: Program) -> None:
    """u = Clip(Sub(v, Floor(Div(v, 2^k))) + I, lo, hi) (Clip(v + I) at k = LEAK_OFF); s = Cast(u >= theta);
    v' = u - s * theta."""
    add = g.only_use(current, "Add", f"{label}: the synaptic current")
    k = program.leak_shift
    if k >= spec.LEAK_OFF:
        membrane = g.other(add, current)
        node = g.producers.get(membrane)
        if node is not None:
            g.fail(f"{label}: leak_shift={k} (no leak): the current must be added to the membrane state itself, but "
                   f"{membrane!r} is computed by {g.label(node)}")
    else:
        pre = g.producer(g.other(add, current), "Sub", f"{label}: the leaked membrane v - floor(v / 2^k) added to the current")
        floor = g.producer(pre.input[1], "Floor", f"{label}: the leak floor(v / 2^k)")
        div = g.producer(floor.input[0], "Div", f"{label}: the leak floor(v / 2^k)")
        if div.input[0] != pre.input[0]:
            g.fail(f"{label}: the leak {g.label(div)} divides {div.input[0]!r}, not the membrane {pre.input[0]!r}")
        g.scalar(div.input[1], 2 ** k, f"{label}: the leak divisor 2^k ({g.label(div)})", f"leak_shift={k} (2^{k})")
    clip = g.only_use(add.output[0], "Clip", f"{label}: the membrane update")
    lo, hi = spec.state_range(program.state_bits)
    if len(clip.input) < 3:
        g.fail(f"{label}: {g.label(clip)} needs min and max inputs (the {program.state_bits}-bit state limits)")
    g.scalar(clip.input[1], lo, f"{label}: the state Clip min ({g.label(clip)})", f"state_bits={program.state_bits} (min {lo})")
    g.scalar(clip.input[2], hi, f"{label}: the state Clip max ({g.label(clip)})", f"state_bits={program.state_bits} (max {hi})")
    u = clip.output[0]
    ge = g.use(u, "GreaterOrEqual", f"{label}: the spike test u >= theta", position=0)
    g.scalar(ge.input[1], layer.theta, f"{label}: the spike threshold ({g.label(ge)})", f"theta={layer.theta}")
    reset = g.use(u, "Sub", f"{label}: the reset v' = u - theta s", position=0)
    mul = g.producer(reset.input[1], "Mul", f"{label}: the reset v' = u - theta s")
    spikes = g.use(ge.output[0], "Cast", f"{label}: the spikes s = Cast(u >= theta)")
    if spikes.output[0] not in mul.input:
        g.fail(f"{label}: the reset {g.label(mul)} does not multiply the spikes {spikes.output[0]!r}")
    g.scalar(g.other(mul, spikes.output[0]), layer.theta, f"{label}: the reset's theta ({g.label(mul)})", f"theta={layer.theta}")


def _check_shift(g: _Graph, node, through: tuple[str, ...], shift: int, what: str, field: str) -> None:
    """From `node`, single-consumer steps through `through` ops to Floor(Div(., 2^shift))."""
    value = node.output[0]
    while True:
        uses = g.uses(value)
        if len(uses) != 1 or uses[0].op_type not in through + ("Div",):
            g.fail(f"{what}: expected {' / '.join(through)} then Div by 2^{shift} after {g.label(node)}, "
                   f"found {[g.label(n) for n in uses]} reading {value!r}")
        if uses[0].op_type == "Div":
            break
        value = uses[0].output[0]
    div = uses[0]
    g.scalar(div.input[1], 2 ** shift, f"{what}: the divisor of {g.label(div)}", f"{field}={shift} (2^{shift})")
    g.only_use(div.output[0], "Floor", f"{what}: the floor shift")


def _check_readout(g: _Graph, program: Program, chain: WeightChains) -> None:
    r, names = program.readout, program.meta["readout"]
    where = "edge_taaf.program.readout"
    node, transposed, value = _weight_use(g, chain.int_value[names["readout_weight"]], f"{where}.readout_weight")
    _check_dense(g, node, transposed, value, f"{where}.readout_weight", bias_ok=True)
    _check_shift(g, node, ("Add",), r.logit_shift, f"{where}: step logits", f"{where}.logit_shift")
    if r.fusion == CONCAT:
        att = g.producers.get("attention")
        if att is None or att.op_type != "ConstantOfShape":
            g.fail(f"{where}: fusion 'concat' has attention 1 at every step (a ConstantOfShape of 1); 'attention' comes from "
                   f"{'nowhere' if att is None else g.label(att)}")
        one = g.attr(att, "value", None)
        one = None if one is None else numpy_helper.to_array(one)
        if one is None or one.size != 1 or float(one.reshape(())) != 1.0:
            g.fail(f"{where}: fusion 'concat' needs attention 1; {g.label(att)} fills {None if one is None else one.tolist()}")
        return
    prefixes = [f"{m}_" for m in r.modalities] if r.fusion == TAAF_MODAL else [""]   # one score MLP per branch
    for p in prefixes:
        branch = f" ({p[:-1]} branch)" if p else ""
        node, transposed, value = _weight_use(g, chain.int_value[names[f"{p}score_hidden_weight"]],
                                              f"{where}.{p}score_hidden_weight")
        _check_dense(g, node, transposed, value, f"{where}.{p}score_hidden_weight", bias_ok=True)
        _check_shift(g, node, ("Add", "Relu"), r.hidden_shift, f"{where}: score hidden layer{branch}", f"{where}.hidden_shift")
        node, transposed, value = _weight_use(g, chain.int_value[names[f"{p}score_out_weight"]], f"{where}.{p}score_out_weight")
        _check_dense(g, node, transposed, value, f"{where}.{p}score_out_weight", bias_ok=True)
    if r.fusion == TAAF_MODAL:   # the joint lookup over time and modality; each modality's own over time
        _check_attention(g, r.score_log2, where, "attention", [0, 2])
        if r.modality_logits:
            _check_attention(g, r.score_log2, where, "attention_own", [0])
    else:
        _check_attention(g, r.score_log2, where, "attention", [0])


def _check_attention(g: _Graph, score_log2: int, where: str, out: str, axes: list[int]) -> None:
    """``out`` = Gather(TABLE, Cast(Min(q, Q_CAP))); q = Floor(Div(d, 2^s)) for s = -score_log2 - 4 >= 0,
    else Mul(Min(d, Q_CAP), 2^-s); d = Sub(ReduceMax(scores, axes), scores): the maximum over time (axes [0]),
    or over time and modality (taaf_modal's joint attention, axes [0, 2])."""
    table, q_cap = exp2_table()
    what = f"{where}: {out} (docs/accelerator.md, step 5)"
    gather = g.producer(out, "Gather", what)
    if g.attr(gather, "axis", 0) != 0:
        g.fail(f"{what}: {g.label(gather)} has axis={g.attr(gather, 'axis', 0)}, expected 0")
    have = g.consts.get(gather.input[0])
    if have is None:
        g.fail(f"{what}: the exp2 table {gather.input[0]!r} read by {g.label(gather)} is not a constant")
    if have.shape != table.shape or not np.array_equal(have.astype(np.float64), table):
        if have.shape != table.shape:
            detail = f"has shape {list(have.shape)}, expected [{table.size}] (Q_CAP + 1 = {q_cap + 1} entries)"
        else:
            i = int(np.flatnonzero(have.astype(np.float64) != table)[0])
            detail = f"differs at index {i}: {have[i].item()} in the graph, {int(table[i])} expected"
        g.fail(f"{what}: the exp2 table {gather.input[0]!r} {detail}; the contract's table is "
               f"EXP2_LUT[q & 15] >> (q >> 4) for q < {q_cap}, then 0 (firmware_sim.spec.EXP2_LUT)")
    cast = g.producer(gather.input[1], "Cast", f"{what}: the table index")
    cap = g.producer(cast.input[0], "Min", f"{what}: the table index min(q, Q_CAP)")
    const_in = [n for n in cap.input if n in g.consts]
    if len(const_in) != 1:
        g.fail(f"{what}: {g.label(cap)} must take min(q, Q_CAP) with one constant; inputs {list(cap.input)}")
    g.scalar(const_in[0], q_cap, f"{what}: the index cap of {g.label(cap)}", f"Q_CAP={q_cap} (the contract's table length - 1)")
    q = g.other(cap, const_in[0])
    shift = -score_log2 - spec.EXP2_FRAC_BITS
    field = f"{where}.score_log2={score_log2}"
    if shift >= 0:
        floor = g.producer(q, "Floor", f"{what}: q = floor(d / 2^{shift})")
        div = g.producer(floor.input[0], "Div", f"{what}: q = floor(d / 2^{shift})")
        g.scalar(div.input[1], 2 ** shift, f"{what}: the score shift divisor of {g.label(div)}",
                 f"{field} (divisor 2^{shift} = 2^(-score_log2 - {spec.EXP2_FRAC_BITS}))")
        d = div.input[0]
    else:
        mul = g.producer(q, "Mul", f"{what}: q = min(d, Q_CAP) * 2^{-shift}")
        inner = [n for n in mul.input if n not in g.consts]
        factor = [n for n in mul.input if n in g.consts]
        if len(inner) != 1 or len(factor) != 1:
            g.fail(f"{what}: {g.label(mul)} must multiply min(d, Q_CAP) by one constant; inputs {list(mul.input)}")
        g.scalar(factor[0], 2 ** -shift, f"{what}: the score shift factor of {g.label(mul)}",
                 f"{field} (factor 2^{-shift} = 2^(score_log2 + {spec.EXP2_FRAC_BITS}))")
        pre = g.producer(inner[0], "Min", f"{what}: min(d, Q_CAP) before the left shift")
        pre_const = [n for n in pre.input if n in g.consts]
        if len(pre_const) != 1:
            g.fail(f"{what}: {g.label(pre)} must take min(d, Q_CAP) with one constant; inputs {list(pre.input)}")
        g.scalar(pre_const[0], q_cap, f"{what}: the cap of {g.label(pre)}", f"Q_CAP={q_cap}")
        d = g.other(pre, pre_const[0])
    sub = g.producer(d, "Sub", f"{what}: d = max_t e - e_t")
    top = g.producer(sub.input[0], "ReduceMax", f"{what}: max_t e")
    if sub.input[1] != "scores" or top.input[0] != "scores":
        g.fail(f"{what}: d must be ReduceMax(scores) - scores; {g.label(sub)} computes {sub.input[0]!r} - {sub.input[1]!r} "
               f"with {g.label(top)} reading {top.input[0]!r}")
    have = g.attr(top, "axes", None) if len(top.input) < 2 else g.consts.get(top.input[1])
    have = None if have is None else sorted(int(a) for a in np.ravel(have))
    if have != axes or g.attr(top, "keepdims", 1) != 1:
        over = "time" if axes == [0] else "time and modality"
        g.fail(f"{what}: {g.label(top)} must take the maximum over {over} (axes={axes}, keepdims=1); "
               f"it has axes={have}, keepdims={g.attr(top, 'keepdims', 1)}")

