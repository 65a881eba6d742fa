"""Paired (or unimodal) spike data sets from Tonic data sets in a local folder.

    build_tonic(cfg, split) -> PairedSpikes

``cfg`` is a data config of configs/data/ with ``source: tonic`` (for example nmnist_shd.yaml,
nmnist_ntidigits18.yaml, or nmnist.yaml / shd.yaml for one sensor). Each modality section
(``vision``, ``audio``) names a Tonic data set (sensors/tonic_datasets.py, never downloading), its
binning window and a class map: ``classes[target]`` is the class of Tonic target ``target``, or
null to drop it (SHD's German digits can join the English ones; N-TIDIGITS' "o" and "z" both
become class 0). A class that one modality has and the other lacks is a config error.

Pairing follows fsdd_mnist's seeded rule (sensors/datasets.py): the audio samples are the anchors; per
class the vision pool is permuted with ``default_rng([pair_seed, split index])`` and the anchors of
that class take the permuted pool rows in turn. The train split keeps its whole vision pool, so the
trainer can re-pair every epoch; the val and test splits keep only the paired frames. A unimodal
data set holds just its one modality.

Splits (sensors/splits.py): test is the Tonic data set's own test split. val is carved from its
training split, per modality and per class: a seeded choice (``default_rng([pair_seed, 2, 5, class])``)
of round(``data.val_fraction`` x the class's selected training samples), at least one and never all of
them; train is the rest. val shares its recordings' speakers and writers with train (Tonic's train
split has no finer grouping here): it ranks choices, the test split measures generalisation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from sensors.binning import bin_audio_events, bin_camera_events
from sensors.cache import load_or_build
from sensors.paired import PairedSpikes
from sensors.paths import data_root
from sensors.splits import PAIR_SEED_IDS, DataConfigError
from sensors.tonic_datasets import DATASETS, check_tonic_folder, load_tonic_dataset

CODE_VERSION = "tonic-pairs-2"  # bump when the encoding below changes what it produces
VISION_SETS = ("nmnist", "dvsgesture")
AUDIO_SETS = ("shd", "ntidigits18")


def class_map(section, where: str, n_classes: int) -> list[int | None]:
    """``section.classes`` checked: a list whose entry ``target`` is a class in 0..n_classes-1 or None."""
    classes = section["classes"]
    if classes is None or isinstance(classes, str) or not len(classes):
        raise DataConfigError(f"{where}.classes must be a list mapping each Tonic target to a class or null")
    out = []
    for target, c in enumerate(classes):
        if c is not None and (isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < n_classes):
            raise DataConfigError(f"{where}.classes[{target}]={c!r}; expected a class in 0..{n_classes - 1} or null")
        out.append(c)
    return out


def modality_sections(cfg) -> dict[str, object]:
    """The config's modality sections by modality, checked against ``modalities`` and the data set kinds."""
    modalities = list(cfg["modalities"])
    if not modalities or not set(modalities) <= {"audio", "vision"}:
        raise DataConfigError(f"data.modalities={modalities!r}; expected [vision], [audio] or [audio, vision]")
    out = {}
    for m in modalities:
        section = cfg[m]
        if section is None or "dataset" not in section:
            raise DataConfigError(f"data.modalities lists {m} but data.{m}.dataset is not set")
        allowed = VISION_SETS if m == "vision" else AUDIO_SETS
        if section["dataset"] not in allowed:
            raise DataConfigError(f"data.{m}.dataset={section['dataset']!r}; expected one of {allowed}")
        out[m] = section
    return out


def tonic_targets(dataset) -> np.ndarray:
    """Every sample's Tonic target (int64): the data set's ``targets`` list when it has one, else read
    sample by sample (SHD and N-TIDIGITS keep them inside their HDF5 file)."""
    targets = getattr(dataset, "targets", None)
    if targets is not None and len(targets) == len(dataset):
        return np.asarray(targets, np.int64)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], np.int64)


