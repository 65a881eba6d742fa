"""firmware_sim.ann_cost: a tiny two-layer ANN priced by hand on horowitz45nm and on sne22nm (an operation
count), its count frame, zero-skip never above dense, and the errors."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edge_taaf import CONFIG_DIR
from firmware_sim.ann_cost import AnnLayer, price_ann, price_ann_pass
from firmware_sim.hardware import load_hardware

HARDWARE_DIR = Path(CONFIG_DIR) / "hardware"

# conv-like first layer: 20 inputs of 5 bits -> 16 outputs of 8 bits; classifier 16 -> 10 int32 logits.
# Measured means per inference for zero-skip: 8 of 20 inputs nonzero (40 of 100 MACs), 6 of 16 (60 of 160).
TINY = [AnnLayer("a", macs=100, weights=40, n_in=20, in_bits=5, n_out=16, out_bits=8, nonzero_in=8, nonzero_macs=40),
        AnnLayer("b", macs=160, weights=160, n_in=16, in_bits=8, n_out=10, out_bits=32, nonzero_in=6, nonzero_macs=60)]


def test_horowitz_by_hand():
    hw = load_hardware("horowitz45nm", HARDWARE_DIR)
    # the constants the hand computation below uses
    assert (hw.energy_pj["mult8"], hw.energy_pj["add32"], hw.register_pj) == (0.2, 0.1, 0.3)
    assert (hw.sram_word(64 * 1024 / 8), hw.sram_word_bits, hw.sram_write_factor) == (10.0, 64, 1.0)
    assert (hw.static_power_mw, hw.clock_mhz, hw.syn_units, hw.neuron_units) == (0.1, 100.0, 16, 16)
    # a MAC: mult8 x wbits x in_bits / 64 + add32 -> 5-bit input 0.225 pJ, 8-bit 0.3 pJ; per MAC the accumulator
    # register read and written and one register access per operand served from a reuse buffer
    # layer a: compute 100 x 0.225 + 16 outputs x add32 = 24.1; memory: weights 320 bits = 5 words, inputs
    #   100 bits = 2 words, outputs 128 bits = 2 words written (x1) -> 9 words x 10 pJ = 90, registers: a weight
    #   serves 100 / 40 MACs and an input 100 / 20, both buffered -> 100 x 4 x 0.3 = 120; cycles 7 + 1 = 8
    # layer b: compute 160 x 0.3 + 10 x 0.1 = 49; memory: weights 1280 bits = 20 words, inputs 2, outputs
    #   320 bits = 5 -> 27 words = 270, registers: each weight used once (not buffered), inputs buffered ->
    #   160 x 3 x 0.3 = 144; cycles 10 + 1 = 11
    # static: 19 cycles at 100 MHz = 0.19 us x 0.1 mW = 19 pJ
    dense = price_ann_pass(TINY, hw)
    assert dense["compute_uj"] == pytest.approx(73.1e-6)
    assert dense["memory_uj"] == pytest.approx(624e-6)
    assert dense["static_uj"] == pytest.approx(19e-6)
    assert dense["energy_uj"] == pytest.approx(716.1e-6)
    assert dense["cycles"] == 19 and dense["latency_us"] == pytest.approx(0.19)
    assert dense["by_layer"]["a"]["energy_uj"] == pytest.approx(234.1e-6)
    assert dense["by_layer"]["b"]["memory_uj"] == pytest.approx(414e-6)
    assert dense["dominant"] == "memory" and dense["count_frame_uj"] == 0
    assert dense["hardware_kind"] == "component" and any("reuse buffers" in line for line in dense["covers"])
    # zero-skip: a: 40 x 0.225 + 1.6 = 10.6; memory 5 weight words + 1 input word (8 x 5 bits) + 2 output
    #   words + the 20-bit nonzero bitmap (1 word) = 9 words = 90, registers 40 x 4 x 0.3 = 48; cycles 3 + 1
    # b: 60 x 0.3 + 1 = 19; memory 20 + 1 (6 x 8 bits) + 5 + bitmap 1 = 27 words = 270, registers 60 x 3 x 0.3
    #   = 54; cycles 4 + 1
    # static 9 cycles = 9 pJ
    skip = price_ann_pass(TINY, hw, zero_skip=True)
    assert skip["compute_uj"] == pytest.approx(29.6e-6)
    assert skip["memory_uj"] == pytest.approx(462e-6)
    assert skip["energy_uj"] == pytest.approx(500.6e-6)
    assert skip["cycles"] == 9
    assert skip["energy_uj"] <= dense["energy_uj"]
    # a count frame on the input layer: 12 events x (add8 0.03 + read and write of a counter word 2 x 10) + one
    # clear of the 100-bit frame (2 words x 10) = 260.36 pJ; 12 + 2 cycles more
    framed = price_ann_pass([replace(TINY[0], frame_events=12), TINY[1]], hw)
    assert framed["count_frame_uj"] == pytest.approx(260.36e-6)
    assert framed["cycles"] == 19 + 14
    assert framed["energy_uj"] == pytest.approx(716.1e-6 + 260.36e-6 + 0.14 * 0.1e-3)


def test_per_op_sne22nm_by_hand():
    hw = load_hardware("sne22nm", HARDWARE_DIR)
    assert hw.per_op_pj["mac"] == 0.221 and hw.static_power_mw == 0
    both = price_ann(TINY, hw)
    # every MAC one mac, every output (16 + 10) one neuron_update, all at 0.221 pJ, nothing else
    assert both["dense"]["energy_uj"] == pytest.approx((260 + 26) * 0.221e-6)
    assert both["dense"]["memory_uj"] == 0 and both["dense"]["static_uj"] == 0
    assert both["dense"]["cycles"] == 19 and both["dense"]["hardware_kind"] == "operation_count"
    assert both["zero_skip"]["energy_uj"] == pytest.approx((100 + 26) * 0.221e-6)  # only the 40 + 60 nonzero MACs
    framed = price_ann_pass([replace(TINY[0], frame_events=12), TINY[1]], hw)      # each frame event one synaptic_op
    assert framed["count_frame_uj"] == pytest.approx(12 * 0.221e-6)
    assert framed["energy_uj"] == pytest.approx((260 + 26 + 12) * 0.221e-6)
    assert both["dense"]["dominant"] == both["zero_skip"]["dominant"] == "compute"


@pytest.mark.parametrize("name", sorted(p.stem for p in HARDWARE_DIR.glob("*.yaml")))
def test_zero_skip_never_above_dense_even_when_nothing_is_zero(name):
    hw = load_hardware(name, HARDWARE_DIR)
    layers = [AnnLayer("a", 5000, 400, 600, 8, 700, 8, nonzero_in=600, nonzero_macs=5000),
              AnnLayer("b", 7000, 7000, 700, 8, 10, 32, nonzero_in=100, nonzero_macs=1000)]
    both = price_ann(layers, hw)
    assert 0 < both["zero_skip"]["energy_uj"] <= both["dense"]["energy_uj"]
    # a layer with nothing zero pays the bitmap on top (memory-priced configs): skipping then costs more there
    if hw.per_op_pj is None:
        assert both["zero_skip"]["by_layer"]["a"]["energy_uj"] > both["dense"]["by_layer"]["a"]["energy_uj"]


def test_mappings_unmeasured_layers_and_bad_values():
    hw = load_hardware("horowitz45nm", HARDWARE_DIR)
    plain = [dict(name="x", macs=10, weights=10, n_in=10, in_bits=8, n_out=1, out_bits=32)]
    assert price_ann(plain, hw)["zero_skip"] is None
    with pytest.raises(ValueError, match="'x'.*nonzero_in and nonzero_macs"):
        price_ann_pass(plain, hw, zero_skip=True)
    with pytest.raises(ValueError, match="'y'.*nonzero_macs=20"):
        AnnLayer("y", macs=10, weights=1, n_in=4, in_bits=8, n_out=1, out_bits=8, nonzero_in=1, nonzero_macs=20)
    with pytest.raises(ValueError, match="'w'.*frame_events=-1"):
        AnnLayer("w", macs=10, weights=1, n_in=4, in_bits=8, n_out=1, out_bits=8, frame_events=-1)
    with pytest.raises(ValueError, match="'z'.*in_bits=0"):
        AnnLayer("z", macs=10, weights=1, n_in=4, in_bits=0, n_out=1, out_bits=8)
    with pytest.raises(ValueError, match="at least one layer"):
        price_ann([], hw)
    with pytest.raises(ValueError, match="repeat"):
        price_ann(plain * 2, hw)
