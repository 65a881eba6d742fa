"""bench/deploy.py's sections on a tiny exported model."""
from __future__ import annotations

import numpy as np

from bench.deploy import image_section, markdown, resources_section, synops_per_s
from firmware_sim.loader import load_program
from quant import export
from tests.support.quant_models import tiny_model


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
                     "synops_per_s": 1e6, "rate_hz": 2.0})
    assert "| xylo |" in text and "input vision, input channels: 2312 vs 16" in text

    assert synops_per_s(program, inputs, 2.0) > 0
