"""edge-taaf-ann-loso (edge_taaf/apps/ann_loso.py): the ANN competitor on the nested leave-one-speaker-out folds,
end to end on the real fixture recordings (tests/data: speakers george, lucas, nicolas) with a tiny competitor
and one epoch, 2 folds x 2 seeds: each fold's val / test / silent-sensor accuracies from its ONNX integer run,
the summary over seeds (intervals), the JSON and table, resuming without retraining; bad options are one-line
errors naming them, raised before any data is built."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edge_taaf.apps.ann as ann_app
from edge_taaf.apps.ann_loso import SUMMARY_KEYS, run_ann_loso
from edge_taaf.apps.loso import summarise
from edge_taaf.config import ConfigError
from quant.ann_onnx import ann_logits
from sensors.datasets import build_dataset
from tests.support.configs import compose_config
from tests.support.data_gating import FIXTURE_ROOT

ROOT = Path(__file__).resolve().parents[2]
TINY = [f"data.root={FIXTURE_ROOT}", "data.T=6", "data.mnist_test_per_class=3", "data.mnist_val_per_class=2",
        "ann.vision.channels=[2,4]", "ann.vision.kernels=[5,3]", "ann.vision.strides=[2,2]", "ann.audio.channels=[2]",
        "ann.audio.kernels=[3]", "ann.audio.strides=[2]", "ann.hidden=8", "trainer.epochs=1", "trainer.batch_size=16",
        "trainer.warmup_steps=1", "trainer.progress=false", "loso.seeds=[0,1]", "loso.speakers=[lucas,nicolas]"]


def study_cfg(tmp_path, *extra):
    return compose_config("ann_loso", [*TINY, f"data.cache_dir={tmp_path / 'cache'}",
                                       f"loso.json={tmp_path / 'docs' / 'ann_loso.json'}", *extra])


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A study killed in its second fold (nicolas, seed 0), resumed in the same folder counting the trainings,
    then run a third time."""
    tmp = tmp_path_factory.mktemp("ann_loso")
    cfg, run_dir = study_cfg(tmp), tmp / "run"
    mp = pytest.MonkeyPatch()
    real_run_ann, calls = ann_app.run_ann, []

    def dies_on_nicolas(fold_cfg, folder):
        if list(fold_cfg.data.test_speakers) == ["nicolas"] and fold_cfg.seed == 0:
            raise Interrupted
        return real_run_ann(fold_cfg, folder)
    mp.setattr(ann_app, "run_ann", dies_on_nicolas)
    with pytest.raises(Interrupted):
        run_ann_loso(cfg, run_dir)
    partial = json.loads((run_dir / "ann_loso.json").read_text())

    def counting(fold_cfg, folder):
        calls.append((list(fold_cfg.data.test_speakers), list(fold_cfg.data.val_speakers), fold_cfg.seed, folder.name))
        return real_run_ann(fold_cfg, folder)
    mp.setattr(ann_app, "run_ann", counting)
    resumed = run_ann_loso(cfg, run_dir)
    resume_calls = list(calls)
    again = run_ann_loso(cfg, run_dir)
    mp.undo()
    return tmp, cfg, partial, resumed, resume_calls, again, calls


