"""edge-taaf-pipeline: data -> float training -> QAT -> ONNX export -> simulator -> one report.

    edge-taaf-pipeline                                        # SYNTHETIC default
    edge-taaf-pipeline data=fsdd_mnist float_epochs=40 qat_epochs=5
    edge-taaf-pipeline -m data.T=4,8,16 quant.weight_bits=4,6,8

Every stage lives in a folder of ``workdir`` keyed by what shaped it (edge_taaf/apps/stages.py): the same
config skips finished stages, a changed value re-runs the stages it reaches, and a killed training
stage resumes from its checkpoint. The run folder gets report.json, report.md and the plots.

Evaluation protocol (docs/evaluation.md): training logs the validation split; the export stage measures
the deployed int8 program in integer mode on val (``val_acc``, what choices read) and checks integer mode
== onnxruntime on test; the simulator reads the test split once for the reported ``sim_acc``. report.json
says ``selected_on: "val"``; ``select_on`` other than val is a ConfigError before any data is built.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from edge_taaf import CONFIG_DIR
from edge_taaf.checkpoint import CheckpointError
from sensors.atomic import atomic_write, atomic_write_text
from edge_taaf.config import ConfigError, TrainingOptions, check_select_on
from edge_taaf.apps.stages import StageResult, code_version, run_stage, stage_options
from edge_taaf.apps.options import check_pipeline_options, frozen
from edge_taaf.apps.train import train_model
from edge_taaf.train import TrainingDiverged
from sensors.datasets import DataConfigError, build_dataset


INT_OUTPUTS = "int_outputs.npz"   # integer mode's outputs on the test split, kept by the export stage
EXPORT_MEASURES = ["val_acc", "int_acc"]   # in the export stage's key: a stage that measured less runs again


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True)


def _stage_cfg(cfg: DictConfig, **overrides) -> DictConfig:
    """A train config for one stage: the pipeline's config plus stage values, typed and read-only."""
    return frozen(cfg, **overrides)


def stage_data(cfg, workdir, options: TrainingOptions) -> StageResult:
    def work(folder: Path) -> dict:
        return {split: build_dataset(cfg.data, split, options.data).summary() for split in ("train", "val", "test")}
    # cfg.data already holds (interpolated) the sensor settings it uses: a data set is keyed by those only
    return run_stage(workdir, "data", stage_options(cfg, "data"), [], work)


def file_digest(path: str) -> str:
    """SHA-256 of a file (a warm-start checkpoint), naming the file when it is missing."""
    if not Path(path).is_file():
        raise ConfigError(f"float_init={path!r}: no such checkpoint file")
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stage_float(cfg, workdir, data: StageResult, options: TrainingOptions) -> StageResult:
    warm = cfg.float_init
    scfg = _stage_cfg(cfg, **{"quant": {"weight_bits": None}, "trainer.epochs": cfg.float_epochs, "resume": True,
                              "init_from": warm})
    params = stage_options(cfg, "float")
    if warm:   # a warm start (fine-tuning a trained float run): its file's digest keys the stage, not its path
        params["float_init"] = file_digest(warm)

    def work(folder: Path) -> dict:
        return train_model(scfg, folder, options)  # resume=true: a killed stage continues from folder/checkpoint.pt
    return run_stage(workdir, "float", params, [data], work)


def stage_qat(cfg, workdir, flt: StageResult, options: TrainingOptions) -> StageResult:
    scfg = _stage_cfg(cfg, **{"trainer.epochs": cfg.qat_epochs, "trainer.lr": cfg.qat_lr, "resume": True,
                              "init_from": str(flt.folder / "checkpoint.pt")})
    params = stage_options(cfg, "qat")
    return run_stage(workdir, "qat", params, [flt], lambda folder: train_model(scfg, folder, options))


