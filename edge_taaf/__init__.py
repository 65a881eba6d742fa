"""edge_taaf: the float two-modality spiking network, its training and the Hydra apps."""
from pathlib import Path

#: The Hydra config folder (configs/ at the repository root; the project installs editable).
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
