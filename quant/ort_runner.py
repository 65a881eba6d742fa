"""Run an exported model in onnxruntime (no custom kernels) and return its integers as numpy.

Inputs are given batch-first as in PairedSpikes (vision (N, T, 2, 34, 34), audio (N, T, C));
outputs use the ONNX names: logits (N, K), everything else time-major (T, N, ...), int64.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from firmware_sim.loader import program_from_model, read_metadata
from firmware_sim.program import ContractError, Program
from firmware_sim.program_io import batch_axis
from firmware_sim.run import check_counts, check_steps

SCAN_NODE = "time_loop"     # quant/export.py's Scan over the time steps


def read_program(model: onnx.ModelProto) -> dict:
    """The program JSON of the file's metadata_props (firmware_sim.loader.read_metadata: the same checks)."""
    return read_metadata(model, "<ONNX model>")


class OrtModel:
    """An onnxruntime session over an exported file (path, bytes or ModelProto) and its program."""

    def __init__(self, model: str | Path | bytes | onnx.ModelProto, threads: int = 0):
        proto = model if isinstance(model, onnx.ModelProto) else (
            onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model)))
        self.program = read_program(proto)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._proto, self._opts, self._stream = proto, opts, None

    def _checked(self, vision, audio, allow_other_T: bool) -> dict[str, np.ndarray]:
        """The given inputs as float32 (T, B, ...) after the simulator's checks (ContractError naming the input)."""
        given = {name: np.asarray(x) for name, x in (("vision", vision), ("audio", audio)) if x is not None}
        if set(given) != set(self.program["inputs"]):
            raise ContractError(f"inputs: the model's inputs are {sorted(self.program['inputs'])}, got {sorted(given)}")
        tb = None
        for name, x in given.items():
            want = self.program["inputs"][name]
            if x.ndim != 2 + len(want["shape"]) or list(x.shape[2:]) != want["shape"]:
                raise ContractError(f"input {name!r}: shape {x.shape}, expected (T, B, {', '.join(map(str, want['shape']))})")
            if tb is not None and x.shape[:2] != tb:
                raise ContractError(f"input {name!r}: (T, B) = {x.shape[:2]} but another input has {tb}")
            tb = x.shape[:2]
            check_counts(name, x, int(want["max"]), floats=True)
        check_steps(int(tb[0]), int(self.program["T"]), int(self.program["max_T"]), allow_other_T)
        return {name: np.ascontiguousarray(x, np.float32) for name, x in given.items()}

    @staticmethod
    def _integers(names, values) -> dict[str, np.ndarray]:
        result = {}
        for name, value in zip(names, values):
            as_int = value.astype(np.int64)
            if not np.array_equal(as_int, value):
                raise ValueError(f"onnxruntime output {name!r} holds non-integers; the file is not exact")
            result[name] = as_int
        return result

    def stream(self, vision: np.ndarray | None, audio: np.ndarray | None, state: dict | None = None):
        """The next chunk (T, B, ...) of B streams (1..max_T steps) from ``state`` (None: the streams' start), run by
        the file's program with its Scan states as explicit inputs and outputs (``streaming_model``). Returns
        (outputs by name as ``run_time_major``'s, the state after the chunk); ``state`` is not modified. Cut
        anywhere, the per-step outputs equal one run, torch integer mode's and the simulator's streams
        (tests/quant/test_stream_three_way.py). A state of another program or batch is a ContractError."""
        from firmware_sim.stream import check_owner, program_fingerprint
        given = self._checked(vision, audio, allow_other_T=True)
        if self._stream is None:
            program = program_from_model(self._proto, "<ONNX model>")
            model, names = streaming_model(self._proto, program)
            session = ort.InferenceSession(model.SerializeToString(), self._opts, providers=["CPUExecutionProvider"])
            self._stream = (session, names, program, program_fingerprint(program))
        session, names, program, fingerprint = self._stream
        batch = next(iter(given.values())).shape[1]
        if state is None:
            state = {"program": fingerprint, "batch": batch, "steps": 0, "values": state_zeros(program, names, batch)}
        check_owner(state["program"], state["batch"], fingerprint, batch)
        feeds = given | {f"{n}.init": state["values"][n] for n in names}
        outputs = [o.name for o in session.get_outputs()]
        values = dict(zip(outputs, session.run(None, feeds)))
        after = {"program": fingerprint, "batch": batch, "steps": state["steps"] + next(iter(given.values())).shape[0],
                 "values": {n: values.pop(f"{n}.final") for n in names}}
        return self._integers(list(values), list(values.values())), after

    def run_time_major(self, vision: np.ndarray | None, audio: np.ndarray | None,
                       allow_other_T: bool = False) -> dict[str, np.ndarray]:
        """vision (T, B, 2, 34, 34), audio (T, B, C) -> outputs by name (int64); None for a modality
        the file has no input for. Inputs are refused as the simulator refuses them (ContractError naming
        the input, firmware_sim.run.check_counts / check_steps): counts must be whole numbers (any integer
        dtype, or floats holding whole numbers) in 0..max, over the program's T steps unless
        ``allow_other_T`` (then 1..max_T, run over exactly the steps given)."""
        given = self._checked(vision, audio, allow_other_T)
        return self._integers(self.output_names, self.session.run(None, given))

    def run(self, vision: np.ndarray | None, audio: np.ndarray | None, batch_size: int = 128,
            allow_other_T: bool = False) -> dict[str, np.ndarray]:
        """Batch-first (N, T, ...) arrays -> outputs over the whole set (logits (N, K), others (T, N, ...))."""
        def batch(x, i):
            return None if x is None else np.swapaxes(x[i:i + batch_size], 0, 1)
        n = len(vision if vision is not None else audio)
        parts = [self.run_time_major(batch(vision, i), batch(audio, i), allow_other_T) for i in range(0, n, batch_size)]
        return {k: np.concatenate([p[k] for p in parts], axis=batch_axis(k)) for k in parts[0]}