def select_rows(targets: np.ndarray, classes: list[int | None], per_class: int | None, seed, where: str):
    """(rows, classes of those rows): samples whose target maps to a class, at most ``per_class``
    per class (a seeded choice), in data set order."""
    mapped = np.array([classes[t] if 0 <= t < len(classes) and classes[t] is not None else -1 for t in targets],
                      np.int64)
    unknown = sorted({int(t) for t in targets if t >= len(classes)})
    if unknown:
        raise DataConfigError(f"{where}.classes has {len(classes)} entries but the data set has target(s) {unknown[:5]}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(mapped[mapped >= 0]):
        rows = np.flatnonzero(mapped == c)
        if per_class is not None and rows.size > per_class:
            rows = np.sort(rng.choice(rows, per_class, replace=False))
        keep.append(rows)
    rows = np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)
    return rows, mapped[rows]


def folder_fingerprint(folder: Path) -> list:
    """(file count, total bytes, newest mtime in ns) of a data set folder: keys the cache, so a
    changed or re-extracted data set is encoded again."""
    files = [p.stat() for p in folder.rglob("*") if p.is_file()]
    return [len(files), sum(s.st_size for s in files), max((s.st_mtime_ns for s in files), default=0)]


def encode_modality(dataset, rows: np.ndarray, kind: str, section, t_bins: int, clip: int, desc: str) -> np.ndarray:
    """Bin the selected samples: vision (R, T, P, H, W) or audio (R, T, C) uint8 counts clipped to ``clip``.

    The window of each sample is [0, window_us) when ``window_us`` is set, else [0, its last time stamp]."""
    size = tuple(DATASETS[section["dataset"]].sensor_size)   # Tonic's (W, H, P)
    window = section["window_us"]
    shape = (size[2], size[1], size[0]) if kind == "vision" else (size[0],)
    out = np.zeros((rows.size, t_bins, *shape), np.uint8)
    for i, row in enumerate(tqdm(rows, desc=desc, unit="sample", leave=False)):
        events = dataset[int(row)][0]
        end = int(window) if window else int(events["t"].max()) + 1 if len(events) else 1
        if kind == "vision":
            out[i] = bin_camera_events(events, size, t_bins, clip, 0, end)
        else:
            out[i] = bin_audio_events(events, size[0], t_bins, clip, 0, end)
    return out


