"""Training objectives: the temporal adaptive balanced fusion loss and its two baselines.

All three share one interface so the training loop stays the same:
  loss, stats = objective(out, y)             # scalar loss + detached statistics
  objective.before_step(model, stats, epoch)  # gradient modulation (OGM-GE)
  objective.lr_coefficients(stats, epoch)     # per-modality learning-rate factors (TAAF balanced)

TAAF balanced (our reading of arXiv 2505.14535, docs/taaf.md):
  L = sum_t alpha_t CE(l_t, y) + lambda * sum_m CE(head_m, y)
  (loss.step_ce and loss.fused_ce weigh the first term and an added CE(y, y_true) of the fused
  prediction y = sum_t alpha_t l_t; defaults 1 and 0 are the paper's loss); loss.label_smoothing
  smooths every cross-entropy term's target (0: off): a branch trained on speakers it always gets
  right learns bounded margins instead of unbounded ones, so it cannot outvote the other sensor
  without limit on a speaker it has not met
  and modality m's learning rate is scaled by k_m = 1 - tanh(gamma * (rho_m - 1)) when its score
  ratio rho_m = score_m / score_other > 1 (else 1), inside the modulation window. score_m is the
  batch mean of softmax(c_m)[y], c_m = sum_t alpha_t W_m z_t^m: the modality's share of the
  attention-weighted fused evidence for the true class (docs/taaf.md says why not a gate's share).
  With taaf_modal the unimodal term also holds each modality's own prediction y_m (the fusion's
  per-modality softmax over time): lambda * sum_m [CE(head_m, y) + CE(y_m, y)], so that each branch
  stays a classifier on its own, which is what the fusion falls back to when the other sensor fails.
CE: cross-entropy on the fused prediction (unimodal heads train as detached probes).
OGM-GE (Peng et al., CVPR 2022): confidence ratio of each modality's logit contribution scales
  that modality's encoder gradients by 1 - tanh(alpha * (ratio - 1)) when > 1, then adds Gaussian
  noise with the gradient's own std (generalisation enhancement).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from edge_taaf.model import MODALITIES, ModelOut

LOSSES = ("taaf_balanced", "ce", "ogm_ge")


def modulation_coefficient(ratio: float, gamma: float) -> float:
    """k = 1 - tanh(gamma * (ratio - 1)) for a dominant modality (ratio > 1), else 1."""
    return 1.0 - math.tanh(gamma * (ratio - 1.0)) if ratio > 1.0 else 1.0


def in_window(epoch: int, window) -> bool:
    start, end = window
    return start <= epoch < end


def check_window(window, option: str = "loss.window") -> tuple[int, int]:
    """The modulation window: epochs [start, end) as two whole numbers 0 <= start <= end; start == end (e.g.
    [0, 0]) leaves every learning rate / gradient unmodulated. ValueError naming ``option`` otherwise."""
    pair = None if isinstance(window, (str, bytes)) or not hasattr(window, "__len__") else list(window)
    if pair is None or len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in pair) \
            or not 0 <= pair[0] <= pair[1]:
        raise ValueError(f"{option}={window!r}, expected epochs [start, end) as two whole numbers "
                         "0 <= start <= end ([0, 0]: no modulation)")
    return pair[0], pair[1]


def check_fused_weights(step_ce, fused_ce) -> tuple[float, float]:
    """loss.step_ce and loss.fused_ce: finite weights >= 0, not both 0 (something must train the fusion)."""
    weights = {"loss.step_ce": step_ce, "loss.fused_ce": fused_ce}
    for name, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {w!r}")
    if not step_ce and not fused_ce:
        raise ValueError("loss.step_ce and loss.fused_ce are both 0: nothing would train the fused prediction")
    return float(step_ce), float(fused_ce)


def check_label_smoothing(value) -> float:
    """loss.label_smoothing: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"loss.label_smoothing must be a number in [0, 1), got {value!r}")
    return float(value)


