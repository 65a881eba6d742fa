"""Read mono WAV files as float32 waveforms in [-1, 1] at a target sample rate.

Decoding is scipy.io.wavfile's; a small RIFF chunk walk on top catches what scipy accepts silently
(a data chunk cut mid-frame, or a header that promises more data than the file holds).
"""
from __future__ import annotations

import os
import struct
import warnings
from math import gcd
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

#: Integer PCM widths (bytes -> full scale) and float widths accepted. scipy returns 24-bit PCM as
#: int32 with the sample in the top three bytes (s * 2^8), so int32 full scale reads it exactly as
#: s / 2^23 (tests/sensors/test_audio_io.py writes 24-bit files with the wave module and checks).
_PCM_FULL_SCALE = {np.dtype("uint8"): 128.0, np.dtype("int16"): 32768.0, np.dtype("int32"): 2147483648.0}
_FLOAT_DTYPES = (np.dtype("float32"), np.dtype("float64"))


class AudioFileError(ValueError):
    """An audio file cannot be used; the message names the file and the problem."""


def read_wav(path: str | os.PathLike, sample_rate: int = 8000) -> np.ndarray:
    """Read a mono WAV file as a float32 waveform of shape (N,) in [-1, 1] sampled at ``sample_rate`` Hz.

    Accepted encodings: 8-bit unsigned PCM, 16-, 24- and 32-bit signed PCM (scaled by their full scale,
    so -32768 -> -1.0), 32- and 64-bit IEEE float (kept as is; samples must be finite and in [-1, 1]).
    Multi-channel files are refused rather than mixed down, so a stereo file is never silently
    changed; mix it to mono first. A file at another rate is resampled with
    ``scipy.signal.resample_poly`` (polyphase FIR, Kaiser window beta 5, up/down = rates divided by
    their gcd); the result has ceil(N * up / down) samples and is clipped to [-1, 1] (the
    anti-aliasing filter may overshoot by a few percent on full-scale transients).

    Raises:
        FileNotFoundError: ``path`` is not an existing file.
        AudioFileError: empty file, not a WAV, truncated (header promises more data than present, or the
            data chunk ends mid-frame), more than one channel, no samples, an unsupported encoding,
            NaN / inf samples, float samples outside [-1, 1], or a bad ``sample_rate``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such WAV file")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise AudioFileError(f"{path}: sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    raw = path.read_bytes()
    if not raw:
        raise AudioFileError(f"{path}: file is empty (0 bytes); expected a RIFF/WAVE file")
    _check_riff_structure(raw, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rate, data = wavfile.read(path)
        except (ValueError, struct.error, EOFError) as exc:
            raise AudioFileError(f"{path}: not a readable WAV file ({exc})") from exc
    for w in caught:  # scipy only warns when the data ends early
        if "EOF" in str(w.message):
            raise AudioFileError(f"{path}: truncated WAV file ({w.message})")
    if data.ndim != 1:
        raise AudioFileError(f"{path}: found {data.shape[1]} channels; a mono (1-channel) WAV file is expected")
    if data.size == 0:
        raise AudioFileError(f"{path}: WAV file holds no audio samples (valid header, 0 frames)")
    wave = _to_unit_float(data, path)
    if rate != sample_rate:
        g = gcd(int(rate), int(sample_rate))
        wave = np.clip(resample_poly(wave.astype(np.float64), sample_rate // g, int(rate) // g), -1.0, 1.0)
    return np.ascontiguousarray(wave, dtype=np.float32)


def _to_unit_float(data: np.ndarray, path: Path) -> np.ndarray:
    """Scale decoded samples to float in [-1, 1]; refuse non-finite or out-of-range float samples."""
    if data.dtype in _PCM_FULL_SCALE:
        offset = 128.0 if data.dtype == np.uint8 else 0.0  # 8-bit PCM is unsigned, centred on 128
        return (data.astype(np.float64) - offset) / _PCM_FULL_SCALE[data.dtype]
    if data.dtype not in _FLOAT_DTYPES:
        raise AudioFileError(
            f"{path}: unsupported sample type {data.dtype}; expected 8/16/24/32-bit PCM or 32/64-bit float"
        )
    bad = np.flatnonzero(~np.isfinite(data))
    if bad.size:
        raise AudioFileError(
            f"{path}: {bad.size} NaN/inf samples (first at sample {int(bad[0])}); audio must be finite"
        )
    peak = float(np.abs(data).max())
    if peak > 1.0:
        raise AudioFileError(f"{path}: float samples must lie in [-1, 1]; found a peak of {peak:.4g}")
    return data.astype(np.float64)


def _check_riff_structure(raw: bytes, path: Path) -> None:
    """Walk the RIFF chunks of a little-endian WAV and refuse truncated or mid-frame data chunks.

    RIFX / RF64 files are left to scipy, which still reports early EOF as a warning (handled above).
    """
    if raw[:4] != b"RIFF":
        return
    if len(raw) < 12 or raw[8:12] != b"WAVE":
        raise AudioFileError(f"{path}: RIFF file is not of form WAVE (header {raw[:12]!r})")
    pos, block_align = 12, None
    while pos + 8 <= len(raw):
        chunk_id, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        body = pos + 8
        if chunk_id == b"fmt " and body + 14 <= len(raw):
            block_align = struct.unpack("<H", raw[body + 12 : body + 14])[0]
        if chunk_id == b"data":
            available = len(raw) - body
            if size > available:
                raise AudioFileError(
                    f"{path}: truncated WAV file: header declares {size} data bytes, file holds {available}"
                )
            if block_align and size % block_align:
                raise AudioFileError(
                    f"{path}: truncated WAV file: data chunk of {size} bytes ends mid-frame "
                    f"(frames are {block_align} bytes)"
                )
            return
        pos = body + size + (size & 1)
    raise AudioFileError(f"{path}: truncated WAV file: no 'data' chunk found in {len(raw)} bytes")
