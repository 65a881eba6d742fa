"""The data-set registry: ``build_dataset(cfg, split)`` dispatches cfg.name through ``BUILDERS`` (synth,
fsdd_mnist, tonic) to a builder of EAD-style paired data sets: (vision spikes (T, 2, 34, 34), audio spikes
(T, C), label).

Builders of sensors.paired.PairedSpikes (Tonic data sets: sensors/tonic_pairs.py):
  build_synth(cfg, split)      procedural, no files (sensors/synth.py); labelled SYNTHETIC.
  build_fsdd_mnist(cfg, split) real FSDD speech through the cochlea encoder, paired by class
                               with DVS-emulated saccades of real MNIST digits.
Both return a PairedSpikes, cached on disk (sensors/cache.py) under a key of every parameter
that shaped the tensors, so a changed parameter never returns stale tensors.

fsdd_mnist's train split can grow by ``data.augment.copies`` augmented copies (audio:
sensors/audio_augment.py, vision: sensors/image_augment.py), each cached on its own beside the
originals, which stay in the set; the val and test splits are never augmented (see
:func:`sensors.data_options.augment_settings`).

Every builder has the splits ``SPLITS`` = train, val, test; fsdd_mnist's rules (which FSDD clips and
which MNIST digits each split holds) are in sensors/splits.py, synth's val split is ``data.n_val``
samples of their own seed, and Tonic's val split is carved from its train split (sensors/tonic_pairs.py).
fsdd_mnist's test digits come from the MNIST 5k set (default) or, with ``data.vision_test_source=mnist_test``,
from MNIST's official test set (t10k, other writers) under ``data.mnist_test_root`` (sensors/splits.py).
"""
from __future__ import annotations

import hashlib
import re
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sensors.audio_augment import add_noise, augment_waveform, draw_audio, vtlp_centres, white_noise
from sensors.audio_io import read_wav
from sensors.binning import bin_audio_events, bin_camera_events
from sensors.cache import load_or_build
from sensors.cochlea import CochleaParams, centre_frequencies, cochlea_encode
from sensors.dvs_emulator import DVSParams, add_background_events, emulate_saccades
from sensors.data_options import AugmentSettings, DataSettings, parse_data_config, step_key
from sensors.image_augment import augment_image, draw_image
from sensors.mnist import MNIST_TEST_IMAGES, MNIST_TEST_LABELS, load_mnist5k, load_mnist_test
from sensors.paired import PairedSpikes
from sensors.paths import FETCH_HINT, data_root, require_files
from sensors.splits import (DEFAULT_VISION_TEST_SOURCE, FSDD_SPLITS, PAIR_SEED_IDS, SPLITS,  # noqa: F401 (re-exported)
                            VISION_SOURCES, DataConfigError, FsddSplit, check_split, fsdd_split, fsdd_split_of,
                            held_out_slots, mnist_pool, mnist_test_pool, slice_pool)
from sensors.synth import synth_labels, synth_sample
from sensors.tonic_pairs import build_tonic

CODE_VERSION = "ead-3"  # bump when the encoding code changes what it produces (3: the val split, per-fold test digits)
AUGMENT_CODE_VERSION = "ead-augment-1"  # bump when the augmentation code changes what it produces
NOISY_CODE_VERSION = "ead-noisy-1"  # bump when fsdd_noisy_audio changes what it produces
FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
VISION_SENSOR = (34, 34, 2)
MNIST_TEST_FETCH = ("get it with: edge-taaf-data fetch --source mnist_test --root DIR, then set data.mnist_test_root=DIR "
                    "(null: the data root)")
# A digit's DVS emulator seed is its MNIST 5k row index (< 5,000); t10k row i gets this offset plus i, so no
# t10k digit reuses a 5k digit's sensor mismatch and noise.
MNIST_TEST_DVS_SEED_OFFSET = 1 << 20


def build_synth(cfg, split: str, settings: DataSettings) -> PairedSpikes:
    """SYNTHETIC paired data (sensors/synth.py) binned to T steps over the fixed window."""
    t_bins, clip, clip_audio, params = settings.t_bins, settings.clip, settings.clip_audio, settings.synth
    n = int(cfg[f"n_{split}"])
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


