"""bench/robustness.py end to end (``python -m bench.robustness`` from the repository root, one process, one
JSON line last) on the real fixture recordings (tests/data) with a tiny exported model: every figure it reports,
their consistency, and the degradation figure."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from quant import export
from tests.support.data_gating import FIXTURE_ROOT
from tests.support.quant_models import tiny_model

ROOT = Path(__file__).resolve().parents[2]
OOD = ("hot_pixels", "dead_pixels", "dead_channels", "mains_hum_50hz", "mains_hum_60hz", "clipping", "babble_0db",
       "babble_m5db", "dvs_background_nmnist", "dvs_background_dvxplorer")
DATA = ["data.mnist_test_per_class=3", "data.mnist_val_per_class=2"]
KEYS = ("official_sim_acc", "speaker_heldout_fused", "audio_silent_acc", "vision_silent_acc", "noisy_audio_acc",
        "noisy_dvs_acc", "audio_only_acc", "vision_only_acc", "unimodal_source", "min_fused_minus_best_unimodal")


def ann_loso_study() -> dict:
    """A hand-written ann_loso.json (edge_taaf/apps/ann_loso.py's shape): 3 seeds, their fold means known."""
    from edge_taaf.intervals import interval

    per_seed = {"test_acc": [0.85, 0.95, 0.75], "audio_silent_acc": [0.5, 0.6, 0.4], "vision_silent_acc": [0.2, 0.3, 0.4]}
    return {"seeds": [0, 1, 2], "folds": [],
            "summary": {k: {**interval(v).as_dict(), "per_seed": v, "fold_std": 0.0} for k, v in per_seed.items()}}


ANN_LOSO = ann_loso_study()


def ann_run(folder: Path, cache: Path, split: str) -> Path:
    """An edge-taaf-ann run folder: a tiny competitor (a few training steps) exported to ONNX, and an
    ann_result.json naming it and its data config (the fixture data, ``split``)."""
    from quant.ann_competitor import AnnCompetitor, arch_from_dict
    from quant.ann_int import ann_program
    from quant.ann_onnx import save_ann_onnx
    from tests.support.configs import compose_config

    torch.manual_seed(0)
    arch = arch_from_dict({"vision": {"channels": [4, 4], "kernels": [5, 3], "strides": [2, 2]},
                           "audio": {"channels": [4], "kernels": [3], "strides": [2]}, "hidden": 8,
                           "weight_bits": 8, "act_bits": 8})
    model = AnnCompetitor(arch, (2, 34, 34), (8, 64), vision_max=8, audio_max=64)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for step in range(12):                      # past the activation quantizers' statistics steps
        g = torch.Generator().manual_seed(step)
        v = (torch.rand(8, 8, 2, 34, 34, generator=g) < 0.1).float()
        a = torch.randint(0, 9, (8, 8, 64), generator=g).float()
        loss = torch.nn.functional.cross_entropy(model(v, a), torch.randint(0, 10, (8,), generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    folder.mkdir(parents=True)
    save_ann_onnx(ann_program(model), folder / "ann_model.onnx")
    data = compose_config("data_app", ["data=fsdd_mnist", f"data.root={FIXTURE_ROOT}", "data.T=8", *DATA,
                                       f"data.cache_dir={cache}", f"data.split={split}"]).data
    result = {"onnx": "ann_model.onnx", "config": {"data": OmegaConf.to_container(data, resolve=True)}}
    (folder / "ann_result.json").write_text(json.dumps(result))
    return folder


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("robustness")
    export.export_onnx(tiny_model("taaf", 8, 3.0, seed=2, T=8), tmp / "m.onnx")
    loso = {"folds": [{"speaker": "lucas", "fused_acc": 0.5, "audio_only_acc": 0.7, "vision_only_acc": 0.2,
                       "fused_minus_best_unimodal": -0.2}]}
    (tmp / "loso.json").write_text(json.dumps(loso))
    (tmp / "ann_loso.json").write_text(json.dumps(ANN_LOSO))
    competitors = [ann_run(tmp / f"ann_{split}", tmp / "cache", split) for split in ("official", "speaker")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDGE_TAAF_CACHE": str(tmp / "cache")}
    env.pop("EDGE_TAAF_DATA", None)
    cmd = [sys.executable, "-m", "bench.robustness", "--onnx", str(tmp / "m.onnx"), "--data-root",
           str(FIXTURE_ROOT), "--data", *DATA, f"data.cache_dir={tmp / 'cache'}",
           "--speaker-onnx", str(tmp / "m.onnx"), "--loso", str(tmp / "loso.json"),
           "--ann-loso", str(tmp / "ann_loso.json"), "--snr", "20", "-10",
           "--dvs-multipliers", "0", "100", "--figure", str(tmp / "robustness.png"),
           "--competitor", *map(str, competitors), "--mnist-test-root", str(FIXTURE_ROOT)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)   # as a user runs it
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp, json.loads(done.stdout.strip().splitlines()[-1])


def test_last_line_holds_every_figure(bench):
    tmp, out = bench
    assert all(k in out for k in KEYS), sorted(set(KEYS) - set(out))
    for k in KEYS[:-2]:
        assert 0.0 <= out[k] <= 1.0, k
    assert out["test_samples"] == 30 and out["T"] == 8 and out["split"] == "official"
    assert out["reencoded_clean_audio_equals_data"] == 1
    assert (tmp / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_agree_with_each_other(bench):
    _, out = bench
    assert out["unimodal_source"].startswith("fused output with the other sensor silent")   # taaf: no logits_<m>
    assert out["audio_only_acc"] == out["vision_silent_acc"] and out["vision_only_acc"] == out["audio_silent_acc"]
    a, v = out["sweeps"]["audio"], out["sweeps"]["vision"]
    assert a["snr_db"] == [20.0, 0.0, -10.0] and v["multiplier"] == [0.0, 10.0, 100.0]      # 0 dB and 10x always in
    assert out["noisy_audio_acc"] == a["fused"][1] and out["noisy_dvs_acc"] == v["fused"][1]
    assert v["fused"][0] == out["official_sim_acc"] and v["vision_only"][0] == out["vision_only_acc"]   # x0 = clean
    assert set(a["vision_only"]) == {out["vision_only_acc"]} and set(v["audio_only"]) == {out["audio_only_acc"]}
    gaps = out["fused_minus_best_unimodal"]
    assert gaps["official"] == pytest.approx(out["official_sim_acc"] - max(out["audio_only_acc"], out["vision_only_acc"]))
    assert set(gaps) == {"official", "speaker", "loso.lucas"} and gaps["loso.lucas"] == -0.2
    assert out["min_fused_minus_best_unimodal"] == min(gaps.values())
    assert out["loso_fused_mean"] == 0.5                                    # the one fold's fused accuracy
    assert out["loso_seeds"] == 1 and out["loso_fused_ci95_low"] == 0.5      # a single-seed file: no spread
    assert out["speaker_split"]["test_speakers"] == ["lucas", "george"] and out["speaker_split"]["samples"] == 40
    assert out["speaker_heldout_fused"] == out["speaker_split"]["fused_acc"]


def test_unseen_failures_are_reported_apart_one_key_each(bench):
    _, out = bench
    failures = out["ood"]["failures"]
    assert list(failures) == list(OOD)
    for name in OOD:
        assert out[f"ood_{name}"] == failures[name]["fused_acc"] and 0.0 <= out[f"ood_{name}"] <= 1.0
        assert failures[name]["audio_only_acc"] is None                     # taaf: no per-modality outputs
    assert failures["dead_channels"]["sensor"] == "audio" and failures["hot_pixels"]["sensor"] == "vision"
    assert not any(k.startswith("ood_") for k in out["sweeps"])             # in-distribution sweeps stay apart


def test_writer_and_competitor_keys(bench):
    _, out = bench
    assert 0.0 <= out["writer_disjoint_vision_acc"] <= 1.0 and 0.0 <= out["writer_disjoint_fused_acc"] <= 1.0
    assert out["writer_disjoint_source"].startswith("mnist_test: MNIST t10k, writers disjoint from training")
    assert out["writer_disjoint_source"].endswith("(30 pairs)")             # the official test clips, t10k digits
    for key in ("ann_official_acc", "ann_audio_silent_acc", "ann_vision_silent_acc", "ann_speaker_heldout",
                "ann_noisy_audio_acc", "ann_noisy_dvs_acc", *(f"ann_ood_{name}" for name in OOD), "ann_writer_disjoint_acc"):
        assert 0.0 <= out[key] <= 1.0, key                                  # the competitor under the same failures
    assert out["notes"]["competitor_speaker"].endswith("40 test pairs")     # lucas + george: 40 clips


def test_loso_summary_reads_multi_seed_and_single_seed_studies():
    from edge_taaf.apps.robustness import loso_summary
    from edge_taaf.intervals import interval

    per_seed = [0.97, 0.975, 0.98]
    iv = interval(per_seed).as_dict()
    multi = {"seeds": [0, 1, 2], "folds": [], "summary": {"fused_acc": {**iv, "per_seed": per_seed}}}
    got = loso_summary(multi)
    assert got == {"loso_fused_mean": iv["mean"], "loso_fused_ci95_low": iv["low"], "loso_fused_ci95_high": iv["high"],
                   "loso_seeds": 3} and got["loso_fused_ci95_low"] < got["loso_fused_mean"]
    old = {"folds": [{"fused_acc": 0.96}, {"fused_acc": 0.98}], "summary": {"fused_acc": {"mean": 0.97, "std": 0.01}}}
    assert loso_summary(old) == {"loso_fused_mean": 0.97, "loso_fused_ci95_low": 0.97, "loso_fused_ci95_high": 0.97,
                                 "loso_seeds": 1}
    with pytest.raises(ValueError, match="summary.fused_acc lacks mean / low / high"):
        loso_summary({"seeds": [0], "summary": {"fused_acc": {"mean": 0.9}}})


def test_ann_loso_keys_come_from_the_study_summary(bench):
    _, out = bench
    test = ANN_LOSO["summary"]["test_acc"]
    assert (out["ann_loso_mean"], out["ann_loso_ci95_low"], out["ann_loso_ci95_high"]) == (test["mean"], test["low"],
                                                                                           test["high"])
    assert out["ann_loso_mean"] == pytest.approx(0.85) and out["ann_loso_ci95_low"] < 0.85 < out["ann_loso_ci95_high"]
    assert out["ann_loso_seeds"] == 3
    assert out["ann_loso_audio_silent_mean"] == pytest.approx(0.5) and out["ann_loso_vision_silent_mean"] == pytest.approx(0.3)
    assert out["notes"]["ann_loso"].endswith("mean over 3 seeds of each seed's fold mean")


def test_ann_loso_keys_are_null_with_a_note_without_the_option(tmp_path):
    from bench.robustness import ANN_LOSO_KEYS, ann_loso_section

    keys, notes = ann_loso_section(None)
    assert keys == dict.fromkeys(ANN_LOSO_KEYS) and len(ANN_LOSO_KEYS) == 6
    assert notes == {"ann_loso": "null: no --ann-loso ann_loso.json (edge-taaf-ann-loso's output) was given"}
    broken = tmp_path / "ann_loso.json"
    broken.write_text(json.dumps({**ANN_LOSO, "summary": {"test_acc": ANN_LOSO["summary"]["test_acc"]}}))
    with pytest.raises(SystemExit, match=r"--ann-loso .*ann_loso.json: ann_loso.json: has 'seeds' but "
                                         r"summary.audio_silent_acc lacks mean / low / high"):
        ann_loso_section(str(broken))
