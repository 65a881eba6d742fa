"""The balanced TAAF loss, CE and OGM-GE: formulas, windows and what they do to gradients."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from edge_taaf.losses import CELoss, OGMGELoss, TAAFBalancedLoss, build_loss, modulation_coefficient
from edge_taaf.model import TwoModalitySNN
from tests.support.configs import TINY, compose_config, composition_error


@pytest.mark.parametrize("rho,gamma,expected", [
    (0.3, 1.0, 1.0), (1.0, 1.0, 1.0), (1.5, 1.0, 1 - math.tanh(0.5)), (3.0, 0.5, 1 - math.tanh(1.0)), (2.0, 2.0, 1 - math.tanh(2.0)),
])
def test_modulation_coefficient_formula(rho, gamma, expected):
    assert modulation_coefficient(rho, gamma) == pytest.approx(expected, rel=1e-15)


@given(st.floats(1.0, 50.0), st.floats(1.0, 50.0), st.floats(0.01, 5.0))
def test_modulation_coefficient_only_slows_and_slows_more_when_more_dominant(r1, r2, gamma):
    lo, hi = sorted((r1, r2))
    k_lo, k_hi = modulation_coefficient(lo, gamma), modulation_coefficient(hi, gamma)
    assert 0.0 <= k_hi <= k_lo <= 1.0
    assert modulation_coefficient(1.0 / hi, gamma) == 1.0  # the weaker modality is never slowed


def test_taaf_balanced_slows_the_dominant_modality_only_inside_the_window():
    loss = TAAFBalancedLoss(lambda_unimodal=0.5, gamma=1.5, window=[2, 5])
    stats = {"score_audio": 0.8, "score_vision": 0.2}
    k = 1 - math.tanh(1.5 * (0.8 / 0.2 - 1))
    for epoch in (2, 4):
        coeffs = loss.lr_coefficients(stats, epoch)
        assert coeffs["audio"] == pytest.approx(k) and coeffs["vision"] == 1.0
    assert loss.lr_coefficients({"score_audio": 0.1, "score_vision": 0.3}, 3) == {"audio": 1.0, "vision": pytest.approx(1 - math.tanh(3.0))}
    for epoch in (0, 1, 5, 50):
        assert loss.lr_coefficients(stats, epoch) == {"audio": 1.0, "vision": 1.0}
    assert loss.lr_coefficients({"score_audio": 0.4, "score_vision": 0.4}, 3) == {"audio": 1.0, "vision": 1.0}


@pytest.fixture(scope="module")
def tiny():
    """A tiny TAAF model, a batch that makes every layer fire, and labels."""
    cfg = compose_config("train", TINY)
    torch.manual_seed(0)
    model = TwoModalitySNN(OmegaConf.to_container(cfg.model, resolve=True))
    with torch.no_grad():
        for p in [*model.vision.parameters(), *model.audio.parameters()]:
            p.mul_(8.0)
    t, b = int(cfg.model.T), 6
    vision = (torch.rand(t, b, 2, 34, 34) < 0.1).float()
    audio = (torch.rand(t, b, 64) < 0.3).float()
    return model, vision, audio, torch.arange(b) % 10


def test_taaf_balanced_loss_value_and_scores(tiny):
    model, vision, audio, y = tiny
    out = model(vision, audio)
    loss, stats = TAAFBalancedLoss(0.5, 1.0, [0, 10])(out, y)
    f = out.fusion
    step_ce = torch.stack([F.cross_entropy(f.step_logits[t], y, reduction="none") for t in range(f.step_logits.shape[0])])
    expected = (f.alpha * step_ce).sum(0).mean() + 0.5 * (F.cross_entropy(out.head_audio, y) + F.cross_entropy(out.head_vision, y))
    torch.testing.assert_close(loss, expected)
    assert stats["score_audio"] == pytest.approx(float(F.softmax(f.contrib_audio.detach(), 1)[torch.arange(6), y].mean()))
    assert stats["score_vision"] == pytest.approx(float(F.softmax(f.contrib_vision.detach(), 1)[torch.arange(6), y].mean()))
    assert stats["share_audio"] + stats["share_vision"] == pytest.approx(1.0)


def test_taaf_balanced_with_taaf_modal_also_trains_each_modalitys_own_prediction():
    """With taaf_modal the unimodal term holds the fusion's own y_m too; alpha and step_logits are the per-step
    totals, so the step term reads as for TAAF; the share is the attention mass of each modality."""
    cfg = compose_config("train", [*TINY, "model.fusion=taaf_modal"])
    torch.manual_seed(0)
    model = TwoModalitySNN(OmegaConf.to_container(cfg.model, resolve=True))
    with torch.no_grad():
        for p in [*model.vision.parameters(), *model.audio.parameters()]:
            p.mul_(8.0)
    t, b = int(cfg.model.T), 6
    vision, audio, y = (torch.rand(t, b, 2, 34, 34) < 0.1).float(), (torch.rand(t, b, 64) < 0.3).float(), torch.arange(b) % 10
    out = model(vision, audio)
    f = out.fusion
    loss, stats = TAAFBalancedLoss(0.5, 1.0, [0, 10])(out, y)
    step_ce = torch.stack([F.cross_entropy(f.step_logits[i], y, reduction="none") for i in range(t)])
    heads = F.cross_entropy(out.head_audio, y) + F.cross_entropy(out.head_vision, y)
    own = F.cross_entropy(f.logits_audio, y) + F.cross_entropy(f.logits_vision, y)
    torch.testing.assert_close(loss, (f.alpha * step_ce).sum(0).mean() + 0.5 * (heads + own))
    assert stats["share_audio"] == pytest.approx(float(f.share[:, 0].detach().mean())) and "score_audio" in stats
    loss.backward()
    for m in ("audio", "vision"):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.fusion.score_hidden[m].parameters()), m


def test_ce_loss_is_fused_ce_plus_probe_heads(tiny):
    model, vision, audio, y = tiny
    out = model(vision, audio)
    loss, stats = CELoss()(out, y)
    expected = F.cross_entropy(out.logits, y) + F.cross_entropy(out.head_audio, y) + F.cross_entropy(out.head_vision, y)
    torch.testing.assert_close(loss, expected)
    assert CELoss().lr_coefficients(stats, 0) == {"audio": 1.0, "vision": 1.0}


def _grads(module):
    return [p.grad.clone() for p in module.parameters()]


def test_ogm_ge_scales_the_dominant_encoders_gradients_and_adds_noise(tiny):
    model, vision, audio, y = tiny
    ogm = OGMGELoss(alpha=0.5, window=[0, 10], seed=7)
    model.zero_grad(set_to_none=True)
    out = model(vision, audio)
    loss, stats = ogm(out, y)
    conf = [F.softmax(c.detach(), 1)[torch.arange(6), y].sum() for c in (out.fusion.contrib_audio, out.fusion.contrib_vision)]
    assert stats["ratio_audio"] == pytest.approx(float(conf[0] / conf[1]))
    loss.backward()
    audio_before, vision_before = _grads(model.audio), _grads(model.vision)
    others_before = _grads(model.fusion) + _grads(model.warp_audio)
    assert all(g.abs().sum() > 0 for g in audio_before)

    stats = {**stats, "ratio_audio": 3.0}  # audio dominates: its encoder is slowed
    ogm.before_step(model, stats, epoch=0)
    k = 1 - math.tanh(0.5 * 2.0)
    assert stats["grad_coef_audio"] == pytest.approx(k) and stats["grad_coef_vision"] == 1.0
    gen = torch.Generator().manual_seed(7)  # the same noise stream as the loss's
    for g0, p in zip(audio_before, model.audio.parameters()):
        noise = torch.randn(g0.shape, generator=gen) * (g0.std().item() + 1e-8)
        torch.testing.assert_close(p.grad, g0 * k + noise, rtol=1e-6, atol=1e-9)
        assert not torch.allclose(p.grad, g0 * k)  # noise really added
    assert all(torch.equal(g0, p.grad) for g0, p in zip(vision_before, model.vision.parameters()))
    assert all(torch.equal(g0, g1) for g0, g1 in zip(others_before, _grads(model.fusion) + _grads(model.warp_audio)))


def test_ogm_ge_does_nothing_outside_its_window_or_when_balanced(tiny):
    model, vision, audio, y = tiny
    ogm = OGMGELoss(alpha=0.5, window=[3, 6])
    model.zero_grad(set_to_none=True)
    loss, stats = ogm(model(vision, audio), y)
    loss.backward()
    before = _grads(model)
    ogm.before_step(model, {**stats, "ratio_audio": 4.0}, epoch=6)
    ogm.before_step(model, {**stats, "ratio_audio": 1.0}, epoch=4)
    assert all(torch.equal(g0, p.grad) for g0, p in zip(before, model.parameters()))
    assert ogm.gradient_coefficients({"ratio_audio": 0.25}, 4) == {"audio": 1.0, "vision": pytest.approx(1 - math.tanh(1.5))}


def test_build_loss_from_configs_and_unknown_name():
    for name, cls in (("taaf_balanced", TAAFBalancedLoss), ("ce", CELoss), ("ogm_ge", OGMGELoss)):
        assert isinstance(build_loss(compose_config("train", [f"loss={name}"]).loss), cls)
    assert TAAFBalancedLoss(0.5, 1.0, [0, 1]).heads_train_encoders and not CELoss.heads_train_encoders
    with pytest.raises(ValueError, match="loss.name"):
        build_loss({"name": "focal"})


@pytest.mark.parametrize("step_ce,fused_ce", [(0.0, 1.0), (0.3, 1.0), (1.0, 0.5)])
def test_taaf_balanced_weighs_the_step_term_and_the_fused_prediction_term(tiny, step_ce, fused_ce):
    """loss.step_ce x the paper's attention-weighted step CE + loss.fused_ce x CE of the device's answer."""
    model, vision, audio, y = tiny
    out = model(vision, audio)
    f = out.fusion
    step = torch.stack([F.cross_entropy(f.step_logits[t], y, reduction="none") for t in range(f.step_logits.shape[0])])
    heads = 0.5 * (F.cross_entropy(out.head_audio, y) + F.cross_entropy(out.head_vision, y))
    loss, _ = TAAFBalancedLoss(0.5, 1.0, [0, 10], step_ce=step_ce, fused_ce=fused_ce)(out, y)
    torch.testing.assert_close(loss, step_ce * (f.alpha * step).sum(0).mean() + fused_ce * F.cross_entropy(f.logits, y) + heads)


@pytest.mark.parametrize("over,match", [
    (["loss.step_ce=0", "loss.fused_ce=0"], "both 0"),
    (["loss.fused_ce=-1"], "loss.fused_ce must be a finite number >= 0"),
    (["loss.step_ce=nan"], "loss.step_ce must be a finite number >= 0"),
    (["loss.label_smoothing=1.0"], r"loss.label_smoothing must be a number in \[0, 1\)"),
    (["loss.label_smoothing=-0.1"], r"loss.label_smoothing must be a number in \[0, 1\)"),
    (["loss.window=[5,2]"], r"loss.window=\[5, 2\], expected epochs \[start, end\)"),
    (["loss.window=[0]"], r"loss.window=\[0\], expected epochs"),
    (["loss=ogm_ge", "loss.window=[-1,3]"], r"loss.window=\[-1, 3\], expected epochs"),
])
def test_bad_fused_loss_weights_are_config_errors_naming_the_option(over, match):
    from edge_taaf.config import ConfigError, check_train_config
    with pytest.raises(ConfigError, match=match):
        check_train_config(compose_config("train", [*TINY, *over]))


@pytest.mark.parametrize("override, key", [("loss.window=[0,1.5]", "loss.window[1]"), ("loss.window=10", "loss.window"),
                                           ("loss.step_ce=lots", "loss.step_ce")])
def test_wrong_loss_types_fail_when_the_config_is_composed(override, key):
    assert f"full_key: {key}" in composition_error("train", [*TINY, override])


def test_an_empty_window_never_modulates_and_a_bad_one_is_refused_by_the_loss_itself():
    stats = {"score_audio": 0.2, "score_vision": 0.9}
    off = TAAFBalancedLoss(0.5, 1.0, [0, 0])
    assert all(off.lr_coefficients(stats, epoch) == {"audio": 1.0, "vision": 1.0} for epoch in range(5))
    assert TAAFBalancedLoss(0.5, 1.0, [0, 5]).lr_coefficients(stats, 0)["vision"] < 1.0   # the same stats, inside
    for bad in ([3, 1], [0], (0, 1, 2), "0,5", [0, True]):
        with pytest.raises(ValueError, match="loss.window"):
            TAAFBalancedLoss(0.5, 1.0, bad)
        with pytest.raises(ValueError, match="loss.window"):
            OGMGELoss(0.5, bad)


def test_label_smoothing_smooths_every_cross_entropy_term(tiny):
    model, vision, audio, y = tiny
    out = model(vision, audio)
    f, ls = out.fusion, 0.1
    step = torch.stack([F.cross_entropy(f.step_logits[t], y, reduction="none", label_smoothing=ls)
                        for t in range(f.step_logits.shape[0])])
    heads = sum(F.cross_entropy(h, y, label_smoothing=ls) for h in (out.head_audio, out.head_vision))
    loss, _ = TAAFBalancedLoss(0.5, 1.0, [0, 10], step_ce=1.0, fused_ce=2.0, label_smoothing=ls)(out, y)
    expected = (f.alpha * step).sum(0).mean() + 2.0 * F.cross_entropy(f.logits, y, label_smoothing=ls) + 0.5 * heads
    torch.testing.assert_close(loss, expected)
    plain, _ = TAAFBalancedLoss(0.5, 1.0, [0, 10], step_ce=1.0, fused_ce=2.0)(out, y)
    assert not torch.isclose(loss, plain)
