"""Energy and latency model: hardware configs (validation, sources), pricing by hand, ANN baselines priced
alike (inputs at their real width, count frames, reuse buffers, the shared front-end rows, sne22nm as an
operation count)."""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from firmware_sim.counters import Counts, Unit
from firmware_sim import spec
from edge_taaf import CONFIG_DIR
from firmware_sim.ann_cost import AnnLayer, ann_shapes, layer_cost, price_ann_pass
from firmware_sim.dataflow import Geometry, price_gather, price_scatter
from firmware_sim.energy import energy_report
from firmware_sim.hardware import HardwareConfigError
from firmware_sim.hardware import load_hardware as load_any
from firmware_sim.report import report_json
from firmware_sim.program import Layer, Program, Readout
from firmware_sim.run import simulate
from tests.support.sim_programs import random_inputs, random_program

HARDWARE_DIR = Path(CONFIG_DIR) / "hardware"
DEFAULT = HARDWARE_DIR / "horowitz45nm.yaml"


def load_hardware(source):
    """A hardware config by name from configs/hardware/, or from a path or mapping."""
    return load_any(source, HARDWARE_DIR)


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
    (lambda d: d["energy_pj"].update(mult32="lots"), "mult32='lots' is not a number"),
    (lambda d: d.update(dataflow="diagonal"), "dataflow='diagonal'; expected scatter, gather or auto"),
    (lambda d: d["register_file"].update(bytes=32), "register_file.bytes=32 cannot hold the 16 32-bit accumulators"),
    (lambda d: d["register_file"].pop("pj_per_access"), "pj_per_access is missing"),
    (lambda d: d.update(per_op_pj={"synaptic_op": 0.2, "mac": 0.2}), "kind='component' but per_op_pj is given"),
    (lambda d: d.update(kind="per_op", per_op_pj={"synaptic_op": 0.2, "neuron_update": 0.2, "mac": 0.2}),
     "kind='per_op'; expected one of ('component', 'operation_count')"),
    (lambda d: d.pop("kind"), "kind=None; expected one of"),
    (lambda d: d.update(kind="operation_count", per_op_pj={"synaptic_op": 0.2, "neuron_update": 0.2, "mac": 0.2}),
     "per_op_pj prices every operation"),
    (lambda d: d["sensor_frontend"]["audio"].pop("window_s"), "sensor_frontend.audio: window_s is missing"),
    (lambda d: d["sensor_frontend"]["audio"].update(sample_rate_hz=0), "sensor_frontend.audio: sample_rate_hz=0 must be > 0"),
    (lambda d: d["sensor_frontend"]["audio"].update(taps=3), "sensor_frontend.audio: unknown keys ['taps']"),
    (lambda d: d["sensor_frontend"]["audio"].update(operand_bits=64), "operand_bits=64 must be a whole number 2..32"),
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


