"""edge-taaf-loso: the leave-one-speaker-out study on fsdd_mnist (python -m edge_taaf.apps.loso).

    python -m edge_taaf.apps.loso                                         # every FSDD speaker, pipeline defaults
    python -m edge_taaf.apps.loso float_epochs=40 qat_epochs=3 loso.markdown=docs/loso.md loso.json=docs/loso.json
    python -m edge_taaf.apps.loso loso.speakers=[lucas,george] trainer.corrupt.silence_prob=0.3

For each speaker (FSDD has 6; ``loso.speakers`` picks some) the whole pipeline (edge_taaf/apps/pipeline.py)
runs with ``data.split=speaker data.test_speakers=[that speaker]``: every other speaker's clips train, the
held-out speaker's clips test. On each fold's exported program the simulator then measures the fused
accuracy and each sensor's own (edge_taaf/apps/robustness.py): from the program's per-modality outputs
when it has them, else with the other sensor silent. Results: ``loso.json`` (per fold and summary) and
``loso.md`` (a table) in the run folder, and where ``loso.json`` / ``loso.markdown`` say.

Resumable: every pipeline stage and each fold's simulator measurement are cached by key under ``workdir``
(a killed training stage resumes from its checkpoint), so re-running the same command redoes only what
is missing; ``loso.json`` is rewritten (atomically) after every fold.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from edge_taaf import CONFIG_DIR
from edge_taaf.apps.pipeline import _plain, _stage_cfg, run_pipeline
from edge_taaf.apps.robustness import modality_accuracies
from edge_taaf.apps.stages import code_version, run_stage
from edge_taaf.checkpoint import CheckpointError
from edge_taaf.config import ConfigError
from edge_taaf.train import TrainingDiverged
from sensors.atomic import atomic_write_text
from sensors.ead import build_dataset, fsdd_speakers
from sensors.paths import data_root

FOLD_KEYS = ("fused_acc", "audio_only_acc", "vision_only_acc", "best_unimodal_acc", "fused_minus_best_unimodal",
             "audio_silent_acc", "vision_silent_acc")


def study_speakers(cfg) -> list[str]:
    """loso.speakers (checked against the data), or every FSDD speaker under data.root."""
    if cfg.data.name != "fsdd_mnist":
        raise ConfigError(f"data={cfg.data.name}: the leave-one-speaker-out study needs data=fsdd_mnist "
                          "(its speakers are FSDD's)")
    found = fsdd_speakers(data_root(cfg.data.get("root")))
    wanted = list((cfg.get("loso") or {}).get("speakers") or found)
    unknown = sorted(set(wanted) - set(found))
    if unknown or len(set(wanted)) != len(wanted):
        raise ConfigError(f"loso.speakers={wanted}: {'unknown ' + str(unknown) if unknown else 'a speaker twice'}; "
                          f"the FSDD speakers here are {found}")
    if len(found) < 2:
        raise ConfigError(f"loso: only {found} found under data.root; holding one out leaves nobody to train on")
    return wanted


def fold_config(cfg, speaker: str) -> DictConfig:
    """The pipeline config of one fold: the study's config with the speaker split holding ``speaker`` out."""
    fold = _stage_cfg(cfg, **{"data.split": "speaker", "data.test_speakers": [speaker]})
    OmegaConf.set_struct(fold, False)
    fold.pop("loso", None)
    return fold


def run_fold(cfg, speaker: str, run_dir: Path) -> dict:
    """One fold: the pipeline (cached stages), then the simulator's per-modality accuracies (a cached stage)."""
    from firmware_sim.loader import load_program

    fold_cfg = fold_config(cfg, speaker)
    report = run_pipeline(fold_cfg, run_dir / f"fold-{speaker}")
    export_folder, data_folder = (Path(report["stages"][k]["folder"]) for k in ("export", "data"))

    def work(folder: Path) -> dict:
        program = load_program(export_folder / "model.onnx")
        test = build_dataset(fold_cfg.data, "test").only(program.inputs)
        return modality_accuracies(program, test.inputs(), test.labels)
    params = {"export": export_folder.name, "data": data_folder.name, "code": code_version("firmware_sim")}
    measured = run_stage(Path(cfg.workdir).expanduser(), "modalities", params, [], work)
    return {"speaker": speaker, "test_samples": measured.outputs["samples"],
            **{k: measured.outputs[k] for k in FOLD_KEYS if k in measured.outputs},
            "unimodal_source": measured.outputs["unimodal_source"],
            "pipeline": {k: report[k] for k in ("float_acc", "qat_acc", "int_acc", "sim_acc", "onnx_ort_exact",
                                                "sim_equals_int_mode", "energy_uj_per_inference")},
            "onnx": f"{export_folder.name}/model.onnx"}     # under workdir


