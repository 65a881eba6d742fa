"""Robustness benchmark: an exported program in the SIMULATOR (firmware_sim) on fsdd_mnist with healthy, dead
and noisy sensors, against each sensor alone; and a figure of accuracy as each sensor degrades.

The model (as bench/sim.py finds one, plus an ONNX file or a pipeline run):
  --onnx PATH          an exported file (the pipeline's export stage writes <workdir>/export-<key>/model.onnx);
  --run DIR            a pipeline run folder (edge-taaf-pipeline's output: report.json names the export stage);
  --checkpoint PATH    a training checkpoint (or EDGE_TAAF_CHECKPOINT), exported to ONNX here;
  none of them         an UNTRAINED int8 model of configs/model/snn.yaml, labelled so (numbers mean nothing).
The data config comes from the run (its .hydra/config.yaml, else its float checkpoint) or the checkpoint;
for a bare ONNX file from configs/data/fsdd_mnist.yaml with the program's T and input maxima. --data-root
(else EDGE_TAAF_DATA) is the folder holding fsdd/ and mnist5k/.

Measured on the official split's test pairs (all in the simulator):
  official_sim_acc     fused accuracy;
  audio_silent_acc     fused accuracy with the audio input all zeros (a dead microphone);
  vision_silent_acc    the same with the camera dead;
  noisy_audio_acc      white noise added to each test WAVEFORM at 0 dB SNR (sensors.audio_augment.add_noise,
                       power over the whole clip), then re-encoded by the cochlea (sensors.datasets.fsdd_noisy_audio);
  noisy_dvs_acc        background events added to the DVS test streams at 10x the emulator's background rate
                       (data.dvs.noise_rate_hz per pixel, ON share data.dvs.noise_on_fraction; sensors.datasets.noisy_vision);
  audio_only_acc, vision_only_acc   each sensor alone: the program's per-modality outputs (logits_audio,
                       logits_vision) when it has them, else the fused output with the other sensor silent;
                       ``unimodal_source`` says which.
  loso_fused_mean, loso_fused_ci95_low, loso_fused_ci95_high, loso_seeds   the fused accuracy of --loso (a
                       loso.json of edge_taaf/apps/loso.py): a multi-seed study's mean over seeds and 95 % t-interval
                       (its summary.fused_acc); a single-seed file counts as 1 seed (interval = its mean). Null without.
  speaker_heldout_fused  fused accuracy of a model trained on the speaker-held-out split (--speaker-onnx or
                       --speaker-run) on its held-out speakers; null without one (the official model has heard
                       every speaker, so it cannot be tested on a held-out one).
  min_fused_minus_best_unimodal  the smallest fused - best unimodal accuracy over the official split, the
                       speaker split and every fold of a leave-one-speaker-out study (--loso loso.json of
                       edge_taaf/apps/loso.py) given; below 0: the device was worse than its best sensor.
Failures never seen in training (edge_taaf.apps.robustness.OOD_FAILURES; sensors/ood.py, sensors/dvs_background.py),
kept apart under "ood" (fused_acc, and each sensor's own accuracy where the program outputs logits_<m>) and as flat
keys ood_<failure> (the fused accuracy): hot_pixels, dead_pixels, dead_channels, mains_hum_50hz, mains_hum_60hz,
clipping, babble_0db, babble_m5db, dvs_background_nmnist, dvs_background_dvxplorer.
  writer_disjoint_vision_acc, writer_disjoint_fused_acc   the official program on its test clips paired with digits
                       by writers absent from training (MNIST's official test set under --mnist-test-root,
                       data.vision_test_source=mnist_test; nothing retrained): vision alone and fused; null without
                       --mnist-test-root (writer_disjoint_source says why).
  ann_official_acc, ann_audio_silent_acc, ann_vision_silent_acc, ann_speaker_heldout   the ANN competitor
                       (--competitor: edge-taaf-ann run folders or their ann_result.json, official and / or speaker
                       split) run bit-exactly in onnxruntime (quant.ann_onnx.ann_logits) on its own test split;
  ann_noisy_audio_acc, ann_noisy_dvs_acc, ann_ood_<failure>   the official-split competitor under the SNN's noise
                       points (0 dB, 10x) and every unseen failure, made by the same functions with the same seed;
                       ann_writer_disjoint_acc on the writer-disjoint test pairs (with --mnist-test-root).
  ann_loso_mean, ann_loso_ci95_low, ann_loso_ci95_high, ann_loso_seeds   the competitor's test accuracy in its
                       leave-one-speaker-out study (--ann-loso: ann_loso.json of edge_taaf/apps/ann_loso.py), the mean
                       over seeds of each seed's fold mean with its 95 % t-interval and the number of seeds;
  ann_loso_audio_silent_mean, ann_loso_vision_silent_mean   the same study's mean with that sensor silent. Null
                       without --ann-loso (notes say so).
Sweeps (the figure, --figure, default docs/figures/robustness.png): audio SNR (--snr) and DVS background
multiplier (--dvs-multipliers), fused and each sensor alone.

    EDGE_TAAF_DATA=<data> python -m bench.robustness --run outputs/pipeline/<run> [--speaker-run <run>] [--loso loso.json] \
        [--ann-loso ann_loso.json] [--competitor <ann run> <ann speaker-split run>] [--mnist-test-root <folder holding mnist_test/>]

The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench.support.models import load_model
from edge_taaf import CONFIG_DIR
from edge_taaf.apps.robustness import (FROM_OUTPUTS, OOD_FAILURES, accuracy, ann_accuracies, ann_loso_summary,
                                       loso_summary, modality_accuracies, failed_inputs, ood_accuracies, silenced,
                                       sim_logits)
from firmware_sim.loader import load_program
from firmware_sim.run import Runner
from sensors.atomic import atomic_write
from sensors.datasets import build_dataset, fsdd_noisy_audio, noisy_vision
from sensors.schema import upgrade_data_config

ROOT = Path(__file__).resolve().parents[1]   # the repository: default output paths

NOISY_SNR_DB = 0.0
NOISY_DVS_MULTIPLIER = 10.0


def default_data_cfg(program, overrides: list[str]):
    """configs/data/fsdd_mnist.yaml (sensor settings resolved) with the program's T and input maxima."""
    top = {m: int(program.inputs[m][1]) for m in program.inputs}
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("data_app", ["data=fsdd_mnist", f"data.T={program.T}", f"data.clip={top.get('vision', 1)}",
                                   f"data.clip_audio={top.get('audio', 8)}", *overrides])
    return OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))


