"""A plain feed-forward integer LIF network from numpy weights (no ONNX), for comparisons with
other simulators (bench/sim.py runs it against SynSense's xylosim). A benchmark kernel, not part of the
product simulator: it lives in bench/ and uses firmware_sim's dense kernel and spec.

run_ff:       the accelerator's neuron (docs/accelerator.md), through the same dense kernel as a Program.
run_ff_xylo:  Xylo's neuron model, as xylosim (v2 XyloLayer) defines it, with the same event-driven
              accumulate, so that both simulators can be checked spike for spike on one network.

Where the two neuron models differ (why run_ff and xylosim do not give the same spikes):
  * Xylo keeps a synaptic current state i_syn that decays by its own shift before it is added to
    the membrane; ours adds the step's synaptic sum straight to the membrane.
  * Xylo's decay is at least 1 in magnitude for any non-zero state (v - max(v >> k, 1)); ours is a
    plain floor shift (v - (v >> k)), so positive states below 2^k do not decay.
  * Xylo saturates i_syn at 16 bits after every synaptic add (order dependent); we accumulate in
    32 bits and saturate the membrane once per step.
  * Xylo neurons emit up to 31 spikes per step (readout neurons 1) and input counts are clipped at
    15; ours emit one.
  * Xylo delivers hidden spikes to the readout neurons one step later.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from firmware_sim import layer_kernels as kernels, spec

XYLO_MAX_INPUT_SPIKES = 15     # xylosim v2: input counts per step are clipped to this
XYLO_MAX_HIDDEN_SPIKES = 31    # spikes a hidden neuron may emit per step
XYLO_MAX_OUTPUT_SPIKES = 1     # spikes a readout neuron may emit per step


def _check_ff(weights, thetas, spikes):
    if len(weights) != len(thetas) or not weights:
        raise ValueError(f"need one theta per weight matrix, got {len(weights)} weights and {len(thetas)} thetas")
    spikes = np.asarray(spikes)
    if spikes.ndim != 3 or not np.issubdtype(spikes.dtype, np.integer) or (spikes.size and spikes.min() < 0):
        raise ValueError(f"spikes must be non-negative integer counts (T, B, N_in), got {spikes.dtype} {spikes.shape}")
    n = spikes.shape[2]
    for i, w in enumerate(weights):
        if w.ndim != 2 or w.shape[1] != n:
            raise ValueError(f"weights[{i}] has shape {w.shape}, expected (out, {n})")
        if np.abs(w.astype(np.int64)).max(initial=0) > 127:
            raise ValueError(f"weights[{i}] does not fit int8")
        n = w.shape[0]
    return np.ascontiguousarray(np.minimum(spikes, 255), dtype=np.uint8)


def run_ff(weights: list[np.ndarray], thetas: list[int], leak_shift: int, spikes: np.ndarray):
    """Accelerator LIF network. weights[i] (out, in) int8, spikes (T, B, N_in) counts.
    Returns (spikes of every layer (T, B, out) uint8, synaptic accumulates per layer)."""
    x = _check_ff(weights, thetas, spikes)
    lo, hi = spec.state_range()
    outs, syn = [], []
    for w, theta in zip(weights, thetas):
        out = np.zeros((x.shape[0], x.shape[1], w.shape[0]), np.uint8)
        counts = np.zeros((x.shape[1], len(kernels.LAYER_COLUMNS)), np.int64)
        fresh = np.zeros((x.shape[1], w.shape[0]), np.int64), np.zeros((x.shape[1], w.shape[0]), np.int32)
        kernels.dense_layer(x, np.ascontiguousarray(w.T.astype(np.int8)), int(theta), int(leak_shift), lo, hi, out, counts,
                            *fresh, 0, x.shape[1])                  # a fresh window: membranes and catch-up at zero
        outs.append(out)
        syn.append(int(counts[:, kernels.SYN].sum()))
        x = out
    return outs, syn


@njit(cache=True)
def _sat16(x):
    return min(max(x, -32768), 32767)


@njit(cache=True)
def _xylo_decay(v, dash):
    d = v >> dash
    if d == 0:
        if v > 0:
            return 1
        if v < 0:
            return -1
    return d


@njit(cache=True)
def _xylo_neuron(v, isyn, dash_mem, dash_syn, theta, max_spikes):
    """One Xylo neuron step: returns (v, isyn, spikes)."""
    isyn = isyn - _xylo_decay(isyn, dash_syn)
    dv = _sat16(-_xylo_decay(v, dash_mem) + isyn)
    v = _sat16(v + dv)
    n = 0
    while v >= theta and n < max_spikes:
        n += 1
        v -= theta
    return v, isyn, n


@njit(cache=True)
def _deliver(i_syn, w_row, count):
    """count spikes through one fan-out row, each add saturated at 16 bits (zero weights change nothing)."""
    for _ in range(count):
        for j in range(i_syn.size):
            i_syn[j] = min(max(i_syn[j] + w_row[j], -32768), 32767)


@njit(cache=True, nogil=True)
def _xylo_ff(x, w_in, w_out, nnz_in, nnz_out, th_h, th_o, dash_mem, dash_syn, hidden, out, counts):
    """x (T, B, N_in) counts; w_in (N_in, N_h), w_out (N_h, N_o) int32; nnz_*: non-zero weights per row (the
    synapses xylosim holds); hidden (T, B, N_h), out (T, B, N_o) uint8 receive spike counts;
    counts (B, 2): synaptic events (one per spike per non-zero synapse), address-events routed."""
    n_t, n_b, n_in = x.shape
    n_h, n_o = w_in.shape[1], w_out.shape[1]
    for b in range(n_b):
        v_h = np.zeros(n_h, np.int32)
        i_h = np.zeros(n_h, np.int32)
        v_o = np.zeros(n_o, np.int32)
        i_o = np.zeros(n_o, np.int32)
        prev = np.zeros(n_h, np.int32)
        syn = 0
        ev = 0
        for t in range(n_t):
            for i in range(n_in):
                c = min(np.int32(x[t, b, i]), XYLO_MAX_INPUT_SPIKES)
                if c != 0:
                    ev += 1
                    syn += c * nnz_in[i]
                    _deliver(i_h, w_in[i], c)
            for j in range(n_h):
                c = prev[j]
                if c != 0:
                    ev += 1
                    syn += c * nnz_out[j]
                    _deliver(i_o, w_out[j], c)
            for j in range(n_h):
                v_h[j], i_h[j], s = _xylo_neuron(v_h[j], i_h[j], dash_mem, dash_syn, th_h, XYLO_MAX_HIDDEN_SPIKES)
                prev[j] = s
                hidden[t, b, j] = s
            for o in range(n_o):
                v_o[o], i_o[o], s = _xylo_neuron(v_o[o], i_o[o], dash_mem, dash_syn, th_o, XYLO_MAX_OUTPUT_SPIKES)
                out[t, b, o] = s
        counts[b, 0] += syn
        counts[b, 1] += ev


def run_ff_xylo(w_in: np.ndarray, w_out: np.ndarray, theta_hidden: int, theta_out: int, dash_mem: int, dash_syn: int,
                spikes: np.ndarray):
    """Xylo-model network input -> hidden -> readout (no recurrence, no bias, weight shifts 0).
    w_in (N_h, N_in), w_out (N_o, N_h) int8, PyTorch layout; spikes (T, B, N_in) counts.
    Returns (hidden spike counts (T, B, N_h), readout spikes (T, B, N_o), synaptic events)."""
    x = _check_ff([w_in, w_out], [theta_hidden, theta_out], spikes)
    if not 1 <= dash_mem <= 15 or not 0 <= dash_syn <= 15:
        raise ValueError(f"dash_mem must be 1..15 and dash_syn 0..15, got {dash_mem}, {dash_syn}")
    n_t, n_b = x.shape[:2]
    hidden = np.zeros((n_t, n_b, w_in.shape[0]), np.uint8)
    out = np.zeros((n_t, n_b, w_out.shape[0]), np.uint8)
    counts = np.zeros((n_b, 2), np.int64)
    w_i, w_o = np.ascontiguousarray(w_in.T, dtype=np.int32), np.ascontiguousarray(w_out.T, dtype=np.int32)
    _xylo_ff(x, w_i, w_o, (w_i != 0).sum(1), (w_o != 0).sum(1), int(theta_hidden), int(theta_out), int(dash_mem),
             int(dash_syn), hidden, out, counts)
    return hidden, out, int(counts[:, 0].sum())
