"""Encoded-tensor disk cache: keys, hits, atomic writes, corruption."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from sensors import cache
from sensors.cache import CacheCorruptWarning, cache_key, load_or_build


@dataclasses.dataclass(frozen=True)
class Enc:
    n_time_bins: int = 10
    clip: int | None = 1
    gain: float = 0.5


BASE = {"dataset": "nmnist", "enc": Enc(), "sensor": [34, 34, 2], "window": {"t_start": 0, "t_end": 300_000}}


class Builder:
    """Counts calls; its tensor depends on every parameter, so a stale hit would show."""

    def __init__(self, params):
        self.params, self.calls = params, 0

    def __call__(self):
        self.calls += 1
        seed = int(cache_key(**self.params)[:8], 16)
        return {"spikes": np.random.default_rng(seed).integers(0, 2, (4, 2, 3, 3), dtype=np.uint8),
                "label": np.array(7)}


def build_for(params):
    return Builder(params)


def test_key_is_stable_and_ignores_dict_order():
    a = cache_key(**BASE)
    b = cache_key(window={"t_end": 300_000, "t_start": 0}, sensor=[34, 34, 2], enc=Enc(), dataset="nmnist")
    assert a == b and len(a) == 64
    assert cache_key(x=np.float64(0.25), n=np.int32(3)) == cache_key(x=0.25, n=3)


@pytest.mark.parametrize(
    "change",
    [
        {"dataset": "dvsgesture"},
        {"enc": Enc(n_time_bins=11)},
        {"enc": Enc(clip=None)},
        {"enc": Enc(gain=0.5000000000000001)},  # next float: exact repr
        {"sensor": [34, 2, 34]},
        {"window": {"t_start": 0, "t_end": 300_001}},
        {"window": {"t_start": 0, "t_end": 300_000.0}},  # int vs float
        {"window": {"t_start": "0", "t_end": 300_000}},  # int vs str
        {"window": {"t_start": False, "t_end": 300_000}},  # int vs bool
        {"extra": None},
    ],
)
def test_any_parameter_change_changes_key_and_tensors(tmp_path, change):
    first = build_for(BASE)
    old = load_or_build(tmp_path, BASE, first)
    params = {**BASE, **change}
    assert cache_key(**params) != cache_key(**BASE)
    second = build_for(params)
    new = load_or_build(tmp_path, params, second)
    assert second.calls == 1  # never served the old file
    np.testing.assert_array_equal(new["spikes"], second()["spikes"])
    assert not np.array_equal(new["spikes"], old["spikes"])


def test_code_version_is_part_of_key(monkeypatch):
    before = cache_key(**BASE)
    monkeypatch.setattr(cache, "CODE_VERSION", "edge-taaf-encoders-999")
    assert cache_key(**BASE) != before


def test_unhashable_parameter_is_rejected_with_its_location():
    with pytest.raises(TypeError, match=r"params\.enc\.fn"):
        cache_key(enc={"fn": object()})
    with pytest.raises(TypeError, match="str keys"):
        cache_key(bins={1: 2})


def test_same_params_hit_the_cache(tmp_path):
    builder = build_for(BASE)
    first = load_or_build(tmp_path, BASE, builder)
    second = load_or_build(tmp_path, dict(BASE), builder)
    assert builder.calls == 1
    assert second.keys() == {"spikes", "label"}
    np.testing.assert_array_equal(second["spikes"], first["spikes"])
    assert second["spikes"].dtype == np.uint8 and int(second["label"]) == 7
    key = cache_key(**BASE)
    shown = json.loads((tmp_path / f"{key}.json").read_text())
    assert shown["params"]["enc"]["fields"]["n_time_bins"] == 10 and shown["code_version"] == cache.CODE_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{key}.npz", f"{key}.json"])


def _crash(where, monkeypatch):
    def savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full (simulated)")

    def replace(*args):
        raise OSError("power cut (simulated)")

    if where == "savez":
        monkeypatch.setattr(np, "savez_compressed", savez)
    else:
        monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("where", ["savez", "replace"])
def test_crash_during_write_leaves_no_file(tmp_path, monkeypatch, where):
    _crash(where, monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        load_or_build(tmp_path, BASE, build_for(BASE))
    assert not list(tmp_path.iterdir())  # neither a final nor a temp file


@pytest.mark.parametrize("where", ["savez", "replace"])
def test_crash_while_overwriting_keeps_previous_good_file(tmp_path, monkeypatch, where):
    builder = build_for(BASE)
    good = load_or_build(tmp_path, BASE, builder)
    final = tmp_path / f"{cache_key(**BASE)}.npz"
    good_bytes = final.read_bytes()

    def forced_miss(path, params_json):
        raise ValueError("forced miss")

    monkeypatch.setattr(cache, "_load", forced_miss)  # makes load_or_build rebuild over the good file
    _crash(where, monkeypatch)
    with pytest.warns(CacheCorruptWarning), pytest.raises(OSError, match="simulated"):
        load_or_build(tmp_path, BASE, builder)
    assert builder.calls == 2
    assert final.read_bytes() == good_bytes
    assert not list(tmp_path.glob("*.tmp"))
    monkeypatch.undo()
    np.testing.assert_array_equal(load_or_build(tmp_path, BASE, builder)["spikes"], good["spikes"])
    assert builder.calls == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other_params"])
def test_corrupt_file_is_reported_and_rebuilt(tmp_path, damage):
    builder = build_for(BASE)
    good = load_or_build(tmp_path, BASE, builder)
    final = tmp_path / f"{cache_key(**BASE)}.npz"
    data = final.read_bytes()
    if damage == "truncate":
        final.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        final.write_bytes(b"\0" * 100)
    else:  # a valid npz written for other parameters, renamed onto this key
        with final.open("wb") as f:
            np.savez_compressed(f, spikes=np.zeros(1), __cache_params__=np.array("{}"))
    with pytest.warns(CacheCorruptWarning, match=str(final.name)):
        again = load_or_build(tmp_path, BASE, builder)
    assert builder.calls == 2
    np.testing.assert_array_equal(again["spikes"], good["spikes"])
    np.testing.assert_array_equal(load_or_build(tmp_path, BASE, builder)["spikes"], good["spikes"])
    assert builder.calls == 2  # rebuilt file is good again


def test_cache_dir_that_is_a_file_raises(tmp_path):
    not_a_dir = tmp_path / "cache"
    not_a_dir.write_text("oops")
    with pytest.raises(NotADirectoryError, match=str(not_a_dir)):
        load_or_build(not_a_dir, BASE, build_for(BASE))


def test_missing_cache_dir_is_created(tmp_path):
    folder = tmp_path / "a" / "b"
    load_or_build(folder, BASE, build_for(BASE))
    assert (folder / f"{cache_key(**BASE)}.npz").is_file()


@pytest.mark.parametrize("bad", [[1, 2], {"x": [1, 2]}, {"x": np.array([object()])}, {1: np.zeros(1)}])
def test_build_must_return_named_arrays(tmp_path, bad):
    with pytest.raises(TypeError, match="build()"):
        load_or_build(tmp_path, BASE, lambda: bad)
    assert not list(Path(tmp_path).iterdir())