def config_of_run(run: Path):
    """A pipeline run folder's (export ONNX path, full config): report.json's export stage; the config from
    .hydra/config.yaml, else from the float stage's checkpoint."""
    report = json.loads((run / "report.json").read_text())
    onnx_path = Path(report["stages"]["export"]["folder"]) / "model.onnx"
    hydra_cfg = run / ".hydra" / "config.yaml"
    if hydra_cfg.exists():
        cfg = OmegaConf.load(hydra_cfg)
    else:
        from edge_taaf.checkpoint import load_checkpoint
        cfg = OmegaConf.create(load_checkpoint(Path(report["stages"]["float"]["folder"]) / "checkpoint.pt")["config"])
    cfg.data = upgrade_data_config(cfg.data)      # a run made by an older version: options added since, at their defaults
    return onnx_path, cfg


def export_checkpoint_here(checkpoint: str | None, folder: Path):
    """(ONNX path, data config, label) of a checkpoint exported into folder, or of an untrained default model
    (bench.support.models.load_model, as bench/sim.py)."""
    from quant.export import export_onnx

    model, data_cfg, label = load_model(checkpoint)
    path = folder / "model.onnx"
    export_onnx(model, path)
    return path, data_cfg, label if not checkpoint else f"checkpoint {short(checkpoint)}"


