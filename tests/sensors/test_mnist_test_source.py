"""data.vision_test_source=mnist_test: fsdd_mnist's test digits come from MNIST's official test set (t10k,
writers absent from training), train and val digits from the 5k set; each leave-one-speaker-out fold tests on
its own t10k slice; t10k digits get DVS seeds of their own; the default (mnist5k) is unchanged. Fixture data:
tests/data/mnist_test (the first 20 t10k digits per class), tests/data/mnist5k (10 per class)."""
from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest

from sensors.datasets import MNIST_TEST_DVS_SEED_OFFSET, _encode_digit, build_dataset, dvs_seed
from sensors.dvs_emulator import DVSParams
from sensors.mnist import load_mnist5k, load_mnist_test
from sensors.splits import (DataConfigError, FsddSplit, VISION_SOURCES, held_out_slots, mnist_pool, mnist_test_pool,
                            vision_test_source)
from tests.support.configs import compose_config

SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]          # MNIST t10k's digits per class
T10K_LABELS = np.repeat(np.arange(10), T10K_COUNTS)[np.random.default_rng(1).permutation(10_000)]


def test_vision_test_source_option_is_checked():
    assert vision_test_source({"vision_test_source": "mnist_test"}) == "mnist_test"
    with pytest.raises(DataConfigError, match=r"data.vision_test_source: 't10k', expected one of \['mnist5k', "
                                              r"'mnist_test'\]"):
        vision_test_source({"vision_test_source": "t10k"})


