"""The integers of one run of the quantized model in integer mode (QuantTwoModalitySNN.integer_forward and
quant.int_stream), named as the ONNX file names them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from firmware_sim.program_io import MODALITY_LOGITS


@dataclass
class IntOut:
    """The accelerator's integers for a batch (int64): y, l'_t, e_t, u_t and every layer's spikes.
    taaf_modal with M modalities: step_logits (T, B, M, K), attention and scores (T, B, M)."""

    logits: torch.Tensor                 # (B, K) y
    step_logits: torch.Tensor            # (T, B, K) l'_t
    attention: torch.Tensor              # (T, B) u_t
    scores: torch.Tensor | None          # (T, B) e_t (taaf, taaf_modal)
    spikes: dict[str, torch.Tensor]      # layer name -> (T, B, ...)
    saturations: dict[str, int]          # layer name -> neuron-steps whose state hit the register limit
    frontend: dict[str, torch.Tensor]    # input name -> (T, B, ...) the counts its front-end passed on
    modal_logits: dict[str, torch.Tensor] = field(default_factory=dict)   # taaf_modal with modality_logits: m -> (B, K) y_m

    def as_numpy(self) -> dict[str, np.ndarray]:
        """The ONNX file's outputs by name (docs/accelerator.md), as int64 numpy arrays."""
        out = {"logits": self.logits, "step_logits": self.step_logits, "attention": self.attention}
        if self.scores is not None:
            out["scores"] = self.scores
        out.update({MODALITY_LOGITS[m]: y for m, y in self.modal_logits.items()})
        out.update({f"spikes.{k}": v for k, v in self.spikes.items()})
        out.update({f"frontend.{k}": v for k, v in self.frontend.items()})
        return {k: v.cpu().numpy() for k, v in out.items()}
