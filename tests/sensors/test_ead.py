"""EAD-style paired data sets: synth (no files) and fsdd_mnist (real FSDD + emulated MNIST)."""
import numpy as np
import pytest

from edge_taaf.dataset import PairedSpikeDataset
from sensors.datasets import (build_dataset, fsdd_files, fsdd_split, mnist_pool)
from sensors.splits import DataConfigError
from sensors.mnist import load_mnist5k
from sensors.synth import ModalityKnobs, SynthParams, synth_sample
from tests.support.configs import compose_config


def synth_cfg(tmp_path, *extra):
    return compose_config("data_app", ["data=synth", "data.n_train=20", "data.n_test=10", "data.T=8",
                                       f"data.cache_dir={tmp_path}", *extra]).data


def test_synth_shapes_labels_and_binary_spikes(tmp_path):
    data = build_dataset(synth_cfg(tmp_path), "train")
    assert data.vision.shape == (20, 8, 2, 34, 34) and data.audio.shape == (20, 8, 64)
    assert data.vision.dtype == np.uint8 and data.vision.max() == 1 and data.audio.max() == 1
    assert data.labels.tolist() == [i % 10 for i in range(20)]
    v, a, y = PairedSpikeDataset(data)[3]
    assert v.shape == (8, 2, 34, 34) and a.shape == (8, 64) and int(y) == 3


def test_synth_is_deterministic_and_splits_differ():
    p = SynthParams()
    cam1, aud1 = synth_sample(4, "train", 7, p)
    cam2, aud2 = synth_sample(4, "train", 7, p)
    assert np.array_equal(cam1, cam2) and np.array_equal(aud1, aud2)
    cam3, _ = synth_sample(4, "test", 7, p)
    assert not np.array_equal(cam1, cam3)


def test_synth_uninformative_modality_carries_only_noise():
    quiet = SynthParams(vision=ModalityKnobs(informative=0.0, rate_hz=500.0, noise_hz=0.0))
    cam, _ = synth_sample(2, "train", 0, quiet)
    assert cam.size == 0


def test_synth_jitter_shifts_audio_onset():
    clean = ModalityKnobs(informative=1.0, noise_hz=0.0)
    onsets = []
    for i in range(20):
        cam, aud = synth_sample(1, "train", i, SynthParams(jitter_us=100_000, vision=clean, audio=clean))
        onsets.append(int(aud["t"].min()) - int(cam["t"].min()))
    assert np.std(onsets) > 20_000


def test_cache_hit_and_changed_parameter_rebuilds(tmp_path):
    a = build_dataset(synth_cfg(tmp_path), "train")
    files = sorted(tmp_path.glob("*.npz"))
    b = build_dataset(synth_cfg(tmp_path), "train")
    assert sorted(tmp_path.glob("*.npz")) == files and np.array_equal(a.vision, b.vision)
    c = build_dataset(synth_cfg(tmp_path, "data.vision.noise_hz=40.0"), "train")
    assert len(list(tmp_path.glob("*.npz"))) == len(files) + 1
    assert c.vision.sum() > a.vision.sum()


@pytest.mark.parametrize("override,option", [("data.T=0", "data.T"), ("data.clip=0", "data.clip"),
                                             ("data.vision.informative=1.5", "data.vision.informative")])
def test_bad_synth_options_name_the_option(tmp_path, override, option):
    with pytest.raises(ValueError, match=option.replace(".", r"\.")):
        build_dataset(synth_cfg(tmp_path, override), "train")


# ---- fsdd_mnist: real data. The fixture set (tests/data: speakers george, lucas, nicolas; every digit;
# takes 0 and 5; 10 MNIST digits per class) always; the whole sets in EDGE_TAAF_DATA when marked full_data.

def fsdd_cfg(root, cache, *extra):
    return compose_config("data_app", ["data=fsdd_mnist", f"data.root={root}", "data.T=8",
                                       f"data.cache_dir={cache}", *extra]).data