def resolve(args, tmp: Path, speaker: bool = False):
    """(program, ONNX path, data config (resolved, plain), label) of the official (or the speaker-split) model."""
    onnx_arg, run_arg = (args.speaker_onnx, args.speaker_run) if speaker else (args.onnx, args.run)
    data_cfg, label = None, None
    if run_arg:
        onnx_path, cfg = config_of_run(Path(run_arg))
        data_cfg, label = cfg.data, f"pipeline run {short(run_arg)}"
    elif onnx_arg:
        onnx_path, label = Path(onnx_arg), f"ONNX file {short(onnx_arg)}"
    elif speaker:
        return None
    else:
        onnx_path, data_cfg, label = export_checkpoint_here(args.checkpoint, tmp)
    program = load_program(onnx_path)
    if data_cfg is None:
        data_cfg = default_data_cfg(program, args.data)
        if speaker:
            data_cfg.split = "speaker"
    data_cfg = OmegaConf.create(OmegaConf.to_container(data_cfg, resolve=True))
    if args.data_root:
        data_cfg.root = str(Path(args.data_root).expanduser().resolve())
    if data_cfg.name != "fsdd_mnist":
        raise SystemExit(f"bench/robustness.py: the model was trained on data={data_cfg.name}; this benchmark needs fsdd_mnist")
    if speaker and data_cfg.split != "speaker":
        raise SystemExit(f"bench/robustness.py: the speaker-split model's data.split is {data_cfg.split!r}, not 'speaker'")
    if not speaker and data_cfg.split != "official":
        raise SystemExit(f"bench/robustness.py: {label} was trained with data.split={data_cfg.split}; pass it as "
                         "--speaker-run / --speaker-onnx and an official-split model as --run / --onnx / --checkpoint")
    return program, onnx_path, data_cfg, label


def short(path) -> str:
    """A path as its last two parts (figure titles and docs carry no machine-specific folders)."""
    parts = Path(str(path)).parts
    return "/".join(parts[-2:])


def shown(path) -> str:
    """A path as printed in the JSON: relative to the repository when inside it, else its last two parts."""
    full = Path(path).resolve()
    return str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else short(full)


def limited(test, n: int | None):
    inputs, labels = test.inputs(), test.labels
    if n:
        inputs, labels = {k: v[:n] for k, v in inputs.items()}, labels[:n]
    return inputs, labels


def alone_acc(program, runner, inputs, labels, modality: str, heads: bool) -> float:
    """A sensor's own accuracy on these inputs: its per-modality output, else the fused output with the
    other sensor silent."""
    other = "vision" if modality == "audio" else "audio"
    if heads:
        return accuracy(sim_logits(program, inputs, runner=runner)[f"logits_{modality}"], labels)
    return accuracy(sim_logits(program, silenced(inputs, other), runner=runner)["logits"], labels)


def sweeps(program, data_cfg, inputs, labels, snrs, multipliers, heads, seed, n) -> dict:
    runner = Runner(program)
    out = {"audio": {"snr_db": [], "fused": [], "audio_only": [], "vision_only": []},
           "vision": {"multiplier": [], "fused": [], "vision_only": [], "audio_only": []}}
    audio_clean_alone = alone_acc(program, runner, inputs, labels, "audio", heads)
    vision_clean_alone = alone_acc(program, runner, inputs, labels, "vision", heads)
    for snr in snrs:
        noisy = {**inputs, "audio": fsdd_noisy_audio(data_cfg, "test", snr, seed)[:n or None]}
        a = out["audio"]
        a["snr_db"].append(snr)
        a["fused"].append(accuracy(sim_logits(program, noisy, runner=runner)["logits"], labels))
        a["audio_only"].append(alone_acc(program, runner, noisy, labels, "audio", heads))
        a["vision_only"].append(vision_clean_alone)
        print(f"  audio at {snr:+.0f} dB SNR: fused {a['fused'][-1]:.4f}, audio alone {a['audio_only'][-1]:.4f}", flush=True)
    for m in multipliers:
        noisy = {**inputs, "vision": noisy_vision(data_cfg, inputs["vision"], m, seed)}
        v = out["vision"]
        v["multiplier"].append(m)
        v["fused"].append(accuracy(sim_logits(program, noisy, runner=runner)["logits"], labels))
        v["vision_only"].append(alone_acc(program, runner, noisy, labels, "vision", heads))
        v["audio_only"].append(audio_clean_alone)
        print(f"  DVS background x{m:g} added: fused {v['fused'][-1]:.4f}, vision alone {v['vision_only'][-1]:.4f}", flush=True)
    return out