def stage_export(cfg, workdir, qat: StageResult, options: TrainingOptions) -> StageResult:
    """ONNX file; the int8 program's integer-mode accuracy on val (``val_acc``, what choices read) and on
    test (``int_acc``); onnxruntime == integer mode on the whole test split."""
    from edge_taaf.apps.export import export_model, quant_model_from_checkpoint
    from quant.ort_runner import OrtModel, compare
    from quant.qmodel import run_integer

    def work(folder: Path) -> dict:
        model, _, _ = quant_model_from_checkpoint(qat.folder / "checkpoint.pt")
        proto, summary = export_model(model, folder / "model.onnx")
        val = build_dataset(cfg.data, "val", options.data).only(model.modalities)
        val_acc = float((run_integer(model, val.vision, val.audio)["logits"].argmax(1) == val.labels).mean())
        test = build_dataset(cfg.data, "test", options.data).only(model.modalities)
        ours = run_integer(model, test.vision, test.audio)
        diff = compare(OrtModel(proto).run(test.vision, test.audio), ours)
        int_acc = float((ours["logits"].argmax(1) == test.labels).mean())
        atomic_write(folder / INT_OUTPUTS, lambda f: np.savez_compressed(f, **ours))   # the simulate stage compares
        return summary | {"val_acc": val_acc, "val_samples": int(val.labels.size), "int_acc": int_acc, "onnx_ort_exact": int(not diff), "ort_mismatch": diff,
                          "predictions": ours["logits"].argmax(1).tolist()}
    return run_stage(workdir, "export", {"code": code_version("quant", "firmware_sim"), "measures": EXPORT_MEASURES},
                     [qat], work)


def stage_simulate(cfg, workdir, exp: StageResult, data: StageResult, options: TrainingOptions) -> StageResult:
    from firmware_sim.energy import hardware_from_dict, load_hardware
    from firmware_sim.evaluate import evaluate
    from firmware_sim.loader import load_program
    from firmware_sim.report import plot_energy
    from quant.ort_runner import compare

    def work(folder: Path) -> dict:
        test = build_dataset(cfg.data, "test", options.data)
        program = load_program(exp.folder / "model.onnx")
        hw = hardware_from_dict(_plain(cfg.hardware), "hardware")
        others = tuple(h for h in (load_hardware(p) for p in sorted((Path(CONFIG_DIR) / "hardware").glob("*.yaml")))
                       if h.name != hw.name)      # the same counts priced by every shipped config: the range
        result = evaluate(program, test.only(program.inputs).inputs(), test.labels, hw,
                          progress=bool(cfg.trainer.progress), keep_outputs=True, also_priced=others)
        result.pop("predictions")
        sim = result.pop("outputs")
        with np.load(exp.folder / INT_OUTPUTS) as saved:
            ours = {k: saved[k] for k in saved.files}
        if "scores" not in ours:          # concat fusion: the simulator reports zero scores, the file has none
            sim.pop("scores")
        mismatch = compare(sim, ours)     # every layer's spikes, step logits, scores, attention, logits
        plot_energy(result["energy"], folder / "energy.png", title="energy per inference")
        result["sim_equals_int_mode"] = int(not mismatch)
        units = result["counts_per_inference"]["units"]   # spikes per neuron per step, per spiking layer
        result["layer_spike_rates"] = {layer.name: units[layer.name]["spikes_out"] / (layer.n_out * result["steps"])
                                       for layer in program.layers}
        result["sim_mismatch"] = mismatch
        return json.loads(json.dumps(result, default=float))
    return run_stage(workdir, "simulate", {"hardware": _plain(cfg.hardware), "code": code_version("firmware_sim")},
                     [exp, data], work)


