"""Fusion of the two modalities' per-step features: TAAF and the concat baseline.

Both take warped features a (T, B, D_a) and v (T, B, D_v) and return a FusionOut.

TAAF (our reading of arXiv 2505.14535, documented in docs/taaf.md), hierarchical:
  1. modality level, per step:  beta_t = softmax_m(g_a(a_t), g_v(v_t))      (B, 2) per step
     z_t = [2 beta_t^a a_t ; 2 beta_t^v v_t]   (x2 so that an even gate leaves features unscaled)
  2. time level: e_t = s^T relu(U z_t),  alpha = softmax_t(e)                 (T, B)
     per-step logits l_t = W z_t + b,  prediction y = sum_t alpha_t l_t
  Modality share (for the balanced loss and logging): share_m = sum_t alpha_t beta_t^m.
Concat: l_t = W [a_t ; v_t] + b, y = mean_t l_t (uniform attention).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FusionOut:
    logits: torch.Tensor          # (B, K) fused prediction
    step_logits: torch.Tensor     # (T, B, K)
    alpha: torch.Tensor           # (T, B) attention over time, sums to 1 over T
    share: torch.Tensor           # (B, 2) attention share of (audio, vision), sums to 1
    contrib_audio: torch.Tensor   # (B, K) part of logits coming from the audio features (no bias)
    contrib_vision: torch.Tensor  # (B, K) part coming from the vision features


class TAAFFusion(nn.Module):
    def __init__(self, d_audio: int, d_vision: int, n_classes: int, score_hidden: int):
        super().__init__()
        self.d_audio = d_audio
        self.gate_audio = nn.Linear(d_audio, 1)
        self.gate_vision = nn.Linear(d_vision, 1)
        self.readout = nn.Linear(d_audio + d_vision, n_classes)
        self.score = nn.Sequential(nn.Linear(d_audio + d_vision, score_hidden), nn.ReLU(), nn.Linear(score_hidden, 1))

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> FusionOut:
        gates = torch.cat([self.gate_audio(a), self.gate_vision(v)], dim=-1)  # (T, B, 2)
        beta = torch.softmax(gates, dim=-1)
        z = torch.cat([2 * beta[..., :1] * a, 2 * beta[..., 1:] * v], dim=-1)
        alpha = torch.softmax(self.score(z).squeeze(-1), dim=0)  # (T, B)
        step_logits = self.readout(z)
        logits = (alpha.unsqueeze(-1) * step_logits).sum(0)
        share = (alpha.unsqueeze(-1) * beta).sum(0)
        w_a, w_v = self.readout.weight[:, : self.d_audio], self.readout.weight[:, self.d_audio :]
        za, zv = (alpha.unsqueeze(-1) * z).sum(0).split([self.d_audio, z.shape[-1] - self.d_audio], dim=-1)
        return FusionOut(logits, step_logits, alpha, share, za @ w_a.T, zv @ w_v.T)


class ConcatFusion(nn.Module):
    def __init__(self, d_audio: int, d_vision: int, n_classes: int):
        super().__init__()
        self.d_audio = d_audio
        self.readout = nn.Linear(d_audio + d_vision, n_classes)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> FusionOut:
        t, b = a.shape[:2]
        step_logits = self.readout(torch.cat([a, v], dim=-1))
        alpha = torch.full((t, b), 1.0 / t, dtype=a.dtype, device=a.device)
        share = torch.full((b, 2), 0.5, dtype=a.dtype, device=a.device)
        w_a, w_v = self.readout.weight[:, : self.d_audio], self.readout.weight[:, self.d_audio :]
        return FusionOut(step_logits.mean(0), step_logits, alpha, share, a.mean(0) @ w_a.T, v.mean(0) @ w_v.T)
