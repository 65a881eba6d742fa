"""The report as JSON text and the energy plot (energy per unit, stacked by kind of operation, the ANN baselines)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from firmware_sim.ann_cost import ANN_RATIOS  # noqa: E402
from firmware_sim.dataflow import OPERATIONS  # noqa: E402


def _plain(value):
    """JSON-safe copy: numpy scalars to Python, inf/nan to strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def report_json(report: dict) -> str:
    """The report as JSON text (numpy scalars as numbers, inf / nan as strings). Writing it is the
    caller's job (the apps write atomically): firmware_sim writes no files but its plots."""
    return json.dumps(_plain(report), indent=2)


def plot_energy(energy: dict, path: str | Path, title: str = "") -> None:
    """Left: uJ per inference of every unit (sensor front-ends included), stacked by operation. Right: by kind of
    operation, the ANN baselines noted (priced alike: the shared front-end rows in their figures too)."""
    units = energy["by_unit"]
    names = list(units)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    bottom = [0.0] * len(names)
    colors = plt.get_cmap("tab10").colors
    for i, op in enumerate(OPERATIONS):
        values = [units[n]["pj_by_operation"].get(op, 0.0) * 1e-6 for n in names]
        if any(values):
            ax1.bar(names, values, bottom=bottom, label=op, color=colors[i % len(colors)])
            bottom = [b + v for b, v in zip(bottom, values)]
    ann_layers = energy["ann_int8_T"]["by_layer"]
    shown = [(i, ann_layers[n]["energy_uj"]) for i, n in enumerate(names) if n in ann_layers]
    if shown:
        ax1.scatter([i for i, _ in shown], [e for _, e in shown], marker="_", s=400, color="black", zorder=3,
                    label="dense int8 ANN, same layer")
    ax1.set_ylabel("uJ per inference")
    ax1.set_title("SNN energy by unit and operation")
    ax1.tick_params(axis="x", rotation=45)
    ax1.legend(fontsize=8)
    snn = energy["energy_uj_by_operation"]
    ops = [op for op in OPERATIONS if snn.get(op, 0.0) > 0]
    ax2.barh(ops, [snn[op] for op in ops], color=[colors[OPERATIONS.index(op) % len(colors)] for op in ops])
    ax2.invert_yaxis()
    ax2.set_xlabel("uJ per inference")
    ax2.set_title("SNN energy by kind of operation")
    ax2.text(0.98, 0.03, "\n".join(f"{energy[k]['label']}: {energy[k]['energy_uj']:.3g} uJ ({energy['ratios'][r]:.3g}x SNN)"
                                   for k, r in ANN_RATIOS),
             transform=ax2.transAxes, ha="right", va="bottom", fontsize=8, bbox={"fc": "white", "ec": "0.7"})
    shared = energy.get("shared", {}).get("energy_uj", 0.0)
    fig.suptitle(f"{title} hardware={energy['hardware']} ({energy.get('hardware_kind', 'component')}): "
                 f"{energy['energy_uj']:.3g} uJ (front-ends both sides pay: {shared:.3g} uJ), "
                 f"{energy['latency_us']:.3g} us per inference")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
