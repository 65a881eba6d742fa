"""Train / val / test splits (sensors/splits.py) on a made-up FSDD listing of full size (6 speakers, 50
takes of every digit) and on the real fixture recordings: disjoint by take, speaker and digit, each
leave-one-speaker-out fold with test digits of its own, val never augmented, errors naming the option."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from sensors.datasets import build_dataset
from sensors.splits import (DataConfigError, FsddSplit, fsdd_split, fsdd_split_of, held_out_slots, mnist_pool,
                            slice_pool)
from tests.support.configs import compose_config

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
FILES = [(d, s, t, f"{d}_{s}_{t}.wav") for d in range(10) for s in SPEAKERS for t in range(50)]
LABELS = np.repeat(np.arange(10), 500)[np.random.default_rng(0).permutation(5000)]   # 500 digits per class, shuffled


def splits(kind, test_speakers=(), val_speakers=(), val_takes=(5, 6, 7, 8, 9)):
    return {split: fsdd_split(FILES, split, kind, list(test_speakers), list(val_speakers), list(val_takes))
            for split in ("train", "val", "test")}


def test_official_split_is_disjoint_by_take_and_covers_every_clip():
    parts = splits("official")
    takes = {k: {t for _, _, t, _ in v} for k, v in parts.items()}
    assert takes == {"test": set(range(5)), "val": set(range(5, 10)), "train": set(range(10, 50))}
    assert sorted(itertools.chain(*parts.values())) == sorted(FILES)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [2400, 300, 300]


def test_speaker_split_is_disjoint_by_speaker():
    parts = splits("speaker", ["lucas", "george"], ["nicolas"])
    who = {k: {s for _, s, _, _ in v} for k, v in parts.items()}
    assert who == {"test": {"lucas", "george"}, "val": {"nicolas"}, "train": {"jackson", "theo", "yweweler"}}
    assert sorted(itertools.chain(*parts.values())) == sorted(FILES)


@pytest.mark.parametrize("kind, test, val, takes, split, message", [
    ("speaker", ["lucas"], ["lucas"], (), "train", r"data.val_speakers: \['lucas'\] also in data.test_speakers"),
    ("speaker", ["lucas"], ["bob"], (), "val", r"data.val_speakers: \['bob'\] not among the FSDD speakers"),
    ("speaker", ["bob"], [], (), "test", r"data.test_speakers: \['bob'\] not among the FSDD speakers"),
    ("speaker", ["lucas"], [], (), "val", r"data.val_speakers: \[\] leaves the val split with no FSDD clip"),
    ("speaker", SPEAKERS[:3], SPEAKERS[3:], (), "train",
     r"data.test_speakers \+ data.val_speakers: .* leaves the train split with no FSDD clip"),
    ("official", [], [], (4, 5), "train", r"data.val_takes: \[4\] are official test takes \(0-4\)"),
    ("official", [], [], (), "val", r"data.val_takes: \[\] leaves the val split with no FSDD clip"),
    ("random", [], [], (), "train", r"data.split must be one of \('official', 'speaker'\)"),
])
def test_bad_split_options_name_the_option(kind, test, val, takes, split, message):
    with pytest.raises(DataConfigError, match=message):
        fsdd_split(FILES, split, kind, test, val, takes)


def test_split_options_are_read_and_type_checked():
    cfg = {"split": "speaker", "test_speakers": ["lucas"], "val_speakers": ["theo"], "val_takes": [7]}
    settings = FsddSplit.from_config(cfg)
    assert settings == FsddSplit("speaker", ("lucas",), ("theo",), (7,))
    assert {s for _, s, _, _ in fsdd_split_of(FILES, "val", settings)} == {"theo"}
    with pytest.raises(DataConfigError, match="data.val_speakers: 'theo', expected a list"):
        FsddSplit.from_config({**cfg, "val_speakers": "theo"})
    with pytest.raises(DataConfigError, match="data.val_takes: .*expected a list of FSDD take indices"):
        FsddSplit.from_config({**cfg, "val_takes": ["five"]})


def fold_digits(speaker: str, per_class: int = 180, val_per_class: int = 50) -> dict[str, set[int]]:
    """A single-speaker fold's MNIST rows (all classes) per split, as build_fsdd_mnist draws them."""
    settings = FsddSplit("speaker", (speaker,), ())
    slots, n_slots = held_out_slots(settings, SPEAKERS)
    test = mnist_pool(LABELS, "test", per_class, val_per_class)
    out = {"test": set(np.concatenate([slice_pool(rows, slots, n_slots) for rows in test.values()]).tolist())}
    for split in ("train", "val"):
        out[split] = set(np.concatenate(list(mnist_pool(LABELS, split, per_class, val_per_class).values())).tolist())
    return out


