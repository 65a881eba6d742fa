"""Make the README's figures (small PNGs under docs/figures/) from the saved benchmark JSON.

    python docs/make_figures.py       # reads docs/accuracy_runs.json and docs/bench/sim.json
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _mean_curve(runs: list[dict], key: str) -> np.ndarray:
    return np.mean([[h[key] for h in r["history"]] for r in runs], axis=0)


def ablation_curves(runs: list[dict], out: Path) -> None:
    """Fused and unimodal test accuracy per epoch, mean over seeds, official split."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 3), sharey=True)
    methods = sorted({r["method"] for r in runs if r["study"] == "official"})
    for method in methods:
        rs = [r for r in runs if r["study"] == "official" and r["method"] == method]
        for ax, key in zip(axes, ("fused_acc", "audio_acc", "vision_acc")):
            curve = 100 * _mean_curve(rs, key)
            ax.plot(np.arange(1, len(curve) + 1), curve, label=method, lw=1.2)
    for ax, title in zip(axes, ("fused", "audio head", "vision head")):
        ax.set_title(title, fontsize=9); ax.set_xlabel("epoch"); ax.grid(alpha=0.3); ax.set_ylim(40, 101)
    axes[0].set_ylabel("test accuracy (%)"); axes[0].legend(fontsize=7)
    fig.suptitle("fsdd_mnist, official split, mean of 3 seeds", fontsize=9)
    fig.tight_layout(); fig.savefig(out, dpi=80); plt.close(fig)


def imbalance_bars(runs: list[dict], out: Path) -> None:
    """SYNTHETIC imbalance: weak-modality (audio) and fused accuracy per method."""
    rs = [r for r in runs if r["study"] == "synth_imbalanced"]
    methods = sorted({r["method"] for r in rs})
    weak = [100 * np.mean([r["history"][-1]["audio_acc"] for r in rs if r["method"] == m]) for m in methods]
    fused = [100 * np.mean([r["history"][-1]["fused_acc"] for r in rs if r["method"] == m]) for m in methods]
    x = np.arange(len(methods))
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(x - 0.2, weak, 0.4, label="weak modality (audio)")
    ax.bar(x + 0.2, fused, 0.4, label="fused")
    ax.set_xticks(x, methods, fontsize=7); ax.set_ylim(50, 100); ax.set_ylabel("test accuracy (%)")
    ax.set_title("synth_imbalanced (SYNTHETIC), mean of 3 seeds", fontsize=9); ax.legend(fontsize=7)
    fig.tight_layout(); fig.savefig(out, dpi=80); plt.close(fig)


ANN_LABELS = {"ann_int8": "dense int8 ANN over T frames", "ann_single_pass": "single-pass int8 ANN",
              "ann_single_pass_zero_skip": "single pass, zeros skipped (best case)"}


def energy_by_operation(sim: dict, out: Path, hardware: str = "horowitz45nm") -> None:
    """Left: the SNN's energy by kind of operation. Right: the SNN against the three ANN baselines per layer."""
    priced = sim["by_hardware"][hardware]
    ops = {k: v for k, v in priced["energy_uj_by_operation"].items() if v > 0}
    layers = priced["energy_uj_by_layer"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4))
    ax1.barh(list(ops), list(ops.values())); ax1.invert_yaxis()
    ax1.set_xlabel("uJ per inference"); ax1.set_title(f"SNN + the sensor front-end rows by operation (int8, fsdd_mnist, {hardware})", fontsize=8)
    y = np.arange(len(layers))
    bars = ["snn", *ANN_LABELS]
    for i, key in enumerate(bars):
        ax2.barh(y - 0.3 + 0.2 * i, [v[key] for v in layers.values()], 0.2,
                 label="SNN (simulator)" if key == "snn" else ANN_LABELS[key])
    ax2.set_yticks(y, list(layers), fontsize=7); ax2.invert_yaxis(); ax2.legend(fontsize=6)
    ax2.set_xlabel("uJ per inference"); ax2.set_title("per layer (readout: warps, score MLP, attention included)", fontsize=9)
    fig.tight_layout(); fig.savefig(out, dpi=80); plt.close(fig)


def energy_sweep(sweep: dict, out: Path) -> None:
    """Simulator accuracy against the dense-int8-ANN / SNN energy ratio, one point per spike penalty."""
    pts = sweep["points"]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([p["energy_ratio_ann_int8_vs_snn"] for p in pts], [100 * p["sim_acc"] for p in pts], "o-")
    for p in pts:
        ax.annotate(f"penalty {p['spike_penalty']:g}", (p["energy_ratio_ann_int8_vs_snn"], 100 * p["sim_acc"]),
                    textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.axvline(10, color="C3", ls="--", lw=1, label="goal: 10x")
    bound = min(p["energy_ratio_bound_if_later_layers_free"] for p in pts)
    ax.axvspan(bound, ax.get_xlim()[1] + 1, color="0.85", label=f"beyond the input layers' bound ({bound:.1f}x)")
    ax.set_xlabel("dense int8 ANN / SNN energy"); ax.set_ylabel("simulator accuracy (%)")
    ax.set_title("fsdd_mnist, int8, spike_penalty sweep, PREVIOUS cost model (accumulators free)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout(); fig.savefig(out, dpi=80); plt.close(fig)


def main(out: Path | None = None) -> None:
    """Every figure from the saved JSON under docs/ into ``out`` (default docs/figures)."""
    out = Path(out) if out else DOCS / "figures"
    out.mkdir(parents=True, exist_ok=True)
    runs = json.loads((DOCS / "accuracy_runs.json").read_text())["runs"]
    ablation_curves(runs, out / "ablation_official.png")
    imbalance_bars(runs, out / "synth_imbalance.png")
    energy_by_operation(json.loads((DOCS / "bench" / "sim.json").read_text()), out / "energy_by_operation.png")
    energy_sweep(json.loads((DOCS / "energy_sweep.json").read_text()), out / "energy_sweep.png")
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
