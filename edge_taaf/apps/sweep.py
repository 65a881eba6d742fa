"""Hydra callback: after a pipeline sweep, one comparison table and an accuracy-energy Pareto plot.

The Pareto front and every choice it feeds are made on VALIDATION accuracy (each point's ``val_acc``:
its deployed int8 program in integer mode on the val split); the simulator's test accuracy (``sim_acc``)
is shown beside it, never used to choose (docs/evaluation.md). ``select_on`` other than val is a
ConfigError.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from hydra.experimental.callback import Callback  # noqa: E402

from edge_taaf.config import check_select_on  # noqa: E402
from sensors.atomic import atomic_write_text  # noqa: E402


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of (energy, accuracy) points no other point beats on both (lower energy, higher accuracy)."""
    return [i for i, (e, a) in enumerate(points)
            if not any((e2 <= e and a2 >= a) and (e2 < e or a2 > a) for e2, a2 in points)]


def competitor_points(path: str | Path | None) -> list[dict]:
    """The trained single-pass int8 ANN (edge-taaf-ann's ann_result.json) as plot points per hardware config:
    its dense and its zero-skipping pricing (the same hardware table and memory rules as the SNN), at its
    validation accuracy (``val_acc``) like the SNN points; a file without one is drawn at its test
    ``accuracy`` and labelled so."""
    if not path:
        return []
    result = json.loads(Path(path).read_text())
    acc, which = (result["val_acc"], "val") if "val_acc" in result else (result["accuracy"], "TEST, no val_acc in file")
    return [{"label": f"trained int8 ANN, single pass ({kind.replace('_', '-')}; its own int8 model, {which})",
             "acc": acc, "hardware": hw, "energy_uj": e[kind]}
            for hw, e in result["energy_uj"].items() for kind in ("dense", "zero_skip")]


def summarise_sweep(sweep_dir: Path, competitor: str | Path | None = None) -> list[dict]:
    """comparison.md / .json and pareto.png (one panel per hardware config, validation accuracy against energy
    per inference, the Pareto front of the SNN points, and the trained ANN competitor when given). A point's
    report.json without ``val_acc`` (written before the val split existed) is a ValueError naming it."""
    rows = []
    for report in sorted(Path(sweep_dir).glob("*/report.json")):
        r = json.loads(report.read_text())
        if "val_acc" not in r:
            raise ValueError(f"{report}: no val_acc (written before the validation split existed); re-run that point, "
                             "Pareto points are chosen on validation accuracy")
        rows.append({"point": report.parent.name, "T": r["T"], "weight_bits": r["weight_bits"],
                     "val_acc": r["val_acc"], "sim_acc": r["sim_acc"],
                     "energy_uj": r["energy_uj_per_inference"], "latency_us": r["latency_us_per_inference"],
                     "ann_int8_ratio": r["energy_ratio_ann_int8_vs_snn"],
                     "single_pass_ratio": r["energy_ratio_single_pass_ann_vs_snn"],
                     "zero_skip_ratio": r["energy_ratio_single_pass_zero_skip_vs_snn"],
                     "energy_by_hardware": {hw: e["energy_uj"] for hw, e in r.get("energy_by_hardware", {}).items()},
                     "max_layer_spike_rate": r.get("max_layer_spike_rate"),
                     "exact": int(r["onnx_ort_exact"] and r["sim_equals_int_mode"]), "spikes": r["spikes_per_inference"]})
    if not rows:
        return rows
    front = set(pareto_front([(r["energy_uj"], r["val_acc"]) for r in rows]))   # chosen on validation
    for i, r in enumerate(rows):
        r["pareto"] = i in front
        r["selected_on"] = "val"
    lines = ["Pareto front chosen on validation accuracy; the test accuracy (simulator) is shown beside it, never "
             "used to choose.", "",
             "| point | T | bits | val % (chooses) | test %, simulator | every output exact | spikes | energy uJ | "
             "int8 ANN over T / SNN | single-pass ANN / SNN | single pass, zero-skip / SNN | latency us | Pareto (val) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
             *[f"| {r['point']} | {r['T']} | {r['weight_bits']} | {100 * r['val_acc']:.2f} | "
               f"{100 * r['sim_acc']:.2f} | {'yes' if r['exact'] else 'NO'} | {r['spikes']:.0f} | {r['energy_uj']:.4f} | "
               f"{r['ann_int8_ratio']:.2f}x | {r['single_pass_ratio']:.2f}x | {r['zero_skip_ratio']:.2f}x | "
               f"{r['latency_us']:.1f} | {'yes' if r['pareto'] else ''} |"
               for r in rows]]
    atomic_write_text(Path(sweep_dir) / "comparison.md", "\n".join(lines) + "\n")
    atomic_write_text(Path(sweep_dir) / "comparison.json", json.dumps(rows, indent=1))
    plot_pareto(rows, competitor_points(competitor), Path(sweep_dir) / "pareto.png")
    return rows


def plot_pareto(rows: list[dict], competitor: list[dict], path: Path) -> None:
    """One panel per hardware config: each SNN point, its Pareto front (dashed) and the competitor's points."""
    hardware = sorted({hw for r in rows for hw in r["energy_by_hardware"]}) or ["default"]
    fig, axes = plt.subplots(1, len(hardware), figsize=(5 * len(hardware), 3.8), squeeze=False)
    for ax, hw in zip(axes[0], hardware):
        pts = [(r["energy_by_hardware"].get(hw, r["energy_uj"]), r["val_acc"], r["point"]) for r in rows]
        on_front = set(pareto_front([(e, a) for e, a, _ in pts]))
        for i, (e, a, name) in enumerate(pts):
            ax.scatter(e, 100 * a, c="C3" if i in on_front else "C0", s=18)
            ax.annotate(name, (e, 100 * a), fontsize=5)
        front_pts = sorted(pts[i] for i in on_front)
        ax.plot([p[0] for p in front_pts], [100 * p[1] for p in front_pts], "C3--", lw=1, label="SNN Pareto front")
        for j, c in enumerate(p for p in competitor if p["hardware"] == hw):
            ax.scatter(c["energy_uj"], 100 * c["acc"], marker="s" if "dense" in c["label"] else "D", c=f"C{2 + j}",
                       label=c["label"])
        ax.set_xscale("log")
        ax.set_xlabel(f"energy per inference (uJ, {hw})"); ax.set_ylabel("validation accuracy (%)")
        ax.grid(alpha=0.3); ax.legend(fontsize=6)
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


class SweepSummary(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        check_select_on(config)
        rows = summarise_sweep(Path(config.hydra.sweep.dir), config.get("competitor"))
        print(f"sweep: {len(rows)} points -> {Path(config.hydra.sweep.dir) / 'comparison.md'}")
