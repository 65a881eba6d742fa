"""Test support for firmware_sim (not a test module): random integer programs, a pure-numpy reference interpreter of
docs/accelerator.md, and a writer of contract ONNX files (Scan over T, QCDQ weights) that
onnxruntime runs. Independent of quant/, so the simulator is checked before the exporter exists.
"""
from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from firmware_sim import spec
from firmware_sim.frontend import FrontEnd
from firmware_sim.program import Layer, ModalBranch, Program, Readout, affine_bound, affine_upper, conv_out, warp_range

OPSET = 17
AUDIO_MAX = 8   # largest audio spike count per channel and bin (the contract's default clip_audio)

# ---------------------------------------------------------------- how many random networks CI runs

# Random networks per property test (hypothesis max_examples or parametrisations), 235 in all; each
# test asserts that it ran its count and that every layer spiked in at least ACTIVE_SHARE of them
# (ActivityLog; measured: about 93-95 %, 97 % and 100 %; the fixed cases assert it per case), and
# tests/firmware_sim/test_kernels.py checks the total.
RANDOM_NETWORKS = {
    "firmware_sim/test_kernels.py::test_random_programs_equal_reference": 150,   # simulator == numpy reference
    "firmware_sim/test_onnx.py::test_simulator_equals_onnxruntime": 60,          # simulator == onnxruntime
    "quant/test_three_way.py::test_random_quantized_models_three_way": 20,       # quant == onnxruntime == simulator
    "quant/test_three_way.py::test_simulator_equals_quant_and_onnxruntime": 5,   # fixed: 4 all layers spiking, 1 saturating
}
MIN_RANDOM_NETWORKS = 200        # the total must stay at least this (tests/firmware_sim/test_kernels.py checks)
ACTIVE_SHARE = 0.8               # every layer spiking in at least this share of a test's networks


def silent_layers(outputs: dict[str, np.ndarray]) -> list[str]:
    """The layers without a single spike, from a run's outputs ('spikes.<layer>' entries)."""
    spikes = {k.removeprefix("spikes."): v for k, v in outputs.items() if k.startswith("spikes.")}
    assert spikes, f"no 'spikes.<layer>' entries among {sorted(outputs)}"
    return sorted(name for name, s in spikes.items() if not np.any(s))


class ActivityLog:
    """Collects, per random network of one property test, the layers that stayed silent; check()
    asserts the number of networks run and that every layer spiked in at least ACTIVE_SHARE of them."""

    def __init__(self, test: str):
        self.test, self.silent = test, []

    def record(self, outputs: dict[str, np.ndarray]) -> None:
        self.silent.append(silent_layers(outputs))

    def check(self, share: float = ACTIVE_SHARE) -> float:
        n, expected = len(self.silent), RANDOM_NETWORKS[self.test]
        assert n >= expected, f"{self.test}: ran {n} random networks, expected {expected}"
        active = sum(not s for s in self.silent)
        rate = active / n
        counts: dict[str, int] = {}
        for names in self.silent:
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        print(f"{self.test}: {n} random networks, every layer spiking in {active} ({rate:.0%}); silent: {counts}")
        assert rate >= share, (f"{self.test}: every layer spiked in only {active} of {n} random networks "
                               f"({rate:.0%} < {share:.0%}); silent layers (networks): {counts}")
        return rate


# ---------------------------------------------------------------- random programs

def smallest_shift(bound_fn, limit: int) -> int:
    r = 0
    while bound_fn(r) >= limit:
        r += 1
    return r


