"""The simulator run from an ONNX file equals onnxruntime on that file, output for output.

Files come from tests/support/sim_programs.build_onnx (an exporter independent of quant/): a Scan over
T, QCDQ weights whose float values need round-half-to-even and the narrow-range Clip."""
from __future__ import annotations

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.loader import load_program
from firmware_sim.run import simulate
from tests.support.sim_programs import RANDOM_NETWORKS, ActivityLog, build_onnx, random_inputs, random_program, run_onnxruntime


def test_simulator_equals_onnxruntime(tmp_path):
    """RANDOM_NETWORKS[...] random programs through their ONNX files: the simulator equals onnxruntime
    on every output, and every layer spikes in at least ACTIVE_SHARE of them."""
    log = ActivityLog("firmware_sim/test_onnx.py::test_simulator_equals_onnxruntime")

    @settings(max_examples=RANDOM_NETWORKS[log.test], deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(seed=st.integers(0, 2 ** 31), fusion=st.sampled_from(["taaf", "concat", "taaf_modal"]),
           big_theta=st.sampled_from([False] * 3 + [True]))
    def check(seed, fusion, big_theta):
        rng = np.random.default_rng(seed)
        T, B = int(rng.integers(1, 11)), int(rng.integers(1, 4))   # uniform, not hypothesis' small-first integers
        program = random_program(rng, fusion=fusion, big_theta=big_theta, frontends=True)
        model = build_onnx(program, seed)
        path = tmp_path / "m.onnx"
        onnx.save(model, path)
        loaded = load_program(path)
        x = random_inputs(rng, program, T, B, 0.5)
        ours = simulate(loaded, x, allow_other_T=True).outputs()   # any T 1..10
        theirs = run_onnxruntime(model, x)
        assert set(theirs) == set(ours)
        for name, value in theirs.items():
            assert np.array_equal(ours[name], value), (name, seed, T, B)
        log.record(theirs)

    check()
    log.check()


def test_loader_recovers_the_integer_weights(tmp_path):
    """Float weights at exact halves (round half to even) and far beyond the range (Clip) come back as q."""
    rng = np.random.default_rng(11)
    program = random_program(rng, weight_bits=5)
    path = tmp_path / "m.onnx"
    onnx.save(build_onnx(program, 1), path)
    loaded = load_program(path)
    for a, b in zip(program.layers, loaded.layers):
        assert np.array_equal(a.weight, b.weight) and (a.theta, a.stride, a.padding) == (b.theta, b.stride, b.padding)
    for field in ("warp_audio", "warp_vision", "weight", "bias", "hidden_weight", "hidden_bias", "out_weight", "out_bias"):
        assert np.array_equal(getattr(program.readout, field), getattr(loaded.readout, field)), field
    assert (loaded.T, loaded.max_T, loaded.weight_bits, loaded.leak_shift) == (program.T, 32, 5, program.leak_shift)
    assert loaded.inputs == program.inputs
    init = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    w = init["vision.dense.weight"] / 2.0 ** -8
    assert (np.abs(w - np.round(w)) == 0.5).any() and (np.abs(w) > 15).any()   # the hard cases are present


def test_loader_recovers_the_taaf_modal_branches(tmp_path):
    """taaf_modal: every branch's bias and score MLP, the shared shifts and the per-modality outputs flag come back."""
    program = random_program(np.random.default_rng(12), fusion="taaf_modal", weight_bits=5)
    path = tmp_path / "m.onnx"
    onnx.save(build_onnx(program, 2), path)
    r, loaded = program.readout, load_program(path).readout
    assert (loaded.fusion, loaded.bias, loaded.modalities) == ("taaf_modal", None, ("audio", "vision"))
    assert np.array_equal(loaded.weight, r.weight) and list(loaded.branches) == ["audio", "vision"]
    for m, br in r.branches.items():
        for field in ("bias", "hidden_weight", "hidden_bias", "out_weight", "out_bias"):
            assert np.array_equal(getattr(loaded.branches[m], field), getattr(br, field)), (m, field)
    same = ("logit_shift", "hidden_shift", "score_log2", "modality_logits")
    assert [getattr(loaded, f) for f in same] == [getattr(r, f) for f in same]
    outputs = {o.name for o in onnx.load(path).graph.output}
    assert ({"logits_audio", "logits_vision"} <= outputs) == r.modality_logits


def test_the_shipped_input_shapes_run(tmp_path):
    """The contract's own inputs: vision (T, B, 2, 34, 34), audio (T, B, 64)."""
    rng = np.random.default_rng(2)
    program = random_program(rng, vision_shape=(2, 34, 34), audio_dim=64, T=16, n_convs=2)
    model = build_onnx(program)
    onnx.save(model, tmp_path / "m.onnx")
    x = random_inputs(rng, program, 16, 2, 0.1)
    ours = simulate(load_program(tmp_path / "m.onnx"), x).outputs()
    for name, value in run_onnxruntime(model, x).items():
        assert np.array_equal(ours[name], value), name
