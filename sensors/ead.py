"""EAD-style paired data sets: (vision spikes (T, 2, 34, 34), audio spikes (T, C), label).

Builders of sensors.paired.PairedSpikes (Tonic data sets: sensors/tonic_pairs.py):
  build_synth(cfg, split)      procedural, no files (sensors/synth.py); labelled SYNTHETIC.
  build_fsdd_mnist(cfg, split) real FSDD speech through the cochlea encoder, paired by class
                               with DVS-emulated saccades of real MNIST digits.
Both return a PairedSpikes, cached on disk (sensors/cache.py) under a key of every parameter
that shaped the tensors, so a changed parameter never returns stale tensors.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sensors.audio_io import read_wav
from sensors.binning import bin_audio_events, bin_camera_events
from sensors.cache import load_or_build
from sensors.cochlea import CochleaParams, cochlea_encode
from sensors.dvs_emulator import DVSParams, emulate_saccades
from sensors.mnist import load_mnist5k
from sensors.paired import PairedSpikes
from sensors.paths import FETCH_HINT, data_root, require_files
from sensors.synth import ModalityKnobs, SynthParams, synth_labels, synth_sample
from sensors.tonic_pairs import build_tonic

CODE_VERSION = "ead-2"  # bump when the encoding code changes what it produces
SPLITS = ("train", "test")
FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
FSDD_SPLITS = ("official", "speaker")
VISION_SENSOR = (34, 34, 2)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _check_common(cfg) -> tuple[int, int, int]:
    """(T, vision clip, audio clip) from the data config."""
    t, clip, clip_audio = int(cfg["T"]), int(cfg["clip"]), int(cfg["clip_audio"])
    if t < 1:
        raise ValueError(f"data.T must be >= 1, got {t}")
    for name, value in (("data.clip", clip), ("data.clip_audio", clip_audio)):
        if not 1 <= value <= 255:
            raise ValueError(f"{name} must lie in 1..255, got {value}")
    return t, clip, clip_audio


def synth_params(cfg) -> SynthParams:
    return SynthParams(
        vision=ModalityKnobs(**dict(cfg["vision"])),
        audio=ModalityKnobs(**dict(cfg["audio"])),
        n_channels=int(cfg["n_channels"]),
        window_us=int(cfg["window_us"]),
        active_us=int(cfg["active_us"]),
        jitter_us=int(cfg["jitter_us"]),
        pattern_seed=int(cfg["pattern_seed"]),
    )


def build_synth(cfg, split: str) -> PairedSpikes:
    """SYNTHETIC paired data (sensors/synth.py) binned to T steps over the fixed window."""
    _check_split(split)
    t_bins, clip, clip_audio = _check_common(cfg)
    params = synth_params(cfg)
    n = int(cfg["n_train"] if split == "train" else cfg["n_test"])
    if n < 1:
        raise ValueError(f"data.n_{split} must be >= 1, got {n}")
    key = {"dataset": "synth", "split": split, "n": n, "T": t_bins, "clip": clip, "clip_audio": clip_audio, "params": params.as_dict(),
           "code": CODE_VERSION}

    def build() -> dict:
        labels = synth_labels(split, n)
        vision = np.zeros((n, t_bins, 2, 34, 34), np.uint8)
        audio = np.zeros((n, t_bins, params.n_channels), np.uint8)
        for i, label in enumerate(tqdm(labels, desc=f"synth {split}", unit="sample", leave=False)):
            cam, aud = synth_sample(int(label), split, i, params)
            vision[i] = bin_camera_events(cam, VISION_SENSOR, t_bins, clip, 0, params.window_us)
            audio[i] = bin_audio_events(aud, params.n_channels, t_bins, clip_audio, 0, params.window_us)
        return {"vision": vision, "audio": audio, "labels": labels}

    arrays = load_or_build(Path(cfg["cache_dir"]).expanduser(), key, build)
    return PairedSpikes(arrays["audio"], arrays["labels"], arrays["vision"], np.arange(n))


def fsdd_files(root: Path) -> list[tuple[int, str, int, str]]:
    """All FSDD recordings as (digit, speaker, take, file name), sorted by name."""
    folder = root / "fsdd" / "recordings"
    require_files(root, ["fsdd/recordings"], "fsdd_mnist", FETCH_HINT)
    out = []
    for path in sorted(folder.iterdir()):
        m = FSDD_NAME.match(path.name)
        if m:
            out.append((int(m.group(1)), m.group(2), int(m.group(3)), path.name))
    if not out:
        raise FileNotFoundError(f"fsdd_mnist: {folder} holds no FSDD recordings named {{digit}}_{{speaker}}_{{take}}.wav")
    return out


def fsdd_split(files, split: str, kind: str, test_speakers) -> list[tuple[int, str, int, str]]:
    """FSDD's official split (takes 0-4 are test) or a speaker-held-out split."""
    if kind == "official":
        is_test = [take <= 4 for _, _, take, _ in files]
    elif kind == "speaker":
        speakers = {s for _, s, _, _ in files}
        unknown = sorted(set(test_speakers) - speakers)
        if unknown or not test_speakers:
            raise ValueError(f"data.test_speakers: {unknown or 'empty list'} not among the FSDD speakers {sorted(speakers)}")
        is_test = [s in set(test_speakers) for _, s, _, _ in files]
    else:
        raise ValueError(f"data.split must be one of {FSDD_SPLITS}, got {kind!r}")
    want_test = split == "test"
    return [f for f, t in zip(files, is_test) if t == want_test]