def test_scatter_and_gather_prices_by_hand():
    """One dense layer (64 inputs -> 12 neurons, int8) with hand-made counters, both dataflows, whole words."""
    hw = load_hardware("horowitz45nm")
    e, sram = hw.energy_pj, dict(hw.sram)[8192]                        # every memory here is under 8 KiB
    add16 = e["add8"] + (e["add32"] - e["add8"]) * 8 / 24
    g = Geometry(group=12, positions=1, rf_inputs=64, n_in=64, n_out=12, in_bits=1, weight_bytes=768)
    c = dict.fromkeys(("input_events", "syn_ops", "weight_rows", "fanout_groups", "neuron_updates", "leak_ops",
                       "group_updates", "single_updates", "steps", "spikes_out"), 0)
    c.update(input_events=50, syn_ops=600, weight_rows=50, fanout_groups=50, neuron_updates=130, leak_ops=30,
             group_updates=10, single_updates=10, steps=16, spikes_out=20)
    entry = 16 + 5                                                     # membrane + 5-bit stamp (max_T = 32)
    pj, cycles = price_scatter(c, g, hw, 8, entry)
    assert hw.sram_word_bits == 64 and hw.sram_write_factor == 1.0
    assert math.isclose(pj["synaptic accumulate"], 600 * e["add32"])
    assert math.isclose(pj["neuron update"], 130 * 4 * add16 + 30 * 2 * add16)
    assert math.isclose(pj["weight memory"], 50 * 2 * sram)             # a 12-weight row: 96 bits = 2 whole words
    assert math.isclose(pj["accumulator memory"], ((50 + 10) * 6 + 10 * 1) * 2 * sram)   # 12 x 32 bits = 6 words, RMW
    assert math.isclose(pj["state memory"], (10 * 4 + 10 * 1) * 2 * sram)                # 12 x 21 bits = 4 words
    assert math.isclose(pj["spike routing"], (50 + 20 + 20 * 2) * sram)   # events in, spikes out, update queue
    assert cycles == math.ceil(600 / 16) + math.ceil(160 / 16) + 20
    pj, cycles = price_gather(c, g, hw, 8)
    assert math.isclose(pj["input bitmap"], 16 * 1 * 1 * sram)           # 64 one-bit inputs: one word per step
    assert math.isclose(pj["other compute"], (16 + 50) * e["add8"])
    assert math.isclose(pj["weight memory"], 50 * 2 * sram)
    assert math.isclose(pj["register file"], 600 * 2 * hw.register_pj)
    assert math.isclose(pj["neuron update"], 16 * 12 * 4 * add16)
    assert math.isclose(pj["state memory"], 16 * 3 * 2 * sram)           # 12 x 16 bits = 3 words, every step
    assert math.isclose(pj["spike routing"], 16 * 1 * sram)
    assert cycles == math.ceil(600 / 16) + 16 + math.ceil(16 * 12 / 16)
    # integrate-and-fire (no leak): an update is 3 adds (+ I, the compare, the reset), never 4
    g_if = Geometry(group=12, positions=1, rf_inputs=64, n_in=64, n_out=12, in_bits=1, weight_bytes=768, update_adds=3)
    assert math.isclose(price_scatter(c, g_if, hw, 8, entry)[0]["neuron update"], 130 * 3 * add16 + 30 * 2 * add16)
    assert math.isclose(price_gather(c, g_if, hw, 8)[0]["neuron update"], 16 * 12 * 3 * add16)


def test_an_if_layer_is_priced_at_three_adds_per_update():
    from firmware_sim.dataflow import geometry
    program = tiny_program()
    assert geometry(program, program.layers[0]).update_adds == 4
    program.leak_shift = spec.LEAK_OFF
    assert geometry(program, program.layers[0]).update_adds == 3


def tiny_program() -> Program:
    """vision (1, 4, 4) -> conv 3x3 (2 ch) -> dense 2; audio (3,) -> dense 2; concat readout, K = 2; all weights 1."""
    ones = lambda *shape: np.ones(shape, np.int8)  # noqa: E731
    layers = [Layer("vision.conv0", "conv", "vision", "vision", (1, 4, 4), (2, 4, 4), ones(2, 1, 3, 3), -7, 1, 1, 1),
              Layer("vision.dense", "dense", "vision", "vision.conv0", (32,), (2,), ones(2, 32), -7, 1),
              Layer("audio.fc0", "dense", "audio", "audio", (3,), (2,), ones(2, 3), -7, 1)]
    readout = Readout("concat", "audio.fc0", "vision.dense", np.ones(1, np.int64), np.ones(1, np.int64),
                      np.ones((2, 4), np.int64), np.zeros(2, np.int64), 0)
    return Program(4, 32, 8, spec.STATE_BITS, 1, 2, {"vision": ((1, 4, 4), 1), "audio": ((3,), 8)}, layers, readout).check()