def _encode_clip(wave: np.ndarray, fs: int, cochlea: CochleaParams, t_bins: int, clip_audio: int,
                 centre_freqs: np.ndarray | None = None, step_us: int | None = None) -> np.ndarray:
    """A waveform (N,) at fs Hz -> (T, C) uint8 cochlea spike counts: binned over the clip's duration, or at a
    fixed step of ``step_us`` microseconds from the clip's start (T x step_us: a longer clip is cut, a shorter
    one ends in silent bins)."""
    spikes = cochlea_encode(wave, fs, cochlea, centre_freqs)
    window_us = t_bins * step_us if step_us else max(int(round(wave.size * 1e6 / fs)), 1)
    return bin_audio_events(spikes, cochlea.n_channels, t_bins, clip_audio, 0, window_us)


def _encode_digit(image: np.ndarray, dvs: DVSParams, seed: int, t_bins: int, clip: int,
                  step_us: int | None = None) -> np.ndarray:
    """A digit image (28, 28) -> (T, 2, 34, 34) uint8 DVS spike counts over the saccades' window, or at a fixed
    step of ``step_us`` microseconds from the first saccade's start."""
    cam = emulate_saccades(image, dvs, seed=seed)
    window_us = t_bins * step_us if step_us else dvs.saccade_us * len(dvs.saccade_vertices_px)
    return bin_camera_events(cam, VISION_SENSOR, t_bins, clip, 0, window_us)


def dvs_seed(row: int, from_mnist_test: bool) -> int:
    """The DVS emulator's seed for an MNIST digit: its 5k row index, or MNIST_TEST_DVS_SEED_OFFSET plus
    its t10k row index."""
    return int(row) + (MNIST_TEST_DVS_SEED_OFFSET if from_mnist_test else 0)


def mnist_test_folder(cfg, root: Path) -> Path:
    """The folder holding mnist_test/ (``data.mnist_test_root``; null: the data root ``root``). Raises
    FileNotFoundError naming the folder, each missing t10k file and the fetch command."""
    raw = cfg["mnist_test_root"]
    folder = root if raw in (None, "") else Path(str(raw)).expanduser()
    require_files(folder, [MNIST_TEST_IMAGES.as_posix(), MNIST_TEST_LABELS.as_posix()],
                  "fsdd_mnist with data.vision_test_source=mnist_test (data.mnist_test_root)", MNIST_TEST_FETCH)
    return folder


def mnist_test_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of each t10k file under ``folder`` (a cache key field: other files, other tensors)."""
    return {rel.name: hashlib.sha256((folder / rel).read_bytes()).hexdigest()
            for rel in (MNIST_TEST_IMAGES, MNIST_TEST_LABELS)}


def split_digits(cfg, split: str, settings: FsddSplit, speakers: list[str], labels: np.ndarray,
                 source: str = DEFAULT_VISION_TEST_SOURCE) -> dict[int, np.ndarray]:
    """MNIST rows of each class that ``split`` pairs from (sensors/splits.py): the train or val pool, or the
    held-out pool (official) or its test speakers' slices of it (speaker). ``labels`` are the 5k set's, or
    t10k's for the test split when ``source`` is mnist_test (then its rows are t10k rows and the 5k set
    holds nothing out). Options absent from an older config read as no val digits, so its test split still
    builds."""
    from_mnist_test = source == "mnist_test"
    if split == "test" and from_mnist_test:
        return mnist_test_pool(labels, *held_out_slots(settings, speakers))
    pools = mnist_pool(labels, split, int(cfg["mnist_test_per_class"]), int(cfg["mnist_val_per_class"]),
                       hold_out=not from_mnist_test)
    if split != "test":
        return pools
    slots, n_slots = held_out_slots(settings, speakers)
    return {c: slice_pool(rows, slots, n_slots) for c, rows in pools.items()}


def _vision_key(cfg, split: str, source: str, test_folder: Path | None) -> dict:
    """The cache key fields of the digits' source. The default (mnist5k) adds none, so its key (and its
    cached tensors) are those it had before the option existed; mnist_test adds the source, carves nothing
    from the 5k set (mnist_test_per_class: None) and, for the test split, the t10k files' SHA-256."""
    if source == DEFAULT_VISION_TEST_SOURCE:
        return {}
    key = {"vision_test_source": source, "mnist_test_per_class": None}
    if split == "test":
        key["mnist_test_sha256"] = mnist_test_digests(test_folder)
    return key


