"""edge-taaf-sim: an exported ONNX file in the bit-accurate integer simulator (firmware_sim/).

    edge-taaf-sim onnx=model.onnx                                   # synthetic data (no files)
    edge-taaf-sim onnx=model.onnx data=fsdd_mnist hardware=horowitz45nm

Loads the data set (sensors.datasets, which uses torch), hands numpy arrays to firmware_sim (which
does not), and writes report.json and energy.png into the run dir. Prints accuracy, latency and
energy, then one JSON line with the headline numbers.
"""
from __future__ import annotations

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from edge_taaf import CONFIG_DIR
from firmware_sim.energy import ANN_RATIOS, HardwareConfigError, load_hardware
from firmware_sim.evaluate import evaluate
from firmware_sim.loader import load_program
from firmware_sim.program import ContractError
from firmware_sim.report import plot_energy, report_json
from sensors.atomic import atomic_write_text
from sensors.datasets import SPLITS, build_dataset


def run_simulation(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Simulate cfg.onnx on cfg.data's cfg.split; write the report into run_dir and return it."""
    model_path = to_absolute_path(str(cfg.onnx)) if HydraConfig.initialized() else str(cfg.onnx)
    program = load_program(model_path)
    hardware = load_hardware(OmegaConf.to_container(cfg.hardware, resolve=True))
    if cfg.split not in SPLITS:
        raise ContractError(f"split={cfg.split!r}, expected one of {SPLITS}")
    data = build_dataset(cfg.data, cfg.split)
    steps = data.T
    if steps != program.T and not cfg.allow_other_T:
        raise ContractError(f"data.T={steps} but the model was built for T={program.T}; set data.T={program.T} "
                            "(or allow_other_T=true to run another T <= max_T)")
    n = len(data.labels) if cfg.limit is None else min(int(cfg.limit), len(data.labels))
    inputs = {}
    for name in program.inputs:
        if name not in data.modalities:
            raise ContractError(f"the model reads input {name!r}, which data={cfg.data.name} does not provide "
                                f"(it holds {list(data.modalities)})")
        inputs[name] = getattr(data, name)[:n]
    report = evaluate(program, inputs, data.labels[:n], hardware, int(cfg.batch_size), bool(cfg.progress),
                      allow_other_T=bool(cfg.allow_other_T))
    synthetic = str(cfg.data.name).startswith("synth")
    report.pop("predictions")
    report = {"model": model_path, "data": cfg.data.name, "synthetic": synthetic, "split": cfg.split,
              "hardware": hardware.name, "title": f"{cfg.data.name}{' (SYNTHETIC)' if synthetic else ''}", **report}
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / "report.json", report_json(report))
    plot_energy(report["energy"], Path(run_dir) / "energy.png", title=report["title"])
    return report


@hydra.main(config_path=CONFIG_DIR, config_name="simulate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = HydraConfig.get().runtime.output_dir
    try:
        r = run_simulation(cfg, run_dir)
    except (ContractError, HardwareConfigError, FileNotFoundError) as exc:
        raise SystemExit(f"edge-taaf-sim: {exc}") from None
    e = r["energy"]
    print(f"{r['title']} {r['split']}: {r['samples']} samples, accuracy {r['accuracy']:.4f}")
    print(f"  per inference: {e['energy_uj']:.4g} uJ, {e['cycles']:.0f} cycles = {e['latency_us']:.4g} us at "
          f"{e['clock_mhz']:g} MHz ({r['hardware']})")
    for key, ratio in ANN_RATIOS:
        print(f"  {e[key]['label']}: {e[key]['energy_uj']:.4g} uJ ({e['ratios'][ratio]:.3g}x the SNN)")
    print("  dataflow per layer: " + ", ".join(f"{k} {v['chosen']}" for k, v in e["dataflows"].items()))
    print(f"  simulator: {r['sim_samples_per_s']:.1f} samples/s; report in {run_dir}")
    print(json.dumps({k: r[k] for k in ("data", "synthetic", "samples", "accuracy", "energy_uj_per_inference",
                                        "latency_us_per_inference", "sim_samples_per_s", "exact_limit_hits")}))


if __name__ == "__main__":
    main()
