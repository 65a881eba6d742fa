"""Corrupted sensor streams at inference (docs/accelerator.md, "Inputs at run time"): each one either runs
with a defined result, the same in the simulator, torch integer mode and onnxruntime, or is refused by all
three with a ContractError naming the input and what was expected.

* one sensor all zeros (a dead sensor): runs; that sensor's layers stay silent; the three agree;
* saturated counts (every element at its max): runs; membranes may saturate, counted equally;
* a stream shorter (or longer) than the program's T: refused unless the caller passes
  allow_other_T=True, then run over exactly the steps given (never padded, never cut);
* a count out of range, a non-integer, T > max_T: refused.
The simulator's own argument checks (missing inputs, shapes, dtypes) are in test_errors.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from firmware_sim.loader import load_program
from firmware_sim.program import ContractError
from firmware_sim.run import simulate
from quant import export
from quant.ort_runner import OrtModel
from tests.support.quant_models import tiny_model

T, B = 8, 3
MAX = {"vision": 1, "audio": 8}


@pytest.fixture(scope="module")
def model_and_file(tmp_path_factory):
    model = tiny_model("taaf", 8, 3.0, seed=11, T=T)
    path = tmp_path_factory.mktemp("corrupted") / "m.onnx"
    export.export_onnx(model, path)
    return model, path


@pytest.fixture(scope="module")
def runners(model_and_file):
    """name -> run(vision (T, B, ...), audio (T, B, C), allow_other_T) -> outputs by ONNX name (int64 / uint8)."""
    model, path = model_and_file
    program, ort_model = load_program(path), OrtModel(path)

    def quant(v, a, allow_other_T=False):
        as_t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
        return model.integer_forward(as_t(v), as_t(a), allow_other_T=allow_other_T).as_numpy()
    return {"simulator": lambda v, a, allow_other_T=False: simulate(program, {"vision": v, "audio": a}, allow_other_T).outputs(),
            "onnxruntime": lambda v, a, allow_other_T=False: ort_model.run_time_major(v, a, allow_other_T),
            "quant": quant}


def streams(seed: int, steps: int = T):
    rng = np.random.default_rng(seed)
    vision = (rng.random((steps, B, 2, 34, 34)) < 0.15).astype(np.uint8)
    audio = (rng.integers(1, 9, (steps, B, 64)) * (rng.random((steps, B, 64)) < 0.4)).astype(np.uint8)
    return vision, audio


def three_agree(runners, v, a, allow_other_T=False) -> dict[str, np.ndarray]:
    out = {name: run(v, a, allow_other_T) for name, run in runners.items()}
    sim = out["simulator"]
    for name in ("onnxruntime", "quant"):
        assert set(out[name]) == set(sim), name
        for key, value in out[name].items():
            assert np.array_equal(np.asarray(value, np.int64), np.asarray(sim[key], np.int64)), f"simulator != {name} on {key}"
    return sim


def layers_of(outputs, modality):
    return {k: v for k, v in outputs.items() if k.startswith(f"spikes.{modality}.")}


@pytest.mark.parametrize("dead", ["audio", "vision"])
def test_one_sensor_all_zeros_runs_and_the_three_agree(runners, dead):
    v, a = streams(1)
    alive = three_agree(runners, v, a)
    inputs = {"vision": v, "audio": a}
    inputs[dead] = np.zeros_like(inputs[dead])
    out = three_agree(runners, inputs["vision"], inputs["audio"])
    other = "vision" if dead == "audio" else "audio"
    assert layers_of(out, dead) and not any(s.any() for s in layers_of(out, dead).values())   # the dead sensor: silent
    assert any(s.any() for s in layers_of(out, other).values())                            # the other: still heard
    for key, s in layers_of(out, other).items():                                           # and unchanged by it
        assert np.array_equal(s, alive[key]), key
    assert out["logits"].shape == (B, 10) and (out["attention"] >= 0).all()


def test_both_sensors_all_zeros_is_defined_too(runners):
    v, a = streams(2)
    out = three_agree(runners, np.zeros_like(v), np.zeros_like(a))
    assert not any(s.any() for k, s in out.items() if k.startswith("spikes."))
    assert (out["logits"] == out["logits"][0]).all()      # no evidence: every sample gets the same (bias-only) answer


def test_saturated_counts_run_and_the_three_agree_saturation_counted(runners, model_and_file):
    model, path = model_and_file
    v = np.full((T, B, 2, 34, 34), MAX["vision"], np.uint8)
    a = np.full((T, B, 64), MAX["audio"], np.uint8)
    out = three_agree(runners, v, a)
    assert out["logits"].shape == (B, 10)
    sim = simulate(load_program(path), {"vision": v, "audio": a})
    q = model.integer_forward(torch.as_tensor(v, dtype=torch.float32), torch.as_tensor(a, dtype=torch.float32))
    for name, n_sat in q.saturations.items():            # saturation is counted, not hidden, and counted alike
        assert sim.counts.units[name].counts["saturations"] == n_sat, name


@pytest.mark.parametrize("steps", [3, T + 2])
def test_a_stream_of_another_length_is_refused_unless_asked_then_runs_exactly_its_steps(runners, steps):
    v, a = streams(4, steps)
    for name, run in runners.items():
        with pytest.raises(ContractError) as err:
            run(v, a)
        assert f"T={steps} steps, expected the program's T={T}" in str(err.value) and "allow_other_T=True" in str(err.value), name
    out = three_agree(runners, v, a, allow_other_T=True)
    assert out["step_logits"].shape[0] == steps and out["attention"].shape[0] == steps     # not padded, not cut
    if steps < T:   # causal: the spikes of a short stream are the first steps of the spikes of a longer one
        full_v, full_a = streams(5)
        full_v[:steps], full_a[:steps] = v, a
        full = runners["simulator"](full_v, full_a)
        for key in (k for k in out if k.startswith("spikes.")):
            assert np.array_equal(out[key], full[key][:steps]), key
        padded_v, padded_a = np.zeros_like(full_v), np.zeros_like(full_a)       # and it is not zero padding:
        padded_v[:steps], padded_a[:steps] = v, a                                # the padded run has T steps
        assert runners["simulator"](padded_v, padded_a)["attention"].shape[0] == T


def refused(runners, v, a, *fragments, only=None, allow_other_T=False):
    for name, run in runners.items():
        if only and name not in only:
            continue
        with pytest.raises(ContractError) as err:
            run(v, a, allow_other_T)
        for fragment in fragments:
            assert fragment in str(err.value), (name, fragment, str(err.value))


def test_a_count_out_of_range_is_refused_by_all_three(runners):
    v, a = streams(6)
    loud = a.astype(np.int16)
    loud[2, 1, 5] = 9
    refused(runners, v, loud, "input 'audio'", "counts span 0..9, expected 0..8")
    negative = v.astype(np.int16)
    negative[0, 0, 1, 3, 3] = -1
    refused(runners, negative, a, "input 'vision'", "counts span -1..1, expected 0..1")
    double = v.copy()
    double[1, 2, 0, 10, 10] = 2
    refused(runners, double, a, "input 'vision'", "expected 0..1")


def test_a_non_integer_is_refused_by_all_three(runners):
    v, a = streams(7)
    half = a.astype(np.float32)
    half[3, 0, 7] = 0.5
    # the simulator takes integer dtypes only; onnxruntime and integer mode (float graphs) take whole floats
    refused(runners, v, half, "input 'audio'", "dtype float32, expected integer spike counts", only=["simulator"])
    refused(runners, v, half, "input 'audio'", "value 0.5 is not a whole number", "expected integer spike counts 0..8",
            only=["onnxruntime", "quant"])
    nan = v.astype(np.float32)
    nan[0, 0, 0, 0, 0] = np.nan
    refused(runners, nan, a, "input 'vision'", "is not a whole number", only=["onnxruntime", "quant"])
    out = {n: r(v.astype(np.float32), a.astype(np.float32)) for n, r in runners.items() if n != "simulator"}
    assert np.array_equal(out["onnxruntime"]["logits"], out["quant"]["logits"])   # whole floats run


def test_beyond_max_T_is_refused_by_all_three_even_when_other_lengths_are_allowed(runners):
    v, a = streams(8, 33)
    refused(runners, v, a, "T=33 steps, expected 1..max_T=32", allow_other_T=True)
    refused(runners, v, a, "T=33 steps", allow_other_T=False)
