"""The sensor front-end stage: its semantics, its limits, its counters and price, and the loader's check of its nodes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from firmware_sim import spec
from edge_taaf import CONFIG_DIR
from firmware_sim.energy import load_hardware as load_any
from firmware_sim.energy import price_frontend
from firmware_sim.frontend import FrontEnd, FrontEndError
from firmware_sim.loader import load_program
from firmware_sim.program import ContractError
from firmware_sim.run import simulate
from tests.support.sim_programs import (build_onnx, edit_program, random_frontend, random_inputs, random_program,
                                        reference_frontend)


def load_hardware(name: str):
    return load_any(name, Path(CONFIG_DIR) / "hardware")


def one(fe: FrontEnd, x) -> np.ndarray:
    """Run a front-end on one element's counts over time (T,) -> (T,)."""
    return fe.run(np.asarray(x, np.int64).reshape(-1, 1, 1))[0][:, 0, 0].astype(int)


def test_identity_changes_nothing():
    x = np.random.default_rng(0).integers(0, 4, (7, 3, 2, 4, 4))
    y, counts = FrontEnd.identity((2, 4, 4), 3).run(x)
    assert np.array_equal(y, x)
    assert counts[:, 0].sum() == np.count_nonzero(x) == counts[:, 2].sum()


def test_polarity_merge_and_pooling_sum_blocks():
    x = np.zeros((1, 1, 2, 4, 4), np.int64)
    x[0, 0, 0, 0, 0] = x[0, 0, 1, 1, 1] = 1       # both polarities in the top-left 2x2 block
    x[0, 0, 1, 3, 2] = 1
    y, _ = FrontEnd((2, 2, 2)).run(x)
    assert y.shape == (1, 1, 1, 2, 2)
    assert y[0, 0, 0].tolist() == [[2, 0], [0, 1]]


def test_min_count_drops_isolated_events_and_clip_makes_binary_spikes():
    x = np.zeros((1, 1, 2, 4, 4), np.int64)
    x[0, 0, :, 0:2, 0:2] = 1                      # a correlated block: 8 events
    x[0, 0, 0, 3, 3] = 1                          # an isolated noise event
    y, counts = FrontEnd((2, 2, 2), min_count=2, clip=1).run(x)
    assert y[0, 0, 0].tolist() == [[1, 0], [0, 0]]
    assert counts[0].tolist()[:3] == [9, 2, 1]     # input events, nonzero pooled elements, passed


def test_refractory_silences_an_element_for_its_steps():
    fe = FrontEnd((1,), refractory=2)
    assert one(fe, [1, 1, 1, 1, 1, 0, 1]).tolist() == [1, 0, 0, 1, 0, 0, 1]
    _, counts = fe.run(np.ones((5, 1, 1), np.int64))
    assert counts[0, 3] == 3                       # held back by the countdown


def test_adaptive_threshold_passes_changes_and_adapts_to_a_steady_level():
    """A steady count of 4 passes at first, then the level m -> 4 x 2^leak lifts the threshold m >> gain
    above 4 (gain < leak); a jump to 12 passes again: x / mean >= 2^(leak - gain)."""
    fe = FrontEnd((1,), mode="adaptive", min_count=1, leak_shift=3, gain_shift=2)
    y = one(fe, [4] * 12 + [12])
    assert y[0] == 4 and y[:3].all()
    assert not y[8:12].any() and y[12] == 12


def test_run_equals_the_book_on_random_frontends():
    rng = np.random.default_rng(3)
    kinds = set()
    for _ in range(60):
        vision = bool(rng.random() < 0.5)
        shape, top = ((2, 8, 8), 1) if vision else ((12,), 8)
        fe = random_frontend(rng, shape, top, vision)
        kinds.add((fe.mode, fe.volume > 1, fe.refractory > 0))
        x = (rng.integers(1, top + 1, (int(rng.integers(1, 9)), 2, *shape)) * (rng.random((1, 1, *shape)) < 0.6)).astype(np.int64)
        assert np.array_equal(fe.run(x)[0], reference_frontend(fe, x)), fe
    assert len(kinds) >= 6, kinds


