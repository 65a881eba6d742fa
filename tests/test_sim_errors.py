"""Bad input gets a clear ContractError naming what is wrong: files, metadata, graphs, arrays."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from firmware_sim import spec
from firmware_sim.loader import load_program
from firmware_sim.program import ContractError
from firmware_sim.run import simulate, simulate_sample
from tests.test_sim_support import build_onnx, random_inputs, random_program


@pytest.fixture(scope="module")
def program():
    return random_program(np.random.default_rng(7), fusion="taaf")


@pytest.fixture(scope="module")
def model(program):
    return build_onnx(program)


def save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, path)
    return path


def edit_program(model, fn):
    """A copy of model whose program JSON went through fn(dict)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for p in m.metadata_props:
        if p.key == spec.METADATA_PROGRAM_KEY:
            meta = json.loads(p.value)
            fn(meta)
            p.value = json.dumps(meta)
    return m


def replace_init(model, name, array):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for i, init in enumerate(m.graph.initializer):
        if init.name == name:
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, name))
    return m


def expect(tmp_path, model, *fragments):
    with pytest.raises(ContractError) as err:
        load_program(save(tmp_path, model))
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


# ---------------------------------------------------------------- files

def test_missing_file(tmp_path):
    with pytest.raises(ContractError, match="no such ONNX file"):
        load_program(tmp_path / "nope.onnx")


def test_garbage_and_truncated_files(tmp_path, model):
    (tmp_path / "junk.onnx").write_bytes(b"this is not protobuf \x00\xff" * 10)
    raw = model.SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(raw[: len(raw) // 2])
    for name in ("junk.onnx", "cut.onnx"):
        with pytest.raises(ContractError) as err:
            load_program(tmp_path / name)
        assert name in str(err.value)


def test_foreign_model_with_unsupported_ops(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["h"]), helper.make_node("Sigmoid", ["h"], ["y"])], "g", [x], [y])
    foreign = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    expect(tmp_path, foreign, "unsupported op(s)", "Softmax", "Sigmoid")


def test_foreign_model_without_metadata(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    foreign = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 17)])
    expect(tmp_path, foreign, spec.METADATA_VERSION_KEY, "not an edge-taaf export")


def test_custom_domain_op_is_refused(tmp_path, model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    node = m.graph.node[-1]
    m.graph.node.append(helper.make_node("FancyLIF", [node.output[0]], ["extra"], domain="com.vendor"))
    m.opset_import.append(helper.make_opsetid("com.vendor", 1))
    expect(tmp_path, m, "com.vendor::FancyLIF")


# ---------------------------------------------------------------- metadata

def test_wrong_contract_version(tmp_path, model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for p in m.metadata_props:
        if p.key == spec.METADATA_VERSION_KEY:
            p.value = "edge-taaf-int/0"
    expect(tmp_path, m, "edge-taaf-int/0", spec.CONTRACT_VERSION)


def test_missing_program_json_and_broken_json(tmp_path, model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    kept = [p for p in m.metadata_props if p.key != spec.METADATA_PROGRAM_KEY]
    del m.metadata_props[:]
    m.metadata_props.extend(kept)
    expect(tmp_path, m, spec.METADATA_PROGRAM_KEY)
    m.metadata_props.add(key=spec.METADATA_PROGRAM_KEY, value="{not json")
    expect(tmp_path, m, "not valid JSON")


@pytest.mark.parametrize("edit, fragments", [
    (lambda d: d.pop("leak_shift"), ("leak_shift",)),
    (lambda d: d["layers"][0].pop("theta"), ("layers[0]", "theta")),
    (lambda d: d.update(weight_bits=9), ("weight_bits=9",)),
    (lambda d: d.update(state_bits=24), ("state_bits",)),
    (lambda d: d.update(reset="zero"), ("reset",)),
    (lambda d: d.update(T=40), ("T=40",)),
    (lambda d: d["layers"][0].update(out_shape=[3, 3, 3]), ("out_shape",)),
    (lambda d: d["layers"][0].update(weight="nowhere"), ("'nowhere'", "missing")),
    (lambda d: d["layers"][0].update(weight_log2=-3), ("scale", "2^-3")),
    (lambda d: d["layers"][0].update(theta=0), ("theta=0",)),
    (lambda d: d["readout"].pop("score_log2"), ("score_log2",)),
    (lambda d: d["readout"].update(logit_shift=0), ("logit_shift=0",)),
    (lambda d: d["readout"].update(audio_input="audio"), ("audio_input",)),
    (lambda d: d["layers"][1].update(input="later"), ("'later'",)),
    (lambda d: d["inputs"]["audio"].update(shape=[99]), ("[99]", "'audio'")),
])
def test_bad_program_fields(tmp_path, model, edit, fragments):
    expect(tmp_path, edit_program(model, edit), *fragments)


# ---------------------------------------------------------------- graph and initializers

def test_weight_bits_must_match_the_clip(tmp_path, program, model):
    bits = program.weight_bits
    other = 4 if bits != 4 else 5
    expect(tmp_path, edit_program(model, lambda d: d.update(weight_bits=other)), "Clip range", f"{other}-bit")


def test_bias_and_weight_dtypes(tmp_path, program, model):
    expect(tmp_path, replace_init(model, "readout.bias", program.readout.bias.astype(np.float32)), "readout.bias", "int32")
    w = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "vision.dense.weight"))
    expect(tmp_path, replace_init(model, "vision.dense.weight", w.astype(np.float64)), "float32")


def test_graph_io_must_match_the_program(tmp_path, model):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    out = [o for o in m.graph.output if o.name != "logits"]
    del m.graph.output[:]
    m.graph.output.extend(out)
    with pytest.raises(ContractError):     # onnx.checker or our output check: either names the problem
        load_program(save(tmp_path, m))
    m = onnx.ModelProto()
    m.CopyFrom(model)
    dims = m.graph.input[1].type.tensor_type.shape.dim
    dims[2].dim_value = dims[2].dim_value + 1
    expect(tmp_path, m, "graph input", "audio")


# ---------------------------------------------------------------- arrays handed to the simulator

def test_bad_inputs(program):
    x = random_inputs(np.random.default_rng(0), program, 5, 2)
    cases = [
        ({"vision": x["vision"]}, "missing ['audio']"),
        ({**x, "extra": x["audio"]}, "unexpected ['extra']"),
        ({**x, "audio": x["audio"].astype(np.float32)}, "dtype float32"),
        ({**x, "audio": x["audio"][:, :, :-1]}, "shape"),
        ({**x, "audio": x["audio"][:4]}, "(T, B)"),
        ({**x, "audio": x["audio"].astype(np.int16) * 0 + 9}, "0..8"),
        ({**x, "vision": x["vision"].astype(np.int16) - 1}, "-1"),
        ({k: np.concatenate([v] * 7) for k, v in x.items()}, "max_T=32"),
    ]
    for inputs, fragment in cases:
        with pytest.raises(ContractError) as err:
            simulate(program, inputs)
        assert fragment in str(err.value), (fragment, str(err.value))
    with pytest.raises(ContractError, match="mapping"):
        simulate_sample(program, [x["vision"][:, 0], x["audio"][:, 0]])