def test_each_leave_one_speaker_out_fold_has_test_digits_of_its_own():
    folds = {s: fold_digits(s) for s in SPEAKERS}
    for a, b in itertools.combinations(SPEAKERS, 2):
        assert not folds[a]["test"] & folds[b]["test"], (a, b)
    for s, digits in folds.items():
        assert len(digits["test"]) == 10 * (180 // 6)                         # 30 digits per class
        assert not digits["test"] & digits["val"] and not digits["test"] & digits["train"]
        assert not digits["val"] & digits["train"]
    # the official split tests on the whole held-out pool
    assert held_out_slots(FsddSplit("official"), SPEAKERS) == ([0], 1)
    with pytest.raises(DataConfigError, match="data.mnist_test_per_class=5 is below the 6 FSDD speakers"):
        slice_pool(np.arange(5), [0], 6)


# ---- real fixture recordings (tests/data: george, lucas, nicolas; takes 0 and 5; 10 MNIST digits per class)

def fsdd_cfg(root, cache, *extra):
    return compose_config("data_app", ["data=fsdd_mnist", f"data.root={root}", "data.T=8", f"data.cache_dir={cache}",
                                       "data.split=speaker", "data.mnist_test_per_class=3", "data.mnist_val_per_class=2",
                                       *extra]).data


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("splits_cache")


def frames(data) -> set[bytes]:
    return {f.tobytes() for f in data.vision_pool}


def test_speaker_split_builds_three_disjoint_splits(fixture_data_root, cache):
    cfg = fsdd_cfg(fixture_data_root, cache, "data.test_speakers=[lucas]", "data.val_speakers=[george]")
    parts = {split: build_dataset(cfg, split) for split in ("train", "val", "test")}
    assert [len(parts[k].labels) for k in ("train", "val", "test")] == [20, 20, 20]   # one speaker each
    assert parts["val"].pool_labels is None and parts["train"].pool_labels is not None   # val: fixed pairing
    assert parts["train"].vision_pool.shape[0] == 50 and parts["val"].vision_pool.shape[0] == 20   # 5 and 2 per class
    assert parts["test"].vision_pool.shape[0] == 10                     # lucas's slice: 1 of the 3 held-out per class
    for a, b in itertools.combinations(parts, 2):
        assert not frames(parts[a]) & frames(parts[b]), (a, b)           # no MNIST digit in two splits
        assert not {x.tobytes() for x in parts[a].audio} & {x.tobytes() for x in parts[b].audio}, (a, b)


def test_two_folds_never_share_a_test_digit(fixture_data_root, cache):
    tests = {s: build_dataset(fsdd_cfg(fixture_data_root, cache, f"data.test_speakers=[{s}]", "data.val_speakers=[]"),
                              "test") for s in ("george", "lucas", "nicolas")}
    for a, b in itertools.combinations(tests, 2):
        assert not frames(tests[a]) & frames(tests[b]), (a, b)


def test_val_split_is_never_augmented(fixture_data_root, cache):
    extra = ["data.test_speakers=[lucas]", "data.val_speakers=[george]"]
    plain = build_dataset(fsdd_cfg(fixture_data_root, cache, *extra), "val")
    augmented = build_dataset(fsdd_cfg(fixture_data_root, cache, *extra, "data.augment.enabled=true",
                                       "data.augment.copies=1"), "val")
    assert np.array_equal(plain.audio, augmented.audio) and np.array_equal(plain.vision, augmented.vision)
    assert len(augmented.labels) == 20 and augmented.pool_labels is None
