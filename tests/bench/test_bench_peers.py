"""The peers timed by bench/: the scipy cochlea LIF and xylosim fed numpy arrays give the same spikes as ours."""
from __future__ import annotations

import numpy as np
import pytest

from bench.support.cochlea_peer import lif_scipy
from bench.support.xylo_kernel import run_ff_xylo
from sensors.cochlea import _lif_kernel


@pytest.mark.parametrize("window", [1, 7, 64, 1000])
def test_windowed_lfilter_lif_spikes_exactly_as_our_kernel(window):
    rng = np.random.default_rng(window)
    filtered = np.abs(rng.standard_normal((900, 16))) ** 3 * 0.05          # (N, C) time-major, bursts and lulls
    alpha, threshold, refractory = float(np.exp(-1.0 / 40.0)), 0.11, 16
    drive = np.sqrt(np.sqrt(filtered))
    ours = _lif_kernel(filtered, 1.0, 0, 0.25, threshold, alpha, refractory)
    peer = lif_scipy(drive, alpha, threshold, refractory, window=window)
    assert ours[0].size > 50
    assert np.array_equal(ours[0], peer[0]) and np.array_equal(ours[1], peer[1])


def test_xylosim_fed_numpy_from_rest_matches_the_xylo_kernel_sample_by_sample():
    xylosim = pytest.importorskip("xylosim.v2")
    from bench.sim import xylosim_layer, xylosim_run
    rng = np.random.default_rng(3)
    w_in = rng.integers(-127, 128, (32, 16)).astype(np.int8)
    w_out = rng.integers(-127, 128, (4, 32)).astype(np.int8)
    x = np.ascontiguousarray((rng.random((30, 3, 16)) < 0.3).astype(np.uint8))
    layer, synapses = xylosim_layer(xylosim, w_in, w_out, 300, 300, 3, 2)
    outs = xylosim_run(layer, x)                      # three samples, each from rest (reset_all)
    _, out, _ = run_ff_xylo(w_in, w_out, 300, 300, 3, 2, x)
    assert out.sum() > 0
    assert np.array_equal(np.stack([np.array(o) for o in outs], 1), out)
    del layer, synapses