def summarise(cfg, stages: dict[str, StageResult]) -> dict:
    flt, qat, exp, sim = (stages[k].outputs for k in ("float", "qat", "export", "simulate"))
    energy = sim["energy"]
    return {
        "data": cfg.data.name, "synthetic": str(cfg.data.name).startswith("synth"), "T": int(cfg.data.T),
        "weight_bits": int(cfg.quant.weight_bits), "fusion": cfg.model.fusion, "loss": cfg.loss.name,
        "selected_on": check_select_on(cfg), "float_val_acc": flt["val_fused_acc"], "qat_val_acc": qat["val_fused_acc"],
        "val_acc": exp["val_acc"], "val_samples": exp["val_samples"], "int_acc": exp["int_acc"], "sim_acc": sim["accuracy"],
        "test_samples": sim["samples"], "vision_test_source": stages["data"].outputs["test"].get("vision_source"),
        "onnx_ort_exact": exp["onnx_ort_exact"], "sim_equals_int_mode": sim["sim_equals_int_mode"],
        "energy_uj_per_inference": sim["energy_uj_per_inference"], "latency_us_per_inference": sim["latency_us_per_inference"],
        # the network alone, and the sensor filterbank / event front-end rows every network (SNN or ANN) pays
        "network_energy_uj_per_inference": energy["core_energy_uj"], "frontend_energy_uj_per_inference": energy["shared"]["energy_uj"],
        "energy_covers": energy["covers"],
        # the networks priced alike (the headline) and the device's totals with the shared rows, side by side
        "energy_ratio_ann_int8_vs_snn": energy["ratios"]["energy_ann_int8_vs_snn"],
        "energy_ratio_ann_int8_vs_snn_with_frontend": energy["ratios_with_frontend"]["energy_ann_int8_vs_snn"],
        "energy_ratio_single_pass_ann_vs_snn_with_frontend": energy["ratios_with_frontend"]["energy_single_pass_ann_vs_snn"],
        "energy_ratio_single_pass_ann_vs_snn": energy["ratios"]["energy_single_pass_ann_vs_snn"],
        "energy_ratio_single_pass_zero_skip_vs_snn": energy["ratios"]["energy_single_pass_zero_skip_vs_snn"],
        "energy_ratio_bound_if_later_layers_free": energy["ratios"]["bound_ann_int8_vs_snn_if_later_layers_free"],
        "spikes_per_inference": sum(u["spikes_out"] for u in sim["counts_per_inference"]["units"].values()),
        "energy_by_hardware": sim["energy_by_hardware"],
        "layer_spike_rates": sim["layer_spike_rates"], "max_layer_spike_rate": max(sim["layer_spike_rates"].values()),
        "onnx_bytes": exp["bytes"], "stages": {k: {"folder": str(s.folder), "cached": s.cached, "seconds": round(s.seconds, 1)}
                                              for k, s in stages.items()},
    }


