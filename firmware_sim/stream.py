"""A program's state between two chunks of a stream (always-on use), and its file.

A device runs on a continuous stream: the state is never reset between calls. ``Runner.stream`` (firmware_sim.run)
runs a chunk of 1..max_T steps from a StreamState and returns the state after it; a stream cut into chunks of any
sizes gives the same per-step outputs and the same summed counters as one run (tests/firmware_sim/test_stream.py).

What the state holds, per stream of the batch (what the hardware keeps between steps):
- each input's front-end: the refractory countdown and the adaptive level of every element;
- each spiking layer: the membranes (as of the last step: a neuron the event-driven kernel left untouched has
  its catch-up leak applied) and the catch-up leak steps not yet counted (the hardware counts them when the
  neuron is next updated);
- the readout: the last D - 1 steps of each modality's features, which the time-warp's taps still read;
- the steps run so far, and the program's fingerprint (SHA-256 of its chip image), so that a state of another
  program is refused.

The file is a numpy .npz written atomically; loading it for another program or batch size is a ContractError.
"""
from __future__ import annotations

import copy
import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_sim.program import MODALITIES, ContractError, Program

STATE_FORMAT = "edge-taaf-stream-state/1"


def program_fingerprint(program: Program) -> str:
    """SHA-256 of the program's chip image (firmware_sim/image.py): every constant, weight and shape."""
    from firmware_sim.image import write_image
    return hashlib.sha256(write_image(program)).hexdigest()


def check_owner(state_program: str, state_batch: int, fingerprint: str, batch: int,
                source: str = "stream state") -> None:
    """ContractError unless a state (its program fingerprint and stream count) belongs to the program of
    ``fingerprint`` and a chunk of ``batch`` streams; one rule for the three runners' states."""
    if state_program != fingerprint:
        raise ContractError(f"{source}: it belongs to another program (fingerprint {state_program[:12]}..., this "
                            f"program's is {fingerprint[:12]}...); start a new stream instead")
    if state_batch != batch:
        raise ContractError(f"{source}: it holds {state_batch} streams, but the chunk has B={batch}")


@dataclass
class StreamState:
    """See the module doc. frontend: input -> {"level", "countdown"} (B, *out_shape) int64; layers: layer ->
    run.LayerState; history: modality -> (H, B, D_m) uint8 with H = the longest warp - 1 (D_m = 0 for a missing
    modality); steps: steps run so far; program: program_fingerprint; batch: B."""

    program: str
    batch: int
    steps: int
    frontend: dict
    layers: dict
    history: dict

    @classmethod
    def start(cls, program: Program, batch: int, fingerprint: str | None = None) -> "StreamState":
        """The state of ``batch`` streams before their first step (everything zero); ``fingerprint``: the program's,
        when the caller has it already."""
        from firmware_sim.run import LayerState
        r = program.readout
        depth = max((getattr(r, f"warp_{m}").size for m in r.modalities), default=1) - 1
        frontend = {}
        for name, (shape, _) in program.inputs.items():
            out = (batch, *program.frontend(name).out_shape(shape))
            frontend[name] = {"level": np.zeros(out, np.int64), "countdown": np.zeros(out, np.int64)}
        return cls(fingerprint or program_fingerprint(program), batch, 0, frontend,
                   {layer.name: LayerState.fresh(layer, batch) for layer in program.layers},
                   {m: np.zeros((depth, batch, program.feature_width(m)), np.uint8) for m in MODALITIES})

    def copy(self) -> "StreamState":
        return copy.deepcopy(self)

    def check(self, fingerprint: str, batch: int, source: str = "stream state") -> None:
        """ContractError unless this state belongs to the program of ``fingerprint`` and a batch of ``batch`` streams."""
        check_owner(self.program, self.batch, fingerprint, batch, source)

    def save(self, path: str | os.PathLike) -> None:
        """Write the state as an .npz, atomically (a crash leaves the last good file)."""
        arrays = {"format": np.array(STATE_FORMAT), "program": np.array(self.program),
                  "batch": np.array(self.batch), "steps": np.array(self.steps)}
        for name, fe in self.frontend.items():
            arrays.update({f"frontend/{name}/{k}": v for k, v in fe.items()})
        for name, layer in self.layers.items():
            arrays.update({f"layer/{name}/v": layer.v, f"layer/{name}/carry": layer.carry})
        arrays.update({f"history/{m}": h for m, h in self.history.items()})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        # The write-fsync-replace of sensors/atomic.py, written again: firmware_sim imports nothing of ours.
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(buffer.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike, program: Program) -> "StreamState":
        """Read a state written by ``save`` for ``program``; ContractError naming the file when it is not one, or
        belongs to another program, or lacks or misshapes a part of this program's state."""
        from firmware_sim.run import LayerState
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise ContractError(f"{path}: not a stream state file ({err})") from None
        if str(arrays.get("format", "")) != STATE_FORMAT:
            raise ContractError(f"{path}: format {str(arrays.get('format', 'missing'))!r}, expected {STATE_FORMAT!r}")
        batch = int(arrays["batch"])
        want = cls.start(program, batch)
        if str(arrays["program"]) != want.program:
            raise ContractError(f"{path}: the state belongs to another program (fingerprint {str(arrays['program'])[:12]}"
                                f"..., this program's is {want.program[:12]}...)")

        def part(key, like):
            if key not in arrays:
                raise ContractError(f"{path}: {key} is missing")
            if arrays[key].shape != like.shape or arrays[key].dtype != like.dtype:
                raise ContractError(f"{path}: {key} is {arrays[key].dtype} {arrays[key].shape}, expected "
                                    f"{like.dtype} {like.shape}")
            return arrays[key]
        frontend = {n: {k: part(f"frontend/{n}/{k}", v) for k, v in fe.items()} for n, fe in want.frontend.items()}
        layers = {n: LayerState(part(f"layer/{n}/v", s.v), part(f"layer/{n}/carry", s.carry))
                  for n, s in want.layers.items()}
        history = {m: part(f"history/{m}", h) for m, h in want.history.items()}
        return cls(want.program, batch, int(arrays["steps"]), frontend, layers, history)
