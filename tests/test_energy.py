"""Energy and latency model: hardware configs (validation, sources), pricing by hand, ANN baselines."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import yaml

from firmware_sim.counters import Counts, Unit
from firmware_sim.energy import HARDWARE_DIR, HardwareConfigError, ann_shapes, energy_report, load_hardware, price_ann, price_unit
from firmware_sim.run import simulate
from tests.test_sim_support import random_inputs, random_program

DEFAULT = HARDWARE_DIR / "horowitz45nm.yaml"


def default_dict():
    return yaml.safe_load(DEFAULT.read_text())


def test_every_constant_of_every_hardware_config_cites_its_source():
    for path in HARDWARE_DIR.glob("*.yaml"):
        for line in path.read_text().splitlines():
            if re.match(r"^\s*[\w.]+:\s*-?[\d.]+", line):
                assert "#" in line and len(line.split("#", 1)[1].strip()) > 10, f"{path.name}: no source for {line.strip()!r}"
    hw = load_hardware("horowitz45nm")
    assert hw.name == "horowitz45nm" and hw.energy_pj["add32"] > hw.energy_pj["add8"] > 0


@pytest.mark.parametrize("edit, fragment", [
    (lambda d: d["energy_pj"].pop("add32"), "add32 is missing"),
    (lambda d: d["energy_pj"].update(mult8=-0.2), "mult8=-0.2 must be >= 0"),
    (lambda d: d["energy_pj"].update(fp32_mac="lots"), "fp32_mac='lots' is not a number"),
    (lambda d: d.pop("static_power_mw"), "static_power_mw is missing"),
    (lambda d: d.update(clock_mhz=0), "clock_mhz=0 must be > 0"),
    (lambda d: d["parallel"].update(syn_units=-4), "syn_units=-4"),
    (lambda d: d["parallel"].update(mac_units=2.5), "mac_units=2.5 must be a whole number"),
    (lambda d: d.update(sram_read_pj={}), "sram_read_pj needs at least one"),
    (lambda d: d["sram_read_pj"].update({8192: -10}), "must be >= 0"),
    (lambda d: d.pop("parallel"), "section 'parallel'"),
    (lambda d: d.pop("sram_word_bits"), "sram_word_bits is missing"),
    (lambda d: d.update(sram_word_bits=12), "sram_word_bits=12.0 must be a whole number of bytes"),
])
def test_bad_hardware_configs_name_the_constant(tmp_path, edit, fragment):
    d = default_dict()
    edit(d)
    with pytest.raises(HardwareConfigError, match=re.escape(fragment)):
        load_hardware(d)
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(d))
    with pytest.raises(HardwareConfigError, match="hw.yaml"):
        load_hardware(path)


def test_unknown_hardware_name():
    with pytest.raises(HardwareConfigError, match="known names"):
        load_hardware("no_such_chip")


def test_sram_cost_by_size():
    hw = load_hardware("horowitz45nm")
    table = dict(hw.sram)
    for size, cost in table.items():
        assert math.isclose(hw.sram_word(size), cost)
    assert hw.sram_word(64) == hw.sram_word(8192)                      # clamped below the table
    sizes = [2 ** k for k in range(10, 24)]
    costs = [hw.sram_word(s) for s in sizes]
    assert all(a <= b for a, b in zip(costs, costs[1:]))
    assert math.isclose(hw.sram_word(16384), math.sqrt(table[8192] * table[32768]))   # log-log midpoint


def test_price_of_one_unit_by_hand():
    hw = load_hardware("horowitz45nm")
    unit = Unit("audio", "dense", 8, n_weights=1000, n_neurons=10)
    unit.add(syn_ops=1000, weight_reads=500, neuron_updates=100, leak_ops=30, state_reads=100, state_writes=100,
             flag_bits=160, input_events=50, spikes_out=10)
    pj, cycles = price_unit(unit, hw, max_T=32)                       # 5-bit time stamps
    e = hw.energy_pj
    add16 = e["add8"] + (e["add32"] - e["add8"]) * 8 / 24
    small = dict(hw.sram)[8192]                                        # 1000 B of weights, 27 B of state: smallest SRAM
    assert math.isclose(pj["synaptic accumulate"], 1000 * e["add32"])
    assert math.isclose(pj["neuron update"], 100 * 4 * add16 + 30 * 2 * add16)
    assert hw.sram_word_bits == 64                                     # Horowitz's cache figures are per 64-bit access
    assert math.isclose(pj["weight memory"], 500 * 8 / 64 * small)
    assert math.isclose(pj["state memory"], 200 * (16 + 5) / 64 * small + 160 / 64 * 2 * small)
    assert math.isclose(pj["spike routing"], 60 * 32 / 64 * hw.sram_word(hw.event_fifo_bytes))
    assert cycles == math.ceil(1000 / hw.syn_units) + math.ceil(130 / hw.neuron_units) + math.ceil(160 / 64)


def test_report_per_inference_and_ann_baselines():
    hw = load_hardware("horowitz45nm")
    rng = np.random.default_rng(0)
    program = random_program(rng)
    sparse = simulate(program, random_inputs(rng, program, 8, 4, 0.05))
    dense = simulate(program, random_inputs(rng, program, 8, 4, 0.8))
    r_sparse = energy_report(program, sparse.counts, hw, 8)
    r_dense = energy_report(program, dense.counts, hw, 8)
    assert 0 < r_sparse["energy_uj"] < r_dense["energy_uj"]
    assert math.isclose(sum(r_dense["energy_uj_by_operation"].values()), r_dense["energy_uj"], rel_tol=1e-9)
    assert math.isclose(sum(m["energy_uj"] for m in r_dense["by_modality"].values()), r_dense["energy_uj"], rel_tol=1e-9)
    assert set(r_dense["by_modality"]) == {"audio", "vision", "fusion"}
    assert math.isclose(r_dense["latency_us"], r_dense["cycles"] / hw.clock_mhz)
    # twice the batch, same per-inference numbers
    doubled = Counts(dense.counts.n_samples, {k: Unit(u.modality, u.kind, u.weight_bits, u.n_weights, u.n_neurons, dict(u.counts))
                                              for k, u in dense.counts.units.items()}).merge(dense.counts)
    assert math.isclose(energy_report(program, doubled, hw, 8)["energy_uj"], r_dense["energy_uj"], rel_tol=1e-4)  # ceil(cycles)
    # ANN baselines: MACs from the layer shapes, fp32 costs more than int8, linear in frames
    macs = sum(s["macs"] for s in ann_shapes(program))
    assert macs == sum(layer.n_out * layer.fan_in for layer in program.layers) + ann_shapes(program)[-1]["macs"]
    a8, a32 = r_dense["ann_int8"], r_dense["ann_fp32"]
    assert a8["macs"] == 8 * macs and 0 < a8["energy_uj"] < a32["energy_uj"]
    assert math.isclose(price_ann(program, hw, 16, "int8")["energy_uj"], 2 * price_ann(program, hw, 8, "int8")["energy_uj"])
    assert math.isclose(r_dense["ratios"]["energy_ann_int8_vs_snn"], a8["energy_uj"] / r_dense["energy_uj"])
    first = [layer.name for layer in program.layers if layer.input in ("audio", "vision")]
    bound = r_dense["ratios"]["bound_ann_int8_vs_snn_if_later_layers_free"]
    assert math.isclose(bound, a8["energy_uj"] / sum(r_dense["by_unit"][n]["energy_uj"] for n in first))
    assert bound > r_dense["ratios"]["energy_ann_int8_vs_snn"]


def test_docs_figures_build_from_the_saved_benchmark_json(tmp_path):
    """python -m edge_taaf.figures: every README figure from docs/bench/*.json and docs/*.json."""
    from edge_taaf.figures import main
    main(tmp_path)
    names = {p.name for p in tmp_path.glob("*.png")}
    assert {"energy_by_operation.png", "energy_sweep.png", "ablation_official.png", "synth_imbalance.png"} <= names
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in tmp_path.glob("*.png"))
