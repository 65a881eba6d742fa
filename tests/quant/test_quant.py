"""Quantization-aware model: integer LIF and attention against firmware_sim.spec, the integer forward
against an independent numpy implementation of docs/accelerator.md, QAT gradients, range errors."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from edge_taaf.model import TwoModalitySNN
from firmware_sim import spec
from firmware_sim.frontend import FrontEnd
from firmware_sim.program import ContractError
from quant.int_neuron import int_lif
from quant.int_readout import exp2_attention, max_T
from quant.qmodel import QuantTwoModalitySNN, run_integer
from quant.quantizers import QuantRangeError, exact_log2, quant_linear
from tests.support.configs import TINY, compose_config
from tests.support.quant_models import random_quant_model, random_spikes, tiny_model_cfg

FAST = settings(max_examples=15, deadline=None)


# ---- the neuron and the attention lookup against the spec -------------------------------------

def test_worked_example_of_the_doc():
    current = torch.tensor([200.0, 200.0, 0.0, -40000.0]).reshape(4, 1)
    spikes, saturated, _ = int_lif(current, log2=-8, theta=256, leak_shift=2)
    assert spikes.flatten().tolist() == [0, 1, 0, 0]
    assert int(saturated) == 1


@FAST
@given(st.integers(1, 8), st.integers(1, 4), st.integers(1, 3000), st.integers(0, 2**31 - 1))
def test_int_lif_equals_spec_lif_step(T, k, theta, seed):
    rng = np.random.default_rng(seed)
    current = rng.integers(-50_000, 50_000, size=(T, 7)) * (rng.random((T, 7)) < 0.7)
    spikes, saturated, _ = int_lif(torch.tensor(current, dtype=torch.float32), log2=-5, theta=theta, leak_shift=k)
    v, n_sat = np.zeros(7, np.int64), 0
    for t in range(T):
        v, s, sat = spec.lif_step(v, current[t], theta, k)
        n_sat += int(sat.sum())
        assert np.array_equal(spikes[t].numpy().astype(np.int64), s)
    assert int(saturated) == n_sat


@FAST
@given(st.integers(1, 12), st.integers(-30, 3), st.integers(0, 2**31 - 1))
def test_exp2_attention_equals_spec(T, score_log2, seed):
    rng = np.random.default_rng(seed)
    e = rng.integers(-2**22, 2**22, size=(T, 5)) >> rng.integers(0, 22)
    u = exp2_attention(torch.tensor(e, dtype=torch.float32), score_log2)
    assert np.array_equal(u.numpy().astype(np.int64), spec.exp2_weights(e, score_log2))


# ---- quantizers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [4, 5, 6, 7, 8])
def test_brevitas_weights_are_pow2_narrow_integers(bits):
    torch.manual_seed(bits)
    layer = quant_linear(20, 6, bits)
    qw = layer.quant_weight()
    log2 = exact_log2(qw.scale, "test")
    w_int = qw.value / 2.0 ** log2
    assert torch.equal(w_int, torch.round(w_int))
    assert w_int.abs().max() <= 2 ** (bits - 1) - 1
    assert log2 == math.ceil(math.log2(float(layer.weight.detach().abs().max()))) - (bits - 1)


@pytest.mark.parametrize("bits", [3, 9])
def test_bit_width_outside_contract_is_refused(bits):
    with pytest.raises(ValueError, match="quant.weight_bits"):
        QuantTwoModalitySNN(tiny_model_cfg(), bits)


# ---- the integer forward against an independent numpy implementation of the doc ----------------

def _conv(x, w, stride, pad):
    """x (B, C, H, W), w (O, C, k, k) int64 -> (B, O, H', W') cross-correlation, zero padding."""
    k = w.shape[-1]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (xp.shape[2] - k) // stride + 1, (xp.shape[3] - k) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], ho, wo), np.int64)
    for i in range(k):
        for j in range(k):
            patch = xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
            out += np.einsum("oc,bchw->bohw", w[:, :, i, j], patch)
    return out


def reference_forward(program: dict, w: dict, vision: np.ndarray, audio: np.ndarray) -> dict:
    """docs/accelerator.md in int64 numpy with spec.lif_step / spec.exp2_weights. (T, B, ...) in."""
    T, B = vision.shape[:2]
    layers, r = program["layers"], program["readout"]
    fe = {m: FrontEnd(tuple(f["pool"]), f["mode"], f["min_count"], f["clip"], f["refractory"], f["leak_shift"],
                      f["gain_shift"]) for m, f in program["frontends"].items()}
    sensed = {"vision": fe["vision"].run(vision)[0].astype(np.int64), "audio": fe["audio"].run(audio)[0].astype(np.int64)}
    state = {e["name"]: np.zeros([B, *e["out_shape"]], np.int64) for e in layers}
    spikes = {e["name"]: [] for e in layers}
    for t in range(T):
        x = {"vision": sensed["vision"][t], "audio": sensed["audio"][t]}
        for e in layers:
            inp = x[e["input"]]
            if e["kind"] == "conv":
                cur = _conv(inp, w[e["weight"]], e["stride"], e["padding"])
            else:
                cur = inp.reshape(B, -1) @ w[e["weight"]].T
            state[e["name"]], x[e["name"]], _ = spec.lif_step(state[e["name"]], cur, e["theta"], program["leak_shift"])
            spikes[e["name"]].append(x[e["name"]])
    seq = {k: np.stack(v) for k, v in spikes.items()}

    def warp(s, kernel):
        return sum(kernel[d] * np.concatenate([np.zeros_like(s[:d]), s[:T - d]]) for d in range(min(len(kernel), T)))
    z = np.concatenate([warp(seq[r["audio_input"]], w[r["warp_audio"]]), warp(seq[r["vision_input"]], w[r["warp_vision"]])], -1)
    out = {**{f"spikes.{k}": v for k, v in seq.items()}, **{f"frontend.{k}": v for k, v in sensed.items()}}
    if program["fusion"] == "taaf_modal":
        return {**out, **reference_modal(r, w, z, seq[r["audio_input"]].shape[-1])}
    lp = (z @ w[r["readout_weight"]].T + w[r["readout_bias"]]) >> r["logit_shift"]
    out["step_logits"] = lp
    if program["fusion"] == "taaf":
        h = np.maximum(z @ w[r["score_hidden_weight"]].T + w[r["score_hidden_bias"]], 0) >> r["hidden_shift"]
        e = (h @ w[r["score_out_weight"]].T)[..., 0] + w[r["score_out_bias"]][0]
        u = spec.exp2_weights(e, r["score_log2"])
        out.update(scores=e, attention=u)
    else:
        u = np.ones((T, B), np.int64)
        out["attention"] = u
    out["logits"] = (u[..., None] * lp).sum(0)
    return out


def reference_modal(r: dict, w: dict, z: np.ndarray, d_audio: int) -> dict:
    """taaf_modal from the program JSON (docs/accelerator.md, "taaf_modal readout"): per modality the logits and
    the score on its own columns of z (T, B, D), one exp2 lookup over every (t, m), each y_m over its own T."""
    cols = {"audio": slice(0, d_audio), "vision": slice(d_audio, None)}
    lp, e = [], []
    for m in ("audio", "vision"):
        zm = z[..., cols[m]]
        lp.append((zm @ w[r["readout_weight"]][:, cols[m]].T + w[r[f"{m}_readout_bias"]]) >> r["logit_shift"])
        h = np.maximum(zm @ w[r[f"{m}_score_hidden_weight"]].T + w[r[f"{m}_score_hidden_bias"]], 0) >> r["hidden_shift"]
        e.append((h @ w[r[f"{m}_score_out_weight"]].T)[..., 0] + w[r[f"{m}_score_out_bias"]][0])
    lp, e = np.stack(lp, 2), np.stack(e, 2)                                   # (T, B, 2, K), (T, B, 2)
    n_t, n_b = e.shape[:2]
    u = spec.exp2_weights(e.transpose(0, 2, 1).reshape(2 * n_t, n_b), r["score_log2"]).reshape(n_t, 2, n_b).transpose(0, 2, 1)
    out = {"step_logits": lp, "scores": e, "attention": u, "logits": (u[..., None] * lp).sum((0, 2))}
    if r["modality_logits"]:
        own = spec.exp2_weights(e, r["score_log2"])
        out.update({f"logits_{m}": (own[:, :, i, None] * lp[:, :, i]).sum(0) for i, m in enumerate(("audio", "vision"))})
    return out


# a front-end with every part: polarity merge and 2x2 pooling, adaptive threshold, refractory, clip; fewer audio channels
SPARSE_FRONTEND = {"vision": {"pool": [2, 2, 2], "mode": "adaptive", "min_count": 1, "clip": 2, "refractory": 1,
                              "leak_shift": 2, "gain_shift": 3},
                   "audio": {"pool": [2], "mode": "count", "min_count": 2, "clip": 1}}


@pytest.mark.parametrize("fusion,bits,delay,frontend", [("taaf", 8, 3, None), ("taaf", 4, 0, None), ("concat", 6, 2, None),
                                                        ("taaf", 8, 2, SPARSE_FRONTEND), ("taaf_modal", 8, 2, None),
                                                        ("taaf_modal", 5, 1, SPARSE_FRONTEND)])
def test_integer_forward_equals_numpy_reference(fusion, bits, delay, frontend):
    model = random_quant_model(bits, bits, fusion=fusion, warp_max_delay=delay, sigma=0.6, frontend=frontend)
    v, a = random_spikes(bits, T=6, B=3)
    program, weights = model.export_plan()
    ref = reference_forward(program, weights, v.numpy().astype(np.int64), a.numpy().astype(np.int64))
    got = model.integer_forward(v, a).as_numpy()
    assert sorted(got) == sorted(ref)
    for key in ref:
        assert np.array_equal(got[key], ref[key]), key
    assert any(got[f"spikes.{e['name']}"].any() for e in program["layers"])


def test_saturation_is_counted_and_matches_reference():
    model = random_quant_model(1, sigma=0.2)
    with torch.no_grad():
        model.audio.layers[0].fc.weight.fill_(-0.9)   # w_int = -115 at 2^-7; 64 channels x 8 spikes saturate
    v, a = random_spikes(2, T=6, B=2, density=0.5)
    out = model.integer_forward(v, a)
    assert out.saturations["audio.fc0"] > 0
    program, weights = model.export_plan()
    ref = reference_forward(program, weights, v.numpy().astype(np.int64), a.numpy().astype(np.int64))
    assert np.array_equal(out.as_numpy()["logits"], ref["logits"])


# ---- QAT: the training forward is the integer forward, with gradients --------------------------

def test_qat_forward_carries_integer_values_and_gradients():
    model = random_quant_model(3)
    v, a = random_spikes(3, T=6, B=4)
    out = model(v, a)
    ints = model.integer_forward(v, a)
    program = model.program()
    r = program["readout"]
    logit_log2 = r["readout_log2"] + r["warp_log2"] + r["logit_shift"]
    assert torch.equal(out.fusion.step_logits / 2.0 ** logit_log2, ints.step_logits.float())
    assert torch.allclose(out.fusion.alpha, ints.attention / ints.attention.sum(0), atol=0)
    loss = torch.nn.functional.cross_entropy(out.logits, torch.arange(4)) + out.head_audio.sum() + out.head_vision.sum()
    loss.backward()
    for name, p in model.named_parameters():
        if "weight_quant" in name or name.endswith("score_out.bias"):  # alias; softmax is shift-invariant in d
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_qat_forward_of_taaf_modal_carries_the_integer_attention_and_gradients():
    """taaf_modal in QAT: alpha_t = sum_m u^m_t / sum u, the share is each modality's attention mass, the fused
    and the per-modality predictions are the integer y and y_m over their attention sums (real units), and every
    fusion parameter (each branch's score MLP included) gets a gradient."""
    model = random_quant_model(3, fusion="taaf_modal")
    v, a = random_spikes(3, T=6, B=4)
    out = model(v, a)
    ints = model.integer_forward(v, a)
    r = model.program()["readout"]
    scale = 2.0 ** (r["readout_log2"] + r["warp_log2"] + r["logit_shift"])
    u = ints.attention.double()                                               # (T, B, 2)
    assert ints.attention.shape == (6, 4, 2) and ints.step_logits.shape == (6, 4, 2, 10)
    assert torch.allclose(out.fusion.alpha.double(), u.sum(2) / u.sum((0, 2)), rtol=1e-6, atol=0)
    assert torch.allclose(out.fusion.share.double(), u.sum(0) / u.sum((0, 2))[:, None], rtol=1e-6, atol=0)
    assert torch.allclose(out.logits.double(), ints.logits * scale / u.sum((0, 2))[:, None], rtol=1e-5, atol=1e-6)
    for i, m in enumerate(("audio", "vision")):
        own = torch.as_tensor(spec.exp2_weights(ints.scores[:, :, i].numpy(), r["score_log2"])).double().sum(0)
        y_m = getattr(out.fusion, f"logits_{m}").double()
        assert torch.allclose(y_m, ints.modal_logits[m] * scale / own[:, None], rtol=1e-5, atol=1e-6)
    loss = torch.nn.functional.cross_entropy(out.logits, torch.arange(4)) + out.fusion.logits_audio.sum()
    loss.backward()
    for name, p in model.fusion.named_parameters():
        if "weight_quant" not in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_taaf_modal_max_T_counts_both_modalities():
    """2 x T terms of |u l'| <= 2^8 (2^11 - 1) in y: max_T = 16 with two sensors, 32 (TAAF's) with one."""
    assert (max_T("taaf_modal"), max_T("taaf_modal", 1), max_T("taaf"), max_T("concat")) == (16, 32, 32, 8196)
    with pytest.raises(ValueError, match="max_T=16"):
        random_quant_model(1, fusion="taaf_modal", T=17).to_program()
    model = random_quant_model(1, fusion="taaf_modal")
    v, a = random_spikes(1, T=17, B=1)
    with pytest.raises(ContractError, match="max_T=16"):
        model.integer_forward(v, a, allow_other_T=True)


def test_load_float_weights_quantizes_them():
    cfg = tiny_model_cfg()
    torch.manual_seed(0)
    fm = TwoModalitySNN(cfg)
    with torch.no_grad():
        fm.warp_audio.delta.copy_(torch.tensor([-0.5, 0.3, 0.0, 0.1]))
    qm = QuantTwoModalitySNN(cfg, 8)
    qm.load_init_state(fm.state_dict())
    _, weights = qm.export_plan()
    program = qm.program()
    wa = weights["warp.audio"] * 2.0 ** program["readout"]["warp_log2"]
    assert np.allclose(wa, [0.5, 0.3, 0.0, 0.1], atol=2.0 ** program["readout"]["warp_log2"])
    e0 = program["layers"][0]
    w_float = fm.vision.convs[0].conv.weight.detach().numpy()
    assert np.abs(weights[e0["weight"]] * 2.0 ** e0["weight_log2"] - w_float).max() <= 2.0 ** e0["weight_log2"]
    with pytest.raises(ContractError, match="unexpected"):
        qm.load_init_state({**fm.state_dict(), "extra.weight": torch.zeros(1)})


# ---- range and contract errors: reported, never clipped -----------------------------------------

def test_threshold_not_fitting_the_state_is_reported():
    model = random_quant_model(4)
    with torch.no_grad():
        model.audio.layers[1].fc.weight.mul_(1e-4)   # scale 2^-20: theta_int = 2^20 > 32767
    v, a = random_spikes(4, T=6, B=1)
    with pytest.raises(QuantRangeError, match=r"audio\.fc1: theta_int"):
        model.integer_forward(v, a)


def test_reset_outside_contract_is_refused():
    cfg = tiny_model_cfg()
    cfg["neuron"] = {**cfg["neuron"], "reset": "zero"}
    with pytest.raises(ContractError, match="reset"):
        QuantTwoModalitySNN(cfg, 8)


def test_input_counts_beyond_a_byte_are_refused():
    with pytest.raises(ValueError, match=r"data\.clip_audio.*1\.\.255"):
        random_quant_model(5, input_max=(1, 30000))


def test_bad_inputs_and_long_sequences_are_refused():
    model = random_quant_model(6)
    v, a = random_spikes(6, T=6, B=2)
    with pytest.raises(ContractError, match=r"input 'audio': counts span 0\.\.80, expected 0\.\.8"):
        model.integer_forward(v, a * 10)
    with pytest.raises(ContractError, match="input 'vision': value 0.5 is not a whole number"):
        model.integer_forward(v * 0.5, a)
    with pytest.raises(ContractError, match="max_T=32"):
        model.integer_forward(*random_spikes(6, T=33, B=1), allow_other_T=True)
    with pytest.raises(ContractError, match="T=3 steps, expected the program's T=6"):
        model.integer_forward(*random_spikes(6, T=3, B=1))


# ---- training: edge-taaf-train quant.weight_bits=8 init_from=<float checkpoint> ---------------------------

def test_train_app_fine_tunes_a_float_checkpoint(tiny_train_cfg, tmp_path):
    from edge_taaf.checkpoint import atomic_torch_save, load_checkpoint
    from edge_taaf.apps.train import run_training
    from sensors.datasets import build_dataset
    float_cfg = tiny_train_cfg()
    float_model = TwoModalitySNN(OmegaConf.to_container(float_cfg.model, resolve=True))
    atomic_torch_save({"model": float_model.state_dict(), "optimizer": {}, "epoch": 0, "history": [],
                       "config": OmegaConf.to_yaml(float_cfg)}, tmp_path / "float.pt")
    cfg = tiny_train_cfg("quant.weight_bits=6", f"init_from={tmp_path / 'float.pt'}", "trainer.epochs=1",
                         "trainer.log_epochs=false")
    metrics = run_training(cfg, tmp_path / "qat")
    ckpt = load_checkpoint(tmp_path / "qat" / "checkpoint.pt")
    assert OmegaConf.create(ckpt["config"]).quant.weight_bits == 6
    assert 0.0 <= metrics["val_fused_acc"] <= 1.0
    model = QuantTwoModalitySNN(OmegaConf.to_container(cfg.model, resolve=True), 6, (1, 1))
    model.load_init_state(ckpt["model"])
    test = build_dataset(cfg.data, "test")
    out = run_integer(model, test.vision, test.audio)
    assert out["logits"].shape == (len(test.labels), 10)
    assert model.program()["weight_bits"] == 6
    assert Path(tmp_path / "qat" / "metrics.jsonl").exists()


def test_frozen_integer_mode_equals_the_per_call_one():
    """``frozen()`` computes the integer weights once (the fast path the simulator benchmark times); the
    outputs equal the per-call integer mode exactly, and checks=False is refused outside it."""
    model = random_quant_model(3, sigma=1.0).eval()
    v, a = random_spikes(3, 6, 3)
    slow = model.integer_forward(v, a).as_numpy()
    with model.frozen():
        fast = model.integer_forward(v, a, checks=False).as_numpy()
    assert slow.keys() == fast.keys() and all((slow[k] == fast[k]).all() for k in slow)
    assert all(slow[k].any() for k in slow if k.startswith("spikes."))    # every layer spikes: a real comparison
    with pytest.raises(ValueError, match="needs the weights frozen"):
        model.integer_forward(v, a, checks=False)


def test_qat_from_fresh_weights_scales_every_integer_layer_to_fire(tmp_path):
    """The firing-rate init (edge_taaf.firing_rate_init) serves both modes of the blocks: a quantization-aware run
    from fresh weights starts with every integer layer spiking."""
    from edge_taaf.apps.options import check_training_options
    from edge_taaf.apps.train import build_model
    from edge_taaf.firing_rate_init import scale_to_firing_rate

    cfg = compose_config("train", [*TINY, "quant.weight_bits=8", f"data.cache_dir={tmp_path}"])
    model = build_model(cfg, check_training_options(cfg))
    v, a = random_spikes(0, T=6, B=8)
    rates = scale_to_firing_rate(model, v, a, target=0.1)
    assert len(rates) == len(model.spiking_layers()) and all(r > 0.02 for r in rates), rates