def test_ann_baselines_by_hand_layer_by_layer():
    """(a) dense int8 over T frames, (b) single pass with ceil(log2(T+1))-bit counts, (c) (b) skipping zeros,
    on a tiny network, every layer priced by hand (horowitz45nm: every memory under 8 KiB, 10 pJ a word):
    inputs at their real width, registers and reuse buffers per MAC, the count frame of the input layers."""
    hw, program = load_hardware("horowitz45nm"), tiny_program()
    vision, audio = np.zeros((4, 1, 1, 4, 4), np.uint8), np.zeros((4, 1, 3), np.uint8)
    vision[0, 0, 0, 0, 0] = 1                   # one corner event: reaches 2 x 2 positions x 2 channels
    audio[1, 0, 0] = 8                          # one channel, count 8
    run = simulate(program, {"vision": vision, "audio": audio})
    r = energy_report(program, run.counts, hw, 4)
    word, add8, add32, rf = 10.0, hw.energy_pj["add8"], hw.energy_pj["add32"], hw.register_pj

    def mac(in_bits):                           # int8 x in_bits multiply (array multiplier) + the accumulate
        return hw.energy_pj["mult8"] * 8 * in_bits / 64 + add32

    def frame(events, words):                   # count frame: an add and a word read-modify-write per event, cleared
        return events * (add8 + 2 * word) + words * word
    # (a) per frame: MACs, outputs, weight + activation words, registers (2 + buffered operands) per MAC, frame.
    # The binary vision input is 1 bit and the audio input (largest count 8) 4 bits; hidden activations 8 bits.
    a = {"vision.conv0": 288 * mac(1) + 32 * add32 + (3 + 1 + 4) * word + 288 * 4 * rf + frame(1 / 4, 1),
         "vision.dense": 64 * mac(8) + 2 * add32 + (8 + 4 + 1) * word + 64 * 3 * rf,
         "audio.fc0": 6 * mac(4) + 2 * add32 + (1 + 1 + 1) * word + 6 * 3 * rf + frame(1 / 4, 1),
         "readout": 14 * mac(8) + 3 * add32 + (2 + 1 + 1) * word + 14 * 4 * rf}     # warps 2 + 2, logits 8, sum 2
    for name, pj in a.items():
        assert math.isclose(r["ann_int8_T"]["by_layer"][name]["energy_uj"], 4 * pj * 1e-6), name
    assert math.isclose(r["ann_int8_T"]["count_frame_uj"], 2 * 4 * frame(1 / 4, 1) * 1e-6)
    # (b) one pass; window counts: 3 bits (T = 4), the audio input 6 bits (4 x 8 = 32)
    b = {"vision.conv0": 288 * mac(3) + 32 * add32 + (3 + 1 + 2) * word + 288 * 4 * rf + frame(1, 1),
         "vision.dense": 64 * mac(3) + 2 * add32 + (8 + 2 + 1) * word + 64 * 3 * rf,
         "audio.fc0": 6 * mac(6) + 2 * add32 + (1 + 1 + 1) * word + 6 * 3 * rf + frame(1, 1),
         "readout": 8 * mac(3) + 2 * add32 + (1 + 1 + 1) * word + 8 * 3 * rf}             # K x D logits only
    for name, pj in b.items():
        assert math.isclose(r["ann_single_pass"]["by_layer"][name]["energy_uj"], pj * 1e-6), name
    # (c) only the active inputs multiply: 1 pixel -> 8 synapses; 8 conv neurons -> 16; 1 channel -> 2; 4 features;
    # each layer reads its nonzero bitmap (one more word)
    assert run.counts.units["vision.conv0"].counts["active_synapses"] == 8
    c = {"vision.conv0": 8 * mac(3) + 32 * add32 + (3 + 1 + 2 + 1) * word + 8 * 4 * rf + frame(1, 1),
         "vision.dense": 16 * mac(3) + 2 * add32 + (8 + 1 + 1 + 1) * word + 16 * 3 * rf,
         "audio.fc0": 2 * mac(6) + 2 * add32 + (1 + 1 + 1 + 1) * word + 2 * 3 * rf + frame(1, 1),
         "readout": 8 * mac(3) + 2 * add32 + (1 + 1 + 1 + 1) * word + 8 * 3 * rf}
    for name, pj in c.items():
        assert math.isclose(r["ann_single_pass_zero_skip"]["by_layer"][name]["energy_uj"], pj * 1e-6), name
    for key in ("ann_int8_T", "ann_single_pass", "ann_single_pass_zero_skip"):   # their own cost + the shared rows
        assert math.isclose(r[key]["energy_uj"], r[key]["own_uj"] + r["shared"]["energy_uj"])
    assert r["ann_single_pass_zero_skip"]["own_uj"] < r["ann_single_pass"]["own_uj"] < r["ann_int8_T"]["own_uj"]
    for key, ratio in (("ann_int8_T", "energy_ann_int8_vs_snn"), ("ann_single_pass", "energy_single_pass_ann_vs_snn"),
                       ("ann_single_pass_zero_skip", "energy_single_pass_zero_skip_vs_snn")):
        assert math.isclose(r["ratios_with_frontend"][ratio], r[key]["energy_uj"] / r["energy_uj"])
        assert math.isclose(r["ratios"][ratio], r[key]["own_uj"] / r["core_energy_uj"])   # the networks alone


