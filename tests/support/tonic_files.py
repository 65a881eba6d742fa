"""Tiny files in each Tonic data set's own layout and format, written by the tests (nothing is downloaded).

By default every sample holds the same two events (the loader tests check them exactly). With
``by_class=True`` a sample's events encode its class, so a pairing test can check that a vision
sample and its audio partner share a class:
  N-MNIST: events at x = 3 * digit;   SHD: on channel 30 * (target % 10);
  N-TIDIGITS18: on channel 5 * digit ("o" and "z" are digit 0).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

NTIDIGITS_DIGITS = {"o": 0, "z": 0, **{str(d): d for d in range(1, 10)}}


def nmnist_bytes(events: list[tuple[int, int, int, int]]) -> bytes:
    """N-MNIST's 40-bit events: x (8 bits), y (8 bits), polarity (1 bit) + 23-bit time stamp (us)."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | (t >> 16) & 0x7F, (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def make_nmnist(root: Path, split: str = "Train", per_digit: int = 1000, by_class: bool = False) -> None:
    """``root/NMNIST/<split>/<digit>/<i>.bin``: Tonic needs at least 10,000 files per split."""
    same = bytes([1, 2, 0, 0, 16, 33, 0, 128, 1, 44])  # (x=1, y=2, p=0, t=16), (x=33, y=0, p=1, t=300)
    for d in range(10):
        folder = Path(root) / "NMNIST" / split / str(d)
        folder.mkdir(parents=True)
        sample = nmnist_bytes([(3 * d, 5, 1, 1000), (3 * d, 6, 0, 150_000), (3 * d, 7, 1, 300_000)]) if by_class else same
        for i in range(per_digit):
            (folder / f"{i:05d}.bin").write_bytes(sample)


def make_dvsgesture(root: Path, split: str = "ibmGestureTrain", users: int = 10) -> None:
    for u in range(1, users + 1):
        folder = Path(root) / "DVSGesture" / split / f"user{u:02d}_led"
        folder.mkdir(parents=True)
        for label in range(10):  # Tonic's preprocessed files: (N, 4) columns x, y, p, t[ms]
            np.save(folder / f"{label}.npy", np.array([[3, 4, 1, 2], [127, 0, 0, 5]], dtype=np.int64))


def make_shd(root: Path, name: str = "shd_train.h5", labels=None) -> None:
    """``root/SHD/<name>``. Without ``labels``: two samples (targets 7 and 19) of fixed events; with
    ``labels``: one sample per label, spikes on channel 30 * (label % 10) at 0.1, 0.4 and 0.8 s."""
    (Path(root) / "SHD").mkdir(parents=True, exist_ok=True)
    vlen_f, vlen_u = h5py.vlen_dtype(np.float32), h5py.vlen_dtype(np.uint16)
    if labels is None:
        times = [np.array([0.125, 0.25], np.float32), np.array([0.5], np.float32)]
        units = [np.array([5, 699], np.uint16), np.array([0], np.uint16)]
        labels = [7, 19]
    else:
        times = [np.array([0.1, 0.4, 0.8], np.float32) for _ in labels]
        units = [np.full(3, 30 * (label % 10), np.uint16) for label in labels]
    with h5py.File(Path(root) / "SHD" / name, "w") as f:
        t_set = f.create_dataset("spikes/times", (len(labels),), dtype=vlen_f)
        u_set = f.create_dataset("spikes/units", (len(labels),), dtype=vlen_u)
        for i, (t, u) in enumerate(zip(times, units)):
            t_set[i], u_set[i] = t, u
        f["labels"] = np.array(labels, np.uint16)
        f["extra/keys"] = np.array([b"d%d" % i for i in range(20)])
        f["extra/speaker"] = np.ones(len(labels), np.uint16)


def make_ntidigits(root: Path, ids=None) -> None:
    """``root/NTIDIGITS18/n-tidigits.hdf5`` with both splits. Without ``ids``: two fixed samples;
    with ``ids`` (e.g. ["man-ab-3", "woman-cd-o"]): spikes on channel 5 * digit at 0.1, 0.3, 0.6 s."""
    (Path(root) / "NTIDIGITS18").mkdir(parents=True)
    with h5py.File(Path(root) / "NTIDIGITS18" / "n-tidigits.hdf5", "w") as f:
        for part in ("train", "test"):
            if ids is None:
                names = [b"man-ab-3", b"woman-cd-z1"]
                f[f"{part}_labels"] = np.array(names)
                for k, sid in enumerate(names):
                    f[f"{part}_addresses/{sid.decode()}"] = np.array([2, 63, 10][: 2 + k], np.uint8)
                    f[f"{part}_timestamps/{sid.decode()}"] = np.array([0.25, 0.5, 0.75][: 2 + k], np.float32)
                continue
            f[f"{part}_labels"] = np.array([s.encode() for s in ids])
            for sid in ids:
                digit = NTIDIGITS_DIGITS[sid.split("-")[-1]]
                f[f"{part}_addresses/{sid}"] = np.full(3, 5 * digit, np.uint8)
                f[f"{part}_timestamps/{sid}"] = np.array([0.1, 0.3, 0.6], np.float32)
