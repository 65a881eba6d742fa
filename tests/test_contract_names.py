"""The names the packages share are written once per side of the firmware_sim wall, and the two sides agree.

firmware_sim imports nothing of ours (its own spec is the accelerator's contract), so the fusion names and
the modality order exist there and once more on the training side (edge_taaf.model_config, sensors.options);
the weight widths exist only in firmware_sim.spec, which quant and the apps read.
"""
from __future__ import annotations

import re
from pathlib import Path

from edge_taaf import model_config, neurons
from firmware_sim import program, spec
from sensors import options

ROOT = Path(__file__).resolve().parents[1]


def test_fusion_names_and_modalities_agree_across_the_wall():
    assert model_config.FUSIONS == program.FUSIONS
    assert (model_config.TAAF, model_config.CONCAT, model_config.TAAF_MODAL) == (program.TAAF, program.CONCAT,
                                                                                program.TAAF_MODAL)
    assert options.MODALITIES == program.MODALITIES == model_config.MODALITIES
    assert neurons.IF_LEAK_SHIFT == spec.LEAK_OFF        # the leak shift that means no leak (integrate-and-fire)


def test_no_package_writes_the_names_or_the_weight_widths_out_again():
    """A fusion name as a string literal, a MODALITIES tuple or the 4..8 weight range appear only where they
    are defined (comments, docstrings and messages aside)."""
    defining = {"edge_taaf/model_config.py", "firmware_sim/program.py", "sensors/options.py", "firmware_sim/spec.py",
                "edge_taaf/schema.py"}                       # the schema's default value: model.fusion = "taaf"
    offenders = []
    for package in ("sensors", "edge_taaf", "quant", "firmware_sim"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in defining:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if re.search(r'(==|!=|\bin\b)\s*\(?"(taaf|concat|taaf_modal)"', code) \
                        or re.match(r"\s*MODALITIES\s*=", code) or re.search(r"\b4 <= \w+ <= 8\b", code):
                    offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    assert (spec.WEIGHT_BITS_MIN, spec.WEIGHT_BITS_MAX) == (4, 8)