def test_binary_input_is_priced_at_one_bit_in_both_baselines():
    """A binary input is 1 bit in (a)'s frames and, over a one-step window, in (b): the first layer's
    arithmetic is then the same in both, and (a)'s MAC is an int8 x 1-bit product, not 8 x 8."""
    hw, program = load_hardware("horowitz45nm"), tiny_program()
    vision, audio = np.zeros((1, 1, 1, 4, 4), np.uint8), np.zeros((1, 1, 3), np.uint8)
    vision[0, 0, 0, 1, 1] = 1
    r = energy_report(program, simulate(program, {"vision": vision, "audio": audio}, allow_other_T=True).counts, hw, 1)
    a, b = r["ann_int8_T"]["by_layer"]["vision.conv0"], r["ann_single_pass"]["by_layer"]["vision.conv0"]
    assert math.isclose(a["compute_uj"], b["compute_uj"])
    one_bit = 288 * (hw.mult_narrow(8, 1) + hw.add(32)) + 32 * hw.add(32) + 1 * hw.add(8)   # MACs, outputs, frame add
    assert math.isclose(a["compute_uj"], one_bit * 1e-6)
    assert hw.mult_narrow(8, 1) == hw.energy_pj["mult8"] / 8


def test_count_frame_appears_and_grows_with_the_events():
    """A layer that reads the sensors' events pays its count frame: per event an add and a counter-word
    read-modify-write (so the cost grows by exactly that per event), plus one clear per pass."""
    hw = load_hardware("horowitz45nm")
    layer = dict(name="in", macs=200, weights=50, n_in=100, in_bits=5, n_out=20, out_bits=5)
    none = price_ann_pass([AnnLayer(**layer)], hw)
    costs = [price_ann_pass([AnnLayer(**layer, frame_events=e)], hw) for e in (10, 30)]
    word = hw.sram_word(100 * 5 / 8)
    per_event = hw.add(8) + (1 + hw.sram_write_factor) * word
    assert none["count_frame_uj"] == 0
    assert math.isclose(costs[0]["count_frame_uj"], (10 * per_event + hw.words(500) * word) * 1e-6)
    assert math.isclose(costs[1]["count_frame_uj"] - costs[0]["count_frame_uj"], 20 * per_event * 1e-6)
    assert costs[1]["energy_uj"] > costs[0]["energy_uj"] > none["energy_uj"]
    assert any("count frame of ['in']" in line for line in costs[0]["covers"])
    # the baselines: more input events, a dearer count frame in (b)
    program = tiny_program()
    few, many = np.zeros((4, 1, 1, 4, 4), np.uint8), np.zeros((4, 1, 1, 4, 4), np.uint8)
    few[0, 0, 0, 0, 0] = 1
    many[:, 0, 0, :2, :2] = 1                   # 16 events
    audio = np.zeros((4, 1, 3), np.uint8)
    frames = [energy_report(program, simulate(program, {"vision": v, "audio": audio}).counts, hw, 4)
              ["ann_single_pass"]["by_layer"]["vision.conv0"]["count_frame_uj"] for v in (few, many)]
    assert math.isclose(frames[1] - frames[0], 15 * per_event_at(hw, 16 * 3) * 1e-6)


