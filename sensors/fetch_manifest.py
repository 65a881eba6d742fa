"""The fetch manifest: the pinned sources (:class:`Source`), reading and writing
``sensors/data_manifest.json.gz``, every field checked, and the converters a source may name.

Split from sensors/fetch.py (downloading, extracting, the CLI): this module is what a source *is*;
fetch.py is what fetching *does*. Standard library only.
"""
from __future__ import annotations

import ast
import dataclasses
import gzip
import json
import os
import posixpath
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sensors.atomic import atomic_write

#: The pinned sources and the SHA-256 of every file they produce (shipped with the package).
MANIFEST = Path(__file__).with_name("data_manifest.json.gz")
MANIFEST_FORMAT = 1
ARCHIVE_KINDS = ("tar.gz", "zip")


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
