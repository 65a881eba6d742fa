"""Integer TAAF readout (docs/accelerator.md, "TAAF readout"): time-warp, per-step logits and
scores with shift requantisation, the exp2 lookup attention, y = sum_t u_t l'_t; and its
per-modality form taaf_modal ("taaf_modal readout"): y = sum_{t,m} u^m_t l^m_t with one lookup over
time and modality, and each modality's own y_m.

Everything is computed on float32 tensors holding integers (exact below 2^24) with
straight-through gradients, so QAT trains the very integers the accelerator computes.
Shapes: warped features (T, B, D_a) and (T, B, D_v); step logits (T, B, K); scores (T, B);
taaf_modal with M present modalities: step logits (T, B, M, K), scores (T, B, M).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from firmware_sim import spec
from firmware_sim.program import ContractError, ModalBranch, Readout, readout_max_T
from quant.quantizers import floor_shift, int_bias, int_weight, quant_linear, st

LN2 = math.log(2.0)
FRAC_MASK = 2 ** spec.EXP2_FRAC_BITS - 1
# From this index on EXP2_LUT[q & 15] >> (q >> 4) is 0 (every LUT entry is below 2^bit_length).
Q_CAP = 2 ** spec.EXP2_FRAC_BITS * max(spec.EXP2_LUT).bit_length()
EXP2_TABLE = tuple(spec.EXP2_LUT[q & FRAC_MASK] >> (q >> spec.EXP2_FRAC_BITS) for q in range(Q_CAP)) + (0,)


class ExactnessError(ValueError):
    """A worst-case intermediate would reach 2^24, where float32 stops being exact."""


def exp2_attention(e: torch.Tensor, score_log2: int, dims: tuple[int, ...] = (0,)) -> torch.Tensor:
    """u_t of ``spec.exp2_weights`` through one table: u = EXP2_TABLE[min(q, Q_CAP)].

    e: (T, ...) integer scores (float32), real value e * 2^score_log2 (log2 units); the maximum is taken
    over ``dims`` (time; taaf_modal's joint attention: time and modality). Returns u (T, ...) in 0..256.
    min(q, Q_CAP) changes nothing (the table is 0 from Q_CAP on) and keeps q small.
    """
    d = e.amax(dim=dims, keepdim=True) - e
    shift = -score_log2 - spec.EXP2_FRAC_BITS
    q = torch.floor(d / 2.0 ** shift) if shift >= 0 else d.clamp(max=Q_CAP) * 2.0 ** -shift
    table = torch.tensor(EXP2_TABLE, dtype=e.dtype, device=e.device)
    return table[q.clamp(max=Q_CAP).long()]


def max_T(fusion: str, n_modalities: int = 2) -> int:
    """Longest sequence whose readout sum |y| stays below 2^24 (firmware_sim.program.readout_max_T)."""
    return readout_max_T(fusion, n_modalities)


def _row_bound(w: torch.Tensor, m: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """Per output row: sum_j |w_ij| m_j + |b_i| (worst-case |w x + b| for |x_j| <= m_j)."""
    out = w.abs() @ m
    return out + b.abs() if b is not None else out


def _check_exact(bound: float, where: str, limit: int = spec.EXACT_LIMIT) -> None:
    if bound >= limit:
        raise ExactnessError(f"{where}: worst-case magnitude {bound:.0f} reaches {limit}; float32 would not be exact "
                             "(use fewer weight bits or a smaller layer)")


def logit_shift(w: torch.Tensor, b: torch.Tensor, m: torch.Tensor) -> int:
    """Smallest r >= 0 with ceil(L / 2^r) < 2^READOUT_MAX_BITS, L the worst-case |l_t| (covers floor of negatives).

    taaf_modal: w, b and m are lists over the branches (W_m (K, D_m), b_m (K,), z_max of its features);
    L is the largest of their bounds."""
    pairs = zip(w, b, m) if isinstance(w, (list, tuple)) else [(w, b, m)]
    worst = max(float(_row_bound(wi, mi, bi).max()) for wi, bi, mi in pairs)
    _check_exact(worst, "readout (W z + b)")
    r = 0
    while math.ceil(worst / 2 ** r) >= 2 ** spec.READOUT_MAX_BITS:
        r += 1
    return r


def hidden_shift(u: torch.Tensor, c: torch.Tensor, s: torch.Tensor, d: torch.Tensor, d_log2: int,
                 m: torch.Tensor) -> int:
    """Smallest r >= 0 with worst-case |e_t| = sum_j |s_j| (H_j >> r) + |d_int| below 2^23 (spec.SCORE_LIMIT).

    H_j bounds |U_j z + c_j|; d is the float score bias, d_int = round(d / 2^(d_log2 + r)).
    """
    h = _row_bound(u, m, c)
    _check_exact(float(h.max()), "score.hidden (U z + c)")
    for r in range(64):
        d_int = torch.round(d / 2.0 ** (d_log2 + r)).abs().sum()
        if float(s.abs().reshape(-1) @ torch.floor(h / 2 ** r) + d_int) < spec.SCORE_LIMIT:
            return r
    raise ExactnessError(f"score.out: worst-case |e_t| stays above {spec.SCORE_LIMIT} for every hidden_shift")


class QuantDelayWarp(nn.Module):
    """Causal delay kernel w (D,) (edge_taaf.timewarp) held as a Brevitas QuantLinear(D, 1) weight.

    Pass another warp's ``weight_quant`` to share one scale (the contract's warp_log2).
    """

    def __init__(self, max_delay: int, bits: int, weight_quant=None):
        super().__init__()
        if max_delay < 0:
            raise ValueError(f"model.warp_max_delay must be >= 0, got {max_delay}")
        self.kernel = quant_linear(max_delay + 1, 1, bits, weight_quant=weight_quant)
        with torch.no_grad():
            self.kernel.weight.zero_()
            self.kernel.weight[0, 0] = 1.0

    def own_parameters(self) -> list[nn.Parameter]:
        """This warp's kernel only (a warp that shares another's quantizer also registers the owner's scale)."""
        return [self.kernel.weight]

    def apply_int(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """sum_d w[d] x_{t-d} (zero before t = 0): (T, B, F) spikes, integer w (D,) -> (T, B, F)."""
        out = x * w[0]
        for d in range(1, min(w.numel(), x.shape[0])):
            out = out + torch.nn.functional.pad(x[:-d], (0, 0, 0, 0, d, 0)) * w[d]
        return out


@dataclass
class ReadoutOut:
    """The readout's integers (and its straight-through attention). taaf_modal, M present modalities:
    step_logits (T, B, M, K) l^m_t; attention and scores (T, B, M) u^m_t (joint lookup) and e^m_t; alpha (T, B)
    sum_m u^m_t / sum u (the per-step total); mix (T, B, M) u^m_t / sum_m u^m_t; beta (T, B, M) each
    modality's own u / sum_t u; modal_logits (B, M, K) y_m."""

    step_logits: torch.Tensor     # (T, B, K) l'_t, integers
    logit_log2: int               # real l'_t = l'_t * 2^logit_log2
    attention: torch.Tensor       # (T, B) u_t in 0..256 (taaf) or 1 (concat)
    alpha: torch.Tensor           # (T, B) u / sum_t u, straight-through gradient of the base-2 softmax
    logits: torch.Tensor          # (B, K) y = sum_t u_t l'_t, integers
    scores: torch.Tensor | None   # (T, B) e_t, integers (taaf)
    score_log2: int | None
    mix: torch.Tensor | None = None           # taaf_modal (see the class doc)
    beta: torch.Tensor | None = None
    modal_logits: torch.Tensor | None = None


class QuantReadout(nn.Module):
    """TAAF (or concat) readout on integer fused features; layer names match edge_taaf.fusion."""

    def __init__(self, d_audio: int, d_vision: int, n_classes: int, score_hidden: int | None, bits: int):
        super().__init__()
        self.d_audio, self.bits = d_audio, bits
        self.readout = quant_linear(d_audio + d_vision, n_classes, bits, bias=True)
        self.taaf = score_hidden is not None
        if self.taaf:
            self.score_hidden = quant_linear(d_audio + d_vision, score_hidden, bits, bias=True)
            self.score_out = quant_linear(score_hidden, 1, bits, bias=True)

    def plan(self, z_log2: int, z_max: torch.Tensor) -> dict:
        """Integer weights (straight-through), their log2 scales and the shifts, for features with
        scale 2^z_log2 and worst-case |z_j| <= z_max[j]."""
        p = {}
        p["W"], p["readout_log2"] = int_weight(self.readout, self.bits, "readout.weight")
        p["b"] = int_bias(self.readout.bias, p["readout_log2"] + z_log2, "readout.bias")
        p["logit_shift"] = logit_shift(p["W"].detach(), p["b"].detach(), z_max)
        if self.taaf:
            p["U"], p["score_hidden_log2"] = int_weight(self.score_hidden, self.bits, "score.hidden.weight")
            h_log2 = p["score_hidden_log2"] + z_log2
            p["c"] = int_bias(self.score_hidden.bias, h_log2, "score.hidden.bias")
            p["s"], p["score_out_log2"] = int_weight(self.score_out, self.bits, "score.out.weight")
            d_log2 = p["score_out_log2"] + h_log2
            p["hidden_shift"] = hidden_shift(p["U"].detach(), p["c"].detach(), p["s"].detach(),
                                             self.score_out.bias.detach(), d_log2, z_max)
            p["score_log2"] = d_log2 + p["hidden_shift"]
            p["d"] = int_bias(self.score_out.bias, p["score_log2"], "score.out.bias")
        return p

    def to_readout(self, fusion: str, inputs: dict[str, str], warps: dict[str, np.ndarray], z_log2: int, p: dict) -> Readout:
        """The Program's Readout: ``inputs`` / ``warps`` by modality (a missing modality is None), the
        integer plan ``p`` of ``plan`` for features at scale 2^z_log2."""
        def ints(x):
            return x.detach().cpu().numpy().astype(np.int64)
        r = Readout(fusion, inputs.get("audio"), inputs.get("vision"), warps.get("audio"), warps.get("vision"),
                    ints(p["W"]), ints(p["b"]), int(p["logit_shift"]),
                    log2={"warp_log2": int(z_log2), "readout_log2": int(p["readout_log2"])})
        if self.taaf:
            r.hidden_weight, r.hidden_bias, r.hidden_shift = ints(p["U"]), ints(p["c"]), int(p["hidden_shift"])
            r.out_weight, r.out_bias, r.score_log2 = ints(p["s"]), ints(p["d"]).reshape(1), int(p["score_log2"])
            r.log2.update(score_hidden_log2=int(p["score_hidden_log2"]), score_out_log2=int(p["score_out_log2"]))
        return r

    def forward(self, z: torch.Tensor, z_log2: int, p: dict) -> ReadoutOut:
        """z (T, B, D_a + D_v) integer fused features -> ReadoutOut."""
        l_t = z @ p["W"].T + p["b"]
        lp = floor_shift(l_t, p["logit_shift"])
        logit_log2 = p["readout_log2"] + z_log2 + p["logit_shift"]
        t, b = z.shape[:2]
        if not self.taaf:
            u = torch.ones((t, b), dtype=z.dtype, device=z.device)
            return ReadoutOut(lp, logit_log2, u, u / t, lp.detach().sum(0), None, None)
        h = floor_shift(torch.relu(z @ p["U"].T + p["c"]), p["hidden_shift"])
        e = (h @ p["s"].T).squeeze(-1) + p["d"]
        u = exp2_attention(e.detach(), p["score_log2"])
        alpha = st(u / u.sum(0, keepdim=True), torch.softmax(e * (2.0 ** p["score_log2"] * LN2), dim=0))
        y = (u.unsqueeze(-1) * lp.detach()).sum(0)
        return ReadoutOut(lp, logit_log2, u, alpha, y, e, p["score_log2"])



def _base2_softmax(e: torch.Tensor, score_log2: int, dims: tuple[int, ...]) -> torch.Tensor:
    """The float model's base-2 softmax of integer scores e (real value e 2^score_log2) over ``dims`` jointly."""
    x = e * (2.0 ** score_log2 * LN2)
    return torch.exp(x - torch.logsumexp(x, dim=dims, keepdim=True))


class QuantModalReadout(nn.Module):
    """taaf_modal on integer features (docs/accelerator.md, "taaf_modal readout"); layer names as
    edge_taaf.fusion.TAAFModalFusion. The branches' score MLPs share one weight scale per layer (one
    hidden_shift and one score_log2, so that the scores of both modalities are comparable)."""

    def __init__(self, modalities: tuple[str, ...], d_audio: int, d_vision: int, n_classes: int, score_hidden: int,
                 bits: int, modality_logits: bool = True):
        """modality_logits: the Program (and so the ONNX file) outputs each modality's own prediction y_m."""
        super().__init__()
        self.modalities, self.d_audio, self.bits = tuple(modalities), d_audio, bits
        self.modality_logits = bool(modality_logits)
        dims = {"audio": d_audio, "vision": d_vision}
        self.readout = quant_linear(d_audio + d_vision, n_classes, bits)
        self.bias = nn.ParameterDict({m: nn.Parameter(torch.zeros(n_classes)) for m in self.modalities})
        hidden, out, owners = {}, {}, (None, None)
        for m in self.modalities:   # the first branch owns each shared quantizer
            hidden[m] = quant_linear(dims[m], score_hidden, bits, bias=True, weight_quant=owners[0])
            out[m] = quant_linear(score_hidden, 1, bits, bias=True, weight_quant=owners[1])
            owners = (hidden[m].weight_quant, out[m].weight_quant)
        self.score_hidden, self.score_out = nn.ModuleDict(hidden), nn.ModuleDict(out)

    def columns(self, m: str) -> slice:
        return slice(0, self.d_audio) if m == "audio" else slice(self.d_audio, None)

    def plan(self, z_log2: int, z_max: torch.Tensor) -> dict:
        """Integer weights (straight-through), scales and shifts for features at scale 2^z_log2 with |z_j| <= z_max[j]:
        W, readout_log2, b (M, K), logit_shift; per branch U, c, s, d (lists in z order); the shared
        score_hidden_log2, score_out_log2, hidden_shift and score_log2."""
        p = {}
        p["W"], p["readout_log2"] = int_weight(self.readout, self.bits, "readout.weight")
        mods, zm = self.modalities, {m: z_max[self.columns(m)] for m in self.modalities}
        p["b"] = torch.stack([int_bias(self.bias[m], p["readout_log2"] + z_log2, f"readout.{m}.bias") for m in mods])
        p["logit_shift"] = logit_shift([p["W"].detach()[:, self.columns(m)] for m in mods], list(p["b"].detach()),
                                       [zm[m] for m in mods])
        for key, layers, name in (("U", self.score_hidden, "hidden"), ("s", self.score_out, "out")):
            ints = [int_weight(layers[m], self.bits, f"score.{m}.{name}.weight") for m in mods]
            if len({log2 for _, log2 in ints}) > 1:
                raise ContractError(f"score.<m>.{name}.weight must share one scale, got 2^{[log2 for _, log2 in ints]}")
            p[key], p[f"score_{name}_log2"] = [w for w, _ in ints], ints[0][1]
        h_log2 = p["score_hidden_log2"] + z_log2
        p["c"] = [int_bias(self.score_hidden[m].bias, h_log2, f"score.{m}.hidden.bias") for m in mods]
        d_log2 = p["score_out_log2"] + h_log2
        p["hidden_shift"] = max(hidden_shift(u.detach(), c.detach(), s.detach(), self.score_out[m].bias.detach(), d_log2,
                                             zm[m]) for m, u, c, s in zip(mods, p["U"], p["c"], p["s"]))
        p["score_log2"] = d_log2 + p["hidden_shift"]
        p["d"] = [int_bias(self.score_out[m].bias, p["score_log2"], f"score.{m}.out.bias") for m in mods]
        return p

    def to_readout(self, fusion: str, inputs: dict[str, str], warps: dict[str, np.ndarray], z_log2: int, p: dict) -> Readout:
        """The Program's Readout (see QuantReadout.to_readout)."""
        def ints(x):
            return x.detach().cpu().numpy().astype(np.int64)
        branches = {m: ModalBranch(ints(p["b"][i]), ints(p["U"][i]), ints(p["c"][i]), ints(p["s"][i]),
                                   ints(p["d"][i]).reshape(1)) for i, m in enumerate(self.modalities)}
        return Readout(fusion, inputs.get("audio"), inputs.get("vision"), warps.get("audio"), warps.get("vision"),
                       ints(p["W"]), None, int(p["logit_shift"]), hidden_shift=int(p["hidden_shift"]),
                       score_log2=int(p["score_log2"]), branches=branches, modality_logits=self.modality_logits,
                       log2={"warp_log2": int(z_log2), "readout_log2": int(p["readout_log2"]),
                             "score_hidden_log2": int(p["score_hidden_log2"]), "score_out_log2": int(p["score_out_log2"])})

    def forward(self, z: torch.Tensor, z_log2: int, p: dict) -> ReadoutOut:
        """z (T, B, D_a + D_v) integer fused features -> ReadoutOut (taaf_modal fields, see its doc)."""
        lp, e = [], []
        for i, m in enumerate(self.modalities):
            zm = z[..., self.columns(m)]
            lp.append(floor_shift(zm @ p["W"][:, self.columns(m)].T + p["b"][i], p["logit_shift"]))
            h = floor_shift(torch.relu(zm @ p["U"][i].T + p["c"][i]), p["hidden_shift"])
            e.append((h @ p["s"][i].T).squeeze(-1) + p["d"][i])
        lp, e = torch.stack(lp, 2), torch.stack(e, 2)                 # (T, B, M, K), (T, B, M)
        logit_log2 = p["readout_log2"] + z_log2 + p["logit_shift"]
        sl = p["score_log2"]
        u = exp2_attention(e.detach(), sl, (0, 2))                    # joint over time and modality
        own = exp2_attention(e.detach(), sl, (0,))                    # each modality's own, over time
        y = (u.unsqueeze(-1) * lp.detach()).sum((0, 2))
        y_m = (own.unsqueeze(-1) * lp.detach()).sum(0)                # (B, M, K)
        per_step = u.sum(2)
        alpha = st(per_step / per_step.sum(0, keepdim=True), _base2_softmax(e, sl, (0, 2)).sum(2))
        mix = st(u / per_step.clamp_min(1).unsqueeze(-1), _base2_softmax(e, sl, (2,)))
        beta = st(own / own.sum(0, keepdim=True), _base2_softmax(e, sl, (0,)))
        return ReadoutOut(lp, logit_log2, u, alpha, y, e, sl, mix, beta, y_m)