def random_frontend(rng: np.random.Generator, shape: tuple[int, ...], top: int, vision: bool) -> FrontEnd:
    """A random front-end the accelerator can run on ``shape`` (half of them the identity): pooling that
    divides the sensor, either mode, a small min_count, clip and refractory, gain_shift >= leak_shift (so the
    adaptive threshold does not silence the element for good)."""
    if rng.random() < 0.5:
        return FrontEnd.identity(shape, top)
    if vision:
        f = int(rng.choice([f for f in (1, 2, 4) if shape[1] % f == 0 and shape[2] % f == 0 and shape[1] // f >= 4]))
        pool = (int(rng.choice([1, 2])), f, f)
    else:
        pool = (int(rng.choice([f for f in (1, 2, 4) if shape[0] % f == 0])),)
    vol = int(np.prod(pool))
    leak = int(rng.integers(1, 5))
    # min_count at most the largest pooled count (else the input is silenced for good)
    return FrontEnd(pool, str(rng.choice(spec.FRONTEND_MODES)), int(rng.integers(1, min(2, top * vol) + 1)), int(rng.integers(1, top * vol + 1)),
                    int(rng.integers(0, 4)), leak, leak + int(rng.integers(0, 4))).check(shape, top)


def random_program(rng: np.random.Generator, *, vision_shape=(2, 8, 8), audio_dim=12, fusion="taaf", weight_bits=None,
                   leak_shift=None, n_classes=4, T=6, big_theta=False, n_convs=None, frontends=False) -> Program:
    """A small random program following the contract (shifts chosen as the doc says).

    Every spiking layer is driven so that it spikes in most examples (an equality test on a silent
    layer checks nothing; the property tests measure and assert the rate): each neuron's weights lean
    positive with one strong synapse, and theta is drawn below a quarter of the largest current one step
    can bring it. big_theta (saturation mode): 7- or 8-bit weights, all synapses strong (|w| >= lim/2),
    about a third of the neurons (never the first) all negative, a slow leak (k = 6..10), and theta
    either a few strong steps away or so low that reset by subtraction cannot keep up: membranes
    reach both 16-bit limits in a share of the examples while every layer still spikes.
    frontends: draw each input's front-end with random_frontend (False: the identity; a dict: those given)."""
    bits = int(rng.integers(7 if big_theta else 4, 9)) if weight_bits is None else weight_bits
    lim = spec.weight_limit(bits)
    k_leak = int(rng.integers(6, 11) if big_theta else rng.integers(0, 7)) if leak_shift is None else leak_shift
    if k_leak == 6 and not big_theta and leak_shift is None:
        k_leak = spec.LEAK_OFF       # one draw in 7: no leak (integrate-and-fire)
    state_hi = spec.state_range()[1]

    def weights(shape):
        w = rng.integers(-lim, lim + 1, size=shape)
        w[rng.random(shape) < 0.3] = 0
        return w.astype(np.int8)

    def layer_weights(shape):
        rows = shape[0]
        if big_theta:
            sign = np.where((rng.random(rows) < 0.35) & (np.arange(rows) > 0), -1, 1).reshape(-1, *[1] * (len(shape) - 1))
            w = rng.integers((lim + 1) // 2, lim + 1, size=shape) * sign
            w[rng.random(shape) < 0.2] = 0
            return w.astype(np.int8)
        w = rng.integers(-(3 * lim) // 4, lim + 1, size=shape)
        w[rng.random(shape) < 0.3] = 0
        w = w.reshape(rows, -1)
        w[np.arange(rows), rng.integers(0, w.shape[1], rows)] = rng.integers((lim + 1) // 2, lim + 1, rows)
        return w.reshape(shape).astype(np.int8)

    def theta(w: np.ndarray, in_max: int) -> int:
        # reach: the largest current one step can bring a neuron (its positive synapses at the input's maximum)
        reach = int(np.clip(w.astype(np.int64), 0, None).reshape(w.shape[0], -1).sum(1).max()) * in_max
        if not big_theta:
            top = rng.integers(1, max(2, reach // 4))
        elif rng.random() < 0.5:
            top = rng.integers(reach // 8, reach // 2 + 2)
        else:
            top = rng.integers(1, max(2, reach // 8))
        return int(np.clip(top, 1, state_hi))

    inputs = {"vision": (tuple(vision_shape), 1), "audio": ((audio_dim,), AUDIO_MAX)}
    if isinstance(frontends, dict):
        fes = {m: frontends.get(m) or FrontEnd.identity(shape, top) for m, (shape, top) in inputs.items()}
    else:
        fes = {m: random_frontend(rng, shape, top, m == "vision") if frontends else FrontEnd.identity(shape, top)
               for m, (shape, top) in inputs.items()}
    layers = []
    src, shape = "vision", fes["vision"].out_shape(tuple(vision_shape))
    for i in range(int(rng.integers(1, 3)) if n_convs is None else n_convs):
        k = int(rng.choice([1, 3, 5]))
        s = int(rng.integers(1, 3))
        c_out = int(rng.integers(1, 5))
        out = (c_out, conv_out(shape[1], k, s, k // 2), conv_out(shape[2], k, s, k // 2))
        name = f"vision.conv{i}"
        w = layer_weights((c_out, shape[0], k, k))
        top = fes["vision"].out_max(1) if src == "vision" else 1
        layers.append(Layer(name, "conv", "vision", src, shape, out, w, -8, theta(w, top), s, k // 2))
        src, shape = name, out
    dv = int(rng.integers(2, 7))
    n_src = int(np.prod(shape))
    w = layer_weights((dv, n_src))
    layers.append(Layer("vision.dense", "dense", "vision", src, (n_src,), (dv,), w, -8, theta(w, 1)))
    h_a = int(rng.integers(2, 9))
    da = int(rng.integers(2, 7))
    a_in = fes["audio"].out_shape((audio_dim,))[0]
    w = layer_weights((h_a, a_in))
    layers.append(Layer("audio.fc0", "dense", "audio", "audio", (a_in,), (h_a,), w, -7, theta(w, fes["audio"].out_max(AUDIO_MAX))))
    w = layer_weights((da, h_a))
    layers.append(Layer("audio.fc1", "dense", "audio", "audio.fc0", (h_a,), (da,), w, -7, theta(w, 1)))
    d = da + dv
    wa, wv = weights((int(rng.integers(1, 5)),)), weights((int(rng.integers(1, 5)),))
    (a_lo, a_hi), (v_lo, v_hi) = warp_range(wa), warp_range(wv)
    z_lo, z_hi = np.r_[np.full(da, a_lo), np.full(dv, v_lo)], np.r_[np.full(da, a_hi), np.full(dv, v_hi)]
    w_r = weights((n_classes, d))
    b_r = rng.integers(-4 * lim, 4 * lim + 1, n_classes)
    logit_shift = smallest_shift(lambda r: affine_bound(w_r, b_r, z_lo, z_hi) >> r, 2 ** spec.READOUT_MAX_BITS)
    if fusion == "taaf_modal":
        readout = _modal_readout(rng, wa, wv, w_r, da, dv, lim)
        return Program(T, MODAL_MAX_T, bits, spec.STATE_BITS, k_leak, n_classes, inputs, layers, readout,
                       frontends=fes).check()
    readout = Readout(fusion, "audio.fc1", "vision.dense", wa, wv, w_r, b_r, logit_shift)
    if fusion == "taaf":
        n_h = int(rng.integers(1, 6))
        u, c = weights((n_h, d)), rng.integers(-2 * lim, 2 * lim + 1, n_h)
        s, d0 = weights((1, n_h)), rng.integers(-4 * lim, 4 * lim + 1, 1)
        h_hi = np.maximum(affine_upper(u, c, z_lo, z_hi), 0)
        readout.hidden_weight, readout.hidden_bias, readout.out_weight, readout.out_bias = u, c, s, d0
        readout.hidden_shift = smallest_shift(lambda r: affine_bound(s, d0, np.zeros_like(h_hi), h_hi >> r), spec.EXACT_LIMIT)
        e_bits = int(affine_bound(s, d0, np.zeros_like(h_hi), h_hi >> readout.hidden_shift)).bit_length()
        # mostly a scale where score differences give attention between 0 and 256; sometimes a coarse one
        # (score_log2 > -EXP2_FRAC_BITS: the lookup index is a left shift)
        readout.score_log2 = int(rng.integers(-3, 0)) if rng.random() < 0.2 else -e_bits + int(rng.integers(0, 12))
    readout.log2 = {"warp_log2": -6, "readout_log2": -7, "score_hidden_log2": -7, "score_out_log2": -6}
    return Program(T, 32, bits, spec.STATE_BITS, k_leak, n_classes, inputs, layers, readout, frontends=fes).check()


# taaf_modal sums 2 x T products |u l'| <= 2^8 (2^11 - 1) per class: T <= 16 keeps |y| below 2^24
MODAL_MAX_T = (spec.EXACT_LIMIT - 1) // (2 * 2 ** spec.EXP2_ONE_BITS * (2 ** spec.READOUT_MAX_BITS - 1))


def _modal_readout(rng, wa, wv, w_r, da: int, dv: int, lim: int) -> Readout:
    """A random taaf_modal readout on z = [audio (da) ; vision (dv)]: per modality a logit bias and a score MLP,
    one logit_shift, hidden_shift and score_log2 chosen (as the doc says) so that every branch fits; the
    per-modality outputs on in three programs of four."""
    n_h, n_k = int(rng.integers(1, 6)), w_r.shape[0]
    parts = {"audio": (warp_range(wa), slice(0, da)), "vision": (warp_range(wv), slice(da, da + dv))}
    branches, logit_bounds, h_his = {}, [], {}
    for m, ((lo, hi), cols) in parts.items():
        n = cols.stop - cols.start
        z_lo, z_hi = np.full(n, lo), np.full(n, hi)
        branches[m] = ModalBranch(rng.integers(-4 * lim, 4 * lim + 1, n_k), weights_of(rng, (n_h, n), lim),
                                  rng.integers(-2 * lim, 2 * lim + 1, n_h), weights_of(rng, (1, n_h), lim),
                                  rng.integers(-4 * lim, 4 * lim + 1, 1))
        br = branches[m]
        logit_bounds.append(affine_bound(w_r[:, cols], br.bias, z_lo, z_hi))
        h_his[m] = np.maximum(affine_upper(br.hidden_weight, br.hidden_bias, z_lo, z_hi), 0)

    def score_bound(m, r):
        br = branches[m]
        return affine_bound(br.out_weight, br.out_bias, np.zeros_like(h_his[m]), h_his[m] >> r)
    logit_shift = smallest_shift(lambda r: max(logit_bounds) >> r, 2 ** spec.READOUT_MAX_BITS)
    hidden_shift = smallest_shift(lambda r: max(score_bound(m, r) for m in branches), spec.EXACT_LIMIT // 2)
    e_bits = max(int(score_bound(m, hidden_shift)).bit_length() for m in branches)
    score_log2 = int(rng.integers(-3, 0)) if rng.random() < 0.2 else -e_bits + int(rng.integers(0, 12))
    return Readout("taaf_modal", "audio.fc1", "vision.dense", wa, wv, w_r, None, logit_shift, hidden_shift=hidden_shift,
                   score_log2=score_log2, branches=branches, modality_logits=bool(rng.random() < 0.75),
                   log2={"warp_log2": -6, "readout_log2": -7, "score_hidden_log2": -7, "score_out_log2": -6})


def weights_of(rng, shape, lim: int) -> np.ndarray:
    """Random narrow-range integer weights, 30 % zeros (int8)."""
    w = rng.integers(-lim, lim + 1, size=shape)
    w[rng.random(shape) < 0.3] = 0
    return w.astype(np.int8)


def random_inputs(rng, program: Program, T: int, B: int, density=0.3) -> dict[str, np.ndarray]:
    out = {}
    for name, (shape, top) in program.inputs.items():
        counts = rng.integers(1, top + 1, size=(T, B, *shape))
        out[name] = (counts * (rng.random((T, B, *shape)) < density)).astype(np.uint8)
    return out


# ---------------------------------------------------------------- numpy reference interpreter

def reference_current(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Synaptic current (T, B, *out_shape) int64 of x (T, B, *in_shape), dense numpy."""
    w = layer.weight.astype(np.int64)
    n_t, n_b = x.shape[:2]
    if layer.kind == "dense":
        return x.reshape(n_t, n_b, -1).astype(np.int64) @ w.T
    p, s, k = layer.padding, layer.stride, w.shape[2]
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (0, 0), (p, p), (p, p)))
    _, h_out, w_out = layer.out_shape
    cur = np.zeros((n_t, n_b, *layer.out_shape), np.int64)
    for ky in range(k):
        for kx in range(k):
            patch = xp[:, :, :, ky:ky + s * (h_out - 1) + 1:s, kx:kx + s * (w_out - 1) + 1:s]
            cur += np.einsum("oc,tbchw->tbohw", w[:, :, ky, kx], patch)
    return cur


def reference_frontend(fe: FrontEnd, x: np.ndarray) -> np.ndarray:
    """docs/accelerator.md "Front-end" by the book, one element at a time: x (T, B, *in_shape) -> (T, B, *out_shape)."""
    n_t, n_b = x.shape[:2]
    in_shape = x.shape[2:]
    out_shape = tuple(d // f for d, f in zip(in_shape, fe.pool))
    y = np.zeros((n_t, n_b, *out_shape), np.int64)
    for b in range(n_b):
        for idx in np.ndindex(*out_shape):
            block = tuple(slice(i * f, (i + 1) * f) for i, f in zip(idx, fe.pool))
            m = r = 0
            for t in range(n_t):
                c = int(x[(t, b, *block)].sum())
                th = max(fe.min_count, m >> fe.gain_shift) if fe.mode == "adaptive" else fe.min_count
                if c >= th and r == 0:
                    y[(t, b, *idx)] = min(c, fe.clip)
                    r = fe.refractory
                else:
                    r = max(r - 1, 0)
                if fe.mode == "adaptive":
                    m = m - (m >> fe.leak_shift) + c
    return y


def reference_run(program: Program, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of docs/accelerator.md, by the book (spec.lif_step, spec.exp2_weights)."""
    acts = {k: reference_frontend(program.frontend(k), np.asarray(v).astype(np.int64)) for k, v in inputs.items()}
    out, sats = {f"frontend.{k}": v for k, v in acts.items()}, {}
    for layer in program.layers:
        cur = reference_current(layer, acts[layer.input])
        v = np.zeros(cur.shape[1:], np.int64)
        spikes, n_sat = [], 0
        for t in range(cur.shape[0]):
            v, s, hit = spec.lif_step(v, cur[t], layer.theta, program.leak_shift, program.state_bits)
            spikes.append(s)
            n_sat += int(hit.sum())
        acts[layer.name] = np.stack(spikes)
        out[f"spikes.{layer.name}"] = acts[layer.name]
        sats[layer.name] = n_sat
    r = program.readout
    n_t, n_b = acts[r.audio_input].shape[:2]

    def warp(x, w):
        x = x.reshape(n_t, n_b, -1)
        res = np.zeros_like(x)
        for d in range(min(w.size, n_t)):
            res[d:] += int(w[d]) * x[:n_t - d]
        return res

    z = np.concatenate([warp(acts[r.audio_input], r.warp_audio), warp(acts[r.vision_input], r.warp_vision)], axis=-1)
    if r.fusion == "taaf_modal":
        out.update(reference_modal_readout(r, z, acts[r.audio_input].reshape(n_t, n_b, -1).shape[-1]))
        out["saturations"] = sats
        return out
    step = (z @ r.weight.astype(np.int64).T + r.bias.astype(np.int64)) >> r.logit_shift
    if r.fusion == "taaf":
        h = np.maximum(z @ r.hidden_weight.astype(np.int64).T + r.hidden_bias, 0) >> r.hidden_shift
        scores = (h @ r.out_weight.astype(np.int64).T + r.out_bias)[..., 0]
        att = spec.exp2_weights(scores, r.score_log2)
    else:
        scores, att = np.zeros((n_t, n_b), np.int64), np.ones((n_t, n_b), np.int64)
    out.update(logits=(att[..., None] * step).sum(0), step_logits=step, scores=scores, attention=att)
    out["saturations"] = sats
    return out


def reference_modal_readout(r: Readout, z: np.ndarray, d_audio: int) -> dict[str, np.ndarray]:
    """taaf_modal by the book on z (T, B, D_a + D_v): each branch's step logits and scores, the exp2 weights
    over every (t, m) at once (spec.exp2_weights on the T x M scores stacked as one sequence), y, and with
    modality_logits each modality's own y_m (spec.exp2_weights over its T scores)."""
    n_t, n_b = z.shape[:2]
    cols = {"audio": slice(0, d_audio), "vision": slice(d_audio, None)}
    steps, scores = [], []
    for m, br in r.branches.items():
        zm = z[..., cols[m]]
        steps.append((zm @ r.weight[:, cols[m]].astype(np.int64).T + br.bias) >> r.logit_shift)
        h = np.maximum(zm @ br.hidden_weight.astype(np.int64).T + br.hidden_bias, 0) >> r.hidden_shift
        scores.append((h @ br.out_weight.astype(np.int64).T + br.out_bias)[..., 0])
    step, e = np.stack(steps, axis=2), np.stack(scores, axis=2)          # (T, B, M, K), (T, B, M)
    n_m = e.shape[2]
    joint = spec.exp2_weights(e.transpose(0, 2, 1).reshape(n_t * n_m, n_b), r.score_log2)
    att = joint.reshape(n_t, n_m, n_b).transpose(0, 2, 1)
    out = {"logits": (att[..., None] * step).sum((0, 2)), "step_logits": step, "scores": e, "attention": att}
    if r.modality_logits:
        own = spec.exp2_weights(e, r.score_log2)                          # max over t, per sample and modality
        out.update({f"logits_{m}": (own[:, :, i, None] * step[:, :, i]).sum(0) for i, m in enumerate(r.branches)})
    return out


# ---------------------------------------------------------------- contract ONNX writer

class _Graph:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, value, dtype=np.float32, name=None) -> str:
        self.n += 1
        name = name or f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type, inputs, n_out=1, name=None, **attrs):
        self.n += 1
        outs = [name] if name and n_out == 1 else [f"{op_type.lower()}{self.n}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs


def float_weights(rng, q: np.ndarray, log2: int, bits: int) -> np.ndarray:
    """Float weights whose QCDQ (round half to even, clip to the narrow range) gives back q:
    q plus an offset in [-0.5, 0.5] (exact halves only where half-to-even rounds back to q),
    and far out of range where q sits at the limit (the Clip brings it back)."""
    q = q.astype(np.float64)
    off = rng.uniform(-0.49, 0.49, q.shape)
    even = (q % 2 == 0)
    halves = rng.random(q.shape) < 0.3
    off[even & halves] = rng.choice([-0.5, 0.5], int((even & halves).sum()))
    lim = spec.weight_limit(bits)
    off[(q == lim)] += rng.uniform(0, 5, int((q == lim).sum()))
    off[(q == -lim)] -= rng.uniform(0, 5, int((q == -lim).sum()))
    return ((q + off) * 2.0 ** log2).astype(np.float32)


def program_json(p: Program, log2: dict) -> dict:
    r = p.readout
    layers = [{"name": L.name, "modality": L.modality, "kind": L.kind, "input": L.input, "in_shape": list(L.in_shape),
               "out_shape": list(L.out_shape), "weight": f"{L.name}.weight", "weight_log2": L.weight_log2, "theta": L.theta,
               **({"kernel": L.kernel, "stride": L.stride, "padding": L.padding} if L.kind == "conv" else {})} for L in p.layers]
    ro = {"audio_input": r.audio_input, "vision_input": r.vision_input, "warp_audio": "warp.audio", "warp_vision": "warp.vision",
          "warp_log2": log2["warp_log2"], "readout_weight": "readout.weight", "readout_log2": log2["readout_log2"],
          "readout_bias": "readout.bias", "logit_shift": r.logit_shift}
    if r.fusion == "taaf":
        ro.update(score_hidden_weight="score.hidden.weight", score_hidden_log2=log2["score_hidden_log2"], score_hidden_bias="score.hidden.bias",
                  hidden_shift=r.hidden_shift, score_out_weight="score.out.weight", score_out_log2=log2["score_out_log2"],
                  score_out_bias="score.out.bias", score_log2=r.score_log2)
    if r.fusion == "taaf_modal":
        del ro["readout_bias"]
        for m in ("audio", "vision"):
            ro.update({f"{m}_readout_bias": f"readout.{m}.bias", f"{m}_score_hidden_weight": f"score.{m}.hidden.weight",
                       f"{m}_score_hidden_bias": f"score.{m}.hidden.bias", f"{m}_score_out_weight": f"score.{m}.out.weight",
                       f"{m}_score_out_bias": f"score.{m}.out.bias"})
        ro.update(score_hidden_log2=log2["score_hidden_log2"], hidden_shift=r.hidden_shift, score_out_log2=log2["score_out_log2"],
                  score_log2=r.score_log2, modality_logits=r.modality_logits)
    return {"contract": spec.CONTRACT_VERSION, "T": p.T, "max_T": p.max_T, "weight_bits": p.weight_bits, "state_bits": p.state_bits,
            "leak_shift": p.leak_shift, "reset": spec.RESET, "n_classes": p.n_classes, "fusion": r.fusion,
            "inputs": {k: {"shape": list(s), "max": m} for k, (s, m) in p.inputs.items()}, "layers": layers, "readout": ro,
            "frontends": {k: {"pool": list(fe.pool), "mode": fe.mode, "min_count": fe.min_count, "clip": fe.clip,
                              "refractory": fe.refractory, "leak_shift": fe.leak_shift, "gain_shift": fe.gain_shift}
                          for k, fe in ((k, p.frontend(k)) for k in p.inputs)}}


def build_onnx(p: Program, seed: int = 0) -> onnx.ModelProto:
    """The program as a contract ONNX model (docs/accelerator.md, 'The ONNX file')."""
    rng = np.random.default_rng(seed)
    g = _Graph()
    r = p.readout
    lim = spec.weight_limit(p.weight_bits)
    log2 = dict(r.log2) if r.log2 else {"warp": -6, "readout": -7, "hidden": -7, "out": -6}
    zp = g.const(0, np.int8)
    qmin, qmax = g.const(-lim, np.int8), g.const(lim, np.int8)

    def qcdq(name, q, lg):
        g.inits.append(numpy_helper.from_array(float_weights(rng, q, lg, p.weight_bits), name))
        scale = g.const(2.0 ** lg)
        x = g.op("QuantizeLinear", [name, scale, zp])
        x = g.op("Clip", [x, qmin, qmax])
        x = g.op("DequantizeLinear", [x, scale, zp])
        return g.op("Mul", [x, g.const(2.0 ** -lg)])

    def bias(name, b):
        g.inits.append(numpy_helper.from_array(np.asarray(b, np.int32), name))
        return g.op("Cast", [name], to=TensorProto.FLOAT)

    wint = {}
    for L in p.layers:
        w = qcdq(f"{L.name}.weight", L.weight, L.weight_log2)
        wint[L.name] = w if L.kind == "conv" else g.op("Transpose", [w], perm=[1, 0])
    # Scan body: one step of every spiking layer
    body = _Graph()
    body.n = 10_000
    lo, hi = spec.state_range(p.state_bits)
    state_in, state_out, scan_in, scan_out = [], [], [], []
    cur_val = {}
    fe_states = []          # (state value, shape) of the front-ends
    for name, (shape, _) in p.inputs.items():
        scan_in.append(helper.make_tensor_value_info(f"{name}_t", TensorProto.FLOAT, ["B", *shape]))
        cur_val[name] = _frontend_nodes(body, p.frontend(name), name, shape, fe_states)
        scan_out.append(helper.make_tensor_value_info(cur_val[name], TensorProto.FLOAT, ["B", *p.shape_of(name)]))
    for L in p.layers:
        x = cur_val[L.input]
        if L.kind == "conv":
            cur = body.op("Conv", [x, wint[L.name]], pads=[L.padding] * 4, strides=[L.stride] * 2, kernel_shape=[L.kernel] * 2)
        else:
            if len(p.shape_of(L.input)) > 1:
                x = body.op("Flatten", [x], axis=1)
            cur = body.op("MatMul", [x, wint[L.name]])
        v = f"v.{L.name}"
        state_in.append(helper.make_tensor_value_info(v, TensorProto.FLOAT, ["B", *L.out_shape]))
        if p.leak_shift >= spec.LEAK_OFF:          # no leak (integrate-and-fire): u = clip(v + I)
            raw = body.op("Add", [v, cur])
        else:
            leak = body.op("Floor", [body.op("Div", [v, body.const(2.0 ** p.leak_shift)])])
            raw = body.op("Add", [body.op("Sub", [v, leak]), cur])
        u = body.op("Clip", [raw, body.const(lo), body.const(hi)])
        theta = body.const(float(L.theta))
        s = body.op("Cast", [body.op("GreaterOrEqual", [u, theta])], to=TensorProto.FLOAT, name=f"s.{L.name}")
        body.op("Sub", [u, body.op("Mul", [s, theta])], name=f"v_next.{L.name}")
        state_out.append(helper.make_tensor_value_info(f"v_next.{L.name}", TensorProto.FLOAT, ["B", *L.out_shape]))
        scan_out.append(helper.make_tensor_value_info(f"s.{L.name}", TensorProto.FLOAT, ["B", *L.out_shape]))
        cur_val[L.name] = f"s.{L.name}"
    for value, shape in fe_states:
        state_in.append(helper.make_tensor_value_info(f"{value}.in", TensorProto.FLOAT, ["B", *shape]))
        state_out.append(helper.make_tensor_value_info(f"{value}.out", TensorProto.FLOAT, ["B", *shape]))
    body_graph = helper.make_graph(body.nodes, "step", state_in + scan_in, state_out + scan_out, initializer=body.inits)
    first = next(iter(p.inputs))
    batch = g.op("Slice", [g.op("Shape", [first]), g.const([1], np.int64), g.const([2], np.int64)])
    init_states = []
    for L in p.layers:
        shape = g.op("Concat", [batch, g.const(list(L.out_shape), np.int64)], axis=0)
        init_states.append(g.op("ConstantOfShape", [shape], value=numpy_helper.from_array(np.zeros(1, np.float32))))
    for _, shape in fe_states:
        dims = g.op("Concat", [batch, g.const(list(shape), np.int64)], axis=0)
        init_states.append(g.op("ConstantOfShape", [dims], value=numpy_helper.from_array(np.zeros(1, np.float32))))
    finals = [f"v_final.{L.name}" for L in p.layers] + [f"{v}.final" for v, _ in fe_states]
    spikes = [f"spikes.{L.name}" for L in p.layers]
    fronts = [f"frontend.{name}" for name in p.inputs]
    g.nodes.append(helper.make_node("Scan", init_states + list(p.inputs), finals + fronts + spikes, body=body_graph,
                                    num_scan_inputs=len(p.inputs)))
    # readout
    steps = g.op("Slice", [g.op("Shape", [spikes[0]]), g.const([0], np.int64), g.const([1], np.int64)])

    def warp(src, q, name):
        x = f"spikes.{src}"
        if len(p.layer(src).out_shape) > 1:
            x = g.op("Reshape", [x, g.const([0, 0, -1], np.int64)])
        w = qcdq(name, q, log2["warp_log2"])
        terms = []
        for d in range(q.size):
            shifted = x if d == 0 else g.op("Slice", [g.op("Pad", [x, g.const([d, 0, 0, 0, 0, 0], np.int64)]),
                                                      g.const([0], np.int64), steps, g.const([0], np.int64)])
            terms.append(g.op("Mul", [shifted, g.op("Gather", [w, g.const(d, np.int64)], axis=0)]))
        return g.op("Sum", terms)

    z = g.op("Concat", [warp(r.audio_input, r.warp_audio, "warp.audio"), warp(r.vision_input, r.warp_vision, "warp.vision")], axis=2)
    table, q_cap = exp2_table()

    def lookup(e, axes, name):
        """docs/accelerator.md step 5 over the scores e: the maximum over ``axes``, then the table."""
        diff = g.op("Sub", [g.op("ReduceMax", [e], axes=axes, keepdims=1), e])
        shift = -r.score_log2 - spec.EXP2_FRAC_BITS
        if shift >= 0:
            q = g.op("Floor", [g.op("Div", [diff, g.const(2.0 ** shift)])])
        else:
            q = g.op("Mul", [g.op("Min", [diff, g.const(float(q_cap))]), g.const(2.0 ** -shift)])
        idx = g.op("Cast", [g.op("Min", [q, g.const(float(q_cap))])], to=TensorProto.INT64)
        return g.op("Gather", [g.const(table, name=f"exp2_table.{name}"), idx], axis=0, name=name)

    k = p.n_classes
    per_step = [len(r.modalities)] if r.fusion == "taaf_modal" else []
    extra = []
    if r.fusion == "taaf_modal":
        extra = _modal_readout_nodes(g, r, z, p.feature_width("audio"), qcdq, bias, lookup)
    else:
        l = g.op("Add", [g.op("MatMul", [z, g.op("Transpose", [qcdq("readout.weight", r.weight, log2["readout_log2"])], perm=[1, 0])]),
                         bias("readout.bias", r.bias)])
        step = g.op("Floor", [g.op("Div", [l, g.const(2.0 ** r.logit_shift)])], name="step_logits")
    if r.fusion == "taaf":
        u = g.op("Transpose", [qcdq("score.hidden.weight", r.hidden_weight, log2["score_hidden_log2"])], perm=[1, 0])
        hpre = g.op("Add", [g.op("MatMul", [z, u]), bias("score.hidden.bias", r.hidden_bias)])
        h = g.op("Floor", [g.op("Div", [g.op("Relu", [hpre]), g.const(2.0 ** r.hidden_shift)])])
        s = g.op("Transpose", [qcdq("score.out.weight", r.out_weight, log2["score_out_log2"])], perm=[1, 0])
        e = g.op("Add", [g.op("MatMul", [h, s]), bias("score.out.bias", r.out_bias)])
        e = g.op("Squeeze", [e, g.const([2], np.int64)], name="scores")
        att = lookup(e, [0], "attention")
    elif r.fusion == "concat":
        tb = g.op("Slice", [g.op("Shape", [step]), g.const([0], np.int64), g.const([2], np.int64)])
        att = g.op("ConstantOfShape", [tb], value=numpy_helper.from_array(np.ones(1, np.float32)), name="attention")
        g.op("ConstantOfShape", [tb], value=numpy_helper.from_array(np.zeros(1, np.float32)), name="scores")
    if r.fusion != "taaf_modal":
        weighted = g.op("Mul", [g.op("Unsqueeze", [att, g.const([2], np.int64)]), step])
        g.op("ReduceSum", [weighted, g.const([0], np.int64)], keepdims=0, name="logits")
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", k]),
               helper.make_tensor_value_info("step_logits", TensorProto.FLOAT, ["T", "B", *per_step, k]),
               helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["T", "B", *per_step]),
               helper.make_tensor_value_info("attention", TensorProto.FLOAT, ["T", "B", *per_step])]
    outputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["B", k]) for name in extra]
    outputs += [helper.make_tensor_value_info(f"spikes.{L.name}", TensorProto.FLOAT, ["T", "B", *L.out_shape]) for L in p.layers]
    outputs += [helper.make_tensor_value_info(f"frontend.{n}", TensorProto.FLOAT, ["T", "B", *p.shape_of(n)]) for n in p.inputs]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["T", "B", *s]) for n, (s, _) in p.inputs.items()]
    graph = helper.make_graph(g.nodes, "edge_taaf", inputs, outputs, initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tests.support.sim_programs")
    model.ir_version = 8
    helper.set_model_props(model, {spec.METADATA_VERSION_KEY: spec.CONTRACT_VERSION,
                                   spec.METADATA_PROGRAM_KEY: json.dumps(program_json(p, log2))})
    onnx.checker.check_model(model)
    return model


def _modal_readout_nodes(g: _Graph, r: Readout, z: str, d_audio: int, qcdq, bias, lookup) -> list[str]:
    """taaf_modal on z (T, B, D): the block features zb (T, B, M, D) = z masked to each modality's columns, so
    that one MatMul with W^T gives every branch's W_m z^m; each branch's score MLP on its slice of z; the joint
    lookup over (t, m) ('attention'), y ('logits'); with modality_logits the per-modality lookup over t
    ('attention_own') and each y_m ('logits_<m>'). Returns the names of the extra outputs."""
    log2 = r.log2
    mods = list(r.branches)
    cols = {"audio": (0, d_audio), "vision": (d_audio, r.weight.shape[1])}
    mask = np.zeros((len(mods), r.weight.shape[1]), np.float32)
    for i, m in enumerate(mods):
        mask[i, cols[m][0]:cols[m][1]] = 1.0
    zb = g.op("Mul", [g.op("Unsqueeze", [z, g.const([2], np.int64)]), g.const(mask)])
    b = g.op("Concat", [g.op("Unsqueeze", [bias(f"readout.{m}.bias", r.branches[m].bias), g.const([0], np.int64)])
                        for m in mods], axis=0)
    wt = g.op("Transpose", [qcdq("readout.weight", r.weight, log2["readout_log2"])], perm=[1, 0])
    l = g.op("Add", [g.op("MatMul", [zb, wt]), b])
    step = g.op("Floor", [g.op("Div", [l, g.const(2.0 ** r.logit_shift)])], name="step_logits")
    scores = []
    for m in mods:
        br = r.branches[m]
        zm = g.op("Slice", [z, g.const([cols[m][0]], np.int64), g.const([cols[m][1]], np.int64), g.const([2], np.int64)])
        u = g.op("Transpose", [qcdq(f"score.{m}.hidden.weight", br.hidden_weight, log2["score_hidden_log2"])], perm=[1, 0])
        hpre = g.op("Add", [g.op("MatMul", [zm, u]), bias(f"score.{m}.hidden.bias", br.hidden_bias)])
        h = g.op("Floor", [g.op("Div", [g.op("Relu", [hpre]), g.const(2.0 ** r.hidden_shift)])])
        s = g.op("Transpose", [qcdq(f"score.{m}.out.weight", br.out_weight, log2["score_out_log2"])], perm=[1, 0])
        scores.append(g.op("Add", [g.op("MatMul", [h, s]), bias(f"score.{m}.out.bias", br.out_bias)]))
    e = g.op("Concat", scores, axis=2, name="scores")
    att = lookup(e, [0, 2], "attention")
    weighted = g.op("Mul", [g.op("Unsqueeze", [att, g.const([3], np.int64)]), step])
    g.op("ReduceSum", [weighted, g.const([0, 2], np.int64)], keepdims=0, name="logits")
    if not r.modality_logits:
        return []
    own = lookup(e, [0], "attention_own")
    per = g.op("ReduceSum", [g.op("Mul", [g.op("Unsqueeze", [own, g.const([3], np.int64)]), step]), g.const([0], np.int64)],
               keepdims=0)
    for i, m in enumerate(mods):
        g.op("Gather", [per, g.const(i, np.int64)], axis=1, name=f"logits_{m}")
    return [f"logits_{m}" for m in mods]


def _frontend_nodes(body: _Graph, fe: FrontEnd, name: str, shape: tuple[int, ...], states: list) -> str:
    """The front-end of input ``name`` in the Scan body under the value names the loader checks
    (fe.<name>.out, .clipped, .pooled, .over, .ready, .countdown, .level); appends its states to ``states``."""
    x = f"{name}_t"
    out_shape = tuple(d // f for d, f in zip(shape, fe.pool))
    if fe.volume > 1:
        blocks = [0] + [v for d, f in zip(shape, fe.pool) for v in (d // f, f)]
        x = body.op("ReduceSum", [body.op("Reshape", [x, body.const(blocks, np.int64)]),
                                  body.const([2 + 2 * i for i in range(len(shape))], np.int64)], keepdims=0,
                    name=f"fe.{name}.pooled")
    th = body.const(float(fe.min_count))
    if fe.mode == "adaptive":
        level = f"fe.{name}.level"
        states.append((level, out_shape))
        adapt = body.op("Floor", [body.op("Div", [f"{level}.in", body.const(2.0 ** fe.gain_shift)])])
        th = body.op("Max", [adapt, th])
        leak = body.op("Floor", [body.op("Div", [f"{level}.in", body.const(2.0 ** fe.leak_shift)])], name=f"fe.{name}.leak")
        body.op("Add", [body.op("Sub", [f"{level}.in", leak]), x], name=f"{level}.out")
    ok = body.op("GreaterOrEqual", [x, th], name=f"fe.{name}.over")
    if fe.refractory:
        countdown = f"fe.{name}.countdown"
        states.append((countdown, out_shape))
        ready = body.op("Equal", [f"{countdown}.in", body.const(0.0)], name=f"fe.{name}.ready")
        ok = body.op("And", [ok, ready], name=f"fe.{name}.ok")
        down = body.op("Relu", [body.op("Sub", [f"{countdown}.in", body.const(1.0)])])
        body.op("Where", [ok, body.const(float(fe.refractory)), down], name=f"{countdown}.out")
    clipped = body.op("Min", [x, body.const(float(fe.clip))], name=f"fe.{name}.clipped")
    return body.op("Mul", [body.op("Cast", [ok], to=TensorProto.FLOAT), clipped], name=f"fe.{name}.out")


def edit_program(model: onnx.ModelProto, fn) -> onnx.ModelProto:
    """A copy of model whose program JSON (metadata_props) went through fn(dict): a file whose metadata no
    longer says what its graph computes."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for p in m.metadata_props:
        if p.key == spec.METADATA_PROGRAM_KEY:
            meta = json.loads(p.value)
            fn(meta)
            p.value = json.dumps(meta)
    return m


def exp2_table() -> tuple[np.ndarray, int]:
    """docs/accelerator.md step 5 as one table, derived here from the reference spec.exp2_weights
    (independently of quant/ and of the loader): TABLE[q] is the attention of a step whose score is q
    sixteenths of a log2 unit below the best, for q = 0..Q_CAP, Q_CAP = 16 x bit length of the
    largest LUT entry (the doc's formula; every entry from there on is 0, checked)."""
    q_cap = 2 ** spec.EXP2_FRAC_BITS * max(spec.EXP2_LUT).bit_length()
    q = np.arange(4 * q_cap)
    scores = np.stack([np.zeros_like(q), -q])                      # (T=2, q): step 0 is the best
    table = spec.exp2_weights(scores, -spec.EXP2_FRAC_BITS)[1]    # score_log2 = -4: d is q itself
    assert table[0] == 2 ** spec.EXP2_ONE_BITS and not table[q_cap:].any()
    return table[:q_cap + 1].astype(np.float32), q_cap


def run_onnxruntime(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    res = sess.run(names, {k: v.astype(np.float32) for k, v in inputs.items()})
    return dict(zip(names, res))
