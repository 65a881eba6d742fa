"""Resumable, cached pipeline stages.

A stage is a function that writes its outputs into a folder. The folder's name holds a hash of
everything that shapes the outputs: the config values the stage reads plus the keys of the stages
it depends on. So re-running the same config finds the folder with its ``stage.json`` marker and
skips the work, and a changed value re-runs exactly the stages it reaches. The marker is written
atomically and last: a stage killed half-way has no marker and runs again (stages that can resume,
like training, pick up their own checkpoint inside the folder).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sensors.atomic import atomic_write_text

MARKER = "stage.json"

#: The config options each training stage's key holds: exactly those that shape its outputs (the stages it
#: depends on add their own keys). A dotted path names one option; a group name, every option under it.
STAGE_OPTIONS = {
    "data": ("data",),
    "float": ("model", "loss", "trainer", "seed", "float_epochs"),
    "qat": ("quant", "qat_epochs", "qat_lr"),
}
#: Options under those that change where a run writes or what it prints, or that only another product reads
#: (data.stream: the always-on streams, sensors/streams.py), never what the stage computes: no key holds them,
#: so switching a progress bar off or moving the encoded-data cache re-runs nothing.
NOT_SHAPING = ("data.cache_dir", "data.stream", "trainer.progress", "trainer.log_epochs", "trainer.save_rank_weights")


def stage_key(name: str, params: dict, depends: list[str]) -> str:
    """16 hex digits of sha256 over the stage name, its plain-JSON parameters and its inputs' keys."""
    doc = json.dumps({"stage": name, "params": params, "depends": depends}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()[:16]


def stage_options(cfg, stage: str) -> dict:
    """The options of ``cfg`` (resolved, plain) that STAGE_OPTIONS declares for ``stage``, less NOT_SHAPING:
    what the stage's key holds. A code-version bump of a stage (its ``code`` entry) may still invalidate old
    caches."""
    from omegaconf import OmegaConf

    out = {}
    for path in STAGE_OPTIONS[stage]:
        value = OmegaConf.select(cfg, path, throw_on_missing=True)
        out[path] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    for path in NOT_SHAPING:
        head, _, leaf = path.rpartition(".")
        if head in out and isinstance(out[head], dict):
            out[head].pop(leaf, None)
    return out


def package_folder(name: str) -> Path:
    """Where an installed (or checked-out) top-level package's sources are, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"code_version: {name!r} is not an importable package")
    return Path(list(spec.submodule_search_locations)[0])


def code_version(*packages: str | Path) -> str:
    """sha256 of the Python sources of the given packages (names such as "quant", or absolute folders). Cheap stages (export, simulate) put it in their key, so that a change to the
    exporter or the simulator re-runs them instead of reusing results the old code made; training
    stages leave it out on purpose (a docstring edit must not throw away hours of training)."""
    digest = hashlib.sha256()
    for package in packages:
        folder = Path(package) if Path(package).is_absolute() else package_folder(str(package))
        for path in sorted(folder.rglob("*.py")):
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass
class StageResult:
    name: str
    key: str
    folder: Path
    outputs: dict
    cached: bool
    seconds: float


def run_stage(workdir: Path, name: str, params: dict, depends: list[StageResult], work: Callable[[Path], dict],
              log: Callable[[str], Any] = print) -> StageResult:
    """Run ``work(folder) -> outputs`` unless a finished folder for (name, params, depends) exists."""
    params = json.loads(json.dumps(params))  # plain JSON values (e.g. int keys of a YAML table become str)
    key = stage_key(name, params, [d.key for d in depends])
    folder = Path(workdir) / f"{name}-{key}"
    marker = folder / MARKER
    if marker.exists():
        done = json.loads(marker.read_text())
        log(f"[{name}] cached ({folder})")
        return StageResult(name, key, folder, done["outputs"], True, 0.0)
    folder.mkdir(parents=True, exist_ok=True)
    log(f"[{name}] running in {folder}")
    t0 = time.time()
    outputs = work(folder)
    seconds = time.time() - t0
    atomic_write_text(marker, json.dumps({"stage": name, "params": params, "depends": [d.key for d in depends],
                                          "outputs": outputs, "seconds": seconds}, indent=1, default=str))
    return StageResult(name, key, folder, outputs, False, seconds)
