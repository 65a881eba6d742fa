"""Fusion of the two modalities' per-step features: TAAF and the concat baseline.

Both take warped features a (T, B, D_a) and v (T, B, D_v) and return a FusionOut.

TAAF (our reading of arXiv 2505.14535, docs/taaf.md), on fused features z_t = [a_t ; v_t]:
  step level:     per-step logits l_t = W z_t + b, score e_t = s^T relu(U z_t + c) + d,
                  attention alpha = softmax_t in base 2 (2^e_t / sum_t 2^e_t: the accelerator's
                  exp2 lookup; a base change is only a temperature), prediction y = sum_t alpha_t l_t;
  modality level: c_m = sum_t alpha_t W_m z_t^m, the attention-weighted evidence of modality m
                  (W = [W_a W_v]); the balanced loss and OGM-GE read it, and share_m =
                  |c_m|_1 / (|c_a|_1 + |c_v|_1) is logged.
Concat: l_t = W [a_t ; v_t] + b, y = mean_t l_t (uniform attention).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

LN2 = math.log(2.0)


@dataclass
class FusionOut:
    logits: torch.Tensor          # (B, K) fused prediction
    step_logits: torch.Tensor     # (T, B, K)
    alpha: torch.Tensor           # (T, B) attention over time, sums to 1 over T
    share: torch.Tensor           # (B, 2) evidence share of (audio, vision), sums to 1
    contrib_audio: torch.Tensor   # (B, K) attention-weighted logit part from the audio features (no bias)
    contrib_vision: torch.Tensor  # (B, K) same for vision


def evidence_shares(weight: torch.Tensor, d_audio: int, a_sum: torch.Tensor, v_sum: torch.Tensor):
    """Each modality's attention-weighted logit evidence and its share, the one formula of both modes.

    weight (K, D_a + D_v) readout weights; a_sum (B, D_a), v_sum (B, D_v) attention-weighted feature sums.
    Returns (c_audio (B, K), c_vision (B, K), share (B, 2) = |c_m|_1 / (|c_a|_1 + |c_v|_1))."""
    w_a, w_v = weight[:, :d_audio], weight[:, d_audio:]
    ca, cv = a_sum @ w_a.T, v_sum @ w_v.T
    na, nv = ca.abs().sum(1), cv.abs().sum(1)
    share = torch.stack([na, nv], dim=1) / (na + nv).clamp_min(1e-12).unsqueeze(1)
    return ca, cv, share


class TAAFFusion(nn.Module):
    def __init__(self, d_audio: int, d_vision: int, n_classes: int, score_hidden: int):
        super().__init__()
        self.d_audio = d_audio
        self.readout = nn.Linear(d_audio + d_vision, n_classes)
        self.score_hidden = nn.Linear(d_audio + d_vision, score_hidden)
        self.score_out = nn.Linear(score_hidden, 1)

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """(T, B, D) fused features -> (T, B) step scores e_t, in log2 units."""
        return self.score_out(torch.relu(self.score_hidden(z))).squeeze(-1)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> FusionOut:
        z = torch.cat([a, v], dim=-1)
        alpha = torch.softmax(self.scores(z) * LN2, dim=0)  # base-2 softmax over time
        step_logits = self.readout(z)
        logits = (alpha.unsqueeze(-1) * step_logits).sum(0)
        w = alpha.unsqueeze(-1)
        ca, cv, share = evidence_shares(self.readout.weight, self.d_audio, (w * a).sum(0), (w * v).sum(0))
        return FusionOut(logits, step_logits, alpha, share, ca, cv)


class ConcatFusion(nn.Module):
    def __init__(self, d_audio: int, d_vision: int, n_classes: int):
        super().__init__()
        self.d_audio = d_audio
        self.readout = nn.Linear(d_audio + d_vision, n_classes)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> FusionOut:
        t, b = a.shape[:2]
        step_logits = self.readout(torch.cat([a, v], dim=-1))
        alpha = torch.full((t, b), 1.0 / t, dtype=a.dtype, device=a.device)
        ca, cv, share = evidence_shares(self.readout.weight, self.d_audio, a.mean(0), v.mean(0))
        return FusionOut(step_logits.mean(0), step_logits, alpha, share, ca, cv)
