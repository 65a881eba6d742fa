"""Sensor failures never seen in training (out of distribution): pure, seeded numpy functions, each applied at
the level where the failure happens.

Training saw (edge_taaf/corrupt.py, sensors/audio_augment.py): a silent sensor (all zeros), floods of 0.5-8x a
sample's own activity, time shifts, and white / pink / babble noise at 5-30 dB SNR, gain, speed, VTLP and
reverberation. None of the failures below is among them:

On the binned DVS spikes (..., T, 2, H, W) (channel 1 = ON, 0 = OFF):
    hot_pixels(frames, fraction, rate_hz, bin_us, clip, seed)   a fixed set of pixels firing at rate_hz whatever
                                                                 the scene
    dead_pixels(frames, fraction, seed)                          a fixed set of pixels that never fire
On the cochlea's spikes (..., T, C):
    dead_channels(spikes, fraction, seed)                        a fixed set of channels silent
On the waveform (N,) at fs Hz, BEFORE the cochlea:
    mains_hum(wave, fs, mains_hz, snr_db, harmonics, rng)        50 / 60 Hz and its harmonics (amplitude 1/k)
    clip_waveform(wave, fraction)                                hard clipping at fraction x the clip's peak
    babble(wave, others, snr_db, talkers, rng)                   babble at an SNR (0, -5 dB: below training's 5)
The DVS background with the statistics of real recordings: sensors/dvs_background.py.

Tonic-style (tonic.functional): every function returns a new array and changes nothing it is given; randomness
enters only through the seed (the pixel or channel set: one seed is one faulty device) or a numpy Generator the
caller seeds (per clip). :func:`fsdd_failed_audio` re-encodes fsdd_mnist's clips with a waveform failure through
the cochlea, cached under every parameter (sensors/cache.py).
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sensors.audio_augment import add_noise, babble_noise
from sensors.audio_io import read_wav
from sensors.cache import load_or_build
from sensors.data_options import parse_data_config, step_key
from sensors.datasets import CODE_VERSION, _encode_clip, fsdd_files, fsdd_split_of
from sensors.paths import FETCH_HINT, data_root, require_files
from sensors.splits import check_split

OOD_CODE_VERSION = "ood-1"   # bump when a failure below changes what it produces
# seed streams: the pixel / channel sets of one seed are drawn from default_rng([seed, STREAM])
_HOT, _DEAD, _CHANNELS = 0, 1, 2


def _check_fraction(name: str, value: float) -> float:
    if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
    return float(value)


def _check_frames(name: str, frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim < 4 or frames.shape[-3] != 2:
        raise ValueError(f"{name}: frames must be (..., T, 2, H, W) DVS spike counts, got shape {frames.shape}")
    return frames


def chosen_set(size: int, fraction: float, seed: int, stream: int) -> np.ndarray:
    """round(fraction x size) distinct indices of range(size), sorted, drawn from default_rng([seed, stream])."""
    count = int(round(_check_fraction("fraction", fraction) * size))
    return np.sort(np.random.default_rng([int(seed), stream]).choice(size, count, replace=False))


def hot_pixel_set(height: int, width: int, fraction: float, seed: int) -> np.ndarray:
    """Flat indices (row * width + col) of the hot pixels of :func:`hot_pixels` for this seed."""
    return chosen_set(height * width, fraction, seed, _HOT)


def dead_pixel_set(height: int, width: int, fraction: float, seed: int) -> np.ndarray:
    """Flat indices (row * width + col) of the dead pixels of :func:`dead_pixels` for this seed."""
    return chosen_set(height * width, fraction, seed, _DEAD)


def dead_channel_set(n_channels: int, fraction: float, seed: int) -> np.ndarray:
    """Indices of the silent channels of :func:`dead_channels` for this seed."""
    return chosen_set(n_channels, fraction, seed, _CHANNELS)


def hot_pixels(frames: np.ndarray, fraction: float, rate_hz: float, bin_us: float, clip: int, seed: int,
               on_fraction: float = 0.5) -> np.ndarray:
    """Binned DVS frames (..., T, 2, H, W) with round(fraction x H x W) hot pixels (:func:`hot_pixel_set`, the
    same pixels in every sample: one seed is one sensor) firing whatever the scene: each, in each bin of
    ``bin_us`` microseconds, adds Poisson(rate_hz x bin_us / 1e6) events, each ON with probability
    ``on_fraction``, drawn from default_rng([seed, 3]); the sum is clipped at ``clip``. Same dtype as frames."""
    frames = _check_frames("hot_pixels", frames)
    for name, value, ok in (("rate_hz", rate_hz, rate_hz >= 0), ("bin_us", bin_us, bin_us > 0), ("clip", clip, clip >= 1)):
        if not (math.isfinite(value) and ok):
            raise ValueError(f"hot_pixels: {name}={value!r} is out of range")
    on_fraction = _check_fraction("hot_pixels: on_fraction", on_fraction)
    height, width = frames.shape[-2:]
    flat = hot_pixel_set(height, width, fraction, seed)
    rows, cols = np.divmod(flat, width)
    rng = np.random.default_rng([int(seed), 3])
    lead = frames.shape[:-3]
    total = rng.poisson(rate_hz * bin_us * 1e-6, lead + (flat.size,))
    on = rng.binomial(total, on_fraction)
    out = frames.astype(np.int64)
    out[..., 1, rows, cols] += on
    out[..., 0, rows, cols] += total - on
    return np.minimum(out, clip).astype(frames.dtype)


def dead_pixels(frames: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Binned DVS frames (..., T, 2, H, W) with round(fraction x H x W) pixels (:func:`dead_pixel_set`, the same
    in every sample) stuck silent: both polarities zero at every step. Same dtype as frames."""
    frames = _check_frames("dead_pixels", frames)
    height, width = frames.shape[-2:]
    rows, cols = np.divmod(dead_pixel_set(height, width, fraction, seed), width)
    out = frames.copy()
    out[..., rows, cols] = 0
    return out


