"""The nested leave-one-speaker-out study (edge_taaf/apps/loso.py) end to end on the real fixture recordings
(tests/data: speakers george, lucas, nicolas) with a tiny model and one float + one QAT epoch, 2 folds x 2 seeds:
per-fold validation and fused / audio-only / vision-only simulator accuracy, the summary over seeds (intervals),
the JSON and the markdown tables, the speakers really held out, resuming after an interruption without
retraining; and the per-modality accuracies it reads (edge_taaf/apps/robustness.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import edge_taaf.apps.loso as loso
import edge_taaf.apps.pipeline as pipeline
import edge_taaf.apps.robustness as robustness
from edge_taaf.apps.loso import fold_config, run_loso, val_speaker
from edge_taaf.intervals import interval
from edge_taaf.apps.robustness import FROM_OUTPUTS, FROM_SILENCE, modality_accuracies
from edge_taaf.config import ConfigError
from sensors.datasets import fsdd_files, fsdd_split
from tests.support.configs import TINY, compose_config
from tests.support.data_gating import FIXTURE_ROOT

TINY_MODEL = [o for o in TINY if o.startswith(("model.", "trainer="))]


def loso_cfg(tmp_path, *extra):
    return compose_config("loso", [f"data.root={FIXTURE_ROOT}", "data.T=6", "data.mnist_test_per_class=3",
                                   "data.mnist_val_per_class=2", "loso.seeds=[0,1]",
                                   *TINY_MODEL, "float_epochs=1", "qat_epochs=1", "trainer.batch_size=16",
                                   "trainer.progress=false", "trainer.log_epochs=false", f"workdir={tmp_path / 'work'}",
                                   f"data.cache_dir={tmp_path / 'cache'}", "loso.speakers=[lucas,nicolas]",
                                   f"loso.markdown={tmp_path / 'docs' / 'loso.md'}", *extra])


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A study killed in its second fold (nicolas, seed 0), then resumed (counting the trainings), then run a third time."""
    tmp = tmp_path_factory.mktemp("loso")
    cfg = loso_cfg(tmp)
    mp = pytest.MonkeyPatch()
    real_run_pipeline = loso.run_pipeline

    def dies_on_nicolas(fold_cfg, run_dir):
        if list(fold_cfg.data.test_speakers) == ["nicolas"] and fold_cfg.seed == 0:
            raise Interrupted
        return real_run_pipeline(fold_cfg, run_dir)
    mp.setattr(loso, "run_pipeline", dies_on_nicolas)
    with pytest.raises(Interrupted):
        run_loso(cfg, tmp / "run1")
    partial = json.loads((tmp / "run1" / "loso.json").read_text())
    partial_md = (tmp / "docs" / "loso.md").read_text()
    mp.undo()

    trainings, measured = [], []
    real_training, real_measure = pipeline.train_model, loso.modality_accuracies

    def counting(scfg, folder, options):
        trainings.append((list(scfg.data.test_speakers), list(scfg.data.val_speakers), scfg.seed, scfg.quant.weight_bits))
        return real_training(scfg, folder, options)

    def measuring(*args, **kwargs):
        measured.append(1)
        return real_measure(*args, **kwargs)
    mp.setattr(pipeline, "train_model", counting)
    mp.setattr(loso, "modality_accuracies", measuring)
    resumed = run_loso(cfg, tmp / "run2")
    counts = (list(trainings), len(measured))
    again = run_loso(cfg, tmp / "run3")
    mp.undo()
    return tmp, cfg, partial, partial_md, resumed, counts, again, (list(trainings), len(measured))


def test_each_fold_reports_val_fused_and_unimodal_simulator_accuracy(study):
    tmp, cfg, _, _, result, _, _, _ = study
    assert result["complete"] and result["seeds"] == [0, 1] and result["selected_on"] == "val"
    assert [(f["speaker"], f["seed"], f["val_speaker"]) for f in result["folds"]] == [
        ("lucas", 0, "nicolas"), ("nicolas", 0, "george"), ("lucas", 1, "nicolas"), ("nicolas", 1, "george")]
    assert result["unimodal_source"] == FROM_SILENCE                # taaf has no per-modality outputs
    for fold in result["folds"]:
        assert fold["test_samples"] == 20 and fold["val_samples"] == 20   # the fixture's 20 clips of each speaker
        for key in ("val_acc", "fused_acc", "audio_only_acc", "vision_only_acc", "audio_silent_acc", "vision_silent_acc"):
            assert 0.0 <= fold[key] <= 1.0, key
        assert fold["val_acc"] == fold["pipeline"]["val_acc"]
        assert fold["fused_acc"] == fold["pipeline"]["sim_acc"]         # the same simulator, the same test pairs
        assert fold["pipeline"]["sim_equals_int_mode"] == 1 and fold["pipeline"]["onnx_ort_exact"] == 1
        assert fold["audio_only_acc"] == fold["vision_silent_acc"] and fold["vision_only_acc"] == fold["audio_silent_acc"]
        assert fold["best_unimodal_acc"] == max(fold["audio_only_acc"], fold["vision_only_acc"])
        assert fold["fused_minus_best_unimodal"] == pytest.approx(fold["fused_acc"] - fold["best_unimodal_acc"])
    assert len({f["onnx"] for f in result["folds"]}) == 4               # one model per fold and seed


