"""ONNX export: standard ops, metadata, onnxruntime == integer mode bit for bit, any T, bad input."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from edge_taaf.model import TwoModalitySNN
from firmware_sim import spec
from quant.export import ExportError, build_onnx, export_onnx
from quant.ort_runner import OrtModel, compare, read_program
from firmware_sim.program import ContractError
from firmware_sim.program_io import from_arrays
from quant.qmodel import run_integer
from tests.support.configs import TINY, compose_config
from tests.support.quant_models import random_quant_model, random_spikes

ROOT = Path(__file__).resolve().parents[2]


def batch_first(*xs):
    return [x.transpose(0, 1).numpy() for x in xs]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny synth model: 1 float epoch, then 1 QAT epoch at int8 (edge-taaf-train quant.weight_bits=8 init_from=...)."""
    from edge_taaf.apps.train import run_training
    tmp = tmp_path_factory.mktemp("trained")
    base = [*TINY, f"data.cache_dir={tmp / 'cache'}", "trainer.log_epochs=false"]
    run_training(compose_config("train", [*base, "trainer.epochs=1"]), tmp / "float")
    cfg = compose_config("train", [*base, "trainer.epochs=1", "quant.weight_bits=8", f"init_from={tmp / 'float' / 'checkpoint.pt'}"])
    run_training(cfg, tmp / "qat")
    return tmp, cfg


def test_file_is_standard_onnx_with_the_program(tmp_path):
    model = random_quant_model(0)
    proto = export_onnx(model, tmp_path / "m.onnx")
    onnx.checker.check_model(str(tmp_path / "m.onnx"), full_check=True)
    ops = {n.op_type for n in proto.graph.node}
    body = next(n for n in proto.graph.node if n.op_type == "Scan").attribute[0].g
    ops |= {n.op_type for n in body.node}
    assert {"QuantizeLinear", "Clip", "DequantizeLinear", "Scan", "Conv", "Gemm", "Floor", "Gather"} <= ops
    assert all(n.domain in ("", "ai.onnx") for n in [*proto.graph.node, *body.node])
    assert [o.domain for o in proto.opset_import] == [""]
    program = read_program(onnx.load(str(tmp_path / "m.onnx")))
    assert program == json.loads(json.dumps(model.program()))
    assert program["contract"] == spec.CONTRACT_VERSION and program["T"] == 6 and program["weight_bits"] == 8
    assert program["leak_shift"] == 2 and program["state_bits"] == spec.STATE_BITS
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    for e in program["layers"]:   # the initializer is w_int * 2^log2: a reader recovers w_int exactly
        w = inits[e["weight"]] / 2.0 ** e["weight_log2"]
        assert np.array_equal(w, np.round(w)) and np.abs(w).max() <= 127


def test_ort_equals_integer_mode_on_a_trained_model(trained, tmp_path):
    from edge_taaf.apps.export import export_checkpoint
    from quant.qmodel import build_quant_model
    from sensors.datasets import build_dataset
    run, cfg = trained
    summary = export_checkpoint(run / "qat" / "checkpoint.pt", tmp_path / "m.onnx")
    assert summary["weight_bits"] == 8 and not summary["post_training"]
    model = build_quant_model(cfg)
    model.load_init_state(torch.load(run / "qat" / "checkpoint.pt", weights_only=True)["model"])
    test = build_dataset(cfg.data, "test")
    ours, theirs = run_integer(model, test.vision, test.audio), OrtModel(tmp_path / "m.onnx").run(test.vision, test.audio)
    assert compare(ours, theirs) == []
    assert set(theirs) == {"logits", "step_logits", "scores", "attention",
                           *(f"spikes.{e['name']}" for e in model.program()["layers"]), "frontend.vision", "frontend.audio"}
    assert theirs["spikes.vision.dense"].any() and theirs["spikes.audio.fc1"].any()
    assert len(np.unique(theirs["attention"])) > 1


def test_the_chip_image_of_a_trained_model_boots_to_the_onnx_run(trained, tmp_path):
    """edge-taaf-export image=...: the simulator booted from the image alone equals the ONNX file's run exactly."""
    from edge_taaf.apps.export import export_checkpoint
    from firmware_sim.image import read_image
    from firmware_sim.loader import load_program
    from firmware_sim.run import simulate
    from sensors.datasets import build_dataset
    run, cfg = trained
    summary = export_checkpoint(run / "qat" / "checkpoint.pt", tmp_path / "m.onnx", image=tmp_path / "m.img")
    assert summary["image_bytes"] == (tmp_path / "m.img").stat().st_size
    test = build_dataset(cfg.data, "test")
    x = {"vision": np.swapaxes(test.vision, 0, 1), "audio": np.swapaxes(test.audio, 0, 1)}
    want = simulate(load_program(tmp_path / "m.onnx"), x).outputs()
    got = simulate(read_image((tmp_path / "m.img").read_bytes(), "m.img"), x).outputs()
    assert set(want) == set(got) and all(np.array_equal(want[k], got[k]) for k in want)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), bits=st.integers(4, 8), fusion=st.sampled_from(["taaf", "concat", "taaf_modal"]),
       delay=st.integers(0, 3), T=st.integers(1, 9), sigma=st.floats(0.1, 1.5),
       channels=st.sampled_from([[3], [4, 2], [2, 3, 2]]), hidden=st.sampled_from([[], [8], [6, 5]]))
