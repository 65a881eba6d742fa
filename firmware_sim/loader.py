"""ONNX file -> integer Program (docs/accelerator.md, 'The ONNX file').

The simulator reads only the file: the program JSON in metadata_props and the initializers it
names, through their QuantizeLinear -> Clip -> DequantizeLinear chains. Integer weights are
clip(round_half_to_even(W / 2^log2), narrow range), exactly what the QCDQ nodes compute. The
graph is validated (onnx.checker, standard integer-exact ops only, inputs and outputs as the
contract names them) and cross-checked against the program wherever the program fixes a number
that onnxruntime reads from the graph (``_check_graph``): each weight's QCDQ chain and its
``* 2^-log2``; the Conv (kernel_shape, strides, pads, dilations, group, no bias) or Gemm / MatMul
(orientation of the (out, in) weight, alpha, no bias) that reads each spiking layer's weight; the
layer's LIF constants (leak divisor 2^leak_shift, the state Clip limits, theta at the spike test
and at the reset); the readout's shift divisors 2^logit_shift and 2^hidden_shift (of every
taaf_modal branch); and the attention: the exp2 table (recomputed here from spec.EXP2_LUT), its index
cap Q_CAP, the score shift 2^(-score_log2 - 4) and the axes of the maximum (taaf_modal: the joint
``attention`` over time and modality, and with modality_logits each modality's own ``attention_own``
over time). A file whose graph computes something else than its program
says is refused, so onnxruntime and the simulator cannot silently disagree on it.

Self-contained files only: a tensor stored outside the .onnx file (data_location=EXTERNAL,
onnx.save(..., save_as_external_data=True)) is refused, and a location escaping the model's folder
(e.g. "../secret" or an absolute path) is named as such. The file is parsed with
load_external_data=False, so no external file is ever opened.
Every problem raises ContractError naming the file and the field, node or op at fault.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np
import onnx
from google.protobuf.message import Message
from onnx import helper, numpy_helper

from firmware_sim import spec
from firmware_sim.program import ContractError, Layer, Program
from firmware_sim.program_io import MODALITY_LOGITS, PROGRAM_FIELDS, from_metadata

# Standard ops that compute exactly on integers held in float32 (and the plumbing around them).
ALLOWED_OPS = frozenset("""
Abs Add And Cast CastLike Ceil Clip Concat Constant ConstantOfShape Conv DequantizeLinear Div Equal Expand
Flatten Floor Gather Gemm Greater GreaterOrEqual Identity Less LessOrEqual MatMul Max Min Mod Mul Neg Not Or
Pad Pow QuantizeLinear Range ReduceMax ReduceMin ReduceSum Relu Reshape Round Scan Shape Sign Slice Split
Squeeze Sub Sum Tile Transpose Unsqueeze Where
""".split())
STANDARD_DOMAINS = ("", "ai.onnx")
def load_program(path: str | os.PathLike) -> Program:
    """Read, validate and convert an exported .onnx file into a Program."""
    model = read_model(path)
    return program_from_model(model, source=str(path))


def read_model(path: str | os.PathLike) -> onnx.ModelProto:
    if not os.path.isfile(path):
        raise ContractError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(os.fspath(path), load_external_data=False)   # never opens another file
    except Exception as err:  # protobuf DecodeError and friends: the message is all we can add
        raise ContractError(f"{path}: not a readable ONNX file (truncated or corrupt?): {err}") from None
    check_self_contained(model, str(path))
    return model


def _tensor_protos(message, where: str):
    """(where, TensorProto) for every tensor anywhere in a protobuf message (initializers, sparse
    initializers, Constant and other attribute tensors, in every graph, subgraph, function and
    training_info), found by walking the message fields."""
    if isinstance(message, onnx.TensorProto):
        yield where, message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        items = [value] if isinstance(value, Message) else list(value)
        for item in items:
            if isinstance(item, onnx.NodeProto):
                label = f"{field.name} {item.op_type} " + (repr(item.name) if item.name else f"writing {item.output[0]!r}"
                                                          if item.output else "")
            else:
                name = getattr(item, "name", "")
                label = field.name + (f" {name!r}" if name else "")
            yield from _tensor_protos(item, f"{where}/{label}")


def check_self_contained(model: onnx.ModelProto, source: str) -> None:
    """Refuse tensors whose data lives outside the file (see the module doc); nothing is read."""
    outside = []
    for where, tensor in _tensor_protos(model, "model"):
        if tensor.data_location != onnx.TensorProto.EXTERNAL and not len(tensor.external_data):
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location", "")
        norm = os.path.normpath(location) if location else ""
        escapes = bool(location) and (os.path.isabs(location) or os.path.splitdrive(location)[0] != ""
                                      or norm == ".." or norm.startswith(".." + os.sep) or norm.startswith("../"))
        outside.append((escapes, where, location))
    if not outside:
        return
    outside.sort(key=lambda o: not o[0])   # escaping locations first
    escapes, where, location = outside[0]
    more = f" (and {len(outside) - 1} more tensor(s))" if len(outside) > 1 else ""
    if escapes:
        raise ContractError(f"{source}: tensor {where} has external data at location {location!r}, which points outside "
                            f"the model's folder{more}; refused without reading it. The simulator reads "
                            "self-contained .onnx files only (tensors stored inside the file)")
    raise ContractError(f"{source}: tensor {where} stores its data outside the file (data_location=EXTERNAL, "
                        f"location {location!r}){more}; the simulator reads self-contained .onnx files only: "
                        "save the model with onnx.save(model, path) without save_as_external_data")


def program_from_model(model: onnx.ModelProto, source: str = "<model>") -> Program:
    check_self_contained(model, source)
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        raise ContractError(f"{source}: onnx.checker rejects the model: {str(err).splitlines()[0]}") from None
    _check_ops(model, source)
    meta = read_metadata(model, source)
    graphs = list(_graphs(model))
    bits = meta.get("weight_bits")
    try:
        spec.check_weight_bits(bits)
    except (TypeError, ValueError) as err:
        raise ContractError(f"{source}: edge_taaf.program: {err}") from None
    chain = _QCDQ(_constants(graphs), _consumers(graphs), bits, source)
    program = from_metadata(meta, chain.weight, chain.bias, source)
    _check_io(model.graph, program, source)
    _check_graph(program, chain, _producers(graphs), source)
    return program


def read_metadata(model: onnx.ModelProto, source: str) -> dict:
    """The program JSON of an ONNX file's metadata_props (checked: contract version, a JSON object)."""
    props = {p.key: p.value for p in model.metadata_props}
    version = props.get(spec.METADATA_VERSION_KEY)
    if version is None:
        raise ContractError(f"{source}: no metadata_props entry {spec.METADATA_VERSION_KEY!r}: not an edge-taaf export "
                            f"(keys present: {sorted(props)})")
    if version != spec.CONTRACT_VERSION:
        raise ContractError(f"{source}: contract {version!r}, this simulator implements {spec.CONTRACT_VERSION!r}")
    if spec.METADATA_PROGRAM_KEY not in props:
        raise ContractError(f"{source}: no metadata_props entry {spec.METADATA_PROGRAM_KEY!r} (the program JSON)")
    try:
        meta = json.loads(props[spec.METADATA_PROGRAM_KEY])
    except json.JSONDecodeError as err:
        raise ContractError(f"{source}: {spec.METADATA_PROGRAM_KEY} is not valid JSON: {err}") from None
    if not isinstance(meta, dict):
        raise ContractError(f"{source}: {spec.METADATA_PROGRAM_KEY} must be a JSON object, got {type(meta).__name__}")
    missing = [f for f in PROGRAM_FIELDS if f not in meta]
    if missing:
        raise ContractError(f"{source}: {spec.METADATA_PROGRAM_KEY} lacks field(s) {missing}")
    return meta


