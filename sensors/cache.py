"""Disk cache of encoded tensors, keyed by a hash of every parameter that shaped them.

``<cache_dir>/<sha256>.npz`` holds the arrays plus the canonical parameter JSON (checked on load);
``<sha256>.json`` beside it shows a person what the file holds. Writes are atomic (temp file in the
same folder, fsync, os.replace), so a crash never leaves a partial file at the final path.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from sensors.atomic import atomic_write

#: Bump when an encoder's output changes for the same parameters: every old cache key goes stale.
CODE_VERSION = "edge-taaf-encoders-1"
_PARAMS_ENTRY = "__cache_params__"


class CacheCorruptWarning(RuntimeWarning):
    """A cache file could not be read or did not match its key; it is rebuilt."""


def canonical_json(params: Mapping) -> str:
    """Canonical JSON of ``params`` (sorted keys, no whitespace) plus :data:`CODE_VERSION`.

    Accepts str/int/bool/None, floats (exact repr; NaN/inf allowed), numpy scalars, mappings
    with str keys (Hydra DictConfig too), lists/tuples, dataclasses (tagged with their class
    name), paths (as strings) and numpy arrays (dtype, shape and a sha256 of the bytes).
    Anything else raises TypeError naming where it sits, never a repr that could change.
    """
    doc = {"code_version": CODE_VERSION, "params": _plain(params, "params")}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=True)


def cache_key(**params) -> str:
    """Stable sha256 hex digest of :func:`canonical_json` of ``params``."""
    return hashlib.sha256(canonical_json(params).encode("utf-8")).hexdigest()


def load_or_build(
    cache_dir: str | os.PathLike,
    key_params: Mapping,
    build: Callable[[], Mapping[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Return the arrays cached under ``key_params``, building and caching them on a miss.

    A hit is ``cache_dir/<cache_key(**key_params)>.npz`` that loads and whose stored parameters
    match. An unreadable or mismatching file is reported (CacheCorruptWarning naming it) and
    rebuilt. ``build()`` must return a dict of str -> numpy array (no object dtype).

    Raises:
        NotADirectoryError: ``cache_dir`` exists but is not a folder.
        TypeError: a parameter cannot be hashed canonically, or build() returned something else.
    """
    folder = Path(cache_dir)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"cache_dir {folder} exists but is not a folder; point cache_dir at a folder")
    folder.mkdir(parents=True, exist_ok=True)
    params_json = canonical_json(key_params)
    key = hashlib.sha256(params_json.encode("utf-8")).hexdigest()
    path = folder / f"{key}.npz"

    if path.exists():
        try:
            return _load(path, params_json)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            warnings.warn(f"cache file {path} is unreadable or stale ({exc}); rebuilding it", CacheCorruptWarning,
                          stacklevel=2)

    arrays = _check_built(build())
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays, **{_PARAMS_ENTRY: np.array(params_json)}))
    pretty = json.dumps(json.loads(params_json), indent=2, sort_keys=True) + "\n"
    atomic_write(path.with_suffix(".json"), lambda f: f.write(pretty.encode("utf-8")))
    return arrays


def _load(path: Path, params_json: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        data = {name: z[name] for name in z.files}  # reads every member: zip CRCs are checked
    stored = data.pop(_PARAMS_ENTRY, None)
    if stored is None or str(stored) != params_json:
        raise ValueError("stored parameters do not match the key")
    return data


def _check_built(result) -> dict[str, np.ndarray]:
    if not isinstance(result, Mapping):
        raise TypeError(f"build() must return a dict of str -> numpy array, got {type(result).__name__}")
    arrays = {}
    for name, value in result.items():
        if not isinstance(name, str) or not name.isidentifier() or name == _PARAMS_ENTRY:
            raise TypeError(f"build() returned array name {name!r}; names must be identifiers other than {_PARAMS_ENTRY}")
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise TypeError(f"build() returned {name!r} as {type(value).__name__}; expected a numpy array without objects")
        arrays[name] = value
    return arrays


def _plain(value, where: str):
    """Turn ``value`` into JSON-ready types, exactly and deterministically."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum and friends hash as their number
    if isinstance(value, float):
        return float(value)  # json writes repr(): shortest string that round-trips exactly
    if isinstance(value, np.generic):
        if isinstance(value, (np.bool_, np.integer, np.floating)):
            return _plain(value.item(), where)
        raise TypeError(f"{where}: numpy scalar of dtype {value.dtype} cannot be hashed canonically")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        fields = {f.name: _plain(getattr(value, f.name), f"{where}.{f.name}") for f in dataclasses.fields(value)}
        return {"__dataclass__": f"{cls.__module__}.{cls.__qualname__}", "fields": fields}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is {type(k).__name__}; cache parameters need str keys")
            out[k] = _plain(v, f"{where}.{k}")
        return out
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"{where}: object arrays cannot be hashed canonically")
        data = np.ascontiguousarray(value)
        return {"__ndarray__": data.dtype.str, "shape": list(data.shape), "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where}: {type(value).__name__} {value!r:.80} cannot be hashed canonically; "
                    "use numbers, strings, lists, dicts or dataclasses")


__all__ = ["CODE_VERSION", "CacheCorruptWarning", "cache_key", "canonical_json", "load_or_build"]
