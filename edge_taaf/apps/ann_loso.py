"""edge-taaf-ann-loso: the single-pass int8 ANN competitor on the SNN's nested leave-one-speaker-out folds
(python -m edge_taaf.apps.ann_loso; config configs/ann_loso.yaml).

    edge-taaf-ann-loso +experiment=robust hydra.run.dir=outputs/ann_loso/robust     # 6 speakers x seeds 0, 1, 2
    edge-taaf-ann-loso +experiment=robust hydra.run.dir=outputs/ann_loso/robust     # the same again: resumes
    edge-taaf-ann-loso loso.speakers=[lucas,george] loso.seeds=[0] trainer.epochs=5 loso.json=docs/ann_loso.json

The folds are edge-taaf-loso's (edge_taaf/apps/loso.py: study_speakers, study_seeds, val_speaker, fold_config):
for each seed of ``loso.seeds`` and each speaker, edge_taaf.apps.ann.run_ann with ``data.split=speaker
data.test_speakers=[that speaker] data.val_speakers=[the next FSDD speaker in sorted order, cyclically]
seed=<seed>`` into ``<run folder>/fold-<speaker>-seed<seed>/``. The size is ``ann`` alone by default (h32, the
official split's validation choice; configs/ann_loso.yaml); ``sizes`` set searches per fold on its val speaker.
Each fold's chosen ONNX file then runs in onnxruntime (edge_taaf.apps.robustness.ann_accuracies) on the fold's
test split with each sensor silent, as bench/robustness.py runs the competitor.

Results: ``ann_loso.json`` (every fold x seed record: speaker, seed, val_speaker, val_acc, test_acc (the ONNX
integer run's, from ann_result.json), audio_silent_acc, vision_silent_acc, int_exact, chosen, weights, macs,
train_seconds; top-level ``seeds``; a summary whose accuracies are edge_taaf.intervals intervals over the
seeds' fold means) and ``ann_loso.md`` (a table), rewritten atomically after every fold in the run folder and
where ``loso.json`` / ``loso.markdown`` say.

Resumable: a fold folder already holding a complete ann_result.json of the same fold config is read back, not
retrained (a different config there is an error naming the options that differ). The run folder is Hydra's
``hydra.run.dir`` (timestamped by default): give it a fixed folder, and re-run the same command with it, to resume.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from edge_taaf import CONFIG_DIR
from edge_taaf.apps import ann
from edge_taaf.apps.loso import (_out_path, fold_config, interval_text, study_seeds, study_speakers, summarise,
                                 val_speaker)
from edge_taaf.apps.robustness import ann_accuracies
from edge_taaf.config import ConfigError, check_select_on
from firmware_sim.energy import HardwareConfigError
from sensors.atomic import atomic_write_text
from sensors.datasets import DataConfigError, build_dataset, fsdd_speakers
from sensors.paths import data_root

SUMMARY_KEYS = ("val_acc", "test_acc", "audio_silent_acc", "vision_silent_acc")   # each summarised over seeds
# Options that change where files are or how a run is shown, not what a fold trains or measures: a fold may be
# resumed with them changed.
RESUME_IGNORES = ("data.root", "data.cache_dir", "data.mnist_test_root", "trainer.progress", "trainer.device",
                  "eval_batch_size")
COMPLETE_KEYS = ("val_acc", "test_acc", "int_exact", "chosen", "weights", "macs", "train_seconds", "onnx", "config")


def fold_folder(run_dir: Path, speaker: str, seed: int) -> Path:
    return Path(run_dir) / f"fold-{speaker}-seed{seed}"


def _flat(tree, prefix: str = "") -> dict:
    """A nested config (dicts) as {dotted key: value}."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out = {}
    for key, value in tree.items():
        out |= _flat(value, f"{prefix}{key}.") if isinstance(value, dict) and value else {f"{prefix}{key}": value}
    return out


def config_differences(saved: dict, fold_cfg) -> list[str]:
    """The dotted options whose values differ between a saved ann_result.json's config and ``fold_cfg`` (both as
    JSON would hold them), ignoring RESUME_IGNORES."""
    wanted = _flat(json.loads(json.dumps(OmegaConf.to_container(fold_cfg, resolve=True))))
    have = _flat(saved)
    return sorted(k for k in set(wanted) | set(have)
                  if k not in RESUME_IGNORES and wanted.get(k, "<absent>") != have.get(k, "<absent>"))


