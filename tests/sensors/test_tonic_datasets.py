"""Local-folder Tonic loaders: fabricated files in Tonic's layout, missing files, and no network ever."""
from __future__ import annotations

import socket

import pytest
import tonic.dataset
import tonic.datasets.ntidigits18
import tonic.download_utils

from sensors import tonic_datasets as T
from sensors.events import AUDIO_DTYPE, CAMERA_DTYPE
from tests.support.tonic_files import make_dvsgesture, make_nmnist, make_ntidigits, make_shd

NAMES = ["nmnist", "dvsgesture", "shd", "ntidigits18"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach the network fails the test loudly (not as a FileNotFoundError)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(tonic.download_utils, "download_url", refuse)
    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", refuse)
    monkeypatch.setattr(tonic.datasets.ntidigits18.requests, "get", refuse)


def test_nmnist_loads_from_local_folder(tmp_path):
    make_nmnist(tmp_path)
    ds = T.load_tonic_dataset("nmnist", tmp_path, train=True)
    assert len(ds) == 10_000
    events, target = ds[3500]
    assert events.dtype == CAMERA_DTYPE and target == 3
    assert events.tolist() == [(1, 2, 16, 0), (33, 0, 300, 1)]


def test_dvsgesture_loads_in_camera_dtype(tmp_path):
    make_dvsgesture(tmp_path)
    ds = T.load_tonic_dataset("dvsgesture", tmp_path, train=True, transform=lambda ev: ev[ev["p"] == 1])
    assert len(ds) == 100
    events, target = ds[0]
    assert events.dtype == CAMERA_DTYPE  # converted from Tonic's (int16, bool) DVSGesture dtype
    assert events.tolist() == [(3, 4, 2000, 1)]  # ms -> us, then the user transform
    assert target == int(ds.data[0][-5])  # label = file name <label>.npy


def test_shd_loads_in_audio_dtype(tmp_path):
    make_shd(tmp_path)
    ds = T.load_tonic_dataset("shd", tmp_path, train=True)
    events, target = ds[0]
    assert len(ds) == 2 and target == 7
    assert events.dtype == AUDIO_DTYPE
    assert events["x"].tolist() == [5, 699] and events["t"].tolist() == [125000, 250000]


def test_ntidigits18_loads_in_audio_dtype(tmp_path, monkeypatch):
    make_ntidigits(tmp_path)
    monkeypatch.setenv("EDGE_TAAF_DATA", str(tmp_path))  # root=None falls back to data_root()
    ds = T.load_tonic_dataset("ntidigits18", None, train=False, single_digits=True)
    events, target = ds[0]
    assert len(ds) == 1 and target == 3
    assert events.dtype == AUDIO_DTYPE
    assert events["x"].tolist() == [2, 63] and events["t"].tolist() == [250000, 500000]


@pytest.mark.parametrize(
    "name, folder, expected",
    [
        ("nmnist", "NMNIST", "Test/0"),
        ("dvsgesture", "DVSGesture", "ibmGestureTest"),
        ("shd", "SHD", "shd_test.h5"),
        ("ntidigits18", "NTIDIGITS18", "n-tidigits.hdf5"),
    ],
)
def test_missing_folder_names_folder_and_files(tmp_path, name, folder, expected):
    with pytest.raises(FileNotFoundError) as err:
        T.load_tonic_dataset(name, tmp_path, train=False)
    assert str(tmp_path / folder) in str(err.value) and expected in str(err.value)
    assert not (tmp_path / folder).exists()  # nothing was created or fetched


def test_incomplete_folders(tmp_path):
    make_nmnist(tmp_path, per_digit=3)
    with pytest.raises(FileNotFoundError, match=r"holds 30 files matching Train/\*/\*\.bin; expected at least 10000"):
        T.load_tonic_dataset("nmnist", tmp_path, train=True)
    make_dvsgesture(tmp_path, users=2)
    with pytest.raises(FileNotFoundError, match="holds 20 files.*at least 100"):
        T.load_tonic_dataset("dvsgesture", tmp_path, train=True)
    make_shd(tmp_path, name="shd_test.h5")  # only the other split
    with pytest.raises(FileNotFoundError, match="missing shd_train.h5"):
        T.load_tonic_dataset("shd", tmp_path, train=True)


@pytest.mark.parametrize("name", NAMES)
def test_download_path_is_dead_even_if_checks_are_bypassed(tmp_path, monkeypatch, name):
    # Simulate our pre-check being skipped and Tonic's check failing: Tonic then calls download().
    monkeypatch.setattr(T, "check_tonic_folder", lambda *a, **k: tmp_path)
    monkeypatch.setattr(T._Offline, "_check_exists", lambda self: False)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        T.load_tonic_dataset(name, tmp_path, train=True)


def test_unknown_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match="nmnist, dvsgesture, shd, ntidigits18"):
        T.load_tonic_dataset("cifar10dvs", tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_data_configs_match_tonic(name):
    from tests.support.configs import compose_config

    cfg = compose_config("data_app", [f"data={name}"]).data
    assert cfg.name == name and cfg.source == "tonic" and len(cfg.modalities) == 1
    section = cfg[cfg.modalities[0]]
    assert section.dataset == name
    assert tuple(section.sensor_size) == T.DATASETS[name].sensor_size
    assert cfg.T > 0 and cfg.clip >= 1