def plot(sweep: dict, path: Path, title: str) -> None:
    fig, (ax_a, ax_v) = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    a, v = sweep["audio"], sweep["vision"]
    ax_a.plot(a["snr_db"], [100 * x for x in a["fused"]], "o-", c="C3", label="fused (both sensors)")
    ax_a.plot(a["snr_db"], [100 * x for x in a["audio_only"]], "s--", c="C0", label="audio alone")
    ax_a.plot(a["snr_db"], [100 * x for x in a["vision_only"]], ":", c="C2", label="vision alone (clean)")
    ax_a.set_title("audio degrades", fontsize=9)
    ax_a.set_xlabel("audio SNR (dB, white noise on the waveform)")
    ax_a.invert_xaxis()
    ax_a.set_ylabel("simulator accuracy (%)")
    xs = v["multiplier"]
    ax_v.plot(xs, [100 * x for x in v["fused"]], "o-", c="C3", label="fused (both sensors)")
    ax_v.plot(xs, [100 * x for x in v["vision_only"]], "s--", c="C2", label="vision alone")
    ax_v.plot(xs, [100 * x for x in v["audio_only"]], ":", c="C0", label="audio alone (clean)")
    ax_v.set_title("DVS degrades", fontsize=9)
    ax_v.set_xlabel("DVS background activity added (x the emulator's own rate)")
    if min(xs) >= 0 and max(xs) > 0:
        ax_v.set_xscale("symlog", linthresh=1)
    for ax in (ax_a, ax_v):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_ylim(0, 102)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)


WRITER_NONE = ("null: no --mnist-test-root given; fsdd_mnist's default test digits (MNIST 5k) come from MNIST's "
               "training writers, so no writer claim can be made without MNIST's official test set "
               "(edge-taaf-data fetch --source mnist_test --root DIR)")
ANN_KEYS = ("ann_official_acc", "ann_audio_silent_acc", "ann_vision_silent_acc", "ann_speaker_heldout",
            "ann_noisy_audio_acc", "ann_noisy_dvs_acc", *(f"ann_ood_{name}" for name in OOD_FAILURES),
            "ann_writer_disjoint_acc")
ANN_LOSO_KEYS = ("ann_loso_mean", "ann_loso_ci95_low", "ann_loso_ci95_high", "ann_loso_seeds",   # --ann-loso:
                 "ann_loso_audio_silent_mean", "ann_loso_vision_silent_mean")    # edge_taaf.apps.robustness.ann_loso_summary


def writer_disjoint_cfg(data_cfg, mnist_test_root: str):
    """data_cfg with its test digits from MNIST's official test set under ``mnist_test_root`` (other writers)."""
    cfg = OmegaConf.create(OmegaConf.to_container(data_cfg, resolve=True))
    cfg.vision_test_source, cfg.mnist_test_root = "mnist_test", str(Path(mnist_test_root).expanduser().resolve())
    return cfg


def writer_disjoint(args, program, data_cfg) -> tuple[dict | None, str]:
    """The official program on test digits by writers absent from its training: the run's own official test split
    rebuilt with data.vision_test_source=mnist_test (MNIST's t10k set under --mnist-test-root; the FSDD clips and
    the pairing rule are the run's, only the digits change). Returns ({"vision_only_acc", "fused_acc", "samples"},
    source) or (None, why) without --mnist-test-root. Nothing is retrained: the model saw only MNIST 5k digits."""
    if not args.mnist_test_root:
        return None, WRITER_NONE
    test = build_dataset(writer_disjoint_cfg(data_cfg, args.mnist_test_root), "test")
    inputs, labels = limited(test, args.samples)
    acc = modality_accuracies(program, inputs, labels, silent_runs=False)
    out = {"vision_only_acc": acc["vision_only_acc"], "fused_acc": acc["fused_acc"], "samples": int(len(labels))}
    return out, (f"{test.vision_source}; the official program (trained on MNIST 5k digits only) on its own official "
                 f"test clips paired with t10k digits ({out['samples']} pairs)")


def ann_result_of(path: str) -> tuple[dict, Path]:
    """(ann_result.json content, its ONNX file) of an edge-taaf-ann run folder or its ann_result.json."""
    path = Path(path)
    result_path = path / "ann_result.json" if path.is_dir() else path
    if not result_path.is_file():
        raise SystemExit(f"bench/robustness.py: --competitor {path}: no ann_result.json (expected an edge-taaf-ann "
                         "run folder or its ann_result.json)")
    result = json.loads(result_path.read_text())
    if "config" not in result or "onnx" not in result:
        raise SystemExit(f"bench/robustness.py: --competitor {result_path}: lacks 'config' or 'onnx' (an older "
                         "edge-taaf-ann result; rerun edge-taaf-ann)")
    return result, result_path.parent / result["onnx"]