# ---------------------------------------------------------------- graph walking

def _graphs(model: onnx.ModelProto):
    """The main graph and every subgraph (Scan / Loop / If bodies), recursively."""
    stack = [model.graph]
    while stack:
        g = stack.pop()
        yield g
        for node in g.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    stack.append(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    stack.extend(attr.graphs)


def _check_ops(model: onnx.ModelProto, source: str) -> None:
    functions = {(f.domain, f.name): f for f in model.functions}
    bad: set[str] = set()

    def visit(nodes, where):
        for node in nodes:
            if (node.domain, node.op_type) in functions:
                continue  # a model-local function: its body is checked below
            if node.domain not in STANDARD_DOMAINS:
                bad.add(f"{node.domain}::{node.op_type} ({where})")
            elif node.op_type not in ALLOWED_OPS:
                bad.add(f"{node.op_type} ({where})")

    for g in _graphs(model):
        visit(g.node, f"graph {g.name!r}")
    for f in model.functions:
        visit(f.node, f"function {f.domain}::{f.name}")
    if bad:
        raise ContractError(f"{source}: unsupported op(s) {sorted(bad)}; the accelerator contract allows standard "
                            f"integer-exact ops only: {sorted(ALLOWED_OPS)}")


def _constants(graphs) -> dict[str, np.ndarray]:
    out = {}
    for g in graphs:
        for init in g.initializer:
            out[init.name] = numpy_helper.to_array(init)
        for node in g.node:
            if node.op_type == "Constant" and node.attribute:
                value = helper.get_attribute_value(node.attribute[0])
                out[node.output[0]] = numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else np.asarray(value)
    return out


def _consumers(graphs) -> dict[str, list[onnx.NodeProto]]:
    out = defaultdict(list)
    for g in graphs:
        for node in g.node:
            for name in node.input:
                if name:
                    out[name].append(node)
    return out


def _producers(graphs) -> dict[str, onnx.NodeProto]:
    return {name: node for g in graphs for node in g.node for name in node.output if name}


class _QCDQ:
    """Integer weights through their QuantizeLinear -> Clip -> DequantizeLinear chain."""

    def __init__(self, consts, consumers, bits, source):
        self.consts, self.consumers, self.bits, self.source = consts, consumers, bits, source
        self.limit = spec.weight_limit(bits)
        self.int_value: dict[str, str] = {}   # initializer name -> the graph value holding w_int

    def _fail(self, msg):
        raise ContractError(f"{self.source}: {msg}")

    def _const(self, name, what):
        if name not in self.consts:
            self._fail(f"{what} {name!r} is not a constant or initializer")
        return self.consts[name]

    def _next(self, value, op, what):
        nodes = [n for n in self.consumers.get(value, []) if n.op_type == op]
        if len(nodes) != 1:
            found = sorted({n.op_type for n in self.consumers.get(value, [])})
            self._fail(f"{what}: expected exactly one {op} reading {value!r} (QCDQ chain), found consumers {found}")
        return nodes[0]

    def _scale_zp(self, node, log2, what):
        scale = self._const(node.input[1], f"{what}: {node.op_type} scale")
        if scale.size != 1 or float(scale.reshape(())) != 2.0 ** log2:
            self._fail(f"{what}: {node.op_type} scale {scale.ravel()[:3].tolist()} != 2^{log2} (its *_log2 in the program)")
        if len(node.input) < 3 or not node.input[2]:
            self._fail(f"{what}: {node.op_type} has no zero point; expected an int8 zero point 0")
        zp = self._const(node.input[2], f"{what}: {node.op_type} zero point")
        if zp.dtype != np.int8 or zp.size != 1 or int(zp.reshape(())) != 0:
            self._fail(f"{what}: {node.op_type} zero point {zp.ravel()[:3].tolist()} ({zp.dtype}); expected int8 0")

    def weight(self, name, log2, what) -> np.ndarray:
        if not isinstance(name, str) or name not in self.consts:
            self._fail(f"{what}: initializer {name!r} is missing from the graph")
        w = self.consts[name]
        if w.dtype != np.float32:
            self._fail(f"{what}: initializer {name!r} has dtype {w.dtype}, expected float32 (QCDQ input)")
        q_node = self._next(name, "QuantizeLinear", what)
        self._scale_zp(q_node, log2, what)
        clip = self._next(q_node.output[0], "Clip", what)
        if len(clip.input) < 3:
            self._fail(f"{what}: Clip after QuantizeLinear needs min and max inputs")
        lo = self._const(clip.input[1], f"{what}: Clip min")
        hi = self._const(clip.input[2], f"{what}: Clip max")
        if int(lo.reshape(())) != -self.limit or int(hi.reshape(())) != self.limit:
            self._fail(f"{what}: Clip range [{int(lo.reshape(()))}, {int(hi.reshape(()))}] is not the narrow "
                       f"{self.bits}-bit range [-{self.limit}, {self.limit}] (weight_bits={self.bits})")
        dq = self._next(clip.output[0], "DequantizeLinear", what)
        self._scale_zp(dq, log2, what)
        uses = self.consumers.get(dq.output[0], [])
        if len(uses) != 1 or uses[0].op_type != "Mul":
            self._fail(f"{what}: expected exactly one Mul by 2^{-log2} after DequantizeLinear (w_int = dequantized "
                       f"weight * 2^{-log2}), found consumers {[n.op_type for n in uses]}")
        mul = uses[0]
        other = mul.input[1] if mul.input[0] == dq.output[0] else mul.input[0]
        factor = self.consts.get(other)
        if factor is None or factor.size != 1 or float(factor.reshape(())) != 2.0 ** -log2:
            found = "not a constant" if factor is None else factor.ravel()[:3].tolist()
            self._fail(f"{what}: the Mul after DequantizeLinear multiplies by {found}, expected 2^{-log2} = "
                       f"{2.0 ** -log2:g} (1 / the scale 2^{log2} of the program's *_log2)")
        self.int_value[name] = mul.output[0]
        q = np.rint(w.astype(np.float64) / 2.0 ** log2)          # round half to even, as QuantizeLinear
        return np.clip(q, -self.limit, self.limit).astype(np.int8)

    def bias(self, name, what) -> np.ndarray:
        if not isinstance(name, str) or name not in self.consts:
            self._fail(f"{what}: initializer {name!r} is missing from the graph")
        b = self.consts[name]
        if b.dtype != np.int32:
            self._fail(f"{what}: bias {name!r} has dtype {b.dtype}, expected int32")
        return b.astype(np.int64)


# ---------------------------------------------------------------- program fields

def _dims(value_info) -> list:
    t = value_info.type.tensor_type
    return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim] if t.HasField("shape") else None