def write_report(report: dict, stages: dict[str, StageResult], run_dir: Path) -> None:
    atomic_write_text(run_dir / "report.json", json.dumps(report, indent=1))
    for stage, name in (("float", "accuracy.png"), ("qat", "accuracy.png"), ("float", "attention.png"),
                        ("simulate", "energy.png")):
        src = stages[stage].folder / name
        if src.exists():
            shutil.copy(src, run_dir / f"{stage}_{name}")
    label = " (SYNTHETIC data)" if report["synthetic"] else ""
    bits = report["weight_bits"]
    rows = [(f"**validation** ({report['val_samples']} samples; every choice is made here)", ""),
            ("float model, val accuracy (last epoch)", f"{100 * report['float_val_acc']:.2f} %"),
            (f"QAT int{bits} model, val accuracy (last epoch)", f"{100 * report['qat_val_acc']:.2f} %"),
            (f"deployed int{bits} program, val accuracy (integer mode)", f"{100 * report['val_acc']:.2f} %"),
            (f"**test** ({report['test_samples']} samples; read once, for this number)", ""),
            ("simulator accuracy", f"{100 * report['sim_acc']:.2f} %"),
            (f"QAT int{bits} accuracy (integer mode)", f"{100 * report['int_acc']:.2f} %"),
            ("**deployment**", ""),
            ("onnxruntime == integer mode (every output)", "yes" if report["onnx_ort_exact"] else "NO"),
            ("simulator == integer mode (every output)", "yes" if report["sim_equals_int_mode"] else "NO"),
            ("energy per inference: the network alone", f"{report['network_energy_uj_per_inference']:.4f} uJ"),
            ("... plus the sensor front-end rows every network pays (cochlea filterbank, event front-end)",
             f"{report['frontend_energy_uj_per_inference']:.4f} uJ (total {report['energy_uj_per_inference']:.4f} uJ)"),
            ("latency per inference", f"{report['latency_us_per_inference']:.1f} us"),
            ("dense int8 ANN over T frames / SNN energy (networks; with the front-end rows)",
             f"{report['energy_ratio_ann_int8_vs_snn']:.2f}x; {report['energy_ratio_ann_int8_vs_snn_with_frontend']:.2f}x"),
            ("single-pass int8 ANN / SNN energy (networks; with the front-end rows)",
             f"{report['energy_ratio_single_pass_ann_vs_snn']:.2f}x; {report['energy_ratio_single_pass_ann_vs_snn_with_frontend']:.2f}x"),
            ("single-pass ANN skipping zeros (its best case) / SNN energy",
             f"{report['energy_ratio_single_pass_zero_skip_vs_snn']:.2f}x"),
            ("... its bound if every layer after the input layers were free",
             f"{report['energy_ratio_bound_if_later_layers_free']:.1f}x"),
            *[(f"{name}: energy; ANN over T / single pass / zero-skip vs SNN",
               f"{e['energy_uj']:.4f} uJ; {e['energy_ann_int8_vs_snn']:.2f}x / {e['energy_single_pass_ann_vs_snn']:.2f}x"
               f" / {e['energy_single_pass_zero_skip_vs_snn']:.2f}x") for name, e in report["energy_by_hardware"].items()],
            ("spikes per inference (all spiking layers)", f"{report['spikes_per_inference']:.0f}"),
            ("firing rate per layer (spikes per neuron per step)",
             ", ".join(f"{k} {100 * v:.1f} %" for k, v in report["layer_spike_rates"].items())),
            ("ONNX file", f"{report['onnx_bytes']} bytes")]
    lines = [f"# edge-taaf pipeline report: {report['data']}{label}, T={report['T']}, "
             f"{report['fusion']} + {report['loss']}", "", "| measure | value |", "|---|---|",
             *[f"| {k} | {v} |" for k, v in rows], "", "| stage | cached | seconds | folder |", "|---|---|---|---|",
             *[f"| {k} | {s['cached']} | {s['seconds']} | {s['folder']} |" for k, s in report["stages"].items()], ""]
    atomic_write_text(run_dir / "report.md", "\n".join(lines))


def run_pipeline(cfg: DictConfig, run_dir: Path) -> dict:
    options = check_pipeline_options(cfg)   # every option, before any data is built; parsed once
    cfg = frozen(cfg)                        # handed down read-only
    workdir = Path(cfg.workdir).expanduser()
    stages = {"data": stage_data(cfg, workdir, options)}
    stages["float"] = stage_float(cfg, workdir, stages["data"], options)
    stages["qat"] = stage_qat(cfg, workdir, stages["float"], options)
    stages["export"] = stage_export(cfg, workdir, stages["qat"], options)
    stages["simulate"] = stage_simulate(cfg, workdir, stages["export"], stages["data"], options)
    report = summarise(cfg, stages)
    write_report(report, stages, Path(run_dir))
    return report


@hydra.main(config_path=CONFIG_DIR, config_name="pipeline", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        report = run_pipeline(cfg, run_dir)
    except (ConfigError, DataConfigError, CheckpointError, TrainingDiverged, FileNotFoundError) as exc:
        raise SystemExit(f"edge-taaf-pipeline: {exc}") from None
    print((run_dir / "report.md").read_text())
    print(json.dumps({k: v for k, v in report.items() if k != "stages"}))


if __name__ == "__main__":
    main()