def finished_fold(fold_cfg, folder: Path) -> dict | None:
    """The fold's ann_result.json when it is complete (every key this study reads, and its ONNX file) and was
    trained with ``fold_cfg``; None when there is none or it is incomplete (the fold is trained again). A complete
    one of another config is a ConfigError naming the options that differ."""
    path = folder / ann.RESULT
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if not isinstance(result, dict) or any(k not in result for k in COMPLETE_KEYS) or not (folder / result["onnx"]).is_file():
        return None
    differing = config_differences(result["config"], fold_cfg)
    if differing:
        shown = ", ".join(differing[:6]) + (f" and {len(differing) - 6} more" if len(differing) > 6 else "")
        raise ConfigError(f"{path} was trained with other options ({shown} differ); re-run with the options it was "
                          "trained with, or give another hydra.run.dir for a new study")
    return result


def run_fold(cfg, speaker: str, seed: int, validation: str, run_dir: Path, log=print) -> dict:
    """One fold with one seed: edge-taaf-ann (or its finished result, read back), then the chosen ONNX file's
    integer run on the fold's test split healthy and with each sensor silent."""
    fold_cfg = fold_config(cfg, speaker, seed, validation)
    folder = fold_folder(run_dir, speaker, seed)
    result = finished_fold(fold_cfg, folder)
    if result is None:
        result = ann.run_ann(fold_cfg, folder)
    else:
        log(f"edge-taaf-ann-loso: fold {speaker}, seed {seed}: read back from {folder / ann.RESULT}")
    test = build_dataset(fold_cfg.data, "test").only(ann.MODALITIES)
    measured = ann_accuracies(folder / result["onnx"], test.inputs(), test.labels)
    return {"speaker": speaker, "seed": seed, "val_speaker": validation, "val_acc": result["val_acc"],
            "test_acc": result["test_acc"], "audio_silent_acc": measured["audio_silent_acc"],
            "vision_silent_acc": measured["vision_silent_acc"],
            "test_rerun_equal": int(measured["fused_acc"] == result["test_acc"]),   # the same file, the same pairs
            "int_exact": result["int_exact"], "chosen": result["chosen"], "weights": result["weights"],
            "macs": result["macs"], "train_seconds": result["train_seconds"],
            "val_samples": result.get("val_samples"), "test_samples": int(len(test.labels)),
            "folder": folder.name}


def study_settings(cfg) -> dict:
    """What every fold shares, for the table's header: T, epochs, the size (or sizes searched), trainer.corrupt."""
    sizes = cfg.get("sizes")
    return {"T": int(cfg.data.T), "epochs": int(cfg.trainer.epochs), "seeds": study_seeds(cfg),
            "sizes": list(sizes) if sizes else None, "ann": OmegaConf.to_container(cfg.ann, resolve=True),
            "trainer_corrupt": OmegaConf.to_container(cfg.trainer.corrupt, resolve=True)
            if cfg.trainer.get("corrupt") is not None else None,
            "data_augment": bool((cfg.data.get("augment") or {}).get("enabled", False))}


