"""Audio augmentation for unseen speakers: pure numpy / scipy functions on a waveform (N,) sampled at fs Hz.

Tonic-style: every transform is a pure function of its inputs; randomness enters only through a
numpy Generator that the caller seeds, so one (seed, clip) always gives the same result.

    speed_perturb(wave, factor)                 resample: N -> about N / factor samples, pitch x factor
    vtlp_warp(freqs, alpha, boundary, nyq)      Jaitly & Hinton's piecewise-linear frequency warp
    vtlp_centres(centres, alpha, boundary, nyq) the filterbank centres that see the warped spectrum
    apply_gain(wave, gain_db)                   wave * 10^(gain_db / 20)
    white_noise / pink_noise / babble_noise     noise signals (N,)
    add_noise(wave, noise, snr_db)              noise scaled to a signal-to-noise ratio in dB
    synthetic_rir(fs, rt60_s, drr_db, rng)      exponentially decaying room impulse response
    reverberate(wave, rir)                      convolution, cut to the input's length

AudioAugmentParams (the ``augment.audio`` config section), draw_audio() (the random choices for one
clip, an AudioDraw) and augment_waveform() (speed, reverberation, noise, gain, in that order) tie them
together. Vocal tract length perturbation is not a waveform transform here: it moves the cochlea's
centre frequencies (``vtlp_centres`` -> ``cochlea_encode(..., centre_freqs=...)``), as VTLP warps the
filterbank in Jaitly & Hinton (2013), so it is exact and costs nothing.

The settings are checked with sensors/options.py's checkers; settings_from_mapping (unknown keys) is
shared with sensors/image_augment.py.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy.signal import fftconvolve, firwin, resample_poly

from sensors.options import OptionError, check_number, check_pair, check_probability, show

NOISE_KINDS = ("white", "pink", "babble")
#: speed factors are approximated by the nearest fraction p / q with q <= this (the resampling filter
#: grows with max(p, q): an exact factor like 8297/8000 would cost tens of ms per clip)
SPEED_MAX_DENOMINATOR = 100
#: the resampling low-pass: Kaiser-windowed sinc, 64 zero crossings per side, beta 8 (about 80 dB
#: stop-band), cut-off at 0.96 of the lower Nyquist frequency: a speed-up by 1.1 keeps 3.3 kHz of an
#: 8 kHz clip and leaves what would fold back from above 4 kHz at least 40 dB down.
_ZERO_CROSSINGS, _KAISER_BETA, _CUTOFF = 64, 8.0, 0.96


# ---- transforms ---------------------------------------------------------------------------------

def speed_ratio(factor: float) -> Fraction:
    """The speed factor :func:`speed_perturb` applies: the fraction p / q nearest ``factor`` with
    q <= SPEED_MAX_DENOMINATOR (1.1 = 11/10 exactly; within 1e-4 of any factor in 0.5..2)."""
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"speed_perturb: factor must be a finite number > 0, got {factor!r}")
    return Fraction(factor).limit_denominator(SPEED_MAX_DENOMINATOR)


@functools.lru_cache(maxsize=256)
def _resampling_filter(up: int, down: int) -> np.ndarray:
    rate = max(up, down)
    return firwin(2 * _ZERO_CROSSINGS * rate + 1, _CUTOFF / rate, window=("kaiser", _KAISER_BETA))


def speed_perturb(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play ``wave`` (N,) ``factor`` times faster: (ceil(N q / p),) float64 samples at the same rate,
    p / q = speed_ratio(factor), i.e. about N / factor samples.

    Like sox's ``speed`` and Kaldi's speed perturbation (Ko et al., Interspeech 2015): duration / factor,
    every frequency (pitch and formants) x factor. The waveform is resampled by q / p with
    scipy.signal.resample_poly and a Kaiser-windowed sinc low-pass (see _CUTOFF), which removes what a
    speed-up would push above fs / 2. factor = 1 returns a copy.
    """
    ratio = speed_ratio(factor)
    x = np.asarray(wave, dtype=np.float64)
    if ratio == 1 or x.size == 0:
        return x.copy()
    up, down = ratio.denominator, ratio.numerator
    return resample_poly(x, up, down, window=_resampling_filter(up, down).copy())