def test_ort_equals_integer_mode_on_random_models(seed, bits, fusion, delay, T, sigma, channels, hidden):
    n = len(channels)
    model = random_quant_model(seed, bits, sigma=sigma, fusion=fusion, warp_max_delay=delay,
                               vision={"in_shape": [2, 34, 34], "channels": channels, "kernels": [5, 3, 3][:n],
                                       "strides": [2, 2, 3][:n], "features": 7},
                               audio={"in_channels": 64, "hidden": hidden, "features": 5}, score_hidden=4)
    v, a = batch_first(*random_spikes(seed, T, 3))
    ours = run_integer(model, v, a, allow_other_T=True)                  # T 1..9, the model's is 6
    theirs = OrtModel(export_onnx(model)).run(v, a, allow_other_T=True)
    assert compare(ours, theirs) == []


def test_any_T_runs_and_too_long_is_refused():
    model = random_quant_model(7)
    ort_model = OrtModel(export_onnx(model))
    for T in (1, 2, 13, 32):   # the file was exported for T = 6
        v, a = batch_first(*random_spikes(T, T, 2))
        assert compare(run_integer(model, v, a, allow_other_T=True), ort_model.run(v, a, allow_other_T=True)) == []
    v, a = batch_first(*random_spikes(1, 33, 1))
    with pytest.raises(ContractError, match="max_T=32"):
        ort_model.run(v, a, allow_other_T=True)


def test_layers_outside_the_contract_are_named():
    model = random_quant_model(8)
    bad = copy.deepcopy(model)
    bad.vision.convs[1] = torch.nn.Conv2d(4, 4, 3, stride=2, padding=1, bias=False)
    with pytest.raises(ContractError, match=r"vision\.conv1"):
        export_onnx(bad)
    bad = copy.deepcopy(model)
    bad.audio.norm = torch.nn.LayerNorm(16)
    with pytest.raises(ContractError, match=r"audio\.norm"):
        export_onnx(bad)
    with pytest.raises(ExportError, match="not a quantized"):
        export_onnx(TwoModalitySNN(OmegaConf.to_container(compose_config("train", TINY).model, resolve=True)))


def test_values_that_do_not_fit_are_reported_not_clipped():
    """A program whose values leave the contract is refused by its one check (Program.check), naming the
    layer and the value, never clipped into the file."""
    model = random_quant_model(9, bits=6)
    program, weights = model.export_plan()
    w = dict(weights)
    w["audio.fc0.weight"] = w["audio.fc0.weight"].copy()
    w["audio.fc0.weight"][0, 0] = 32                     # 6-bit narrow range is -31..31
    with pytest.raises(ContractError, match=r"audio\.fc0'\.weight holds \|value\| 32 > 31"):
        build_onnx(from_arrays(program, w))
    p = json.loads(json.dumps(program))
    p["layers"][1]["theta"] = 40_000
    with pytest.raises(ContractError, match=r"vision\.conv1'\.theta=40000, expected 1..32767"):
        build_onnx(from_arrays(p, weights))
    p = json.loads(json.dumps(program))
    p["layers"][0]["kind"] = "pool"
    with pytest.raises(ContractError, match=r"vision\.conv0'\)\.kind='pool'"):
        build_onnx(from_arrays(p, weights))
    good = model.to_program()
    good.layers[0].theta = 0
    with pytest.raises(ContractError, match=r"vision\.conv0'\.theta=0"):
        build_onnx(good)