def competitor(args) -> tuple[dict, dict]:
    """(ann_* keys, notes) of the --competitor runs: onnxruntime's integer logits (quant.ann_onnx.ann_logits) on
    each run's own test split; official split: fused and each sensor silent; speaker split: the held-out speakers."""
    keys, notes = dict.fromkeys(ANN_KEYS), {}
    for path in args.competitor or []:
        from quant.ann_onnx import ann_logits

        result, onnx_path = ann_result_of(path)
        data_cfg = upgrade_data_config(OmegaConf.create(result["config"]["data"]))   # an older run: new options' defaults
        if args.data_root:
            data_cfg.root = str(Path(args.data_root).expanduser().resolve())
        inputs, labels = limited(build_dataset(data_cfg, "test"), args.samples)
        acc = lambda x: accuracy(ann_logits(onnx_path, x["vision"], x["audio"]), labels)  # noqa: E731
        if data_cfg.split == "speaker":
            keys["ann_speaker_heldout"] = acc(inputs)
        else:
            healthy_and_silent = ann_accuracies(onnx_path, inputs, labels)
            keys["ann_official_acc"] = healthy_and_silent["fused_acc"]
            keys["ann_audio_silent_acc"] = healthy_and_silent["audio_silent_acc"]
            keys["ann_vision_silent_acc"] = healthy_and_silent["vision_silent_acc"]
            # the SNN's in-distribution noise points and unseen failures, made by the same functions and seed
            n = len(labels)
            keys["ann_noisy_audio_acc"] = acc({**inputs, "audio": fsdd_noisy_audio(data_cfg, "test", NOISY_SNR_DB,
                                                                                 args.seed)[:n]})
            keys["ann_noisy_dvs_acc"] = acc({**inputs, "vision": noisy_vision(data_cfg, inputs["vision"],
                                                                              NOISY_DVS_MULTIPLIER, args.seed)})
            for name in OOD_FAILURES:
                keys[f"ann_ood_{name}"] = acc(failed_inputs(name, data_cfg, inputs, args.seed))
                print(f"  competitor, unseen failure {name}: {keys[f'ann_ood_{name}']:.4f}", flush=True)
            if args.mnist_test_root:     # the same test clips paired with digits by writers it never met
                w_inputs, w_labels = limited(build_dataset(writer_disjoint_cfg(data_cfg, args.mnist_test_root), "test"),
                                             args.samples)
                keys["ann_writer_disjoint_acc"] = accuracy(ann_logits(onnx_path, w_inputs["vision"], w_inputs["audio"]),
                                                           w_labels)
        notes[f"competitor_{data_cfg.split}"] = f"{short(onnx_path)}, onnxruntime integer run, {len(labels)} test pairs"
    for key in ANN_KEYS:
        if keys[key] is None:
            split = "speaker" if key == "ann_speaker_heldout" else "official"
            notes[key] = (f"null: no --competitor run on the {split} split was given" if key != "ann_writer_disjoint_acc"
                          or not keys["ann_official_acc"] else "null: no --mnist-test-root given")
    return keys, notes


def ann_loso_section(path: str | None) -> tuple[dict, dict]:
    """(ann_loso_* keys, notes) of --ann-loso: the summary of an ann_loso.json (edge_taaf/apps/ann_loso.py); every
    key null with a note when no file was given."""
    if not path:
        keys = dict.fromkeys(ANN_LOSO_KEYS)
        return keys, {"ann_loso": "null: no --ann-loso ann_loso.json (edge-taaf-ann-loso's output) was given"}
    try:
        keys = ann_loso_summary(json.loads(Path(path).read_text()))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"bench/robustness.py: --ann-loso {path}: {exc}") from None
    print(f"competitor LOSO: {keys['ann_loso_mean']:.4f} over {keys['ann_loso_seeds']} seed(s), 95 % CI "
          f"{keys['ann_loso_ci95_low']:.4f}-{keys['ann_loso_ci95_high']:.4f}", flush=True)
    return keys, {"ann_loso": f"{short(path)}: mean over {keys['ann_loso_seeds']} seeds of each seed's fold mean"}