def streaming_model(proto: onnx.ModelProto, program: Program) -> tuple[onnx.ModelProto, list[str]]:
    """The file's program with the Scan's states as explicit graph inputs ``<state>.init`` (instead of the zeros the
    file makes) and outputs ``<state>.final``: the same graph otherwise, so one chunk after another continues a
    stream. Returns (the model, the state names: ``v.<layer>``, ``fe.<input>.countdown`` / ``.level``,
    ``hist.<modality>``)."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    scan = next((n for n in graph.node if n.name == SCAN_NODE), None)
    if scan is None:
        raise ContractError(f"<ONNX model>: no Scan node {SCAN_NODE!r}; not a file quant/export.py wrote")
    n_scan = next(a.i for a in scan.attribute if a.name == "num_scan_inputs")
    inits = list(scan.input[:len(scan.input) - n_scan])
    finals = list(scan.output[:len(inits)])
    keep = [n for n in graph.node if not set(n.output) & set(inits)]
    del graph.node[:]
    graph.node.extend(keep)
    names = [n[:-len(".init")] for n in inits]
    shapes = state_shapes(program, names, "B")
    graph.input.extend(helper.make_tensor_value_info(f"{n}.init", onnx.TensorProto.FLOAT, shapes[n]) for n in names)
    graph.output.extend(helper.make_tensor_value_info(f"{n}.final", onnx.TensorProto.FLOAT, shapes[n]) for n in names)
    onnx.checker.check_model(model)
    return model, names


def state_shapes(program: Program, names: list[str], batch) -> dict[str, tuple]:
    """Each Scan state's shape, ``batch`` (an int, or a symbolic name) in its batch place: membranes (B, *out_shape),
    front-end states (B, *pooled shape), delay lines (D - 1, B, D_m)."""
    shapes = {f"v.{layer.name}": (batch, *layer.out_shape) for layer in program.layers}
    for m, (shape, _) in program.inputs.items():
        out = (batch, *program.frontend(m).out_shape(shape))
        shapes |= {f"fe.{m}.countdown": out, f"fe.{m}.level": out}
    r = program.readout
    for m in r.modalities:
        shapes[f"hist.{m}"] = (getattr(r, f"warp_{m}").size - 1, batch, program.feature_width(m))
    missing = sorted(set(names) - set(shapes))
    if missing:
        raise ContractError(f"<ONNX model>: Scan states {missing} are not the program's")
    return {n: shapes[n] for n in names}


def state_zeros(program: Program, names: list[str], batch: int) -> dict[str, np.ndarray]:
    """The streams' start: every Scan state zero."""
    return {n: np.zeros(shape, np.float32) for n, shape in state_shapes(program, names, batch).items()}


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    """Names of the outputs that differ (or exist on one side only); empty when a and b agree exactly."""
    return sorted(k for k in set(a) | set(b) if k not in a or k not in b or not np.array_equal(a[k], b[k]))
