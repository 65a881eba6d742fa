"""The standalone feed-forward path: accelerator neuron == spec.lif_step; Xylo neuron == xylosim spike for spike."""
from __future__ import annotations

import numpy as np
import pytest

from firmware_sim import spec
from bench.support.xylo_kernel import run_ff, run_ff_xylo


def reference_ff(weights, thetas, leak_shift, x):
    outs = []
    for w, theta in zip(weights, thetas):
        cur = x.astype(np.int64) @ w.astype(np.int64).T
        v, spikes = np.zeros(cur.shape[1:], np.int64), []
        for t in range(cur.shape[0]):
            v, s, _ = spec.lif_step(v, cur[t], theta, leak_shift)
            spikes.append(s)
        x = np.stack(spikes)
        outs.append(x)
    return outs


def test_run_ff_equals_reference():
    rng = np.random.default_rng(0)
    weights = [rng.integers(-127, 128, (32, 20)).astype(np.int8), rng.integers(-127, 128, (6, 32)).astype(np.int8)]
    x = (rng.integers(1, 4, (30, 3, 20)) * (rng.random((30, 3, 20)) < 0.3)).astype(np.uint8)
    outs, syn = run_ff(weights, [300, 200], 3, x)
    for ours, ref in zip(outs, reference_ff(weights, [300, 200], 3, x)):
        assert np.array_equal(ours, ref)
    assert syn[0] == int(x.astype(np.int64).sum()) * 32 and syn[1] == int(outs[0].sum()) * 6


def test_run_ff_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected"):
        run_ff([np.zeros((4, 5), np.int8)], [1], 2, np.zeros((3, 1, 6), np.uint8))
    with pytest.raises(ValueError, match="non-negative integer"):
        run_ff([np.zeros((4, 5), np.int8)], [1], 2, np.zeros((3, 1, 5), np.float32))


def xylosim_run(w_in, w_out, th_h, th_o, dash_mem, dash_syn, x):
    """xylosim v2 XyloLayer as a feed-forward net (no recurrent synapses); returns (hidden, out) per sample."""
    from xylosim import v2   # a test dependency (pyproject.toml [test] extra): missing means fail, not skip
    n_h, n_o = w_in.shape[0], w_out.shape[0]
    syn_in = [[v2.XyloSynapse(int(j), 0, int(w_in[j, i])) for j in np.flatnonzero(w_in[:, i])] for i in range(w_in.shape[1])]
    syn_out = [[v2.XyloSynapse(int(o), 0, int(w_out[o, j])) for o in np.flatnonzero(w_out[:, j])] for j in range(n_h)]
    hidden, out = [], []
    for b in range(x.shape[1]):
        layer = v2.XyloLayer(syn_in, [[] for _ in range(n_h)], syn_out, [[] for _ in range(n_h)], [th_h] * n_h, [th_o] * n_o,
                             False, [0] * n_h, [0] * n_o, 0, 0, 0, [dash_mem] * n_h, [dash_mem] * n_o,
                             [[dash_syn]] * n_h, [[dash_syn]] * n_o, "ff")
        out.append(np.array(layer.evolve(x[:, b].tolist())))
        hidden.append(np.array(layer.rec_recurrent_spikes))
    # syn_in / syn_out stay referenced until here: xylosim keeps raw pointers to them
    del syn_in, syn_out
    return np.stack(hidden, 1), np.stack(out, 1)


@pytest.mark.parametrize("seed", [1, 2, 3, 5])
def test_xylo_mode_equals_xylosim(seed):
    rng = np.random.default_rng(seed)
    w_in = rng.integers(-127, 128, (48, 24))
    w_in[rng.random(w_in.shape) < 0.3] = 0
    w_out = rng.integers(-127, 128, (5, 48))
    x = ((rng.random((50, 2, 24)) < 0.3) * rng.integers(1, 20, (50, 2, 24))).astype(np.uint8)   # counts above 15 are clipped
    th_h, th_o = int(rng.integers(50, 2000)), int(rng.integers(50, 2000))
    dash_mem, dash_syn = int(rng.integers(1, 6)), int(rng.integers(0, 6))
    hidden, out, events = run_ff_xylo(w_in.astype(np.int8), w_out.astype(np.int8), th_h, th_o, dash_mem, dash_syn, x)
    ref_hidden, ref_out = xylosim_run(w_in, w_out, th_h, th_o, dash_mem, dash_syn, x)
    assert np.array_equal(hidden, ref_hidden) and np.array_equal(out, ref_out)
    assert events > 0 and hidden.sum() > 0
