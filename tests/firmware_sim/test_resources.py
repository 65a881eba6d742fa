"""Resource checks that name the limit (firmware_sim/resources.py): needs per layer, the Speck-like and Xylo-like
profiles from their published limits, our hardware configs, and a design-rule error for every limit."""
from __future__ import annotations

import dataclasses

import pytest

from firmware_sim.hardware import load_hardware
from firmware_sim.loader import load_program
from firmware_sim.resources import (PROFILES, DesignRuleError, LayerNeeds, _core_assignment, check_resources,
                                    hardware_profile, layer_needs, resource_report)
from quant import export
from tests.support.configs import CONFIGS
from tests.support.quant_models import tiny_model


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    path = tmp_path_factory.mktemp("res") / "m.onnx"
    export.export_onnx(tiny_model("taaf", 8, 1.0, 0, 6), path)
    return load_program(path)


def test_needs_per_layer_follow_the_weights_and_speck_sizing(program):
    needs = {n.name: n for n in layer_needs(program)}
    conv = next(layer for layer in program.layers if layer.kind == "conv")
    c_out, c_in, k, _ = conv.weight.shape
    n = needs[conv.name]
    assert n.synapses == conv.weight.size and n.fan_in == c_in * k * k and n.neurons == conv.n_out
    assert n.connections == conv.n_out * c_in * k * k and n.weight_bytes == conv.weight.size     # int8: a byte each
    fy, fx = conv.out_shape[1:]
    log2 = lambda v: (v - 1).bit_length()   # noqa: E731   ceil(log2 v) for v >= 1
    assert n.kernel_entries == c_in * 2 ** (log2(k * k) + log2(c_out))
    assert n.neuron_entries == c_out * 2 ** (log2(fy) + log2(fx))
    assert n.state_bytes == conv.n_out * program.state_bits // 8


def test_our_accelerator_fits_and_a_smaller_memory_is_a_design_rule_error(program):
    hw = load_hardware(CONFIGS / "hardware" / "horowitz45nm.yaml")
    report = check_resources(program, hardware_profile(hw))
    assert report["fits"] == 1 and report["event_buffer"]["fifo_bytes"] == hw.event_fifo_bytes
    sne = load_hardware(CONFIGS / "hardware" / "sne22nm.yaml")          # an operation-count model: no memories
    assert check_resources(program, hardware_profile(sne))["fits"] == 1
    small = dataclasses.replace(hw, sram=((1024, 10.0),))
    need = sum(n.weight_bytes for n in layer_needs(program))
    with pytest.raises(DesignRuleError, match=rf"every layer needs {need} weight memory, the limit is 1024"):
        check_resources(program, hardware_profile(small))


def test_speck_refuses_our_sensors_and_attention_naming_each(program):
    report = resource_report(program, PROFILES["speck"])
    assert report["fits"] == 0
    resources = [(v["layer"], v["resource"]) for v in report["violations"]]
    assert ("input audio", "input shape") in resources and ("input vision", "input shape") in resources
    assert ("readout", "taaf attention (score MLP, exp2 softmax over time)") in resources
    first = r"design rule \(speck, sinabs .*\): input vision needs \[2, 34, 34\] input shape, the limit is \[\[2, 128, 128\]\]"
    with pytest.raises(DesignRuleError, match=first):
        check_resources(program, PROFILES["speck"])


def test_xylo_names_its_dense_only_input_and_hidden_limits(program):
    report = resource_report(program, PROFILES["xylo"])
    kinds = {v["resource"]: v for v in report["violations"]}
    assert kinds["input channels"]["limit"] == 16 and kinds["layer kind"]["need"] == "conv"
    assert kinds["hidden neurons"]["need"] == sum(layer.n_out for layer in program.layers) > 1000


def needs(name, k, n):
    return LayerNeeds(name, "conv", 1, 1, 1, 1, 1, 1, 1, k, n)


def test_speck_cores_are_matched_like_sinabs_max_flow():
    cores = PROFILES["speck"].cores
    big = [needs(f"l{i}", 40 * 1024, 8 * 1024) for i in range(2)]        # only cores 5 and 6 hold them
    assignment, violations = _core_assignment([*big, needs("small", 1024, 1024)], cores)
    assert not violations and sorted(assignment[:2]) == [5, 6] and assignment[2] not in (5, 6)
    _, violations = _core_assignment([needs(f"l{i}", 40 * 1024, 8 * 1024) for i in range(3)], cores)
    assert violations == [{"layer": "l2", "resource": "cores", "need": 3, "limit": 9}]
    _, violations = _core_assignment([needs("huge", 128 * 1024, 1024)], cores)
    assert violations[0]["resource"] == "kernel/neuron memory of any core" and violations[0]["limit"] == (65536, 65536)


def test_the_throughput_need_is_checked_against_clock_times_synaptic_units(program):
    hw = load_hardware(CONFIGS / "hardware" / "horowitz45nm.yaml")
    limit = hw.clock_mhz * 1e6 * hw.syn_units
    assert resource_report(program, hardware_profile(hw), synops_per_s=limit)["fits"] == 1
    with pytest.raises(DesignRuleError, match=rf"every layer needs {2 * limit} synaptic operations per second, "
                                              rf"the limit is {limit}"):
        check_resources(program, hardware_profile(hw), synops_per_s=2 * limit)
