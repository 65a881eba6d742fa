"""Like-for-like peer of ``sensors.cochlea.cochlea_encode`` for bench/encoders.py: numpy / scipy, no Numba.

A helper module, not a benchmark: bench/run_all.py runs only the scripts named in its BENCHES tuple.
(It is not in sensors/ on purpose: the package holds our encoders, not the peers we time them against.)

The SAME algorithm as ours, step for step, written as one would at one's best without Numba: every
recurrence over time runs inside scipy's C filters, never in a Python loop over samples.
- peak normalisation of the waveform (numpy);
- 4th-order gammatone filterbank as four identical complex one-pole stages per channel,
  y[n] = g x[n] + a y[n-1], a = exp((-2 pi b + 2j pi fc) / fs), b = 1.019 (24.7 + 0.108 fc) Hz,
  g = 1 - |a|, output 2 Re(y): one ``scipy.signal.sosfilt`` call per channel running the four stages as
  four complex128 second-order sections (sosfilt takes one coefficient set per call, so the 64 channels
  are a Python loop);
- half-wave rectification and compression over the whole (C, N) array (numpy);
- LIF v[n] = alpha v[n-1] + (1 - alpha) drive[n], alpha = exp(-1 / (fs tau)), spike and reset to 0
  when v >= threshold, then refractory: between spikes the membrane is a linear recurrence, so
  ``scipy.signal.lfilter`` runs it for every channel at once over a window of samples, each channel's
  window starting where that channel resumes (after its last spike's refractory period, from v = 0,
  or where its last window ended, from lfilter's final state); a channel's first threshold crossing in
  its window is its next spike. The Python loop runs once per window (about one per spike of the
  busiest channel), not once per sample.
Centre frequencies and filter coefficients are re-derived here from the formulas documented in
sensors/cochlea.py (not imported), so checking the peer's events against ours also checks those.

Every floating-point operation is the one ours does, in the same order and precision (float64,
and the filters' extra terms are exact: products with the zero coefficients, additions of zero
states), so the events are expected to be identical; bench/encoders.py checks that on every clip it
times and reports the result.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter, sosfilt

from sensors.events import AUDIO_DTYPE


def erb_centre_frequencies(n_channels: int, f_min: float, f_max: float, spacing: str) -> np.ndarray:
    """(C,) centre frequencies in Hz: equal steps on the ERB-rate scale 21.4 log10(1 + 0.00437 f), or log."""
    if spacing == "log":
        return np.geomspace(f_min, f_max, n_channels)
    lo, hi = 21.4 * np.log10(1.0 + 0.00437 * np.array([f_min, f_max]))
    return (10.0 ** (np.linspace(lo, hi, n_channels) / 21.4) - 1.0) / 0.00437


def gammatone_filterbank_scipy(wave: np.ndarray, fs: float, fc: np.ndarray) -> np.ndarray:
    """(N,) waveform at fs Hz -> (C, N) float64 gammatone outputs: per channel one sosfilt call, four complex sections."""
    bandwidth = 1.019 * (24.7 + 0.108 * fc)
    poles = np.exp((-2.0 * np.pi * bandwidth + 2j * np.pi * fc) / fs)
    gains = 1.0 - np.abs(poles)
    out = np.empty((fc.size, wave.size), dtype=np.float64)
    x = wave.astype(np.complex128)
    sos = np.zeros((4, 6), dtype=np.complex128)
    sos[:, 3] = 1.0
    for c in range(fc.size):
        sos[:, 0], sos[:, 4] = gains[c], -poles[c]   # y = g x + a y[-1] per section
        out[c] = 2.0 * sosfilt(sos, x).real
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


def lif_scipy(drive: np.ndarray, alpha: float, threshold: float, refractory: int,
              window: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """LIF over (N, C) time-major drive, every channel at once in lfilter windows (see the module docstring).

    v = alpha v + (1 - alpha) drive, i.e. lfilter([1], [1, -alpha]) of leak_in = (1 - alpha) drive: y[n] =
    leak_in[n] + alpha y[n-1], the same two float64 operations as ours. Each round gathers, for every
    channel still inside the clip, ``window`` samples of leak_in from where it resumes and filters them
    from its state; a channel that crosses threshold at sample i fires, and resumes at
    i + refractory + 1 from v = 0 (as ours: held at 0, then v = alpha 0 + leak_in); a channel that
    does not resumes after the window from lfilter's final state (alpha times its last v, the product
    ours takes next). Returns (sample index, channel) of each spike, sorted by (sample, channel).
    """
    n, n_ch = drive.shape
    leak_in = np.vstack([(1.0 - alpha) * drive, np.zeros((window, n_ch))])  # reads past the clip give 0
    resume = np.zeros(n_ch, dtype=np.int64)   # first sample each channel integrates next
    state = np.zeros(n_ch)                    # lfilter's state there: alpha * v of the sample before
    offsets = np.arange(window)[:, None]
    samples, channels = [], []
    while True:
        live = np.flatnonzero(resume < n)
        if live.size == 0:
            break
        rows = resume[live] + offsets                              # (window, live channels)
        v, final = lfilter([1.0], [1.0, -alpha], leak_in[rows, live], axis=0, zi=state[live][None, :])
        crossed = (v >= threshold) & (rows < n)
        fired = crossed.any(axis=0)
        at = resume[live[fired]] + crossed[:, fired].argmax(axis=0)
        samples.append(at)
        channels.append(live[fired])
        resume[live[fired]] = at + refractory + 1
        state[live[fired]] = 0.0
        resume[live[~fired]] += window
        state[live[~fired]] = final[0, ~fired]
    idx, chan = np.concatenate(samples), np.concatenate(channels)
    order = np.lexsort((chan, idx))
    return idx[order], chan[order]


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
    idx, chan = lif_scipy(np.ascontiguousarray(drive.T), float(np.exp(-1.0 / (fs * params.tau))),
                          params.threshold, int(round(params.refractory * fs)))
    events = np.zeros(idx.size, dtype=AUDIO_DTYPE)
    events["t"], events["x"] = (idx * 1_000_000) // int(fs), chan
    return events
