"""Write the small real-data fixture set in tests/data from the full data sets.

    EDGE_TAAF_DATA=../shared/data python tests/support/make_fixtures.py [--out tests/data]

The output is laid out like the full data root (fsdd/, mnist5k/, events/), so the same code reads
either. Every file is real data, copied or subset without modification (see tests/data/ATTRIBUTION.md):

  fsdd/recordings/   FSDD clips of SPEAKERS x every digit 0-9 x TAKES (60 clips), copied byte for
                     byte; take 0 falls in FSDD's official test split (takes 0-4), take 5 in its
                     train split; lucas and george are the default held-out speakers of the
                     speaker split, nicolas is left for its train side.
  fsdd/speakers.json copied.
  mnist5k/mnist_5k.csv.gz
                     every 50th row of the 5k subset (rows 0, 50, ..., 4950: 10 digits per class,
                     still sorted by label), the CSV lines copied verbatim, gzip with mtime 0.
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

from sensors.paths import data_root  # noqa: E402

SPEAKERS = ("george", "lucas", "nicolas")
TAKES = (0, 5)
MNIST_STEP = 50
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


def make(src: Path, out: Path) -> list[Path]:
    """Write the fixture set under ``out`` from the full data root ``src``; return the written files."""
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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data", help="output folder (default tests/data)")
    args = ap.parse_args(argv)
    files = make(data_root(), args.out)
    total = sum(f.stat().st_size for f in files)
    print(f"{len(files)} files, {total:,} bytes under {args.out}")


if __name__ == "__main__":
    main()
