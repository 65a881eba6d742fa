"""Event-camera file readers: N-MNIST binary and AEDAT 4, both to :data:`CAMERA_DTYPE` (t in microseconds).

N-MNIST uses ``tonic.io.read_mnist_file``; AEDAT 4 uses ``tonic.io.read_aedat4`` (backed by the
``aedat`` Rust decoder) for the events and ``aedat.Decoder`` for the sensor size the file declares.
We only add what they lack: clear errors naming the file, and validation of what they decode.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aedat
import numpy as np
from tonic.io import read_aedat4 as tonic_read_aedat4
from tonic.io import read_mnist_file

from sensors.events import CAMERA_DTYPE, validate_events

NMNIST_SENSOR_SIZE = (34, 34, 2)
_NMNIST_RECORD_BYTES = 5
_AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"


@dataclass(frozen=True)
class Recording:
    """Events of one file: ``events`` (N,) CAMERA_DTYPE with t in microseconds from the first event,
    ``sensor_size`` Tonic's (W, H, P), ``t0_us`` the absolute timestamp of the first event."""

    events: np.ndarray
    sensor_size: tuple[int, int, int]
    t0_us: int
    source: str


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"event file {path} does not exist")
    return path


def read_nmnist_bin(path) -> np.ndarray:
    """Read an N-MNIST ``.bin`` recording into (N,) CAMERA_DTYPE, t in microseconds, on a (34, 34, 2) sensor.

    Raises FileNotFoundError for a missing file, ValueError (naming the file) for an empty or truncated
    file (length not a multiple of 5 bytes) or for decoded events outside the N-MNIST contract.
    """
    path = _existing(path)
    size = path.stat().st_size
    if size == 0 or size % _NMNIST_RECORD_BYTES:
        raise ValueError(
            f"{path}: {size} bytes is not a whole number of {_NMNIST_RECORD_BYTES}-byte N-MNIST events "
            "(empty or truncated file)"
        )
    events = read_mnist_file(str(path), dtype=CAMERA_DTYPE)
    return validate_events(events, NMNIST_SENSOR_SIZE, source=str(path))


def read_aedat4(path) -> Recording:
    """Read the first polarity-event stream of an AEDAT 4 file.

    Returns a :class:`Recording` whose events are (N,) CAMERA_DTYPE, t in microseconds relative to the
    first event (the absolute start is ``t0_us``), validated against the sensor size the file declares.
    Raises FileNotFoundError for a missing file and ValueError naming the file for anything malformed.
    """
    path = _existing(path)
    with open(path, "rb") as fh:
        magic = fh.read(len(_AEDAT4_MAGIC))
    if magic != _AEDAT4_MAGIC:
        raise ValueError(f"{path}: not an AEDAT 4 file (expected it to start with {_AEDAT4_MAGIC!r})")
    try:
        streams = aedat.Decoder(str(path)).id_to_stream()
        events_ids = sorted(i for i, st in streams.items() if st.get("type") == "events")
        if not events_ids:
            raise ValueError(f"{path}: the file holds no event stream (streams: {streams})")
        info = streams[events_ids[0]]
        raw = tonic_read_aedat4(str(path))
    except (RuntimeError, OSError) as err:  # the Rust decoder reports truncation / corruption as RuntimeError
        raise ValueError(f"{path}: truncated or corrupt AEDAT 4 file ({err})") from err
    if raw.size == 0:
        raise ValueError(f"{path}: event stream {events_ids[0]} holds no events")
    sensor_size = (int(info["width"]), int(info["height"]), 2)
    t0 = int(raw["t"][0])
    events = np.empty(raw.size, CAMERA_DTYPE)
    events["x"], events["y"], events["p"] = raw["x"], raw["y"], raw["on"]
    events["t"] = raw["t"].astype(np.int64) - t0
    validate_events(events, sensor_size, source=str(path))
    return Recording(events=events, sensor_size=sensor_size, t0_us=t0, source=str(path))