def summarise(folds: list[dict]) -> dict:
    """Mean and standard deviation over the folds of each accuracy, and the worst fused - best unimodal."""
    out = {}
    for key in FOLD_KEYS:
        values = [f[key] for f in folds if key in f]
        if values:
            mean = sum(values) / len(values)
            out[key] = {"mean": mean, "std": math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)),
                        "min": min(values), "max": max(values)}
    if folds and all("fused_minus_best_unimodal" in f for f in folds):
        worst = min(folds, key=lambda f: f["fused_minus_best_unimodal"])
        out["min_fused_minus_best_unimodal"] = worst["fused_minus_best_unimodal"]
        out["worst_fold"] = worst["speaker"]
    return out


def study_settings(cfg) -> dict:
    return {"T": int(cfg.data.T), "weight_bits": int(cfg.quant.weight_bits), "fusion": cfg.model.fusion,
            "loss": cfg.loss.name, "loss_options": {k: v for k, v in _plain(cfg.loss).items() if k != "name"},
            "float_epochs": int(cfg.float_epochs), "qat_epochs": int(cfg.qat_epochs),
            "seed": int(cfg.seed), "trainer_corrupt": _plain(cfg.trainer).get("corrupt"),
            "modal_balance": float(cfg.trainer.get("modal_balance", 0.0)),
            "cochlea_channel_norm": str((cfg.data.get("cochlea") or {}).get("channel_norm", "none")),
            "data_augment": bool((cfg.data.get("augment") or {}).get("enabled", False)),
            "augment_copies": int((cfg.data.get("augment") or {}).get("copies", 0)),
            "vision_channels": [int(c) for c in cfg.model.vision.channels]}


