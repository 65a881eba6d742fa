"""Train / validation / test splits of the paired data sets: each rule written once (docs/evaluation.md).

Every data set has three splits, ``SPLITS``. Choices (recipes, sizes, Pareto points, thresholds) are
made on ``val``; ``test`` is read once per reported number. The rules here are fsdd_mnist's:

FSDD clips (:func:`fsdd_split`):
  official  test = takes 0-4 (FSDD's own split), val = the takes in ``data.val_takes`` (default
            5-9, all >= 5), train = every other take.
  speaker   test = ``data.test_speakers``, val = ``data.val_speakers`` (disjoint from the test
            speakers), train = every other speaker.
MNIST digits (:func:`mnist_pool`), per class in row order: the last ``data.mnist_test_per_class``
rows are the held-out pool, the ``data.mnist_val_per_class`` rows before them the val pool, the
rest the train pool; the three are disjoint.
Test digits of the speaker split (:func:`held_out_slots`): the held-out pool is cut into one
equal slice per FSDD speaker (slice k for the k-th speaker in sorted order) and the split's test
digits are its test speakers' slices, so two leave-one-speaker-out folds never share a test digit.
The official split tests on the whole held-out pool.

Where the test digits come from (:func:`vision_test_source`, ``data.vision_test_source``):
  mnist5k     (default) the held-out pool above: MNIST 5k rows, by the writers of MNIST's training set.
  mnist_test  MNIST's official test set (t10k, writers disjoint from the training set's; :func:`mnist_test_pool`):
              each class's t10k rows in a fixed seeded order (``MNIST_TEST_ORDER_SEED``; t10k's file order is
              not uniform in writer population), cut into slices as above, so the official split tests on a
              seeded draw of the whole class and each leave-one-speaker-out fold on a slice of its own (with 6
              FSDD speakers at least 148 digits per class, none repeated within a fold). The 5k set then holds
              nothing out for test: ``data.mnist_test_per_class`` carves nothing, the last
              ``data.mnist_val_per_class`` rows of each class are val and the rest train, so every choice is
              still made on training writers and the test writers are met only by the test split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensors.options import OptionError

SPLITS = ("train", "val", "test")
# Seeds per-split draws (pairing permutations): train and test keep the numbers they had before val existed.
PAIR_SEED_IDS = {"train": 0, "test": 1, "val": 2}
OFFICIAL_TEST_TAKES = range(0, 5)          # FSDD's official test split: take index 0-4
DEFAULT_VAL_TAKES = (5, 6, 7, 8, 9)
FSDD_SPLITS = ("official", "speaker")
# data.vision_test_source: where the test split's digits come from, and what a report says about their writers.
VISION_SOURCES = {"mnist5k": "mnist5k: MNIST training writers",
                  "mnist_test": "mnist_test: MNIST t10k, writers disjoint from training"}
DEFAULT_VISION_TEST_SOURCE = "mnist5k"
MNIST_TEST_ORDER_SEED = 10_000             # seeds each class's fixed order of t10k rows (default_rng([seed, class]))


# An invalid data option: the one option error class of sensors, edge_taaf and quant (sensors/options.py).
DataConfigError = OptionError


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


@dataclass(frozen=True)
class FsddSplit:
    """fsdd_mnist's split options: data.split, data.test_speakers, data.val_speakers, data.val_takes."""

    kind: str = "official"
    test_speakers: tuple[str, ...] = ()
    val_speakers: tuple[str, ...] = ()
    val_takes: tuple[int, ...] = DEFAULT_VAL_TAKES

    @classmethod
    def from_config(cls, cfg) -> "FsddSplit":
        """The options of a data config (data.split, test_speakers, val_speakers, val_takes), types checked."""
        lists = {}
        for name in ("test_speakers", "val_speakers"):
            value = cfg[name]
            if isinstance(value, str) or not all(isinstance(s, str) for s in value):
                raise DataConfigError(f"data.{name}: {value!r}, expected a list of FSDD speaker names")
            lists[name] = tuple(value)
        takes = cfg["val_takes"]
        if isinstance(takes, str) or not all(isinstance(t, int) and not isinstance(t, bool) for t in takes):
            raise DataConfigError(f"data.val_takes: {takes!r}, expected a list of FSDD take indices >= 5")
        return cls(str(cfg["split"]), lists["test_speakers"], lists["val_speakers"], tuple(int(t) for t in takes))

    def as_key(self) -> dict:
        """The fields that shape a split, for a cache key."""
        return {"kind": self.kind, "test_speakers": sorted(self.test_speakers),
                "val_speakers": sorted(self.val_speakers), "val_takes": sorted(self.val_takes)}


