"""NIR export (quant/nir_export.py) and our reader (quant/nir_import.py): what NIR carries comes back exactly."""
from __future__ import annotations

import nir
import numpy as np
import pytest

from firmware_sim import spec
from firmware_sim.run import simulate
from quant.nir_export import NIRError, check_importable, program_to_nir, write_nir
from firmware_sim.frontend import FrontEnd
from quant.nir_import import NIRIntegerNet, graph_feed, run_nir_integer
from tests.support.sim_programs import random_inputs, random_program

DT = 1e-3


def _round_trip(program, tmp_path, seed=0):
    rng = np.random.default_rng(seed)
    inputs = random_inputs(rng, program, T=program.T, B=5)
    sim = simulate(program, inputs)
    write_nir(program, tmp_path / "m.nir", DT)
    graph = nir.read(tmp_path / "m.nir")
    steps, spikes = run_nir_integer(NIRIntegerNet(graph), graph_feed(graph, inputs, sim.frontend))
    return sim, steps, spikes


@pytest.mark.parametrize("seed", range(6))
def test_a_concat_program_comes_back_exactly_from_its_nir_file(tmp_path, seed):
    """Two sensors, random leaks, warp taps (nir.Delay), conv and dense layers: the step logits after the shift and
    every layer's spikes equal the simulator's."""
    program = random_program(np.random.default_rng(seed), fusion="concat")
    sim, steps, spikes = _round_trip(program, tmp_path, seed)
    assert sum(s.sum() for s in sim.spikes.values()) > 0
    np.testing.assert_array_equal(steps, sim.step_logits)
    assert spikes.keys() == sim.spikes.keys()
    for name in spikes:
        np.testing.assert_array_equal(spikes[name], sim.spikes[name], err_msg=name)


def test_an_integrate_and_fire_program_comes_back_exactly(tmp_path):
    """leak_shift = LEAK_OFF: written as tau = dt 2^16, read back as no leak (a negative membrane keeps its value)."""
    program = random_program(np.random.default_rng(5), fusion="concat", leak_shift=spec.LEAK_OFF)
    sim, steps, spikes = _round_trip(program, tmp_path, 5)
    np.testing.assert_allclose(program_to_nir(program, DT).nodes[f"{program.layers[0].name}.lif"].tau, DT * 2 ** 16)
    np.testing.assert_array_equal(steps, sim.step_logits)
    for name in spikes:
        np.testing.assert_array_equal(spikes[name], sim.spikes[name], err_msg=name)


def test_a_pooling_front_end_is_written_as_a_conv_and_an_affine_of_ones(tmp_path):
    """A block-sum front-end (count mode, min_count 1, no countdown, never clipping) is linear: the graph reads the
    sensors and pools them itself (frontend.<input>); a thresholding one stays outside and the graph reads its output."""
    linear = {"vision": FrontEnd((2, 2, 2)), "audio": FrontEnd((2,))}
    program = random_program(np.random.default_rng(4), fusion="concat", frontends=linear)
    graph = program_to_nir(program, DT)
    assert isinstance(graph.nodes["frontend.vision"], nir.Conv2d) and isinstance(graph.nodes["frontend.audio"], nir.Affine)
    assert set(graph.metadata["inputs"].split(",")) == {"audio=sensor", "vision=sensor"}
    sim, steps, spikes = _round_trip(program, tmp_path, 4)
    np.testing.assert_array_equal(steps, sim.step_logits)
    for name in spikes:
        np.testing.assert_array_equal(spikes[name], sim.spikes[name], err_msg=name)
    thresholding = {"vision": FrontEnd((1, 2, 2), min_count=2), "audio": FrontEnd((1,), refractory=2)}
    program = random_program(np.random.default_rng(4), fusion="concat", frontends=thresholding)
    graph = program_to_nir(program, DT)
    assert "frontend.vision" not in graph.nodes and "frontend.audio" not in graph.nodes
    assert set(graph.metadata["inputs"].split(",")) == {"audio=frontend_output", "vision=frontend_output"}
    sim, steps, _ = _round_trip(program, tmp_path, 4)
    np.testing.assert_array_equal(steps, sim.step_logits)


def test_a_saturating_program_comes_back_exactly(tmp_path):
    program = random_program(np.random.default_rng(3), fusion="concat", big_theta=True)
    sim, steps, spikes = _round_trip(program, tmp_path, 3)
    assert sim.counts.total("saturations") > 0
    np.testing.assert_array_equal(steps, sim.step_logits)
    for name in spikes:
        np.testing.assert_array_equal(spikes[name], sim.spikes[name], err_msg=name)


