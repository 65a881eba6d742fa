"""Fusion (TAAF, concat), the causal time-warp and the model's per-layer spike recording."""
import pytest
import torch
from omegaconf import OmegaConf

from edge_taaf.config import ConfigError, check_train_config
from edge_taaf.fusion import ConcatFusion, TAAFFusion, TAAFModalFusion
from edge_taaf.model import TwoModalitySNN
from edge_taaf.model_config import ModelConfig
from edge_taaf.timewarp import CausalDelayWarp
from tests.support.configs import TINY, compose_config, composition_error

T, B, DA, DV, K = 7, 5, 6, 9, 4


def features(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, DA, generator=g) < 0.4).double(), (torch.rand(T, B, DV, generator=g) < 0.4).double()


def test_taaf_attention_is_a_distribution_over_time_and_weights_the_step_logits():
    torch.manual_seed(0)
    fusion = TAAFFusion(DA, DV, K, score_hidden=8).double()
    a, v = features()
    out = fusion(a, v)
    assert out.alpha.shape == (T, B) and out.step_logits.shape == (T, B, K) and out.logits.shape == (B, K)
    torch.testing.assert_close(out.alpha.sum(0), torch.ones(B, dtype=torch.float64), rtol=0, atol=1e-12)
    assert (out.alpha > 0).all() and out.alpha.std() > 0  # not uniform: the score depends on z_t
    torch.testing.assert_close(out.logits, (out.alpha[..., None] * out.step_logits).sum(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(out.share.sum(1), torch.ones(B, dtype=torch.float64), rtol=0, atol=1e-12)
    assert ((out.share >= 0) & (out.share <= 1)).all()
    # The two modality contributions plus the bias rebuild the fused logits (sum_t alpha_t = 1).
    torch.testing.assert_close(out.contrib_audio + out.contrib_vision + fusion.readout.bias, out.logits, rtol=0, atol=1e-12)


def test_taaf_softmax_is_base_2():
    torch.manual_seed(1)
    fusion = TAAFFusion(DA, DV, K, score_hidden=8).double()
    a, v = features(1)
    e = fusion.scores(torch.cat([a, v], -1))
    expected = 2.0 ** e / (2.0 ** e).sum(0)
    torch.testing.assert_close(fusion(a, v).alpha, expected, rtol=1e-12, atol=1e-12)


def test_taaf_share_follows_the_evidence():
    torch.manual_seed(2)
    fusion = TAAFFusion(DA, DV, K, score_hidden=8).double()
    a, v = features(2)
    out = fusion(a, torch.zeros_like(v))  # silent vision: all evidence is audio's
    torch.testing.assert_close(out.share[:, 0], torch.ones(B, dtype=torch.float64))
    assert torch.equal(out.contrib_vision, torch.zeros_like(out.contrib_vision))


def test_concat_is_uniform_attention_over_time():
    torch.manual_seed(3)
    fusion = ConcatFusion(DA, DV, K).double()
    a, v = features(3)
    out = fusion(a, v)
    assert torch.equal(out.alpha, torch.full((T, B), 1.0 / T, dtype=torch.float64))
    torch.testing.assert_close(out.logits, out.step_logits.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(out.logits, (out.alpha[..., None] * out.step_logits).sum(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(out.share.sum(1), torch.ones(B, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(out.contrib_audio + out.contrib_vision + fusion.readout.bias, out.logits, rtol=0, atol=1e-12)


def modal_fusion(seed, modalities=("audio", "vision")):
    torch.manual_seed(seed)
    fusion = TAAFModalFusion(modalities, DA if "audio" in modalities else 0, DV if "vision" in modalities else 0, K,
                             score_hidden=8).double()
    with torch.no_grad():
        for b in fusion.bias.values():
            b.normal_()
    return fusion


def test_taaf_modal_attention_is_one_base2_softmax_over_time_and_modality():
    fusion = modal_fusion(5)
    a, v = features(5)
    out = fusion(a, v)
    step, e = fusion.branches(a, v)                                     # (T, B, 2, K), (T, B, 2)
    joint = 2.0 ** e / (2.0 ** e).sum((0, 2), keepdim=True)            # alpha^m_t
    own = 2.0 ** e / (2.0 ** e).sum(0, keepdim=True)                   # beta^m_t
    exact = dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.alpha, joint.sum(2), **exact)      # the per-step total over modalities
    torch.testing.assert_close(out.logits, (joint[..., None] * step).sum((0, 2)), **exact)
    torch.testing.assert_close(out.logits, (out.alpha[..., None] * out.step_logits).sum(0), **exact)
    torch.testing.assert_close(out.share, joint.sum(0), **exact)      # the attention mass of each modality
    torch.testing.assert_close(out.logits_audio, (own[..., 0, None] * step[:, :, 0]).sum(0), **exact)
    torch.testing.assert_close(out.logits_vision, (own[..., 1, None] * step[:, :, 1]).sum(0), **exact)
    # step logits of a modality read its own columns of W only, plus its own bias
    torch.testing.assert_close(step[:, :, 0], a @ fusion.readout.weight[:, :DA].T + fusion.bias["audio"], **exact)
    bias = out.share[:, :1] * fusion.bias["audio"] + out.share[:, 1:] * fusion.bias["vision"]
    torch.testing.assert_close(out.contrib_audio + out.contrib_vision + bias, out.logits, **exact)
    assert out.alpha.std() > 0 and (out.share[:, 0] - 0.5).abs().max() > 1e-3   # neither uniform over t nor over m


def test_taaf_modal_silent_sensor_scores_are_constant_and_their_mass_follows():
    """A silent sensor's branch sees z = 0: the same score every step. Lower that score and its attention mass
    (the share) drops towards 0 while y tends to the other modality's own prediction."""
    fusion = modal_fusion(6)
    a, v = features(6)
    out = fusion(torch.zeros_like(a), v)
    _, e = fusion.branches(torch.zeros_like(a), v)
    assert torch.equal(e[:, :, 0], e[:1, :, 0].expand(T, B))
    with torch.no_grad():
        fusion.score_out["audio"].bias.sub_(40.0)
    low = fusion(torch.zeros_like(a), v)
    assert (low.share[:, 0] < out.share[:, 0]).all() and (low.share[:, 0] < 1e-9).all()
    torch.testing.assert_close(low.logits, low.logits_vision, rtol=1e-8, atol=1e-8)


def test_taaf_modal_with_one_modality_is_taaf():
    """model.modalities=[vision]: the joint softmax is over time alone, so taaf_modal with TAAF's weights is TAAF."""
    torch.manual_seed(7)
    taaf = TAAFFusion(0, DV, K, score_hidden=8).double()
    modal = modal_fusion(7, ("vision",))
    with torch.no_grad():
        modal.readout.weight.copy_(taaf.readout.weight)
        modal.bias["vision"].copy_(taaf.readout.bias)
        for name in ("score_hidden", "score_out"):
            getattr(modal, name)["vision"].load_state_dict(getattr(taaf, name).state_dict())
    _, v = features(7)
    a = v[..., :0]
    want, got = taaf(a, v), modal(a, v)
    for name in ("logits", "step_logits", "alpha", "share", "contrib_audio", "contrib_vision"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got.logits_vision, want.logits, rtol=1e-12, atol=1e-12)
    assert got.logits_audio is None and want.logits_vision is None


def test_modality_logits_config():
    base = compose_config("train", [*TINY, "model.fusion=taaf_modal", "loss=taaf_balanced"])
    check_train_config(base)
    model = OmegaConf.to_container(base.model, resolve=True)
    assert ModelConfig.parse(model).modality_logits and not ModelConfig.parse({**model, "modality_logits": False}).modality_logits
    assert not ModelConfig.parse({**model, "fusion": "taaf"}).modality_logits
    for value, fusion, fragment in ((True, "taaf", "model.modality_logits=true needs model.fusion=taaf_modal"),
                                    ("yes", "taaf_modal", "model.modality_logits must be true, false or null")):
        with pytest.raises(ValueError, match=fragment):
            ModelConfig.parse({**model, "fusion": fusion, "modality_logits": value})
    with pytest.raises(ConfigError, match="model.modality_logits=true needs model.fusion=taaf_modal"):
        check_train_config(compose_config("train", [*TINY, "model.fusion=taaf", "loss=ce", "model.modality_logits=true"]))
    assert "full_key: model.modality_logits" in composition_error("train", [*TINY, "model.modality_logits=maybe"])


def test_warp_is_the_identity_at_init():
    x = torch.randn(T, B, DA)
    warp = CausalDelayWarp(3)
    assert torch.equal(warp.kernel, torch.tensor([1.0, 0, 0, 0]))
    assert torch.equal(warp(x), x)


@pytest.mark.parametrize("d", [0, 1, 3])
def test_warp_with_kernel_e_d_delays_by_d(d):
    x = torch.randn(T, B, DA)
    warp = CausalDelayWarp(3)
    with torch.no_grad():
        warp.delta.copy_(torch.nn.functional.one_hot(torch.tensor(d), 4).float() - torch.tensor([1.0, 0, 0, 0]))
    y = warp(x)
    assert torch.equal(y[d:], x[: T - d])
    assert torch.equal(y[:d], torch.zeros_like(y[:d]))  # causal: nothing before the signal arrives


def test_warp_is_causal_and_linear_and_handles_short_sequences():
    torch.manual_seed(4)
    warp = CausalDelayWarp(5)
    with torch.no_grad():
        warp.delta.normal_()
    x = torch.randn(T, B, DA, dtype=torch.float32)
    y = warp(x)
    x2 = x.clone()
    x2[4:] += 1.0  # changing the future leaves the past untouched
    assert torch.equal(warp(x2)[:4], y[:4])
    w = warp.kernel.detach()
    expected = sum(w[d] * torch.nn.functional.pad(x, (0, 0, 0, 0, d, 0))[:T] for d in range(6))
    torch.testing.assert_close(y, expected)
    assert warp(x[:2]).shape == (2, B, DA)  # T shorter than the kernel
    with pytest.raises(ValueError, match="warp_max_delay"):
        CausalDelayWarp(-1)


@pytest.mark.parametrize("fusion", ["taaf", "concat", "taaf_modal"])
def test_model_records_every_layers_binary_spikes(fusion):
    cfg = compose_config("train", [*TINY, f"model.fusion={fusion}", "loss=ce"])
    mcfg = OmegaConf.to_container(cfg.model, resolve=True)
    torch.manual_seed(0)
    model = TwoModalitySNN(mcfg)
    for p in model.parameters():  # strong weights so that every layer fires
        p.data.mul_(8.0)
    t, b = mcfg["T"], 3
    vision = (torch.rand(t, b, 2, 34, 34) < 0.1).float()
    audio = (torch.rand(t, b, mcfg["audio"]["in_channels"]) < 0.3).float()
    record = []
    out = model(vision, audio, record=record)
    n_vision = len(mcfg["vision"]["channels"]) + 1
    n_audio = len(mcfg["audio"]["hidden"]) + 1
    assert len(record) == n_vision + n_audio
    expected_widths = [*mcfg["vision"]["channels"], mcfg["vision"]["features"], *mcfg["audio"]["hidden"], mcfg["audio"]["features"]]
    for spikes, width in zip(record, expected_widths):
        assert spikes.shape[:3] == (t, b, width)
        assert ((spikes == 0) | (spikes == 1)).all()
        assert 0 < spikes.mean() < 1
    # The recorded last layers are the features the fusion saw (the warp is the identity at init).
    assert torch.equal(record[n_vision - 1], out.feat_vision) and torch.equal(record[-1], out.feat_audio)
    assert out.logits.shape == (b, mcfg["n_classes"]) and torch.isfinite(out.logits).all()
    with pytest.raises(ValueError, match="T="):
        model(vision, audio[:-1])