def test_fsdd_official_and_speaker_splits_fixture(fixture_data_root):
    files = fsdd_files(fixture_data_root)
    assert len(files) == 60 and {s for _, s, _, _ in files} == {"george", "lucas", "nicolas"}
    # the fixture has takes 0 and 5 only: with take 9 as the val take, take 5 is all of train
    train, test = fsdd_split(files, "train", "official", [], val_takes=[9]), fsdd_split(files, "test", "official", [])
    assert len(test) == 30 and len(train) == 30
    assert all(take <= 4 for _, _, take, _ in test) and all(take >= 5 for _, _, take, _ in train)
    assert sorted(d for d, _, _, _ in test) == sorted(d for d, _, _, _ in train) == [d for d in range(10) for _ in range(3)]
    with pytest.raises(DataConfigError, match=r"data.val_takes: \[5, 6, 7, 8, 9\] leaves the train split with no FSDD clip"):
        fsdd_split(files, "train", "official", [])
    sp_test = fsdd_split(files, "test", "speaker", ["lucas", "george"])
    sp_train = fsdd_split(files, "train", "speaker", ["lucas", "george"])
    assert {s for _, s, _, _ in sp_test} == {"lucas", "george"} and len(sp_test) == 40
    assert {s for _, s, _, _ in sp_train} == {"nicolas"} and len(sp_train) == 20
    with pytest.raises(ValueError, match="test_speakers"):
        fsdd_split(files, "test", "speaker", ["alice"])


@pytest.mark.full_data
def test_fsdd_official_and_speaker_splits(full_data_root):
    files = fsdd_files(full_data_root)
    assert len(files) == 3000
    train, test = fsdd_split(files, "train", "official", []), fsdd_split(files, "test", "official", [])
    val = fsdd_split(files, "val", "official", [])
    assert len(test) == 300 and len(val) == 300 and len(train) == 2400 and all(take <= 4 for _, _, take, _ in test)
    assert all(5 <= take <= 9 for _, _, take, _ in val) and all(take >= 10 for _, _, take, _ in train)
    sp = {split: fsdd_split(files, split, "speaker", ["lucas", "george"], ["nicolas"]) for split in ("train", "val", "test")}
    assert {s for _, s, _, _ in sp["test"]} == {"lucas", "george"} and len(sp["test"]) == 1000
    assert {s for _, s, _, _ in sp["val"]} == {"nicolas"} and len(sp["val"]) == 500
    assert {s for _, s, _, _ in sp["train"]} == {"jackson", "theo", "yweweler"} and len(sp["train"]) == 1500
    with pytest.raises(ValueError, match="test_speakers"):
        fsdd_split(files, "test", "speaker", ["alice"])


def _check_pools(labels, per_class, val_per_class):
    pools = {split: mnist_pool(labels, split, per_class, val_per_class) for split in ("train", "val", "test")}
    for c in range(10):
        train, val, test = (set(pools[split][c].tolist()) for split in ("train", "val", "test"))
        assert not train & test and not train & val and not val & test                  # pairwise disjoint
        assert train | val | test == set(np.flatnonzero(labels == c).tolist())            # and every digit used
        assert all((labels[pools[split][c]] == c).all() for split in pools)
        assert len(test) == per_class and len(val) == val_per_class


def test_mnist_pools_are_disjoint_and_class_pure_fixture(fixture_data_root):
    _, labels = load_mnist5k(fixture_data_root)
    _check_pools(labels, 3, 2)
    with pytest.raises(ValueError, match="mnist_test_per_class must lie in 1..9"):
        mnist_pool(labels, "test", 10)  # a class would have no train digit left
    with pytest.raises(ValueError, match="mnist_test_per_class must lie in 1..6, got 7"):
        mnist_pool(labels, "train", 7, 3)  # with 3 val digits, 7 test digits leave none to train on
    with pytest.raises(ValueError, match="mnist_val_per_class must be >= 1 for the val split"):
        mnist_pool(labels, "val", 3, 0)


@pytest.mark.full_data
def test_mnist_pools_are_disjoint_and_class_pure(full_data_root):
    _, labels = load_mnist5k(full_data_root)
    _check_pools(labels, 100, 50)


