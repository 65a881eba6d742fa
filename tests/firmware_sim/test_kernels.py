"""firmware_sim kernels against the pure-numpy reference of docs/accelerator.md (spec.lif_step,
spec.exp2_weights): every layer's spikes, the readout, saturation, counters, batch vs single."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim import spec
from firmware_sim.energy import READOUT_MAC_BITS, energy_report, load_hardware
from firmware_sim.program import ContractError, Layer, Program, Readout
from firmware_sim.run import Runner, batch_slices, get_threads, set_threads, simulate, simulate_sample
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
    @given(seed=st.integers(0, 2 ** 31), fusion=st.sampled_from(["taaf", "concat", "taaf_modal"]),
           big_theta=st.sampled_from([False] * 3 + [True]))
    def check(seed, fusion, big_theta):
        # T, B and density from the seed, uniformly: hypothesis' own integers favour the smallest values
        # (T = 1 in about 40 % of examples), where few layers get to spike
        rng = np.random.default_rng(seed)
        T, B, density = int(rng.integers(1, 13)), int(rng.integers(1, 5)), float(rng.uniform(0.05, 0.9))
        program = random_program(rng, fusion=fusion, big_theta=big_theta, frontends=True)
        x = random_inputs(rng, program, T, B, density)
        result, ref = simulate(program, x, allow_other_T=True), reference_run(program, x)   # any T 1..12
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
    res = simulate(program, {"audio": audio, "vision": np.zeros((4, 1, 1), np.uint8)}, allow_other_T=True)
    assert res.spikes["audio.fc0"][:, 0, 0].tolist() == [0, 1, 0, 0]
    assert res.counts.units["audio.fc0"].counts["saturations"] == 1
    v, trace = np.zeros(1, np.int64), []
    for cur in (200, 200, 0, -40000):
        v, s, hit = spec.lif_step(v, np.array([cur]), 256, 2)
        trace.append(int(v[0]))
    assert trace == [200, 94, 71, -32768]


def test_an_integrate_and_fire_neuron_keeps_its_membrane():
    """leak_shift = LEAK_OFF: I = 200, 0, 0, 100 with theta 256 -> v = 200, 200, 200, 44 after a spike at t = 3; a
    negative membrane keeps its value too (a shift by 16 would have moved -5 to -4); no catch-up leak is counted."""
    w = np.r_[100, -5]
    audio = np.zeros((5, 1, 2), np.uint8)
    audio[0, 0, 0], audio[3, 0, 0], audio[4, 0, 1] = 2, 1, 1
    program = _one_neuron_program(w, 256, spec.LEAK_OFF)
    res = simulate(program, {"audio": audio, "vision": np.zeros((5, 1, 1), np.uint8)}, allow_other_T=True)
    assert res.spikes["audio.fc0"][:, 0, 0].tolist() == [0, 0, 0, 1, 0]
    assert res.counts.units["audio.fc0"].counts["leak_ops"] == 0
    v, trace = np.zeros(1, np.int64), []
    for cur in (200, 0, 0, 100, -5, 0):
        v, _, _ = spec.lif_step(v, np.array([cur]), 256, spec.LEAK_OFF)
        trace.append(int(v[0]))
    assert trace == [200, 200, 200, 44, 39, 39]
    assert spec.lif_step(np.array([-5]), np.array([0]), 256, spec.LEAK_OFF)[0].tolist() == [-5]


@pytest.mark.parametrize("k", [-1, 17])
def test_a_leak_shift_outside_the_contract_is_refused(k):
    with pytest.raises(ContractError, match=rf"leak_shift.*{k}.*0\.\.16 \(16: no leak, integrate-and-fire\)"):
        _one_neuron_program(np.ones(2), 4, k)


def test_saturation_at_both_limits_is_counted():
    """All-max weights with theta at the top of the range saturate high; all-min weights saturate low."""
    lo, hi = spec.state_range()
    audio = np.full((6, 2, 12), 8, np.uint8)
    for sign, limit in ((1, hi), (-1, lo)):
        program = _one_neuron_program(np.full(12, sign * 127), hi, 6)
        x = {"audio": audio, "vision": np.ones((6, 2, 1), np.uint8)}
        ref = reference_run(program, x)
        res = simulate(program, x, allow_other_T=True)
        assert_same(res, ref)
        assert ref["saturations"]["audio.fc0"] > 0
    # the positive one spikes at the limit itself: u = 32767 >= theta = 32767
    assert simulate(_one_neuron_program(np.full(12, 127), hi, 6), x, allow_other_T=True).spikes["audio.fc0"].sum() > 0


@pytest.mark.parametrize("score_log2", [-1, -3, -4, -9, -40])
def test_attention_lookup_edges(score_log2):
    """Left-shift (score_log2 > -4), zero shift, right shift and far-away scores (u = 0) all equal spec.exp2_weights."""
    rng = np.random.default_rng(abs(score_log2))
    program = random_program(rng, fusion="taaf")
    program.readout.score_log2 = score_log2
    x = random_inputs(rng, program, 10, 3, 0.5)
    res = simulate(program, x, allow_other_T=True)
    assert_same(res, reference_run(program, x))
    assert np.array_equal(res.attention, spec.exp2_weights(res.scores, score_log2))
    assert (res.attention.max(0) == 2 ** spec.EXP2_ONE_BITS).all()


def _modal_program(seed: int, score_log2: int | None = None) -> Program:
    """A random taaf_modal program with the per-modality predictions on (and score_log2, when given)."""
    program = random_program(np.random.default_rng(seed), fusion="taaf_modal")
    program.readout.modality_logits = True
    if score_log2 is not None:
        program.readout.score_log2 = score_log2
    return program.check()


@pytest.mark.parametrize("score_log2", [-1, -4, -9, -40])
def test_modal_attention_is_one_lookup_over_time_and_modality(score_log2):
    """taaf_modal: u^m_t is spec.exp2_weights over all T x M scores at once (the best (t, m) of each sample gets
    256), y = sum_{t,m} u^m_t l^m_t, and y_m uses the lookup over m's own T scores."""
    program = _modal_program(30 + abs(score_log2), score_log2)
    x = random_inputs(np.random.default_rng(abs(score_log2)), program, 10, 3, 0.5)
    res = simulate(program, x, allow_other_T=True)
    assert_same(res, reference_run(program, x))
    n_t, n_b, n_m = res.scores.shape
    assert (n_m, res.step_logits.shape) == (2, (n_t, n_b, 2, program.n_classes))
    stacked = res.scores.transpose(0, 2, 1).reshape(n_t * n_m, n_b)         # (t, m) pairs as one sequence
    joint = spec.exp2_weights(stacked, score_log2).reshape(n_t, n_m, n_b).transpose(0, 2, 1)
    assert np.array_equal(res.attention, joint)
    assert (res.attention.max(axis=(0, 2)) == 2 ** spec.EXP2_ONE_BITS).all()
    assert np.array_equal(res.logits, (res.attention[..., None] * res.step_logits).sum((0, 2)))
    for i, m in enumerate(("audio", "vision")):
        own = spec.exp2_weights(res.scores[:, :, i], score_log2)
        assert np.array_equal(res.modal_logits[m], (own[..., None] * res.step_logits[:, :, i]).sum(0))
        assert np.array_equal(res.outputs()[f"logits_{m}"], res.modal_logits[m])