def build_fsdd_mnist(cfg, split: str, parsed: DataSettings) -> PairedSpikes:
    """Real FSDD audio + DVS-emulated MNIST, paired by class with a seeded permutation of the pool.

    Which clips and digits each split holds: sensors/splits.py. The train split holds the originals and,
    when ``data.augment`` is enabled, ``copies`` augmented copies of them (:func:`augmented_copy`): sample
    i of copy k is sample i of the originals augmented, paired with the same digit's copy k; the vision
    pool grows likewise, so the trainer's re-pairing draws from originals and copies alike. The val and
    test splits are never augmented. ``parsed``: the config's parsed parts (sensors/data_options.py).
    """
    t_bins, clip, clip_audio, augment = parsed.t_bins, parsed.clip, parsed.clip_audio, parsed.augment
    fs = int(cfg["sample_rate"])
    root = data_root(cfg["root"])
    require_files(root, ["fsdd/recordings", "mnist5k/mnist_5k.csv.gz"], "fsdd_mnist", FETCH_HINT)
    every = fsdd_files(root)
    settings, source = parsed.split, parsed.vision_test_source
    test_folder = mnist_test_folder(cfg, root) if source == "mnist_test" else None
    from_mnist_test = split == "test" and source == "mnist_test"
    speakers = sorted({s for _, s, _, _ in every})
    files = fsdd_split_of(every, split, settings)
    cochlea, dvs = parsed.cochlea, parsed.dvs
    key = {"dataset": "fsdd_mnist", "split": split, **settings.as_key(), "speakers": speakers,
           "T": t_bins, "clip": clip, "clip_audio": clip_audio, "files": [f[3] for f in files],
           "sizes": [(root / "fsdd" / "recordings" / f[3]).stat().st_size for f in files],
           "mnist_test_per_class": int(cfg["mnist_test_per_class"]),
           "mnist_val_per_class": int(cfg["mnist_val_per_class"]), "pair_seed": int(cfg["pair_seed"]),
           "sample_rate": fs, "cochlea": cochlea.cache_fields(), "dvs": vars(dvs), "code": CODE_VERSION,
           **step_key(parsed),
           **_vision_key(cfg, split, source, test_folder)}

    def build() -> dict:
        images, mlabels = load_mnist_test(test_folder) if from_mnist_test else load_mnist5k(root)
        pools = split_digits(cfg, split, settings, speakers, mlabels, source)
        rng = np.random.default_rng([int(cfg["pair_seed"]), PAIR_SEED_IDS[split]])
        order = {c: rng.permutation(pools[c]) for c in range(10)}
        # The train split encodes the whole MNIST train pool (re-paired each epoch by the trainer);
        # val and test only the digits their fixed pairing uses.
        n = len(files)
        counts = np.bincount([f[0] for f in files], minlength=10)
        pool_rows = np.concatenate([order[c] if split == "train" else order[c][: min(counts[c], order[c].size)]
                                    for c in range(10)])
        position = {int(r): i for i, r in enumerate(pool_rows)}
        pool = np.zeros((pool_rows.size, t_bins, 2, 34, 34), np.uint8)
        for i, row in enumerate(tqdm(pool_rows, desc=f"DVS {split}", unit="digit", leave=False)):
            pool[i] = _encode_digit(images[row], dvs, dvs_seed(row, from_mnist_test), t_bins, clip, parsed.step_us)
        audio = np.zeros((n, t_bins, cochlea.n_channels), np.uint8)
        labels = np.zeros(n, np.int64)
        vision_index = np.zeros(n, np.int64)
        used = {c: 0 for c in range(10)}
        for i, (digit, _, _, name) in enumerate(tqdm(files, desc=f"cochlea {split}", unit="clip", leave=False)):
            audio[i] = _encode_clip(read_wav(root / "fsdd" / "recordings" / name, sample_rate=fs), fs, cochlea,
                                    t_bins, clip_audio, step_us=parsed.step_us)
            row = order[digit][used[digit] % order[digit].size]
            used[digit] += 1
            labels[i], vision_index[i] = digit, position[int(row)]
        return {"vision_pool": pool, "pool_labels": mlabels[pool_rows], "pool_rows": pool_rows,
                "audio": audio, "labels": labels, "vision_index": vision_index}

    cache_dir = Path(cfg["cache_dir"]).expanduser()
    arrays = load_or_build(cache_dir, key, build)
    if split == "train" and augment.enabled and augment.copies:
        copies = [augmented_copy(cache_dir, key, augment, k, root, [f[3] for f in files], arrays["pool_rows"],
                                 cochlea, dvs, fs, t_bins, clip, clip_audio, parsed.step_us) for k in range(augment.copies)]
        n_pool, reps = arrays["vision_pool"].shape[0], augment.copies + 1
        arrays = {"audio": np.concatenate([arrays["audio"], *(c["audio"] for c in copies)]),
                  "labels": np.tile(arrays["labels"], reps),
                  "vision_pool": np.concatenate([arrays["vision_pool"], *(c["vision_pool"] for c in copies)]),
                  "pool_labels": np.tile(arrays["pool_labels"], reps),
                  "vision_index": np.concatenate([arrays["vision_index"] + k * n_pool for k in range(reps)])}
    return PairedSpikes(arrays["audio"], arrays["labels"], arrays["vision_pool"], arrays["vision_index"],
                        pool_labels=arrays["pool_labels"] if split == "train" else None,
                        pair_seed=int(cfg["pair_seed"]), vision_source=VISION_SOURCES[source if from_mnist_test else DEFAULT_VISION_TEST_SOURCE])


