"""Real MNIST digits from the 5k subset in ``<data root>/mnist5k/mnist_5k.csv.gz``.

One row per digit: 784 pixel values 0..255 (28x28, row-major) then the label 0..9; rows sorted by
label, 500 per class (see the data folder's ATTRIBUTION.md).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

MNIST5K_FILE = Path("mnist5k") / "mnist_5k.csv.gz"
_N_PIXELS = 28 * 28


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
