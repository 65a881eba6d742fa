"""DVS background with the statistics of the real recordings (sensors/dvs_background.py): the committed JSON is
what the recordings in tests/data/events measure, and generated background reproduces it within sampling error."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sensors.dvs_background import (COMMAND, STATS_PATH, load_stats, measure_recording, real_background,
                                    recording_name, summarise)
from tests.support.data_gating import FIXTURE_ROOT

RECORDINGS = ("sample_nmnist.bin", "sample.aedat4")


@pytest.mark.parametrize("file", RECORDINGS)
def test_the_committed_json_is_what_the_recordings_measure(file):
    doc = json.loads(STATS_PATH.read_text())
    assert doc["command"] == COMMAND
    stored = doc["recordings"][recording_name(file)]
    assert stored["source"] == f"tests/data/events/{file}"
    assert {"source": stored["source"], **measure_recording(FIXTURE_ROOT / "events" / file)} == stored


def test_the_recordings_have_a_hot_pixel_tail_and_mostly_quiet_pixels():
    aedat = load_stats("sample_aedat4")
    assert 0 < aedat["hot_fraction"] < 0.05 and aedat["hot_counts"][-1] > 100 * aedat["cold_rate_hz"] * aedat["duration_s"]
    assert aedat["cold_rate_cv"] > 1                           # spread beyond Poisson: pixels differ in rate
    with pytest.raises(KeyError, match="no recording 'sample'"):
        load_stats("sample")


@pytest.mark.parametrize("name", ["sample_nmnist", "sample_aedat4"])
def test_generated_background_has_the_measured_statistics(name):
    stats = load_stats(name)
    width, height = stats["sensor_size"]
    duration_us = stats["duration_s"] * 1e6
    sensors = 8 if name == "sample_nmnist" else 2                # independent sensors (seeds), one bin each
    frames = np.zeros((1, 2, height, width), np.uint16)
    made = [real_background(frames, stats, duration_us, clip=60_000, seed=s)[0] for s in range(sensors)]
    on = np.stack([m[1] for m in made]).astype(np.int64)
    off = np.stack([m[0] for m in made]).astype(np.int64)
    got = summarise(on, off, stats["duration_s"])
    counts = (on + off).ravel()
    rate_err = counts.std() / np.sqrt(counts.size) / stats["duration_s"]
    assert abs(got["rate_hz"] - stats["rate_hz"]) < 4 * rate_err
    p = stats["on_fraction"]
    assert abs(got["on_fraction"] - p) < 4 * np.sqrt(p * (1 - p) / got["events"])
    # the gamma law's tail and the Poisson noise move some pixels across the hot threshold, so the hot / cold
    # split is reproduced in kind (a tail of the measured hot rates on a gamma bulk), not to sampling error
    if name == "sample_aedat4":
        assert 0.5 * stats["hot_fraction"] < got["hot_fraction"] < 2 * stats["hot_fraction"]
        assert max(got["hot_counts"]) <= max(stats["hot_counts"]) * 1.5 and max(got["hot_counts"]) > 100


def test_background_is_added_on_top_reproducibly_and_clipped():
    stats = load_stats("sample_aedat4")
    frames = np.ones((3, 16, 2, 34, 34), np.uint8)
    out = real_background(frames, stats, 18_750.0, clip=1, seed=0, scale=50.0)
    assert out.dtype == np.uint8 and out.shape == frames.shape and np.array_equal(out, frames)   # clipped at 1
    zeros = np.zeros_like(frames)
    a = real_background(zeros, stats, 18_750.0, clip=8, seed=0, scale=50.0)
    assert a.max() <= 8 and a.sum() > 0 and np.array_equal(a, real_background(zeros, stats, 18_750.0, 8, 0, 50.0))
    rates = a.sum(axis=(0, 1, 2))                               # one seed = one sensor: hot pixels in every sample
    per_sample = a.sum(axis=(1, 2))
    hottest = np.unravel_index(np.argmax(rates), rates.shape)
    assert (per_sample[(slice(None), *hottest)] > 0).all()
    with pytest.raises(ValueError, match=r"frames must be \(\.\.\., T, 2, H, W\)"):
        real_background(zeros[:, :, :1], stats, 18_750.0, 8, 0)
