"""edge-taaf-ann: sizes chosen on val only, the chosen size read on test once through its integer run in
onnxruntime (equal to the integer reference), the robust recipe's corruptions on its inputs, the JSON's
fields; bad options are errors naming them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import edge_taaf.apps.ann as ann_app
from edge_taaf import CONFIG_DIR
from edge_taaf.apps.ann import ONNX_FILE, RESULT, choose_size, run_ann
from edge_taaf.config import ConfigError
from quant.ann_onnx import ann_logits
from sensors.datasets import build_dataset
from tests.support.configs import compose_config

ROOT = Path(__file__).resolve().parents[2]
TINY_ANN = ["data=synth", "data.n_train=48", "data.n_test=20", "data.n_val=24", "data.T=6", "ann.vision.channels=[2,4]",
            "ann.vision.kernels=[5,3]", "ann.vision.strides=[2,2]", "ann.audio.channels=[2]", "ann.audio.kernels=[3]",
            "ann.audio.strides=[2]", "ann.hidden=8", "trainer.epochs=1", "trainer.batch_size=16", "trainer.warmup_steps=1",
            "trainer.progress=false"]
ONE_SIZE = [*TINY_ANN, "sizes=null"]
TWO_SIZES = [*TINY_ANN, "~sizes", "+sizes={small:{hidden:4},big:{hidden:16}}"]
HARDWARE = sorted(p.stem for p in (Path(CONFIG_DIR) / "hardware").glob("*.yaml"))


def ann_cfg(tmp_path, base, *extra):
    return compose_config("ann", [*base, f"data.cache_dir={tmp_path / 'cache'}", *extra])


def test_tiny_run_writes_the_result(tmp_path):
    run_dir = tmp_path / "run"
    cfg = ann_cfg(tmp_path, ONE_SIZE)
    returned = run_ann(cfg, run_dir)
    result = json.loads((run_dir / RESULT).read_text())
    assert result == json.loads(json.dumps(returned))
    assert not list(run_dir.glob(f".{RESULT}.*"))                       # the atomic write left no temp file
    assert result["data"] == "synth" and result["synthetic"] is True
    assert (result["test_samples"], result["val_samples"]) == (20, 24)
    assert result["selected_on"] == "val" and result["chosen"] == "ann" and list(result["sizes"]) == ["ann"]
    # the accuracy is the integer run's: onnxruntime on the exported file, equal to the integer reference
    assert result["int_exact"] == 1 and result["int_differing_samples"] == 0
    test = build_dataset(cfg.data, "test")
    logits = ann_logits(run_dir / ONNX_FILE, test.vision, test.audio)
    assert result["accuracy"] == result["test_acc"] == float((logits.argmax(1) == test.labels).mean())
    val = build_dataset(cfg.data, "val")
    val_logits = ann_logits(run_dir / "sizes" / "ann.onnx", val.vision, val.audio)
    assert result["val_acc"] == result["sizes"]["ann"]["val_acc"] == float((val_logits.argmax(1) == val.labels).mean())
    layers = result["layers"]
    assert [s["name"] for s in layers] == ["vision.conv0", "vision.conv1", "audio.conv0", "fusion.hidden",
                                           "fusion.classifier"]
    # vision (2,34,34) -> (2,17,17) -> (4,9,9); audio (1,6,64) -> (2,3,32); hidden 8; 10 classes
    assert result["weights"] == sum(s["weights"] for s in layers) == 2 * 2 * 25 + 4 * 2 * 9 + 2 * 9 + (4 * 9 * 9 + 2 * 3 * 32) * 8 + 80
    assert result["macs"] == sum(s["macs"] for s in layers)
    assert 0 < result["nonzero_macs"] <= result["macs"]
    assert result["input_bits"] == {"vision": 3, "audio": 1}              # counts 0..6 (T x clip), 0..1 (clip_audio)
    assert set(result["energy"]) == set(result["energy_uj"]) == set(result["dominant"]) == set(HARDWARE)
    for name, e in result["energy"].items():
        for variant in ("dense", "zero_skip"):
            p = e[variant]
            assert p["energy_uj"] == pytest.approx(p["compute_uj"] + p["memory_uj"] + p["static_uj"])
            assert p["dominant"] in ("compute", "memory", "static") and p["latency_us"] > 0
            assert set(p["by_layer"]) == {s["name"] for s in layers}
            assert result["energy_uj"][name][variant] == p["energy_uj"]
            assert result["dominant"][name][variant] == p["dominant"]
        assert 0 < e["zero_skip"]["energy_uj"] <= e["dense"]["energy_uj"]
    assert result["config"]["ann"]["hidden"] == 8 and result["config"]["seed"] == 0
    assert result["ignored_options"] == {} and result["corrupt"]["silence_prob"] == 0
    assert len(result["history"]) == 1 and set(result["history"][0]) >= {"val_acc", "train_loss"}
    assert not any("test" in key for row in result["history"] for key in row)
    assert (run_dir / "ann_model.pt").stat().st_size > 0
    # bench/sim.py --competitor reads how it was measured from this JSON
    from bench.sim import competitor_measured
    assert competitor_measured(run_dir / RESULT, result) == {
        "ann_competitor_int_exact": 1, "ann_competitor_selected_on": "val", "ann_competitor_acc": result["accuracy"],
        "ann_competitor_val_acc": result["val_acc"], "ann_competitor_size": "ann"}
    older = {k: v for k, v in result.items() if k != "int_exact"}
    with pytest.raises(SystemExit, match=r"--competitor .*ann_result\.json: no 'int_exact'.*rerun edge-taaf-ann"):
        competitor_measured(run_dir / RESULT, older)


def test_choose_size_takes_the_cheapest_within_tolerance_of_the_best_val():
    macs = {"a": 100, "b": 300, "c": 200}
    assert choose_size({"a": 0.90, "b": 0.95, "c": 0.93}, macs) == "b"
    assert choose_size({"a": 0.90, "b": 0.95, "c": 0.95}, macs) == "c"             # a tie goes to fewer MACs
    assert choose_size({"a": 0.90, "b": 0.95, "c": 0.93}, macs, tolerance=0.02) == "c"
    assert choose_size({"a": 0.90, "b": 0.95, "c": 0.93}, macs, tolerance=0.05) == "a"


@pytest.fixture
def fake_scores(monkeypatch):
    """install(val, test): the integer run's accuracy replaced by fake scores per size and split (its logits
    stay real); records the splits built and every (split, file, samples) scored."""
    seen = {"splits": [], "runs": []}
    real_acc, real_data = ann_app.integer_accuracy, ann_app.model_data

    def data(cfg, split, modalities, settings):
        seen["splits"].append(split)
        return real_data(cfg, split, modalities, settings)

    def install(val: dict, test: dict):
        def scored(runner, data, batch_size):
            _, logits = real_acc(runner, data, batch_size)
            path = runner.path
            split = "val" if len(data.labels) == 24 else "test"
            seen["runs"].append((split, path.relative_to(path.parents[1] if split == "val" else path.parent).as_posix()))
            if split == "val":
                return val[path.stem], logits
            same = [p.stem for p in (path.parent / "sizes").glob("*.onnx") if p.read_bytes() == path.read_bytes()]
            return test[same[0]], logits
        monkeypatch.setattr(ann_app, "model_data", data)
        monkeypatch.setattr(ann_app, "integer_accuracy", scored)
        return seen
    return install


def test_the_size_is_chosen_on_val_and_test_is_read_once_for_it(tmp_path, fake_scores):
    """Fake scores where the val-best size is the test-worst: the choice follows val; the test split is built
    once, after the choice, and only the chosen size's file meets it."""
    seen = fake_scores(val={"small": 0.40, "big": 0.70}, test={"small": 0.95, "big": 0.10})
    result = run_ann(ann_cfg(tmp_path, TWO_SIZES), tmp_path / "run")
    assert result["chosen"] == "big" and result["selected_on"] == "val"
    assert result["sizes"]["small"]["macs"] < result["sizes"]["big"]["macs"]
    assert {n: s["val_acc"] for n, s in result["sizes"].items()} == {"small": 0.40, "big": 0.70}
    assert all(set(s) == {"val_acc", "weights", "macs", "train_seconds", "arch"} for s in result["sizes"].values())
    assert result["accuracy"] == 0.10 and result["val_acc"] == 0.70
    assert seen["splits"] == ["train", "val", "test"]
    assert seen["runs"] == [("val", "sizes/small.onnx"), ("val", "sizes/big.onnx"), ("test", ONNX_FILE)]
    assert result["int_exact"] == 1
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["size"] for r in rows] == ["small", "big"]