def markdown(result: dict, label: str | None = None) -> str:
    """ann_loso.md: a row per fold and seed, the mean over each seed's folds, and the intervals over seeds."""
    pct = lambda x: "" if x is None else f"{100 * x:.2f} %"  # noqa: E731
    s = result["settings"]
    corrupt = ", ".join(f"{k}={v}" for k, v in (s["trainer_corrupt"] or {}).items() if k.endswith("_prob") and v) or "off"
    size = f"sizes {s['sizes']} searched per fold on its val speaker" if s["sizes"] else f"one size: ann {s['ann']}"
    lines = ["# Leave-one-speaker-out study of the ANN competitor (fsdd_mnist, ONNX integer run)", ""]
    if label:
        lines += [f"**{label}**", ""]
    lines += [f"The folds of edge-taaf-loso (held-out speaker for test, the next speaker for validation, the other "
              f"speakers train), each trained by edge-taaf-ann: {size}; T = {s['T']}, {s['epochs']} "
              f"epoch{'' if s['epochs'] == 1 else 's'}, "
              f"trainer.corrupt: {corrupt}; data augmentation: {'on' if s['data_augment'] else 'off'}. Accuracies are "
              "the exported file's integer run in onnxruntime; a silent sensor is all zeros.", ""]
    header = ["| held-out speaker | val speaker | size | val | test | audio silent | vision silent | int_exact |",
              "|---|---|---|---|---|---|---|---|"]
    for seed in result["seeds"]:
        folds = [f for f in result["folds"] if f["seed"] == seed]
        if not folds:
            continue
        lines += [f"### Seed {seed}", "", *header]
        lines += [f"| {f['speaker']} | {f['val_speaker']} | {f['chosen']} | {pct(f['val_acc'])} | {pct(f['test_acc'])} | "
                  f"{pct(f['audio_silent_acc'])} | {pct(f['vision_silent_acc'])} | {f['int_exact']} |" for f in folds]
        mean = lambda k: pct(statistics.fmean(f[k] for f in folds))  # noqa: E731
        lines += [f"| mean over {len(folds)} folds | | | {mean('val_acc')} | {mean('test_acc')} | "
                  f"{mean('audio_silent_acc')} | {mean('vision_silent_acc')} | |", ""]
    if result["summary"]:
        lines += ["### Over seeds", "", "Each seed's mean over its folds, then the mean over seeds with the sample std "
                  "and the 95 % t-interval (edge_taaf/intervals.py); fold std: the spread between held-out speakers.", "",
                  "| measure | mean ± std (95 % CI, n seeds) | per seed | fold std |", "|---|---|---|---|"]
        for key, name in (("val_acc", "validation"), ("test_acc", "test"), ("audio_silent_acc", "test, audio silent"),
                          ("vision_silent_acc", "test, vision silent")):
            if key in result["summary"]:
                k = result["summary"][key]
                lines.append(f"| {name} | {interval_text(k)} | {', '.join(pct(v) for v in k['per_seed'])} | "
                             f"{100 * k['fold_std']:.2f} pp |")
    if not result["complete"]:
        lines += ["", f"Incomplete: {len(result['folds'])} of {len(result['speakers']) * len(result['seeds'])} folds "
                      "done; re-run the same command with the same hydra.run.dir to resume."]
    lines += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(lines)


def write_result(result: dict, run_dir: Path, loso) -> None:
    """ann_loso.json and ann_loso.md into run_dir and where loso.json / loso.markdown say, each atomically."""
    text, table = json.dumps(result, indent=1), markdown(result, loso.get("label"))
    targets = [(run_dir / "ann_loso.json", text), (run_dir / "ann_loso.md", table)]
    targets += [(_out_path(loso[k]), v) for k, v in (("json", text), ("markdown", table)) if loso.get(k)]
    for path, content in targets:
        atomic_write_text(path, content)


def run_ann_loso(cfg: DictConfig, run_dir: str | Path, command: str = "edge-taaf-ann-loso") -> dict:
    """Run (or resume) the study; write ann_loso.json and ann_loso.md after every fold; return the result."""
    check_select_on(cfg)          # before any data is built
    speakers, seeds = study_speakers(cfg), study_seeds(cfg)
    run_dir = Path(run_dir)
    every = fsdd_speakers(data_root(cfg.data.get("root")))
    loso = cfg.get("loso") or {}
    result = {"study": "leave-one-speaker-out, nested (a validation speaker per fold): the ANN competitor",
              "data": "fsdd_mnist", "speakers": speakers, "seeds": seeds, "selected_on": "val",
              "accuracy_source": "onnxruntime integer run of each fold's ann_model.onnx",
              "settings": study_settings(cfg), "command": command, "folds": [], "summary": {}, "int_exact": None,
              "complete": False}
    for seed in seeds:
        for speaker in speakers:
            result["folds"].append(run_fold(cfg, speaker, seed, val_speaker(speaker, every), run_dir))
            result["summary"] = summarise(result["folds"], seeds, SUMMARY_KEYS)
            result["int_exact"] = int(all(f["int_exact"] == 1 for f in result["folds"]))
            write_result(result, run_dir, loso)
    result["complete"] = True
    write_result(result, run_dir, loso)
    return result


@hydra.main(config_path=CONFIG_DIR, config_name="ann_loso", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    overrides = " ".join(HydraConfig.get().overrides.task)
    try:
        result = run_ann_loso(cfg, run_dir, f"edge-taaf-ann-loso {overrides}".strip())
    except (ConfigError, DataConfigError, HardwareConfigError, FileNotFoundError) as exc:
        raise SystemExit(f"edge-taaf-ann-loso: {exc}") from None
    print((run_dir / "ann_loso.md").read_text())
    print(json.dumps({"folds": len(result["folds"]), "seeds": result["seeds"], "int_exact": result["int_exact"],
                      **{k: result["summary"][k]["mean"] for k in SUMMARY_KEYS if k in result["summary"]}}), flush=True)


if __name__ == "__main__":
    main()
