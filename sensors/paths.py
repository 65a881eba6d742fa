"""Where real data lives: EDGE_TAAF_DATA, or a Hydra config value that overrides it."""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "EDGE_TAAF_DATA"
FETCH_HINT = "get FSDD and MNIST with: edge-taaf-data fetch --root <folder> (then export EDGE_TAAF_DATA=<folder>)"


def data_root(configured: str | os.PathLike | None = None) -> Path:
    """Return the root folder of real data.

    ``configured`` (a Hydra ``data.root`` value) wins when given; otherwise the environment variable
    ``EDGE_TAAF_DATA``. Raises FileNotFoundError naming both when neither points at a folder.
    """
    raw = configured if configured not in (None, "") else os.environ.get(DATA_ENV)
    if raw in (None, ""):
        raise FileNotFoundError(
            f"no data folder configured: set the environment variable {DATA_ENV} or the config value data.root "
            f"to the folder that holds fsdd/, mnist5k/ and events/; {FETCH_HINT}"
        )
    root = Path(raw).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} (from {'data.root' if configured else DATA_ENV}) does not exist; "
                                f"{FETCH_HINT}")
    return root


def require_files(folder: Path, expected: list[str], what: str, hint: str = "") -> None:
    """Raise FileNotFoundError naming ``folder``, every missing entry of ``expected`` and ``hint``
    (what to do about it)."""
    missing = [name for name in expected if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"{what}: folder {folder} is missing {', '.join(missing)}; expected {', '.join(expected)} there"
            + (f"; {hint}" if hint else "")
        )
