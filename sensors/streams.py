"""Always-on streams made from real recordings (issue #24 item 2): long audio + DVS streams in which FSDD
utterances start at seeded random times over a noise floor, a digit of the spoken class shows on the camera
while the word is spoken, and the camera otherwise sends only background activity.

Pure functions under one builder, as in Tonic's functional layer:
    place_utterances  onsets and offsets of a sequence of clips in a stream (seeded idle gaps);
    mix_audio         the stream's waveform: the clips at their onsets over a noise floor at a set SNR;
    camera_events     each utterance's digit emulated with its saccades (sensors/dvs_emulator.py), shifted to
                      its onset plus a seeded jitter;
    encode_stream     both sensors binned at the fixed real-time step (data.step_ms) over the whole stream,
                      the camera's frames plus background with the statistics of the real recordings
                      (sensors/dvs_background.py);
    build_streams     a split's streams: every clip of the split used once (seeded order), digits drawn
                      from the split's own MNIST pool; cached like every encoded set (sensors/cache.py).

Units: time in microseconds (onsets, offsets, steps), waveforms at the data set's sample rate. Labels are
(onset_us, offset_us, class) per utterance, the utterance's extent in the audio.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sensors.audio_augment import pink_noise, white_noise
from sensors.audio_io import read_wav
from sensors.binning import bin_audio_events, bin_camera_events
from sensors.cache import load_or_build
from sensors.cochlea import CochleaParams, cochlea_encode
from sensors.data_options import DataSettings, parse_data_config
from sensors.datasets import CODE_VERSION, VISION_SENSOR, fsdd_files, fsdd_split_of, split_digits
from sensors.dvs_background import load_stats, real_background
from sensors.dvs_emulator import DVSParams, emulate_saccades
from sensors.events import CAMERA_DTYPE
from sensors.mnist import load_mnist5k
from sensors.options import check_choice, check_number, check_pair
from sensors.paths import FETCH_HINT, data_root, require_files
from sensors.splits import PAIR_SEED_IDS, check_split

STREAM_CODE_VERSION = "stream-1"       # bump when a stream's content changes for the same settings
NOISE_KINDS = ("white", "pink")
BACKGROUND_RECORDING = "sample_nmnist"  # the real recording (34 x 34, as the camera) whose background the streams carry


@dataclass(frozen=True)
class StreamSpec:
    """How a split's streams are made (``data.stream``; the defaults live in sensors/schema.py). duration_s:
    each stream's length; gap_s: the idle stretch before each utterance, drawn uniformly; snr_db: the noise
    floor under the whole stream, relative to the utterances' mean power (None: silence); noise: white or pink;
    jitter_ms: the digit's start relative to the word's; dvs_background: x the real recording's background
    rate; seed: every draw of the split's streams."""

    duration_s: float
    gap_s: tuple[float, float]
    snr_db: float | None
    noise: str
    jitter_ms: tuple[float, float]
    dvs_background: float
    seed: int

    def __post_init__(self) -> None:
        check_number("data.stream.duration_s", self.duration_s, 0, low_open=True)
        object.__setattr__(self, "gap_s", check_pair("data.stream.gap_s", self.gap_s, 0.0))
        check_number("data.stream.snr_db", self.snr_db, optional=True)
        check_choice("data.stream.noise", self.noise, NOISE_KINDS)
        object.__setattr__(self, "jitter_ms", check_pair("data.stream.jitter_ms", self.jitter_ms))
        check_number("data.stream.dvs_background", self.dvs_background, 0)
        check_number("data.stream.seed", self.seed, 0, integer=True)


