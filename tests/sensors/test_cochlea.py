"""Cochlea and delta encoders against plain numpy / scipy / Python references, plus behaviour checks."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import lfilter

from sensors.audio_io import read_wav
from sensors.cochlea import (
    CochleaParams,
    centre_frequencies,
    cochlea_encode,
    delta_encode,
    gammatone_coefficients,
    gammatone_filterbank,
)
from sensors.events import AUDIO_DTYPE, validate_events

FS = 8000


def _speechlike(seconds=0.3, seed=0):
    """Harmonic tone with a moving pitch, amplitude modulation and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(FS * seconds)) / FS
    f0 = 140 + 60 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / FS
    wave = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.sin(np.pi * t / seconds) ** 2
    return 0.3 * wave + 0.002 * rng.standard_normal(t.size)


def _tone(freq, seconds=0.5, amp=0.5):
    t = np.arange(int(FS * seconds)) / FS
    return amp * np.sin(2 * np.pi * freq * t) * np.minimum(1.0, t / 0.02)  # 20 ms ramp, no onset click


def _reference_lif(filtered, params, fs):
    """Plain-Python rectify / compress / LIF, the specification of cochlea_encode's spiking step."""
    alpha = math.exp(-1.0 / (fs * params.tau))
    refractory = int(round(params.refractory * fs))
    rows = []
    for c in range(filtered.shape[0]):
        v, dead = 0.0, 0
        for i, r in enumerate(filtered[c].tolist()):
            if dead > 0:
                dead -= 1
                continue
            drive = 0.0
            if r > 0.0:
                g = params.gain * r
                if params.compression == "log":
                    drive = math.log1p(g)
                elif params.exponent == 0.25:
                    drive = math.sqrt(math.sqrt(g))
                else:
                    drive = g**params.exponent
            v = alpha * v + (1.0 - alpha) * drive
            if v >= params.threshold:
                rows.append(((i * 1_000_000) // fs, c, 0))
                v, dead = 0.0, refractory
    rows.sort()
    return np.array(rows, dtype=AUDIO_DTYPE)


def _reference_delta(signal, threshold, fs):
    """Vectorised-over-channels numpy delta modulator, same arithmetic as delta_encode."""
    sig = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    ref = sig[:, 0].copy()
    t, x, p = [], [], []
    for i in range(1, sig.shape[1]):
        diff = sig[:, i] - ref
        mag = np.abs(diff)
        m = np.where(mag >= threshold, np.floor(mag / threshold), 0.0)
        ref = np.where(diff >= 0, ref + m * threshold, ref - m * threshold)
        chans = np.repeat(np.arange(sig.shape[0]), m.astype(np.int64))
        t.append(np.full(chans.size, (i * 1_000_000) // fs))
        x.append(chans)
        p.append((diff[chans] >= 0).astype(np.int64))
    out = np.empty(sum(a.size for a in t), dtype=AUDIO_DTYPE)
    out["t"], out["x"], out["p"] = np.concatenate(t), np.concatenate(x), np.concatenate(p)
    return out


def test_filterbank_matches_scipy_lfilter():
    """Same coefficients through scipy's complex lfilter, stage by stage. Tolerance 1e-12 of the peak:
    both are float64 one-pole recursions, but summation order / FMA contraction may differ by a few ulp
    per step on other CPUs; here they agree bit for bit."""
    wave = np.random.default_rng(1).standard_normal(3000)
    fc = centre_frequencies(16, 100.0, 3800.0)
    got = gammatone_filterbank(wave, FS, fc)
    poles, gains = gammatone_coefficients(fc, FS)
    want = np.empty_like(got)
    for c, (a, g) in enumerate(zip(poles, gains)):
        y = wave.astype(np.complex128)
        for _ in range(4):
            y = lfilter([g], [1.0, -a], y)
        want[c] = 2.0 * y.real
    assert got.shape == (16, 3000)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("freq", [250.0, 440.0, 1000.0, 3000.0])
def test_tone_peaks_in_nearest_channel(freq):
    fc = centre_frequencies(64, 100.0, 3800.0)
    nearest = int(np.argmin(np.abs(fc - freq)))
    rms = np.sqrt(np.mean(gammatone_filterbank(_tone(freq), FS, fc)[:, 1000:] ** 2, axis=1))
    assert int(np.argmax(rms)) == nearest
    assert rms[nearest] == pytest.approx(0.5 / np.sqrt(2), rel=0.1)  # unit gain at the centre
    counts = np.bincount(cochlea_encode(_tone(freq), FS)["x"], minlength=64)
    assert abs(int(np.argmax(counts)) - nearest) <= 2
    assert counts[nearest] > 5 * max(counts[0] if nearest > 32 else counts[63], 1)


@pytest.mark.parametrize(
    "compression, exponent, threshold", [("power", 0.25, 0.11), ("power", 0.3, 0.08), ("log", 0.25, 0.01)]
)
def test_encoder_matches_python_reference(compression, exponent, threshold):
    params = CochleaParams(n_channels=24, compression=compression, exponent=exponent, threshold=threshold)
    wave = _speechlike()
    events = cochlea_encode(wave, FS, params)
    filtered = gammatone_filterbank(wave / np.abs(wave).max(), FS, centre_frequencies(24, 100.0, 3800.0))
    expected = _reference_lif(filtered, params, FS)
    assert events.size > 100
    np.testing.assert_array_equal(events, expected)


def test_events_sorted_valid_and_deterministic():
    params = CochleaParams()
    events = cochlea_encode(_speechlike(seed=3), FS, params)
    assert events.dtype == AUDIO_DTYPE and events.size > 0
    validate_events(events, params.sensor_size, "test")
    order = np.lexsort((events["x"], events["t"]))
    np.testing.assert_array_equal(order, np.arange(events.size))
    assert np.all(events["p"] == 0)
    np.testing.assert_array_equal(events, cochlea_encode(_speechlike(seed=3), FS, params))


def test_refractory_and_threshold():
    params = CochleaParams(refractory=0.003)
    events = cochlea_encode(_tone(1000.0), FS, params)
    gaps = [np.diff(events["t"][events["x"] == c]) for c in np.unique(events["x"])]
    assert min(g.min() for g in gaps if g.size) >= (24 + 1) * 125  # 24 dead samples, 125 us each
    fewer = cochlea_encode(_tone(1000.0), FS, replace(params, threshold=0.2))
    assert 0 < fewer.size < events.size


def test_silence_gives_no_events():
    assert cochlea_encode(np.zeros(4000), FS).size == 0
    assert cochlea_encode(np.zeros(4000), FS, CochleaParams(normalize=False)).size == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_waveform_rejected(bad):
    wave = _speechlike()
    wave[17] = bad
    with pytest.raises(ValueError, match="cochlea_encode.*NaN/inf.*index 17"):
        cochlea_encode(wave, FS)


def test_bad_options_rejected():
    with pytest.raises(ValueError, match="f_max = 3800.0 Hz must be below the Nyquist"):
        cochlea_encode(_speechlike(), 4000)
    with pytest.raises(ValueError, match="CochleaParams.compression"):
        CochleaParams(compression="cube")
    with pytest.raises(ValueError, match="CochleaParams.threshold"):
        CochleaParams(threshold=0)
    with pytest.raises(ValueError, match="1-D"):
        cochlea_encode(np.zeros((2, 100)), FS)


@pytest.mark.parametrize("clip", ["fixture:3_nicolas_5.wav",
                                  pytest.param("full:3_jackson_12.wav", marks=pytest.mark.full_data)])
def test_real_fsdd_clip(request, clip):
    where, name = clip.split(":")
    root = request.getfixturevalue("fixture_data_root" if where == "fixture" else "full_data_root")
    path = root / "fsdd" / "recordings" / name
    wave = read_wav(path)
    assert wave.dtype == np.float32 and wave.ndim == 1 and wave.size > 1000
    events = cochlea_encode(wave, FS)
    validate_events(events, (64, 1, 1), str(path))
    assert 500 < events.size < 10_000
    assert np.unique(events["x"]).size > 32
    assert events["t"].max() < wave.size * 125


def test_delta_matches_numpy_reference():
    rng = np.random.default_rng(2)
    signal = np.cumsum(rng.standard_normal((6, 2000)), axis=1) * 0.1
    events = delta_encode(signal, FS, 0.05)
    assert events.size > 1000 and set(np.unique(events["p"])) == {0, 1}
    validate_events(events, (6, 1, 1), "test")
    np.testing.assert_array_equal(events, _reference_delta(signal, 0.05, FS))
    np.testing.assert_array_equal(delta_encode(signal[2], FS, 0.05), _reference_delta(signal[2], 0.05, FS))


def test_delta_counts_steps_exactly():
    signal = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 9.0, 9.0, 1.0])
    events = delta_encode(signal, FS, 2.0)
    # 0->2 at sample 2, ->4 at 4, 4->8 (two events) at 5, 8->2 (three OFF) at 7
    np.testing.assert_array_equal(events["t"], np.array([2, 4, 5, 5, 7, 7, 7]) * 125)
    np.testing.assert_array_equal(events["p"], [1, 1, 1, 1, 0, 0, 0])
    assert delta_encode(np.ones((3, 50)), FS, 0.1).size == 0


def test_delta_bad_input():
    with pytest.raises(ValueError, match="delta_encode: threshold"):
        delta_encode(np.zeros(10), FS, 0.0)
    with pytest.raises(ValueError, match="delta_encode.*NaN/inf"):
        delta_encode(np.array([0.0, np.nan]), FS, 0.1)
    with pytest.raises(ValueError, match=r"delta_encode: signal must be \(C, N\)"):
        delta_encode(np.zeros((2, 2, 2)), FS, 0.1)