def _check_speakers(files, test_speakers, val_speakers) -> None:
    speakers = sorted({s for _, s, _, _ in files})
    unknown = sorted(set(test_speakers) - set(speakers))
    if unknown or not test_speakers:
        raise DataConfigError(f"data.test_speakers: {unknown or 'empty list'} not among the FSDD speakers {speakers}")
    unknown = sorted(set(val_speakers) - set(speakers))
    if unknown:
        raise DataConfigError(f"data.val_speakers: {unknown} not among the FSDD speakers {speakers}")
    both = sorted(set(val_speakers) & set(test_speakers))
    if both:
        raise DataConfigError(f"data.val_speakers: {both} also in data.test_speakers; expected validation speakers "
                              "disjoint from the test speakers")


def _membership(files, kind: str, test_speakers, val_speakers, val_takes) -> list[str]:
    """The split of every file: "train", "val" or "test"."""
    if kind == "official":
        early = sorted(t for t in val_takes if t in OFFICIAL_TEST_TAKES)
        if early:
            raise DataConfigError(f"data.val_takes: {early} are official test takes (0-4); expected takes >= 5")
        return ["test" if take in OFFICIAL_TEST_TAKES else "val" if take in set(val_takes) else "train"
                for _, _, take, _ in files]
    if kind == "speaker":
        _check_speakers(files, test_speakers, val_speakers)
        return ["test" if s in set(test_speakers) else "val" if s in set(val_speakers) else "train"
                for _, s, _, _ in files]
    raise DataConfigError(f"data.split must be one of {FSDD_SPLITS}, got {kind!r}")


def fsdd_split(files, split: str, kind: str, test_speakers, val_speakers=(),
               val_takes=DEFAULT_VAL_TAKES) -> list[tuple[int, str, int, str]]:
    """The (digit, speaker, take, file name) entries of ``files`` in ``split`` (module docstring's rules).

    Raises DataConfigError naming the option: an unknown or overlapping speaker, a val take among the
    official test takes, or a requested val / train split that holds no clip (e.g. no data.val_speakers)."""
    check_split(split)
    member = _membership(files, kind, test_speakers, val_speakers, val_takes)
    out = [f for f, m in zip(files, member) if m == split]
    if not out and split != "test":
        option = ("data.val_speakers" if split == "val" else "data.test_speakers + data.val_speakers") \
            if kind == "speaker" else "data.val_takes"
        held = list(val_speakers) if kind == "speaker" and split == "val" else \
            [*test_speakers, *val_speakers] if kind == "speaker" else list(val_takes)
        raise DataConfigError(f"{option}: {held} leaves the {split} split with no FSDD clip "
                              f"({len(files)} clips, takes {sorted({t for _, _, t, _ in files})}, "
                              f"speakers {sorted({s for _, s, _, _ in files})})")
    return out


def fsdd_split_of(files, split: str, settings: FsddSplit) -> list[tuple[int, str, int, str]]:
    """:func:`fsdd_split` with the options of a :class:`FsddSplit`."""
    return fsdd_split(files, split, settings.kind, settings.test_speakers, settings.val_speakers, settings.val_takes)


def vision_test_source(cfg) -> str:
    """``data.vision_test_source`` checked."""
    value = cfg["vision_test_source"]
    if value not in VISION_SOURCES:
        raise DataConfigError(f"data.vision_test_source: {value!r}, expected one of {list(VISION_SOURCES)} "
                              "(mnist_test: MNIST's official test set, writers absent from training)")
    return str(value)


