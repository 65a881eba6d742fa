"""N-MNIST and AEDAT 4 readers on the real recordings (the copies in tests/data/events and, marked
full_data, those in EDGE_TAAF_DATA/events), and on broken files."""
from __future__ import annotations

import numpy as np
import pytest

from sensors.events import CAMERA_DTYPE
from sensors.readers import read_aedat4, read_nmnist_bin


@pytest.fixture(scope="module")
def events_dir(fixture_data_root):
    return fixture_data_root / "events"


@pytest.fixture(scope="module", params=["fixture", pytest.param("full", marks=pytest.mark.full_data)])
def real_events_dir(request):
    """The real recordings: tests/data/events, and (full_data) EDGE_TAAF_DATA/events."""
    root = request.getfixturevalue("fixture_data_root" if request.param == "fixture" else "full_data_root")
    return root / "events"


@pytest.fixture(scope="module")
def aedat(real_events_dir):
    return read_aedat4(real_events_dir / "sample.aedat4")


def test_nmnist_real_sample(real_events_dir):
    ev = read_nmnist_bin(real_events_dir / "sample_nmnist.bin")
    assert ev.dtype == CAMERA_DTYPE
    assert ev.size == 4325  # 21,625 bytes / 5, no timestamp-overflow records
    assert 300_000 <= ev["t"][-1] - ev["t"][0] <= 320_000  # three saccades, ~310 ms
    assert np.all(np.diff(ev["t"]) >= 0)
    for field in ("x", "y"):
        assert ev[field].min() >= 0 and ev[field].max() <= 33
    assert set(np.unique(ev["p"])) == {0, 1}


def test_aedat4_real_sample(aedat):
    ev = aedat.events
    assert aedat.sensor_size == (320, 240, 2)  # from the file's XML info node (DVXplorer)
    assert ev.dtype == CAMERA_DTYPE
    # 111,954 is also the sum of NumElements over stream 0 in the file's own data table (FTAB).
    assert ev.size == 111_954
    assert ev["t"][0] == 0 and ev["t"][-1] == 589_917  # us; absolute start kept in t0_us
    assert aedat.t0_us == 1_605_537_493_718_345
    assert np.all(np.diff(ev["t"]) >= 0)
    assert ev["x"].max() == 319 and ev["y"].max() == 239
    on = int(ev["p"].sum())
    assert 0.4 < on / ev.size < 0.6  # a person moving: both polarities in similar numbers


def test_missing_files_name_the_path(tmp_path):
    for reader in (read_nmnist_bin, read_aedat4):
        with pytest.raises(FileNotFoundError, match="nope.bin"):
            reader(tmp_path / "nope.bin")


@pytest.mark.parametrize("n_bytes", [0, 7, 4324])
def test_nmnist_truncated(tmp_path, events_dir, n_bytes):
    bad = tmp_path / "cut.bin"
    bad.write_bytes((events_dir / "sample_nmnist.bin").read_bytes()[:n_bytes])
    with pytest.raises(ValueError, match=r"cut\.bin.*5-byte"):
        read_nmnist_bin(bad)


def test_nmnist_garbage(tmp_path):
    bad = tmp_path / "noise.bin"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"noise\.bin"):
        read_nmnist_bin(bad)


def test_aedat4_truncated(tmp_path, events_dir):
    data = (events_dir / "sample.aedat4").read_bytes()
    for n_bytes in (10, 500, 5000, len(data) // 2):
        bad = tmp_path / f"cut{n_bytes}.aedat4"
        bad.write_bytes(data[:n_bytes])
        with pytest.raises(ValueError, match=f"cut{n_bytes}"):
            read_aedat4(bad)


def test_aedat4_garbage(tmp_path, events_dir):
    data = bytearray((events_dir / "sample.aedat4").read_bytes())
    (tmp_path / "text.aedat4").write_bytes(b"hello, not an event file\n" * 10)
    with pytest.raises(ValueError, match=r"text\.aedat4.*not an AEDAT 4"):
        read_aedat4(tmp_path / "text.aedat4")
    header_end = 18 + int.from_bytes(data[14:18], "little")
    data[header_end + 8 : header_end + 2008] = np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    (tmp_path / "noise.aedat4").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"noise\.aedat4"):
        read_aedat4(tmp_path / "noise.aedat4")
