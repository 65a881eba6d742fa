"""bench/support/nir_importers.py, bench/support/neurobench_metrics.py and bench/deploy.py's NIR section on a tiny one-sensor model."""
from __future__ import annotations

import nir
import numpy as np
import pytest

from bench.deploy import nir_markdown, nir_section
from bench.support.neurobench_metrics import counters_like_neurobench, neurobench_metrics
from bench.support.nir_importers import READABLE, import_graph, run_imported
from firmware_sim.loader import load_program
from firmware_sim.run import simulate
from quant import export
from quant.nir_export import NIRError, program_to_nir
from tests.support.quant_models import tiny_model

DT = 1e-4


@pytest.fixture(scope="module")
def vision_program(tmp_path_factory):
    """A trained-like tiny vision-only concat model (the shape configs/experiment/nir.yaml trains) and inputs."""
    folder = tmp_path_factory.mktemp("nir")
    model = tiny_model("concat", 8, 8.0, 0, T=6, modalities=("vision",), warp_max_delay=0)   # every layer spikes
    export.export_onnx(model, folder / "m.onnx")
    program = load_program(folder / "m.onnx")
    rng = np.random.default_rng(0)
    x = (rng.random((6, 20, 2, 34, 34)) < 0.2).astype(np.uint8)
    return program, {"vision": x}


@pytest.mark.parametrize("importer", sorted(READABLE))
def test_each_importer_reads_the_graph_and_its_first_step_equals_ours(vision_program, importer):
    """Step 0 starts from empty membranes, where the leak's floor and the reset play no part: the imported
    weights, strides, padding, flatten and threshold half step must give exactly our spikes."""
    program, inputs = vision_program
    sim = simulate(program, inputs)
    graph = program_to_nir(program, DT)
    for reset in ("nir", "subtract"):
        out, spikes = run_imported(import_graph(graph, importer, DT, reset), sim.frontend["vision"])
        assert out.shape == (*sim.step_logits.shape[:2], program.n_classes)
        for layer in program.layers:          # step 0 of every layer: its inputs are step 0 of the one before
            assert sim.spikes[layer.name][0].sum() > 0
            np.testing.assert_array_equal(spikes[layer.name][0], sim.spikes[layer.name][0], err_msg=layer.name)
        assert set(spikes) == set(sim.spikes)


def test_the_importers_refuse_a_node_they_cannot_read_naming_it(vision_program):
    program, _ = vision_program
    graph = program_to_nir(random_delay_program(), DT)
    with pytest.raises(NIRError, match=r"NIR node 'warp\.\w+\.delay\d' is a nir\.Delay, which snntorch's NIR importer "
                                       r"cannot read"):
        import_graph(graph, "snntorch", DT)
    with pytest.raises(ValueError, match=r"importer='sinabs'; expected one of \['norse', 'snntorch'\]"):
        import_graph(program_to_nir(program, DT), "sinabs", DT)


def random_delay_program():
    from tests.support.sim_programs import random_program
    rng = np.random.default_rng(2)
    return random_program(rng, fusion="concat")     # its audio warp has nonzero taps 1..3 (nir.Delay nodes)


def test_neurobench_counts_what_our_spikes_say(vision_program):
    """NeuroBench's effective synaptic operations equal our recount of its definition from the simulator's spikes,
    and its activation sparsity is one minus our spike share."""
    program, inputs = vision_program
    sim = simulate(program, inputs)
    labels = np.zeros(20, np.int64)
    result = neurobench_metrics(program_to_nir(program, DT), sim.frontend["vision"], labels)
    ops = result["SynapticOperations"]
    assert ops["Effective_MACs"] == 0 and ops["Effective_ACs"] > 0
    assert ops["Effective_ACs"] == pytest.approx(counters_like_neurobench(program, sim.spikes, sim.frontend), rel=1e-6)
    spikes = sum(int(s.sum()) for s in sim.spikes.values())
    neurons = sum(s.size for s in sim.spikes.values())
    assert result["ActivationSparsity"] == pytest.approx(1 - spikes / neurons, rel=1e-9)
    weights = sum(layer.weight.size for layer in program.layers) + program.readout.weight.size
    zeros = sum(int((layer.weight == 0).sum()) for layer in program.layers) + int((program.readout.weight == 0).sum())
    assert result["ConnectionSparsity"] == pytest.approx(zeros / weights, abs=1e-3)
    assert result["ClassificationAccuracy"] == pytest.approx(float((sim.predictions == 0).mean()))


def test_the_nir_section_and_its_report(vision_program, tmp_path):
    program, inputs = vision_program
    labels = np.arange(20) % program.n_classes
    section = nir_section(program, inputs, labels, tmp_path)
    assert section["nir_readback_exact"] == 1
    assert section["nir_importers"] == ["norse", "snntorch"]
    assert set(section["nir_roundtrip_argmax_agreement"]) == {"norse", "snntorch"}
    assert all(0 <= v <= 1 for v in section["nir_roundtrip_argmax_agreement"].values())
    assert section["neurobench_synops_vs_counters_like_neurobench"] == pytest.approx(1, rel=1e-6)
    assert 0 < section["neurobench_synops_vs_counters"] <= 1
    text = "\n".join(nir_markdown({**section, "nir_export_refusal": None, "nir_model": "tiny",
                                   "nir_weight_bytes": 100}))
    assert "| norse |" in text and "| snntorch |" in text and "synaptic operations per sample" in text
    assert (tmp_path / "model.nir").exists() and nir.read(tmp_path / "model.nir").nodes
