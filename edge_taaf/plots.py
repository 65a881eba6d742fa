"""Training plots (matplotlib, Agg backend): per-modality accuracy over epochs, attention over steps."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_training(history: list[dict], run_dir: Path) -> list[Path]:
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key, label in (("val_fused_acc", "fused"), ("val_audio_acc", "audio head"), ("val_vision_acc", "vision head")):
        if key in history[-1]:  # a one-sensor model has one head
            ax.plot(epochs, [100 * h[key] for h in history], marker="o", ms=3, label=label)
    ax.set_xlabel("epoch"); ax.set_ylabel("validation accuracy (%)"); ax.legend(); ax.grid(alpha=0.3)
    fig.tight_layout()
    acc_path = Path(run_dir) / "accuracy.png"
    fig.savefig(acc_path, dpi=100); plt.close(fig)

    att = history[-1]["val_attention_per_step"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(range(len(att)), att)
    ax.set_xlabel("time step t"); ax.set_ylabel("mean attention alpha_t"); ax.set_title(f"epoch {epochs[-1]}")
    fig.tight_layout()
    att_path = Path(run_dir) / "attention.png"
    fig.savefig(att_path, dpi=100); plt.close(fig)
    return [acc_path, att_path]