def test_each_fold_tests_on_its_own_slice_of_t10k():
    folds = {}
    for speaker in SPEAKERS:
        pools = mnist_test_pool(T10K_LABELS, *held_out_slots(FsddSplit("speaker", (speaker,)), SPEAKERS))
        for c, rows in pools.items():
            assert (T10K_LABELS[rows] == c).all() and rows.size == T10K_COUNTS[c] // 6 >= 148   # >= 50 clips a class
        folds[speaker] = set(np.concatenate(list(pools.values())).tolist())
        assert len(folds[speaker]) == sum(n // 6 for n in T10K_COUNTS)              # no row twice inside a fold
    for a, b in itertools.combinations(SPEAKERS, 2):
        assert not folds[a] & folds[b], (a, b)
    official = mnist_test_pool(T10K_LABELS, *held_out_slots(FsddSplit("official"), SPEAKERS))
    assert all(sorted(rows) == np.flatnonzero(T10K_LABELS == c).tolist() for c, rows in official.items())
    # the order is fixed (seeded), not t10k's file order, and the same on every call
    assert official[0].tolist() != sorted(official[0].tolist())
    assert mnist_test_pool(T10K_LABELS, [0], 1)[0].tolist() == official[0].tolist()
    with pytest.raises(DataConfigError, match="class 0 of MNIST t10k holds 3 digits, is below the 6 FSDD speakers"):
        mnist_test_pool(np.repeat(np.arange(10), 3), [0], 6)


def test_the_5k_set_holds_nothing_out_when_t10k_tests():
    labels = np.repeat(np.arange(10), 500)
    train, val = (mnist_pool(labels, split, 180, 50, hold_out=False) for split in ("train", "val"))
    for c in range(10):
        rows = np.flatnonzero(labels == c)
        assert val[c].tolist() == rows[-50:].tolist() and train[c].tolist() == rows[:-50].tolist()
    with pytest.raises(ValueError, match="test digits come from MNIST t10k"):
        mnist_pool(labels, "test", 180, 50, hold_out=False)
    with pytest.raises(DataConfigError, match="data.mnist_val_per_class=500 leaves class 0 .* no train digit"):
        mnist_pool(labels, "train", 0, 500, hold_out=False)


def test_t10k_digits_get_dvs_seeds_of_their_own():
    five_k = {dvs_seed(row, False) for row in range(5_000)}
    t10k = {dvs_seed(row, True) for row in range(10_000)}
    assert len(t10k) == 10_000 and not five_k & t10k and min(t10k) == MNIST_TEST_DVS_SEED_OFFSET


# ---- built on the fixture recordings (george, lucas, nicolas; takes 0 and 5)

def fsdd_cfg(root, cache, *extra):
    return compose_config("data_app", ["data=fsdd_mnist", f"data.root={root}", "data.T=8", f"data.cache_dir={cache}",
                                       "data.split=speaker", "data.mnist_test_per_class=3", "data.mnist_val_per_class=2",
                                       *extra]).data


T10K = ["data.vision_test_source=mnist_test"]          # data.mnist_test_root null: the data root holds mnist_test/


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("t10k_cache")


def frames(data) -> set[bytes]:
    return {f.tobytes() for f in data.vision_pool}


def test_test_digits_come_from_t10k_only_and_train_val_from_5k_only(fixture_data_root, cache):
    cfg = fsdd_cfg(fixture_data_root, cache, *T10K, "data.test_speakers=[lucas]", "data.val_speakers=[george]")
    parts = {split: build_dataset(cfg, split) for split in ("train", "val", "test")}
    dvs = DVSParams(**dict(cfg.dvs))
    t10k_images, _ = load_mnist_test(fixture_data_root)
    five_k_images, _ = load_mnist5k(fixture_data_root)
    t10k = {_encode_digit(im, dvs, dvs_seed(r, True), 8, 1).tobytes(): r for r, im in enumerate(t10k_images)}
    five_k = {_encode_digit(im, dvs, dvs_seed(r, False), 8, 1).tobytes() for r, im in enumerate(five_k_images)}
    assert frames(parts["test"]) <= set(t10k) and not frames(parts["test"]) & five_k
    assert frames(parts["train"]) | frames(parts["val"]) <= five_k
    assert parts["train"].vision_pool.shape[0] == 80                 # 10 - 2 val per class: nothing held out for test
    assert parts["test"].vision_pool.shape[0] == 20                  # lucas's 2 clips per class, 2 digits each
    # the builder emulates t10k row r with its own seed: row r's 5k seed would give other events
    row = t10k[next(iter(frames(parts["test"])))]
    assert _encode_digit(t10k_images[row], dvs, row, 8, 1).tobytes() not in t10k
    assert parts["test"].summary()["vision_source"] == VISION_SOURCES["mnist_test"] \
        == "mnist_test: MNIST t10k, writers disjoint from training"
    assert parts["train"].summary()["vision_source"] == parts["val"].summary()["vision_source"] \
        == "mnist5k: MNIST training writers"


def test_two_folds_never_share_a_t10k_test_digit(fixture_data_root, cache):
    tests = {s: build_dataset(fsdd_cfg(fixture_data_root, cache, *T10K, f"data.test_speakers=[{s}]",
                                       "data.val_speakers=[]"), "test") for s in ("george", "lucas", "nicolas")}
    for a, b in itertools.combinations(tests, 2):
        assert not frames(tests[a]) & frames(tests[b]), (a, b)
    for data in tests.values():
        assert len(frames(data)) == data.vision_pool.shape[0] == 20     # 2 clips per class, no digit twice


def test_bad_source_and_missing_t10k_files_name_the_option_file_and_fetch(fixture_data_root, tmp_path):
    with pytest.raises(DataConfigError, match="data.vision_test_source: 'mnist10k'"):
        build_dataset(fsdd_cfg(fixture_data_root, tmp_path, "data.vision_test_source=mnist10k"), "test")
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = fsdd_cfg(fixture_data_root, tmp_path, *T10K, f"data.mnist_test_root={empty}", "data.test_speakers=[lucas]")
    with pytest.raises(FileNotFoundError, match=r"empty is missing mnist_test/t10k-images-idx3-ubyte, "
                                                r"mnist_test/t10k-labels-idx1-ubyte.*edge-taaf-data fetch --source "
                                                r"mnist_test --root DIR"):
        build_dataset(cfg, "test")


def test_default_is_unchanged_and_the_key_holds_the_source_and_t10k_files(fixture_data_root, tmp_path):
    base = ["data.test_speakers=[lucas]", "data.val_speakers=[george]"]
    default = build_dataset(fsdd_cfg(fixture_data_root, tmp_path, *base), "test")
    keys = sorted(tmp_path.glob("*.json"))
    assert len(keys) == 1 and "vision_test_source" not in json.loads(keys[0].read_text())["params"]
    assert default.summary()["vision_source"] == "mnist5k: MNIST training writers"
    # mnist5k named, with a t10k folder that does not exist: the same key (no new file), the same tensors
    named = build_dataset(fsdd_cfg(fixture_data_root, tmp_path, *base, "data.vision_test_source=mnist5k",
                                   f"data.mnist_test_root={tmp_path / 'nowhere'}"), "test")
    assert sorted(tmp_path.glob("*.json")) == keys
    assert np.array_equal(named.vision, default.vision) and np.array_equal(named.audio, default.audio)
    # mnist_test: a key of its own; t10k files copied elsewhere: the same key; a changed file: a new key
    t10k = build_dataset(fsdd_cfg(fixture_data_root, tmp_path, *base, *T10K), "test")
    assert len(list(tmp_path.glob("*.json"))) == 2 and not frames(t10k) & frames(default)
    copy = tmp_path / "copy"
    shutil.copytree(fixture_data_root / "mnist_test", copy / "mnist_test")
    again = build_dataset(fsdd_cfg(fixture_data_root, tmp_path, *base, *T10K, f"data.mnist_test_root={copy}"), "test")
    assert len(list(tmp_path.glob("*.json"))) == 2 and np.array_equal(again.vision, t10k.vision)
    images = copy / "mnist_test" / "t10k-images-idx3-ubyte"
    raw = bytearray(images.read_bytes())
    raw[-1] ^= 0xFF                                      # one pixel of the last digit
    images.write_bytes(bytes(raw))
    build_dataset(fsdd_cfg(fixture_data_root, tmp_path, *base, *T10K, f"data.mnist_test_root={copy}"), "test")
    assert len(list(tmp_path.glob("*.json"))) == 3