def test_silent_audio_gets_the_attention_its_own_numbers_give():
    """No audio input: the audio features are 0 at every step, so its branch gives one logit vector
    l^a = b_a >> logit_shift and one score e^a = s_a . (max(c_a, 0) >> hidden_shift) + d_a, the program's numbers
    alone. y is then exactly the vision part plus T u^a l^a, u^a the lookup of (joint max - e^a); with d_a low
    enough that u^a = 0, y is exactly the vision's own prediction y_vision."""
    program = _modal_program(21)
    r, n_t, n_b = program.readout, 8, 4
    x = random_inputs(np.random.default_rng(1), program, n_t, n_b, 0.5)
    x["audio"][:] = 0
    br = r.branches["audio"]
    l_a = br.bias.astype(np.int64) >> r.logit_shift
    e_a = int(br.out_weight[0].astype(np.int64) @ (np.maximum(br.hidden_bias, 0) >> r.hidden_shift) + br.out_bias[0])
    res = simulate(program, x, allow_other_T=True)
    assert res.spikes["vision.dense"].any() and not res.spikes["audio.fc1"].any()
    assert (res.scores[:, :, 0] == e_a).all() and (res.step_logits[:, :, 0] == l_a).all()
    top = np.maximum(res.scores[:, :, 1].max(0), e_a)                                 # (B,) the joint max
    u_a = spec.exp2_weights(np.stack([top, np.full_like(top, e_a)]), r.score_log2)[1]  # (B,)
    assert (res.attention[:, :, 0] == u_a).all() and u_a.any()
    vision_part = (res.attention[:, :, 1, None] * res.step_logits[:, :, 1]).sum(0)
    assert np.array_equal(res.logits - vision_part, n_t * u_a[:, None] * l_a[None, :])
    # move the silent branch's score 9 log2 units below the lowest vision score: u^a = 0, y = y_vision
    gap = int(np.ceil(9 * 2.0 ** -r.score_log2))
    br.out_bias = br.out_bias - (e_a - int(res.scores[:, :, 1].min()) + gap)
    res = simulate(program.check(), x, allow_other_T=True)
    assert not res.attention[:, :, 0].any()
    assert np.array_equal(res.logits, res.modal_logits["vision"])
    assert not np.array_equal(res.logits, vision_part)      # the first run's y did carry audio's constant part