@pytest.mark.parametrize("fe, shape, top, fragments", [
    (FrontEnd((1, 3, 3)), (2, 34, 34), 1, ("frontend.pool=[1, 3, 3]", "factors from [1, 2, 4]")),
    (FrontEnd((1, 4, 4)), (2, 34, 34), 1, ("frontend.pool", "divide the sensor's shape [2, 34, 34]", "34 is not a multiple of 4")),
    (FrontEnd((2, 2)), (2, 34, 34), 1, ("frontend.pool", "one factor per input axis (3")),
    (FrontEnd((1,), mode="delta"), (64,), 8, ("frontend.mode='delta'", "count or adaptive")),
    (FrontEnd((1,), min_count=0), (64,), 8, ("frontend.min_count=0", "1..255")),
    (FrontEnd((1,), clip=300), (64,), 8, ("frontend.clip=300", "1..255")),
    (FrontEnd((1,), refractory=16), (64,), 8, ("frontend.refractory=16", "0..15")),
    (FrontEnd((1,), mode="adaptive", leak_shift=0), (64,), 8, ("frontend.leak_shift=0", "1..8")),
    (FrontEnd((1,), mode="adaptive", gain_shift=16), (64,), 8, ("frontend.gain_shift=16", "0..15")),
    (FrontEnd((4,)), (64,), 100, ("frontend.pool=[4]", "at most 255", "100 x 4 = 400")),
])
def test_settings_the_accelerator_cannot_run_are_named(fe, shape, top, fragments):
    with pytest.raises(FrontEndError) as err:
        fe.check(shape, top)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_program_check_names_the_frontend_of_the_input():
    program = random_program(np.random.default_rng(1))
    program.frontends["audio"] = FrontEnd((5,))
    with pytest.raises(ContractError, match=r"frontends\.audio\.pool=\[5\]"):
        program.check()


def test_simulator_applies_the_frontend_before_the_first_layer():
    """The first layers read the front-end's output: a program whose vision front-end drops everything
    (min_count above any pooled count) gives silent vision layers, whatever the camera saw."""
    rng = np.random.default_rng(2)
    program = random_program(rng, frontends={"vision": FrontEnd((1, 1, 1), min_count=3, clip=1)})
    x = random_inputs(rng, program, 6, 3, 0.6)
    res = simulate(program, x)
    assert not res.frontend["vision"].any() and not res.spikes["vision.conv0"].any()
    assert res.counts.units["frontend.vision"].counts["input_events"] == np.count_nonzero(x["vision"])


def test_energy_of_the_frontend_is_priced_and_the_identity_is_free():
    hw, per_op = load_hardware("horowitz45nm"), load_hardware("sne22nm")
    rng = np.random.default_rng(4)
    program = random_program(rng)
    x = random_inputs(rng, program, 6, 2, 0.5)
    c = simulate(program, x).counts.units["frontend.vision"].counts
    assert sum(price_frontend(c, program, "vision", hw)[0].values()) == 0.0
    fe = FrontEnd((2, 2, 2), mode="adaptive", min_count=1, clip=1, refractory=1)
    program = random_program(np.random.default_rng(4), frontends={"vision": fe})
    c = simulate(program, x).counts.units["frontend.vision"].counts
    pj, cycles = price_frontend(c, program, "vision", hw)
    n_out = 16                                     # (1, 4, 4) pooled elements
    assert c["level_updates"] == n_out * c["steps"] and c["input_events"] == np.count_nonzero(x["vision"])
    assert pj["other compute"] == pytest.approx((c["input_events"] + c["pooled_events"]) * hw.energy_pj["add8"]
                                                + 2 * c["level_updates"] * hw.add(spec.LEVEL_BITS))
    buffer = hw.sram_word(n_out * spec.COUNT_BITS / 8)
    scan = c["steps"] * hw.words(n_out * spec.COUNT_BITS)
    expected_state = ((c["input_events"] + scan) * 2 * buffer
                      + (c["pooled_events"] + c["passed"]) * hw.sram_word(n_out * spec.REFRACTORY_BITS / 8)
                      + c["steps"] * hw.words(n_out * spec.LEVEL_BITS) * 2 * hw.sram_word(n_out * spec.LEVEL_BITS / 8))
    assert pj["state memory"] == pytest.approx(expected_state) and cycles > 0
    assert sum(price_frontend(c, program, "vision", per_op)[0].values()) == pytest.approx(
        (c["input_events"] + c["pooled_events"] + 2 * c["level_updates"]) * per_op.per_op_pj["synaptic_op"])


