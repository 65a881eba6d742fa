"""edge-taaf-loso: the leave-one-speaker-out study on fsdd_mnist (python -m edge_taaf.apps.loso).

    python -m edge_taaf.apps.loso                                         # every FSDD speaker, seeds 0, 1, 2
    python -m edge_taaf.apps.loso float_epochs=40 qat_epochs=3 loso.markdown=docs/loso.md loso.json=docs/loso.json
    python -m edge_taaf.apps.loso loso.speakers=[lucas,george] loso.seeds=[0] trainer.corrupt.silence_prob=0.3

Nested: for each speaker (FSDD has 6; ``loso.speakers`` picks some) and each seed of ``loso.seeds`` the
whole pipeline (edge_taaf/apps/pipeline.py) runs with ``data.split=speaker data.test_speakers=[that speaker]
data.val_speakers=[its validation speaker] seed=<seed>``. The validation speaker (:func:`val_speaker`) is
the next FSDD speaker after the held-out one in sorted order, cyclically: it is inside the fold's
training speakers of a plain speaker split, taken out to validate on; the other four train. Each fold
tests on its own slice of the held-out MNIST digits (sensors/splits.py). On each fold's exported program
the simulator measures the fused accuracy and each sensor's own (edge_taaf/apps/robustness.py): from the
program's per-modality outputs when it has them, else with the other sensor silent.

Results: ``loso.json`` (every fold x seed record, top-level ``seeds``, and a summary whose accuracies are
edge_taaf.intervals intervals over the seeds' fold means) and ``loso.md`` (a table per seed and the mean
with its 95 % interval) in the run folder, and where ``loso.json`` / ``loso.markdown`` say.

Resumable: every pipeline stage and each fold's simulator measurement are cached by key under ``workdir``
(a killed training stage resumes from its checkpoint), so re-running the same command redoes only what
is missing; ``loso.json`` is rewritten (atomically) after every fold.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from edge_taaf import CONFIG_DIR
from edge_taaf.apps.options import frozen
from edge_taaf.apps.pipeline import _plain, run_pipeline
from edge_taaf.apps.robustness import modality_accuracies
from edge_taaf.apps.stages import code_version, run_stage
from edge_taaf.checkpoint import CheckpointError
from edge_taaf.config import ConfigError, check_select_on
from edge_taaf.intervals import Interval, interval
from edge_taaf.train import TrainingDiverged
from sensors.atomic import atomic_write_text
from sensors.datasets import DataConfigError, build_dataset, fsdd_speakers
from sensors.paths import data_root

FOLD_KEYS = ("fused_acc", "audio_only_acc", "vision_only_acc", "best_unimodal_acc", "fused_minus_best_unimodal",
             "audio_silent_acc", "vision_silent_acc")
SUMMARY_KEYS = (*FOLD_KEYS, "val_acc")     # each summarised over seeds (val_acc: the fold's int8 program on its val speaker)
DEFAULT_SEEDS = (0, 1, 2)


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


def study_seeds(cfg) -> list[int]:
    """loso.seeds checked: a non-empty list of distinct integers (absent: 0, 1, 2)."""
    seeds = (cfg.get("loso") or {}).get("seeds")
    seeds = list(DEFAULT_SEEDS if seeds is None else seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"loso.seeds={seeds}; expected a non-empty list of distinct integer seeds, e.g. [0, 1, 2]")
    return seeds


def val_speaker(speaker: str, speakers: list[str]) -> str:
    """The validation speaker of the fold holding ``speaker`` out: the next of ``speakers`` (every FSDD speaker
    under data.root) in sorted order, cyclically."""
    ordered = sorted(speakers)
    return ordered[(ordered.index(speaker) + 1) % len(ordered)]


def fold_config(cfg, speaker: str, seed: int, validation: str) -> DictConfig:
    """The pipeline config of one fold: the study's config with the speaker split holding ``speaker`` out for
    test and ``validation`` out for val, trained with ``seed``."""
    return frozen(cfg, drop=("loso",), **{"data.split": "speaker", "data.test_speakers": [speaker],
                                          "data.val_speakers": [validation], "seed": seed})


def run_fold(cfg, speaker: str, seed: int, validation: str, run_dir: Path) -> dict:
    """One fold with one seed: the pipeline (cached stages), then the simulator's per-modality accuracies (a
    cached stage)."""
    from firmware_sim.loader import load_program

    fold_cfg = fold_config(cfg, speaker, seed, validation)
    report = run_pipeline(fold_cfg, run_dir / f"fold-{speaker}-seed{seed}")
    export_folder, data_folder = (Path(report["stages"][k]["folder"]) for k in ("export", "data"))

    def work(folder: Path) -> dict:
        program = load_program(export_folder / "model.onnx")
        test = build_dataset(fold_cfg.data, "test").only(program.inputs)
        return modality_accuracies(program, test.inputs(), test.labels)
    params = {"export": export_folder.name, "data": data_folder.name, "code": code_version("firmware_sim")}
    measured = run_stage(Path(cfg.workdir).expanduser(), "modalities", params, [], work)
    return {"speaker": speaker, "seed": seed, "val_speaker": validation, "val_acc": report["val_acc"],
            "val_samples": report["val_samples"], "test_samples": measured.outputs["samples"],
            **{k: measured.outputs[k] for k in FOLD_KEYS if k in measured.outputs},
            "unimodal_source": measured.outputs["unimodal_source"],
            "pipeline": {k: report[k] for k in ("float_val_acc", "qat_val_acc", "val_acc", "int_acc", "sim_acc",
                                                "onnx_ort_exact", "sim_equals_int_mode", "energy_uj_per_inference")},
            "onnx": f"{export_folder.name}/model.onnx"}     # under workdir


def summarise(folds: list[dict], seeds: list[int], keys: tuple[str, ...] = SUMMARY_KEYS) -> dict:
    """Per accuracy key of ``keys`` (default: this study's; edge_taaf/apps/ann_loso.py passes the ANN's): the
    interval over seeds (edge_taaf.intervals: mean, std, n, low, high, level) of each seed's mean over its folds
    (``per_seed``, in ``seeds`` order, seeds with no fold yet left out), and ``fold_std``: the sample std over
    held-out speakers of each speaker's mean over seeds (the spread between speakers; 0.0 for one speaker).
    Plus, when every fold has it, the worst fused - best unimodal over every fold and seed."""
    out = {}
    for key in keys:
        per_seed = [statistics.fmean(v) for s in seeds if (v := [f[key] for f in folds if f["seed"] == s and key in f])]
        if not per_seed:
            continue
        speakers = dict.fromkeys(f["speaker"] for f in folds if key in f)
        by_speaker = [statistics.fmean(f[key] for f in folds if f["speaker"] == sp and key in f) for sp in speakers]
        out[key] = {**interval(per_seed).as_dict(), "per_seed": per_seed,
                    "fold_std": statistics.stdev(by_speaker) if len(by_speaker) > 1 else 0.0}
    if folds and all("fused_minus_best_unimodal" in f for f in folds):
        worst = min(folds, key=lambda f: f["fused_minus_best_unimodal"])
        out["min_fused_minus_best_unimodal"] = worst["fused_minus_best_unimodal"]
        out["worst_fold"] = worst["speaker"]
        out["worst_seed"] = worst.get("seed")
    return out


def study_settings(cfg) -> dict:
    return {"T": int(cfg.data.T), "weight_bits": int(cfg.quant.weight_bits), "fusion": cfg.model.fusion,
            "loss": cfg.loss.name, "loss_options": {k: v for k, v in _plain(cfg.loss).items() if k != "name"},
            "float_epochs": int(cfg.float_epochs), "qat_epochs": int(cfg.qat_epochs),
            "seeds": study_seeds(cfg), "trainer_corrupt": _plain(cfg.trainer).get("corrupt"),
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
    seeds = s.get("seeds", [s.get("seed")])
    lines += [f"Each fold holds one FSDD speaker out for test and the next speaker (sorted order, cyclically) for "
              f"validation, trains on the other speakers (`data.split=speaker data.test_speakers=[<speaker>] "
              f"data.val_speakers=[<next>]`) and tests on its own slice of the held-out MNIST digits, through the whole "
              f"pipeline: float training ({epochs(s['float_epochs'])}), "
              f"QAT int{s['weight_bits']} ({epochs(s['qat_epochs'])}), ONNX export, simulator; T = {s['T']}, "
              f"{vision_text}{s['fusion']} + {s['loss']}{' (' + loss_text + ')' if loss_text else ''}, seeds "
              f"{', '.join(str(x) for x in seeds)}; sensor corruption in training (trainer.corrupt): "
              f"{corrupt_text}; trainer.modal_balance: {s.get('modal_balance', 0.0):g}; cochlea channel_norm: "
              f"{s.get('cochlea_channel_norm', 'none')}; data augmentation: "
              f"{'on, ' + str(s.get('augment_copies')) + ' copies' if s['data_augment'] else 'off'}. Audio-only and vision-only: "
              f"{result['unimodal_source']}. Choices read the validation column; test columns are reported only.", ""]
    header = ["| held-out speaker | val speaker | val (int8) | test pairs | fused | audio only | vision only | "
              "fused - best unimodal | fused, audio silent | fused, vision silent |", "|---|---|---|---|---|---|---|---|---|---|"]
    for seed in seeds:
        folds = [f for f in result["folds"] if f.get("seed", seed) == seed]
        if not folds:
            continue
        lines += [f"### Seed {seed}", "", *header]
        for f in folds:
            lines.append(f"| {f['speaker']} | {f.get('val_speaker', '')} | {pct(f.get('val_acc'))} | {f['test_samples']} | "
                         f"{pct(f['fused_acc'])} | {pct(f.get('audio_only_acc'))} | {pct(f.get('vision_only_acc'))} | "
                         f"{pp(f.get('fused_minus_best_unimodal'))} | {pct(f.get('audio_silent_acc'))} | "
                         f"{pct(f.get('vision_silent_acc'))} |")
        mean_of = lambda k: pct(statistics.fmean(f[k] for f in folds)) if all(k in f for f in folds) else ""  # noqa: E731
        lines += [f"| mean over {len(folds)} folds | | {mean_of('val_acc')} | | {mean_of('fused_acc')} | "
                  f"{mean_of('audio_only_acc')} | {mean_of('vision_only_acc')} | | {mean_of('audio_silent_acc')} | "
                  f"{mean_of('vision_silent_acc')} |", ""]
    summ = result["summary"]
    if summ:
        lines += ["### Over seeds", "", "Each seed's mean over its folds, then the mean over seeds with the sample std "
                  "and the 95 % t-interval (edge_taaf/intervals.py); fold std: the spread between held-out speakers.", "",
                  "| measure | mean ± std (95 % CI, n seeds) | per seed | fold std |", "|---|---|---|---|"]
        for key, name in (("val_acc", "validation, int8 program"), ("fused_acc", "test: fused"),
                          ("audio_only_acc", "test: audio only"), ("vision_only_acc", "test: vision only"),
                          ("audio_silent_acc", "test: fused, audio silent"), ("vision_silent_acc", "test: fused, vision silent")):
            if key in summ and "low" in summ[key]:
                k = summ[key]
                per = ", ".join(pct(v) for v in k["per_seed"])
                lines.append(f"| {name} | {interval_text(k)} | {per} | {100 * k['fold_std']:.2f} pp |")
        if "min_fused_minus_best_unimodal" in summ:
            seed_text = f", seed {summ['worst_seed']}" if summ.get("worst_seed") is not None else ""
            lines += ["", f"Worst fold over every seed: fused - best unimodal = {pp(summ['min_fused_minus_best_unimodal'])} "
                          f"(held-out speaker {summ['worst_fold']}{seed_text}). A value below 0 means the two-sensor device "
                          "was worse than its best sensor alone on that speaker."]
    if not result["complete"]:
        lines += ["", f"Incomplete: {len(result['folds'])} of {len(result['speakers']) * len(seeds)} folds done; re-run "
                      "the same command to resume."]
    lines += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


def interval_text(summary: dict) -> str:
    """A summary entry's interval as '97.33 ± 0.61 % (95 % CI 96.70-98.00, n = 3)'."""
    return Interval(*(summary[k] for k in ("mean", "std", "n", "low", "high", "level"))).text()