def test_summary_is_the_interval_over_seeds_of_the_fold_means(study):
    _, _, _, _, result, _, _, _ = study
    summary, folds = result["summary"], result["folds"]
    for key in ("fused_acc", "val_acc", "vision_only_acc"):
        per_seed = [np.mean([f[key] for f in folds if f["seed"] == s]) for s in (0, 1)]
        expected = interval(per_seed).as_dict()
        assert summary[key]["per_seed"] == pytest.approx(per_seed)
        assert {k: summary[key][k] for k in expected} == pytest.approx(expected) and summary[key]["n"] == 2
        by_speaker = [np.mean([f[key] for f in folds if f["speaker"] == sp]) for sp in ("lucas", "nicolas")]
        assert summary[key]["fold_std"] == pytest.approx(np.std(by_speaker, ddof=1))
    worst = min(folds, key=lambda f: f["fused_minus_best_unimodal"])
    assert summary["min_fused_minus_best_unimodal"] == worst["fused_minus_best_unimodal"]
    assert (summary["worst_fold"], summary["worst_seed"]) == (worst["speaker"], worst["seed"])


def test_json_and_markdown_tables_are_written(study):
    tmp, cfg, _, _, result, _, _, _ = study
    saved = json.loads((tmp / "run2" / "loso.json").read_text())
    assert saved["folds"] == json.loads(json.dumps(result["folds"])) and saved["complete"] is True
    assert saved["seeds"] == [0, 1] and saved["summary"]["fused_acc"]["level"] == 0.95
    table = (tmp / "docs" / "loso.md").read_text()
    assert table == (tmp / "run2" / "loso.md").read_text() or table == (tmp / "run3" / "loso.md").read_text()
    assert table.index("### Seed 0") < table.index("### Seed 1") < table.index("### Over seeds")
    lucas = result["folds"][0]
    assert (f"| lucas | nicolas | {100 * lucas['val_acc']:.2f} % | 20 | {100 * lucas['fused_acc']:.2f} % | "
            f"{100 * lucas['audio_only_acc']:.2f} % |") in table
    assert "| nicolas | george |" in table and "mean over 2 folds" in table and "Incomplete" not in table
    fused = result["summary"]["fused_acc"]
    assert f"| test: fused | {100 * fused['mean']:.2f} ± {100 * fused['std']:.2f} % (95 % CI " in table
    assert "float training (1 epoch), QAT int8 (1 epoch)" in table and "trainer.corrupt): off" in table
    assert "(lambda_unimodal=0.5, window=[0, 1000], step_ce=1.0, fused_ce=0.0, label_smoothing=0.0)" in table
    channels = list(cfg.model.vision.channels)
    assert saved["settings"]["vision_channels"] == channels and f"vision convolutions {channels}, " in table


def test_the_held_out_and_validation_speakers_are_out_of_training(study):
    _, cfg, _, _, _, _, _, _ = study
    files = fsdd_files(FIXTURE_ROOT)
    assert [val_speaker(s, ["george", "lucas", "nicolas"]) for s in ("george", "lucas", "nicolas")] == [
        "lucas", "nicolas", "george"]                                  # the next in sorted order, cyclically
    for speaker, validation in (("lucas", "nicolas"), ("nicolas", "george")):
        fold = fold_config(cfg, speaker, 1, validation)
        assert fold.data.split == "speaker" and list(fold.data.test_speakers) == [speaker] and "loso" not in fold
        assert list(fold.data.val_speakers) == [validation] and fold.seed == 1
        who = {split: {s for _, s, _, _ in fsdd_split(files, split, "speaker", [speaker], [validation])}
               for split in ("train", "val", "test")}
        assert who["test"] == {speaker} and who["val"] == {validation} and len(who["train"]) == 1
        assert not who["train"] & (who["test"] | who["val"])


