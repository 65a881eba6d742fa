"""Where real data lives: EDGE_TAAF_DATA, or a Hydra config value that overrides it."""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "EDGE_TAAF_DATA"


def data_root(configured: str | os.PathLike | None = None) -> Path:
    """Return the root folder of real data.

    ``configured`` (a Hydra ``data.root`` value) wins when given; otherwise the environment variable
    ``EDGE_TAAF_DATA``. Raises FileNotFoundError naming both when neither points at a folder.
    """
    raw = configured if configured not in (None, "") else os.environ.get(DATA_ENV)
    if raw in (None, ""):
        raise FileNotFoundError(
            f"no data folder configured: set the environment variable {DATA_ENV} or the config value data.root "
            "to the folder that holds fsdd/, mnist5k/ and events/"
        )
    root = Path(raw).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} (from {'data.root' if configured else DATA_ENV}) does not exist")
    return root


def require_files(folder: Path, expected: list[str], what: str) -> None:
    """Raise FileNotFoundError naming ``folder`` and every missing entry of ``expected``."""
    missing = [name for name in expected if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"{what}: folder {folder} is missing {', '.join(missing)}; expected {', '.join(expected)} there"
        )
