"""read_wav: encodings, resampling, and one clear error per kind of bad file."""
from __future__ import annotations

import re
import struct

import numpy as np
import pytest
from scipy.io import wavfile

from sensors.audio_io import AudioFileError, read_wav


def _write(path, rate, data):
    wavfile.write(path, rate, data)
    return path


def _tone(rate, freq=440.0, seconds=1.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)


def _raises(path, *words):
    """pytest.raises for AudioFileError whose message names the file and every word."""
    pattern = "(?s)" + re.escape(str(path)) + "".join(f"(?=.*{re.escape(w)})" for w in words)
    return pytest.raises(AudioFileError, match=pattern)


@pytest.mark.parametrize(
    "data, expected",
    [
        (np.array([0, 128, 255], np.uint8), [-1.0, 0.0, 127 / 128]),
        (np.array([-32768, 0, 16384], np.int16), [-1.0, 0.0, 0.5]),
        (np.array([-(2**31), 0, 2**30], np.int32), [-1.0, 0.0, 0.5]),
        (np.array([-1.0, 0.0, 0.25], np.float32), [-1.0, 0.0, 0.25]),
    ],
    ids=["pcm8", "pcm16", "pcm32", "float32"],
)
def test_encodings_scale_to_unit_range(tmp_path, data, expected):
    wave = read_wav(_write(tmp_path / "a.wav", 8000, data))
    assert wave.dtype == np.float32 and wave.shape == (3,)
    np.testing.assert_array_equal(wave, np.array(expected, np.float32))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.wav"))):
        read_wav(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with _raises(path, "empty"):
        read_wav(path)


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(b"this is certainly not a RIFF file" * 4)
    with _raises(path, "not a readable WAV"):
        read_wav(path)


def test_truncated_data(tmp_path):
    raw = _write(tmp_path / "full.wav", 8000, _tone(8000)).read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(raw[: len(raw) // 2])
    with _raises(path, "truncated", "declares 16000 data bytes"):
        read_wav(path)


def test_data_chunk_ends_mid_frame(tmp_path):
    raw = bytearray(_write(tmp_path / "full.wav", 8000, _tone(8000, seconds=0.1)).read_bytes())
    at = raw.find(b"data")
    size = struct.unpack("<I", raw[at + 4 : at + 8])[0] - 1  # odd byte count for 2-byte frames
    body = raw[: at + 4] + struct.pack("<I", size) + raw[at + 8 : at + 8 + size]
    body[4:8] = struct.pack("<I", len(body) - 8)
    path = tmp_path / "midframe.wav"
    path.write_bytes(bytes(body))
    with _raises(path, "mid-frame"):
        read_wav(path)


def test_stereo_refused(tmp_path):
    path = _write(tmp_path / "stereo.wav", 8000, np.zeros((100, 2), np.int16))
    with _raises(path, "2 channels", "mono"):
        read_wav(path)


def test_zero_frames(tmp_path):
    path = _write(tmp_path / "none.wav", 8000, np.zeros(0, np.int16))
    with _raises(path, "no audio samples"):
        read_wav(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_samples(tmp_path, bad):
    path = _write(tmp_path / "nonfinite.wav", 8000, np.array([0.0, 0.1, bad, 0.2], np.float32))
    with _raises(path, "NaN/inf", "sample 2"):
        read_wav(path)


def test_float_out_of_range(tmp_path):
    path = _write(tmp_path / "hot.wav", 8000, np.array([0.0, 1.5], np.float32))
    with _raises(path, "[-1, 1]", "1.5"):
        read_wav(path)


def test_bad_target_rate(tmp_path):
    path = _write(tmp_path / "a.wav", 8000, _tone(8000, seconds=0.1))
    with _raises(path, "sample_rate"):
        read_wav(path, sample_rate=0)


def test_16khz_resampled_keeps_pitch(tmp_path):
    wave = read_wav(_write(tmp_path / "hi.wav", 16000, _tone(16000, 440.0)), sample_rate=8000)
    assert wave.shape == (8000,) and wave.dtype == np.float32
    assert np.abs(wave).max() <= 1.0
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    assert np.argmax(spectrum) * 8000 / wave.size == pytest.approx(440.0, abs=1.0)
    np.testing.assert_allclose(np.sqrt(np.mean(wave[1000:-1000] ** 2)), 0.5 / np.sqrt(2), rtol=0.01)


def _check_real_clips(files):
    for path in files:
        rate, ref = wavfile.read(path)
        assert rate == 8000 and ref.dtype == np.int16 and ref.ndim == 1 and ref.size > 1000, path
        wave = read_wav(path)
        assert wave.dtype == np.float32, path
        np.testing.assert_array_equal(wave, ref.astype(np.float32) / 32768, err_msg=str(path))


def test_real_fsdd_clips_read_exactly(fixture_data_root):
    files = sorted((fixture_data_root / "fsdd" / "recordings").glob("*.wav"))
    assert len(files) == 60
    _check_real_clips(files)


@pytest.mark.full_data
def test_all_real_fsdd_clips_read_exactly(full_data_root):
    files = sorted((full_data_root / "fsdd" / "recordings").glob("*.wav"))
    assert len(files) == 3000
    _check_real_clips(files)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_24bit_pcm_reads_exactly(tmp_path, rate):
    """24-bit PCM written by the standard library's wave module: sample s reads as s / 2^23 exactly
    (extremes, small values and a tone), and at 16 kHz it is resampled like the same float waveform."""
    import wave

    tone = np.round(np.sin(2 * np.pi * 440 * np.arange(rate // 10) / rate) * (2**23 - 1) * 0.7).astype(np.int64)
    samples = np.r_[-(2**23), 2**23 - 1, 0, 1, -1, 255, 256, -257, 65536, tone]
    path = tmp_path / "pcm24.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(3)
        f.setframerate(rate)
        f.writeframes(b"".join(int(s).to_bytes(3, "little", signed=True) for s in samples))
    expected = samples / 2.0**23
    wave_out = read_wav(path, sample_rate=rate)
    assert wave_out.dtype == np.float32
    np.testing.assert_array_equal(wave_out, expected.astype(np.float32))   # s / 2^23 is exact in float32
    if rate != 8000:
        resampled = read_wav(path, sample_rate=8000)
        reference = read_wav(_write(tmp_path / "f64.wav", rate, expected), sample_rate=8000)   # 64-bit float file
        np.testing.assert_array_equal(resampled, reference)