def mnist_pool(labels: np.ndarray, split: str, test_per_class: int) -> dict[int, np.ndarray]:
    """Row indices of each class's pool: the last ``test_per_class`` rows of a class are the test pool."""
    pools = {}
    for c in range(10):
        rows = np.flatnonzero(labels == c)
        if not 0 < test_per_class < rows.size:
            raise ValueError(f"data.mnist_test_per_class must lie in 1..{rows.size - 1}, got {test_per_class}")
        pools[c] = rows[-test_per_class:] if split == "test" else rows[:-test_per_class]
    return pools


def build_fsdd_mnist(cfg, split: str) -> PairedSpikes:
    """Real FSDD audio + DVS-emulated MNIST, paired by class with a seeded permutation of the pool."""
    _check_split(split)
    t_bins, clip, clip_audio = _check_common(cfg)
    root = data_root(cfg.get("root"))
    require_files(root, ["fsdd/recordings", "mnist5k/mnist_5k.csv.gz"], "fsdd_mnist", FETCH_HINT)
    files = fsdd_split(fsdd_files(root), split, cfg["split"], list(cfg.get("test_speakers") or []))
    cochlea = CochleaParams(**dict(cfg["cochlea"]))
    dvs = DVSParams(**dict(cfg["dvs"]))
    fs = int(cfg["sample_rate"])
    key = {"dataset": "fsdd_mnist", "split": split, "kind": cfg["split"], "test_speakers": sorted(cfg.get("test_speakers") or []),
           "T": t_bins, "clip": clip, "clip_audio": clip_audio, "files": [f[3] for f in files],
           "sizes": [(root / "fsdd" / "recordings" / f[3]).stat().st_size for f in files],
           "mnist_test_per_class": int(cfg["mnist_test_per_class"]), "pair_seed": int(cfg["pair_seed"]),
           "sample_rate": fs, "cochlea": vars(cochlea), "dvs": vars(dvs), "code": CODE_VERSION}

    def build() -> dict:
        images, mlabels = load_mnist5k(root)
        pools = mnist_pool(mlabels, split, int(cfg["mnist_test_per_class"]))
        rng = np.random.default_rng([int(cfg["pair_seed"]), SPLITS.index(split)])
        order = {c: rng.permutation(pools[c]) for c in range(10)}
        window_us = dvs.saccade_us * len(dvs.saccade_vertices_px)
        # The train split encodes the whole MNIST train pool (re-paired each epoch by the trainer);
        # the test split only the digits its fixed pairing uses.
        n = len(files)
        counts = np.bincount([f[0] for f in files], minlength=10)
        pool_rows = np.concatenate([order[c] if split == "train" else order[c][: min(counts[c], order[c].size)]
                                    for c in range(10)])
        position = {int(r): i for i, r in enumerate(pool_rows)}
        pool = np.zeros((pool_rows.size, t_bins, 2, 34, 34), np.uint8)
        for i, row in enumerate(tqdm(pool_rows, desc=f"DVS {split}", unit="digit", leave=False)):
            cam = emulate_saccades(images[row], dvs, seed=int(row))
            pool[i] = bin_camera_events(cam, VISION_SENSOR, t_bins, clip, 0, window_us)
        audio = np.zeros((n, t_bins, cochlea.n_channels), np.uint8)
        labels = np.zeros(n, np.int64)
        vision_index = np.zeros(n, np.int64)
        used = {c: 0 for c in range(10)}
        for i, (digit, _, _, name) in enumerate(tqdm(files, desc=f"cochlea {split}", unit="clip", leave=False)):
            wave = read_wav(root / "fsdd" / "recordings" / name, sample_rate=fs)
            spikes = cochlea_encode(wave, fs, cochlea)
            duration_us = int(round(wave.size * 1e6 / fs))
            audio[i] = bin_audio_events(spikes, cochlea.n_channels, t_bins, clip_audio, 0, max(duration_us, 1))
            row = order[digit][used[digit] % order[digit].size]
            used[digit] += 1
            labels[i], vision_index[i] = digit, position[int(row)]
        return {"vision_pool": pool, "pool_labels": mlabels[pool_rows], "pool_rows": pool_rows,
                "audio": audio, "labels": labels, "vision_index": vision_index}

    arrays = load_or_build(Path(cfg["cache_dir"]).expanduser(), key, build)
    return PairedSpikes(arrays["audio"], arrays["labels"], arrays["vision_pool"], arrays["vision_index"],
                        pool_labels=arrays["pool_labels"] if split == "train" else None, pair_seed=int(cfg["pair_seed"]))


BUILDERS = {"synth": build_synth, "fsdd_mnist": build_fsdd_mnist, "tonic": build_tonic}


def build_dataset(cfg, split: str) -> PairedSpikes:
    """Dispatch on data.source (tonic: any Tonic data set or pair, sensors/tonic_pairs.py), else data.name."""
    name = cfg.get("source") or cfg["name"]
    if name not in BUILDERS:
        raise ValueError(f"data.name={cfg['name']!r} has no builder; expected one of {tuple(BUILDERS)} "
                         "or a config with source: tonic")
    return BUILDERS[name](cfg, split)
