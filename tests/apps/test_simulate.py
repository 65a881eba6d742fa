"""edge-taaf-sim: the Hydra app end to end (CLI with onnx=<file.onnx>), and its errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from edge_taaf.apps.simulate import run_simulation
from firmware_sim.energy import HardwareConfigError
from firmware_sim.program import ContractError
from tests.support.configs import compose_config
from tests.support.sim_programs import build_onnx, random_program

ROOT = Path(__file__).resolve().parents[2]
T = 6


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    program = random_program(np.random.default_rng(4), vision_shape=(2, 34, 34), audio_dim=64, T=T, n_classes=10, n_convs=1)
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    onnx.save(build_onnx(program), path)
    return path


def sim_cfg(onnx_file, tmp_path, *extra):
    return compose_config("simulate", [f"onnx={onnx_file}", "data=synth", "data.n_test=24", f"data.T={T}",
                                       f"data.cache_dir={tmp_path / 'cache'}", "progress=false", *extra])


def test_cli_writes_report_and_plot(onnx_file, tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "edge_taaf.apps.simulate", f"onnx={onnx_file}", "data=synth", "data.n_test=24", f"data.T={T}",
           f"data.cache_dir={tmp_path / 'cache'}", "hardware=horowitz45nm", "batch_size=10", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))}
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    headline = json.loads(out.stdout.strip().splitlines()[-1])
    assert headline["samples"] == 24 and headline["synthetic"] is True and 0 <= headline["accuracy"] <= 1
    report = json.loads((run_dir / "report.json").read_text())
    assert (run_dir / "energy.png").stat().st_size > 10_000
    assert report["energy"]["energy_uj"] > 0 and report["latency_us_per_inference"] > 0
    assert set(report["energy"]["by_modality"]) == {"vision", "audio", "fusion"}
    assert {"vision.conv0", "vision.dense", "audio.fc0", "audio.fc1", "readout"} <= set(report["energy"]["by_unit"])
    assert report["energy"]["ann_int8_T"]["energy_uj"] > 0 and report["hardware"] == "horowitz45nm"
    assert set(report["energy"]["dataflows"]) == {layer for layer in report["energy"]["by_unit"] if "." in layer
                                                   and not layer.startswith(("warp", "frontend", "sensor"))}
    assert report["energy"]["by_unit"]["frontend.vision"]["energy_uj"] == 0.0    # the identity front-end is free


def test_in_process_run_and_batch_size_does_not_matter(onnx_file, tmp_path):
    a = run_simulation(sim_cfg(onnx_file, tmp_path, "batch_size=5"), tmp_path / "a")
    b = run_simulation(sim_cfg(onnx_file, tmp_path, "batch_size=64"), tmp_path / "b")
    assert a["accuracy"] == b["accuracy"] and a["counts_per_inference"] == b["counts_per_inference"]
    assert a["energy_uj_per_inference"] == b["energy_uj_per_inference"]          # the same counts, the same price
    assert a["energy"] == b["energy"]


def test_errors_name_the_problem(onnx_file, tmp_path):
    with pytest.raises(ContractError, match=f"data.T=8 but the model was built for T={T}"):
        run_simulation(sim_cfg(onnx_file, tmp_path, "data.T=8"), tmp_path / "r")
    with pytest.raises(HardwareConfigError, match="add32=-1"):
        run_simulation(sim_cfg(onnx_file, tmp_path, "hardware.energy_pj.add32=-1"), tmp_path / "r")
    with pytest.raises(ContractError, match="no such ONNX file"):
        run_simulation(sim_cfg(tmp_path / "missing.onnx", tmp_path), tmp_path / "r")


def test_another_T_runs_only_when_allowed_over_exactly_its_steps(onnx_file, tmp_path):
    """allow_other_T=true: the data's T (8) runs as given, not padded or cut to the model's T (the runtime
    refuses it otherwise too: firmware_sim.run.check_steps)."""
    report = run_simulation(sim_cfg(onnx_file, tmp_path, "data.T=8", "allow_other_T=true"), tmp_path / "r")
    assert T != 8 and report["steps"] == 8 and report["samples"] == 24