def test_an_interrupted_study_resumes_without_redoing_finished_work(study):
    _, _, partial, partial_md, resumed, counts, again, counts_after = study
    assert partial["complete"] is False and [(f["speaker"], f["seed"]) for f in partial["folds"]] == [("lucas", 0)]
    assert "Incomplete: 1 of 4 folds done" in partial_md
    trainings, measured = counts
    assert trainings == [(["nicolas"], ["george"], 0, None), (["nicolas"], ["george"], 0, 8),   # lucas seed 0 cached
                         (["lucas"], ["nicolas"], 1, None), (["lucas"], ["nicolas"], 1, 8),
                         (["nicolas"], ["george"], 1, None), (["nicolas"], ["george"], 1, 8)]
    assert measured == 3                                               # and so was lucas's seed-0 measurement
    assert resumed["folds"][0] == partial["folds"][0]
    assert counts_after == counts                                      # a third run redoes nothing
    assert again["folds"] == resumed["folds"]


def test_config_errors_name_the_option(tmp_path):
    with pytest.raises(ConfigError, match=r"loso.speakers=\['bob'\]: unknown \['bob'\].*\['george', 'lucas', 'nicolas'\]"):
        run_loso(loso_cfg(tmp_path, "loso.speakers=[bob]"), tmp_path / "r")
    with pytest.raises(ConfigError, match="data=synth: the leave-one-speaker-out study needs data=fsdd_mnist"):
        run_loso(compose_config("loso", ["data=synth", f"workdir={tmp_path / 'work'}"]), tmp_path / "r")
    with pytest.raises(ConfigError, match=r"loso.seeds=\[0, 0\]; expected a non-empty list of distinct integer seeds"):
        run_loso(loso_cfg(tmp_path, "loso.seeds=[0,0]"), tmp_path / "r")
    with pytest.raises(ConfigError, match=r"select_on='test': choices are made on the validation split"):
        run_loso(loso_cfg(tmp_path, "select_on=test"), tmp_path / "r")
    assert not (tmp_path / "work").exists() and not (tmp_path / "cache").exists()   # nothing built or trained


# ---------------------------------------------------------------- per-modality accuracies (robustness.py)

class FakeResult:
    def __init__(self, out):
        self.out = out

    def outputs(self):
        return self.out


class FakeRunner:
    """Stands in for firmware_sim.run.Runner. With a, v each sample's audio and vision sums: logits [v, a]
    (class 1 when a > v); per-modality outputs (when ``heads``) [1, a] (class 1 when a > 1) and [0, v]."""

    def __init__(self, heads):
        self.heads, self.calls = heads, []

    def __call__(self, inputs):
        a, v = (inputs[m].sum(axis=(0, 2)) for m in ("audio", "vision"))      # time-major (T, B, C) -> (B,)
        self.calls.append((len(a), int(a.sum()), int(v.sum())))
        out = {"logits": np.stack([v, a], axis=1), "spikes.x": np.zeros((1, len(a)))}
        if self.heads:
            out |= {"logits_audio": np.stack([np.ones_like(a), a], axis=1), "logits_vision": np.stack([0 * v, v], axis=1)}
        return FakeResult(out)


class FakeProgram:
    inputs = {"audio": ((4,), 8), "vision": ((3,), 1)}


@pytest.mark.parametrize("heads", [False, True])
def test_unimodal_accuracy_from_outputs_when_present_else_from_silence(monkeypatch, heads):
    runner = FakeRunner(heads)
    monkeypatch.setattr(robustness, "Runner", lambda program: runner)
    rng = np.random.default_rng(0)
    n = 10
    inputs = {"audio": rng.integers(0, 3, (n, 5, 4)), "vision": rng.integers(0, 2, (n, 5, 3))}
    labels = rng.integers(0, 2, n)
    a, v = inputs["audio"].sum(axis=(1, 2)), inputs["vision"].sum(axis=(1, 2))
    acc = lambda pred: float((pred == labels).mean())  # noqa: E731
    out = modality_accuracies(FakeProgram(), inputs, labels, batch_size=3)
    assert out["fused_acc"] == acc((a > v).astype(int))
    assert out["audio_silent_acc"] == acc(np.zeros(n)) and out["vision_silent_acc"] == acc((a > 0).astype(int))
    if heads:
        assert out["unimodal_source"] == FROM_OUTPUTS
        assert out["audio_only_acc"] == acc((a > 1).astype(int)) and out["vision_only_acc"] == acc((v > 0).astype(int))
    else:
        assert out["unimodal_source"] == FROM_SILENCE
        assert out["audio_only_acc"] == out["vision_silent_acc"] and out["vision_only_acc"] == out["audio_silent_acc"]
    assert out["fused_minus_best_unimodal"] == out["fused_acc"] - max(out["audio_only_acc"], out["vision_only_acc"])
    assert [c[0] for c in runner.calls] == [3, 3, 3, 1] * 3              # clean, audio silent, vision silent
    assert all(c[1] == 0 for c in runner.calls[4:8]) and all(c[2] == 0 for c in runner.calls[8:])