def mnist_pool(labels: np.ndarray, split: str, test_per_class: int, val_per_class: int = 0,
               hold_out: bool = True) -> dict[int, np.ndarray]:
    """Row indices of each class's pool for ``split``: per class in row order, the last ``test_per_class``
    rows are the held-out (test) pool, the ``val_per_class`` rows before them the val pool, the rest train.

    ``hold_out=False`` (the test digits come from MNIST t10k, :func:`mnist_test_pool`): nothing is held out,
    ``test_per_class`` is not read, the last ``val_per_class`` rows are val and the rest train; the test
    split has no pool here (ValueError)."""
    check_split(split)
    if not hold_out and split == "test":
        raise ValueError("with data.vision_test_source=mnist_test the test digits come from MNIST t10k "
                         "(mnist_test_pool), not from the 5k set")
    if isinstance(val_per_class, bool) or val_per_class < 0 or (split == "val" and val_per_class < 1):
        raise DataConfigError(f"data.mnist_val_per_class must be >= 1 for the val split, got {val_per_class}")
    test_per_class = test_per_class if hold_out else 0
    pools = {}
    for c in range(10):
        rows = np.flatnonzero(labels == c)
        spare = 2 if hold_out else 1                  # digits that must stay: one to train (and one to test)
        if val_per_class > rows.size - spare:
            raise DataConfigError(f"data.mnist_val_per_class={val_per_class} leaves class {c} ({rows.size} digits) "
                                  f"no {'test and ' if hold_out else ''}train digit; expected at most "
                                  f"{rows.size - spare}")
        if hold_out and not 0 < test_per_class < rows.size - val_per_class:
            raise DataConfigError(f"data.mnist_test_per_class must lie in 1..{rows.size - val_per_class - 1}, got "
                                  f"{test_per_class} (class {c} has {rows.size} digits, data.mnist_val_per_class="
                                  f"{val_per_class}; at least one must stay for training)")
        cut_test, cut_val = rows.size - test_per_class, rows.size - test_per_class - val_per_class
        pools[c] = {"test": rows[cut_test:], "val": rows[cut_val:cut_test], "train": rows[:cut_val]}[split]
    return pools


def mnist_test_pool(labels: np.ndarray, slots: list[int], n_slots: int) -> dict[int, np.ndarray]:
    """Row indices of MNIST t10k (``labels``: its labels in file order) that the test split pairs from, per
    class: the class's rows in their fixed seeded order (``MNIST_TEST_ORDER_SEED``), slices ``slots`` of
    ``n_slots`` (:func:`held_out_slots`): the official split draws from the whole class, each speaker's
    slice is its own."""
    pools = {}
    for c in range(10):
        rows = np.random.default_rng([MNIST_TEST_ORDER_SEED, c]).permutation(np.flatnonzero(labels == c))
        pools[c] = slice_pool(rows, slots, n_slots,
                              f"data.vision_test_source=mnist_test: class {c} of MNIST t10k holds {rows.size} digits,")
    return pools


def held_out_slots(settings: FsddSplit, speakers: list[str]) -> tuple[list[int], int]:
    """(slots, n_slots): which equal slices of the held-out MNIST pool the test split pairs with.

    official: the whole pool ([0], 1). speaker: one slice per FSDD speaker in ``speakers`` (sorted), and
    the slices of the test speakers, so each single-speaker fold has test digits of its own."""
    if settings.kind != "speaker":
        return [0], 1
    ordered = sorted(speakers)
    return sorted(ordered.index(s) for s in settings.test_speakers), len(ordered)


def slice_pool(rows: np.ndarray, slots: list[int], n_slots: int, pool: str | None = None) -> np.ndarray:
    """The rows of slices ``slots`` when ``rows`` is cut into ``n_slots`` equal consecutive slices (a
    remainder of len(rows) % n_slots rows at the end belongs to none). ``pool`` names the pool in the
    error raised when it is smaller than ``n_slots`` (default: the 5k set's held-out pool)."""
    size = rows.size // n_slots
    if size < 1:
        pool = pool or f"data.mnist_test_per_class={rows.size}"
        raise DataConfigError(f"{pool} is below the {n_slots} FSDD speakers: the "
                              "speaker split gives each speaker its own slice of the held-out digits, expected at "
                              f"least {n_slots}")
    return np.concatenate([rows[k * size:(k + 1) * size] for k in slots])