def _check_io(graph: onnx.GraphProto, program: Program, source: str) -> None:
    """Graph inputs and outputs as docs/accelerator.md names them; static dims must match the program."""
    init = {i.name for i in graph.initializer}
    inputs = {v.name: v for v in graph.input if v.name not in init}
    if set(inputs) != set(program.inputs):
        raise ContractError(f"{source}: graph inputs {sorted(inputs)} differ from the program's inputs {sorted(program.inputs)}")
    for name, (shape, _) in program.inputs.items():
        _check_value(inputs[name], [None, None, *shape], source, "graph input")
    k, r = program.n_classes, program.readout
    per_step = [len(r.modalities)] if r.fusion == "taaf_modal" else []   # taaf_modal: one term per modality
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

    def __init__(self, chain: _QCDQ, producers: dict, source: str):
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


def _check_graph(program: Program, chain: _QCDQ, producers: dict, source: str) -> None:
    """Cross-check the graph against the program (see the module doc): raise ContractError naming the
    layer, the node and attribute or constant, the graph's value and the program's."""
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
    """u = Clip(Sub(v, Floor(Div(v, 2^k))) + I, lo, hi); s = Cast(u >= theta); v' = u - s * theta."""
    add = g.only_use(current, "Add", f"{label}: the synaptic current")
    pre = g.producer(g.other(add, current), "Sub", f"{label}: the leaked membrane v - floor(v / 2^k) added to the current")
    floor = g.producer(pre.input[1], "Floor", f"{label}: the leak floor(v / 2^k)")
    div = g.producer(floor.input[0], "Div", f"{label}: the leak floor(v / 2^k)")
    if div.input[0] != pre.input[0]:
        g.fail(f"{label}: the leak {g.label(div)} divides {div.input[0]!r}, not the membrane {pre.input[0]!r}")
    k = program.leak_shift
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