def per_event_at(hw, frame_bits: int) -> float:
    return hw.add(8) + (1 + hw.sram_write_factor) * hw.sram_word(frame_bits / 8)


def test_reuse_buffers_priced_alike_on_both_sides():
    """An operand served from a reuse buffer costs one register access per use on both sides: the SNN's
    conv tap buffer per synaptic add, the ANN's weight (when a weight serves several MACs) and input
    buffers per MAC, besides the accumulator's read and write. A register at 0 pJ frees them on both."""
    hw = load_hardware("horowitz45nm")
    c = dict.fromkeys(("input_events", "syn_ops", "weight_rows", "fanout_groups", "neuron_updates", "leak_ops",
                       "group_updates", "single_updates", "steps", "spikes_out"), 0)
    c.update(input_events=10, syn_ops=300, weight_rows=20, fanout_groups=40, steps=4)
    conv = Geometry(group=12, positions=64, rf_inputs=50, n_in=200, n_out=768, in_bits=1, weight_bytes=600, tap_buffer=True)
    dense = Geometry(group=12, positions=1, rf_inputs=64, n_in=64, n_out=12, in_bits=1, weight_bytes=768)
    assert math.isclose(price_scatter(c, conv, hw, 8, 21)[0]["register file"], 300 * hw.register_pj)
    assert price_scatter(c, dense, hw, 8, 21)[0]["register file"] == 0         # a row straight from SRAM to the adders
    plain = dict(n_in=0, in_bits=1, n_out=0, out_bits=1, weights=0, name="x")
    conv_ann = layer_cost(AnnLayer(**{**plain, "macs": 1000, "weights": 300, "n_in": 100}), hw)
    dense_ann = layer_cost(AnnLayer(**{**plain, "macs": 1000, "weights": 1000, "n_in": 100}), hw)
    free = load_hardware({**default_dict(), "register_file": {"bytes": 64, "pj_per_access": 0.0}})
    conv_free = layer_cost(AnnLayer(**{**plain, "macs": 1000, "weights": 300, "n_in": 100}), free)
    assert math.isclose(conv_ann["memory"] - conv_free["memory"], 1000 * 4 * hw.register_pj)   # acc r/w, weight, input
    dense_free = layer_cost(AnnLayer(**{**plain, "macs": 1000, "weights": 1000, "n_in": 100}), free)
    assert math.isclose(dense_ann["memory"] - dense_free["memory"], 1000 * 3 * hw.register_pj)  # weights used once
    assert price_scatter(c, conv, free, 8, 21)[0]["register file"] == 0


