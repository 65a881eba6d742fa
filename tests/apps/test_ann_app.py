"""edge-taaf-ann: a tiny run on synth writes ann_result.json with every field; bad options are errors naming them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_taaf import CONFIG_DIR
from edge_taaf.apps.ann import RESULT, run_ann
from edge_taaf.config import ConfigError
from tests.support.configs import compose_config

ROOT = Path(__file__).resolve().parents[2]
TINY_ANN = ["data=synth", "data.n_train=48", "data.n_test=20", "data.T=6", "ann.vision.channels=[2,4]",
            "ann.vision.kernels=[5,3]", "ann.vision.strides=[2,2]", "ann.audio.channels=[2]", "ann.audio.kernels=[3]",
            "ann.audio.strides=[2]", "ann.hidden=8", "trainer.epochs=1", "trainer.batch_size=16", "trainer.warmup_steps=1",
            "trainer.progress=false"]
HARDWARE = sorted(p.stem for p in (Path(CONFIG_DIR) / "hardware").glob("*.yaml"))


def ann_cfg(tmp_path, *extra):
    return compose_config("ann", [*TINY_ANN, f"data.cache_dir={tmp_path / 'cache'}", *extra])


def test_tiny_run_writes_the_result(tmp_path):
    run_dir = tmp_path / "run"
    returned = run_ann(ann_cfg(tmp_path), run_dir)
    result = json.loads((run_dir / RESULT).read_text())
    assert result == json.loads(json.dumps(returned))
    assert not list(run_dir.glob(f".{RESULT}.*"))                       # the atomic write left no temp file
    assert result["data"] == "synth" and result["synthetic"] is True and result["test_samples"] == 20
    assert 0 <= result["accuracy"] <= 1
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
    assert len(result["history"]) == 1 and (run_dir / "ann_model.pt").stat().st_size > 0


@pytest.mark.parametrize("option, message", [
    ("ann.vision.channels=[4,0]", r"ann\.vision\.channels=\[4, 0\]"),
    ("ann.hidden=-3", r"ann\.hidden=-3"),
    ("trainer.epochs=0", r"trainer\.epochs=0"),
    ("trainer.lr=-1", r"trainer\.lr=-1"),
])
def test_bad_options_are_errors_naming_them(tmp_path, option, message):
    with pytest.raises(ConfigError, match=message):
        run_ann(ann_cfg(tmp_path, option), tmp_path / "run")
    assert not (tmp_path / "run" / RESULT).exists()


def test_cli_reports_a_bad_option(tmp_path):
    cmd = [sys.executable, "-m", "edge_taaf.apps.ann", *TINY_ANN, "ann.audio.strides=[2,2]",
           f"hydra.run.dir={tmp_path / 'run'}"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "edge-taaf-ann: ann.audio: channels, kernels and strides need one entry per layer" in out.stderr
