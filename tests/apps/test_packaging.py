"""`pip install .` (not editable) ships every Hydra config and every module and data file.

The apps read their configs from the package edge_taaf.configs (pyproject.toml maps it onto configs/ at the
repository root), so a config group or app yaml missing from the wheel breaks a plain install.
"""
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from edge_taaf import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("edge_taaf", "sensors", "quant", "firmware_sim")
# Build outputs, caches and environments are not part of the source the build sees.
IGNORE = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".cache",
                                ".hypothesis", ".pytest_cache", "outputs", "multirun")
BUILD = "import sys; from setuptools import build_meta as b; print(getattr(b, sys.argv[1])(sys.argv[2]))"


def build(kind: str, source: Path, out: Path) -> Path:
    """setuptools' PEP 517 backend (what pip runs for `pip install .`), in a copy of the tree: no build/ here."""
    out.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", BUILD, f"build_{kind}", str(out)], cwd=source,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"build_{kind} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out / proc.stdout.strip().splitlines()[-1]


def source_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and p.suffix not in (".pyc", ".nbi", ".nbc")]


def expected_files() -> dict[str, str]:
    """Wheel path -> source path of every config file and every file of the packages (modules, data)."""
    files = {f"edge_taaf/configs/{p.relative_to(ROOT / 'configs').as_posix()}": p.relative_to(ROOT).as_posix()
             for p in source_files(ROOT / "configs")}
    for package in PACKAGES:
        files |= {p.relative_to(ROOT).as_posix(): p.relative_to(ROOT).as_posix() for p in source_files(ROOT / package)}
    return files


def test_config_dir_holds_every_app_and_group():
    names = {p.name for p in Path(CONFIG_DIR).iterdir()}
    assert {"pipeline.yaml", "train.yaml", "export.yaml", "simulate.yaml", "data_app.yaml"} <= names
    assert {"data", "model", "loss", "trainer", "hardware", "sensor", "hydra"} <= names


@pytest.mark.slow
def test_wheel_ships_every_config_and_module(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    sdist = build("sdist", src, tmp_path / "dist")
    with tarfile.open(sdist) as tar:        # pip and `python -m build` may build the wheel from the sdist
        tar.extractall(tmp_path / "unpacked", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    unpacked = next((tmp_path / "unpacked").iterdir())
    expected = expected_files()
    assert len([k for k in expected if k.endswith(".yaml")]) >= 20
    for source in (src, unpacked):
        wheel = build("wheel", source, tmp_path / f"wheel-{source.name}")
        shipped = set(zipfile.ZipFile(wheel).namelist())
        missing = sorted(f"{src_path} (as {path})" for path, src_path in expected.items() if path not in shipped)
        assert not missing, f"{wheel.name} built from {source.name} lacks: {missing}"
        assert not [n for n in shipped if n.startswith("configs/")], "configs/ must ship inside edge_taaf"