# ---------------------------------------------------------------- the loader checks the front-end nodes

@pytest.fixture(scope="module")
def sparse_model():
    """A program with a pooling, adaptive, refractory vision front-end and a clipping audio one, as ONNX."""
    rng = np.random.default_rng(11)
    while True:
        program = random_program(rng, frontends=True)
        v, a = program.frontend("vision"), program.frontend("audio")
        if v.volume > 1 and v.refractory and v.adaptive and not a.is_identity(8):
            return program, build_onnx(program)


def test_a_sparse_frontend_loads_back_as_written(tmp_path, sparse_model):
    program, model = sparse_model
    onnx.save(model, tmp_path / "m.onnx")
    loaded = load_program(tmp_path / "m.onnx")
    assert loaded.frontends == {m: program.frontend(m) for m in program.inputs}


@pytest.mark.parametrize("field, change, fragments", [
    ("clip", lambda v: v + 1, ("clip",)),
    ("min_count", lambda v: v + 1, ("min_count",)),
    ("refractory", lambda v: v + 1, ("refractory",)),
    ("gain_shift", lambda v: v + 1, ("gain_shift",)),
    ("leak_shift", lambda v: max(v - 1, 1) if v > 1 else 2, ("leak_shift",)),
    ("mode", lambda v: "count", ("threshold",)),
])
def test_a_frontend_node_that_disagrees_with_its_metadata_is_refused(tmp_path, sparse_model, field, change, fragments):
    _, model = sparse_model

    def edit(meta):
        fe = meta["frontends"]["vision"]
        fe[field] = change(fe[field])
    onnx.save(edit_program(model, edit), tmp_path / "m.onnx")
    with pytest.raises(ContractError) as err:
        load_program(tmp_path / "m.onnx")
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_frontends_missing_from_the_metadata_are_named(tmp_path, sparse_model):
    _, model = sparse_model
    onnx.save(edit_program(model, lambda meta: meta["frontends"].pop("audio")), tmp_path / "m.onnx")
    with pytest.raises(ContractError, match="frontends must be an object with one entry per input"):
        load_program(tmp_path / "m.onnx")


def test_pooling_blocks_that_disagree_with_the_metadata_are_refused(tmp_path, sparse_model):
    """The graph sums other blocks than frontends.vision.pool says (same sizes, the last two axes swapped)."""
    _, model = sparse_model
    m = onnx.ModelProto()
    m.CopyFrom(model)
    body = next(n for n in m.graph.node if n.op_type == "Scan").attribute[0].g
    reshape = next(n for n in body.node if n.op_type == "Reshape" and n.input[0] == "vision_t")
    init = next(i for i in body.initializer if i.name == reshape.input[1])
    blocks = onnx.numpy_helper.to_array(init).copy()
    blocks[-2:] = blocks[-2:][::-1].copy()
    assert blocks[-1] != blocks[-2]
    init.CopyFrom(onnx.numpy_helper.from_array(blocks, init.name))
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(ContractError, match=r"frontends\.vision\.pool="):
        load_program(tmp_path / "m.onnx")
