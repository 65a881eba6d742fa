"""Three implementations, one answer: the simulator (from the ONNX file) == quant/ integer mode ==
onnxruntime, on every layer's spikes, the step logits, scores, attention and logits.

Tiny quantized models with random weights (scaled so that every layer spikes, or so that membranes
saturate) on random spike inputs; and a model trained on fsdd_mnist (one epoch here, or the checkpoint
EDGE_TAAF_CHECKPOINT names) on the whole test split (bench/sim.py does the same on the fully
trained model)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import torch

from firmware_sim.loader import load_program
from firmware_sim.run import simulate
from quant import export
from quant.ort_runner import OrtModel
from quant.qmodel import QuantTwoModalitySNN
from tests.conftest import CONFIGS, compose_config

T, B = 8, 6


def tiny_model(fusion: str, bits: int, scale: float, seed: int) -> QuantTwoModalitySNN:
    cfg = OmegaConf.to_container(OmegaConf.load(CONFIGS / "model" / "snn.yaml"), resolve=False)
    cfg.update(T=T, fusion=fusion, score_hidden=8)
    cfg["vision"].update(channels=[4, 6], kernels=[5, 3], strides=[2, 2], features=16)
    cfg["audio"].update(hidden=[16], features=12)
    torch.manual_seed(seed)
    model = QuantTwoModalitySNN(cfg, bits, (1, 8))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ("vision" in name or "audio" in name) and p.dim() > 1:
                p.copy_(p * scale if scale > 0 else p.abs() * scale)   # scale < 0: all-negative weights
            if "warp" in name:
                p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


def spikes_in(seed: int):
    rng = np.random.default_rng(seed)
    vision = (rng.random((T, B, 2, 34, 34)) < 0.15).astype(np.uint8)
    audio = (rng.integers(1, 9, (T, B, 64)) * (rng.random((T, B, 64)) < 0.4)).astype(np.uint8)
    return vision, audio


def three_way(tmp_path, fusion, bits, scale, seed):
    model = tiny_model(fusion, bits, scale, seed)
    path = tmp_path / f"m{seed}.onnx"
    export.export_onnx(model, path)
    vision, audio = spikes_in(seed)
    if scale < 0:
        audio[:] = 8   # the loudest input: with all-negative weights, |I| ~ 64 x 8 x 40 per step
    q = model.integer_forward(torch.as_tensor(vision, dtype=torch.float32), torch.as_tensor(audio, dtype=torch.float32))
    quant_out = q.as_numpy()
    ort_out = OrtModel(path).run_time_major(vision, audio)
    sim = simulate(load_program(path), {"vision": vision, "audio": audio})
    sim_out = sim.outputs()
    assert set(ort_out) == set(quant_out)
    for name in ort_out:
        assert np.array_equal(sim_out[name], ort_out[name]), f"simulator != onnxruntime on {name}"
        assert np.array_equal(sim_out[name], quant_out[name]), f"simulator != quant integer mode on {name}"
    for name, n_sat in q.saturations.items():
        assert sim.counts.units[name].counts["saturations"] == n_sat, name
    return sim, q


@pytest.mark.parametrize("fusion, bits, scale", [("taaf", 8, 3.0), ("concat", 4, 3.0), ("taaf", 6, 2.0), ("taaf", 8, -10.0)])
def test_simulator_equals_quant_and_onnxruntime(tmp_path, fusion, bits, scale):
    sim, q = three_way(tmp_path, fusion, bits, scale, seed=bits)
    if scale > 0:   # the comparison means something only if every layer is active
        assert all(s.sum() > 0 for s in sim.spikes.values()), {k: int(s.sum()) for k, s in sim.spikes.items()}
    else:           # strongly negative weights: membranes pinned at -32768, saturation counted
        assert sum(q.saturations.values()) > 0


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), fusion=st.sampled_from(["taaf", "concat"]), bits=st.integers(4, 8),
       scale=st.sampled_from([1.0, 2.5, 4.0, -10.0]))
def test_random_quantized_models_three_way(tmp_path, seed, fusion, bits, scale):
    three_way(tmp_path, fusion, bits, scale, seed)


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """EDGE_TAAF_CHECKPOINT, or a float model trained here for one epoch on fsdd_mnist (T=8)."""
    if os.environ.get("EDGE_TAAF_CHECKPOINT"):
        return os.environ["EDGE_TAAF_CHECKPOINT"]
    from edge_taaf.train import train

    run = tmp_path_factory.mktemp("fsdd_run")
    cfg = compose_config("train", ["data=fsdd_mnist", "data.T=8", "trainer.epochs=1", "trainer.progress=false",
                                   "trainer.log_epochs=false", f"data.cache_dir={run / 'cache'}"])
    metrics = train(cfg, run)
    assert metrics["fused_acc"] > 0.3  # trained: well above the 10 % of chance
    return str(run / "checkpoint.pt")


@pytest.mark.slow
def test_trained_model_whole_test_split(tmp_path, trained_checkpoint):
    from edge_taaf.checkpoint import load_checkpoint
    from quant.ort_runner import compare
    from quant.qmodel import build_quant_model, run_integer
    from sensors.ead import build_dataset

    ckpt = load_checkpoint(trained_checkpoint)
    cfg = OmegaConf.create(ckpt["config"])
    if not cfg.get("quant") or cfg.quant.name == "none":
        cfg.quant = {"name": "int8", "weight_bits": 8}
    model = build_quant_model(cfg)
    model.load_init_state(ckpt["model"])
    path = tmp_path / "m.onnx"
    export.export_onnx(model, path)
    test = build_dataset(cfg.data, "test")
    quant_out = run_integer(model, test.vision, test.audio)
    ort_out = OrtModel(path).run(test.vision, test.audio)
    program = load_program(path)
    sim = simulate(program, {"vision": np.swapaxes(test.vision, 0, 1), "audio": np.swapaxes(test.audio, 0, 1)}).outputs()
    assert compare(quant_out, ort_out) == []
    assert compare({k: sim[k] for k in ort_out}, ort_out) == []