def test_the_graph_names_every_layer_and_maps_the_neuron():
    program = random_program(np.random.default_rng(1), fusion="concat", leak_shift=3)
    graph = program_to_nir(program, DT)
    layer = program.layers[0]
    lif = graph.nodes[f"{layer.name}.lif"]
    assert isinstance(lif, nir.LIF) and isinstance(graph.nodes[f"{layer.name}.syn"], (nir.Conv2d, nir.Affine))
    np.testing.assert_allclose(lif.tau, DT * 8)
    np.testing.assert_allclose(lif.v_threshold, (layer.theta - 0.5) / 8)
    assert np.all(lif.r == 1) and np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0)
    np.testing.assert_array_equal(graph.nodes[f"{layer.name}.syn"].weight, layer.weight.astype(np.float32))
    assert graph.metadata["dt_s"] == DT and graph.metadata["logit_shift"] == program.readout.logit_shift
    assert {f"input.{m}" for m in program.inputs} <= set(graph.nodes) and "output" in graph.nodes


@pytest.mark.parametrize("fusion", ["taaf", "taaf_modal"])
def test_attention_is_refused_naming_the_node(fusion):
    program = random_program(np.random.default_rng(0), fusion=fusion)
    with pytest.raises(NIRError, match=rf"node 'readout' \(fusion '{fusion}'\).*softmax"):
        program_to_nir(program, DT)


@pytest.mark.parametrize("dt", [0, -1e-3, float("nan"), "1ms"])
def test_a_bad_step_duration_is_refused(dt):
    with pytest.raises(NIRError, match="dt_s=.*positive number of seconds"):
        program_to_nir(random_program(np.random.default_rng(0), fusion="concat"), dt)


def test_a_refused_export_leaves_the_last_good_file(tmp_path):
    path = tmp_path / "m.nir"
    write_nir(random_program(np.random.default_rng(0), fusion="concat"), path, DT)
    before = path.read_bytes()
    with pytest.raises(NIRError):
        write_nir(random_program(np.random.default_rng(0), fusion="taaf"), path, DT)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.nir"]


def _graph(node):
    return nir.NIRGraph(nodes={"input.audio": nir.Input(np.array([3])), "x": node, "output": nir.Output(np.array([3]))},
                        edges=[("input.audio", "x"), ("x", "output")], metadata={"dt_s": DT})


def test_a_node_we_cannot_read_back_is_named_with_its_type():
    n = np.ones(3, np.float32)
    cuba = nir.CubaLIF(tau_syn=n, tau_mem=n, r=n, v_leak=0 * n, v_threshold=n)
    with pytest.raises(NIRError, match=r"NIR node 'x' is a nir\.CubaLIF, which edge-taaf cannot read back"):
        NIRIntegerNet(_graph(cuba))
    with pytest.raises(NIRError, match=r"NIR node 'x' is a nir\.CubaLIF, which norse's NIR importer cannot read"):
        check_importable(_graph(cuba), {"Input", "Output", "LIF"}, "norse")


@pytest.mark.parametrize("field, value, message", [
    ("tau", 3 * DT, r"tau=0\.003 s is not dt \* 2\^k"),
    ("r", 2.0, r"r=2, expected 1"),
    ("v_leak", 0.5, r"v_leak=0\.5, expected 0"),
    ("v_threshold", 0.3, r"v_threshold 2\^k \+ 1/2 = 1\.7 is not an integer threshold"),
])
def test_a_lif_outside_the_mapping_is_refused_naming_node_and_field(field, value, message):
    n = np.ones(3, np.float32)
    params = {"tau": 4 * DT * n, "r": n, "v_leak": 0 * n, "v_threshold": 1.25 * n}
    params[field] = value * n
    with pytest.raises(NIRError, match=r"NIR node 'x': " + message):
        NIRIntegerNet(_graph(nir.LIF(**params)))


def test_a_graph_without_our_metadata_is_refused():
    n = np.ones(3, np.float32)
    graph = _graph(nir.LIF(tau=4 * DT * n, r=n, v_leak=0 * n, v_threshold=1.25 * n))
    graph.metadata = {}
    with pytest.raises(NIRError, match="metadata has no dt_s"):
        NIRIntegerNet(graph)
