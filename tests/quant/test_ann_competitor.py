"""quant.ann_competitor: shapes, MAC and weight counts against a manual count, the int8 power-of-two grid,
the quantized forward against an integer reference, the measured nonzeros against brute force, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edge_taaf.config import ConfigError
from quant.ann_competitor import ACT_STATS_STEPS, AnnArchError, AnnCompetitor, arch_from_dict, measure_nonzero

T, C = 6, 16
ARCH = {"vision": {"channels": [4, 4], "kernels": [5, 3], "strides": [2, 2]},
        "audio": {"channels": [4], "kernels": [3], "strides": [2]}, "hidden": 8, "weight_bits": 8, "act_bits": 8}


def make(arch=None, **kw) -> AnnCompetitor:
    torch.manual_seed(0)
    return AnnCompetitor(arch_from_dict({**ARCH, **(arch or {})}), (2, 34, 34), (T, C), vision_max=T, audio_max=3, **kw)


def batch(b=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    vision = (torch.rand(T, b, 2, 34, 34, generator=g) < 0.15).float()      # (T, B, 2, H, W) binary spikes
    audio = torch.randint(0, 4, (T, b, C), generator=g).float() * (torch.rand(T, b, C, generator=g) < 0.5)
    return vision, audio, torch.randint(0, 10, (b,), generator=g)


def trained(model, steps=ACT_STATS_STEPS + 5):
    """A few optimiser steps: the activation quantizers leave statistics collection for learned pow2 scales."""
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    for i in range(steps):
        v, a, y = batch(8, seed=100 + i)
        loss = F.cross_entropy(model(v, a), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_shapes_and_counts_by_hand():
    m = make()
    v, a, _ = batch()
    assert m(v, a).shape == (5, 10)
    frame, cmap = m.frames(v, a)
    assert frame.shape == (5, 2, 34, 34) and cmap.shape == (5, 1, T, C)
    assert torch.equal(frame, v.sum(0)) and torch.equal(cmap[:, 0], a.transpose(0, 1))
    # vision: (2,34,34) -k5 s2-> (4,17,17) -k3 s2-> (4,9,9); audio: (1,6,16) -k3 s2-> (4,3,8); 324 + 96 = 420
    manual_macs = {"vision.conv0": 4 * 17 * 17 * 2 * 25, "vision.conv1": 4 * 9 * 9 * 4 * 9, "audio.conv0": 4 * 3 * 8 * 9,
                   "fusion.hidden": 420 * 8, "fusion.classifier": 8 * 10}
    manual_weights = {"vision.conv0": 4 * 2 * 25, "vision.conv1": 4 * 4 * 9, "audio.conv0": 4 * 9,
                      "fusion.hidden": 420 * 8, "fusion.classifier": 80}
    shapes = {s.name: s for s in m.layer_shapes()}
    assert list(shapes) == list(manual_macs)
    assert {k: s.macs for k, s in shapes.items()} == manual_macs
    assert {k: s.weights for k, s in shapes.items()} == manual_weights
    assert m.mac_count() == 57800 + 11664 + 864 + 3360 + 80
    assert m.weight_count() == sum(manual_weights.values()) == sum(p.numel() for n, p in m.named_parameters()
                                                                    if n.endswith(".weight"))
    assert (shapes["vision.conv0"].n_in, shapes["vision.conv0"].n_out) == (2 * 34 * 34, 4 * 17 * 17)
    assert shapes["vision.conv0"].in_bits == 3 and shapes["audio.conv0"].in_bits == 2     # counts 0..6, 0..3
    assert shapes["fusion.hidden"].in_bits == 8 and shapes["fusion.classifier"].out_bits == 32
    no_hidden = make({"hidden": 0})
    assert [s.name for s in no_hidden.layer_shapes()][-1] == "fusion.classifier"
    assert no_hidden.layer_shapes()[-1].macs == 420 * 10


@pytest.mark.parametrize("bits", [8, 4])
def test_weights_are_on_the_power_of_two_int_grid(bits):
    m = trained(make({"weight_bits": bits}), steps=3)
    limit = 2 ** (bits - 1) - 1
    for g in m.geoms:
        qw = m.layer(g.name).quant_weight()
        scale = float(qw.scale.detach().reshape(-1)[0])
        assert qw.scale.numel() == 1 and 2.0 ** round(math.log2(scale)) == scale       # one power-of-two scale
        ints = qw.value.detach() / scale
        assert torch.equal(ints, ints.round()) and float(ints.abs().max()) <= limit    # narrow-range signed ints
        assert float(ints.abs().max()) > limit / 2                                     # the range is used
        w, log2 = m.int_weights()[g.name]
        assert torch.equal(w, ints) and 2.0 ** log2 == scale


def test_quantized_forward_equals_an_integer_reference(monkeypatch):
    """After training, the eval forward is the integer network: int8 weights, integer counts in, shifts."""
    monkeypatch.setattr("quant.ann_competitor.ACT_STATS_STEPS", 4)     # learned pow2 scales after 4 steps
    m = trained(make(), steps=8)
    v, a, _ = batch(6, seed=7)
    logits = m(v, a).double()

    def layer(name, x_int, x_scale, act):
        w, log2 = m.int_weights()[name]
        g = next(g for g in m.geoms if g.name == name)
        acc = (F.conv2d(x_int, w.double(), stride=g.stride, padding=g.kernel // 2) if g.kind == "conv"
               else x_int @ w.double().T)                                                   # int32 accumulators
        assert float(acc.abs().max()) < 2 ** 24
        if act is None:
            return acc, x_scale * 2.0 ** log2
        s = float(act.act_quant.scale().detach())
        assert 2.0 ** round(math.log2(s)) == s                                            # requantise by a shift
        return torch.clamp(torch.round(acc * x_scale * 2.0 ** log2 / s), 0, 255), s

    frame, cmap = m.frames(v, a)
    x, sv = layer("vision.conv0", frame.double(), 1.0, m.acts["vision_conv0"])
    xv, sv = layer("vision.conv1", x, sv, m.feature_act)
    xa, sa = layer("audio.conv0", cmap.double(), 1.0, m.feature_act)
    assert sv == sa
    z, s = layer("fusion.hidden", torch.cat([xv.flatten(1), xa.flatten(1)], 1), sv, m.acts["fusion_hidden"])
    acc, s = layer("fusion.classifier", z, s, None)
    assert torch.equal(logits, acc * s)


def test_measured_nonzeros_equal_a_brute_force_count():
    m = trained(make(), steps=2)
    v, a, _ = batch(4, seed=3)
    seen = {}
    hooks = [m.layer(g.name).register_forward_pre_hook(lambda _m, args, n=g.name: seen.__setitem__(n, args[0].detach()))
             for g in m.geoms]
    with torch.no_grad():
        m(v, a)
    for h in hooks:
        h.remove()
    measured = measure_nonzero(m, v, a, batch_size=3)       # two batches: 3 + 1
    for g in m.geoms:
        x = seen[g.name].numpy() != 0
        inputs = x.sum() / 4
        if g.kind == "dense":
            macs = x.sum() * g.n_out / 4
        else:                                              # every output position, every in-bounds tap
            p = g.kernel // 2
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            _, h2, w2 = g.out_shape
            macs = sum(xp[:, :, i * g.stride:i * g.stride + g.kernel, j * g.stride:j * g.stride + g.kernel].sum()
                       for i in range(h2) for j in range(w2)) * g.out_shape[0] / 4
        assert measured[g.name] == {"inputs": inputs, "macs": macs}, g.name
        assert 0 < measured[g.name]["macs"] <= g.macs
    priced = {s.name: s for s in m.layer_shapes(measured)}
    assert priced["vision.conv0"].nonzero_macs == measured["vision.conv0"]["macs"]


def test_errors_name_the_option():
    with pytest.raises(AnnArchError, match=r"ann\.vision\.channels=\[4, 0\]"):
        make({"vision": {"channels": [4, 0], "kernels": [5, 3], "strides": [2, 2]}})
    with pytest.raises(ConfigError, match=r"ann\.audio: .*one entry per layer"):
        make({"audio": {"channels": [4, 4], "kernels": [3], "strides": [2]}})
    with pytest.raises(ConfigError, match=r"ann\.hidden=-1"):
        make({"hidden": -1})
    with pytest.raises(ConfigError, match=r"ann\.weight_bits=9"):
        make({"weight_bits": 9})
    with pytest.raises(ConfigError, match=r"ann\.act_bits=1"):
        make({"act_bits": 1})
    m = make()
    v, a, _ = batch()
    v[:, 0, 0, 0, 0] = 2                                  # a count of 12 > T x 1
    with pytest.raises(ValueError, match="vision counts reach 12"):
        m(v, a)
