"""EAD-style paired data sets: synth (no files) and fsdd_mnist (real FSDD + emulated MNIST)."""
import numpy as np
import pytest

from sensors.ead import (PairedSpikeDataset, build_dataset, fsdd_files, fsdd_split, mnist_pool)
from sensors.mnist import load_mnist5k
from sensors.paths import data_root
from sensors.synth import ModalityKnobs, SynthParams, synth_sample
from tests.conftest import compose_config


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


# ---- fsdd_mnist: real data, read from EDGE_TAAF_DATA (fails, never skips, when it is missing) ----

def test_fsdd_official_and_speaker_splits():
    files = fsdd_files(data_root())
    assert len(files) == 3000
    train, test = fsdd_split(files, "train", "official", []), fsdd_split(files, "test", "official", [])
    assert len(test) == 300 and len(train) == 2700 and all(take <= 4 for _, _, take, _ in test)
    sp_test = fsdd_split(files, "test", "speaker", ["lucas", "george"])
    sp_train = fsdd_split(files, "train", "speaker", ["lucas", "george"])
    assert {s for _, s, _, _ in sp_test} == {"lucas", "george"} and len(sp_test) == 1000
    assert not {s for _, s, _, _ in sp_train} & {"lucas", "george"}
    with pytest.raises(ValueError, match="test_speakers"):
        fsdd_split(files, "test", "speaker", ["alice"])


def test_mnist_pools_are_disjoint_and_class_pure():
    _, labels = load_mnist5k(data_root())
    train, test = mnist_pool(labels, "train", 100), mnist_pool(labels, "test", 100)
    for c in range(10):
        assert not set(train[c]) & set(test[c])
        assert (labels[train[c]] == c).all() and (labels[test[c]] == c).all() and len(test[c]) == 100


def test_fsdd_mnist_test_split_is_deterministic_and_paired_by_class(tmp_path):
    cfg = compose_config("data_app", ["data=fsdd_mnist", "data.T=8", f"data.cache_dir={tmp_path}"]).data
    a = build_dataset(cfg, "test")
    assert a.vision.shape == (300, 8, 2, 34, 34) and a.audio.shape == (300, 8, 64)
    assert np.bincount(a.labels).tolist() == [30] * 10
    assert a.audio.reshape(300, -1).sum(1).min() > 0 and a.vision.reshape(300, -1).sum(1).min() > 0
    cfg2 = compose_config("data_app", ["data=fsdd_mnist", "data.T=8", f"data.cache_dir={tmp_path / 'other'}"]).data
    b = build_dataset(cfg2, "test")  # rebuilt from scratch in another cache folder: identical
    assert np.array_equal(a.vision, b.vision) and np.array_equal(a.audio, b.audio)


def test_missing_data_folder_is_named(tmp_path):
    cfg = compose_config("data_app", ["data=fsdd_mnist", f"data.root={tmp_path / 'nowhere'}",
                                      f"data.cache_dir={tmp_path}"]).data
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_dataset(cfg, "test")
    (tmp_path / "partial" / "fsdd" / "recordings").mkdir(parents=True)
    cfg = compose_config("data_app", ["data=fsdd_mnist", f"data.root={tmp_path / 'partial'}",
                                      f"data.cache_dir={tmp_path}"]).data
    with pytest.raises(FileNotFoundError, match="mnist5k/mnist_5k.csv.gz"):
        build_dataset(cfg, "test")
