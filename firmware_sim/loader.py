"""ONNX file -> integer Program (docs/accelerator.md, 'The ONNX file').

The simulator reads only the file: the program JSON in metadata_props and the initializers it
names, through their QuantizeLinear -> Clip -> DequantizeLinear chains (firmware_sim.weight_chains).
The graph is validated (onnx.checker, standard integer-exact ops only) and cross-checked against
the program wherever the program fixes a number that onnxruntime reads from the graph
(firmware_sim.graph_checks: inputs and outputs as the contract names them, each layer's Conv / Gemm
and LIF constants, the front-ends, the readout's shifts and the attention lookup). A file whose
graph computes something else than its program says is refused, so onnxruntime and the simulator
cannot silently disagree on it.

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
from firmware_sim.graph_checks import check_graph, check_io
from firmware_sim.program import ContractError, Program
from firmware_sim.program_io import PROGRAM_FIELDS, from_metadata
from firmware_sim.weight_chains import WeightChains

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
    chain = WeightChains(_constants(graphs), _consumers(graphs), bits, source)
    program = from_metadata(meta, chain.weight, chain.bias, source)
    check_io(model.graph, program, source)
    check_graph(program, chain, _producers(graphs), source)
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

