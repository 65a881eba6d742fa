"""Torch integer mode on a stream, chunk after chunk (docs/accelerator.md, "Streams in chunks").

``integer_stream(model, vision, audio, state)`` runs the next chunk of B streams from ``state`` (None: their start)
and returns the chunk's integers and the state after it. The state holds what the accelerator keeps between
steps: each front-end's level and countdown, each spiking layer's membranes, the last D - 1 steps of each
modality's features (the warp's taps read them), and the program's fingerprint (firmware_sim.stream), so that a
state of another model is refused. However a stream is cut, every per-step output (spikes, front-end counts,
step logits, scores) equals one run over it and the simulator's Runner.stream and onnxruntime's OrtModel.stream
(tests/quant/test_stream_three_way.py); logits and attention are the readout over the chunk's steps.
"""
from __future__ import annotations

import torch

from firmware_sim.run import check_steps
from firmware_sim.stream import check_owner, program_fingerprint
from quant.int_out import IntOut
from quant.int_readout import max_T
from quant.qmodel import QuantTwoModalitySNN


def start_state(model: QuantTwoModalitySNN, batch: int, fingerprint: str) -> dict:
    """The state of ``batch`` streams before their first step: every part empty (zeros when first read)."""
    return {"program": fingerprint, "batch": int(batch), "steps": 0,
            "frontend": {m: {"level": None, "countdown": None} for m in model.modalities},
            "layers": {}, "history": {}}


@torch.no_grad()
def integer_stream(model: QuantTwoModalitySNN, vision: torch.Tensor | None, audio: torch.Tensor | None,
                   state: dict | None = None) -> tuple[IntOut, dict]:
    """The next chunk (T, B, ...) of B streams (1..max_T steps) from ``state``: (the chunk's integers, the state after
    it); ``state`` itself is not modified. ContractError for a state of another program or batch size."""
    x = vision if vision is not None else audio
    check_steps(int(x.shape[0]), int(model.T), max_T(model.fusion_kind, len(model.modalities)), allow_other_T=True)
    model.check_exact()
    fingerprint = program_fingerprint(model.to_program())   # per call: the weights may have changed since the last
    state = start_state(model, x.shape[1], fingerprint) if state is None else state
    check_owner(state["program"], state["batch"], fingerprint, int(x.shape[1]))
    after = {"program": fingerprint, "batch": state["batch"], "steps": state["steps"] + int(x.shape[0]),
             "frontend": {m: dict(fe) for m, fe in state["frontend"].items()},
             "layers": dict(state["layers"]), "history": dict(state["history"])}
    return model.integer_chunk(vision, audio, after), after
