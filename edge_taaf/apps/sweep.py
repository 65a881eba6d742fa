"""Hydra callback: after a pipeline sweep, one comparison table and an accuracy-energy Pareto plot."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from hydra.experimental.callback import Callback  # noqa: E402

from sensors.atomic import atomic_write_text  # noqa: E402


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of (energy, accuracy) points no other point beats on both (lower energy, higher accuracy)."""
    return [i for i, (e, a) in enumerate(points)
            if not any((e2 <= e and a2 >= a) and (e2 < e or a2 > a) for e2, a2 in points)]


def summarise_sweep(sweep_dir: Path) -> list[dict]:
    rows = []
    for report in sorted(Path(sweep_dir).glob("*/report.json")):
        r = json.loads(report.read_text())
        rows.append({"point": report.parent.name, "T": r["T"], "weight_bits": r["weight_bits"],
                     "float_acc": r["float_acc"], "int_acc": r["int_acc"], "sim_acc": r["sim_acc"],
                     "energy_uj": r["energy_uj_per_inference"], "latency_us": r["latency_us_per_inference"],
                     "ann_int8_ratio": r["energy_ratio_ann_int8_vs_snn"],
                     "single_pass_ratio": r["energy_ratio_single_pass_ann_vs_snn"],
                     "zero_skip_ratio": r["energy_ratio_single_pass_zero_skip_vs_snn"],
                     "exact": int(r["onnx_ort_exact"] and r["sim_equals_int_mode"]), "spikes": r["spikes_per_inference"]})
    if not rows:
        return rows
    front = set(pareto_front([(r["energy_uj"], r["sim_acc"]) for r in rows]))
    for i, r in enumerate(rows):
        r["pareto"] = i in front
    lines = ["| point | T | bits | float % | int % | simulator % | every output exact | spikes | energy uJ | "
             "int8 ANN over T / SNN | single-pass ANN / SNN | single pass, zero-skip / SNN | latency us | Pareto |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
             *[f"| {r['point']} | {r['T']} | {r['weight_bits']} | {100 * r['float_acc']:.2f} | {100 * r['int_acc']:.2f} | "
               f"{100 * r['sim_acc']:.2f} | {'yes' if r['exact'] else 'NO'} | {r['spikes']:.0f} | {r['energy_uj']:.4f} | "
               f"{r['ann_int8_ratio']:.2f}x | {r['single_pass_ratio']:.2f}x | {r['zero_skip_ratio']:.2f}x | "
               f"{r['latency_us']:.1f} | {'yes' if r['pareto'] else ''} |"
               for r in rows]]
    atomic_write_text(Path(sweep_dir) / "comparison.md", "\n".join(lines) + "\n")
    atomic_write_text(Path(sweep_dir) / "comparison.json", json.dumps(rows, indent=1))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in rows:
        ax.scatter(r["energy_uj"], 100 * r["sim_acc"], c="C3" if r["pareto"] else "C0")
        ax.annotate(f"T{r['T']}/{r['weight_bits']}b", (r["energy_uj"], 100 * r["sim_acc"]), fontsize=7)
    front_rows = sorted((r for r in rows if r["pareto"]), key=lambda r: r["energy_uj"])
    ax.plot([r["energy_uj"] for r in front_rows], [100 * r["sim_acc"] for r in front_rows], "C3--", lw=1)
    ax.set_xlabel("energy per inference (uJ, simulator)"); ax.set_ylabel("simulator accuracy (%)")
    ax.grid(alpha=0.3); fig.tight_layout(); fig.savefig(Path(sweep_dir) / "pareto.png", dpi=100); plt.close(fig)
    return rows


class SweepSummary(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        rows = summarise_sweep(Path(config.hydra.sweep.dir))
        print(f"sweep: {len(rows)} points -> {Path(config.hydra.sweep.dir) / 'comparison.md'}")