def test_front_end_rows_are_paid_alike_by_both_sides():
    """The cochlea filterbank (channels x rate x window channel-samples) and the event front-ends are in the
    SNN's figure and added, equal, to every ANN baseline's; without sensor_frontend only that row goes."""
    program = tiny_program()
    vision, audio = np.zeros((4, 1, 1, 4, 4), np.uint8), np.zeros((4, 1, 3), np.uint8)
    vision[0, 0, 0, 0, 0] = audio[1, 0, 0] = 1
    counts = simulate(program, {"vision": vision, "audio": audio}).counts
    for name in ("horowitz45nm", "sne22nm"):
        hw = load_hardware(name)
        r = energy_report(program, counts, hw, 4)
        fb = dict(hw.sensors)["audio"]
        samples = 3 * fb.sample_rate_hz * fb.window_s
        if hw.operation_count:
            row = samples * fb.mults_per_sample * hw.per_op_pj["mac"]
        else:
            row = samples * (fb.mults_per_sample * hw.mult(16) + fb.adds_per_sample * hw.add(16)
                             + fb.register_accesses_per_sample * hw.register_pj)
        assert math.isclose(r["by_unit"]["sensor.audio"]["energy_uj"], row * 1e-6)
        assert math.isclose(r["shared"]["energy_uj"], sum(u["energy_uj"] for u in r["by_unit"].values()
                                                         if u["kind"] in ("sensor", "frontend")))
        assert math.isclose(r["energy_uj"] - r["core_energy_uj"], r["shared"]["energy_uj"])
        for key in ("ann_int8_T", "ann_single_pass", "ann_single_pass_zero_skip"):
            assert math.isclose(r[key]["energy_uj"] - r[key]["own_uj"], r["shared"]["energy_uj"])
            assert r[key]["covers"][:len(r["shared"]["covers"])] == r["shared"]["covers"]
        assert any("3 channels x 8000 Hz x 0.5 s" in line for line in r["covers"])
        d = yaml.safe_load((HARDWARE_DIR / f"{name}.yaml").read_text())
        d.pop("sensor_frontend")
        bare = energy_report(program, counts, load_hardware(d), 4)
        assert "sensor.audio" not in bare["by_unit"]
        assert math.isclose(r["energy_uj"] - bare["energy_uj"], row * 1e-6)
        assert math.isclose(r["ann_int8_T"]["energy_uj"] - bare["ann_int8_T"]["energy_uj"], row * 1e-6)
        assert bare["ratios"] == pytest.approx(r["ratios"])   # the headline does not move with the shared row


def test_sne22nm_is_an_operation_count_and_prices_neuron_updates():
    """sne22nm's report says operation_count (and its 4-bit origin) in the JSON; its SNN figure prices every
    synaptic op, neuron update and catch-up leak step, every MAC, nothing else."""
    rng = np.random.default_rng(1)
    program = random_program(rng)
    run = simulate(program, random_inputs(rng, program, 8, 4, 0.5), allow_other_T=True)
    sne = load_hardware("sne22nm")
    r = energy_report(program, run.counts, sne, 8)
    text = report_json(r)
    assert '"hardware_kind": "operation_count"' in text and "4-bit weights" in r["hardware_note"]
    n = run.counts.n_samples
    updates = (run.counts.total("neuron_updates") + run.counts.total("leak_ops")) / n
    assert updates > 0
    assert math.isclose(r["energy_uj_by_operation"]["neuron update"], updates * sne.per_op_pj["neuron_update"] * 1e-6)
    assert r["energy_uj_by_operation"]["weight memory"] == r["energy_uj_by_operation"]["static"] == 0
    d = yaml.safe_load((HARDWARE_DIR / "sne22nm.yaml").read_text())
    d["per_op_pj"].pop("neuron_update")
    with pytest.raises(HardwareConfigError, match="per_op_pj: neuron_update is missing"):
        load_hardware(d)
    assert energy_report(program, run.counts, load_hardware("horowitz45nm"), 8)["hardware_kind"] == "component"