def dead_channels(spikes: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Cochlea spikes (..., T, C) with round(fraction x C) channels (:func:`dead_channel_set`, the same in every
    sample) silent at every step. Same dtype as spikes."""
    spikes = np.asarray(spikes)
    if spikes.ndim < 2:
        raise ValueError(f"dead_channels: spikes must be (..., T, C) channel spike counts, got shape {spikes.shape}")
    out = spikes.copy()
    out[..., dead_channel_set(spikes.shape[-1], fraction, seed)] = 0
    return out


def hum_signal(n: int, fs: float, mains_hz: float, harmonics: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) float64 mains hum: sum over k = 1..harmonics of sin(2 pi k mains_hz t + phase_k) / k, harmonics at or
    above fs / 2 left out, phases uniform in [0, 2 pi) from ``rng``."""
    if not (math.isfinite(mains_hz) and 0 < mains_hz < fs / 2):
        raise ValueError(f"mains_hum: mains_hz must lie in (0, fs / 2 = {fs / 2:g} Hz), got {mains_hz!r}")
    if isinstance(harmonics, bool) or not isinstance(harmonics, (int, np.integer)) or harmonics < 1:
        raise ValueError(f"mains_hum: harmonics must be an integer >= 1, got {harmonics!r}")
    t = np.arange(n) / fs
    phases = rng.uniform(0.0, 2 * np.pi, int(harmonics))
    hum = np.zeros(n)
    for k in range(1, int(harmonics) + 1):
        if k * mains_hz < fs / 2:
            hum += np.sin(2 * np.pi * k * mains_hz * t + phases[k - 1]) / k
    return hum


def mains_hum(wave: np.ndarray, fs: float, mains_hz: float, snr_db: float, harmonics: int,
              rng: np.random.Generator) -> np.ndarray:
    """``wave`` (N,) plus :func:`hum_signal` scaled so that 10 log10(mean(wave^2) / mean(hum^2)) = snr_db over
    the whole clip (sensors.audio_augment.add_noise): a microphone picking up 50 Hz or 60 Hz mains."""
    wave = np.asarray(wave, dtype=np.float64)
    if not math.isfinite(snr_db):
        raise ValueError(f"mains_hum: snr_db must be a finite number of dB, got {snr_db!r}")
    return add_noise(wave, hum_signal(wave.size, fs, mains_hz, harmonics, rng), snr_db)


def clip_waveform(wave: np.ndarray, fraction: float) -> np.ndarray:
    """``wave`` (N,) float64 hard-clipped to [-fraction x peak, fraction x peak], peak = max |wave| (an input
    stage overdriven by fraction^-1). fraction in (0, 1]; 1 leaves the wave unchanged."""
    if not (math.isfinite(fraction) and 0.0 < fraction <= 1.0):
        raise ValueError(f"clip_waveform: fraction must lie in (0, 1], got {fraction!r}")
    wave = np.asarray(wave, dtype=np.float64)
    level = fraction * float(np.max(np.abs(wave))) if wave.size else 0.0
    return np.clip(wave, -level, level)


def babble(wave: np.ndarray, others: Sequence[np.ndarray], snr_db: float, talkers: int,
           rng: np.random.Generator) -> np.ndarray:
    """``wave`` (N,) plus babble of ``talkers`` clips of ``others`` (sensors.audio_augment.babble_noise) at
    exactly ``snr_db`` dB over the whole clip; the unseen levels are those below training's 5 dB."""
    if not math.isfinite(snr_db):
        raise ValueError(f"babble: snr_db must be a finite number of dB, got {snr_db!r}")
    wave = np.asarray(wave, dtype=np.float64)
    return add_noise(wave, babble_noise(wave.size, others, talkers, rng), snr_db)


@dataclass(frozen=True)
class WaveformFailure:
    """One waveform failure and its settings: kind "hum" (mains_hz, snr_db, harmonics), "clip" (fraction) or
    "babble" (snr_db, talkers). ``apply`` runs it on one clip."""

    kind: str
    settings: dict = field(default_factory=dict)

    KINDS = {"hum": ("mains_hz", "snr_db", "harmonics"), "clip": ("fraction",), "babble": ("snr_db", "talkers")}

    def __post_init__(self):
        if self.kind not in self.KINDS:
            raise ValueError(f"WaveformFailure.kind: {self.kind!r}, expected one of {sorted(self.KINDS)}")
        if set(self.settings) != set(self.KINDS[self.kind]):
            raise ValueError(f"WaveformFailure({self.kind!r}).settings: {sorted(self.settings)}, expected exactly "
                             f"{list(self.KINDS[self.kind])}")

    def as_dict(self) -> dict:
        return asdict(self)

    def apply(self, wave: np.ndarray, fs: float, rng: np.random.Generator, others: Sequence[np.ndarray]) -> np.ndarray:
        s = self.settings
        if self.kind == "hum":
            return mains_hum(wave, fs, float(s["mains_hz"]), float(s["snr_db"]), int(s["harmonics"]), rng)
        if self.kind == "clip":
            return clip_waveform(wave, float(s["fraction"]))
        return babble(wave, others, float(s["snr_db"]), int(s["talkers"]), rng)


def fsdd_failed_audio(cfg, split: str, failure: WaveformFailure | None, seed: int = 0) -> np.ndarray:
    """fsdd_mnist's ``split`` audio (N, T, C) uint8 with ``failure`` applied to each waveform before the cochlea,
    then encoded as build_fsdd_mnist encodes (``None``: the clean clips, equal to its audio). The clips and their
    order are sensors.datasets.fsdd_noisy_audio's; clip ``name`` draws from default_rng([seed, crc32(name)]); babble
    is made of the split's other clips. Cached under the clips, the encoding settings, the failure and the seed."""
    check_split(split)
    parsed = parse_data_config(cfg)
    t_bins, clip_audio, cochlea = parsed.t_bins, parsed.clip_audio, parsed.cochlea
    fs = int(cfg["sample_rate"])
    root = data_root(cfg["root"])
    require_files(root, ["fsdd/recordings"], "fsdd_mnist", FETCH_HINT)
    names = [f[3] for f in fsdd_split_of(fsdd_files(root), split, parsed.split)]
    key = {"dataset": "fsdd_mnist_failed_audio", "split": split, "files": names,
           "sizes": [(root / "fsdd" / "recordings" / n).stat().st_size for n in names], "T": t_bins,
           "clip_audio": clip_audio, "sample_rate": fs, "cochlea": cochlea.cache_fields(), **step_key(parsed),
           "failure": None if failure is None else failure.as_dict(), "seed": int(seed),
           "code": [CODE_VERSION, OOD_CODE_VERSION]}

    def build() -> dict:
        waves = [read_wav(root / "fsdd" / "recordings" / n, sample_rate=fs) for n in names]
        audio = np.zeros((len(names), t_bins, cochlea.n_channels), np.uint8)
        label = "clean" if failure is None else failure.kind
        for i, name in enumerate(tqdm(names, desc=f"cochlea {split} ({label})", unit="clip", leave=False)):
            wave = waves[i]
            if failure is not None:
                rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
                wave = failure.apply(wave, fs, rng, waves[:i] + waves[i + 1:])
            audio[i] = _encode_clip(wave, fs, cochlea, t_bins, clip_audio, step_us=parsed.step_us)
        return {"audio": audio}

    return load_or_build(Path(cfg["cache_dir"]).expanduser(), key, build)["audio"]
