"""fsdd_mnist's augmented train split (data.augment): copies beside the originals, seeded and cached,
never in the test split; bad settings are DataConfigErrors naming the option before any work."""
from __future__ import annotations

import numpy as np
import pytest

from sensors.data_options import augment_settings
from sensors.datasets import build_dataset
from sensors.tonic_pairs import DataConfigError
from tests.support.configs import compose_config, composition_error

# the fixture has takes 0 and 5 and three speakers: take 9 (absent) is the val take and no speaker is a val
# speaker, so the train splits are take 5 (official) and nicolas (speaker), as before val existed
BASE = ["data.T=8", "data.mnist_test_per_class=3", "data.mnist_val_per_class=0", "data.val_takes=[9]", "data.val_speakers=[]"]
N_TRAIN, N_POOL = 30, 70  # the fixture set's official train split: 30 clips, 7 MNIST train digits per class


def fsdd_cfg(root, cache, *extra):
    return compose_config("data_app", ["data=fsdd_mnist", f"data.root={root}", f"data.cache_dir={cache}",
                                       *BASE, *extra]).data


def augmented(root, cache, *extra):
    return fsdd_cfg(root, cache, "data.augment.enabled=true", *extra)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ead_augment_cache")


def test_default_config_is_off_and_valid(fixture_data_root, tmp_path):
    cfg = fsdd_cfg(fixture_data_root, tmp_path)
    settings = augment_settings(cfg, 8000)
    assert not settings.enabled and settings.copies == 2 and settings.audio.speed == (0.9, 1.1)


def test_copies_sit_beside_the_originals_and_differ_from_them(fixture_data_root, shared_cache):
    plain = build_dataset(fsdd_cfg(fixture_data_root, shared_cache), "train")
    data = build_dataset(augmented(fixture_data_root, shared_cache), "train")
    assert data.audio.shape == (3 * N_TRAIN, 8, 64) and data.vision_pool.shape == (3 * N_POOL, 8, 2, 34, 34)
    # the originals come first, unchanged
    assert np.array_equal(data.audio[:N_TRAIN], plain.audio)
    assert np.array_equal(data.vision_pool[:N_POOL], plain.vision_pool)
    assert np.array_equal(data.labels, np.tile(plain.labels, 3))
    assert np.array_equal(data.pool_labels, np.tile(plain.pool_labels, 3))
    # copy k pairs clip i with copy k of its original digit
    for k in (1, 2):
        assert np.array_equal(data.vision_index[k * N_TRAIN:(k + 1) * N_TRAIN], plain.vision_index + k * N_POOL)
    for k in (1, 2):
        audio, pool = data.audio[k * N_TRAIN:(k + 1) * N_TRAIN], data.vision_pool[k * N_POOL:(k + 1) * N_POOL]
        assert sum(not np.array_equal(a, b) for a, b in zip(audio, plain.audio)) > 0.9 * N_TRAIN
        assert all(not np.array_equal(a, b) for a, b in zip(pool, plain.vision_pool))
        assert audio.reshape(N_TRAIN, -1).sum(1).min() > 0 and pool.reshape(N_POOL, -1).sum(1).min() > 0
    assert not np.array_equal(data.audio[N_TRAIN:2 * N_TRAIN], data.audio[2 * N_TRAIN:])  # copies differ
    assert np.array_equal(data.pool_labels[data.vision_index], data.labels)
    data.repair(3)  # re-pairing draws from originals and copies, still by class
    assert np.array_equal(data.pool_labels[data.vision_index], data.labels)
    assert (data.vision_index >= N_POOL).any()


def test_copies_are_reproducible_and_seeded(fixture_data_root, shared_cache, tmp_path):
    a = build_dataset(augmented(fixture_data_root, shared_cache), "train")
    b = build_dataset(augmented(fixture_data_root, tmp_path / "fresh"), "train")  # encoded from scratch
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.vision_pool, b.vision_pool)
    c = build_dataset(augmented(fixture_data_root, shared_cache, "data.augment.seed=1", "data.augment.copies=1"),
                      "train")
    assert np.array_equal(c.audio[:N_TRAIN], a.audio[:N_TRAIN])
    assert not np.array_equal(c.audio[N_TRAIN:], a.audio[N_TRAIN:2 * N_TRAIN])
    assert not np.array_equal(c.vision_pool[N_POOL:], a.vision_pool[N_POOL:2 * N_POOL])


