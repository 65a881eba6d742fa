"""quant.ann_int / quant.ann_onnx: the competitor's integer program, its numpy reference, its ONNX file in
onnxruntime (equal to the reference on every output), the torch eval forward, the rounding rule, bad inputs."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from firmware_sim.program import ContractError
from quant.ann_int import ann_program, conv2d_int, reference_logits, requantise
from quant.ann_onnx import AnnOrt, ann_logits, build_ann_onnx, read_ann_program, save_ann_onnx
from tests.quant.test_ann_competitor import T, batch, make, trained


@pytest.fixture(scope="module")
def competitor():
    """A small competitor after a few training steps: learned power-of-two activation scales."""
    import quant.ann_competitor as ac
    keep, ac.ACT_STATS_STEPS = ac.ACT_STATS_STEPS, 4
    try:
        model = trained(make(), steps=8)
    finally:
        ac.ACT_STATS_STEPS = keep
    return model


def test_onnxruntime_equals_the_integer_reference_exactly(competitor, tmp_path):
    program = ann_program(competitor)
    path = tmp_path / "ann.onnx"
    save_ann_onnx(program, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "MatMul", "Round", "Clip"} <= ops
    v, a, _ = batch(40, seed=11)
    ref = reference_logits(program, v.numpy(), a.numpy(), batch_size=7)     # batches of 7: the split changes nothing
    ours = AnnOrt(path).logits(v.numpy(), a.numpy())
    assert ref.dtype == ours.dtype == np.int64 and ref.shape == (40, 10)
    assert np.array_equal(ours, ref)
    assert len(np.unique(ref.argmax(1))) > 1                                 # not a constant answer
    # batch-first entry point (the robustness benchmark's): the same logits
    assert np.array_equal(ann_logits(path, np.swapaxes(v.numpy(), 0, 1), np.swapaxes(a.numpy(), 0, 1), batch_size=16), ref)
    # the Brevitas eval forward is the same network: its logits are the integers times one power of two
    with torch.no_grad():
        logits = competitor(v, a).double().numpy()
    scale = logits[ref != 0] / ref[ref != 0]
    assert np.all(scale == scale[0]) and 2.0 ** np.round(np.log2(scale[0])) == scale[0]


def test_the_program_holds_int8_weights_and_shifts(competitor):
    program = ann_program(competitor)
    layers = (*program.vision, *program.audio, *program.head)
    assert [lay.name for lay in layers] == ["vision.conv0", "vision.conv1", "audio.conv0", "fusion.hidden",
                                            "fusion.classifier"]
    for lay in layers:
        assert lay.weight.dtype == np.int64 and np.abs(lay.weight).max() <= 127
    assert program.head[-1].shift is None and all(isinstance(lay.shift, int) for lay in layers[:-1])
    assert (program.T, program.vision_step_max, program.audio_step_max) == (T, 1, 3)
    facts = read_ann_program(build_ann_onnx(program))
    assert facts["inputs"] == {"vision": {"shape": [2, 34, 34], "max": 1}, "audio": {"shape": [16], "max": 3}}
    assert [lay["shift"] for lay in facts["layers"]] == [lay.shift for lay in layers]


def test_requantise_rounds_half_to_even_and_clips():
    acc = np.arange(-40, 300, dtype=np.int64)
    for shift in (-3, -1, 0, 2):
        want = np.clip(np.round(acc * 2.0 ** shift), 0, 255).astype(np.int64)      # numpy rounds half to even
        assert np.array_equal(requantise(acc, shift, 255), want), shift
    assert list(requantise(np.array([4, 12, 20, 28]), -3, 255)) == [0, 2, 2, 4]      # 0.5, 1.5, 2.5, 3.5


def test_integer_conv_equals_torch_conv():
    g = np.random.default_rng(0)
    x = g.integers(0, 9, (3, 2, 11, 9))
    w = g.integers(-127, 128, (4, 2, 5, 5))
    for stride in (1, 2, 3):
        want = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                          stride=stride, padding=2).numpy()
        assert np.array_equal(conv2d_int(x, w, stride), want.astype(np.int64))


@pytest.mark.parametrize("which, shape, message", [
    ("vision", (T, 3, 2, 34, 33), r"input 'vision': shape \(6, 3, 2, 34, 33\), expected \(T=6, B, 2, 34, 34\)"),
    ("vision", (T + 1, 3, 2, 34, 34), r"input 'vision': shape \(7, 3, 2, 34, 34\)"),
    ("audio", (T, 3, 15), r"input 'audio': shape \(6, 3, 15\), expected \(T=6, B, 16\)"),
    ("audio", (T, 4, 16), r"input 'audio': batch 4 but vision has 3"),
])
def test_bad_input_shapes_are_errors_naming_the_input(competitor, which, shape, message):
    program = ann_program(competitor)
    runner = AnnOrt(build_ann_onnx(program))
    v, a, _ = batch(3)
    inputs = {"vision": v.numpy(), "audio": a.numpy()}
    inputs[which] = np.zeros(shape, np.float32)
    for run in (runner.logits, lambda v, a: reference_logits(program, v, a)):
        with pytest.raises(ContractError, match=message):
            run(inputs["vision"], inputs["audio"])


def test_bad_counts_and_files_are_errors(competitor, tmp_path):
    program = ann_program(competitor)
    runner = AnnOrt(build_ann_onnx(program))
    v, a, _ = batch(3)
    v[0, 0, 0, 0, 0] = 2                                   # 2 events in one step, binary vision
    with pytest.raises(ContractError, match=r"input 'vision': counts span 0\.\.2, expected 0\.\.1"):
        runner.logits(v.numpy(), a.numpy())
    v[0, 0, 0, 0, 0] = 0.5
    with pytest.raises(ContractError, match=r"input 'vision': value 0\.5 is not a whole number"):
        reference_logits(program, v.numpy(), a.numpy())
    other = build_ann_onnx(program)
    del other.metadata_props[:]
    onnx.save(other, str(tmp_path / "bare.onnx"))
    with pytest.raises(ContractError, match=r"bare\.onnx: no edge_taaf\.ann_program in metadata_props"):
        AnnOrt(tmp_path / "bare.onnx")


def test_an_accumulator_beyond_float32_exactness_is_refused(competitor):
    program = ann_program(competitor)
    big = replace(program.head[-1], weight=np.full_like(program.head[-1].weight, 127 * 2 ** 16))
    program = replace(program, head=(*program.head[:-1], big))
    v, a, _ = batch(2)
    with pytest.raises(ContractError, match=r"fusion\.classifier: an accumulator reaches \d+, not below 2\^24"):
        reference_logits(program, v.numpy(), a.numpy())