# official: take 9 is the (absent) val take, so take 5 trains; speaker: no val speaker, so nicolas trains.
# The speaker split's test digits: the test speakers' slices (1 digit per class each) of the 3 held out.
@pytest.mark.parametrize("kind, n_test, n_train, n_test_digits", [("official", 30, 30, 30), ("speaker", 40, 20, 20)])
def test_fsdd_mnist_fixture_splits_are_deterministic_and_paired_by_class(fixture_data_root, tmp_path, kind, n_test,
                                                                           n_train, n_test_digits):
    extra = ["data.mnist_test_per_class=3", "data.mnist_val_per_class=0", f"data.split={kind}", "data.val_takes=[9]",
             "data.val_speakers=[]"]
    test = build_dataset(fsdd_cfg(fixture_data_root, tmp_path, *extra), "test")
    assert test.vision.shape == (n_test, 8, 2, 34, 34) and test.audio.shape == (n_test, 8, 64)
    assert np.bincount(test.labels).tolist() == [n_test // 10] * 10
    assert test.audio.reshape(n_test, -1).sum(1).min() > 0 and test.vision.reshape(n_test, -1).sum(1).min() > 0
    assert test.vision_pool.shape[0] == n_test_digits
    again = build_dataset(fsdd_cfg(fixture_data_root, tmp_path / "other", *extra), "test")  # from scratch: identical
    assert np.array_equal(test.vision, again.vision) and np.array_equal(test.audio, again.audio)
    assert np.array_equal(test.labels, again.labels)

    train = build_dataset(fsdd_cfg(fixture_data_root, tmp_path, *extra), "train")
    assert train.audio.shape == (n_train, 8, 64) and np.bincount(train.labels).tolist() == [n_train // 10] * 10
    assert train.vision_pool.shape == (70, 8, 2, 34, 34)  # the whole train pool: 10 - 3 digits per class
    assert np.array_equal(train.pool_labels[train.vision_index], train.labels)
    before = train.vision_index.copy()
    train.repair(1)  # a new pairing, still by class
    assert np.array_equal(train.pool_labels[train.vision_index], train.labels)
    assert not np.array_equal(before, train.vision_index)
    # no MNIST digit is in both pools: the test frames are none of the train frames
    flat_train = {f.tobytes() for f in train.vision_pool}
    assert not any(f.tobytes() in flat_train for f in test.vision_pool)


@pytest.mark.full_data
def test_fsdd_mnist_test_split_is_deterministic_and_paired_by_class(full_data_root, tmp_path):
    cfg = fsdd_cfg(full_data_root, tmp_path)
    a = build_dataset(cfg, "test")
    assert a.vision.shape == (300, 8, 2, 34, 34) and a.audio.shape == (300, 8, 64)
    assert np.bincount(a.labels).tolist() == [30] * 10
    assert a.audio.reshape(300, -1).sum(1).min() > 0 and a.vision.reshape(300, -1).sum(1).min() > 0
    cfg2 = fsdd_cfg(full_data_root, tmp_path / "other")
    b = build_dataset(cfg2, "test")  # rebuilt from scratch in another cache folder: identical
    assert np.array_equal(a.vision, b.vision) and np.array_equal(a.audio, b.audio)


def test_missing_data_folder_is_named(tmp_path):
    cfg = compose_config("data_app", ["data=fsdd_mnist", f"data.root={tmp_path / 'nowhere'}",
                                      f"data.cache_dir={tmp_path}"]).data
    with pytest.raises(FileNotFoundError, match="nowhere.*edge-taaf-data fetch"):
        build_dataset(cfg, "test")
    (tmp_path / "partial" / "fsdd" / "recordings").mkdir(parents=True)
    cfg = compose_config("data_app", ["data=fsdd_mnist", f"data.root={tmp_path / 'partial'}",
                                      f"data.cache_dir={tmp_path}"]).data
    with pytest.raises(FileNotFoundError, match="partial is missing mnist5k/mnist_5k.csv.gz.*edge-taaf-data fetch"):
        build_dataset(cfg, "test")


def test_synth_has_three_splits_drawn_from_their_own_seeds(tmp_path):
    assert compose_config("data_app", ["data=synth"]).data.n_val == 500      # as many as test unless set
    cfg = synth_cfg(tmp_path, "data.n_val=12")
    parts = {split: build_dataset(cfg, split) for split in ("train", "val", "test")}
    assert [len(parts[s].labels) for s in ("train", "val", "test")] == [20, 12, 10]
    samples = {s: {v.tobytes() + a.tobytes() for v, a in zip(d.vision, d.audio)} for s, d in parts.items()}
    assert not samples["train"] & samples["val"] and not samples["val"] & samples["test"]
    with pytest.raises(ValueError, match="split must be one of"):
        build_dataset(cfg, "validation")
