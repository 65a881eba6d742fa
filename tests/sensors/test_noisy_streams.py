"""Degraded sensor streams for the robustness benchmark (bench/robustness.py): fsdd_mnist's audio re-encoded
from waveforms with white noise at an exact SNR, DVS streams with extra background activity, and the FSDD
speakers the leave-one-speaker-out study iterates over. Real fixture recordings (tests/data)."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from sensors.audio_augment import add_noise, white_noise
from sensors.audio_io import read_wav
from sensors.cochlea import CochleaParams
from sensors.dvs_emulator import add_background_events
from sensors.datasets import (_encode_clip, build_dataset, dvs_bin_us, fsdd_files, fsdd_noisy_audio, fsdd_speakers, fsdd_split,
                         noisy_vision)
from tests.support.configs import compose_config


def fsdd_cfg(root, cache, *extra):
    return compose_config("data_app", ["data=fsdd_mnist", f"data.root={root}", "data.T=8", "data.mnist_test_per_class=3",
                                       "data.mnist_val_per_class=2",
                                       f"data.cache_dir={cache}", *extra]).data


def test_fsdd_speakers_come_from_the_file_names(fixture_data_root):
    assert fsdd_speakers(fixture_data_root) == ["george", "lucas", "nicolas"]


@pytest.mark.parametrize("kind", ["official", "speaker"])
def test_clean_reencoding_equals_the_data_sets_audio(fixture_data_root, tmp_path, kind):
    cfg = fsdd_cfg(fixture_data_root, tmp_path, f"data.split={kind}")
    test = build_dataset(cfg, "test")
    assert np.array_equal(fsdd_noisy_audio(cfg, "test", None), test.audio)     # same clips, order and encoding


def test_noisy_audio_is_the_waveform_plus_white_noise_at_the_exact_snr(fixture_data_root, tmp_path):
    cfg = fsdd_cfg(fixture_data_root, tmp_path)
    noisy = fsdd_noisy_audio(cfg, "test", 0.0, seed=3)
    clean = fsdd_noisy_audio(cfg, "test", None)
    assert noisy.shape == clean.shape and noisy.dtype == np.uint8 and noisy.max() <= 8
    assert not np.array_equal(noisy, clean)
    name = fsdd_split(fsdd_files(fixture_data_root), "test", "official", [])[4][3]
    wave = read_wav(fixture_data_root / "fsdd" / "recordings" / name, sample_rate=8000)
    noise = white_noise(wave.size, np.random.default_rng([3, zlib.crc32(name.encode())]))
    mixed = add_noise(wave, noise, 0.0)
    snr = 10 * np.log10(np.mean(wave ** 2) / np.mean((mixed - wave) ** 2))
    assert snr == pytest.approx(0.0, abs=1e-5)
    expected = _encode_clip(mixed, 8000, CochleaParams(**dict(cfg.cochlea)), 8, 8)
    assert np.array_equal(noisy[4], expected)
    assert np.array_equal(fsdd_noisy_audio(cfg, "test", 0.0, seed=3), noisy)        # cached, deterministic
    assert not np.array_equal(fsdd_noisy_audio(cfg, "test", 0.0, seed=4), noisy)    # another seed, other noise
    louder = fsdd_noisy_audio(cfg, "test", -10.0, seed=3)
    # more noise spreads activity over more channels: the mean count of the quietest half of the channels rises
    quiet = lambda x: np.sort(x.astype(float).mean(axis=(0, 1)))[:32].mean()  # noqa: E731
    assert quiet(louder) > quiet(noisy) > quiet(clean)
    with pytest.raises(ValueError, match="snr_db"):
        fsdd_noisy_audio(cfg, "test", float("nan"))


def test_background_events_are_poisson_per_pixel_with_the_on_share():
    frames = np.zeros((40, 16, 2, 34, 34), np.uint8)
    out = add_background_events(frames, rate_hz=100.0, bin_us=20_000, on_fraction=0.9, clip=255, rng=np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == frames.shape
    on, off = out[:, :, 1].astype(float), out[:, :, 0].astype(float)   # mean per pixel and bin: 2 events, 90 % ON
    assert on.mean() == pytest.approx(1.8, rel=0.01) and off.mean() == pytest.approx(0.2, rel=0.03)
    assert on.var() == pytest.approx(1.8, rel=0.03)                      # Poisson
    binary = add_background_events(frames, 100.0, 20_000, 0.9, 1, np.random.default_rng(0))
    assert binary.max() == 1 and binary[:, :, 1].mean() == pytest.approx(1 - np.exp(-1.8), rel=0.01)
    ones = np.ones_like(frames)
    assert np.array_equal(add_background_events(ones, 100.0, 20_000, 0.9, 1, np.random.default_rng(0)), ones)  # clipped
    assert np.array_equal(add_background_events(ones, 0.0, 20_000, 0.9, 1, np.random.default_rng(0)), ones)
    for bad in ({"rate_hz": -1.0}, {"bin_us": 0.0}, {"on_fraction": 1.5}, {"clip": 0}):
        args = {"rate_hz": 1.0, "bin_us": 10.0, "on_fraction": 0.5, "clip": 1} | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            add_background_events(frames, rng=np.random.default_rng(0), **args)


def test_noisy_vision_adds_a_multiple_of_the_emulators_background_rate(fixture_data_root, tmp_path):
    cfg = fsdd_cfg(fixture_data_root, tmp_path)
    assert dvs_bin_us(cfg) == pytest.approx(300_000 / 8)                # 3 saccades of 100 ms over T = 8
    zeros = np.zeros((200, 8, 2, 34, 34), np.uint8)
    lam = 10 * 0.38 * 300_000 / 8 * 1e-6                                 # events per pixel and bin at 10x
    out = noisy_vision(cfg, zeros, 10.0)
    assert out[:, :, 1].mean() == pytest.approx(1 - np.exp(-0.9 * lam), rel=0.02)
    assert out[:, :, 0].mean() == pytest.approx(1 - np.exp(-0.1 * lam), rel=0.05)
    test = build_dataset(cfg, "test")
    assert np.array_equal(noisy_vision(cfg, test.vision, 0.0), test.vision)
    more = noisy_vision(cfg, test.vision, 10.0)
    assert (more >= test.vision).all() and more.max() == 1 and more.sum() > test.vision.sum()
    with pytest.raises(ValueError, match="multiplier"):
        noisy_vision(cfg, test.vision, -1.0)
