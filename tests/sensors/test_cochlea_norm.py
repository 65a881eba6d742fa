"""The cochlea's per-channel level normalisation (CochleaParams.channel_norm) and centre-frequency override."""
from __future__ import annotations

import numpy as np
import pytest

from sensors.cochlea import CochleaParams, centre_frequencies, channel_gains, cochlea_encode

FS = 8000
NORM = CochleaParams(channel_norm="per_channel")


def _tilted(seconds=0.5):
    """A loud 400 Hz tone and a 2 kHz tone 30 dB quieter (a strongly tilted spectrum)."""
    t = np.arange(int(FS * seconds)) / FS
    ramp = np.minimum(1.0, t / 0.02)
    return ramp * (0.5 * np.sin(2 * np.pi * 400 * t) + 0.5 * 10 ** (-30 / 20) * np.sin(2 * np.pi * 2000 * t))


def _channel_counts(wave, params):
    return np.bincount(cochlea_encode(wave, FS, params)["x"], minlength=params.n_channels)


def _nearest(freq, params=NORM):
    return int(np.argmin(np.abs(centre_frequencies(params.n_channels, params.f_min, params.f_max) - freq)))


def test_default_is_off_and_keeps_the_cache_key_fields():
    default = CochleaParams()
    assert default.channel_norm == "none"
    fields = default.cache_fields()
    assert not {"channel_norm", "channel_level", "channel_floor_db"} & set(fields)
    assert fields == {k: v for k, v in vars(default).items() if not k.startswith("channel_")}
    assert NORM.cache_fields()["channel_norm"] == "per_channel" and "channel_level" in NORM.cache_fields()
    # the level does not matter (and is not keyed) while the normalisation is off
    assert CochleaParams(channel_level=0.5).cache_fields() == fields


def test_channel_gains_bring_every_channel_to_the_level_above_the_floor():
    rng = np.random.default_rng(0)
    levels = np.array([1.0, 0.1, 0.01, 1e-4])  # 0, -20, -40, -80 dB
    filtered = rng.standard_normal((4000, 4)) * levels
    gains = channel_gains(filtered, 0.02, -30.0)
    rms = np.sqrt(np.mean((filtered * gains) ** 2, axis=0))
    loudest = np.sqrt(np.mean(filtered[:, 0] ** 2))
    assert np.allclose(rms[:2], 0.02)
    # the -40 and -80 dB channels are lifted as if they sat 30 dB below the loudest, no further
    assert np.allclose(gains[2:], 0.02 / (loudest * 10 ** (-30 / 20)))
    assert np.array_equal(channel_gains(np.zeros((100, 3)), 0.02, -30.0), np.ones(3))


def test_per_channel_norm_equalises_a_tilted_spectrum():
    wave = _tilted()
    low, high = _nearest(400), _nearest(2000)
    plain, norm = _channel_counts(wave, CochleaParams()), _channel_counts(wave, NORM)
    # the power-law compression (exponent 0.25) already shrinks 30 dB to 7.5 dB of drive
    assert plain[high] / plain[low] < 0.5  # without: the quiet band fires at under half the rate
    assert 0.7 < norm[high] / norm[low] < 1.4  # with: both bands fire alike


def test_per_channel_norm_makes_level_irrelevant_without_peak_normalisation():
    t = np.arange(4000) / FS
    wave = np.sin(2 * np.pi * 700 * t) * np.hanning(t.size) * 0.5
    raw = CochleaParams(normalize=False)
    assert _channel_counts(wave, raw).sum() > 2 * _channel_counts(0.05 * wave, raw).sum()
    per = CochleaParams(normalize=False, channel_norm="per_channel")
    loud, quiet = _channel_counts(wave, per), _channel_counts(0.05 * wave, per)
    assert np.abs(loud - quiet).sum() <= 0.01 * loud.sum()  # equal up to float rounding at threshold crossings


def test_real_clip_event_count_stays_in_range(fixture_data_root):
    from sensors.audio_io import read_wav
    wave = read_wav(fixture_data_root / "fsdd" / "recordings" / "7_george_5.wav")
    plain, norm = cochlea_encode(wave, FS).size, cochlea_encode(wave, FS, NORM).size
    assert 0.5 < norm / plain < 2.0


def test_centre_frequency_override():
    wave = _tilted(0.2)
    fc = centre_frequencies(64, 100.0, 3800.0)
    assert np.array_equal(cochlea_encode(wave, FS, CochleaParams(), fc), cochlea_encode(wave, FS))
    with pytest.raises(ValueError, match=r"centre_freqs must have shape \(64,\)"):
        cochlea_encode(wave, FS, CochleaParams(), fc[:10])


@pytest.mark.parametrize("change, option", [({"channel_norm": "per_band"}, "channel_norm"),
                                            ({"channel_level": 0.0}, "channel_level"),
                                            ({"channel_level": "loud"}, "channel_level"),
                                            ({"channel_floor_db": 5.0}, "channel_floor_db")])
def test_bad_norm_options_name_the_option(change, option):
    with pytest.raises(ValueError, match=f"CochleaParams.{option}"):
        CochleaParams(**change)
