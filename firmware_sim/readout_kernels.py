"""Numba kernels of the accelerator's readout: the time-warp, the step logits, the TAAF scores, the
attention by integer exp2 lookup and the attention-weighted logits (docs/accelerator.md steps 1-6 and
"taaf_modal readout"; the spiking layers' kernels: firmware_sim.layer_kernels).

Each public kernel runs samples b0..b1-1 of a (T, B, ...) batch without the GIL, so firmware_sim.run
splits large batches over Python threads, as it does the layer kernels. Every value is an integer
(int64); values whose magnitude reaches 2^24 (spec.EXACT_LIMIT, beyond which float32 would round them)
are counted in the ``exact_limit`` column. Semantics: ``firmware_sim.spec`` (exp2_weights).

Counter columns (per sample) of both readout kernels: see READOUT_COLUMNS.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from firmware_sim.spec import EXACT_LIMIT, EXP2_FRAC_BITS

# columns of the readout kernel's counters
READOUT_COLUMNS = ("warp_audio_ops", "warp_vision_ops", "logit_macs", "score_macs", "exact_limit")
FRAC_MASK = (1 << EXP2_FRAC_BITS) - 1
MAX_WHOLE_SHIFT = 62


@njit(cache=True)
def _warp_into(z, spikes, b, t, w, offset):
    """z[offset + j] += sum_d w[d] * spikes[t - d, b, j] (event-driven); returns the adds done."""
    ops = 0
    n = spikes.shape[2]
    for d in range(min(w.size, t + 1)):
        wd = w[d]
        for j in range(n):
            if spikes[t - d, b, j] != 0:
                z[offset + j] += wd
                ops += 1
    return ops


@njit(cache=True, inline="always")
def _exp2(diff, score_shift, lut):
    """spec.exp2_weights of one score difference diff = max - e >= 0: u in 0..256."""
    q = diff >> min(score_shift, 63) if score_shift >= 0 else diff << -score_shift
    return lut[q & FRAC_MASK] >> min(q >> EXP2_FRAC_BITS, MAX_WHOLE_SHIFT)


@njit(cache=True)
def _readout_sample(b, a, v, wa, wv, w_t, bias, u_t, hbias, s_vec, d0, logit_shift, hidden_shift, score_shift, taaf,
                    lut, step_logits, scores, attention, logits, counts, t0):
    """Integer TAAF / concat readout (docs/accelerator.md steps 1-6) of sample b.

    a (T, B, D_a), v (T, B, D_v) uint8 spikes; wa, wv (D,) int64 warps; w_t (D_a+D_v, K) int64 readout
    weights transposed; bias (K,); u_t (D_a+D_v, H) score-hidden weights transposed; hbias (H,);
    s_vec (H,) score-out weights; d0 score-out bias; score_shift = -score_log2 - EXP2_FRAC_BITS;
    taaf: False for concat (u_t = 1). Outputs (int64): step_logits (T, B, K), scores (T, B),
    attention (T, B), logits (B, K); counts (B, len(READOUT_COLUMNS)). t0: a stream's history, a and v's first t0
    steps are the features of steps before this chunk (the warp reads them), T = a.shape[0] - t0."""
    n_all, _, d_a = a.shape
    n_t = n_all - t0
    n_z, n_k = w_t.shape
    n_h = u_t.shape[1]
    z = np.zeros(n_z, np.int64)
    l = np.zeros(n_k, np.int64)
    hid = np.zeros(n_h, np.int64)
    ops_a = 0
    ops_v = 0
    macs_l = 0
    macs_s = 0
    big = 0
    for t in range(n_t):
        z[:] = 0
        ops_a += _warp_into(z, a, b, t0 + t, wa, 0)
        ops_v += _warp_into(z, v, b, t0 + t, wv, d_a)
        l[:] = bias
        hid[:] = hbias
        for j in range(n_z):
            zj = z[j]
            if zj == 0:
                continue
            for kk in range(n_k):
                l[kk] += w_t[j, kk] * zj
            macs_l += n_k
            if taaf:
                for i in range(n_h):
                    hid[i] += u_t[j, i] * zj
                macs_s += n_h
        for kk in range(n_k):
            if abs(l[kk]) >= EXACT_LIMIT:
                big += 1
            step_logits[t, b, kk] = l[kk] >> logit_shift
        if taaf:
            e = d0
            for i in range(n_h):
                if abs(hid[i]) >= EXACT_LIMIT:
                    big += 1
                hv = hid[i] if hid[i] > 0 else 0
                e += s_vec[i] * (hv >> hidden_shift)
            macs_s += n_h
            if abs(e) >= EXACT_LIMIT:
                big += 1
            scores[t, b] = e
    if taaf:
        top = scores[0, b]
        for t in range(1, n_t):
            top = max(top, scores[t, b])
        for t in range(n_t):
            attention[t, b] = _exp2(top - scores[t, b], score_shift, lut)
    else:
        for t in range(n_t):
            attention[t, b] = 1
    for kk in range(n_k):
        acc = 0
        for t in range(n_t):
            acc += attention[t, b] * step_logits[t, b, kk]
        if abs(acc) >= EXACT_LIMIT:
            big += 1
        logits[b, kk] = acc
    counts[b, 0] += ops_a
    counts[b, 1] += ops_v
    counts[b, 2] += macs_l
    counts[b, 3] += macs_s
    counts[b, 4] += big


@njit(cache=True, nogil=True)
def readout(a, v, wa, wv, w_t, bias, u_t, hbias, s_vec, d0, logit_shift, hidden_shift, score_shift, taaf,
            lut, step_logits, scores, attention, logits, counts, t0, b0, b1):
    """Samples b0..b1-1 of the batch (see _readout_sample for the arguments); releases the GIL."""
    for b in range(b0, b1):
        _readout_sample(b, a, v, wa, wv, w_t, bias, u_t, hbias, s_vec, d0, logit_shift, hidden_shift, score_shift,
                        taaf, lut, step_logits, scores, attention, logits, counts, t0)


@njit(cache=True)
def _own_logits(b, n_t, n_m, n_k, scores, step_logits, score_shift, lut, modal_logits):
    """Each modality's own prediction of sample b (taaf_modal with modality_logits): the exp2 lookup over
    time of that modality's scores alone, weighting its step logits. scores (T, B, M), step_logits
    (T, B, M, K) as _modal_readout_sample computed them (T = n_t steps, M = n_m branches, K = n_k
    classes); writes modal_logits[b] (M, K) int64 and returns how many of its values reach 2^24."""
    big = 0
    for m in range(n_m):
        top = scores[0, b, m]
        for t in range(1, n_t):
            top = max(top, scores[t, b, m])
        for kk in range(n_k):
            modal_logits[b, m, kk] = 0
        for t in range(n_t):
            u = _exp2(top - scores[t, b, m], score_shift, lut)
            for kk in range(n_k):
                modal_logits[b, m, kk] += u * step_logits[t, b, m, kk]
        for kk in range(n_k):
            if abs(modal_logits[b, m, kk]) >= EXACT_LIMIT:
                big += 1
    return big


@njit(cache=True)
def _modal_readout_sample(b, a, v, wa, wv, w_t, bias, u_t, hbias, s_mat, d0, logit_shift, hidden_shift, score_shift,
                          own, lut, step_logits, scores, attention, logits, modal_logits, counts, t0):
    """Integer taaf_modal readout (docs/accelerator.md, "taaf_modal readout") of sample b.

    a (T, B, D_a), v (T, B, D_v) uint8 spikes; wa, wv (D,) int64 warps; w_t (D_a+D_v, K) readout weights
    transposed; bias (M, K) the branches' logit biases; u_t (D_a+D_v, H) each feature's row of its branch's
    score-hidden weights (U_m transposed, stacked in z order); hbias (M, H); s_mat (M, H) score-out weights;
    d0 (M,) score-out biases; M = 1 or 2 branches in z order (a feature j < D_a is the first branch's when
    there are two). own: also compute modal_logits. Outputs (int64): step_logits (T, B, M, K),
    scores (T, B, M), attention (T, B, M) (the joint lookup over t and m), logits (B, K),
    modal_logits (B, M, K) (the per-modality lookup over t); counts (B, len(READOUT_COLUMNS)); t0 as
    _readout_sample's."""
    n_all, _, d_a = a.shape
    n_t = n_all - t0
    n_z, n_k = w_t.shape
    n_m, n_h = s_mat.shape
    z = np.zeros(n_z, np.int64)
    l = np.zeros((n_m, n_k), np.int64)
    hid = np.zeros((n_m, n_h), np.int64)
    ops_a = 0
    ops_v = 0
    macs_l = 0
    macs_s = 0
    big = 0
    for t in range(n_t):
        z[:] = 0
        ops_a += _warp_into(z, a, b, t0 + t, wa, 0)
        ops_v += _warp_into(z, v, b, t0 + t, wv, d_a)
        l[:, :] = bias
        hid[:, :] = hbias
        for j in range(n_z):
            zj = z[j]
            if zj == 0:
                continue
            m = 0 if j < d_a else n_m - 1
            for kk in range(n_k):
                l[m, kk] += w_t[j, kk] * zj
            for i in range(n_h):
                hid[m, i] += u_t[j, i] * zj
            macs_l += n_k
            macs_s += n_h
        for m in range(n_m):
            for kk in range(n_k):
                if abs(l[m, kk]) >= EXACT_LIMIT:
                    big += 1
                step_logits[t, b, m, kk] = l[m, kk] >> logit_shift
            e = d0[m]
            for i in range(n_h):
                if abs(hid[m, i]) >= EXACT_LIMIT:
                    big += 1
                hv = hid[m, i] if hid[m, i] > 0 else 0
                e += s_mat[m, i] * (hv >> hidden_shift)
            macs_s += n_h
            if abs(e) >= EXACT_LIMIT:
                big += 1
            scores[t, b, m] = e
    top = scores[0, b, 0]
    for t in range(n_t):
        for m in range(n_m):
            top = max(top, scores[t, b, m])
    for t in range(n_t):
        for m in range(n_m):
            attention[t, b, m] = _exp2(top - scores[t, b, m], score_shift, lut)
    for kk in range(n_k):
        acc = 0
        for t in range(n_t):
            for m in range(n_m):
                acc += attention[t, b, m] * step_logits[t, b, m, kk]
        if abs(acc) >= EXACT_LIMIT:
            big += 1
        logits[b, kk] = acc
    if own:
        big += _own_logits(b, n_t, n_m, n_k, scores, step_logits, score_shift, lut, modal_logits)
    counts[b, 0] += ops_a
    counts[b, 1] += ops_v
    counts[b, 2] += macs_l
    counts[b, 3] += macs_s
    counts[b, 4] += big


@njit(cache=True, nogil=True)
def modal_readout(a, v, wa, wv, w_t, bias, u_t, hbias, s_mat, d0, logit_shift, hidden_shift, score_shift, own,
                  lut, step_logits, scores, attention, logits, modal_logits, counts, t0, b0, b1):
    """Samples b0..b1-1 of the batch (see _modal_readout_sample for the arguments); releases the GIL."""
    for b in range(b0, b1):
        _modal_readout_sample(b, a, v, wa, wv, w_t, bias, u_t, hbias, s_mat, d0, logit_shift, hidden_shift,
                              score_shift, own, lut, step_logits, scores, attention, logits, modal_logits, counts, t0)
