"""Streams in chunks (firmware_sim.stream, Runner.stream): whatever the cut, the same outputs and counters as one run."""
from __future__ import annotations

import numpy as np
import pytest

from firmware_sim import spec
from firmware_sim.program import ContractError
from firmware_sim.run import Runner
from firmware_sim.stream import StreamState
from tests.support.sim_programs import random_inputs, random_program

PER_STEP = ("step_logits", "scores")


def _cuts(rng, n_t):
    """Random chunk lengths adding up to n_t (1-step chunks included)."""
    cuts, left = [], n_t
    while left:
        cuts.append(int(rng.integers(1, left + 1)))
        left -= cuts[-1]
    return cuts


def _in_chunks(runner, x, cuts):
    state, results, t = None, [], 0
    for n in cuts:
        res, state = runner.stream({k: v[t:t + n] for k, v in x.items()}, state)
        results.append(res)
        t += n
    return results, state


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("reference", [False, True])
def test_a_stream_in_chunks_equals_one_run(seed, reference):
    """Spikes, front-end output, step logits and scores per step, and every per-step counter summed over the
    chunks, equal one run of the whole stream; for every fusion, front-ends with state, warps with history,
    leaky and IF neurons, both kernels."""
    rng = np.random.default_rng(seed)
    fusion = ("taaf", "concat", "taaf_modal")[seed % 3]
    program = random_program(rng, fusion=fusion, frontends=True, leak_shift=spec.LEAK_OFF if seed % 4 == 3 else None)
    n_t = int(rng.integers(2, min(program.max_T, 24) + 1))
    x = random_inputs(rng, program, n_t, 3, float(rng.uniform(0.1, 0.6)))
    runner = Runner(program, reference=reference)
    whole, whole_state = runner.stream(x)
    assert whole_state.steps == n_t
    results, state = _in_chunks(runner, x, _cuts(rng, n_t))
    for name in PER_STEP:
        np.testing.assert_array_equal(np.concatenate([getattr(r, name) for r in results]), getattr(whole, name), name)
    for layer in program.layers:
        np.testing.assert_array_equal(np.concatenate([r.spikes[layer.name] for r in results]), whole.spikes[layer.name])
    for name in program.inputs:
        np.testing.assert_array_equal(np.concatenate([r.frontend[name] for r in results]), whole.frontend[name])
    chunk_only = {"active_inputs", "active_neurons", "active_synapses"}   # "any step of the window": per chunk
    for unit, counted in whole.counts.units.items():
        for key, value in counted.counts.items():
            if key not in chunk_only and key not in ("lut_reads", "adds", "exact_limit") and unit != "attention":
                assert sum(r.counts.units[unit].counts[key] for r in results) == value, (unit, key)
    for name, layer in state.layers.items():
        np.testing.assert_array_equal(layer.v, whole_state.layers[name].v)
        np.testing.assert_array_equal(layer.carry, whole_state.layers[name].carry)
    assert sum(s.sum() for s in whole.spikes.values()) > 0


def test_a_fresh_stream_is_a_window():
    """The first chunk of a stream is exactly the window run: every output and counter."""
    rng = np.random.default_rng(5)
    program = random_program(rng, fusion="taaf", frontends=True)
    x = random_inputs(rng, program, program.T, 2)
    runner = Runner(program)
    window, (chunk, _) = runner(x), runner.stream(x)
    for name, value in window.outputs().items():
        np.testing.assert_array_equal(chunk.outputs()[name], value, name)
    assert window.counts.as_dict() == chunk.counts.as_dict()


def test_the_state_is_carried_not_reset():
    """A neuron left above theta fires on the next chunk's first step with no input at all."""
    rng = np.random.default_rng(2)
    program = random_program(rng, fusion="concat", leak_shift=spec.LEAK_OFF)
    x = random_inputs(rng, program, 6, 2, 0.5)
    runner = Runner(program)
    _, state = runner.stream(x)
    quiet = {k: np.zeros((1, *v.shape[1:]), np.uint8) for k, v in x.items()}
    after, _ = runner.stream(quiet, state)
    fresh, _ = runner.stream(quiet)
    assert sum(s.sum() for s in fresh.spikes.values()) == 0
    armed = sum(int((layer.v >= program.layer(name).theta).sum()) for name, layer in state.layers.items())
    assert armed > 0 and sum(s.sum() for s in after.spikes.values()) > 0


def test_a_state_saved_and_loaded_continues_the_stream(tmp_path):
    rng = np.random.default_rng(7)
    program = random_program(rng, fusion="taaf_modal", frontends=True)
    x = random_inputs(rng, program, 10, 2)
    runner = Runner(program)
    whole, _ = runner.stream(x)
    first, state = runner.stream({k: v[:4] for k, v in x.items()})
    state.save(tmp_path / "s.npz")
    second, _ = runner.stream({k: v[4:] for k, v in x.items()}, StreamState.load(tmp_path / "s.npz", program))
    np.testing.assert_array_equal(np.concatenate([first.step_logits, second.step_logits]), whole.step_logits)


def test_a_state_of_another_program_or_batch_is_refused(tmp_path):
    rng = np.random.default_rng(3)
    program, other = random_program(rng, fusion="concat"), random_program(rng, fusion="concat")
    x = random_inputs(rng, program, 4, 2)
    runner = Runner(program)
    _, state = runner.stream(x)
    with pytest.raises(ContractError, match=r"stream state: it belongs to another program"):
        Runner(other).stream(random_inputs(rng, other, 4, 2), state)
    with pytest.raises(ContractError, match=r"stream state: it holds 2 streams, but the chunk has B=3"):
        runner.stream(random_inputs(rng, program, 4, 3), state)
    state.save(tmp_path / "s.npz")
    with pytest.raises(ContractError, match=r"s\.npz: the state belongs to another program"):
        StreamState.load(tmp_path / "s.npz", other)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ContractError, match=r"bad\.npz: not a stream state file"):
        StreamState.load(tmp_path / "bad.npz", program)


@pytest.mark.parametrize("bad, message", [
    (lambda x: {k: v[:, :1] for k, v in x.items()} | {"audio": x["audio"][:, :2]}, r"\(T, B\) = .* but another input"),
    (lambda x: x | {"audio": x["audio"].astype(np.float32) * np.nan}, r"input 'audio': dtype float32"),
    (lambda x: x | {"audio": x["audio"].astype(np.int64) + 300}, r"input 'audio': counts span 300\.\.308, expected 0\.\.8"),
    (lambda x: {"audio": x["audio"]}, r"missing \['vision'\]"),
])
def test_a_bad_chunk_is_a_contract_error_naming_the_input(bad, message):
    rng = np.random.default_rng(4)
    program = random_program(rng, fusion="concat")
    x = random_inputs(rng, program, 4, 2)
    with pytest.raises(ContractError, match=message):
        Runner(program).stream(bad(x))