def test_modal_readout_counters():
    """taaf_modal counts: a K-row of W and an H-row of U per nonzero fused feature (of its branch), each branch's
    H output weights per step; the joint lookup over n = T x M scores (n lookups, n x K MACs, n - 1 compares and
    n subtractions) and, with modality_logits, each modality's own lookup (T lookups, T x K MACs, 2T - 1 adds)."""
    program = _modal_program(4)
    r, n_t, n_b, n_m = program.readout, 7, 3, 2
    x = random_inputs(np.random.default_rng(4), program, n_t, n_b, 0.4)
    res = simulate(program, x, allow_other_T=True)

    def warped(spikes, w):
        s = spikes.reshape(n_t, n_b, -1).astype(np.int64)
        return sum(np.pad(s, ((d, 0), (0, 0), (0, 0)))[:n_t] * int(w[d]) for d in range(w.size))
    rows = sum(np.count_nonzero(warped(res.spikes[getattr(r, f"{m}_input")], getattr(r, f"warp_{m}"))) for m in r.modalities)
    k, h, n = r.n_classes, r.n_hidden, n_t * n_m
    units = res.counts.units
    assert rows > 0 and (units["readout"].counts["macs"], units["readout"].counts["weight_rows"]) == (rows * k, rows)
    assert units["score"].counts["macs"] == rows * h + n_t * n_b * n_m * h
    assert units["score"].counts["weight_rows"] == rows + n_t * n_b * n_m
    assert units["score"].n_weights == sum(b.hidden_weight.size + b.out_weight.size for b in r.branches.values())
    both = units["attention"].counts
    assert (both["lut_reads"], both["macs"]) == (2 * n * n_b, 2 * n * k * n_b)
    assert both["adds"] == (2 * n - 1) * n_b + n_m * (2 * n_t - 1) * n_b
    r.modality_logits = False
    joint = simulate(program, x, allow_other_T=True)
    assert "logits_audio" not in joint.outputs() and np.array_equal(joint.logits, res.logits)
    c = joint.counts.units["attention"].counts
    assert (c["lut_reads"], c["macs"], c["adds"]) == (n * n_b, n * k * n_b, (2 * n - 1) * n_b)
    # priced as every readout unit (firmware_sim.energy.price_fusion): the per-modality outputs cost their MACs,
    # lookups (add8) and adds, per inference
    hw = load_hardware(ROOT / "configs" / "hardware" / "horowitz45nm.yaml")
    on, off = (energy_report(program, run.counts, hw, n_t)["by_unit"]["attention"]["pj_by_operation"] for run in (res, joint))
    assert on["MAC"] - off["MAC"] == pytest.approx(n * k * (hw.mult(READOUT_MAC_BITS) + hw.add(spec.ACC_BITS)), rel=1e-12)
    assert on["other compute"] - off["other compute"] == pytest.approx(
        n_m * (2 * n_t - 1) * hw.add(spec.ACC_BITS) + n * hw.energy_pj["add8"], rel=1e-12)


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
    res = simulate(program, x, allow_other_T=True)
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
    assert batch_slices(17)[-1][1] == 17 and (len(batch_slices(17)) > 1) == (get_threads() > 1)
    runner = Runner(program)
    batch = runner(x, allow_other_T=True)
    assert_same(batch, reference_run(program, x))
    for b in range(17):
        one = simulate_sample(program, {k: v[:, b] for k, v in x.items()}, allow_other_T=True)
        for name, value in one.outputs().items():
            full = batch.outputs()[name]
            part = full[b:b + 1] if name == "logits" else full[:, b:b + 1]
            assert np.array_equal(value, part), name
    again = runner(x, allow_other_T=True)
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


def test_the_simulator_leaves_the_processs_openmp_threads_alone():
    """Simulating a batch must not launch Numba's OpenMP pool, which would reset the process's OpenMP thread
    count (and torch's) to every core: a LOSO study trained its second fold several times slower after it."""
    import subprocess
    import sys

    code = ("import torch; torch.set_num_threads(1); import numpy as np; "
            "from tests.firmware_sim.test_kernels import random_program, random_inputs; from firmware_sim.run import Runner; "
            "rng = np.random.default_rng(5); p = random_program(rng, n_convs=2); Runner(p)(random_inputs(rng, p, 9, 17, 0.5), "
            "allow_other_T=True); import numba.np.ufunc.parallel as par; print(torch.get_num_threads(), par._is_initialized)")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True,
                         cwd=root).stdout.split()
    assert out == ["1", "False"], out


def test_set_threads_splits_batches_over_that_many_threads():
    old = set_threads(1)
    try:
        assert batch_slices(64) == [(0, 64)]
        set_threads(2)
        assert batch_slices(64) == [(0, 32), (32, 64)]
        with pytest.raises(ValueError, match="set_threads: n=0"):
            set_threads(0)
    finally:
        set_threads(old)
