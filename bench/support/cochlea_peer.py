"""Like-for-like peer of ``sensors.cochlea.cochlea_encode`` for bench/encoders.py: numpy / scipy, no Numba.

A helper module, not a benchmark: bench/run_all.py runs only the scripts named in its BENCHES tuple.
(It is not in sensors/ on purpose: the package holds our encoders, not the peers we time them against.)

The SAME algorithm as ours, step for step, written as one would without Numba:
- peak normalisation of the waveform (numpy);
- 4th-order gammatone filterbank as four identical complex one-pole stages per channel,
  y[n] = g x[n] + a y[n-1], a = exp((-2 pi b + 2j pi fc) / fs), b = 1.019 (24.7 + 0.108 fc) Hz,
  g = 1 - |a|, output 2 Re(y): ``scipy.signal.lfilter`` (C loop over time) per channel and stage,
  complex128 (lfilter takes one coefficient set per call, so the 64 channels are a Python loop);
- half-wave rectification and compression over the whole (C, N) array (numpy);
- LIF v[n] = alpha v[n-1] + (1 - alpha) drive[n], alpha = exp(-1 / (fs tau)), spike and reset to 0
  when v >= threshold, then refractory: numpy vectorised over the channels, Python loop over time.
Centre frequencies and filter coefficients are re-derived here from the formulas documented in
sensors/cochlea.py (not imported), so checking the peer's events against ours also checks those.

Every floating-point operation is the one ours does, in the same order and precision (float64,
no fused multiply-add on either side), so the events are expected to be identical;
bench/encoders.py checks that on every clip it times and reports the result.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from sensors.events import AUDIO_DTYPE


def erb_centre_frequencies(n_channels: int, f_min: float, f_max: float, spacing: str) -> np.ndarray:
    """(C,) centre frequencies in Hz: equal steps on the ERB-rate scale 21.4 log10(1 + 0.00437 f), or log."""
    if spacing == "log":
        return np.geomspace(f_min, f_max, n_channels)
    lo, hi = 21.4 * np.log10(1.0 + 0.00437 * np.array([f_min, f_max]))
    return (10.0 ** (np.linspace(lo, hi, n_channels) / 21.4) - 1.0) / 0.00437


def gammatone_filterbank_scipy(wave: np.ndarray, fs: float, fc: np.ndarray) -> np.ndarray:
    """(N,) waveform at fs Hz -> (C, N) float64 gammatone outputs, four complex lfilter stages per channel."""
    bandwidth = 1.019 * (24.7 + 0.108 * fc)
    poles = np.exp((-2.0 * np.pi * bandwidth + 2j * np.pi * fc) / fs)
    gains = 1.0 - np.abs(poles)
    out = np.empty((fc.size, wave.size), dtype=np.float64)
    x = wave.astype(np.complex128)
    for c in range(fc.size):
        y = x
        for _ in range(4):
            y = lfilter([gains[c]], [1.0, -poles[c]], y)
        out[c] = 2.0 * y.real
    return out


def compress(filtered: np.ndarray, gain: float, compression: str, exponent: float) -> np.ndarray:
    """Half-wave rectify ``gain * filtered`` and compress: (.)^exponent (0.25 as sqrt(sqrt)) or log1p."""
    r = gain * filtered
    drive = np.where(r > 0.0, r, 0.0)
    if compression == "log":
        return np.log1p(drive, out=drive)
    if exponent == 0.25:
        return np.sqrt(np.sqrt(drive, out=drive), out=drive)
    return np.where(drive > 0.0, drive ** exponent, 0.0)


def lif_numpy(drive: np.ndarray, alpha: float, threshold: float, refractory: int) -> tuple[np.ndarray, np.ndarray]:
    """LIF over (N, C) time-major drive; numpy over channels, Python loop over the N samples.

    v = alpha v + (1 - alpha) drive; the second product is taken for all samples at once (the same
    float64 products as a per-step one). A channel that fired at sample i is refractory (held at 0)
    until sample i + refractory + 1, as in ours: its v is multiplied by 0 instead of 1 (exact), and
    threshold > 0 keeps it from firing. Six in-place numpy calls per sample, no allocation.
    Returns (sample index, channel) of each spike, sorted by (sample, channel).
    """
    n, n_ch = drive.shape
    leak_in = (1.0 - alpha) * drive
    v = np.zeros(n_ch)
    ready_at = np.zeros(n_ch, dtype=np.int64)  # first sample a channel integrates again
    live, fired = np.empty(n_ch, dtype=bool), np.empty(n_ch, dtype=bool)
    samples, channels = [], []
    for i in range(n):
        np.less_equal(ready_at, i, out=live)
        np.multiply(v, alpha, out=v)
        np.add(v, leak_in[i], out=v)
        np.multiply(v, live, out=v)
        np.greater_equal(v, threshold, out=fired)
        if fired.any():
            chans = np.flatnonzero(fired)
            v[chans] = 0.0
            ready_at[chans] = i + refractory + 1
            samples.append(np.full(chans.size, i, dtype=np.int64))
            channels.append(chans)
    if not samples:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(samples), np.concatenate(channels)


def cochlea_encode_numpy(wave: np.ndarray, fs: int, params) -> np.ndarray:
    """The peer of ``cochlea_encode(wave, fs, params)``: AUDIO_DTYPE events sorted by (t, x), p = 0.

    ``params`` is a sensors.cochlea.CochleaParams (only its fields are read); fs is an integer rate in Hz.
    """
    wave = np.asarray(wave, dtype=np.float64)
    peak = np.abs(wave).max() if wave.size else 0.0
    if params.normalize and peak > 0:
        wave = wave / peak
    fc = erb_centre_frequencies(params.n_channels, params.f_min, params.f_max, params.spacing)
    drive = compress(gammatone_filterbank_scipy(wave, fs, fc), params.gain, params.compression, params.exponent)
    idx, chan = lif_numpy(np.ascontiguousarray(drive.T), float(np.exp(-1.0 / (fs * params.tau))),
                          params.threshold, int(round(params.refractory * fs)))
    events = np.zeros(idx.size, dtype=AUDIO_DTYPE)
    events["t"], events["x"] = (idx * 1_000_000) // int(fs), chan
    return events
