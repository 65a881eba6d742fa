"""bench/deploy.py's sections on a tiny exported model."""
from __future__ import annotations

import numpy as np

from bench.deploy import image_section, markdown, resources_section, synops_per_s
from firmware_sim.loader import load_program
from quant import export
from tests.support.quant_models import tiny_model


# The NIR and NeuroBench part of a result (tests/bench/test_nir_deploy.py checks it on a real section).
NIR_PART = {"nir_export_refusal": "refused: node 'readout'", "nir_model": "m", "nir_model_sim_acc": 0.9,
            "nir_nodes": {"LIF": 1}, "nir_readback_exact": 1, "nir_importers": ["norse"],
            "nir_roundtrip_argmax_agreement": {"norse": 1.0}, "nir_roundtrip_argmax_agreement_nir_reset": {"norse": 0.9},
            "nir_identical_spikes": {"norse": {"subtract": {"l": 1.0}}}, "nir_weight_bytes": 10,
            "neurobench": {"Footprint": 40, "ConnectionSparsity": 0.1, "ActivationSparsity": 0.9,
                           "SynapticOperations": {"Effective_ACs": 9.0, "Effective_MACs": 0.0, "Dense": 100.0}},
            "neurobench_synops_vs_counters": 0.9, "neurobench_synops_vs_counters_definition": "d",
            "counters_synops_like_neurobench": 9.0}


def test_the_image_boots_exactly_and_every_profile_is_reported(tmp_path):
    export.export_onnx(tiny_model("taaf_modal", 6, 1.0, 0, 5), tmp_path / "m.onnx")
    program = load_program(tmp_path / "m.onnx")
    rng = np.random.default_rng(0)
    inputs = {"vision": (rng.random((5, 3, 2, 34, 34)) < 0.2).astype(np.uint8),
              "audio": (rng.random((5, 3, 64)) < 0.3).astype(np.uint8)}
    image = image_section(program, inputs)
    assert image["image_boot_exact"] == 1 and image["image_differing_outputs"] == [] and image["image_bytes"] > 0
    resources = resources_section(program)
    assert set(resources) == {"horowitz45nm", "sne22nm", "speck", "xylo"}
    assert resources["horowitz45nm"]["fits"] == 1 and resources["xylo"]["fits"] == 0
    text = markdown({"model": "tiny", "test_samples": 3, "command": "c", **image, "resources": resources,
                     "synops_per_s": 1e6, "rate_hz": 2.0, **NIR_PART})
    assert "| xylo |" in text and "input vision, input channels: 2312 vs 16" in text

    assert synops_per_s(program, inputs, 2.0) > 0