def test_each_fold_reports_its_onnx_integer_run_healthy_and_with_a_sensor_silent(study):
    tmp, cfg, _, result, _, _, _ = study
    assert result["complete"] and result["seeds"] == [0, 1] and result["selected_on"] == "val"
    assert [(f["speaker"], f["seed"], f["val_speaker"]) for f in result["folds"]] == [
        ("lucas", 0, "nicolas"), ("nicolas", 0, "george"), ("lucas", 1, "nicolas"), ("nicolas", 1, "george")]
    assert result["int_exact"] == 1
    for fold in result["folds"]:
        saved = json.loads((tmp / "run" / fold["folder"] / "ann_result.json").read_text())
        assert fold["folder"] == f"fold-{fold['speaker']}-seed{fold['seed']}"
        assert (fold["val_acc"], fold["test_acc"], fold["int_exact"]) == (saved["val_acc"], saved["test_acc"], 1)
        assert (fold["chosen"], fold["weights"], fold["macs"]) == ("ann", saved["weights"], saved["macs"])
        assert fold["train_seconds"] == saved["train_seconds"] > 0
        assert saved["config"]["data"]["split"] == "speaker" and saved["config"]["seed"] == fold["seed"]
        assert saved["config"]["data"]["test_speakers"] == [fold["speaker"]]
        assert saved["config"]["data"]["val_speakers"] == [fold["val_speaker"]] and "loso" not in saved["config"]
        assert fold["test_samples"] == saved["test_samples"] == 20 and fold["test_rerun_equal"] == 1
        # the silent-sensor figures: the same ONNX file on the held-out speaker with that sensor all zeros
        test = build_dataset(compose_config("ann_loso", [*TINY, f"data.cache_dir={tmp / 'cache'}", "data.split=speaker",
                                                         f"data.test_speakers=[{fold['speaker']}]",
                                                         f"data.val_speakers=[{fold['val_speaker']}]"]).data, "test")
        onnx = tmp / "run" / fold["folder"] / "ann_model.onnx"
        dead_mic = ann_logits(onnx, test.vision, np.zeros_like(test.audio))
        assert fold["audio_silent_acc"] == float((dead_mic.argmax(1) == test.labels).mean())
        dead_camera = ann_logits(onnx, np.zeros_like(test.vision), test.audio)
        assert fold["vision_silent_acc"] == float((dead_camera.argmax(1) == test.labels).mean())


def test_summary_is_the_interval_over_seeds_of_the_fold_means(study):
    _, _, _, result, _, _, _ = study
    for key in SUMMARY_KEYS:
        per_seed = [np.mean([f[key] for f in result["folds"] if f["seed"] == s]) for s in (0, 1)]
        assert result["summary"][key]["per_seed"] == pytest.approx(per_seed)
        assert result["summary"][key]["mean"] == pytest.approx(np.mean(per_seed)) and result["summary"][key]["n"] == 2