def vtlp_warp(freqs, alpha: float, boundary_hz: float, nyquist_hz: float) -> np.ndarray:
    """Jaitly & Hinton (2013, "Vocal Tract Length Perturbation (VTLP) improves speech recognition",
    eq. 1): f -> alpha f below f0 = boundary_hz min(alpha, 1) / alpha, then the straight line from
    (f0, alpha f0) to (nyquist, nyquist), so 0..nyquist maps onto itself, monotone. Hz in, Hz out."""
    _check_vtlp(alpha, boundary_hz, nyquist_hz)
    f0 = boundary_hz * min(alpha, 1.0) / alpha
    return np.interp(np.asarray(freqs, dtype=np.float64), [0.0, f0, nyquist_hz], [0.0, alpha * f0, nyquist_hz])


def vtlp_centres(centres, alpha: float, boundary_hz: float, nyquist_hz: float) -> np.ndarray:
    """Centre frequencies (C,) in Hz that make a filterbank see the spectrum warped by ``vtlp_warp``.

    VTLP replaces the spectrum S(f) by S(W^-1(f)); a filter at fc reading the warped spectrum reads
    the original one at W^-1(fc). The warp is piecewise linear, so its inverse is the same polyline
    with the axes swapped (exact). alpha > 1 moves every centre down: the speaker sounds as if his
    vocal tract were shorter (formants alpha times higher).
    """
    _check_vtlp(alpha, boundary_hz, nyquist_hz)
    f0 = boundary_hz * min(alpha, 1.0) / alpha
    return np.interp(np.asarray(centres, dtype=np.float64), [0.0, alpha * f0, nyquist_hz], [0.0, f0, nyquist_hz])


def _check_vtlp(alpha, boundary_hz, nyquist_hz) -> None:
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"vtlp: alpha must be a finite number > 0, got {alpha!r}")
    if not 0 < boundary_hz < nyquist_hz:
        raise ValueError(f"vtlp: boundary_hz must lie in (0, nyquist = {nyquist_hz} Hz), got {boundary_hz!r}")


def apply_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    """``wave`` (N,) times 10^(gain_db / 20), float64. No clipping: waveforms here are floats."""
    return np.asarray(wave, dtype=np.float64) * 10.0 ** (gain_db / 20.0)


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) float64 Gaussian white noise, unit variance."""
    return rng.standard_normal(n)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) float64 pink (1/f power spectrum) noise, unit RMS: white noise shaped by 1/sqrt(f) in the
    frequency domain (rfft, DC bin zeroed, irfft)."""
    if n < 2:
        return np.zeros(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    k = np.arange(spectrum.size, dtype=np.float64)
    spectrum[0] = 0.0
    spectrum[1:] /= np.sqrt(k[1:])
    noise = np.fft.irfft(spectrum, n)
    return noise / np.sqrt(np.mean(noise ** 2))


def babble_noise(n: int, sources: Sequence[np.ndarray], talkers: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) float64 babble: ``talkers`` clips drawn from ``sources`` (without replacement when there
    are enough), each rotated by a random offset, tiled or cut to n samples, scaled to unit RMS and
    summed (a silent clip adds nothing). The caller passes clips of its own split only (train clips
    for train augmentation), without the clip being augmented."""
    if not len(sources):
        raise ValueError("babble_noise: no source clip to make babble from")
    picks = rng.choice(len(sources), size=talkers, replace=talkers > len(sources))
    out = np.zeros(n)
    for i in picks:
        src = np.asarray(sources[int(i)], dtype=np.float64)
        if src.size == 0:
            continue
        src = np.tile(np.roll(src, int(rng.integers(src.size))), -(-n // src.size))[:n]
        rms = np.sqrt(np.mean(src ** 2))
        if rms > 0:
            out += src / rms
    return out


def add_noise(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wave`` (N,) plus ``noise`` (N,) scaled so that 10 log10(mean(wave^2) / mean(scaled^2)) = snr_db.

    Powers are means over the whole clip (silences included). A silent wave or silent noise is
    returned unchanged (no SNR is defined)."""
    x = np.asarray(wave, dtype=np.float64)
    v = np.asarray(noise, dtype=np.float64)
    if v.shape != x.shape:
        raise ValueError(f"add_noise: noise shape {v.shape} differs from the wave's {x.shape}")
    p_signal, p_noise = float(np.mean(x ** 2)) if x.size else 0.0, float(np.mean(v ** 2)) if v.size else 0.0
    if p_signal == 0.0 or p_noise == 0.0:
        return x.copy()
    return x + v * math.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))