def augmented_copy(cache_dir: Path, base_key: dict, augment: AugmentSettings, k: int, root: Path, names: list[str],
                   pool_rows: np.ndarray, cochlea: CochleaParams, dvs: DVSParams, fs: int, t_bins: int, clip: int,
                   clip_audio: int, step_us: int | None = None) -> dict[str, np.ndarray]:
    """Copy ``k`` of the train split, cached on its own: {"audio": (N, T, C), "vision_pool": (P, T, 2, 34, 34)}
    uint8, row for row the originals' clips ``names`` and MNIST rows ``pool_rows``, augmented.

    Audio: draw_audio, then speed, reverberation, noise (babble from the split's other clips) and
    gain on the waveform, VTLP on the cochlea's centre frequencies, then the originals' encoding
    (binned over the augmented clip's own duration, so a speed change keeps the clip's T steps and
    acts mostly through its frequency shift). Vision: draw_image, augment_image, then the DVS
    emulator with a drawn seed (its own threshold mismatch and noise). The key is the originals' key
    plus the augmentation settings, the seed and k; ``copies`` is not in it, so adding copies reuses
    the ones already encoded.
    """
    key = {"base": base_key, "augment": {"seed": augment.seed, "copy": k, "audio": augment.audio,
                                         "vision": augment.vision}, "code": AUGMENT_CODE_VERSION}
    a, v = augment.audio, augment.vision

    def build() -> dict:
        images, _ = load_mnist5k(root)
        waves = [read_wav(root / "fsdd" / "recordings" / name, sample_rate=fs) for name in names]
        centres = centre_frequencies(cochlea.n_channels, cochlea.f_min, cochlea.f_max, cochlea.spacing)
        audio = np.zeros((len(names), t_bins, cochlea.n_channels), np.uint8)
        for i, name in enumerate(tqdm(names, desc=f"augment {k} cochlea", unit="clip", leave=False)):
            rng = np.random.default_rng([augment.seed, k, 0, zlib.crc32(name.encode())])
            draw = draw_audio(a, rng)
            others = waves[:i] + waves[i + 1:] if draw.noise_kind == "babble" else ()
            wave = augment_waveform(waves[i], fs, draw, rng, others, a.babble_talkers)
            warped = None if draw.vtlp_alpha is None else vtlp_centres(centres, draw.vtlp_alpha, a.vtlp_boundary_hz,
                                                                        fs / 2)
            audio[i] = _encode_clip(wave, fs, cochlea, t_bins, clip_audio, warped, step_us)
        pool = np.zeros((len(pool_rows), t_bins, 2, 34, 34), np.uint8)
        for j, row in enumerate(tqdm(pool_rows, desc=f"augment {k} DVS", unit="digit", leave=False)):
            rng = np.random.default_rng([augment.seed, k, 1, int(row)])
            image = augment_image(images[row], draw_image(v, rng))
            pool[j] = _encode_digit(image, dvs, int(rng.integers(2**31)), t_bins, clip, step_us)
        return {"audio": audio, "vision_pool": pool}

    return load_or_build(cache_dir, key, build)


def fsdd_speakers(root) -> list[str]:
    """The FSDD speakers whose recordings lie under ``root``/fsdd/recordings (from the file names), sorted."""
    return sorted({speaker for _, speaker, _, _ in fsdd_files(Path(root))})