def test_summary_of_known_numbers():
    folds = [{"speaker": sp, "seed": seed, "test_acc": acc, "val_acc": 1.0, "audio_silent_acc": 0.5,
              "vision_silent_acc": 0.2 + seed / 10}
             for seed, accs in ((0, (0.8, 0.9)), (1, (0.9, 1.0)), (2, (0.7, 0.8))) for sp, acc in zip(("a", "b"), accs)]
    summary = summarise(folds, [0, 1, 2], SUMMARY_KEYS)
    test = summary["test_acc"]
    half = 4.302652729911275 * 0.1 / math.sqrt(3)                   # t(0.975, 2) x std / sqrt(n)
    assert test["per_seed"] == pytest.approx([0.85, 0.95, 0.75]) and test["n"] == 3 and test["level"] == 0.95
    assert (test["mean"], test["std"]) == pytest.approx((0.85, 0.1))
    assert (test["low"], test["high"]) == pytest.approx((0.85 - half, 0.85 + half))
    assert test["fold_std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))   # speaker a: 0.8, b: 0.9 over seeds
    assert summary["vision_silent_acc"]["per_seed"] == pytest.approx([0.2, 0.3, 0.4])
    assert summary["audio_silent_acc"]["std"] == 0.0 and summary["audio_silent_acc"]["low"] == pytest.approx(0.5)
    assert set(summary) == set(SUMMARY_KEYS)                         # no SNN keys, no worst-fold entry


def test_an_interrupted_study_resumes_without_retraining_finished_folds(study):
    _, _, partial, resumed, resume_calls, again, calls = study
    assert partial["complete"] is False and [(f["speaker"], f["seed"]) for f in partial["folds"]] == [("lucas", 0)]
    assert resume_calls == [(["nicolas"], ["george"], 0, "fold-nicolas-seed0"), (["lucas"], ["nicolas"], 1, "fold-lucas-seed1"),
                            (["nicolas"], ["george"], 1, "fold-nicolas-seed1")]    # lucas seed 0 read back
    assert resumed["folds"][0] == partial["folds"][0]
    assert calls == resume_calls and again["folds"] == resumed["folds"]     # a third run trains nothing


def test_json_and_table_are_written_in_the_run_folder_and_where_loso_json_says(study):
    tmp, _, _, result, _, _, _ = study
    saved = json.loads((tmp / "run" / "ann_loso.json").read_text())
    assert saved == json.loads((tmp / "docs" / "ann_loso.json").read_text()) == json.loads(json.dumps(result))
    assert saved["summary"]["test_acc"]["level"] == 0.95 and saved["seeds"] == [0, 1]
    table = (tmp / "run" / "ann_loso.md").read_text()
    lucas = result["folds"][0]
    assert (f"| lucas | nicolas | ann | {100 * lucas['val_acc']:.2f} % | {100 * lucas['test_acc']:.2f} % | "
            f"{100 * lucas['audio_silent_acc']:.2f} % | {100 * lucas['vision_silent_acc']:.2f} % | 1 |") in table
    assert table.index("### Seed 0") < table.index("### Seed 1") < table.index("### Over seeds")
    assert "T = 6, 1 epoch, trainer.corrupt: off" in table and "Incomplete" not in table


def test_a_fold_trained_with_other_options_is_not_read_back(study, tmp_path):
    tmp, _, _, _, _, _, _ = study
    run = tmp_path / "run"
    (run / "fold-lucas-seed0").mkdir(parents=True)
    for name in ("ann_result.json", "ann_model.onnx"):
        (run / "fold-lucas-seed0" / name).write_bytes((tmp / "run" / "fold-lucas-seed0" / name).read_bytes())
    with pytest.raises(ConfigError, match=r"fold-lucas-seed0/ann_result.json was trained with other options "
                                          r"\(trainer.epochs differ\).*another hydra.run.dir"):
        run_ann_loso(study_cfg(tmp, "trainer.epochs=2"), run)


def test_the_default_size_and_the_test_digits_match_the_snn_study():
    cfg, snn = compose_config("ann_loso", []), compose_config("loso", [])
    assert cfg.sizes is None and cfg.ann.hidden == 32 and cfg.data.name == "fsdd_mnist" and list(cfg.loso.seeds) == [0, 1, 2]
    assert compose_config("ann", []).sizes.h32 == {"hidden": 32}      # the official split's val choice
    assert cfg.data.mnist_test_per_class == snn.data.mnist_test_per_class   # each fold's test pairs are the SNN's


@pytest.mark.parametrize("overrides, message", [
    (["select_on=test"], r"select_on='test': choices are made on the validation split"),
    (["loso.speakers=[bob]"], r"loso.speakers=\['bob'\]: unknown \['bob'\].*\['george', 'lucas', 'nicolas'\]"),
    (None, r"data=synth: the leave-one-speaker-out study needs data=fsdd_mnist")])
def test_bad_options_are_errors_naming_them_before_any_data_is_built(tmp_path, overrides, message):
    cfg = (study_cfg(tmp_path, *overrides) if overrides is not None
           else compose_config("ann_loso", ["data=synth", f"data.cache_dir={tmp_path / 'cache'}"]))
    with pytest.raises(ConfigError, match=message):
        run_ann_loso(cfg, tmp_path / "run")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


def test_the_app_prints_a_bad_option_as_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "edge_taaf.apps.ann_loso", "select_on=test", f"data.root={FIXTURE_ROOT}",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("edge-taaf-ann-loso: select_on='test': choices are made on")
