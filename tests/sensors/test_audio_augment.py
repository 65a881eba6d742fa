"""Audio augmentation (sensors/audio_augment.py): each transform measured back, seeded reproducibility,
settings checks."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sensors.audio_augment import (
    AudioAugmentParams,
    AudioDraw,
    add_noise,
    apply_gain,
    augment_waveform,
    babble_noise,
    draw_audio,
    pink_noise,
    reverberate,
    speed_perturb,
    speed_ratio,
    synthetic_rir,
    vtlp_centres,
    vtlp_warp,
    white_noise,
)
from sensors.audio_io import read_wav
from sensors.cochlea import CochleaParams, centre_frequencies, cochlea_encode

FS = 8000
NONE = AudioDraw(None, None, None, None, None, None, None)


def _tone(freq, seconds=0.5, amp=0.5):
    t = np.arange(int(FS * seconds)) / FS
    return amp * np.sin(2 * np.pi * freq * t)


def _peak_hz(wave):
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return np.argmax(spectrum) * FS / wave.size


def _snr_db(clean, noisy):
    return 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))


def test_identity_settings_leave_the_wave_unchanged():
    wave = _tone(440) + 0.01 * np.random.default_rng(0).standard_normal(4000)
    assert np.array_equal(speed_perturb(wave, 1.0), wave)
    assert np.array_equal(apply_gain(wave, 0.0), wave)
    assert np.array_equal(reverberate(wave, np.array([1.0])), wave)
    assert np.array_equal(augment_waveform(wave, FS, NONE, np.random.default_rng(0)), wave)
    off = AudioAugmentParams(speed_prob=0, vtlp_prob=0, gain_prob=0, noise_prob=0, reverb_prob=0)
    assert draw_audio(off, np.random.default_rng(3)) == NONE
    # degenerate ranges at the identity: the transforms run and change nothing
    unit = AudioAugmentParams(speed=(1, 1), gain_db=(0, 0), noise_prob=0, reverb_prob=0, vtlp=(1, 1))
    draw = draw_audio(unit, np.random.default_rng(3))
    assert (draw.speed, draw.gain_db, draw.vtlp_alpha) == (1.0, 0.0, 1.0)
    assert np.array_equal(augment_waveform(wave, FS, draw, np.random.default_rng(0)), wave)


@pytest.mark.parametrize("factor", [1.1, 0.9, 1.05])
def test_speed_changes_duration_by_one_over_factor_and_frequency_by_factor(factor):
    wave = _tone(500, seconds=1.0)
    fast = speed_perturb(wave, factor)
    assert fast.size == math.ceil(wave.size / factor)  # 1.1 = 11/10 exactly: 8000 -> 7273 samples
    assert abs(_peak_hz(fast) - 500 * factor) < 2.0  # FFT bin 1 Hz (plus the odd length's rounding)
    assert abs(np.sqrt(np.mean(fast[100:-100] ** 2)) - 0.5 / np.sqrt(2)) < 0.01  # level kept


def test_speed_factor_off_the_grid_is_approximated_closely():
    wave = np.random.default_rng(1).standard_normal(8000)
    ratio = speed_ratio(1.0371)
    assert ratio.denominator <= 100 and abs(float(ratio) - 1.0371) < 1e-4
    out = speed_perturb(wave, 1.0371)
    assert out.size == math.ceil(8000 * ratio.denominator / ratio.numerator) and abs(out.size - 8000 / 1.0371) < 2
    with pytest.raises(ValueError, match="factor"):
        speed_perturb(wave, 0.0)


def test_speed_up_does_not_alias_content_above_nyquist():
    def level_db(freq):
        out = speed_perturb(_tone(freq, seconds=1.0), 1.1)
        return 20 * np.log10(np.sqrt(np.mean(out[200:-200] ** 2)) / (0.5 / np.sqrt(2)))
    assert level_db(3800) < -40  # 3800 Hz would land at 4180 Hz > fs/2 and fold back
    assert abs(level_db(3000)) < 0.1  # passes: lands at 3300 Hz


def test_vtlp_warp_is_jaitly_hinton_piecewise_linear():
    f = np.linspace(0, 4000, 801)
    assert np.allclose(vtlp_warp(f, 1.0, 3200, 4000), f)
    for alpha in (0.9, 1.1):
        w = vtlp_warp(f, alpha, 3200, 4000)
        f0 = 3200 * min(alpha, 1) / alpha
        assert np.allclose(w[f <= f0], alpha * f[f <= f0])
        assert w[0] == 0 and w[-1] == 4000 and np.all(np.diff(w) > 0)
        # the centres are the inverse warp: warping them back gives the original centres
        assert np.allclose(vtlp_warp(vtlp_centres(f, alpha, 3200, 4000), alpha, 3200, 4000), f)
    with pytest.raises(ValueError, match="boundary_hz"):
        vtlp_warp(f, 1.1, 4000, 4000)
    with pytest.raises(ValueError, match="alpha"):
        vtlp_centres(f, -1.0, 3200, 4000)


def test_vtlp_in_the_cochlea_moves_formants_up_by_alpha():
    params = CochleaParams()
    fc = centre_frequencies(params.n_channels, params.f_min, params.f_max, params.spacing)
    tone = _tone(1000)
    plain = np.bincount(cochlea_encode(tone, FS, params)["x"], minlength=64)
    warped = np.bincount(cochlea_encode(tone, FS, params, vtlp_centres(fc, 1.1, 3200, 4000))["x"], minlength=64)
    # the 1 kHz tone now peaks in the channel that listens at 1.1 kHz in the unwarped cochlea
    assert abs(fc[np.argmax(plain)] - 1000) < 40
    assert abs(fc[np.argmax(warped)] - 1100) < 40


def test_gain_scales_rms_by_db():
    wave = _tone(300)
    assert np.isclose(np.sqrt(np.mean(apply_gain(wave, 6.0) ** 2)) / np.sqrt(np.mean(wave ** 2)), 10 ** 0.3)


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
@pytest.mark.parametrize("snr", [0.0, 12.5, 30.0])
def test_noise_is_added_at_the_requested_snr(kind, snr):
    rng = np.random.default_rng(4)
    wave = _tone(440) * np.hanning(4000)
    sources = [_tone(f, 0.3) for f in (200, 700, 1300)]
    noise = {"white": lambda: white_noise(4000, rng), "pink": lambda: pink_noise(4000, rng),
             "babble": lambda: babble_noise(4000, sources, 2, rng)}[kind]()
    assert abs(_snr_db(wave, add_noise(wave, noise, snr)) - snr) < 0.1


def test_pink_noise_falls_by_10_db_per_decade():
    psd = np.mean([np.abs(np.fft.rfft(pink_noise(8192, np.random.default_rng(s)))) ** 2 for s in range(20)], axis=0)
    k = np.arange(10, 4000)
    slope = np.polyfit(np.log10(k), 10 * np.log10(psd[k]), 1)[0]
    assert -11 < slope < -9
    assert np.isclose(np.sqrt(np.mean(pink_noise(8192, np.random.default_rng(0)) ** 2)), 1.0)


def test_noise_edge_cases():
    silent = np.zeros(100)
    assert np.array_equal(add_noise(silent, np.ones(100), 10.0), silent)
    with pytest.raises(ValueError, match="shape"):
        add_noise(np.ones(100), np.ones(99), 10.0)
    with pytest.raises(ValueError, match="no source"):
        babble_noise(100, [], 2, np.random.default_rng(0))


def _schroeder_rt60(h, fs):
    """RT60 from Schroeder's backward integration, T30 line fit between -5 and -35 dB, extrapolated to 60 dB."""
    edc = np.cumsum((h ** 2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    sel = (edc_db <= -5) & (edc_db >= -35)
    slope = np.polyfit(np.arange(h.size)[sel] / fs, edc_db[sel], 1)[0]
    return -60.0 / slope


@pytest.mark.parametrize("rt60", [0.1, 0.3, 0.6])
def test_rir_decays_60_db_in_rt60_and_has_the_drr(rt60):
    rir = synthetic_rir(FS, rt60, 5.0, np.random.default_rng(7))
    assert rir.size == math.ceil(rt60 * FS) + 1 and rir[0] == 1.0
    assert abs(_schroeder_rt60(rir[1:], FS) / rt60 - 1) < 0.05
    assert np.isclose(10 * np.log10(1.0 / np.sum(rir[1:] ** 2)), 5.0)


def test_reverberation_keeps_length_and_smears_energy_later():
    click = np.zeros(4000)
    click[100] = 1.0
    wet = reverberate(click, synthetic_rir(FS, 0.3, 0.0, np.random.default_rng(0)))
    assert wet.size == 4000 and wet[100] == pytest.approx(1.0) and np.allclose(wet[:100], 0)
    assert np.sum(wet[101:] ** 2) == pytest.approx(1.0, rel=0.01)  # DRR 0 dB: as much energy after as in the click


def test_draws_are_reproducible_and_independent_of_other_probabilities():
    params = AudioAugmentParams(noise_prob=1.0, reverb_prob=1.0)
    a, b = draw_audio(params, np.random.default_rng([0, 1, 2])), draw_audio(params, np.random.default_rng([0, 1, 2]))
    assert a == b and a != draw_audio(params, np.random.default_rng([0, 1, 3]))
    assert 0.9 <= a.speed <= 1.1 and 0.1 <= a.rt60_s <= 0.6 and a.noise_kind in ("white", "pink", "babble")
    no_noise = draw_audio(AudioAugmentParams(noise_prob=0.0, reverb_prob=1.0), np.random.default_rng([0, 1, 2]))
    assert no_noise.noise_kind is None and (no_noise.speed, no_noise.rt60_s) == (a.speed, a.rt60_s)
    wave = _tone(440)
    out1 = augment_waveform(wave, FS, a, np.random.default_rng(5), [wave])
    out2 = augment_waveform(wave, FS, a, np.random.default_rng(5), [wave])
    ratio = speed_ratio(a.speed)
    assert np.array_equal(out1, out2) and out1.size == math.ceil(wave.size * ratio.denominator / ratio.numerator)


def test_real_clip_augmented_still_encodes(fixture_data_root):
    wave = read_wav(fixture_data_root / "fsdd" / "recordings" / "3_lucas_5.wav")
    rng = np.random.default_rng(0)
    draw = draw_audio(AudioAugmentParams(noise_prob=1.0, reverb_prob=1.0, noise_kinds=("pink",)), rng)
    out = augment_waveform(wave, FS, draw, rng)
    assert np.isfinite(out).all() and abs(out.size - wave.size / draw.speed) < 2
    assert cochlea_encode(out, FS).size > 500


@pytest.mark.parametrize("change, message", [
    ({"speed": (1.2, 0.8)}, r"speed=\[1.2, 0.8\]; expected min <= max"),
    ({"speed": (0.0, 1.1)}, r"speed=\[0.0, 1.1\]; expected values > 0"),
    ({"vtlp": [-1, 1]}, r"vtlp=\[-1, 1\]; expected values > 0"),
    ({"rt60_s": (0.5,)}, r"rt60_s=\[0.5\]; expected \[min, max\]"),
    ({"snr_db": (float("nan"), 3)}, r"snr_db=.*two finite numbers"),
    ({"noise_prob": -0.1}, r"noise_prob=-0.1; expected a probability in \[0, 1\]"),
    ({"reverb_prob": 1.5}, r"reverb_prob=1.5; expected a probability"),
    ({"noise_kinds": ("white", "brown")}, r"noise_kinds=\['white', 'brown'\]"),
    ({"noise_kinds": ()}, r"noise_kinds"),
    ({"babble_talkers": 0}, r"babble_talkers=0"),
    ({"vtlp_boundary_hz": -5.0}, r"vtlp_boundary_hz=-5.0; expected a number > 0"),
])
def test_bad_settings_name_the_option(change, message):
    with pytest.raises(ValueError, match=message):
        AudioAugmentParams(**change)


def test_settings_from_a_config_section():
    params = AudioAugmentParams.from_mapping({"speed": [0.95, 1.05], "noise_kinds": ["white"]})
    assert params.speed == (0.95, 1.05) and params.noise_kinds == ("white",) and params.vtlp == (0.9, 1.1)
    assert AudioAugmentParams.from_mapping(None) == AudioAugmentParams()
    with pytest.raises(ValueError, match="sped is unknown"):
        AudioAugmentParams.from_mapping({"sped": [1, 1]})
    with pytest.raises(ValueError, match="vtlp_boundary_hz=4000.0; expected below the Nyquist"):
        AudioAugmentParams(vtlp_boundary_hz=4000.0).check_sample_rate(8000)
