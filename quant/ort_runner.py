"""Run an exported model in onnxruntime (no custom kernels) and return its integers as numpy.

Inputs are given batch-first as in PairedSpikes (vision (N, T, 2, 34, 34), audio (N, T, C));
outputs use the ONNX names: logits (N, K), everything else time-major (T, N, ...), int64.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from firmware_sim.loader import read_metadata
from firmware_sim.program import ContractError
from firmware_sim.program_io import batch_axis
from firmware_sim.run import check_counts, check_steps


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

    def run_time_major(self, vision: np.ndarray | None, audio: np.ndarray | None,
                       allow_other_T: bool = False) -> dict[str, np.ndarray]:
        """vision (T, B, 2, 34, 34), audio (T, B, C) -> outputs by name (int64); None for a modality
        the file has no input for. Inputs are refused as the simulator refuses them (ContractError naming
        the input, firmware_sim.run.check_counts / check_steps): counts must be whole numbers (any integer
        dtype, or floats holding whole numbers) in 0..max, over the program's T steps unless
        ``allow_other_T`` (then 1..max_T, run over exactly the steps given)."""
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
        out = self.session.run(None, {name: np.ascontiguousarray(x, np.float32) for name, x in given.items()})
        result = {}
        for name, value in zip(self.output_names, out):
            as_int = value.astype(np.int64)
            if not np.array_equal(as_int, value):
                raise ValueError(f"onnxruntime output {name!r} holds non-integers; the file is not exact")
            result[name] = as_int
        return result

    def run(self, vision: np.ndarray | None, audio: np.ndarray | None, batch_size: int = 128,
            allow_other_T: bool = False) -> dict[str, np.ndarray]:
        """Batch-first (N, T, ...) arrays -> outputs over the whole set (logits (N, K), others (T, N, ...))."""
        def batch(x, i):
            return None if x is None else np.swapaxes(x[i:i + batch_size], 0, 1)
        n = len(vision if vision is not None else audio)
        parts = [self.run_time_major(batch(vision, i), batch(audio, i), allow_other_T) for i in range(0, n, batch_size)]
        return {k: np.concatenate([p[k] for p in parts], axis=batch_axis(k)) for k in parts[0]}


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    """Names of the outputs that differ (or exist on one side only); empty when a and b agree exactly."""
    return sorted(k for k in set(a) | set(b) if k not in a or k not in b or not np.array_equal(a[k], b[k]))