def _true_class_confidence(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Batch mean of softmax(logits)[y]."""
    return float(F.softmax(logits.detach(), dim=1).gather(1, y[:, None]).mean())


def _heads_ce(out: ModelOut, y: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Sum of the unimodal heads' cross-entropies (the heads the model has)."""
    heads = [h for h in (out.head_audio, out.head_vision) if h is not None]
    return sum(F.cross_entropy(h, y, label_smoothing=smoothing) for h in heads)


def _own_ce(out: ModelOut, y: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor | float:
    """Sum of the cross-entropies of the fusion's own per-modality predictions (taaf_modal; 0 otherwise)."""
    own = [p for p in (out.fusion.logits_audio, out.fusion.logits_vision) if p is not None]
    return sum(F.cross_entropy(p, y, label_smoothing=smoothing) for p in own)


def _unimodal(out: ModelOut) -> bool:
    """True for a one-sensor model: nothing to balance, every modulation coefficient is 1."""
    return out.head_audio is None or out.head_vision is None


class TAAFBalancedLoss:
    def __init__(self, lambda_unimodal: float, gamma: float, window, step_ce: float = 1.0, fused_ce: float = 0.0,
                 label_smoothing: float = 0.0):
        self.lam, self.gamma, self.window = lambda_unimodal, gamma, check_window(window)
        self.step_ce, self.fused_ce = check_fused_weights(step_ce, fused_ce)
        self.smoothing = check_label_smoothing(label_smoothing)
        self.heads_train_encoders = True

    def __call__(self, out: ModelOut, y: torch.Tensor):
        f = out.fusion
        t, b, k = f.step_logits.shape
        ls = self.smoothing
        loss = self.lam * (_heads_ce(out, y, ls) + _own_ce(out, y, ls))
        if self.step_ce:   # the per-step term, computed only when it is weighed in
            step_ce = F.cross_entropy(f.step_logits.reshape(t * b, k), y.repeat(t), reduction="none",
                                      label_smoothing=ls).view(t, b)
            loss = loss + self.step_ce * (f.alpha * step_ce).sum(0).mean()
        if self.fused_ce:
            loss = loss + self.fused_ce * F.cross_entropy(f.logits, y, label_smoothing=ls)
        share = f.share.detach().mean(0)
        stats = {"share_audio": float(share[0]), "share_vision": float(share[1])}
        if not _unimodal(out):
            stats.update(score_audio=_true_class_confidence(f.contrib_audio, y),
                         score_vision=_true_class_confidence(f.contrib_vision, y))
        return loss, stats

    def lr_coefficients(self, stats, epoch: int) -> dict[str, float]:
        if not in_window(epoch, self.window) or "score_audio" not in stats:  # outside the window, or unimodal
            return {m: 1.0 for m in MODALITIES}
        sa, sv = max(stats["score_audio"], 1e-8), max(stats["score_vision"], 1e-8)
        return {"audio": modulation_coefficient(sa / sv, self.gamma), "vision": modulation_coefficient(sv / sa, self.gamma)}

    def before_step(self, model, stats, epoch: int) -> None:
        pass


class CELoss:
    heads_train_encoders = False

    def __call__(self, out: ModelOut, y: torch.Tensor):
        share = out.fusion.share.detach().mean(0)
        loss = F.cross_entropy(out.logits, y) + _heads_ce(out, y)
        return loss, {"share_audio": float(share[0]), "share_vision": float(share[1])}

    def lr_coefficients(self, stats, epoch: int) -> dict[str, float]:
        return {m: 1.0 for m in MODALITIES}

    def before_step(self, model, stats, epoch: int) -> None:
        pass


class OGMGELoss(CELoss):
    def __init__(self, alpha: float, window, seed: int = 0):
        self.alpha, self.window = alpha, check_window(window)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, out: ModelOut, y: torch.Tensor):
        loss, stats = super().__call__(out, y)
        if _unimodal(out):
            return loss, stats
        f = out.fusion
        conf_a = F.softmax(f.contrib_audio.detach(), dim=1).gather(1, y[:, None]).sum()
        conf_v = F.softmax(f.contrib_vision.detach(), dim=1).gather(1, y[:, None]).sum()
        stats["ratio_audio"] = float(conf_a / conf_v.clamp_min(1e-8))
        return loss, stats

    def gradient_coefficients(self, stats, epoch: int) -> dict[str, float]:
        if not in_window(epoch, self.window) or "ratio_audio" not in stats:  # outside the window, or unimodal
            return {m: 1.0 for m in MODALITIES}
        r = max(stats["ratio_audio"], 1e-8)
        return {"audio": modulation_coefficient(r, self.alpha), "vision": modulation_coefficient(1.0 / r, self.alpha)}

    def before_step(self, model, stats, epoch: int) -> None:
        coeffs = self.gradient_coefficients(stats, epoch)
        encoders = {"audio": model.audio, "vision": model.vision}
        for m, k in coeffs.items():
            if k == 1.0:
                continue
            for p in ([] if encoders[m] is None else encoders[m].parameters()):
                if p.grad is None:
                    continue
                std = p.grad.std().item() if p.grad.numel() > 1 else 0.0
                noise = torch.randn(p.grad.shape, generator=self.generator).to(p.grad) * (std + 1e-8)
                p.grad.mul_(k).add_(noise)
        stats.update({f"grad_coef_{m}": k for m, k in coeffs.items()})


def build_loss(cfg, seed: int = 0):
    """cfg: the loss config group (configs/loss/*.yaml)."""
    name = cfg["name"]
    if name == "taaf_balanced":
        return TAAFBalancedLoss(cfg["lambda_unimodal"], cfg["gamma"], cfg["window"],
                                cfg["step_ce"], cfg["fused_ce"], cfg["label_smoothing"])
    if name == "ce":
        return CELoss()
    if name == "ogm_ge":
        return OGMGELoss(cfg["alpha"], cfg["window"], seed)
    raise ValueError(f"loss.name must be one of {LOSSES}, got {name!r}")