def _out_path(path) -> Path:
    return Path(to_absolute_path(str(path)) if HydraConfig.initialized() else str(path))


def run_loso(cfg: DictConfig, run_dir: str | Path, command: str = "python -m edge_taaf.apps.loso") -> dict:
    """Run (or resume) the study; write loso.json and loso.md into run_dir (and where loso.json /
    loso.markdown say) after every fold; return the result."""
    check_select_on(cfg)          # before any data is built
    run_dir = Path(run_dir)
    speakers, seeds = study_speakers(cfg), study_seeds(cfg)
    every = fsdd_speakers(data_root(cfg.data.get("root")))
    loso = cfg.get("loso") or {}
    result = {"study": "leave-one-speaker-out, nested (a validation speaker per fold)", "data": "fsdd_mnist",
              "speakers": speakers, "seeds": seeds, "selected_on": "val", "settings": study_settings(cfg),
              "command": command, "folds": [], "summary": {}, "complete": False, "unimodal_source": None}

    def write() -> None:
        result["summary"] = summarise(result["folds"], seeds)
        text, table = json.dumps(result, indent=1), markdown(result, loso.get("label"))
        targets = [(run_dir / "loso.json", text), (run_dir / "loso.md", table)]
        targets += [(_out_path(loso[k]), v) for k, v in (("json", text), ("markdown", table)) if loso.get(k)]
        for path, content in targets:
            atomic_write_text(path, content)
    for seed in seeds:
        for speaker in speakers:
            fold = run_fold(cfg, speaker, seed, val_speaker(speaker, every), run_dir)
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
    except (ConfigError, DataConfigError, CheckpointError, TrainingDiverged, FileNotFoundError) as exc:
        raise SystemExit(f"edge-taaf-loso: {exc}") from None
    print((run_dir / "loso.md").read_text())
    print(json.dumps({"folds": len(result["folds"]), "seeds": result["seeds"], **result["summary"]}))


if __name__ == "__main__":
    main()