def test_report_per_inference_dataflows_and_both_hardware_configs():
    hw = load_hardware("horowitz45nm")
    rng = np.random.default_rng(0)
    program = random_program(rng)
    sparse = simulate(program, random_inputs(rng, program, 8, 4, 0.05), allow_other_T=True)
    dense = simulate(program, random_inputs(rng, program, 8, 4, 0.8), allow_other_T=True)
    r_sparse = energy_report(program, sparse.counts, hw, 8)
    r_dense = energy_report(program, dense.counts, hw, 8)
    assert 0 < r_sparse["energy_uj"] < r_dense["energy_uj"]
    assert math.isclose(sum(r_dense["energy_uj_by_operation"].values()), r_dense["energy_uj"], rel_tol=1e-12)
    assert math.isclose(sum(m["energy_uj"] for m in r_dense["by_modality"].values()), r_dense["energy_uj"], rel_tol=1e-12)
    assert set(r_dense["by_modality"]) == {"audio", "vision", "fusion"}
    assert math.isclose(r_dense["latency_us"], r_dense["cycles"] / hw.clock_mhz)
    for name, d in r_dense["dataflows"].items():    # auto: the cheaper dataflow of each layer
        assert d["chosen"] == min(("scatter", "gather"), key=lambda k: d[f"{k}_uj"])
    forced = {flow: energy_report(program, dense.counts, load_hardware({**default_dict(), "dataflow": flow}), 8)
              for flow in ("scatter", "gather")}
    assert r_dense["energy_uj"] <= min(f["energy_uj"] for f in forced.values())
    assert all(d["chosen"] == "gather" for d in forced["gather"]["dataflows"].values())
    # twice the batch, same per-inference numbers
    doubled = Counts(dense.counts.n_samples, {k: Unit(u.modality, u.kind, u.weight_bits, u.n_weights, u.n_neurons, dict(u.counts))
                                              for k, u in dense.counts.units.items()}).merge(dense.counts)
    assert math.isclose(energy_report(program, doubled, hw, 8)["energy_uj"], r_dense["energy_uj"], rel_tol=1e-4)  # ceil(cycles)
    macs = sum(s["macs"] for s in ann_shapes(program))
    assert macs == sum(layer.n_out * layer.fan_in for layer in program.layers) + ann_shapes(program)[-1]["macs"]
    first = [layer.name for layer in program.layers if layer.input in ("audio", "vision")]
    bound = r_dense["ratios"]["bound_ann_int8_vs_snn_if_later_layers_free"]
    assert math.isclose(bound, r_dense["ann_int8_T"]["own_uj"] / sum(r_dense["by_unit"][n]["energy_uj"] for n in first))
    # the published chip, an operation count: synaptic ops, neuron updates, MACs, adds, nothing else
    sne = load_hardware("sne22nm")
    r_sne = energy_report(program, dense.counts, sne, 8)
    per = {k: dense.counts.total(k) / dense.counts.n_samples for k in
           ("syn_ops", "macs", "neuron_updates", "leak_ops", "adds", "lut_reads")}
    core = (per["syn_ops"] + per["neuron_updates"] + per["leak_ops"] + per["macs"] + per["adds"] + per["lut_reads"]) * 0.221
    frontends = sum(u["energy_uj"] for u in r_sne["by_unit"].values() if u["kind"] == "frontend")
    assert math.isclose(r_sne["core_energy_uj"], core * 1e-6 + frontends)
    outputs = sum(s["out"] for s in ann_shapes(program))
    events = sum(dense.counts.units[layer.name].counts["input_events"] for layer in program.layers
                 if layer.input in program.inputs) / dense.counts.n_samples
    assert math.isclose(r_sne["ann_int8_T"]["own_uj"], (8 * (macs + outputs) + events) * 0.221 * 1e-6)


def test_docs_figures_build_from_the_saved_benchmark_json(tmp_path):
    """python docs/make_figures.py: every README figure from docs/bench/*.json and docs/*.json."""
    from docs.make_figures import main
    main(tmp_path)
    names = {p.name for p in tmp_path.glob("*.png")}
    assert {"energy_by_operation.png", "energy_sweep.png", "ablation_official.png", "synth_imbalance.png"} <= names
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in tmp_path.glob("*.png"))