def val_fraction(cfg) -> float:
    """``data.val_fraction`` checked: the share of each class's training samples carved off as val."""
    value = cfg["val_fraction"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise DataConfigError(f"data.val_fraction={value!r}; expected a fraction in (0, 1) of each class's "
                              "training samples (the val split carved from Tonic's train split)")
    return float(value)


def carve(classes: np.ndarray, split: str, fraction: float, pair_seed: int) -> np.ndarray:
    """Positions (into ``classes``, the selected training samples' classes) that belong to ``split``
    ("train" or "val"): per class a seeded choice of round(fraction x count) samples, clipped to
    1..count-1, is val; the rest is train. The same for every modality that has the class's count."""
    is_val = np.zeros(classes.size, bool)
    for c in np.unique(classes):
        rows = np.flatnonzero(classes == c)
        n_val = min(max(int(round(fraction * rows.size)), 1), rows.size - 1)
        rng = np.random.default_rng([pair_seed, PAIR_SEED_IDS["val"], 5, int(c)])
        is_val[rng.choice(rows, n_val, replace=False)] = True
    return np.flatnonzero(is_val if split == "val" else ~is_val)


def pair_by_class(anchor_classes: np.ndarray, pool_classes: np.ndarray, pair_seed: int, split: str) -> np.ndarray:
    """For each anchor (audio sample), the index of its vision pool row: fsdd_mnist's seeded rule."""
    rng = np.random.default_rng([pair_seed, PAIR_SEED_IDS[split]])
    index = np.zeros(anchor_classes.size, np.int64)
    for c in range(int(max(anchor_classes.max(initial=-1), pool_classes.max(initial=-1))) + 1):
        pool = np.flatnonzero(pool_classes == c)
        anchors = np.flatnonzero(anchor_classes == c)
        if anchors.size:
            index[anchors] = rng.permutation(pool)[np.arange(anchors.size) % pool.size]
    return index


def check_paired_classes(classes: dict[str, np.ndarray], split: str) -> None:
    """Every class present in one modality must be present in the other (else it cannot be paired)."""
    if len(classes) < 2:
        return
    a, v = set(classes["audio"].tolist()), set(classes["vision"].tolist())
    for m, only in (("audio", sorted(a - v)), ("vision", sorted(v - a))):
        if only:
            other = "vision" if m == "audio" else "audio"
            raise DataConfigError(f"class(es) {only} of data.{m}.classes have no {other} sample in the {split} split "
                                  f"(data.{other}.classes maps no target there): every class needs both modalities")


def build_tonic(cfg, split: str, settings) -> PairedSpikes:
    """Encode (and cache) a Tonic data set or pair of data sets as PairedSpikes; ``settings``: the config's
    parsed parts (sensors.data_options.DataSettings: T, clips, sensor sections, validation share)."""
    fraction, sections, t_bins = settings.val_fraction, settings.tonic_sections, settings.t_bins
    n_classes, pair_seed = int(cfg["n_classes"]), int(cfg["pair_seed"])
    root = data_root(cfg["root"])
    clip = {"vision": settings.clip, "audio": settings.clip_audio}
    train = split == "train"
    tonic_train = split != "test"       # val is carved from Tonic's train split
    folders = {m: check_tonic_folder(s["dataset"], root, tonic_train) for m, s in sections.items()}
    plain = {m: {k: (list(v) if k == "classes" else dict(v) if k == "options" else v) for k, v in s.items()}
             for m, s in sections.items()}
    key = {"dataset": "tonic", "split": split, "T": t_bins, "clip": clip, "n_classes": n_classes,
           "pair_seed": pair_seed, "val_fraction": fraction, "sections": plain, "folders": {m: folder_fingerprint(f) for m, f in folders.items()},
           "code": CODE_VERSION}
    maps = {m: class_map(s, f"data.{m}", n_classes) for m, s in sections.items()}

    def build() -> dict:
        encoded, classes = {}, {}
        for m, s in sections.items():
            ds = load_tonic_dataset(s["dataset"], root, train=tonic_train, **dict(s["options"] or {}))
            per_class = s["max_per_class"]
            draw = PAIR_SEED_IDS["train" if tonic_train else "test"]
            rows, classes[m] = select_rows(tonic_targets(ds), maps[m], per_class, [pair_seed, draw, 3], f"data.{m}")
            if tonic_train:
                keep = carve(classes[m], split, fraction, pair_seed)
                rows, classes[m] = rows[keep], classes[m][keep]
            if not rows.size:
                raise DataConfigError(f"data.{m}.classes keeps no sample of {s['dataset']} ({split} split)")
            encoded[m] = encode_modality(ds, rows, m, s, t_bins, clip[m], f"{s['dataset']} {split}")
        check_paired_classes(classes, split)
        if "audio" not in encoded:      # vision only: every sample is its own frame
            return {"vision_pool": encoded["vision"], "vision_index": np.arange(classes["vision"].size),
                    "labels": classes["vision"]}
        if "vision" not in encoded:
            return {"audio": encoded["audio"], "labels": classes["audio"]}
        index = pair_by_class(classes["audio"], classes["vision"], pair_seed, split)
        pool, pool_labels = encoded["vision"], classes["vision"]
        if not train:                   # keep only the paired frames
            used, index = np.unique(index, return_inverse=True)
            pool, pool_labels = pool[used], pool_labels[used]
        return {"vision_pool": pool, "vision_index": index, "pool_labels": pool_labels, "audio": encoded["audio"],
                "labels": classes["audio"]}

    arrays = load_or_build(Path(cfg["cache_dir"]).expanduser(), key, build)
    both = "audio" in arrays and "vision_pool" in arrays
    return PairedSpikes(arrays.get("audio"), arrays["labels"], arrays.get("vision_pool"), arrays.get("vision_index"),
                        pool_labels=arrays["pool_labels"] if both and train else None, pair_seed=pair_seed)
