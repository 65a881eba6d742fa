"""Streams in chunks in torch integer mode (quant.int_stream.integer_stream) against the simulator's
(Runner.stream): whatever the cut, the same per-step outputs as one run, and the same in both runners."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from firmware_sim import spec
from firmware_sim.loader import load_program
from firmware_sim.program import ContractError
from firmware_sim.run import Runner
from quant import export
from quant.int_stream import integer_stream
from quant.ort_runner import OrtModel
from tests.quant.test_three_way import SPARSE_FRONTEND, spikes_in
from tests.support.quant_models import tiny_model

PER_STEP = ("step_logits", "scores")


def _chunks(x_v, x_a, cuts):
    t = 0
    for n in cuts:
        yield (None if x_v is None else x_v[t:t + n]), (None if x_a is None else x_a[t:t + n])
        t += n


@pytest.mark.parametrize("fusion, frontend, leak, cuts", [
    ("taaf", None, None, [3, 1, 4]),
    ("concat", SPARSE_FRONTEND, None, [1, 1, 5, 1]),
    ("taaf_modal", SPARSE_FRONTEND, spec.LEAK_OFF, [2, 6]),
    ("taaf_modal", None, None, [8]),
])
def test_torch_and_simulator_streams_agree_and_equal_one_run(tmp_path, fusion, frontend, leak, cuts):
    model = tiny_model(fusion, 8, 3.0, 1, 8, frontend=frontend, leak_shift=leak)
    export.export_onnx(model, tmp_path / "m.onnx")
    runner, ort_model = Runner(load_program(tmp_path / "m.onnx")), OrtModel(tmp_path / "m.onnx")
    vision, audio = spikes_in(3)
    whole, _ = integer_stream(model, torch.as_tensor(vision, dtype=torch.float32), torch.as_tensor(audio, dtype=torch.float32))
    t_state, s_state, o_state, torch_parts, sim_parts, ort_parts = None, None, None, [], [], []
    for v, a in _chunks(vision, audio, cuts):
        out, o_state = ort_model.stream(v, a, o_state)
        ort_parts.append(out)
        out, t_state = integer_stream(model, torch.as_tensor(v, dtype=torch.float32), torch.as_tensor(a, dtype=torch.float32),
                                            t_state)
        torch_parts.append(out.as_numpy())
        res, s_state = runner.stream({"vision": v, "audio": a}, s_state)
        sim_parts.append(res.outputs())
    assert t_state["steps"] == s_state.steps == o_state["steps"] == sum(cuts)
    one = whole.as_numpy()
    per_step = [k for k in one if k in PER_STEP or k.startswith(("spikes.", "frontend."))]
    assert len(per_step) > 4 and all(one[k].any() for k in one if k.startswith("spikes."))
    for k in per_step:
        chunked_torch = np.concatenate([p[k] for p in torch_parts])
        chunked_sim = np.concatenate([p[k] for p in sim_parts])
        np.testing.assert_array_equal(chunked_torch, one[k], err_msg=f"torch chunks != torch whole on {k}")
        np.testing.assert_array_equal(chunked_sim, one[k], err_msg=f"simulator chunks != torch whole on {k}")
        chunked_ort = np.concatenate([p[k] for p in ort_parts])
        np.testing.assert_array_equal(chunked_ort, one[k], err_msg=f"onnxruntime chunks != torch whole on {k}")
    for torch_part, sim_part, ort_part in zip(torch_parts, sim_parts, ort_parts):   # the chunk's own window readout
        for k in ("logits", "attention"):
            np.testing.assert_array_equal(torch_part[k], sim_part[k], err_msg=k)
            np.testing.assert_array_equal(ort_part[k], sim_part[k], err_msg=k)


def test_an_onnx_stream_state_of_another_file_or_batch_is_refused(tmp_path):
    for seed in (1, 2):
        export.export_onnx(tiny_model("concat", 8, 3.0, seed, 8), tmp_path / f"m{seed}.onnx")
    one, two = OrtModel(tmp_path / "m1.onnx"), OrtModel(tmp_path / "m2.onnx")
    vision, audio = spikes_in(1)
    _, state = one.stream(vision[:4], audio[:4])
    with pytest.raises(ContractError, match="stream state: it belongs to another program"):
        two.stream(vision[4:], audio[4:], state)
    with pytest.raises(ContractError, match=r"stream state: it holds 6 streams, but the chunk has B=2"):
        one.stream(vision[4:, :2], audio[4:, :2], state)
    with pytest.raises(ContractError, match=r"input 'audio': counts span"):
        one.stream(vision[4:], audio[4:] + 100, state)


def test_a_torch_stream_state_of_another_model_or_batch_is_refused():
    model, other = tiny_model("concat", 8, 3.0, 1, 8), tiny_model("concat", 8, 3.0, 2, 8)
    vision, audio = (torch.as_tensor(x, dtype=torch.float32) for x in spikes_in(1))
    _, state = integer_stream(model, vision[:4], audio[:4])
    with pytest.raises(ContractError, match="stream state: it belongs to another program"):
        integer_stream(other, vision[4:], audio[4:], state)
    with pytest.raises(ContractError, match=r"stream state: it holds 6 streams, but the chunk has B=2"):
        integer_stream(model, vision[4:, :2], audio[4:, :2], state)


def test_the_streaming_file_runs_chunks_with_explicit_state(tmp_path):
    """quant.ort_runner.streaming_model (edge-taaf-export stream=...): a standard ONNX file whose states are graph inputs and outputs; feeding each
    chunk the last chunk's finals gives the one-call run's step logits."""
    import onnx
    import onnxruntime as ort
    from quant.ort_runner import state_zeros, streaming_model
    model = tiny_model("taaf_modal", 8, 3.0, 1, 8, frontend=SPARSE_FRONTEND)
    export.export_onnx(model, tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    streaming, names = streaming_model(proto, load_program(tmp_path / "m.onnx"))
    onnx.checker.check_model(streaming)
    assert {f"{n}.init" for n in names} <= {i.name for i in streaming.graph.input}
    assert {f"{n}.final" for n in names} <= {o.name for o in streaming.graph.output}
    assert any(n.startswith("v.") for n in names) and any(n.startswith("fe.") for n in names)
    session = ort.InferenceSession(streaming.SerializeToString(), providers=["CPUExecutionProvider"])
    vision, audio = spikes_in(2)
    state = state_zeros(load_program(tmp_path / "m.onnx"), names, vision.shape[1])
    outs = [o.name for o in session.get_outputs()]
    parts = []
    for v, a in _chunks(vision, audio, [5, 3]):
        values = dict(zip(outs, session.run(None, {"vision": v.astype(np.float32), "audio": a.astype(np.float32),
                                                   **{f"{n}.init": state[n] for n in names}})))
        state = {n: values[f"{n}.final"] for n in names}
        parts.append(values["step_logits"])
    whole = OrtModel(tmp_path / "m.onnx").run_time_major(vision, audio)["step_logits"]
    np.testing.assert_array_equal(np.concatenate(parts).astype(np.int64), whole)