def markdown(result: dict, label: str | None = None) -> str:
    pct = lambda x: "" if x is None else f"{100 * x:.2f} %"  # noqa: E731
    pp = lambda x: "" if x is None else f"{100 * x:+.2f} pp"  # noqa: E731
    s = result["settings"]
    epochs = lambda n: f"{n} epoch{'' if n == 1 else 's'}"  # noqa: E731
    corrupt_cfg = s["trainer_corrupt"] or {}
    corrupt = {k: v for k, v in corrupt_cfg.items() if k.endswith("_prob") and v}
    corrupt_text = ", ".join(f"{k}={v}" for k, v in corrupt.items()) or "off"
    if corrupt:   # the flood levels (k x a sample's own activity; a pair is a log-uniform range)
        corrupt_text += "".join(f", {k}={corrupt_cfg[k]}" for k in ("vision_noise", "audio_noise") if k in corrupt_cfg)
    loss_text = ", ".join(f"{k}={v}" for k, v in (s.get("loss_options") or {}).items()
                          if k in ("step_ce", "fused_ce", "label_smoothing", "lambda_unimodal", "window"))
    vision_text = f"vision convolutions {s['vision_channels']}, " if s.get("vision_channels") else ""  # older JSON lacks it
    lines = ["# Leave-one-speaker-out study (fsdd_mnist, simulator accuracy)", ""]
    if label:
        lines += [f"**{label}**", ""]
    lines += [f"Each fold trains on every other FSDD speaker and tests on the one held out (`data.split=speaker "
              f"data.test_speakers=[<speaker>]`), through the whole pipeline: float training ({epochs(s['float_epochs'])}), "
              f"QAT int{s['weight_bits']} ({epochs(s['qat_epochs'])}), ONNX export, simulator; T = {s['T']}, "
              f"{vision_text}{s['fusion']} + {s['loss']}{' (' + loss_text + ')' if loss_text else ''}, seed {s['seed']}; sensor corruption in training (trainer.corrupt): "
              f"{corrupt_text}; trainer.modal_balance: {s.get('modal_balance', 0.0):g}; cochlea channel_norm: "
              f"{s.get('cochlea_channel_norm', 'none')}; data augmentation: "
              f"{'on, ' + str(s.get('augment_copies')) + ' copies' if s['data_augment'] else 'off'}. Audio-only and vision-only: "
              f"{result['unimodal_source']}.", "",
              "| held-out speaker | test pairs | fused | audio only | vision only | fused - best unimodal | "
              "fused, audio silent | fused, vision silent |", "|---|---|---|---|---|---|---|---|"]
    for f in result["folds"]:
        lines.append(f"| {f['speaker']} | {f['test_samples']} | {pct(f['fused_acc'])} | {pct(f.get('audio_only_acc'))} | "
                     f"{pct(f.get('vision_only_acc'))} | {pp(f.get('fused_minus_best_unimodal'))} | "
                     f"{pct(f.get('audio_silent_acc'))} | {pct(f.get('vision_silent_acc'))} |")
    summ = result["summary"]
    if summ:
        mean = lambda k: f"{100 * summ[k]['mean']:.2f} ± {100 * summ[k]['std']:.2f} %" if k in summ else ""  # noqa: E731
        lines.append(f"| mean ± std over {len(result['folds'])} folds | | {mean('fused_acc')} | {mean('audio_only_acc')} | "
                     f"{mean('vision_only_acc')} | | {mean('audio_silent_acc')} | {mean('vision_silent_acc')} |")
        if "min_fused_minus_best_unimodal" in summ:
            lines += ["", f"Worst fold: fused - best unimodal = {pp(summ['min_fused_minus_best_unimodal'])} "
                          f"(held-out speaker {summ['worst_fold']}). A value below 0 means the two-sensor device "
                          "was worse than its best sensor alone on that speaker."]
    if not result["complete"]:
        lines += ["", f"Incomplete: {len(result['folds'])} of {len(result['speakers'])} folds done; re-run the same "
                      "command to resume."]
    lines += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


def _out_path(path) -> Path:
    return Path(to_absolute_path(str(path)) if HydraConfig.initialized() else str(path))


def run_loso(cfg: DictConfig, run_dir: str | Path, command: str = "python -m edge_taaf.apps.loso") -> dict:
    """Run (or resume) the study; write loso.json and loso.md into run_dir (and where loso.json /
    loso.markdown say) after every fold; return the result."""
    run_dir = Path(run_dir)
    speakers = study_speakers(cfg)
    loso = cfg.get("loso") or {}
    result = {"study": "leave-one-speaker-out", "data": "fsdd_mnist", "speakers": speakers,
              "settings": study_settings(cfg), "command": command, "folds": [], "summary": {}, "complete": False,
              "unimodal_source": None}

    def write() -> None:
        result["summary"] = summarise(result["folds"])
        text, table = json.dumps(result, indent=1), markdown(result, loso.get("label"))
        targets = [(run_dir / "loso.json", text), (run_dir / "loso.md", table)]
        targets += [(_out_path(loso[k]), v) for k, v in (("json", text), ("markdown", table)) if loso.get(k)]
        for path, content in targets:
            atomic_write_text(path, content)
    for speaker in speakers:
        fold = run_fold(cfg, speaker, run_dir)
        result["folds"].append(fold)
        result["unimodal_source"] = fold["unimodal_source"]
        write()
    result["complete"] = True
    write()
    return result


@hydra.main(config_path=CONFIG_DIR, config_name="loso", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    overrides = " ".join(HydraConfig.get().overrides.task)
    try:
        result = run_loso(cfg, run_dir, f"python -m edge_taaf.apps.loso {overrides}".strip())
    except (ConfigError, CheckpointError, TrainingDiverged, FileNotFoundError) as exc:
        raise SystemExit(f"edge-taaf-loso: {exc}") from None
    print((run_dir / "loso.md").read_text())
    print(json.dumps({"folds": len(result["folds"]), **{k: v for k, v in result["summary"].items()}}))


if __name__ == "__main__":
    main()
