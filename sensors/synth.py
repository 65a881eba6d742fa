"""synth: procedurally generated paired event-camera + cochlea streams (SYNTHETIC data).

No files, no network. Ten classes. Per class, a fixed random pattern drawn from ``pattern_seed``:
  vision: three line segments on the 34x34 sensor; pattern pixels emit Poisson events (both
          polarities) during the pattern's 150 ms active period;
  audio:  three consecutive "formant" segments, each a band of 3 adjacent channels of the 64
          active for a third of the period.
Knobs per modality (``ModalityKnobs``):
  informative: probability that a sample carries its class pattern at all (else only noise),
  rate_hz:     event rate of an active pattern pixel / channel,
  noise_hz:    background event rate of every pixel / channel over the whole window.
Misalignment: the audio onset is the vision onset plus a uniform jitter in [-jitter_us, jitter_us].
Every sample is generated from (seed, split, index) alone, so the data set is deterministic, and the
train, val and test splits (data.n_train, data.n_val, data.n_test samples) are drawn from their own seeds.
Streams use Tonic dtypes (sensors.events), t in microseconds, window [0, window_us).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from sensors.events import AUDIO_DTYPE, CAMERA_DTYPE, make_events, validate_events

N_CLASSES = 10
SENSOR = (34, 34, 2)  # Tonic (W, H, P)
SPLIT_IDS = {"train": 1, "test": 2, "val": 3}  # seeds each split's samples: the three never share one


@dataclass(frozen=True)
class ModalityKnobs:
    informative: float = 0.95
    rate_hz: float = 200.0
    noise_hz: float = 2.0

    def check(self, name: str) -> None:
        if not 0.0 <= self.informative <= 1.0:
            raise ValueError(f"data.{name}.informative must lie in [0, 1], got {self.informative}")
        for key in ("rate_hz", "noise_hz"):
            if getattr(self, key) < 0:
                raise ValueError(f"data.{name}.{key} must be >= 0, got {getattr(self, key)}")


@dataclass(frozen=True)
class SynthParams:
    vision: ModalityKnobs = field(default_factory=ModalityKnobs)
    audio: ModalityKnobs = field(default_factory=ModalityKnobs)
    n_channels: int = 64
    window_us: int = 300_000
    active_us: int = 150_000
    jitter_us: int = 0
    pattern_seed: int = 1234

    def __post_init__(self):
        self.vision.check("vision")
        self.audio.check("audio")
        if self.n_channels < 9:
            raise ValueError(f"data.n_channels must be >= 9, got {self.n_channels}")
        if not 0 < self.active_us <= self.window_us:
            raise ValueError(f"data.active_us must lie in (0, window_us={self.window_us}], got {self.active_us}")
        if self.jitter_us < 0:
            raise ValueError(f"data.jitter_us must be >= 0, got {self.jitter_us}")

    def as_dict(self) -> dict:
        return asdict(self)


def class_patterns(params: SynthParams) -> tuple[np.ndarray, np.ndarray]:
    """Return (vision masks (10, 34, 34) bool, audio bands (10, 3) first-channel index)."""
    rng = np.random.default_rng(params.pattern_seed)
    w, h, _ = SENSOR
    masks = np.zeros((N_CLASSES, h, w), dtype=bool)
    for c in range(N_CLASSES):
        for _ in range(3):
            (x0, y0), (x1, y1) = rng.integers(4, w - 4, size=(2, 2))
            n = max(abs(x1 - x0), abs(y1 - y0)) + 1
            masks[c, np.round(np.linspace(y0, y1, n)).astype(int), np.round(np.linspace(x0, x1, n)).astype(int)] = True
    bands = rng.integers(0, params.n_channels - 3, size=(N_CLASSES, 3))
    return masks, bands


def _poisson_events(rng, n_units: int, rate_hz: float, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
    """Homogeneous Poisson events on n_units over [t0, t1) us -> (unit index, t) arrays."""
    dur = max(t1 - t0, 0)
    counts = rng.poisson(rate_hz * dur * 1e-6, size=n_units)
    units = np.repeat(np.arange(n_units), counts)
    times = rng.integers(t0, max(t1, t0 + 1), size=units.size)
    return units, times


def synth_sample(label: int, split: str, index: int, params: SynthParams) -> tuple[np.ndarray, np.ndarray]:
    """One paired sample: (camera events CAMERA_DTYPE, audio events AUDIO_DTYPE), both sorted by t."""
    if split not in SPLIT_IDS:
        raise ValueError(f"split must be one of {tuple(SPLIT_IDS)}, got {split!r}")
    masks, bands = class_patterns(params)
    rng = np.random.default_rng([params.pattern_seed, SPLIT_IDS[split], index])
    w, h, _ = SENSOR
    onset_v = int(rng.integers(0, params.window_us - params.active_us + 1))
    jitter = int(rng.integers(-params.jitter_us, params.jitter_us + 1)) if params.jitter_us else 0
    onset_a = int(np.clip(onset_v + jitter, 0, params.window_us - params.active_us))

    pix_u, pix_t = _poisson_events(rng, w * h, params.vision.noise_hz, 0, params.window_us)
    if rng.random() < params.vision.informative:
        on = np.flatnonzero(masks[label].ravel())
        u, t = _poisson_events(rng, on.size, params.vision.rate_hz, onset_v, onset_v + params.active_us)
        pix_u, pix_t = np.concatenate([pix_u, on[u]]), np.concatenate([pix_t, t])
    order = np.argsort(pix_t, kind="stable")
    pix_u, pix_t = pix_u[order], pix_t[order]
    cam = make_events(CAMERA_DTYPE, x=pix_u % w, y=pix_u // w, t=pix_t, p=rng.integers(0, 2, pix_u.size))

    ch, ct = _poisson_events(rng, params.n_channels, params.audio.noise_hz, 0, params.window_us)
    if rng.random() < params.audio.informative:
        seg = params.active_us // 3
        for k, first in enumerate(bands[label]):
            u, t = _poisson_events(rng, 3, params.audio.rate_hz, onset_a + k * seg, onset_a + (k + 1) * seg)
            ch, ct = np.concatenate([ch, first + u]), np.concatenate([ct, t])
    order = np.argsort(ct, kind="stable")
    aud = make_events(AUDIO_DTYPE, t=ct[order], x=ch[order], p=np.zeros(ch.size, dtype=np.int64))
    validate_events(cam, SENSOR, f"synth {split}[{index}] vision")
    validate_events(aud, (params.n_channels, 1, 1), f"synth {split}[{index}] audio")
    return cam, aud


def synth_labels(split: str, n: int) -> np.ndarray:
    """Balanced labels 0..9 repeated, (n,) int64."""
    return np.arange(n, dtype=np.int64) % N_CLASSES
