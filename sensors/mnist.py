"""Real MNIST digits: the 5k subset of the training set, and the official test set (other writers).

* ``<data root>/mnist5k/mnist_5k.csv.gz`` (:func:`load_mnist5k`): one row per digit, 784 pixel values
  0..255 (28x28, row-major) then the label 0..9; rows sorted by label, 500 per class: the first 500
  digits of each class in MNIST's *training* set (see the data folder's ATTRIBUTION.md).
* ``<data root>/mnist_test/t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``
  (:func:`load_mnist_test`): MNIST's official test set, 10,000 digits in its original order, in
  LeCun's IDX format, uncompressed. Its writers are disjoint from the training set's, so digits from
  it are "by writers the model has never met". ``edge-taaf-data fetch`` writes them (sensors/fetch.py).

IDX format: a big-endian header (two zero bytes, the type code 0x08 = unsigned byte, the number of
dimensions d, then d uint32 sizes) followed by the values, row-major.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sensors.paths import FETCH_HINT

MNIST5K_FILE = Path("mnist5k") / "mnist_5k.csv.gz"
MNIST_TEST_IMAGES = Path("mnist_test") / "t10k-images-idx3-ubyte"
MNIST_TEST_LABELS = Path("mnist_test") / "t10k-labels-idx1-ubyte"
_N_PIXELS = 28 * 28
_IDX_UBYTE = 0x08  # IDX type code of unsigned bytes


def load_mnist5k(root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load the 5k MNIST subset.

    Args:
        root: the data root (``sensors.paths.data_root()``), holding ``mnist5k/mnist_5k.csv.gz``.

    Returns:
        images: uint8 (N, 28, 28), 0 = background, 255 = ink.
        labels: int64 (N,), 0..9, in file order (sorted by label).

    Raises:
        FileNotFoundError: the file is missing (the message names it).
        ValueError: a row does not hold 785 integers, a pixel is outside 0..255 or a label outside
            0..9 (the message names the file and the row).
    """
    path = Path(root) / MNIST5K_FILE
    if not path.is_file():
        raise FileNotFoundError(f"MNIST 5k file {path} not found; expected {MNIST5K_FILE} under the data root {root}")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as err:
        raise ValueError(
            f"{path}: malformed MNIST CSV ({err}); expected {_N_PIXELS + 1} comma-separated integers per row "
            "(784 pixels then the label)"
        ) from err
    if table.shape[0] == 0:
        raise ValueError(f"{path}: no rows; expected {_N_PIXELS + 1} comma-separated integers per row")
    if table.shape[1] != _N_PIXELS + 1:
        raise ValueError(
            f"{path}: rows have {table.shape[1]} fields; expected {_N_PIXELS + 1} (784 pixels then the label)"
        )
    pixels, labels = table[:, :_N_PIXELS], table[:, _N_PIXELS]
    bad = np.flatnonzero((pixels < 0).any(axis=1) | (pixels > 255).any(axis=1))
    if bad.size:
        row = int(bad[0])
        raise ValueError(
            f"{path}: row {row + 1} has pixel values {int(pixels[row].min())}..{int(pixels[row].max())}; "
            "expected 0..255"
        )
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if bad.size:
        raise ValueError(f"{path}: row {int(bad[0]) + 1} has label {int(labels[bad[0]])}; expected 0..9")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


def load_mnist_test(root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST's official test set (writers disjoint from the training set's, hence from MNIST 5k).

    Args:
        root: the data root, holding ``mnist_test/t10k-images-idx3-ubyte`` and
            ``mnist_test/t10k-labels-idx1-ubyte`` (written by ``edge-taaf-data fetch``).

    Returns:
        images: uint8 (N, 28, 28), 0 = background, 255 = ink (N = 10,000 for the full set).
        labels: int64 (N,), 0..9, in file order (MNIST's own order, not sorted).

    Raises:
        FileNotFoundError: a file is missing (the message names it and the fetch command).
        ValueError: a file is not an unsigned-byte IDX file of the expected shape, the two files hold
            different numbers of digits, or a label lies outside 0..9 (the message names the file and field).
    """
    images_path, labels_path = Path(root) / MNIST_TEST_IMAGES, Path(root) / MNIST_TEST_LABELS
    for path in (images_path, labels_path):
        if not path.is_file():
            raise FileNotFoundError(f"MNIST test set file {path} not found; expected {MNIST_TEST_IMAGES} and "
                                    f"{MNIST_TEST_LABELS} under the data root {root}; {FETCH_HINT}")
    images = read_idx_ubyte(images_path, (None, 28, 28))
    labels = read_idx_ubyte(labels_path, (None,)).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path} holds {images.shape[0]} images but {labels_path} holds {labels.shape[0]} "
                         "labels; expected one label per image")
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise ValueError(f"{labels_path}: entry {int(bad[0])} holds label {int(labels[bad[0]])}; expected 0..9")
    return images, labels


def read_idx_ubyte(path: Path, shape: tuple[int | None, ...]) -> np.ndarray:
    """Read an unsigned-byte IDX file whose dimensions match ``shape`` (None: any size); return a uint8 array.

    Raises ValueError naming ``path`` and the field (magic, dimensions, size) that differs from the format.
    """
    data = path.read_bytes()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != _IDX_UBYTE or data[3] != len(shape):
        raise ValueError(f"{path}: magic number {data[:4].hex() or 'missing'}; expected 0000{_IDX_UBYTE:02x}"
                         f"{len(shape):02x} (IDX, unsigned bytes, {len(shape)} dimensions)")
    header = 4 + 4 * len(shape)
    if len(data) < header:
        raise ValueError(f"{path}: {len(data)} bytes, too short for the {len(shape)} dimension sizes of the IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(len(shape)))
    if any(want is not None and got != want for got, want in zip(dims, shape)):
        expected = " x ".join("N" if want is None else str(want) for want in shape)
        raise ValueError(f"{path}: dimensions {' x '.join(map(str, dims))}; expected {expected}")
    if len(data) != header + int(np.prod(dims)):
        raise ValueError(f"{path}: {len(data) - header} data bytes after the header; expected "
                         f"{int(np.prod(dims))} for dimensions {' x '.join(map(str, dims))}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()
