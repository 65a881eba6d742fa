"""Numba kernels of the accelerator's spiking layers: event-driven synaptic accumulate, integer LIF,
and the step-every-neuron reference (the readout's kernels: firmware_sim.readout_kernels).

Hand-written because numpy / scipy have no event-driven (only active inputs read weight memory)
accumulate fused with a saturating integer neuron, and counting what the hardware does needs the
loop anyway. Each kernel runs one layer over all T steps of a (T, B, ...) batch: layers have no
feedback, so layer-major order gives the same spikes as step-major order. Each public kernel runs
samples b0..b1-1 without the GIL, so firmware_sim.run splits large batches over Python threads
(cheaper to compile than Numba's parallel=True, and no OpenMP threads spinning between calls).
Semantics: docs/accelerator.md and ``firmware_sim.spec`` (lif_step).

Two kernels per layer kind, which must agree on every spike and every counter (tests/firmware_sim/test_kernels.py):
  * ``conv_layer`` / ``dense_layer``: the event-driven hardware, run as it runs. Each neuron keeps a
    time stamp (its last updated step). A step touches only the neurons its events reach, plus the
    neurons still >= theta after their last update (the armed list, which can fire without input);
    each of them first applies the leak of the steps it skipped (catch-up, counted step by step
    until the leak stops changing it), then the step's update. Untouched neurons are never read.
  * ``conv_layer_reference`` / ``dense_layer_reference``: step every neuron every step
    (spec.lif_step) and derive the same counters from per-neuron flags. This equals the event-driven
    run because a neuron with no input and v < theta neither fires nor saturates: the leak only
    shrinks |v| (theta >= 1), so its catch-up later reaches the same value.

Dataflow counted (docs/accelerator.md, "Dataflow"):
  * a step's input events arrive in (channel, y, x) order; the conv engine keeps the current input
    channel's kernel in a C_out x k x k tap buffer and loads a tap's C_out weights (one weight row)
    from weight memory the first time an event of that channel run needs it (dense layers read an
    event's fan-out row of N_out weights);
  * an event reaches groups of neurons: a conv event reaches the C_out neurons of each output
    position its taps hit (one group each), a dense event the whole layer (one group);
  * neuron state lives in groups too (a conv position's C_out entries, contiguous; a dense layer's
    whole row): a step's update reads and writes each group holding an updated neuron, except that a
    dense layer's armed neurons on a step without events are read one by one (single updates).

Counter columns (per sample) of the spiking-layer kernels: see LAYER_COLUMNS.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from firmware_sim.spec import EXACT_LIMIT, LEAK_OFF

# columns of the per-sample counter array of a spiking layer
LAYER_COLUMNS = ("input_events", "input_spikes", "syn_ops", "weight_rows", "fanout_groups", "saturations", "spikes_out",
                 "exact_limit", "neuron_updates", "leak_ops", "group_updates", "single_updates")
(EVENTS, SPIKES_IN, SYN, WROWS, FANOUT, SAT, SPIKES_OUT, EXACT, UPDATES, LEAKS, GROUPS,
 SINGLES) = range(len(LAYER_COLUMNS))


# ---------------------------------------------------------------- the neuron update (shared)

@njit(cache=True, inline="always")
def _leak(v, leak_shift):
    """spec.leak: v >> k, and 0 at k = LEAK_OFF (IF)."""
    return 0 if leak_shift >= LEAK_OFF else v >> leak_shift


@njit(cache=True, inline="always")
def _step_neuron(v, c, theta, leak_shift, lo, hi):
    """spec.lif_step for one neuron: (v', spike, saturated, |current| >= 2^24)."""
    raw = v - _leak(v, leak_shift) + c
    u = min(max(raw, lo), hi)
    s = u >= theta
    return u - theta * s, s, u != raw, abs(c) >= EXACT_LIMIT


@njit(cache=True, inline="always")
def _catch_up(v, skipped, leak_shift):
    """Apply the leak of ``skipped`` input-free steps: (v', leak steps that changed v). Stops at the
    leak's fixed point (v - (v >> k) == v), after which further steps change nothing."""
    n = 0
    for _ in range(skipped):
        y = v - _leak(v, leak_shift)
        if y == v:
            break
        v = y
        n += 1
    return v, n


@njit(cache=True, inline="always")
def _count_step(counts, b, n_spk, n_sat, n_big, n_upd, n_leak):
    counts[b, SPIKES_OUT] += n_spk
    counts[b, SAT] += n_sat
    counts[b, EXACT] += n_big
    counts[b, UPDATES] += n_upd
    counts[b, LEAKS] += n_leak


# ---------------------------------------------------------------- reference: step every neuron

@njit(cache=True, inline="always")
def _lif_all(v, cur, pending, touched, theta, leak_shift, lo, hi, spk):
    """Step every neuron (branch-free, so it vectorises) and count what the event-driven hardware does.

    v (N,) int64 membranes; cur (N,) int32 synaptic sums of this step; touched (N,) uint8, 1 where the
    neuron received an event this step, overwritten with 1 where the hardware updates it (touched or
    armed); pending (N,) int32, per neuron the skipped steps since its last update whose leak changed
    the membrane (the catch-up leak steps applied at the next update); spk (N,) uint8 receives the
    spikes. Returns (spikes, saturated, values at or above 2^24, neurons updated, catch-up steps)."""
    n_spk = 0
    n_sat = 0
    n_big = 0
    n_upd = 0
    n_leak = 0
    for i in range(v.size):
        x = v[i]
        upd = np.int32(touched[i]) | np.int32(x >= theta)      # the hardware reads this neuron
        c = np.int64(cur[i])
        n_big += abs(c) >= EXACT_LIMIT
        raw = x - _leak(x, leak_shift) + c
        u = min(max(raw, lo), hi)
        n_sat += u != raw
        s = u >= theta
        y = u - theta * s
        v[i] = y
        spk[i] = s
        n_spk += s
        pend = pending[i]
        n_upd += upd
        n_leak += upd * pend
        pending[i] = (1 - upd) * (pend + np.int32(y != x))
        touched[i] = upd
    return n_spk, n_sat, n_big, n_upd, n_leak


@njit(cache=True)
def _dense_reference_sample(x, w_t, b, theta, leak_shift, lo, hi, out, counts, vs, carry):
    """Dense spiking layer, sample b, stepping every neuron. x (T, B, N_in) uint8 counts; w_t (N_in, N_out)
    int8 (weights transposed so an event reads one contiguous fan-out row); out (T, B, N_out) uint8
    zeros, receives spikes; counts (B, len(LAYER_COLUMNS)) int64, receives the counters.

    The layer's state, read at the first step and left as of the last (a stream runs in chunks): vs (B, N)
    int64 membranes, caught up to the last step; carry (B, N) int32 catch-up leak steps not yet counted
    (a neuron's leak steps are counted when it is next updated). Zeros: a fresh window."""
    n_t, _, n_in = x.shape
    n_out = w_t.shape[1]
    v, pending = vs[b], carry[b]
    cur = np.zeros(n_out, np.int32)
    touched = np.zeros(n_out, np.uint8)
    for t in range(n_t):
        cur[:] = 0
        ev_t = 0
        for i in range(n_in):
            c = np.int32(x[t, b, i])
            if c != 0:
                ev_t += 1
                counts[b, SPIKES_IN] += c
                row = w_t[i]
                for j in range(n_out):
                    cur[j] += c * row[j]
        counts[b, EVENTS] += ev_t
        touched[:] = ev_t > 0                       # an event reaches every neuron of a dense layer
        n_spk, n_sat, n_big, n_upd, n_leak = _lif_all(v, cur, pending, touched, theta, leak_shift, lo, hi, out[t, b])
        _count_step(counts, b, n_spk, n_sat, n_big, n_upd, n_leak)
        if ev_t > 0:
            counts[b, GROUPS] += 1                  # the whole row is read and written
        else:
            counts[b, SINGLES] += n_upd             # armed neurons, one by one
    counts[b, SYN] += counts[b, SPIKES_IN] * n_out
    counts[b, WROWS] += counts[b, EVENTS]
    counts[b, FANOUT] += counts[b, EVENTS]


@njit(cache=True)
def _taps(size, k, stride, pad, out_size):
    """Per input coordinate y: the kernel taps ky and output coordinates o = (y + pad - ky) / stride it
    reaches (whole and in range). Returns (count (size,), ky (size, k), o (size, k))."""
    count = np.zeros(size, np.int64)
    ks = np.zeros((size, k), np.int64)
    os_ = np.zeros((size, k), np.int64)
    for y in range(size):
        for kk in range(k):
            n = y + pad - kk
            if n >= 0 and n % stride == 0 and n // stride < out_size:
                ks[y, count[y]] = kk
                os_[y, count[y]] = n // stride
                count[y] += 1
    return count, ks, os_


@njit(cache=True, inline="always")
def _conv_events(x, w_e, b, t, ci, ny, ky_tab, oy_tab, nx, kx_tab, ox_tab, w_out, c_out, loaded, cur, counts):
    """Scatter the step-t events of input channel ci into the synaptic sums ``cur`` (channel-last
    (H', W', C_out)). ``loaded`` (k, k) is the channel's tap buffer (which taps hold their weight row).
    Counts events, spikes, synaptic accumulates, weight rows loaded and (event, position) pairs."""
    h, w = x.shape[3], x.shape[4]
    loaded[:, :] = 0
    for y in range(h):
        for xx in range(w):
            c = np.int32(x[t, b, ci, y, xx])
            if c == 0:
                continue
            counts[b, EVENTS] += 1
            counts[b, SPIKES_IN] += c
            counts[b, FANOUT] += ny[y] * nx[xx]
            counts[b, SYN] += c * ny[y] * nx[xx] * c_out
            for iy in range(ny[y]):
                ky = ky_tab[y, iy]
                row = oy_tab[y, iy] * w_out
                for ix in range(nx[xx]):
                    kx = kx_tab[xx, ix]
                    if loaded[ky, kx] == 0:
                        loaded[ky, kx] = 1
                        counts[b, WROWS] += 1
                    w_row = w_e[ci, ky, kx]
                    base = (row + ox_tab[xx, ix]) * c_out
                    seg = cur[base:base + c_out]      # views: indices from range() vectorise
                    for co in range(c_out):
                        seg[co] += c * w_row[co]


@njit(cache=True)
def _conv_reference_sample(x, w_e, b, stride, pad, theta, leak_shift, lo, hi, out, counts, vs, carry):
    """Conv spiking layer (no bias), sample b, stepping every neuron. x (T, B, C_in, H, W) uint8 counts;
    w_e (C_in, k, k, C_out) int8 (an event at (c, y, x) reads C_out contiguous weights per kernel tap);
    out (T, B, C_out, H', W') uint8 zeros, receives spikes; counts as dense_layer.

    out[co, oy, ox] sums w[co, ci, ky, kx] * x[ci, oy*s - pad + ky, ox*s - pad + kx], so an input at
    (y, x) reaches oy = (y + pad - ky) / s for every ky where that is a whole number in range, and
    there all C_out neurons of the position. vs, carry: the state as _dense_reference_sample's, channel-last
    (H', W', C_out) per sample."""
    n_t, _, c_in, h, w = x.shape
    k = w_e.shape[1]
    c_out, h_out, w_out = out.shape[2], out.shape[3], out.shape[4]
    n_pos = h_out * w_out
    ny, ky_tab, oy_tab = _taps(h, k, stride, pad, h_out)
    nx, kx_tab, ox_tab = _taps(w, k, stride, pad, w_out)
    v, pending = vs[b], carry[b]               # (H', W', C_out): channel-last for contiguous adds
    cur = np.zeros(n_pos * c_out, np.int32)
    touched = np.zeros(n_pos * c_out, np.uint8)
    spk = np.zeros(n_pos * c_out, np.uint8)
    loaded = np.zeros((k, k), np.uint8)        # the current channel's tap buffer: which taps hold weights
    for t in range(n_t):
        cur[:] = 0
        for ci in range(c_in):
            _conv_events(x, w_e, b, t, ci, ny, ky_tab, oy_tab, nx, kx_tab, ox_tab, w_out, c_out, loaded, cur, counts)
        touched[:] = 0
        _mark_reached(x, b, t, ny, oy_tab, nx, ox_tab, w_out, c_out, touched)
        n_spk, n_sat, n_big, n_upd, n_leak = _lif_all(v, cur, pending, touched, theta, leak_shift, lo, hi, spk)
        _count_step(counts, b, n_spk, n_sat, n_big, n_upd, n_leak)
        for pos in range(n_pos):
            counts[b, GROUPS] += touched[pos * c_out:(pos + 1) * c_out].max()
        if n_spk:
            spikes = out[t, b].reshape(c_out, n_pos)       # (C_out, H' W') from channel-last spk
            for pos in range(n_pos):
                for co in range(c_out):
                    spikes[co, pos] = spk[pos * c_out + co]


@njit(cache=True, inline="always")
def _mark_reached(x, b, t, ny, oy_tab, nx, ox_tab, w_out, c_out, touched):
    """touched = 1 for every neuron of every output position a step-t event reaches (any channel)."""
    c_in, h, w = x.shape[2], x.shape[3], x.shape[4]
    for ci in range(c_in):
        for y in range(h):
            for xx in range(w):
                if x[t, b, ci, y, xx] == 0:
                    continue
                for iy in range(ny[y]):
                    row = oy_tab[y, iy] * w_out
                    for ix in range(nx[xx]):
                        base = (row + ox_tab[xx, ix]) * c_out
                        touched[base:base + c_out] = 1


@njit(cache=True, nogil=True)
def dense_layer_reference(x, w_t, theta, leak_shift, lo, hi, out, counts, vs, carry, b0, b1):
    """Samples b0..b1-1 of the batch (see _dense_reference_sample for the arguments); releases the GIL."""
    for b in range(b0, b1):
        _dense_reference_sample(x, w_t, b, theta, leak_shift, lo, hi, out, counts, vs, carry)


@njit(cache=True, nogil=True)
def conv_layer_reference(x, w_e, stride, pad, theta, leak_shift, lo, hi, out, counts, vs, carry, b0, b1):
    """Samples b0..b1-1 of the batch (see _conv_reference_sample for the arguments); releases the GIL."""
    for b in range(b0, b1):
        _conv_reference_sample(x, w_e, b, stride, pad, theta, leak_shift, lo, hi, out, counts, vs, carry)


# ---------------------------------------------------------------- event-driven: what the hardware runs

@njit(cache=True, inline="always")
def _armed_at_start(v, theta, armed):
    """List the neurons a stream's earlier chunk left at or above theta (they fire without input); returns
    how many. A fresh window (v = 0 < theta) lists none."""
    n = 0
    for i in range(v.size):
        if v[i] >= theta:
            armed[n] = i
            n += 1
    return n


@njit(cache=True, inline="always")
def _catch_up_all(v, stamp, n_t, leak_shift, carry):
    """At a chunk's end, bring every membrane to the last step (the state a stream carries); the leak steps
    that changed one go to ``carry``, counted when the neuron is next updated, as one run would count them."""
    for i in range(v.size):
        vi, n = _catch_up(v[i], n_t - 1 - stamp[i], leak_shift)
        v[i] = vi
        carry[i] += n


@njit(cache=True, inline="always")
def _update_listed(v, cur, stamp, t, ids, n_ids, theta, leak_shift, lo, hi, spk_flag, armed, counts, b, carry):
    """Update the neurons ids[:n_ids] at step t: catch-up leak from their time stamps, then the step.
    Clears their synaptic sums, sets spk_flag, writes the new armed list (neurons still >= theta);
    counts the catch-up leak steps carried in from an earlier chunk; returns the armed list's length."""
    n_armed = 0
    for j in range(n_ids):
        i = ids[j]
        vi, n_leak = _catch_up(v[i], t - stamp[i] - 1, leak_shift)
        vi, s, sat, big = _step_neuron(vi, np.int64(cur[i]), theta, leak_shift, lo, hi)
        v[i] = vi
        stamp[i] = t
        cur[i] = 0
        spk_flag[i] = s
        counts[b, SPIKES_OUT] += s
        counts[b, SAT] += sat
        counts[b, EXACT] += big
        counts[b, LEAKS] += n_leak + carry[i]
        carry[i] = 0
        if vi >= theta:
            armed[n_armed] = i
            n_armed += 1
    counts[b, UPDATES] += n_ids
    return n_armed


@njit(cache=True)
def _dense_sample(x, w_t, b, theta, leak_shift, lo, hi, out, counts, vs, carry):
    """Dense spiking layer, sample b, event-driven (arguments as _dense_reference_sample). A step with
    an event updates the whole layer (every neuron is reached); a step without updates the armed
    neurons only; every other neuron is left untouched until an event reaches it."""
    n_t, _, n_in = x.shape
    n_out = w_t.shape[1]
    v, carried = vs[b], carry[b]
    cur = np.zeros(n_out, np.int32)
    stamp = np.full(n_out, -1, np.int32)
    armed = np.zeros(n_out, np.int64)
    armed_next = np.zeros(n_out, np.int64)
    every = np.arange(n_out)
    spk = np.zeros(n_out, np.uint8)
    n_armed = _armed_at_start(v, theta, armed)
    for t in range(n_t):
        ev_t = 0
        for i in range(n_in):
            c = np.int32(x[t, b, i])
            if c != 0:
                ev_t += 1
                counts[b, SPIKES_IN] += c
                row = w_t[i]
                for j in range(n_out):
                    cur[j] += c * row[j]
        counts[b, EVENTS] += ev_t
        if ev_t > 0:
            ids, n_ids = every, n_out
            counts[b, GROUPS] += 1
        else:
            ids, n_ids = armed, n_armed
            counts[b, SINGLES] += n_armed
        spk[:] = 0
        n_armed = _update_listed(v, cur, stamp, t, ids, n_ids, theta, leak_shift, lo, hi, spk, armed_next, counts, b,
                                 carried)
        armed, armed_next = armed_next, armed
        for j in range(n_ids):
            out[t, b, ids[j]] = spk[ids[j]]
    _catch_up_all(v, stamp, n_t, leak_shift, carried)
    counts[b, SYN] += counts[b, SPIKES_IN] * n_out
    counts[b, WROWS] += counts[b, EVENTS]
    counts[b, FANOUT] += counts[b, EVENTS]


@njit(cache=True)
def _conv_sample(x, w_e, b, stride, pad, theta, leak_shift, lo, hi, out, counts, vs, carry):
    """Conv spiking layer, sample b, event-driven (arguments as _conv_reference_sample). Only the output
    positions a step's events reach, and the armed neurons, are read and updated; the neurons of a
    reached position are listed once (a position list, as the hardware's update queue)."""
    n_t, _, c_in, h, w = x.shape
    k = w_e.shape[1]
    c_out, h_out, w_out = out.shape[2], out.shape[3], out.shape[4]
    n_pos = h_out * w_out
    n = n_pos * c_out
    ny, ky_tab, oy_tab = _taps(h, k, stride, pad, h_out)
    nx, kx_tab, ox_tab = _taps(w, k, stride, pad, w_out)
    v, carried = vs[b], carry[b]
    cur = np.zeros(n, np.int32)                # (H', W', C_out): channel-last for contiguous adds
    stamp = np.full(n, -1, np.int32)
    listed = np.zeros(n, np.uint8)
    ids = np.zeros(n, np.int64)
    armed = np.zeros(n, np.int64)
    armed_next = np.zeros(n, np.int64)
    pos_seen = np.zeros(n_pos, np.int32)       # step + 1 at which a position was last counted as a group
    spk = np.zeros(n, np.uint8)
    loaded = np.zeros((k, k), np.uint8)
    n_armed = _armed_at_start(v, theta, armed)
    for t in range(n_t):
        n_ids = 0
        for ci in range(c_in):
            _conv_events(x, w_e, b, t, ci, ny, ky_tab, oy_tab, nx, kx_tab, ox_tab, w_out, c_out, loaded, cur, counts)
            for y in range(h):                 # list the positions this channel's events reached
                for xx in range(w):
                    if x[t, b, ci, y, xx] == 0:
                        continue
                    for iy in range(ny[y]):
                        row = oy_tab[y, iy] * w_out
                        for ix in range(nx[xx]):
                            pos = row + ox_tab[xx, ix]
                            if pos_seen[pos] != t + 1:
                                pos_seen[pos] = t + 1
                                counts[b, GROUPS] += 1
                                for co in range(c_out):
                                    i = pos * c_out + co
                                    listed[i] = 1
                                    ids[n_ids] = i
                                    n_ids += 1
        for j in range(n_armed):               # armed neurons the events did not reach
            i = armed[j]
            if listed[i] == 0:
                listed[i] = 1
                ids[n_ids] = i
                n_ids += 1
                pos = i // c_out
                if pos_seen[pos] != t + 1:
                    pos_seen[pos] = t + 1
                    counts[b, GROUPS] += 1
        n_armed = _update_listed(v, cur, stamp, t, ids, n_ids, theta, leak_shift, lo, hi, spk, armed_next, counts, b,
                                 carried)
        armed, armed_next = armed_next, armed
        spikes = out[t, b].reshape(c_out, n_pos)
        for j in range(n_ids):
            i = ids[j]
            listed[i] = 0
            if spk[i]:
                spikes[i % c_out, i // c_out] = 1
    _catch_up_all(v, stamp, n_t, leak_shift, carried)


@njit(cache=True, nogil=True)
def dense_layer(x, w_t, theta, leak_shift, lo, hi, out, counts, vs, carry, b0, b1):
    """Samples b0..b1-1 of the batch (see _dense_sample for the arguments); releases the GIL."""
    for b in range(b0, b1):
        _dense_sample(x, w_t, b, theta, leak_shift, lo, hi, out, counts, vs, carry)


@njit(cache=True, nogil=True)
def conv_layer(x, w_e, stride, pad, theta, leak_shift, lo, hi, out, counts, vs, carry, b0, b1):
    """Samples b0..b1-1 of the batch (see _conv_sample for the arguments); releases the GIL."""
    for b in range(b0, b1):
        _conv_sample(x, w_e, b, stride, pad, theta, leak_shift, lo, hi, out, counts, vs, carry)

