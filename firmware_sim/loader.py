"""ONNX file -> integer Program (docs/accelerator.md, 'The ONNX file').

The simulator reads only the file: the program JSON in metadata_props and the initializers it
names, through their QuantizeLinear -> Clip -> DequantizeLinear chains. Integer weights are
clip(round_half_to_even(W / 2^log2), narrow range), exactly what the QCDQ nodes compute. The
graph itself is validated (onnx.checker, standard integer-exact ops only, inputs and outputs
as the contract names them) but not interpreted: onnxruntime runs it, the tests compare.
Every problem raises ContractError naming the file and the field, node or op at fault.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper

from firmware_sim import spec
from firmware_sim.program import ContractError, Layer, Program, Readout

# Standard ops that compute exactly on integers held in float32 (and the plumbing around them).
ALLOWED_OPS = frozenset("""
Abs Add And Cast CastLike Ceil Clip Concat Constant ConstantOfShape Conv DequantizeLinear Div Equal Expand
Flatten Floor Gather Gemm Greater GreaterOrEqual Identity Less LessOrEqual MatMul Max Min Mod Mul Neg Not Or
Pad Pow QuantizeLinear Range ReduceMax ReduceMin ReduceSum Relu Reshape Round Scan Shape Sign Slice Split
Squeeze Sub Sum Tile Transpose Unsqueeze Where
""".split())
STANDARD_DOMAINS = ("", "ai.onnx")
PROGRAM_FIELDS = ("contract", "T", "max_T", "weight_bits", "state_bits", "leak_shift", "reset", "n_classes", "fusion",
                  "inputs", "layers", "readout")
LAYER_FIELDS = ("name", "modality", "kind", "input", "in_shape", "out_shape", "weight", "weight_log2", "theta")
CONV_FIELDS = ("kernel", "stride", "padding")
READOUT_FIELDS = ("audio_input", "vision_input", "warp_audio", "warp_vision", "warp_log2", "readout_weight",
                  "readout_log2", "readout_bias", "logit_shift")
TAAF_FIELDS = ("score_hidden_weight", "score_hidden_log2", "score_hidden_bias", "hidden_shift", "score_out_weight",
               "score_out_log2", "score_out_bias", "score_log2")


def load_program(path: str | os.PathLike) -> Program:
    """Read, validate and convert an exported .onnx file into a Program."""
    model = read_model(path)
    return program_from_model(model, source=str(path))


def read_model(path: str | os.PathLike) -> onnx.ModelProto:
    if not os.path.isfile(path):
        raise ContractError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(os.fspath(path))
    except Exception as err:  # protobuf DecodeError and friends: the message is all we can add
        raise ContractError(f"{path}: not a readable ONNX file (truncated or corrupt?): {err}") from None
    return model


def program_from_model(model: onnx.ModelProto, source: str = "<model>") -> Program:
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        raise ContractError(f"{source}: onnx.checker rejects the model: {str(err).splitlines()[0]}") from None
    _check_ops(model, source)
    meta = read_metadata(model, source)
    graphs = list(_graphs(model))
    consts = _constants(graphs)
    consumers = _consumers(graphs)
    bits = _int(meta, "weight_bits", source)
    try:
        spec.check_weight_bits(bits)
    except ValueError as err:
        raise ContractError(f"{source}: edge_taaf.program: {err}") from None
    chain = _QCDQ(consts, consumers, bits, source)
    inputs = _inputs(meta, source)
    layers = [_layer(entry, i, chain, source) for i, entry in enumerate(_list(meta, "layers", source))]
    readout = _readout(meta, chain, source)
    program = Program(T=_int(meta, "T", source), max_T=_int(meta, "max_T", source), weight_bits=bits,
                      state_bits=_int(meta, "state_bits", source), leak_shift=_int(meta, "leak_shift", source),
                      n_classes=_int(meta, "n_classes", source), inputs=inputs, layers=layers, readout=readout, meta=meta)
    if meta["reset"] != spec.RESET:
        raise ContractError(f"{source}: edge_taaf.program.reset={meta['reset']!r}; the accelerator only has {spec.RESET!r}")
    try:
        program.check()
    except ContractError as err:
        raise ContractError(f"{source}: {err}") from None
    _check_io(model.graph, program, source)
    return program


def read_metadata(model: onnx.ModelProto, source: str) -> dict:
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
    if meta["contract"] != spec.CONTRACT_VERSION:
        raise ContractError(f"{source}: edge_taaf.program.contract={meta['contract']!r}, expected {spec.CONTRACT_VERSION!r}")
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
                out[name].append(node)
    return out


class _QCDQ:
    """Integer weights through their QuantizeLinear -> Clip -> DequantizeLinear chain."""

    def __init__(self, consts, consumers, bits, source):
        self.consts, self.consumers, self.bits, self.source = consts, consumers, bits, source
        self.limit = spec.weight_limit(bits)

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

def _int(obj: dict, key: str, source: str, where: str = "edge_taaf.program") -> int:
    if key not in obj:
        raise ContractError(f"{source}: {where} lacks field {key!r}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"{source}: {where}.{key}={value!r}, expected an integer")
    return value


def _list(obj: dict, key: str, source: str) -> list:
    value = obj[key]
    if not isinstance(value, list) or not value:
        raise ContractError(f"{source}: edge_taaf.program.{key} must be a non-empty list")
    return value


def _shape(value, where: str, source: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value):
        raise ContractError(f"{source}: {where}={value!r}, expected a list of positive integers")
    return tuple(value)


def _inputs(meta: dict, source: str) -> dict:
    entries = meta["inputs"]
    if not isinstance(entries, dict) or not entries:
        raise ContractError(f"{source}: edge_taaf.program.inputs must be a non-empty object name -> {{shape, max}}")
    out = {}
    for name, entry in entries.items():
        where = f"edge_taaf.program.inputs.{name}"
        if not isinstance(entry, dict) or "shape" not in entry or "max" not in entry:
            raise ContractError(f"{source}: {where} must hold 'shape' and 'max'")
        out[name] = (_shape(entry["shape"], f"{where}.shape", source), _int(entry, "max", source, where))
    return out


def _layer(entry, i: int, chain: _QCDQ, source: str) -> Layer:
    label = f"edge_taaf.program.layers[{i}]"
    if not isinstance(entry, dict):
        raise ContractError(f"{source}: {label} must be an object")
    label += f" ({entry.get('name')!r})"
    kind = entry.get("kind")
    missing = [f for f in LAYER_FIELDS + (CONV_FIELDS if kind == "conv" else ()) if f not in entry]
    if missing:
        raise ContractError(f"{source}: {label} lacks field(s) {missing}")
    if kind not in ("conv", "dense"):
        raise ContractError(f"{source}: {label}.kind={kind!r}, expected 'conv' or 'dense'")
    log2 = _int(entry, "weight_log2", source, label)
    w = chain.weight(entry["weight"], log2, f"{label}.weight")
    stride = _int(entry, "stride", source, label) if kind == "conv" else 1
    padding = _int(entry, "padding", source, label) if kind == "conv" else 0
    if kind == "conv" and (w.ndim != 4 or _int(entry, "kernel", source, label) != w.shape[-1]):
        raise ContractError(f"{source}: {label}.kernel={entry['kernel']} but the weight has shape {list(w.shape)}")
    return Layer(str(entry["name"]), kind, str(entry["modality"]), str(entry["input"]),
                 _shape(entry["in_shape"], f"{label}.in_shape", source), _shape(entry["out_shape"], f"{label}.out_shape", source),
                 w, log2, _int(entry, "theta", source, label), stride, padding)


def _readout(meta: dict, chain: _QCDQ, source: str) -> Readout:
    r = meta["readout"]
    fusion = meta["fusion"]
    where = "edge_taaf.program.readout"
    if not isinstance(r, dict):
        raise ContractError(f"{source}: {where} must be an object")
    if fusion not in ("taaf", "concat"):
        raise ContractError(f"{source}: edge_taaf.program.fusion={fusion!r}, expected 'taaf' or 'concat'")
    need = READOUT_FIELDS + (TAAF_FIELDS if fusion == "taaf" else ())
    missing = [f for f in need if f not in r]
    if missing:
        raise ContractError(f"{source}: {where} lacks field(s) {missing} (fusion={fusion!r})")
    lg = {k: _int(r, k, source, where) for k in need if k.endswith("_log2")}
    warp = lg["warp_log2"]

    def optional(role: str, load):
        """A unimodal program has null for the missing modality's input layer and warp."""
        return None if r[role] is None else load(r[role])
    out = Readout(fusion, optional("audio_input", str), optional("vision_input", str),
                  optional("warp_audio", lambda n: chain.weight(n, warp, f"{where}.warp_audio")),
                  optional("warp_vision", lambda n: chain.weight(n, warp, f"{where}.warp_vision")),
                  chain.weight(r["readout_weight"], lg["readout_log2"], f"{where}.readout_weight"),
                  chain.bias(r["readout_bias"], f"{where}.readout_bias"),
                  _int(r, "logit_shift", source, where), log2=lg)
    if fusion == "taaf":
        out.hidden_weight = chain.weight(r["score_hidden_weight"], lg["score_hidden_log2"], f"{where}.score_hidden_weight")
        out.hidden_bias = chain.bias(r["score_hidden_bias"], f"{where}.score_hidden_bias")
        out.hidden_shift = _int(r, "hidden_shift", source, where)
        out.out_weight = chain.weight(r["score_out_weight"], lg["score_out_log2"], f"{where}.score_out_weight")
        out.out_bias = chain.bias(r["score_out_bias"], f"{where}.score_out_bias")
        out.score_log2 = lg["score_log2"]
    return out


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
    k = program.n_classes
    expected = {"logits": [None, k], "step_logits": [None, None, k], "attention": [None, None]}
    if program.readout.fusion == "taaf":
        expected["scores"] = [None, None]
    expected.update({f"spikes.{layer.name}": [None, None, *layer.out_shape] for layer in program.layers})
    outputs = {v.name: v for v in graph.output}
    missing = sorted(set(expected) - set(outputs))
    if missing:
        raise ContractError(f"{source}: graph output(s) {missing} missing (docs/accelerator.md lists the outputs)")
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