def test_export_cli_writes_a_file(trained, tmp_path):
    run, _ = trained
    out = tmp_path / "cli.onnx"
    proc = subprocess.run([sys.executable, "-m", "edge_taaf.apps.export", f"checkpoint={run / 'float' / 'checkpoint.pt'}",
                           f"out={out}", "quant.weight_bits=4", "verify=8", f"hydra.run.dir={tmp_path / 'hydra'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["weight_bits"] == 4 and summary["post_training"] and summary["verified_samples"] == 8
    assert read_program(onnx.load(str(out)))["weight_bits"] == 4


def test_export_of_a_missing_or_float_only_checkpoint_is_refused(trained, tmp_path):
    from edge_taaf.apps.export import export_checkpoint
    from edge_taaf.checkpoint import CheckpointError
    run, _ = trained
    with pytest.raises(CheckpointError, match="missing.pt does not exist"):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="float model: choose a bit width"):
        export_checkpoint(run / "float" / "checkpoint.pt", tmp_path / "m.onnx", {"weight_bits": None})


def test_a_model_over_a_profiles_limit_is_a_design_rule_error_before_any_file_is_written(trained, tmp_path):
    from edge_taaf.apps.export import export_checkpoint
    from firmware_sim.program import ContractError
    from firmware_sim.resources import DesignRuleError
    run, _ = trained
    with pytest.raises(DesignRuleError, match=r"design rule \(xylo, .*\): input vision needs 2312 input channels, "
                                              r"the limit is 16"):
        export_checkpoint(run / "qat" / "checkpoint.pt", tmp_path / "m.onnx", profile="xylo")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(ContractError, match=r"profile='loihi' is unknown; expected one of \["):
        export_checkpoint(run / "qat" / "checkpoint.pt", tmp_path / "m.onnx", profile="loihi")
    summary = export_checkpoint(run / "qat" / "checkpoint.pt", tmp_path / "m.onnx", profile="horowitz45nm")
    assert summary["resources"] == {"profile": "horowitz45nm", "fits": 1} and (tmp_path / "m.onnx").exists()


def test_nir_export_of_an_attention_model_is_refused_before_any_file_is_written(trained, tmp_path):
    """edge-taaf-export nir=...: the trained TAAF model cannot be NIR; nothing is written, the node is named."""
    from edge_taaf.apps.export import export_checkpoint
    from firmware_sim.program import ContractError
    from quant.nir_export import NIRError
    run, _ = trained
    with pytest.raises(NIRError, match=r"node 'readout' \(fusion 'taaf'\) cannot be written as NIR"):
        export_checkpoint(run / "qat" / "checkpoint.pt", tmp_path / "m.onnx", nir=tmp_path / "m.nir", nir_dt_s=1e-4)
    for dt in (None, 0, -1.0, "1ms", True):
        with pytest.raises(ContractError, match=r"nir_dt_s=.*needs the seconds of one accelerator step"):
            export_checkpoint(run / "qat" / "checkpoint.pt", tmp_path / "m.onnx", nir=tmp_path / "m.nir", nir_dt_s=dt)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_trained_concat_model_is_written_as_nir_and_reads_back_to_the_onnx_run(tmp_path):
    """edge-taaf-export nir=... on a trained two-sensor concat model: the NIR file, read back by quant.nir_import,
    gives the simulator's step logits and spikes on the test split."""
    import nir
    from edge_taaf.apps.export import export_checkpoint
    from edge_taaf.apps.train import run_training
    from firmware_sim.loader import load_program
    from firmware_sim.run import simulate
    from quant.nir_import import NIRIntegerNet, graph_feed, run_nir_integer
    from sensors.datasets import build_dataset
    cfg = compose_config("train", [*TINY, f"data.cache_dir={tmp_path / 'cache'}", "trainer.log_epochs=false",
                                   "trainer.epochs=1", "quant.weight_bits=8", "model.fusion=concat", "loss=ce"])
    run_training(cfg, tmp_path / "qat")
    summary = export_checkpoint(tmp_path / "qat" / "checkpoint.pt", tmp_path / "m.onnx", nir=tmp_path / "m.nir",
                                nir_dt_s=1e-3)
    assert summary["nir_node_types"]["Input"] == 2 and summary["nir_node_types"]["LIF"] == 5
    test = build_dataset(cfg.data, "test")
    x = {"vision": np.swapaxes(test.vision, 0, 1), "audio": np.swapaxes(test.audio, 0, 1)}
    sim = simulate(load_program(tmp_path / "m.onnx"), x)
    graph = nir.read(tmp_path / "m.nir")
    steps, spikes = run_nir_integer(NIRIntegerNet(graph), graph_feed(graph, x, sim.frontend))
    np.testing.assert_array_equal(steps, sim.step_logits)
    assert all(np.array_equal(spikes[k], sim.spikes[k]) for k in sim.spikes) and sim.spikes["vision.dense"].any()


def test_the_export_app_writes_the_streaming_variant(trained, tmp_path):
    """edge-taaf-export stream=...: the program with its states as graph inputs <state>.init and outputs <state>.final."""
    from edge_taaf.apps.export import export_checkpoint
    run, _ = trained
    summary = export_checkpoint(run / "qat" / "checkpoint.pt", tmp_path / "m.onnx", stream=tmp_path / "s.onnx")
    model = onnx.load(tmp_path / "s.onnx")
    onnx.checker.check_model(model)
    states = summary["stream_states"]
    assert "v.vision.conv0" in states and "hist.audio" in states
    assert {f"{n}.init" for n in states} <= {i.name for i in model.graph.input}
    assert {f"{n}.final" for n in states} <= {o.name for o in model.graph.output}