def test_each_copy_is_cached_on_its_own(fixture_data_root, tmp_path):
    build_dataset(augmented(fixture_data_root, tmp_path, "data.augment.copies=1"), "train")
    files = set(tmp_path.glob("*.npz"))
    assert len(files) == 2  # the originals and copy 0
    build_dataset(augmented(fixture_data_root, tmp_path, "data.augment.copies=2"), "train")
    assert len(set(tmp_path.glob("*.npz")) - files) == 1  # only copy 1 is new
    build_dataset(augmented(fixture_data_root, tmp_path, "data.augment.copies=2", "data.augment.audio.snr_db=[0,5]"),
                  "train")
    assert len(list(tmp_path.glob("*.npz"))) == 5  # a changed setting re-encodes both copies, not the originals


@pytest.mark.parametrize("kind, n_test", [("official", 30), ("speaker", 40)])
def test_test_split_is_never_augmented(fixture_data_root, shared_cache, kind, n_test):
    plain = build_dataset(fsdd_cfg(fixture_data_root, shared_cache, f"data.split={kind}"), "test")
    test = build_dataset(augmented(fixture_data_root, shared_cache, f"data.split={kind}"), "test")
    assert test.audio.shape[0] == n_test
    assert np.array_equal(test.audio, plain.audio) and np.array_equal(test.vision, plain.vision)


def test_speaker_split_train_is_augmented(fixture_data_root, shared_cache):
    data = build_dataset(augmented(fixture_data_root, shared_cache, "data.split=speaker", "data.augment.copies=1"),
                         "train")
    assert data.audio.shape[0] == 2 * 20 and np.bincount(data.labels).tolist() == [4] * 10


def test_disabled_augmentation_changes_nothing(fixture_data_root, shared_cache):
    plain = build_dataset(fsdd_cfg(fixture_data_root, shared_cache), "train")
    off = build_dataset(fsdd_cfg(fixture_data_root, shared_cache, "data.augment.copies=5"), "train")
    assert np.array_equal(off.audio, plain.audio) and off.vision_pool.shape == plain.vision_pool.shape


@pytest.mark.parametrize("override, key", [("data.augment.seed=0.5", "data.augment.seed"),
                                           ("data.augment.enabled=maybe", "data.augment.enabled"),
                                           ("data.augment.audio=3", "data.augment.audio"),
                                           ("data.augment.audio.speed=fast", "data.augment.audio.speed")])
def test_wrong_types_fail_when_the_config_is_composed(override, key):
    # the data schema (sensors/schema.py) refuses them before any check runs
    assert f"full_key: {key}" in composition_error("train", ["data=fsdd_mnist", override])


@pytest.mark.parametrize("override, message", [
    ("data.augment.audio.speed=[1.2,0.8]", r"data\.augment\.audio\.speed=\[1\.2, 0\.8\]; expected min <= max"),
    ("data.augment.audio.speed=[0,1.1]", r"data\.augment\.audio\.speed=\[0\.0, 1\.1\]; expected values > 0"),
    ("data.augment.audio.noise_prob=-0.5", r"data\.augment\.audio\.noise_prob=-0\.5; expected a probability"),
    ("data.augment.audio.rt60_s=[0.3,0.1]", r"data\.augment\.audio\.rt60_s=\[0\.3, 0\.1\]; expected min <= max"),
    ("data.augment.audio.noise_kinds=[white,brown]", r"data\.augment\.audio\.noise_kinds=\['white', 'brown'\]"),
    ("data.augment.audio.vtlp_boundary_hz=5000", r"data\.augment\.audio\.vtlp_boundary_hz=5000\.0; expected below"),
    ("+data.augment.audio.pitch=[0.9,1.1]", r"data\.augment\.audio\.pitch is unknown"),
    ("data.augment.vision.rotation_deg=[-200,200]", r"data\.augment\.vision\.rotation_deg=\[-200\.0, 200\.0\]; "
                                                    r"expected values in \[-180, 180\]"),
    ("data.augment.vision.scale=[0.0,1.0]", r"data\.augment\.vision\.scale=\[0\.0, 1\.0\]; expected values > 0"),
    ("data.augment.vision.blur_prob=2", r"data\.augment\.vision\.blur_prob=2\.0; expected a probability"),
    ("+data.augment.vision.shear=3", r"data\.augment\.vision\.shear is unknown"),
    ("+data.augment.mixup=true", r"data\.augment\.mixup is unknown"),
    ("data.augment.copies=-1", r"data\.augment\.copies=-1; expected a whole number >= 0"),
])
def test_bad_settings_are_config_errors_naming_the_option(tmp_path, override, message):
    # the data root does not exist: the settings are checked before anything is read or encoded,
    # for either split, augmentation enabled or not
    cfg = fsdd_cfg(tmp_path / "nowhere", tmp_path / "cache", override)
    for split in ("train", "test"):
        with pytest.raises(DataConfigError, match=message):
            build_dataset(cfg, split)
    assert not (tmp_path / "cache").exists()
