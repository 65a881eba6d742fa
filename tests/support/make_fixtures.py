"""Write the small real-data fixture set in tests/data from the full data sets.

    EDGE_TAAF_DATA=../shared/data python tests/support/make_fixtures.py [--out tests/data] \
        [--mnist-test-root ~/.cache/edge_taaf/data]

The output is laid out like the full data root (fsdd/, mnist5k/, mnist_test/, events/), so the same
code reads either. MNIST's test set comes from --mnist-test-root (default: the data root), which
``edge-taaf-data fetch --source mnist_test --root DIR`` fills. Every file is real data, copied or subset without modification (see tests/data/ATTRIBUTION.md):

  fsdd/recordings/   FSDD clips of SPEAKERS x every digit 0-9 x TAKES (60 clips), copied byte for
                     byte; take 0 falls in FSDD's official test split (takes 0-4), take 5 in its
                     train split; lucas and george are the default held-out speakers of the
                     speaker split, nicolas is left for its train side.
  fsdd/speakers.json copied.
  mnist5k/mnist_5k.csv.gz
                     every 50th row of the 5k subset (rows 0, 50, ..., 4950: 10 digits per class,
                     still sorted by label), the CSV lines copied verbatim, gzip with mtime 0.
  mnist_test/t10k-images-idx3-ubyte, mnist_test/t10k-labels-idx1-ubyte
                     the first MNIST_TEST_PER_CLASS digits of each class of MNIST's official test set,
                     in the set's own order (200 digits; its first ten labels are 7 2 1 0 4 1 4 9 5 9),
                     pixels and labels unchanged, rewritten as IDX files with the smaller count.
  events/sample_nmnist.bin, events/sample.aedat4
                     copied.

Running it twice gives byte-identical files.
"""
from __future__ import annotations

import argparse
import gzip
import io
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from sensors.mnist import MNIST_TEST_IMAGES, MNIST_TEST_LABELS, load_mnist_test  # noqa: E402
from sensors.paths import data_root  # noqa: E402

SPEAKERS = ("george", "lucas", "nicolas")
TAKES = (0, 5)
MNIST_STEP = 50
MNIST_TEST_PER_CLASS = 20
EVENT_FILES = ("sample_nmnist.bin", "sample.aedat4")


def fsdd_names() -> list[str]:
    """The selected FSDD file names, sorted."""
    return sorted(f"{d}_{s}_{t}.wav" for d in range(10) for s in SPEAKERS for t in TAKES)


def mnist_subset(src: Path) -> bytes:
    """Every MNIST_STEP-th line of the 5k CSV, gzip-compressed reproducibly (mtime 0, no file name)."""
    with gzip.open(src, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    picked = b"".join(lines[::MNIST_STEP])
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(picked)
    return buf.getvalue()


def idx_ubyte(array: np.ndarray) -> bytes:
    """``array`` (uint8) as an IDX file: 0x0000, type 0x08 (unsigned byte), ndim, big-endian uint32 sizes, values."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def mnist_test_subset(src: Path) -> tuple[bytes, bytes]:
    """(images, labels) IDX bytes of the first MNIST_TEST_PER_CLASS digits per class, in the test set's order."""
    images, labels = load_mnist_test(src)
    rank = np.zeros(labels.size, np.int64)  # rank[i]: how many earlier digits share labels[i]
    for c in range(10):
        rank[labels == c] = np.arange(int((labels == c).sum()))
    keep = np.flatnonzero(rank < MNIST_TEST_PER_CLASS)
    return idx_ubyte(images[keep]), idx_ubyte(labels[keep].astype(np.uint8))


def make(src: Path, out: Path) -> list[Path]:
    """Write the fixture set under ``out`` from the full data root ``src``, all but mnist_test/; return the
    written files."""
    written = []

    def copy(rel: str) -> None:
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, dest)
        written.append(dest)

    recordings = out / "fsdd" / "recordings"
    if recordings.exists():  # drop clips of an older selection
        shutil.rmtree(recordings)
    for name in fsdd_names():
        copy(f"fsdd/recordings/{name}")
    copy("fsdd/speakers.json")
    for name in EVENT_FILES:
        copy(f"events/{name}")
    dest = out / "mnist5k" / "mnist_5k.csv.gz"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(mnist_subset(src / "mnist5k" / "mnist_5k.csv.gz"))
    written.append(dest)
    return written


def make_mnist_test(src: Path, out: Path) -> list[Path]:
    """Write mnist_test/ under ``out`` from the data root ``src`` that holds MNIST's test set; return the files.

    Apart from :func:`make` because ../shared/data has no mnist_test/ (``edge-taaf-data fetch`` writes it).
    """
    written = []
    for rel, data in zip((MNIST_TEST_IMAGES, MNIST_TEST_LABELS), mnist_test_subset(src)):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
        written.append(out / rel)
    return written


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data", help="output folder (default tests/data)")
    ap.add_argument("--mnist-test-root", type=Path, default=None,
                    help="data root holding mnist_test/ (default: the data root; fill one with "
                         "edge-taaf-data fetch --source mnist_test --root DIR)")
    args = ap.parse_args(argv)
    root = data_root()
    files = make(root, args.out) + make_mnist_test(args.mnist_test_root or root, args.out)
    total = sum(f.stat().st_size for f in files)
    print(f"{len(files)} files, {total:,} bytes under {args.out}")


if __name__ == "__main__":
    main()
