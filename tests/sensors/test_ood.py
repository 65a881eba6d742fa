"""Failures never seen in training (sensors/ood.py): each present as specified, pure, and reproducible by seed."""
from __future__ import annotations

import numpy as np
import pytest

from sensors.audio_io import read_wav
from sensors.cochlea import CochleaParams
from sensors.datasets import FsddSplit, _encode_clip, build_dataset, fsdd_files, fsdd_split_of
from sensors.ood import (WaveformFailure, babble, clip_waveform, dead_channel_set, dead_channels, dead_pixel_set,
                         dead_pixels, fsdd_failed_audio, hot_pixel_set, hot_pixels, hum_signal, mains_hum)
from tests.support.configs import compose_config

FS = 8000


def speech_like(seconds=1.0, seed=0):
    """A stand-in for a clip: a 440 Hz tone plus white noise, in a burst."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    return (np.sin(2 * np.pi * 440 * t) + 0.3 * rng.standard_normal(t.size)) * (np.abs(t - 0.5) < 0.3)


def test_hot_pixels_fire_at_the_set_rate_on_the_same_pixels_in_every_sample():
    frames = np.zeros((40, 16, 2, 34, 34), np.uint8)
    rate_hz, bin_us = 400.0, 18_750.0
    out = hot_pixels(frames, 0.02, rate_hz, bin_us, clip=255, seed=5)
    assert out.shape == frames.shape and out.dtype == np.uint8 and not frames.any()      # input untouched
    hot = hot_pixel_set(34, 34, 0.02, 5)
    assert hot.size == 23                                                                # round(0.02 * 1156)
    rows, cols = np.divmod(hot, 34)
    mask = np.zeros((34, 34), bool)
    mask[rows, cols] = True
    assert not out[..., ~mask].any()                                                     # only the hot pixels fire
    counts = out[..., mask].astype(float).sum(axis=-2)                                   # (N, T, hot), both polarities
    expected = rate_hz * bin_us * 1e-6
    assert abs(counts.mean() - expected) < 4 * np.sqrt(expected / counts.size)          # Poisson sampling error
    on_share = out[:, :, 1][..., mask].sum() / counts.sum()
    assert abs(on_share - 0.5) < 4 * np.sqrt(0.25 / counts.sum())
    assert np.array_equal(hot_pixels(frames, 0.02, rate_hz, bin_us, 255, seed=5), out)  # same seed, same sensor
    assert not np.array_equal(hot_pixel_set(34, 34, 0.02, 6), hot)
    binary = hot_pixels(frames, 0.02, rate_hz, bin_us, clip=1, seed=5)
    fired = binary[..., mask].max(axis=-2).astype(float)                                  # binary: a bin fires or not
    p_fire = 1 - np.exp(-expected)                                                       # P(Poisson >= 1)
    assert binary.max() == 1 and abs(fired.mean() - p_fire) < 4 * np.sqrt(p_fire * (1 - p_fire) / fired.size)


def test_dead_pixels_never_fire_and_nothing_else_changes():
    frames = np.random.default_rng(0).integers(0, 2, (5, 8, 2, 34, 34)).astype(np.uint8)
    out = dead_pixels(frames, 0.25, seed=1)
    rows, cols = np.divmod(dead_pixel_set(34, 34, 0.25, 1), 34)
    assert rows.size == 289 and out.dtype == frames.dtype
    assert not out[..., rows, cols].any()
    mask = np.ones((34, 34), bool)
    mask[rows, cols] = False
    assert np.array_equal(out[..., mask], frames[..., mask])
    assert np.array_equal(dead_pixels(frames, 0.0, seed=1), frames)
    with pytest.raises(ValueError, match=r"frames must be \(\.\.\., T, 2, H, W\)"):
        dead_pixels(frames[:, :, :1], 0.1, seed=1)


def test_dead_channels_are_all_zero_and_the_rest_unchanged():
    spikes = np.random.default_rng(1).integers(1, 9, (6, 16, 64)).astype(np.uint8)
    out = dead_channels(spikes, 0.25, seed=2)
    dead = dead_channel_set(64, 0.25, 2)
    assert dead.size == 16 and out.shape == spikes.shape and out.dtype == np.uint8
    assert not out[..., dead].any()
    alive = np.setdiff1d(np.arange(64), dead)
    assert np.array_equal(out[..., alive], spikes[..., alive]) and out[..., alive].min() >= 1
    assert np.array_equal(dead_channels(spikes, 0.25, seed=2), out)
    with pytest.raises(ValueError, match="fraction must be a fraction in"):
        dead_channels(spikes, 1.5, seed=2)


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_mains_hum_sits_at_the_mains_frequency_and_its_harmonics_at_the_set_level(mains_hz):
    wave = speech_like()
    out = mains_hum(wave, FS, mains_hz, snr_db=-3.0, harmonics=5, rng=np.random.default_rng(0))
    hum = out - wave
    assert 10 * np.log10(np.mean(wave ** 2) / np.mean(hum ** 2)) == pytest.approx(-3.0, abs=1e-9)
    spectrum = np.abs(np.fft.rfft(hum)) / (wave.size / 2)            # 1 s clip: bin k is k Hz, amplitude units
    peaks = spectrum[[int(k * mains_hz) for k in range(1, 6)]]
    assert peaks / peaks[0] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5], rel=1e-6)   # amplitudes 1/k
    lines = np.zeros(spectrum.size, bool)
    lines[[int(k * mains_hz) for k in range(1, 6)]] = True
    assert np.sum(spectrum[~lines] ** 2) < 1e-12 * np.sum(spectrum[lines] ** 2)           # nothing else
    assert np.array_equal(mains_hum(wave, FS, mains_hz, -3.0, 5, np.random.default_rng(0)), out)
    high = hum_signal(FS, FS, 1500.0, 5, np.random.default_rng(0))                     # 4.5 and 6 kHz dropped
    assert np.abs(np.fft.rfft(high))[[1500, 3000]].min() > 1 and np.abs(np.fft.rfft(high))[3001:].max() < 1e-6
    with pytest.raises(ValueError, match="mains_hz must lie in"):
        mains_hum(wave, FS, 4000.0, 0.0, 3, np.random.default_rng(0))


def test_clipping_bounds_the_wave_at_the_fraction_of_its_peak():
    wave = speech_like()
    peak = np.max(np.abs(wave))
    out = clip_waveform(wave, 0.2)
    assert np.max(np.abs(out)) == 0.2 * peak and out.dtype == np.float64
    inside = np.abs(wave) <= 0.2 * peak
    assert np.array_equal(out[inside], wave[inside])
    assert np.array_equal(out[~inside], np.sign(wave[~inside]) * 0.2 * peak)
    assert np.array_equal(clip_waveform(wave, 1.0), wave)
    with pytest.raises(ValueError, match=r"fraction must lie in \(0, 1\]"):
        clip_waveform(wave, 0.0)


@pytest.mark.parametrize("snr_db", [0.0, -5.0])
def test_babble_is_added_at_the_exact_snr(snr_db):
    wave, others = speech_like(seed=0), [speech_like(0.7, s) for s in (1, 2, 3, 4, 5)]
    out = babble(wave, others, snr_db, talkers=4, rng=np.random.default_rng(9))
    assert 10 * np.log10(np.mean(wave ** 2) / np.mean((out - wave) ** 2)) == pytest.approx(snr_db, abs=1e-9)
    assert np.array_equal(babble(wave, others, snr_db, 4, np.random.default_rng(9)), out)
    assert not np.array_equal(babble(wave, others, snr_db, 4, np.random.default_rng(10)), out)


def test_waveform_failure_settings_are_checked():
    with pytest.raises(ValueError, match="expected one of"):
        WaveformFailure("crackle", {})
    with pytest.raises(ValueError, match=r"expected exactly \['mains_hz', 'snr_db', 'harmonics'\]"):
        WaveformFailure("hum", {"mains_hz": 50})


def fsdd_cfg(root, cache):
    return compose_config("data_app", ["data=fsdd_mnist", f"data.root={root}", "data.T=8", "data.mnist_test_per_class=3",
                                       "data.mnist_val_per_class=2", f"data.cache_dir={cache}"]).data


def test_failed_audio_is_the_failure_on_each_waveform_then_the_data_sets_encoding(fixture_data_root, tmp_path):
    cfg = fsdd_cfg(fixture_data_root, tmp_path)
    assert np.array_equal(fsdd_failed_audio(cfg, "test", None), build_dataset(cfg, "test").audio)
    clipped = WaveformFailure("clip", {"fraction": 0.05})
    out = fsdd_failed_audio(cfg, "test", clipped)
    name = fsdd_split_of(fsdd_files(fixture_data_root), "test", FsddSplit.from_config(cfg))[3][3]
    wave = read_wav(fixture_data_root / "fsdd" / "recordings" / name, sample_rate=8000)
    expected = _encode_clip(clip_waveform(wave, 0.05), 8000, CochleaParams(**dict(cfg.cochlea)), 8, 8)
    assert out.dtype == np.uint8 and np.array_equal(out[3], expected)
    hum = WaveformFailure("hum", {"mains_hz": 50.0, "snr_db": 0.0, "harmonics": 5})
    first = fsdd_failed_audio(cfg, "test", hum, seed=1)
    assert np.array_equal(fsdd_failed_audio(cfg, "test", hum, seed=1), first)        # cached, deterministic
    assert not np.array_equal(first, fsdd_failed_audio(cfg, "test", None))