def test_a_tolerance_picks_the_cheaper_size(tmp_path, fake_scores):
    fake_scores(val={"small": 0.65, "big": 0.70}, test={"small": 0.5, "big": 0.5})
    result = run_ann(ann_cfg(tmp_path, TWO_SIZES, "select_tolerance=0.1"), tmp_path / "run")
    assert result["chosen"] == "small" and result["select_tolerance"] == 0.1


def test_the_robust_recipe_corrupts_the_competitors_inputs(tmp_path, monkeypatch):
    calls, hit = [], {"silence": 0, "noise": 0, "shift": 0}
    real = ann_app.corrupt_batch

    def spy(vision, audio, settings, clips, generator, labels=None):
        calls.append(settings)
        v, a, applied = real(vision, audio, settings, clips, generator, labels)
        for kind in hit:
            hit[kind] += int(applied[f"{kind}.audio"].sum() + applied[f"{kind}.vision"].sum())
        return v, a, applied
    monkeypatch.setattr(ann_app, "corrupt_batch", spy)
    # the recipe's trainer.corrupt (configs/experiment/robust.yaml) on the synthetic set, which takes no
    # data.augment (the recipe's waveform and digit augmentation): the schema refuses the recipe itself there
    recipe = OmegaConf.load(Path(CONFIG_DIR) / "experiment" / "robust.yaml").trainer.corrupt
    corrupt = [f"+trainer.corrupt.{k}={list(v) if OmegaConf.is_list(v) else v}".replace(" ", "") for k, v in recipe.items()]
    result = run_ann(ann_cfg(tmp_path, [*ONE_SIZE, *corrupt]), tmp_path / "run")
    assert len(calls) == 3 and calls[0].silence_prob == 0.3 and calls[0].noise_prob == 0.2 and calls[0].shift_prob == 0.2
    assert all(n > 0 for n in hit.values()), hit                   # 48 samples: each corruption happened
    assert result["corrupt"]["silence_prob"] == 0.3 and result["corrupt"]["vision_noise"] == [0.5, 8]
    assert result["int_exact"] == 1