def _check_readout(g: _Graph, program: Program, chain: _QCDQ) -> None:
    r, names = program.readout, program.meta["readout"]
    where = "edge_taaf.program.readout"
    node, transposed, value = _weight_use(g, chain.int_value[names["readout_weight"]], f"{where}.readout_weight")
    _check_dense(g, node, transposed, value, f"{where}.readout_weight", bias_ok=True)
    _check_shift(g, node, ("Add",), r.logit_shift, f"{where}: step logits", f"{where}.logit_shift")
    if r.fusion == "concat":
        att = g.producers.get("attention")
        if att is None or att.op_type != "ConstantOfShape":
            g.fail(f"{where}: fusion 'concat' has attention 1 at every step (a ConstantOfShape of 1); 'attention' comes from "
                   f"{'nowhere' if att is None else g.label(att)}")
        one = g.attr(att, "value", None)
        one = None if one is None else numpy_helper.to_array(one)
        if one is None or one.size != 1 or float(one.reshape(())) != 1.0:
            g.fail(f"{where}: fusion 'concat' needs attention 1; {g.label(att)} fills {None if one is None else one.tolist()}")
        return
    prefixes = [f"{m}_" for m in r.modalities] if r.fusion == "taaf_modal" else [""]   # one score MLP per branch
    for p in prefixes:
        branch = f" ({p[:-1]} branch)" if p else ""
        node, transposed, value = _weight_use(g, chain.int_value[names[f"{p}score_hidden_weight"]],
                                              f"{where}.{p}score_hidden_weight")
        _check_dense(g, node, transposed, value, f"{where}.{p}score_hidden_weight", bias_ok=True)
        _check_shift(g, node, ("Add", "Relu"), r.hidden_shift, f"{where}: score hidden layer{branch}", f"{where}.hidden_shift")
        node, transposed, value = _weight_use(g, chain.int_value[names[f"{p}score_out_weight"]], f"{where}.{p}score_out_weight")
        _check_dense(g, node, transposed, value, f"{where}.{p}score_out_weight", bias_ok=True)
    if r.fusion == "taaf_modal":   # the joint lookup over time and modality; each modality's own over time
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