def place_utterances(lengths: list[int], fs: int, spec: StreamSpec, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(onset, offset) in samples of as many of the clips (``lengths`` in samples, in order) as fit in a stream
    of spec.duration_s: each after an idle gap drawn from spec.gap_s, none running past the stream's end."""
    total, t, out = int(round(spec.duration_s * fs)), 0, []
    for n in lengths:
        onset = t + int(round(rng.uniform(*spec.gap_s) * fs))
        if onset + n > total:
            break
        out.append((onset, onset + n))
        t = onset + n
    return out


def mix_audio(waves: list[np.ndarray], spans: list[tuple[int, int]], n_samples: int, spec: StreamSpec,
              rng: np.random.Generator) -> np.ndarray:
    """(n_samples,) float64: the clips at their spans over a noise floor spec.snr_db below their mean power."""
    out = np.zeros(n_samples, np.float64)
    for wave, (onset, offset) in zip(waves, spans):
        out[onset:offset] += wave[: offset - onset]
    if spec.snr_db is not None and spans:
        speech = np.concatenate([w[: b - a] for w, (a, b) in zip(waves, spans)]).astype(np.float64)
        noise = (white_noise if spec.noise == "white" else pink_noise)(n_samples, rng)
        scale = math.sqrt(np.mean(speech ** 2) / (np.mean(noise ** 2) * 10.0 ** (spec.snr_db / 10.0)))
        out += noise * scale
    return out


def camera_events(images: list[np.ndarray], onsets_us: list[int], dvs: DVSParams, seeds: list[int],
                  spec: StreamSpec, rng: np.random.Generator) -> np.ndarray:
    """CAMERA_DTYPE events of every utterance's digit: its saccades (emulate_saccades) shifted to the word's
    onset plus a jitter drawn from spec.jitter_ms (never before the stream's start), sorted by time."""
    parts = []
    for image, onset, seed in zip(images, onsets_us, seeds):
        ev = emulate_saccades(image, dvs, seed=seed)
        shift = max(0, onset + int(round(rng.uniform(*spec.jitter_ms) * 1000)))
        ev = ev.copy()
        ev["t"] += shift
        parts.append(ev)
    if not parts:
        return np.zeros(0, CAMERA_DTYPE)
    events = np.concatenate(parts)
    return events[np.argsort(events["t"], kind="stable")]


def encode_stream(wave: np.ndarray, fs: int, events: np.ndarray, settings: DataSettings, background: dict,
                  background_scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """((T, C) audio counts, (T, 2, 34, 34) camera counts) of a whole stream at the fixed step settings.step_us:
    T = the stream's length in steps; the camera's frames carry the real recording's background."""
    step, cochlea = settings.step_us, settings.cochlea
    n_steps = int(math.ceil(wave.size * 1e6 / fs / step))
    window = n_steps * step
    audio = bin_audio_events(cochlea_encode(wave, fs, cochlea), cochlea.n_channels, n_steps, settings.clip_audio, 0, window)
    frames = bin_camera_events(events, VISION_SENSOR, n_steps, settings.clip, 0, window)
    if background_scale > 0:
        frames = real_background(frames, background, step, settings.clip, seed, background_scale)
    return audio, frames


def stream_spec(cfg) -> StreamSpec:
    """``cfg.stream`` (the data config's stream section) as a checked StreamSpec."""
    section = cfg["stream"]
    return StreamSpec(**{k: (tuple(v) if k in ("gap_s", "jitter_ms") else v) for k, v in dict(section).items()})


def build_streams(cfg, split: str, settings: DataSettings | None = None) -> list[dict[str, np.ndarray]]:
    """The ``split``'s streams of fsdd_mnist at the fixed step data.step_ms, each {"audio": (T, C) uint8,
    "vision": (T, 2, 34, 34) uint8, "labels": (U, 3) int64 rows (onset_us, offset_us, class)}. Every clip of
    the split is used once, in a seeded order; each utterance's digit is a same-class digit of the split's own
    MNIST pool; cached per stream."""
    check_split(split)
    settings = parse_data_config(cfg) if settings is None else settings
    if settings.kind != "fsdd_mnist" or not settings.step_us:
        raise ValueError("build_streams: streams are made of fsdd_mnist's recordings at a fixed step; set "
                         "data=fsdd_mnist and data.step_ms (e.g. 10)")
    spec, fs = stream_spec(cfg), int(cfg["sample_rate"])
    root = data_root(cfg["root"])
    require_files(root, ["fsdd/recordings", "mnist5k/mnist_5k.csv.gz"], "fsdd_mnist streams", FETCH_HINT)
    every = fsdd_files(root)
    files = fsdd_split_of(every, split, settings.split)
    images, mlabels = load_mnist5k(root)
    pools = split_digits(cfg, split, settings.split, sorted({s for _, s, _, _ in every}), mlabels)
    rng = np.random.default_rng([spec.seed, PAIR_SEED_IDS[split], 7])
    order = [files[i] for i in rng.permutation(len(files))]
    waves = [read_wav(root / "fsdd" / "recordings" / f[3], sample_rate=fs) for f in order]
    background = load_stats(BACKGROUND_RECORDING)
    base = {"dataset": "fsdd_mnist_stream", "split": split, "spec": asdict(spec), "files": [f[3] for f in order],
            "T_step_us": settings.step_us, "clip": settings.clip, "clip_audio": settings.clip_audio,
            "cochlea": settings.cochlea.cache_fields(), "dvs": vars(settings.dvs), "code": [CODE_VERSION, STREAM_CODE_VERSION]}
    streams, start, index = [], 0, 0
    with tqdm(total=len(order), desc=f"streams {split}", unit="clip", leave=False) as bar:
        while start < len(order):
            draw = np.random.default_rng([spec.seed, PAIR_SEED_IDS[split], index])
            spans = place_utterances([w.size for w in waves[start:]], fs, spec, draw)
            if not spans:
                raise ValueError(f"data.stream.duration_s={spec.duration_s}: a stream holds no utterance "
                                 f"(the next clip is {waves[start].size / fs:.2f} s after a gap of up to {spec.gap_s[1]} s)")
            chosen = order[start:start + len(spans)]
            key = {**base, "stream": index, "clips": [f[3] for f in chosen]}
            streams.append(load_or_build(Path(cfg["cache_dir"]).expanduser(), key, lambda: _one_stream(
                waves[start:start + len(spans)], chosen, spans, images, pools, fs, spec, settings,
                background, draw)))
            start, index = start + len(spans), index + 1
            bar.update(len(spans))
    return streams


def _one_stream(waves, chosen, spans, images, pools, fs, spec, settings, background, rng) -> dict:
    """One stream's arrays (build_streams' cache entry)."""
    n_samples = int(round(spec.duration_s * fs))
    wave = mix_audio(waves, spans, n_samples, spec, rng)
    rows = [int(rng.choice(pools[f[0]])) for f in chosen]
    onsets_us = [int(a * 1_000_000 // fs) for a, _ in spans]
    events = camera_events([images[r] for r in rows], onsets_us, settings.dvs, rows, spec, rng)
    audio, vision = encode_stream(wave, fs, events, settings, background, spec.dvs_background,
                                  int(rng.integers(2 ** 31)))
    labels = np.array([(a * 1_000_000 // fs, b * 1_000_000 // fs, f[0]) for (a, b), f in zip(spans, chosen)],
                      np.int64).reshape(-1, 3)
    return {"audio": audio, "vision": vision, "labels": labels, "digit_rows": np.array(rows, np.int64)}