def test_the_robust_recipe_on_real_recordings_with_one_held_out_speaker(tmp_path, fixture_data_root):
    """+experiment=robust on fsdd_mnist (the fixture recordings: speakers george, lucas, nicolas), speaker split
    with lucas alone held out: augmented train copies, T and corruptions of the recipe, val on nicolas."""
    real = ["+experiment=robust", f"data.root={fixture_data_root}", "data.split=speaker", "data.test_speakers=[lucas]",
            "data.val_speakers=[nicolas]", "data.T=8", "data.mnist_test_per_class=3", "data.mnist_val_per_class=2",
            "data.augment.copies=1", *ONE_SIZE[ONE_SIZE.index("ann.vision.channels=[2,4]"):]]
    cfg = ann_cfg(tmp_path, real)
    result = run_ann(cfg, tmp_path / "run")
    assert result["data"] == "fsdd_mnist" and result["split"] == "speaker" and result["synthetic"] is False
    assert result["config"]["data"]["test_speakers"] == ["lucas"] and result["config"]["data"]["augment"]["enabled"]
    assert set(result["ignored_options"]) == {"model", "loss", "float_epochs", "qat_epochs", "trainer.modal_balance"}
    assert "attention" in result["ignored_options"]["trainer.modal_balance"]
    assert (result["test_samples"], result["val_samples"]) == (20, 20)             # 10 digits x 2 takes each
    assert result["int_exact"] == 1 and result["selected_on"] == "val"
    assert result["corrupt"]["silence_prob"] == 0.3 and result["input_bits"] == {"vision": 4, "audio": 4}  # 0..8, 0..8
    test = build_dataset(cfg.data, "test")
    logits = ann_logits(tmp_path / "run" / ONNX_FILE, test.vision, test.audio)
    assert result["accuracy"] == float((logits.argmax(1) == test.labels).mean())


@pytest.mark.parametrize("option, message", [
    ("ann.vision.channels=[4,0]", r"ann\.vision\.channels=\[4, 0\]"),
    ("ann.hidden=-3", r"ann\.hidden=-3"),
    ("trainer.epochs=0", r"trainer\.epochs=0"),
    ("trainer.lr=-1", r"trainer\.lr=-1"),
    ("select_on=test", r"select_on='test'"),
    ("select_tolerance=2", r"select_tolerance=2"),
    ("+trainer.corrupt.silence_prob=1.5", r"trainer\.corrupt\.silence_prob=1\.5"),
])
def test_bad_options_are_errors_naming_them(tmp_path, option, message):
    with pytest.raises(ConfigError, match=message):
        run_ann(ann_cfg(tmp_path, ONE_SIZE, option), tmp_path / "run")
    assert not (tmp_path / "run" / RESULT).exists()


def test_a_bad_size_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"sizes\.big: ann\.hidden=-2"):
        run_ann(ann_cfg(tmp_path, TINY_ANN, "~sizes", "+sizes={small:{},big:{hidden:-2}}"), tmp_path / "run")
    with pytest.raises(ConfigError, match=r"sizes\.big\.depth is unknown"):
        run_ann(ann_cfg(tmp_path, TINY_ANN, "~sizes", "+sizes={big:{depth:2}}"), tmp_path / "run")


def test_cli_reports_a_bad_option(tmp_path):
    cmd = [sys.executable, "-m", "edge_taaf.apps.ann", *ONE_SIZE, "ann.audio.strides=[2,2]",
           f"hydra.run.dir={tmp_path / 'run'}"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "edge-taaf-ann: ann.audio: channels, kernels and strides need one entry per layer" in out.stderr
