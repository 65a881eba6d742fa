"""The training app: metrics, plots, seeding, kill-and-resume, and failures that stop it cleanly."""
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException

from edge_taaf.checkpoint import CheckpointError, atomic_torch_save, load_checkpoint
from edge_taaf.config import ConfigError
from edge_taaf.model import TwoModalitySNN
from edge_taaf.apps.train import run_training
from edge_taaf.train import TrainingDiverged, spike_rate, to_time_major
from omegaconf import OmegaConf
from edge_taaf.dataset import PairedSpikeDataset
from sensors.datasets import build_dataset
from tests.support.configs import TINY
from tests.support.data_gating import FIXTURE_ROOT

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("edge-taaf-train")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cli_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "EDGE_TAAF_DATA": os.environ.get("EDGE_TAAF_DATA", str(FIXTURE_ROOT)),
            "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))}


def final_weights(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoint.pt")["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"weights differ in {differ}"


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_metrics_checkpoint_and_plots(tiny_train_cfg, tmp_path):
    cfg = tiny_train_cfg("trainer.epochs=2")
    last = run_training(cfg, tmp_path / "run")
    rows = read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[-1] == last
    for r in rows:
        for key in ("val_fused_acc", "val_audio_acc", "val_vision_acc"):
            assert 0.0 <= r[key] <= 1.0
        assert not any(k.startswith("test") or k in ("fused_acc", "audio_acc") for k in r)   # measured on val only
        assert 0.0 < r["lr_coef_audio"] <= 1.0 and 0.0 < r["lr_coef_vision"] <= 1.0
        att = r["val_attention_per_step"]
        assert len(att) == cfg.model.T and all(0.0 <= a <= 1.0 for a in att)
        assert sum(att) == pytest.approx(1.0, abs=1e-5)
        assert r["train_loss"] > 0 and r["lr"] > 0
    # The balanced loss slows whichever modality dominates (its window covers every epoch).
    assert min(rows[0]["lr_coef_audio"], rows[0]["lr_coef_vision"]) < 1.0
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["epoch"] == 1 and ckpt["history"] == rows
    for name in ("accuracy.png", "attention.png"):
        data = (tmp_path / "run" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_training_evaluates_on_val_and_never_builds_the_test_split(tiny_train_cfg, tmp_path, monkeypatch):
    import edge_taaf.train as train_module

    built, evaluated = [], []
    real_build, real_evaluate = train_module.build_dataset, train_module.evaluate

    def recording_build(data_cfg, split, settings=None):
        built.append(split)
        assert settings is not None           # the data config the app parsed once, not parsed again here
        return real_build(data_cfg, split, settings)

    def recording_evaluate(model, dataset, batch_size, device):
        evaluated.append(len(dataset))
        return real_evaluate(model, dataset, batch_size, device)
    monkeypatch.setattr(train_module, "build_dataset", recording_build)
    monkeypatch.setattr(train_module, "evaluate", recording_evaluate)
    cfg = tiny_train_cfg("trainer.epochs=2", "data.n_val=20", "trainer.log_epochs=false")
    last = run_training(cfg, tmp_path / "run")
    assert sorted(built) == ["train", "val"] and evaluated == [20, 20]   # val (20 samples) every epoch; no test
    val = PairedSpikeDataset(build_dataset(cfg.data, "val"))
    model = TwoModalitySNN(OmegaConf.to_container(cfg.model, resolve=True))
    model.load_state_dict(final_weights(tmp_path / "run"))
    assert last["val_fused_acc"] == real_evaluate(model, val, 256, torch.device("cpu"))["fused_acc"]


@pytest.mark.parametrize("extra", [["loss.window=[100,200]"], ["loss=ce"]])
def test_learning_rates_are_not_modulated_outside_the_window_or_without_the_balanced_loss(tiny_train_cfg, tmp_path, extra):
    run_training(tiny_train_cfg("trainer.epochs=1", *extra), tmp_path / "run")
    (row,) = read_metrics(tmp_path / "run")
    assert row["lr_coef_audio"] == 1.0 and row["lr_coef_vision"] == 1.0


def test_spike_penalty_lowers_the_firing_rate(tiny_train_cfg, tmp_path):
    """The same seeded run with and without the penalty: the penalised one fires less."""
    rates = {}
    for penalty in (0.0, 5.0):
        run = tmp_path / f"p{penalty}"
        run_training(tiny_train_cfg("trainer.epochs=2", f"trainer.spike_penalty={penalty}", "trainer.log_epochs=false"), run)
        model = TwoModalitySNN(OmegaConf.to_container(tiny_train_cfg().model, resolve=True))
        model.load_state_dict(final_weights(run))
        vision, audio, _ = PairedSpikeDataset(build_dataset(tiny_train_cfg().data, "test"))[torch.arange(30)]
        record = []
        with torch.no_grad():
            model(*to_time_major(vision, audio, torch.device("cpu")), record)
        rates[penalty] = spike_rate(record).item()
        assert ("train_spike_rate" in read_metrics(run)[-1]) == (penalty > 0)
    assert rates[5.0] < 0.7 * rates[0.0], rates


def test_a_seed_makes_a_cpu_run_reproducible(tiny_train_cfg, tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run_training(tiny_train_cfg("trainer.epochs=2", f"seed={seed}", "trainer.log_epochs=false"), tmp_path / name)
    assert_same_weights(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"))
    a, c = final_weights(tmp_path / "a"), final_weights(tmp_path / "c")
    assert not all(torch.equal(a[k], c[k]) for k in a)  # the seed matters


def test_resume_after_sigkill_reaches_the_uninterrupted_weights(tiny_train_cfg, tmp_path):
    epochs = 8
    extra = [f"trainer.epochs={epochs}", "trainer.log_epochs=false", f"data.cache_dir={tmp_path / 'cache'}"]
    run_training(tiny_train_cfg(*extra), tmp_path / "full")  # also builds the shared data cache

    killed = tmp_path / "killed"
    proc = subprocess.Popen([str(CLI), *TINY, *extra, f"hydra.run.dir={killed}"], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics, deadline = killed / "metrics.jsonl", time.time() + 90
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        assert proc.poll() is None, f"training exited early: {proc.stderr.read().decode()[-2000:]}"
        assert time.time() < deadline, "no checkpoint within 90 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    done = load_checkpoint(killed / "checkpoint.pt")["epoch"] + 1
    assert 1 <= done < epochs, "the run finished before it was killed: nothing to resume"

    resumed_epochs = []
    run_training(tiny_train_cfg(*extra, "resume=true"), killed, hooks={"epoch_end": resumed_epochs.append})
    assert resumed_epochs == list(range(done, epochs))  # continued, not restarted
    assert_same_weights(final_weights(killed), final_weights(tmp_path / "full"))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_metrics(killed)) == strip(read_metrics(tmp_path / "full"))


class Crash(Exception):
    pass


def test_resume_restores_the_ogm_ge_noise_stream(tiny_train_cfg, tmp_path):
    extra = ["loss=ogm_ge", "trainer.epochs=3", "trainer.log_epochs=false"]
    run_training(tiny_train_cfg(*extra), tmp_path / "full")

    def crash_after_first_epoch(epoch):
        if epoch == 0:
            raise Crash

    with pytest.raises(Crash):
        run_training(tiny_train_cfg(*extra), tmp_path / "crashed", hooks={"epoch_end": crash_after_first_epoch})
    run_training(tiny_train_cfg(*extra, "resume=true"), tmp_path / "crashed")
    assert_same_weights(final_weights(tmp_path / "crashed"), final_weights(tmp_path / "full"))


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tiny_train_cfg, tmp_path):
    def nan_in_epoch_2(epoch, step, loss):
        return loss * float("nan") if epoch == 1 else loss

    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"(?i)nan.*epoch 2.*checkpoint"):
        run_training(tiny_train_cfg("trainer.epochs=3"), run, hooks={"loss": nan_in_epoch_2})
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["epoch"] == 0 and len(ckpt["history"]) == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert len(read_metrics(run)) == 1


def test_corrupt_checkpoint_on_resume_is_reported_and_not_loaded(tiny_train_cfg, tmp_path):
    run = tmp_path / "run"
    run_training(tiny_train_cfg("trainer.epochs=1"), run)
    path = run / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(CheckpointError, match=f"{path}.*corrupt"):
        run_training(tiny_train_cfg("trainer.epochs=3", "resume=true"), run)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing trained, nothing overwritten


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all" * 10, "dict"])
def test_load_checkpoint_rejects_garbage_and_foreign_files(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    if content == "dict":
        torch.save({"model": {}, "epoch": 0}, path)  # readable but not one of ours
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


class _Exploit:
    """Unpickling this runs open(marker, 'w'): what weights_only=True must refuse to do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoints_load_weights_only(tiny_train_cfg, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "run" / "checkpoint.pt"
    atomic_torch_save({"model": {}, "optimizer": {}, "epoch": 0, "history": [], "config": "", "extra": _Exploit(marker)}, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        run_training(tiny_train_cfg("trainer.epochs=1", "resume=true"), tmp_path / "run")
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # the guard is torch's weights_only unpickler itself
        torch.load(path, weights_only=True)


@pytest.mark.parametrize("override,option", [
    ("model.fusion=mlp", "model.fusion"),
    ("loss.name=focal", "loss"),
    ("model.fusion=concat", "model.fusion"),  # with the default loss=taaf_balanced
    ("model.T=5", "model.T"),
    ("trainer.lr=-0.001", "trainer.lr"),
    ("trainer.epochs=0", "trainer.epochs"),
    ("trainer.spike_penalty=-1", "trainer.spike_penalty"),
    ("trainer.device=tpu", "trainer.device"),
])
def test_bad_config_fails_at_start_naming_the_option(tiny_train_cfg, tmp_path, override, option):
    cfg = tiny_train_cfg(override)
    with pytest.raises(ConfigError, match=option.replace(".", r"\.")):
        run_training(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()  # before any data or model


def test_unknown_config_group_option_names_the_group(tiny_train_cfg):
    with pytest.raises((MissingConfigException, ConfigCompositionException), match="loss/bogus"):
        tiny_train_cfg("loss=bogus")


@pytest.mark.parametrize("app, override, message", [
    ("edge-taaf-train", "trainer.lr=-1", "trainer.lr=-1.0; expected a number > 0"),        # a range: edge_taaf/config.py
    ("edge-taaf-train", "trainer.lr=abc", "full_key: trainer.lr"),             # a type: the schema, at composition
    ("edge-taaf-train", "trainer.no_such_key=1", "Key 'no_such_key' not in 'TrainerSchema'"),
    ("edge-taaf-pipeline", "data.T=0", "data.T must be >= 1, got 0"),
])
def test_console_scripts_fail_fast_on_a_bad_option_naming_it(tmp_path, app, override, message):
    """The issue's three fail-fast cases (and a range error): a one-line message on stderr naming the option, no
    traceback, and nothing built (no data cache, no stage folder)."""
    proc = subprocess.run([str(CLI.with_name(app)), *TINY, override, f"data.cache_dir={tmp_path / 'cache'}",
                           f"hydra.run.dir={tmp_path / 'run'}", f"workdir={tmp_path / 'work'}" if app == "edge-taaf-pipeline"
                           else "seed=0"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "work").exists()


def test_per_layer_rate_targets_pull_that_layer_toward_its_target(tiny_train_cfg, tmp_path):
    """trainer.rate_targets + trainer.rate_penalty: activity regularisation per layer (a target of 0 on the
    first conv lowers its firing rate against the same run without it); unknown layers are config errors."""
    def conv0_rate(*extra):
        run = tmp_path / "_".join(e.split("=")[0][-12:] for e in extra) if extra else tmp_path / "plain"
        cfg = tiny_train_cfg("trainer.epochs=6", "trainer.log_epochs=false", *extra)
        run_training(cfg, run)
        model = TwoModalitySNN(OmegaConf.to_container(cfg.model, resolve=True))
        model.load_state_dict(load_checkpoint(run / "checkpoint.pt")["model"])
        test = PairedSpikeDataset(build_dataset(cfg.data, "test"))
        vision, audio, _ = test[torch.arange(len(test))]
        record = []
        with torch.no_grad():
            model(*to_time_major(vision, audio, "cpu"), record)
        return float(record[0].mean())

    plain = conv0_rate()
    lower = conv0_rate("+trainer.rate_targets.vision.conv0=0.0", "trainer.rate_penalty=1000")
    higher = conv0_rate("+trainer.rate_targets.vision.conv0=0.5", "trainer.rate_penalty=1000")
    assert lower < 0.95 * plain < plain < 1.05 * plain < higher, (lower, plain, higher)   # pulled both ways
    with pytest.raises(ConfigError, match=r"trainer.rate_targets names layer 'vision.conv9'"):
        run_training(tiny_train_cfg("+trainer.rate_targets.vision.conv9=0.1", "trainer.rate_penalty=1"), tmp_path / "bad")
    with pytest.raises(ConfigError, match=r"trainer.rate_targets.vision.conv0=2; expected a firing rate in \[0, 1\]"):
        run_training(tiny_train_cfg("+trainer.rate_targets.vision.conv0=2", "trainer.rate_penalty=1"), tmp_path / "bad2")
