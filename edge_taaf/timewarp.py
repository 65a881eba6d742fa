"""Learnable causal time alignment of one modality's feature sequence.

Our reading of TAAF's "learnable time-warping" (arXiv 2505.14535; only the abstract is public):
a causal delay kernel w of length D per modality,

    warp(x)_t = sum_{d=0}^{D-1} w_d * x_{t-d}      (x_{t<0} = 0),  x: (T, B, F)

with w = e_0 + delta and delta initialised to zero, so the warp is exactly the identity at
initialisation. It can learn to delay one modality relative to the other (onset misalignment)
or to smear it over a few steps. Being causal and shift-invariant it streams (a D-step history
buffer) and runs for any T; on the accelerator it is D small integer weights per modality
(docs/accelerator.md). Why not a T x T soft-alignment matrix: it would tie the model to one T.
"""
from __future__ import annotations

import torch
from torch import nn


class CausalDelayWarp(nn.Module):
    def __init__(self, max_delay: int):
        super().__init__()
        if max_delay < 0:
            raise ValueError(f"model.warp_max_delay must be >= 0, got {max_delay}")
        self.delta = nn.Parameter(torch.zeros(max_delay + 1))

    @property
    def kernel(self) -> torch.Tensor:
        """w (D,): the identity e_0 plus the learnt correction."""
        eye = torch.zeros_like(self.delta)
        eye[0] = 1.0
        return eye + self.delta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(T, B, F) -> (T, B, F)."""
        w = self.kernel
        out = x * w[0]
        for d in range(1, min(w.numel(), x.shape[0])):
            out = out + torch.nn.functional.pad(x[:-d], (0, 0, 0, 0, d, 0)) * w[d]
        return out
