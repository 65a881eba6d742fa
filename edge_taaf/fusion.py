"""Fusion of the two modalities' per-step features: TAAF, its reliability-weighted form taaf_modal, and
the concat baseline.

Each takes warped features a (T, B, D_a) and v (T, B, D_v) and returns a FusionOut.

TAAF (our reading of arXiv 2505.14535, docs/taaf.md), on fused features z_t = [a_t ; v_t]:
  step level:     per-step logits l_t = W z_t + b, score e_t = s^T relu(U z_t + c) + d,
                  attention alpha = softmax_t in base 2 (2^e_t / sum_t 2^e_t: the accelerator's
                  exp2 lookup; a base change is only a temperature), prediction y = sum_t alpha_t l_t;
  modality level: c_m = sum_t alpha_t W_m z_t^m, the attention-weighted evidence of modality m
                  (W = [W_a W_v]); the balanced loss and OGM-GE read it, and share_m =
                  |c_m|_1 / (|c_a|_1 + |c_v|_1) is logged.
Concat: l_t = W [a_t ; v_t] + b, y = mean_t l_t (uniform attention).
taaf_modal (docs/taaf.md, "Reliability weighting"), per present modality m (W = [W_a | W_v]):
  step logits l^m_t = W_m z^m_t + b_m, score e^m_t = s_m^T relu(U_m z^m_t + c_m) + d_m (one score MLP per
  modality), attention alpha^m_t = base-2 softmax over time AND modality of e^m_t, y = sum_{t,m} alpha^m_t l^m_t;
  each modality's own prediction y_m = sum_t beta^m_t l^m_t, beta^m = base-2 softmax over time of e^m alone.
  A silent or noisy sensor whose scores drop loses attention mass to the other one, step by step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

LN2 = math.log(2.0)


@dataclass
class FusionOut:
    """What the losses and the trainer read. For taaf_modal: alpha_t = sum_m alpha^m_t (the step's attention
    over both modalities), step_logits l_t = sum_m (alpha^m_t / alpha_t) l^m_t (the step's attention-weighted
    logits), so y = sum_t alpha_t l_t as for TAAF; share = the attention mass sum_t alpha^m_t per modality."""

    logits: torch.Tensor          # (B, K) fused prediction
    step_logits: torch.Tensor     # (T, B, K)
    alpha: torch.Tensor           # (T, B) attention over time, sums to 1 over T
    share: torch.Tensor           # (B, 2) evidence share of (audio, vision), sums to 1
    contrib_audio: torch.Tensor   # (B, K) attention-weighted logit part from the audio features (no bias)
    contrib_vision: torch.Tensor  # (B, K) same for vision
    logits_audio: torch.Tensor | None = None   # (B, K) taaf_modal: audio's own prediction y_audio; else None
    logits_vision: torch.Tensor | None = None  # (B, K) taaf_modal: y_vision


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


def modal_fusion_out(step_logits: torch.Tensor, alpha: torch.Tensor, mix: torch.Tensor, beta: torch.Tensor,
                     weight: torch.Tensor, modalities: tuple[str, ...], a: torch.Tensor, v: torch.Tensor) -> FusionOut:
    """taaf_modal's FusionOut, one formula for the float and the integer (QAT) modes.

    step_logits (T, B, M, K) l^m_t of the M present modalities (z order); alpha (T, B) the attention per step
    alpha_t = sum_m alpha^m_t; mix (T, B, M) alpha^m_t / alpha_t; beta (T, B, M) each modality's own softmax
    over time; weight (K, D_a + D_v); a (T, B, D_a), v (T, B, D_v)."""
    joint = alpha.unsqueeze(-1) * mix                                     # (T, B, M) alpha^m_t
    step = (mix.unsqueeze(-1) * step_logits).sum(2)                       # (T, B, K)
    own = (beta.unsqueeze(-1) * step_logits).sum(0)                       # (B, M, K) y_m
    index = {m: i for i, m in enumerate(modalities)}
    mass = joint.sum(0)                                                   # (B, M)

    def weighted(m, x):   # sum_t alpha^m_t x_t (B, D_m); zero-width for an absent modality
        return (joint[..., index[m], None] * x).sum(0) if m in index else x.sum(0)
    ca, cv, _ = evidence_shares(weight, a.shape[-1], weighted("audio", a), weighted("vision", v))
    share = torch.stack([mass[:, index[m]] if m in index else torch.zeros_like(mass[:, 0]) for m in ("audio", "vision")], 1)
    return FusionOut((alpha.unsqueeze(-1) * step).sum(0), step, alpha, share, ca, cv,
                     *(own[:, index[m]] if m in index else None for m in ("audio", "vision")))


class TAAFModalFusion(nn.Module):
    """taaf_modal (module doc): one readout weight W = [W_a | W_v], and per present modality a logit bias and a
    score MLP (names as quant.int_readout.QuantModalReadout, so float weights load into the integer model)."""

    def __init__(self, modalities: tuple[str, ...], d_audio: int, d_vision: int, n_classes: int, score_hidden: int):
        super().__init__()
        self.modalities, self.d_audio = tuple(modalities), d_audio
        dims = {"audio": d_audio, "vision": d_vision}
        self.readout = nn.Linear(d_audio + d_vision, n_classes, bias=False)
        self.bias = nn.ParameterDict({m: nn.Parameter(torch.zeros(n_classes)) for m in self.modalities})
        self.score_hidden = nn.ModuleDict({m: nn.Linear(dims[m], score_hidden) for m in self.modalities})
        self.score_out = nn.ModuleDict({m: nn.Linear(score_hidden, 1) for m in self.modalities})

    def columns(self, m: str) -> slice:
        return slice(0, self.d_audio) if m == "audio" else slice(self.d_audio, None)

    def branches(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(step logits (T, B, M, K), scores (T, B, M) in log2 units) of the present modalities."""
        feats = {"audio": a, "vision": v}
        logits = [feats[m] @ self.readout.weight[:, self.columns(m)].T + self.bias[m] for m in self.modalities]
        scores = [self.score_out[m](torch.relu(self.score_hidden[m](feats[m]))).squeeze(-1) for m in self.modalities]
        return torch.stack(logits, 2), torch.stack(scores, 2)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> FusionOut:
        step_logits, e = self.branches(a, v)
        x = e * LN2                                   # base 2: 2^e = exp(e ln 2)
        alpha = torch.softmax(torch.logsumexp(x, dim=2), dim=0)   # (T, B): the joint softmax summed over m
        return modal_fusion_out(step_logits, alpha, torch.softmax(x, dim=2), torch.softmax(x, dim=0),
                                self.readout.weight, self.modalities, a, v)


def balance_loss(share: torch.Tensor, healthy: torch.Tensor) -> torch.Tensor:
    """Mean over the healthy samples of (audio's attention mass - 1/2)^2; 0 when none is healthy.

    share (B, 2): taaf_modal's attention mass per modality (FusionOut.share, sums to 1); healthy (B,) bool:
    the samples whose sensors were neither silenced nor flooded with noise in this batch (trainer.corrupt).
    With trainer.modal_balance > 0 two healthy sensors keep equal attention mass, so the fused prediction is
    the sum of the modalities' own predictions (each modality's evidence counts by its own logit margins, a
    product of experts), and the attention moves between modalities only for a sensor that is visibly
    failing (silent, flooded), which training shows it. Without it, the fusion learns from training speakers,
    whose audio is always right, to let audio override vision, and on unseen speakers the fused answer
    falls below vision alone (docs/robustness.md)."""
    healthy = healthy.to(share.device)
    if not healthy.any():
        return share.sum() * 0.0
    return ((share[healthy, 0] - 0.5) ** 2).mean()