def ood_section(program, data_cfg, inputs, labels, seed) -> tuple[dict, dict]:
    """(the "ood" section, the flat ood_<failure> keys) of failures never seen in training."""
    section = ood_accuracies(program, data_cfg, inputs, labels, seed)
    for name, r in section.items():
        print(f"  unseen failure {name}: fused {r['fused_acc']:.4f}", flush=True)
    return section, {f"ood_{name}": r["fused_acc"] for name, r in section.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", help="an exported ONNX file (official split)")
    parser.add_argument("--run", help="a pipeline run folder (report.json) on the official split")
    parser.add_argument("--checkpoint", default=os.environ.get("EDGE_TAAF_CHECKPOINT"), help="a checkpoint, exported here")
    parser.add_argument("--speaker-onnx", help="an ONNX file of a model trained with data.split=speaker")
    parser.add_argument("--speaker-run", help="a pipeline run folder trained with data.split=speaker")
    parser.add_argument("--loso", help="loso.json of edge_taaf/apps/loso.py: its folds join min_fused_minus_best_unimodal")
    parser.add_argument("--ann-loso", help="ann_loso.json of edge_taaf/apps/ann_loso.py (edge-taaf-ann-loso): the "
                        "competitor's leave-one-speaker-out accuracy over seeds")
    parser.add_argument("--mnist-test-root", default=os.environ.get("EDGE_TAAF_MNIST_TEST"),
                        help="a folder holding mnist_test/ (MNIST's official test set: edge-taaf-data fetch --source "
                             "mnist_test --root DIR; else EDGE_TAAF_MNIST_TEST): the official program is also tested on "
                             "digits by writers absent from its training")
    parser.add_argument("--competitor", nargs="+", help="edge-taaf-ann run folders (or ann_result.json): official "
                        "and / or speaker split")
    parser.add_argument("--data-root", help="folder holding fsdd/ and mnist5k/ (default: EDGE_TAAF_DATA)")
    parser.add_argument("--data", nargs="*", default=[], help="data config overrides for a bare ONNX file (e.g. data.pair_seed=0)")
    parser.add_argument("--snr", type=float, nargs="+", default=[30.0, 20.0, 10.0, 5.0, 0.0, -5.0, -10.0])
    parser.add_argument("--dvs-multipliers", type=float, nargs="+", default=[0.0, 1.0, 3.0, 10.0, 30.0, 100.0])
    parser.add_argument("--samples", type=int, default=None, help="only the first N test pairs (quick runs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the added noise")
    parser.add_argument("--figure", default=str(ROOT / "docs" / "figures" / "robustness.png"))
    args = parser.parse_args()
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        program, onnx_path, data_cfg, label = resolve(args, Path(tmp))
        print(f"model: {label}; T={program.T}, inputs {sorted(program.inputs)}", flush=True)
        if sorted(program.inputs) != ["audio", "vision"]:
            raise SystemExit("bench/robustness.py: the program must read both sensors (audio and vision)")
        test = build_dataset(data_cfg, "test")
        inputs, labels = limited(test, args.samples)
        n = len(labels)
        clean_again = fsdd_noisy_audio(data_cfg, "test", None, args.seed)[:n]
        reencoded_equal = int(np.array_equal(clean_again, inputs["audio"]))   # the re-encoding path is the data's own
        base = modality_accuracies(program, inputs, labels)
        heads = base["unimodal_source"] == FROM_OUTPUTS
        print(f"official split, {n} test pairs: fused {base['fused_acc']:.4f}, audio alone {base['audio_only_acc']:.4f}, "
              f"vision alone {base['vision_only_acc']:.4f} ({base['unimodal_source']}); audio silent "
              f"{base['audio_silent_acc']:.4f}, vision silent {base['vision_silent_acc']:.4f}", flush=True)
        snrs = sorted(set(args.snr) | {NOISY_SNR_DB}, reverse=True)
        mults = sorted(set(args.dvs_multipliers) | {NOISY_DVS_MULTIPLIER})
        sweep = sweeps(program, data_cfg, inputs, labels, snrs, mults, heads, args.seed, n)
        noisy_audio_acc = sweep["audio"]["fused"][sweep["audio"]["snr_db"].index(NOISY_SNR_DB)]
        noisy_dvs_acc = sweep["vision"]["fused"][sweep["vision"]["multiplier"].index(NOISY_DVS_MULTIPLIER)]
        gaps = {"official": base["fused_minus_best_unimodal"]}
        speaker, notes = None, {}
        resolved = resolve(args, Path(tmp), speaker=True)
        if resolved is None:
            notes["speaker_heldout_fused"] = ("null: no model trained on the speaker split was given (--speaker-onnx or "
                                              "--speaker-run); the official model heard every speaker in training")
        else:
            s_program, _, s_cfg, s_label = resolved
            s_inputs, s_labels = limited(build_dataset(s_cfg, "test"), args.samples)
            speaker = modality_accuracies(s_program, s_inputs, s_labels) | {"model": s_label,
                                                                             "test_speakers": list(s_cfg.test_speakers)}
            gaps["speaker"] = speaker["fused_minus_best_unimodal"]
            print(f"speaker split (held out {list(s_cfg.test_speakers)}): fused {speaker['fused_acc']:.4f}, audio alone "
                  f"{speaker['audio_only_acc']:.4f}, vision alone {speaker['vision_only_acc']:.4f}", flush=True)
        loso_folds, loso = [], dict.fromkeys(("loso_fused_mean", "loso_fused_ci95_low", "loso_fused_ci95_high",
                                               "loso_seeds"))
        if args.loso:
            study = json.loads(Path(args.loso).read_text())
            loso = loso_summary(study)
            for fold in study["folds"]:
                if "fused_minus_best_unimodal" in fold:
                    seed_part = f"seed{fold['seed']}." if fold.get("seed") is not None else ""
                    gaps[f"loso.{seed_part}{fold['speaker']}"] = fold["fused_minus_best_unimodal"]
                    loso_folds.append({k: fold.get(k) for k in ("speaker", "seed", "fused_acc", "audio_only_acc",
                                                                 "vision_only_acc", "fused_minus_best_unimodal")})
            print(f"LOSO: fused {loso['loso_fused_mean']:.4f} over {loso['loso_seeds']} seed(s), 95 % CI low "
                  f"{loso['loso_fused_ci95_low']:.4f}", flush=True)
        ood, ood_flat = ood_section(program, data_cfg, inputs, labels, args.seed)
        writer, writer_source = writer_disjoint(args, program, data_cfg)
        ann, ann_notes = competitor(args)
        notes.update(ann_notes)
        ann_loso, ann_loso_notes = ann_loso_section(args.ann_loso)
        notes.update(ann_loso_notes)
        title = f"fsdd_mnist official test ({n} pairs), simulator; {label}"
        plot(sweep, Path(args.figure), title if len(title) < 120 else title[:117] + "...")
    dvs_rate = float(data_cfg.dvs.noise_rate_hz)
    print(json.dumps({
        "official_sim_acc": base["fused_acc"],
        "speaker_heldout_fused": None if speaker is None else speaker["fused_acc"],
        **loso,
        "writer_disjoint_vision_acc": None if writer is None else writer["vision_only_acc"],
        "writer_disjoint_fused_acc": None if writer is None else writer["fused_acc"],
        "writer_disjoint_source": writer_source,
        **ann, **ann_loso,
        "audio_silent_acc": base["audio_silent_acc"], "vision_silent_acc": base["vision_silent_acc"],
        "noisy_audio_acc": noisy_audio_acc, "noisy_dvs_acc": noisy_dvs_acc,
        "audio_only_acc": base["audio_only_acc"], "vision_only_acc": base["vision_only_acc"],
        "unimodal_source": base["unimodal_source"],
        "min_fused_minus_best_unimodal": min(gaps.values()), "fused_minus_best_unimodal": gaps,
        "speaker_split": speaker, "loso_folds": loso_folds,
        "noise": {"audio": f"white Gaussian noise on the waveform at {NOISY_SNR_DB:g} dB SNR (power over the whole clip), "
                           "re-encoded by the cochlea",
                  "dvs": f"background events at {NOISY_DVS_MULTIPLIER:g} x data.dvs.noise_rate_hz = "
                         f"{NOISY_DVS_MULTIPLIER * dvs_rate:g} Hz per pixel added (Poisson, ON share "
                         f"{float(data_cfg.dvs.noise_on_fraction):g}), clipped at data.clip", "seed": args.seed},
        "sweeps": sweep, "reencoded_clean_audio_equals_data": reencoded_equal,
        "ood": {"note": "failures never seen in training (edge_taaf.apps.robustness.OOD_FAILURES), official test split, "
                        f"simulator, seed {args.seed}", "failures": ood}, **ood_flat,
        "model": label, "onnx": short(onnx_path) if args.onnx or args.run else None, "data": "fsdd_mnist",
        "split": str(data_cfg.split), "test_samples": n, "T": int(program.T), "figure": shown(args.figure),
        "notes": notes, "seconds": round(time.time() - start, 1),
    }))


if __name__ == "__main__":
    main()
