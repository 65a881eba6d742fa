"""bench/support/cochlea_peer.py (the numpy/scipy peer of our cochlea) and bench/support/timing.py (interleaved paired timing)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench.support.cochlea_peer import cochlea_encode_numpy, erb_centre_frequencies
from bench.support.timing import interleaved_times, ratio_stats, repeats_for
from sensors.audio_io import read_wav
from sensors.cochlea import CochleaParams, centre_frequencies, cochlea_encode

FS = 8000


def _speechlike(seconds=0.3, seed=0):
    """Harmonic tone with a rising pitch, a raised-sine envelope and a little noise (8 kHz)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(FS * seconds)) / FS
    phase = 2 * np.pi * np.cumsum(140 + 60 * t / seconds) / FS
    wave = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.sin(np.pi * t / seconds) ** 2
    return 0.3 * wave + 0.002 * rng.standard_normal(t.size)


@pytest.mark.parametrize("change", [{}, {"compression": "log", "threshold": 0.01}, {"exponent": 0.3, "threshold": 0.08},
                                    {"spacing": "log"}, {"refractory": 0.0}, {"refractory": 0.01, "n_channels": 24}])
def test_numpy_peer_gives_our_events(change):
    """The peer is the same algorithm: identical events (t, x, p), not merely similar counts."""
    params = replace(CochleaParams(), **change)
    wave = _speechlike()
    ours = cochlea_encode(wave, FS, params)
    assert ours.size > 100
    np.testing.assert_array_equal(cochlea_encode_numpy(wave, FS, params), ours)


def test_numpy_peer_on_a_real_fsdd_clip(fixture_data_root):
    wave = read_wav(fixture_data_root / "fsdd" / "recordings" / "3_nicolas_5.wav", FS)
    ours = cochlea_encode(wave, FS)
    assert ours.size > 500
    np.testing.assert_array_equal(cochlea_encode_numpy(wave, FS, CochleaParams()), ours)


def test_peer_centre_frequencies_are_rederived_not_imported():
    for spacing in ("erb", "log"):
        np.testing.assert_allclose(erb_centre_frequencies(64, 100.0, 3800.0, spacing),
                                   centre_frequencies(64, 100.0, 3800.0, spacing), rtol=1e-12)


def test_interleaved_times_rotates_order_and_counts_repeats():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = interleaved_times(fns, rounds=3, warmup=1, repeats={"a": 2})
    assert calls == ["a", "a", "b", "b", "a", "a", "a", "a", "b", "b", "a", "a"]
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for v in times.values() for t in v)
    assert repeats_for({"fast": lambda: None}, target_s=1e-3)["fast"] > 1


def test_ratio_stats_is_the_median_of_per_round_ratios():
    stats = ratio_stats([2.0, 4.0, 9.0, 3.0], [1.0, 1.0, 1.0, 3.0])
    assert stats["median"] == 3.0 and stats["min"] == 1.0 and stats["max"] == 9.0 and stats["pairs"] == 4
    assert stats["q1"] <= stats["median"] <= stats["q3"]
    with pytest.raises(ValueError):
        ratio_stats([1.0], [])


def test_untrained_default_model_composes_like_the_apps():
    """bench.support.models.load_model(None): the train app's composed fsdd_mnist config (interpolations such as
    model.modalities resolved), an int8 model with that config's T, labelled UNTRAINED."""
    from bench.support.models import load_model

    model, data, label = load_model(None)
    assert data.name == "fsdd_mnist" and model.T == int(data.T) and label.startswith("UNTRAINED")
    assert list(model.modalities) == list(data.modalities)


def test_three_way_exactness_check_handles_per_modality_outputs(tmp_path):
    """bench.sim.bench_exact over more than one simulator batch of a taaf_modal program: its logits_<m> (B, K)
    outputs join on the batch axis like logits, and the three runners agree exactly."""
    from types import SimpleNamespace

    import numpy as np

    from bench.sim import bench_exact
    from quant import export
    from tests.support.quant_models import tiny_model

    model = tiny_model("taaf_modal", 8, 3.0, seed=1, T=6)
    export.export_onnx(model, tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    n = 70                                          # two simulator batches of 64 and 6
    test = SimpleNamespace(vision=(rng.random((n, 6, 2, 34, 34)) < 0.1).astype(np.uint8),
                           audio=rng.integers(0, 3, (n, 6, 64)).astype(np.uint8), labels=np.zeros(n, np.int64))
    assert bench_exact(model, tmp_path / "m.onnx", test) == (1, [])