def synthetic_rir(fs: float, rt60_s: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """A room impulse response (L,) float64, L = ceil(rt60_s fs) + 1 samples: a direct path h[0] = 1
    and a diffuse tail of Gaussian noise whose amplitude decays as 10^(-3 n / (rt60_s fs)), so its
    energy falls 60 dB in rt60_s seconds (Sabine's RT60; Schroeder's backward integration of h[1:]^2
    measures it back). The tail is scaled so that the direct-to-reverberant energy ratio
    1 / sum(h[1:]^2) is drr_db dB (the usual statistical RIR model, e.g. Lehmann & Johansson 2008)."""
    if not (math.isfinite(rt60_s) and rt60_s > 0):
        raise ValueError(f"synthetic_rir: rt60_s must be a finite number > 0 seconds, got {rt60_s!r}")
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError(f"synthetic_rir: fs must be a positive sample rate in Hz, got {fs!r}")
    n_tail = max(int(math.ceil(rt60_s * fs)), 1)
    n = np.arange(1, n_tail + 1, dtype=np.float64)
    tail = rng.standard_normal(n_tail) * 10.0 ** (-3.0 * n / (rt60_s * fs))
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / float(np.sum(tail ** 2)))
    return np.concatenate([[1.0], tail])


def reverberate(wave: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``wave`` (N,) convolved with ``rir`` (L,), the first N samples (float64): the clip keeps its
    length and timing (the spikes are binned over the clip's duration); the reverberant tail that
    would ring past the end is dropped."""
    x = np.asarray(wave, dtype=np.float64)
    if x.size == 0:
        return x.copy()
    return fftconvolve(x, np.asarray(rir, dtype=np.float64))[: x.size]


# ---- settings and one clip's draw ---------------------------------------------------------------

@dataclass(frozen=True)
class AudioAugmentParams:
    """Settings of :func:`draw_audio` (config section ``augment.audio``). Ranges are [min, max] and
    drawn uniformly; each transform is applied with its probability ``*_prob`` (0 turns it off).

    speed: speed factor range (> 0; 1 = unchanged; 1.1 = 10 % faster and higher).
    vtlp: VTLP warp factor alpha range (> 0; 1 = unchanged); vtlp_boundary_hz: F_hi of the warp,
        in Hz, below the Nyquist frequency.
    gain_db: gain range in dB. The default cochlea peak-normalises each clip (cochlea.normalize),
        which undoes a gain; it matters with normalize = false.
    snr_db: signal-to-noise ratio range in dB; noise_kinds: drawn uniformly per clip from
        white | pink | babble; babble_talkers: clips of the same split summed into babble (>= 1).
    rt60_s: reverberation time range in seconds (> 0); drr_db: direct-to-reverberant ratio range (dB).
    """

    speed: tuple = (0.9, 1.1)
    speed_prob: float = 1.0
    vtlp: tuple = (0.9, 1.1)
    vtlp_prob: float = 1.0
    vtlp_boundary_hz: float = 3200.0
    gain_db: tuple = (-6.0, 6.0)
    gain_prob: float = 1.0
    snr_db: tuple = (5.0, 30.0)
    noise_prob: float = 0.5
    noise_kinds: tuple = NOISE_KINDS
    babble_talkers: int = 4
    rt60_s: tuple = (0.1, 0.6)
    drr_db: tuple = (0.0, 10.0)
    reverb_prob: float = 0.3

    def __post_init__(self) -> None:
        checked = {name: check_pair(name, getattr(self, name), low, low_open=True)
                   for name, low in (("speed", 0.0), ("vtlp", 0.0), ("rt60_s", 0.0))}
        checked |= {name: check_pair(name, getattr(self, name)) for name in ("gain_db", "snr_db", "drr_db")}
        checked |= {name: check_probability(name, getattr(self, name))
                    for name in ("speed_prob", "vtlp_prob", "gain_prob", "noise_prob", "reverb_prob")}
        checked["vtlp_boundary_hz"] = check_number("vtlp_boundary_hz", self.vtlp_boundary_hz, 0.0, low_open=True)
        kinds = self.noise_kinds
        if isinstance(kinds, str) or not isinstance(kinds, Sequence) or not kinds or not set(kinds) <= set(NOISE_KINDS):
            raise OptionError(f"noise_kinds={show(kinds)}; expected a non-empty list of {list(NOISE_KINDS)}")
        checked["noise_kinds"] = tuple(kinds)
        checked["babble_talkers"] = check_number("babble_talkers", self.babble_talkers, 1, integer=True)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_mapping(cls, section: Mapping | None) -> "AudioAugmentParams":
        """Settings from a config section; ValueError naming an unknown or bad option."""
        return settings_from_mapping(cls, section)

    def check_sample_rate(self, fs: float) -> None:
        """ValueError unless the VTLP boundary lies below the Nyquist frequency of ``fs`` Hz."""
        if not self.vtlp_boundary_hz < fs / 2:
            raise OptionError(f"vtlp_boundary_hz={self.vtlp_boundary_hz!r}; expected below the Nyquist frequency "
                              f"{fs / 2} Hz of sample_rate {fs}")


@dataclass(frozen=True)
class AudioDraw:
    """The random choices for one clip; None where a transform is not applied."""

    speed: float | None
    vtlp_alpha: float | None
    gain_db: float | None
    noise_kind: str | None
    snr_db: float | None
    rt60_s: float | None
    drr_db: float | None


def draw_audio(params: AudioAugmentParams, rng: np.random.Generator) -> AudioDraw:
    """One clip's choices. Every value is drawn whether or not its transform is applied, so changing
    one probability or range leaves the other choices as they were."""
    def pick(prob, value):
        return value if rng.random() < prob else None
    speed = pick(params.speed_prob, rng.uniform(*params.speed))
    alpha = pick(params.vtlp_prob, rng.uniform(*params.vtlp))
    gain = pick(params.gain_prob, rng.uniform(*params.gain_db))
    kind = params.noise_kinds[int(rng.integers(len(params.noise_kinds)))]
    snr = rng.uniform(*params.snr_db)
    use_noise = rng.random() < params.noise_prob
    rt60, drr = rng.uniform(*params.rt60_s), rng.uniform(*params.drr_db)
    use_reverb = rng.random() < params.reverb_prob
    return AudioDraw(speed, alpha, gain, kind if use_noise else None, snr if use_noise else None,
                     rt60 if use_reverb else None, drr if use_reverb else None)


def augment_waveform(wave: np.ndarray, fs: float, draw: AudioDraw, rng: np.random.Generator,
                     babble_sources: Sequence[np.ndarray] = (), babble_talkers: int = 4) -> np.ndarray:
    """Apply ``draw`` to ``wave`` (N,) at ``fs`` Hz: speed, reverberation, noise, gain -> (M,) float64,
    M = ceil(N q / p) with p / q = speed_ratio(draw.speed) (N without speed). ``rng`` draws the noise
    and the impulse response.
    VTLP (``draw.vtlp_alpha``) is left to the cochlea (``vtlp_centres``)."""
    x = np.asarray(wave, dtype=np.float64)
    if draw.speed is not None:
        x = speed_perturb(x, draw.speed)
    if draw.rt60_s is not None:
        x = reverberate(x, synthetic_rir(fs, draw.rt60_s, draw.drr_db, rng))
    if draw.noise_kind is not None:
        if draw.noise_kind == "white":
            noise = white_noise(x.size, rng)
        elif draw.noise_kind == "pink":
            noise = pink_noise(x.size, rng)
        else:
            noise = babble_noise(x.size, babble_sources, babble_talkers, rng)
        x = add_noise(x, noise, draw.snr_db)
    if draw.gain_db is not None:
        x = apply_gain(x, draw.gain_db)
    return x


# ---- settings checks (shared with sensors/image_augment.py) --------------------------------------

def settings_from_mapping(cls, section: Mapping | None):
    """``cls(**section)`` for a frozen settings dataclass; ValueError naming an unknown option
    (the dataclass's own checks name a bad value). None or an empty section gives the defaults."""
    section = dict(section or {})
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(section) - set(names))
    if unknown:
        raise OptionError(f"{unknown[0]} is unknown; expected one of {names}")
    return cls(**section)


__all__ = ["AudioAugmentParams", "AudioDraw", "NOISE_KINDS", "add_noise", "apply_gain", "augment_waveform",
           "babble_noise", "draw_audio",
           "pink_noise", "reverberate", "settings_from_mapping", "speed_perturb", "speed_ratio", "synthetic_rir", "vtlp_centres",
           "vtlp_warp", "white_noise"]
