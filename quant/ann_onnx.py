"""The single-pass int8 ANN competitor as standard ONNX, and its onnxruntime runner.

Why a hand-written graph (onnx.helper, as quant/export.py for the SNN) and not Brevitas' QCDQ export:
the competitor's integer semantics (quant/ann_int.py) are a handful of standard ops, and writing them
out keeps every tensor an integer held exactly in float32 (< 2^24), so onnxruntime's logits can be
compared with the integer reference for equality, not within a tolerance. The graph, opset 17:

  vision (T, B, P, H, W) -> ReduceSum over T -> count frame (B, P, H, W)
  audio  (T, B, C)       -> Transpose, Unsqueeze -> count map (B, 1, T, C)
  each layer: Conv (padding k // 2) or MatMul with weights through QuantizeLinear -> Clip(narrow) ->
  DequantizeLinear (QCDQ; integer values), then Mul(2^shift) -> Round (half to even) -> Clip(0, 2^b - 1);
  the branches Flatten and Concat (vision first); the classifier's accumulators are ``logits`` (B, K).

The program's facts (T, input shapes and count limits, bit widths, per-layer shifts) travel in the file's
metadata_props under ``edge_taaf.ann_program``; :class:`AnnOrt` reads them to check its inputs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from firmware_sim import spec
from firmware_sim.program import ContractError
from quant.ann_int import INPUTS, AnnProgram, IntLayer, check_inputs
# The SNN writer's graph builder and QCDQ weight rule, shared so the weight encoding is written once.
from quant.export import IR_VERSION, OPSET, _Consts, _Graph, _qcdq
from sensors.atomic import atomic_write

PROGRAM_KEY = "edge_taaf.ann_program"
F32 = TensorProto.FLOAT


def _layer(g: _Graph, c: _Consts, lay: IntLayer, x: str, bits: int) -> str:
    if lay.kind == "conv":
        k = lay.weight.shape[-1]
        w = _qcdq(g, c, f"{lay.name}.weight", lay.weight, 0, bits)
        acc = g.op("Conv", x, w, kernel_shape=[k, k], strides=[lay.stride, lay.stride], pads=[k // 2] * 4)
    else:
        w = _qcdq(g, c, f"{lay.name}.weight_t", lay.weight.T, 0, bits)
        acc = g.op("MatMul", x, w)
    if lay.shift is None:
        return acc
    scaled = g.op("Mul", acc, c.scalar(2.0 ** lay.shift))
    return g.op("Clip", g.op("Round", scaled), c.scalar(0), c.scalar(lay.act_max))


def build_ann_onnx(program: AnnProgram) -> onnx.ModelProto:
    """The checked ONNX model of ``program`` (onnx.checker, full check)."""
    g, c = _Graph("ann."), _Consts()
    frame = g.op("ReduceSum", "vision", c.vec([0]), keepdims=0)
    cmap = g.op("Unsqueeze", g.op("Transpose", "audio", perm=[1, 0, 2]), c.vec([1]))
    flat = []
    for m, x in (("vision", frame), ("audio", cmap)):
        for lay in getattr(program, m):
            x = _layer(g, c, lay, x, program.weight_bits)
        flat.append(g.op("Flatten", x, axis=1))
    z = g.op("Concat", *flat, axis=1)
    for lay in program.head:
        z = _layer(g, c, lay, z, program.weight_bits)
    g.op("Identity", z, out="logits")
    shapes = program.input_shapes()
    inputs = [helper.make_tensor_value_info(m, F32, [program.T, "B", *shapes[m]]) for m in INPUTS]
    graph = helper.make_graph(g.nodes, "edge_taaf_ann_int", inputs,
                              [helper.make_tensor_value_info("logits", F32, ["B", program.n_classes])],
                              initializer=c.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="edge-taaf", doc_string="single-pass int8 ANN competitor (integer graph)")
    helper.set_model_props(model, {spec.METADATA_VERSION_KEY: spec.CONTRACT_VERSION,
                                   PROGRAM_KEY: json.dumps(program.as_dict())})
    onnx.checker.check_model(model, full_check=True)
    return model


def save_ann_onnx(program: AnnProgram, path: str | Path) -> onnx.ModelProto:
    """Build and write the file atomically; returns the model."""
    model = build_ann_onnx(program)
    atomic_write(path, lambda f: f.write(model.SerializeToString()))
    return model


def read_ann_program(model: onnx.ModelProto, where: str = "<ONNX model>") -> dict:
    """The program facts of the file's metadata (ContractError naming the file when absent)."""
    props = {p.key: p.value for p in model.metadata_props}
    if PROGRAM_KEY not in props:
        raise ContractError(f"{where}: no {PROGRAM_KEY} in metadata_props; not an edge-taaf-ann export")
    return json.loads(props[PROGRAM_KEY])


class AnnOrt:
    """onnxruntime over an exported competitor (path, bytes or ModelProto). ``logits(vision, audio)`` takes
    time-major counts; ``run`` takes batch-first (N, T, ...) arrays as in sensors.paired.PairedSpikes."""

    def __init__(self, model: str | Path | bytes | onnx.ModelProto, threads: int = 0):
        self.path = Path(model) if isinstance(model, (str, Path)) else None     # the file, when given one
        where = str(model) if isinstance(model, (str, Path)) else "<ONNX model>"
        proto = model if isinstance(model, onnx.ModelProto) else (
            onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model)))
        facts = read_ann_program(proto, where)
        self.T, self.n_classes = int(facts["T"]), int(facts["n_classes"])
        self._facts = facts
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: tuple(self._facts["inputs"][m]["shape"]) for m in INPUTS}

    def input_max(self) -> dict[str, int]:
        return {m: int(self._facts["inputs"][m]["max"]) for m in INPUTS}

    def logits(self, vision: np.ndarray, audio: np.ndarray) -> np.ndarray:
        """vision (T, B, P, H, W), audio (T, B, C) whole counts -> int64 logits (B, K). ContractError naming
        the input for a wrong shape, T, batch or count."""
        check_inputs(self, np.asarray(vision), np.asarray(audio))
        out = self.session.run(["logits"], {"vision": np.ascontiguousarray(vision, np.float32),
                                            "audio": np.ascontiguousarray(audio, np.float32)})[0]
        as_int = out.astype(np.int64)
        if not np.array_equal(as_int, out):
            raise ContractError("onnxruntime logits hold non-integers; the file is not exact")
        return as_int

    def run(self, vision: np.ndarray, audio: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Batch-first vision (N, T, P, H, W), audio (N, T, C) -> int64 logits (N, K)."""
        n = len(vision)
        if len(audio) != n:
            raise ContractError(f"input 'audio': {len(audio)} samples but vision has {n}")
        parts = [self.logits(np.swapaxes(vision[i:i + batch_size], 0, 1), np.swapaxes(audio[i:i + batch_size], 0, 1))
                 for i in range(0, n, batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.n_classes), np.int64)


def ann_logits(model: str | Path | bytes | onnx.ModelProto, vision: np.ndarray, audio: np.ndarray,
               batch_size: int = 256) -> np.ndarray:
    """The exported competitor's int64 logits (N, K) for batch-first vision (N, T, P, H, W) and audio (N, T, C)
    counts, run in onnxruntime (the robustness benchmark's entry point)."""
    return AnnOrt(model).run(vision, audio, batch_size)
