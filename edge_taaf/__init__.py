"""edge_taaf: the float two-modality spiking network, its training and the Hydra apps."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

def _config_dir() -> str:
    """The Hydra config folder: configs/ at the repository root, shipped as the package ``edge_taaf.configs``.

    pyproject.toml maps ``edge_taaf.configs`` onto configs/, so a wheel (``pip install .``) carries the
    YAML files inside the package and an editable install (``pip install -e .``) resolves the package to
    the checkout's configs/. A checkout imported without an install (``python -m`` from the repository
    root, bench/ scripts) or an editable install made before that mapping existed falls back to configs/
    next to this package.
    """
    try:
        folder = Path(str(resources.files("edge_taaf.configs")))
    except ModuleNotFoundError:
        folder = Path(__file__).resolve().parents[1] / "configs"
    if not (folder / "train.yaml").is_file():
        raise RuntimeError(f"edge_taaf: no Hydra configs in {folder} (train.yaml missing); reinstall the package "
                           "(pip install . or pip install -e . from the repository root)")
    return str(folder)


#: The Hydra config folder, an absolute path (the apps, tests and bench compose from it).
CONFIG_DIR = _config_dir()


def _register_schemas() -> None:
    # The config groups' typed schemas go into Hydra's ConfigStore before any app, test or bench script
    # composes a config (every preset names its schema in its defaults list).
    from edge_taaf.schema import register_schemas
    register_schemas()


_register_schemas()
