"""firmware_sim kernels against the pure-numpy reference of docs/accelerator.md (spec.lif_step,
spec.exp2_weights): every layer's spikes, the readout, saturation, counters, batch vs single."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim import spec
from firmware_sim.program import Layer, Program, Readout
from firmware_sim.run import Runner, batch_slices, simulate, simulate_sample
from tests.support.sim_programs import (MIN_RANDOM_NETWORKS, RANDOM_NETWORKS, ActivityLog, random_inputs, random_program,
                                    reference_current, reference_run)

ROOT = Path(__file__).resolve().parents[2]


def assert_same(result, ref):
    for name, value in result.outputs().items():
        assert np.array_equal(value, ref[name]), f"{name} differs from the reference"
    for name, n_sat in ref["saturations"].items():
        assert result.counts.units[name].counts["saturations"] == n_sat, name


def test_random_programs_equal_reference():
    """RANDOM_NETWORKS[...] random programs (a quarter in saturation mode) equal the reference, and
    every layer spikes in at least ACTIVE_SHARE of them; saturation is reached in some."""
    log, saturated = ActivityLog("firmware_sim/test_kernels.py::test_random_programs_equal_reference"), []

    @settings(max_examples=RANDOM_NETWORKS[log.test], deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(seed=st.integers(0, 2 ** 31), fusion=st.sampled_from(["taaf", "concat"]), big_theta=st.sampled_from([False] * 3 + [True]))
    def check(seed, fusion, big_theta):
        # T, B and density from the seed, uniformly: hypothesis' own integers favour the smallest values
        # (T = 1 in about 40 % of examples), where few layers get to spike
        rng = np.random.default_rng(seed)
        T, B, density = int(rng.integers(1, 13)), int(rng.integers(1, 5)), float(rng.uniform(0.05, 0.9))
        program = random_program(rng, fusion=fusion, big_theta=big_theta, frontends=True)
        x = random_inputs(rng, program, T, B, density)
        result, ref = simulate(program, x), reference_run(program, x)
        assert_same(result, ref)
        log.record(ref)
        saturated.append((big_theta, sum(ref["saturations"].values()) > 0))

    check()
    log.check()
    n_big, n_sat = sum(big for big, _ in saturated), sum(sat for _, sat in saturated)
    print(f"saturation mode: {n_big} programs; a membrane reached a 16-bit limit in {n_sat}")
    assert n_sat >= 3, f"only {n_sat} of {len(saturated)} random programs ({n_big} in saturation mode) reached a 16-bit limit"


def test_ci_runs_enough_random_networks():
    """The random-network property tests together run at least MIN_RANDOM_NETWORKS networks
    (tests/support/sim_programs.RANDOM_NETWORKS lists each test's count; each test asserts its own)."""
    total = sum(RANDOM_NETWORKS.values())
    print(f"random networks per test: {RANDOM_NETWORKS}; total {total}")
    assert total >= MIN_RANDOM_NETWORKS, RANDOM_NETWORKS


def _one_neuron_program(weights: np.ndarray, theta: int, leak_shift: int) -> Program:
    """audio (n_in,) -> one dense neuron; a 1-neuron vision path and a concat readout complete the program."""
    n_in = weights.size
    layers = [Layer("audio.fc0", "dense", "audio", "audio", (n_in,), (1,), weights.reshape(1, -1).astype(np.int8), -7, theta),
              Layer("vision.dense", "dense", "vision", "vision", (1,), (1,), np.ones((1, 1), np.int8), -7, 1)]
    readout = Readout("concat", "audio.fc0", "vision.dense", np.ones(1, np.int8), np.ones(1, np.int8),
                      np.ones((2, 2), np.int8), np.zeros(2, np.int64), 0)
    return Program(8, 32, 8, spec.STATE_BITS, leak_shift, 2, {"audio": ((n_in,), 8), "vision": ((1,), 1)},
                   layers, readout).check()


def test_worked_example_of_the_doc():
    """docs/accelerator.md: k=2, theta=256, I = 200, 200, 0, -40000 -> s = 0, 1, 0, 0; t=3 saturates."""
    w = np.r_[100, np.full(50, -100)]                      # input 0: 2 x 100 = 200; inputs 1..50: 8 x -100 each
    audio = np.zeros((4, 1, 51), np.uint8)
    audio[0, 0, 0] = audio[1, 0, 0] = 2
    audio[3, 0, 1:] = 8
    program = _one_neuron_program(w, 256, 2)
    layer = program.layer("audio.fc0")
    assert reference_current(layer, audio)[:, 0, 0].tolist() == [200, 200, 0, -40000]
    res = simulate(program, {"audio": audio, "vision": np.zeros((4, 1, 1), np.uint8)})
    assert res.spikes["audio.fc0"][:, 0, 0].tolist() == [0, 1, 0, 0]
    assert res.counts.units["audio.fc0"].counts["saturations"] == 1
    v, trace = np.zeros(1, np.int64), []
    for cur in (200, 200, 0, -40000):
        v, s, hit = spec.lif_step(v, np.array([cur]), 256, 2)
        trace.append(int(v[0]))
    assert trace == [200, 94, 71, -32768]


def test_saturation_at_both_limits_is_counted():
    """All-max weights with theta at the top of the range saturate high; all-min weights saturate low."""
    lo, hi = spec.state_range()
    audio = np.full((6, 2, 12), 8, np.uint8)
    for sign, limit in ((1, hi), (-1, lo)):
        program = _one_neuron_program(np.full(12, sign * 127), hi, 6)
        x = {"audio": audio, "vision": np.ones((6, 2, 1), np.uint8)}
        ref = reference_run(program, x)
        res = simulate(program, x)
        assert_same(res, ref)
        assert ref["saturations"]["audio.fc0"] > 0
    # the positive one spikes at the limit itself: u = 32767 >= theta = 32767
    assert simulate(_one_neuron_program(np.full(12, 127), hi, 6), x).spikes["audio.fc0"].sum() > 0


@pytest.mark.parametrize("score_log2", [-1, -3, -4, -9, -40])
def test_attention_lookup_edges(score_log2):
    """Left-shift (score_log2 > -4), zero shift, right shift and far-away scores (u = 0) all equal spec.exp2_weights."""
    rng = np.random.default_rng(abs(score_log2))
    program = random_program(rng, fusion="taaf")
    program.readout.score_log2 = score_log2
    x = random_inputs(rng, program, 10, 3, 0.5)
    res = simulate(program, x)
    assert_same(res, reference_run(program, x))
    assert np.array_equal(res.attention, spec.exp2_weights(res.scores, score_log2))
    assert (res.attention.max(0) == 2 ** spec.EXP2_ONE_BITS).all()


def _tap_rows_loaded(layer: Layer, src: np.ndarray) -> int:
    """Conv weight reads by the tap-buffer dataflow: per (step, sample, input channel), C_out weights
    for every kernel tap that at least one event of that channel reaches an output through."""
    active = src > 0                                                   # (T, B, C_in, H, W)
    h, w = layer.in_shape[1:]
    (h_out, w_out), k, s, p = layer.out_shape[1:], layer.kernel, layer.stride, layer.padding

    def reach(size, out_size, tap):
        n = np.arange(size) + p - tap
        return (n >= 0) & (n % s == 0) & (n // s < out_size)

    loads = sum(active[..., reach(h, h_out, ky), :][..., reach(w, w_out, kx)].any(axis=(-2, -1)).sum()
                for ky in range(k) for kx in range(k))
    return int(loads)


def _event_driven_updates(layer: Layer, src: np.ndarray, leak_shift: int) -> tuple[np.ndarray, int]:
    """(updated (T, B, *out) flags, catch-up leak steps) of the event-driven neuron update, from the
    dense reference: a neuron is updated when an event reaches it or its membrane was >= theta; a
    skipped step whose leak changed the membrane costs one catch-up step at the neuron's next update."""
    ones = Layer(**{**layer.__dict__, "weight": np.ones_like(layer.weight)})
    reached = reference_current(ones, (src > 0).astype(np.int64)) > 0  # (T, B, *out)
    cur = reference_current(layer, src)
    v = np.zeros(cur.shape[1:], np.int64)
    updated, changed = [], []
    for t in range(cur.shape[0]):
        v_new, _, _ = spec.lif_step(v, cur[t], layer.theta, leak_shift)
        updated.append(reached[t] | (v >= layer.theta))
        changed.append(v_new != v)
        v = v_new
    updated, changed = np.stack(updated), np.stack(changed)
    later = np.flip(np.cumsum(np.flip(updated, 0), 0), 0) > 0        # an update at this step or after
    later = np.concatenate([later[1:], np.zeros_like(later[:1])])    # ... strictly after
    return updated, int((~updated & changed & later).sum())


def test_counters_match_dense_recount():
    """Every layer counter recomputed from the dense numpy reference: syn_ops = sum over events of count x
    reached fan-out; weight rows by fan-out row (dense) or tap buffer (conv); (event, group) pairs;
    event-driven updates, catch-up leaks and the state groups they read."""
    rng = np.random.default_rng(3)
    program = random_program(rng, n_convs=2)
    x = random_inputs(rng, program, 7, 3, 0.4)
    res = simulate(program, x)
    acts = dict(x, **res.spikes)
    skipped = False
    for layer in program.layers:
        c = res.counts.units[layer.name].counts
        ones = Layer(**{**layer.__dict__, "weight": np.ones_like(layer.weight)})
        src = acts[layer.input].astype(np.int64)
        active = (src > 0).reshape(*src.shape[:2], -1)
        reached = reference_current(ones, (src > 0).astype(np.int64))       # active inputs reaching each neuron
        assert c["syn_ops"] == reference_current(ones, src).sum()
        assert c["input_events"] == active.sum() and c["input_spikes"] == src.sum()
        assert c["spikes_out"] == res.spikes[layer.name].sum()
        updated, leaks = _event_driven_updates(layer, src, program.leak_shift)
        assert (c["neuron_updates"], c["leak_ops"]) == (updated.sum(), leaks), layer.name
        if layer.kind == "dense":
            assert c["weight_rows"] == c["fanout_groups"] == active.sum()
            with_event = active.any(-1)                                       # (T, B)
            assert c["group_updates"] == with_event.sum()
            assert c["single_updates"] == updated[~with_event].sum()
        else:
            assert c["weight_rows"] == _tap_rows_loaded(layer, src), layer.name
            assert c["fanout_groups"] * layer.out_shape[0] == reached.sum()
            assert c["group_updates"] == updated.any(axis=2).sum() and c["single_updates"] == 0
        assert c["steps"] == 7 * 3
        assert c["active_inputs"] == (src > 0).any(axis=0).sum()
        assert c["active_neurons"] == res.spikes[layer.name].any(axis=0).sum()
        skipped = skipped or updated.sum() < layer.n_out * 7 * 3
    assert skipped, "at density 0.4 some layer should skip neurons"
    assert res.counts.n_samples == 3
    by_mod = res.counts.by_modality()
    assert by_mod["vision"]["syn_ops"] == sum(res.counts.units[n].counts["syn_ops"] for n in ("vision.conv0", "vision.conv1",
                                                                                                "vision.dense", "warp.vision"))


@pytest.mark.parametrize("seed", range(40))
def test_event_driven_kernels_equal_the_reference_on_every_spike_and_counter(seed):
    """The kernels that skip untouched neurons (time stamps, catch-up leak, update lists) against the
    kernels that step every neuron: every output and every counter equal, membranes saturating or not."""
    rng = np.random.default_rng(1000 + seed)
    program = random_program(rng, big_theta=seed % 3 == 0, frontends=True)
    x = random_inputs(rng, program, program.T, 4, float(rng.choice([0.05, 0.2, 0.5])))
    ours, ref = Runner(program)(x), Runner(program, reference=True)(x)
    for name, value in ref.outputs().items():
        assert np.array_equal(ours.outputs()[name], value), name
    for name, unit in ref.counts.units.items():
        assert ours.counts.units[name].counts == unit.counts, name
    spiking = [ref.counts.units[layer.name].counts for layer in program.layers]
    assert sum(c["neuron_updates"] for c in spiking) <= sum(layer.n_out for layer in program.layers) * program.T * 4


def test_batch_equals_single_samples_and_runner_is_reusable():
    """A batch of 17 is split over threads (when numba has more than one), single samples are not."""
    rng = np.random.default_rng(5)
    program = random_program(rng, n_convs=2)
    x = random_inputs(rng, program, 9, 17, 0.5)
    assert batch_slices(17)[-1][1] == 17 and (len(batch_slices(17)) > 1) == (numba.get_num_threads() > 1)
    runner = Runner(program)
    batch = runner(x)
    assert_same(batch, reference_run(program, x))
    for b in range(17):
        one = simulate_sample(program, {k: v[:, b] for k, v in x.items()})
        for name, value in one.outputs().items():
            full = batch.outputs()[name]
            part = full[b:b + 1] if name == "logits" else full[:, b:b + 1]
            assert np.array_equal(value, part), name
    again = runner(x)
    assert np.array_equal(again.logits, batch.logits)


def test_firmware_sim_imports_neither_torch_nor_brevitas():
    code = ("import importlib, pkgutil, sys, firmware_sim\n"
            "for m in pkgutil.iter_modules(firmware_sim.__path__):\n"
            "    importlib.import_module('firmware_sim.' + m.name)\n"
            "bad = [m for m in ('torch', 'brevitas') if m in sys.modules]\n"
            "assert not bad, bad\n"
            "print(len(list(pkgutil.iter_modules(firmware_sim.__path__))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 8