def fsdd_noisy_audio(cfg, split: str, snr_db: float | None, seed: int = 0) -> np.ndarray:
    """fsdd_mnist's ``split`` audio (N, T, C) uint8, re-encoded with white noise added to each waveform
    before the cochlea at exactly ``snr_db`` dB over the whole clip (sensors.audio_augment.add_noise);
    ``snr_db=None`` re-encodes the clean clips (equal to build_fsdd_mnist's audio). The clips and their
    order are build_fsdd_mnist's (originals only, never augmented copies); clip ``name`` draws its noise
    from ``default_rng([seed, crc32(name)])``. Cached under the originals' settings plus snr_db and seed."""
    check_split(split)
    parsed = parse_data_config(cfg)
    t_bins, clip_audio, cochlea = parsed.t_bins, parsed.clip_audio, parsed.cochlea
    fs = int(cfg["sample_rate"])
    root = data_root(cfg["root"])
    require_files(root, ["fsdd/recordings"], "fsdd_mnist", FETCH_HINT)
    files = fsdd_split_of(fsdd_files(root), split, parsed.split)
    names = [f[3] for f in files]
    if snr_db is not None and not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be a finite number of dB or None, got {snr_db!r}")
    key = {"dataset": "fsdd_mnist_noisy_audio", "split": split, "files": names,
           "sizes": [(root / "fsdd" / "recordings" / n).stat().st_size for n in names], "T": t_bins,
           "clip_audio": clip_audio, "sample_rate": fs, "cochlea": cochlea.cache_fields(), **step_key(parsed),
           "snr_db": None if snr_db is None else float(snr_db), "seed": int(seed), "noise": "white",
           "code": [CODE_VERSION, NOISY_CODE_VERSION]}

    def build() -> dict:
        audio = np.zeros((len(names), t_bins, cochlea.n_channels), np.uint8)
        for i, name in enumerate(tqdm(names, desc=f"cochlea {split} (snr {snr_db} dB)", unit="clip", leave=False)):
            wave = read_wav(root / "fsdd" / "recordings" / name, sample_rate=fs)
            if snr_db is not None:
                rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
                wave = add_noise(wave, white_noise(wave.size, rng), float(snr_db))
            audio[i] = _encode_clip(wave, fs, cochlea, t_bins, clip_audio, step_us=parsed.step_us)
        return {"audio": audio}

    return load_or_build(Path(cfg["cache_dir"]).expanduser(), key, build)["audio"]


def dvs_bin_us(cfg) -> float:
    """Microseconds per time bin of fsdd_mnist's DVS streams: the saccades' window over data.T."""
    dvs = DVSParams(**dict(cfg["dvs"]))
    return dvs.saccade_us * len(dvs.saccade_vertices_px) / int(cfg["T"])


def noisy_vision(cfg, vision: np.ndarray, multiplier: float, seed: int = 0) -> np.ndarray:
    """fsdd_mnist vision streams (N, T, 2, 34, 34) plus background events at ``multiplier`` x the DVS
    emulator's own background rate (data.dvs.noise_rate_hz per pixel, ON with data.dvs.noise_on_fraction),
    binned at :func:`dvs_bin_us` and clipped at data.clip (sensors.dvs_emulator.add_background_events)."""
    dvs = DVSParams(**dict(cfg["dvs"]))
    if not (np.isfinite(multiplier) and multiplier >= 0):
        raise ValueError(f"multiplier must be a finite number >= 0, got {multiplier!r}")
    return add_background_events(vision, multiplier * dvs.noise_rate_hz, dvs_bin_us(cfg), dvs.noise_on_fraction,
                                 int(cfg["clip"]), np.random.default_rng(seed))


BUILDERS = {"synth": build_synth, "fsdd_mnist": build_fsdd_mnist, "tonic": build_tonic}


def build_dataset(cfg, split: str, settings: DataSettings | None = None) -> PairedSpikes:
    """The ``split`` of the data set ``cfg`` (``cfg.data``) describes, built or read from the cache. ``settings``:
    the config parsed once by the app (sensors.data_options.parse_data_config); None parses it here (a test,
    a bench script). Dispatch on data.source (tonic: any Tonic data set or pair, sensors/tonic_pairs.py),
    else data.name."""
    check_split(split)
    settings = parse_data_config(cfg) if settings is None else settings
    return BUILDERS[settings.kind](cfg, split, settings)
