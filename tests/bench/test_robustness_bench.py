"""bench/robustness.py end to end (one process, one JSON line last) on the real fixture recordings (tests/data)
with a tiny exported model: every figure it reports, their consistency, and the degradation figure."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quant import export
from tests.support.data_gating import FIXTURE_ROOT
from tests.support.quant_models import tiny_model

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("official_sim_acc", "speaker_heldout_fused", "audio_silent_acc", "vision_silent_acc", "noisy_audio_acc",
        "noisy_dvs_acc", "audio_only_acc", "vision_only_acc", "unimodal_source", "min_fused_minus_best_unimodal")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("robustness")
    export.export_onnx(tiny_model("taaf", 8, 3.0, seed=2, T=8), tmp / "m.onnx")
    loso = {"folds": [{"speaker": "lucas", "fused_acc": 0.5, "audio_only_acc": 0.7, "vision_only_acc": 0.2,
                       "fused_minus_best_unimodal": -0.2}]}
    (tmp / "loso.json").write_text(json.dumps(loso))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDGE_TAAF_CACHE": str(tmp / "cache")}
    env.pop("EDGE_TAAF_DATA", None)
    cmd = [sys.executable, str(ROOT / "bench" / "robustness.py"), "--onnx", str(tmp / "m.onnx"), "--data-root",
           str(FIXTURE_ROOT), "--data", "data.mnist_test_per_class=3", f"data.cache_dir={tmp / 'cache'}",
           "--speaker-onnx", str(tmp / "m.onnx"), "--loso", str(tmp / "loso.json"), "--snr", "20", "-10",
           "--dvs-multipliers", "0", "100", "--figure", str(tmp / "robustness.png")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=tmp)
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
    assert out["speaker_split"]["test_speakers"] == ["lucas", "george"] and out["speaker_split"]["samples"] == 40
    assert out["speaker_heldout_fused"] == out["speaker_split"]["fused_acc"]
