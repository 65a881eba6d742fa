"""Bad input gets a clear ContractError naming what is wrong: files, metadata, graphs, arrays."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from firmware_sim import spec
from firmware_sim.graph_checks import _Graph
from firmware_sim.loader import load_program
from firmware_sim.program import ContractError
from firmware_sim.run import simulate, simulate_sample
from tests.support.sim_programs import build_onnx, edit_program, random_inputs, random_program


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
    assert program.T == 6
    x = random_inputs(np.random.default_rng(0), program, program.T, 2)
    short = {k: v[:4] for k, v in x.items()}
    cases = [
        ({"vision": x["vision"]}, "missing ['audio']"),
        ({**x, "extra": x["audio"]}, "unexpected ['extra']"),
        ({**x, "audio": x["audio"].astype(np.float32)}, "input 'audio': dtype float32, expected integer spike counts"),
        ({**x, "audio": x["audio"][:, :, :-1]}, "shape"),
        ({**x, "audio": x["audio"][:4]}, "(T, B)"),
        ({**x, "audio": x["audio"].astype(np.int16) * 0 + 9}, "input 'audio': counts span 9..9, expected 0..8"),
        ({**x, "vision": x["vision"].astype(np.int16) - 1}, "input 'vision': counts span -1..0, expected 0..1"),
        ({k: np.concatenate([v] * 7) for k, v in x.items()}, "T=42 steps, expected 1..max_T=32"),
        # a stream of another length than the program's T: refused unless the caller says so (allow_other_T)
        (short, "T=4 steps, expected the program's T=6"),
        ({k: np.concatenate([v, v[:1]]) for k, v in x.items()}, "T=7 steps, expected the program's T=6"),
    ]
    for inputs, fragment in cases:
        with pytest.raises(ContractError) as err:
            simulate(program, inputs)
        assert fragment in str(err.value), (fragment, str(err.value))
    with pytest.raises(ContractError, match="allow_other_T=True"):
        simulate_sample(program, {k: v[:, 0] for k, v in short.items()})
    assert simulate(program, short, allow_other_T=True).step_logits.shape[0] == 4      # said so: runs 4 steps
    with pytest.raises(ContractError, match="max_T=32"):                               # never beyond max_T
        simulate(program, {k: np.concatenate([v] * 7) for k, v in x.items()}, allow_other_T=True)
    with pytest.raises(ContractError, match="mapping"):
        simulate_sample(program, [x["vision"][:, 0], x["audio"][:, 0]])


# ---------------------------------------------------------------- external data (self-contained files only)

def external(tensor: onnx.TensorProto, location: str) -> None:
    """Turn a tensor into one whose bytes live in an external file at `location`."""
    raw = numpy_helper.to_array(tensor).tobytes()
    tensor.ClearField("raw_data")
    for f in ("float_data", "int32_data", "int64_data", "double_data"):
        tensor.ClearField(f)
    tensor.data_location = onnx.TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        tensor.external_data.add(key=key, value=value)


@pytest.fixture
def no_external_reads(monkeypatch):
    """Fail the test if anything reads external tensor data or opens a file outside the allowed set."""
    import builtins

    import onnx.external_data_helper as edh

    def refuse(*args, **kwargs):
        raise AssertionError("external data was read")
    for target in (onnx, edh):
        monkeypatch.setattr(target, "load_external_data_for_model", refuse)
    monkeypatch.setattr(edh, "load_external_data_for_tensor", refuse)
    opened, real_open = [], builtins.open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", spy)
    return opened


def test_external_data_is_refused(tmp_path, model, no_external_reads):
    """A model saved with save_as_external_data: refused (self-contained files only), naming the tensor."""
    path = tmp_path / "ext.onnx"
    m = onnx.ModelProto()
    m.CopyFrom(model)                      # save_model converts the tensors of the proto it is given
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.onnx.data", size_threshold=0, convert_attribute=True)
    assert (tmp_path / "ext.onnx.data").stat().st_size > 0
    no_external_reads.clear()
    with pytest.raises(ContractError) as err:
        load_program(path)
    msg = str(err.value)
    assert str(path) in msg and "data_location=EXTERNAL" in msg and "'ext.onnx.data'" in msg and "self-contained" in msg, msg
    assert "more tensor(s)" in msg and "/node ConstantOfShape writing" in msg and "attribute 'value'" in msg, msg
    assert not [f for f in no_external_reads if f.endswith(".data")], no_external_reads


@pytest.mark.parametrize("location", ["../secret", "sub/../../secret", "ABSOLUTE"])
def test_external_data_escaping_the_folder_is_refused_unread(tmp_path, model, no_external_reads, location):
    secret = tmp_path / "secret"
    secret.write_bytes(b"\x00" * 4096)
    folder = tmp_path / "models"
    folder.mkdir()
    location = str(secret) if location == "ABSOLUTE" else location
    m = onnx.ModelProto()
    m.CopyFrom(model)
    external(next(i for i in m.graph.initializer if i.name == "vision.dense.weight"), location)
    path = folder / "m.onnx"
    path.write_bytes(m.SerializeToString())
    no_external_reads.clear()
    with pytest.raises(ContractError) as err:
        load_program(path)
    msg = str(err.value)
    assert str(path) in msg and "'vision.dense.weight'" in msg and repr(location) in msg, msg
    assert "outside the model's folder" in msg and "without reading it" in msg, msg
    assert str(secret) not in no_external_reads and not any(f.endswith("secret") for f in no_external_reads), no_external_reads


def test_external_data_in_a_scan_body_is_refused(tmp_path, model):
    """Subgraphs count: a Scan-body constant stored externally (inside the folder) is refused too,
    also when the model is handed over in memory (program_from_model)."""
    from firmware_sim.loader import program_from_model

    m = onnx.ModelProto()
    m.CopyFrom(model)
    scan = next(n for n in m.graph.node if n.op_type == "Scan")
    body = next(a.g for a in scan.attribute if a.name == "body")
    name = body.initializer[0].name
    external(body.initializer[0], "weights.bin")
    expect(tmp_path, m, "body", repr(name), "data_location=EXTERNAL", "'weights.bin'")
    with pytest.raises(ContractError, match="stores its data outside the file"):
        program_from_model(m, "in-memory")


# ---------------------------------------------------------------- graph against metadata

def graphs_of(m):
    stack = [m.graph]
    while stack:
        g = stack.pop()
        yield g
        stack.extend(a.g for n in g.node for a in n.attribute if a.type == onnx.AttributeProto.GRAPH)


def reader(m, value, op=None):
    """The one node (in any graph) reading `value` (of type op, when given)."""
    found = [n for g in graphs_of(m) for n in g.node if value in n.input and (op is None or n.op_type == op)]
    assert len(found) == 1, (value, op, [n.op_type for n in found])
    return found[0]


def writer(m, value):
    return next(n for g in graphs_of(m) for n in g.node if value in n.output)


def int_weight(m, name):
    """The value holding a weight's integers: initializer -> QuantizeLinear -> Clip -> DequantizeLinear -> Mul."""
    value = name
    for op in ("QuantizeLinear", "Clip", "DequantizeLinear", "Mul"):
        value = reader(m, value, op).output[0]
    return value


def set_attr(node, name, value):
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept + [helper.make_attribute(name, value)])


def set_const(m, name, value):
    """Overwrite initializer `name` (in whichever graph holds it), keeping its dtype."""
    for g in graphs_of(m):
        for init in g.initializer:
            if init.name == name:
                old = numpy_helper.to_array(init)
                init.CopyFrom(numpy_helper.from_array(np.asarray(value, dtype=old.dtype), name))
                return old
    raise KeyError(name)


def tampered(model, fn):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    fn(m)
    return m


def conv_of(m, layer):
    return reader(m, int_weight(m, f"{layer}.weight"), "Conv")


@pytest.mark.parametrize("attr, value, fragments", [
    ("strides", [1, 1], ("strides=[1, 1]", "stride=2", "expected strides=[2, 2]")),
    ("pads", [1, 1, 1, 1], ("pads=[1, 1, 1, 1]", "padding=2", "expected pads=[2, 2, 2, 2]")),
    ("pads", [2, 2, 1, 1], ("pads=[2, 2, 1, 1]", "padding=2")),
    ("kernel_shape", [3, 3], ("kernel_shape=[3, 3]", "kernel=5")),
    ("dilations", [2, 2], ("dilations=[2, 2]", "the contract has no dilation", "expected dilations=[1, 1]")),
    ("group", 2, ("group=2", "no grouped convolutions", "expected group=1")),
    ("auto_pad", "SAME_UPPER", ("auto_pad=SAME_UPPER", "explicit padding=2")),
])
def test_conv_attributes_must_match_the_program(tmp_path, program, model, attr, value, fragments):
    layer = program.layers[0]
    assert (layer.name, layer.kernel, layer.stride, layer.padding) == ("vision.conv0", 5, 2, 2)   # what the fragments say
    m = tampered(model, lambda m: set_attr(conv_of(m, "vision.conv0"), attr, value))
    expect(tmp_path, m, "edge_taaf.program.layers[0] ('vision.conv0')", "Conv node", *fragments)


def test_lif_constants_in_the_graph_must_match_the_program(tmp_path, program, model):
    layer = program.layers[3]                       # audio.fc0, a dense layer
    assert layer.name == "audio.fc0"
    # metadata disagreeing with the graph's constants
    expect(tmp_path, edit_program(model, lambda d: d["layers"][3].update(theta=layer.theta + 1)),
           "layers[3] ('audio.fc0')", "spike threshold", f"is {float(layer.theta)}", f"theta={layer.theta + 1}")
    k = program.leak_shift
    expect(tmp_path, edit_program(model, lambda d: d.update(leak_shift=k + 1)),
           "layers[0] ('vision.conv0')", "leak divisor", f"is {float(2 ** k)}", f"leak_shift={k + 1}")
    # the graph's constants changed under the metadata
    matmul = reader(model, reader(model, int_weight(model, "audio.fc0.weight"), "Transpose").output[0], "MatMul")
    clip = reader(model, reader(model, matmul.output[0], "Add").output[0], "Clip")
    expect(tmp_path, tampered(model, lambda m: set_const(m, clip.input[2], 32000.0)),
           "layers[3] ('audio.fc0')", "state Clip max", "is 32000.0", "state_bits=16 (max 32767)")
    mul = writer(model, reader(model, clip.output[0], "Sub").input[1])
    theta = next(i for i in mul.input if not i.startswith("s."))
    ge = reader(model, clip.output[0], "GreaterOrEqual")
    assert ge.input[1] == theta    # one constant: changing it trips the spike test first
    expect(tmp_path, tampered(model, lambda m: set_const(m, theta, layer.theta * 2)),
           "'audio.fc0'", "spike threshold", f"is {float(layer.theta * 2)}", f"theta={layer.theta}")


def test_weight_scale_mul_must_match_the_program(tmp_path, model):
    mul = reader(model, reader(model, reader(model, reader(model, "audio.fc1.weight", "QuantizeLinear").output[0],
                                                   "Clip").output[0], "DequantizeLinear").output[0], "Mul")
    factor = next(i for i in mul.input if i.startswith("c"))
    expect(tmp_path, tampered(model, lambda m: set_const(m, factor, 64.0)),
           "layers[4] ('audio.fc1').weight", "multiplies by [64.0]", "expected 2^7 = 128")


def test_readout_shift_divisors_must_match_the_program(tmp_path, program, model):
    logit = writer(model, writer(model, "step_logits").input[0])
    assert logit.op_type == "Div"
    expect(tmp_path, tampered(model, lambda m: set_const(m, logit.input[1], 2.0 ** (program.readout.logit_shift + 1))),
           "readout: step logits", f"is {2.0 ** (program.readout.logit_shift + 1)}",
           f"edge_taaf.program.readout.logit_shift={program.readout.logit_shift}")


def exp2_table_of(m):
    gather = writer(m, "attention")
    assert gather.op_type == "Gather"
    return gather.input[0]


def test_loader_table_is_the_contract_table():
    """The loader's table (recomputed from spec) == quant's EXP2_TABLE == the reference spec.exp2_weights."""
    from firmware_sim.graph_checks import exp2_table
    from quant.int_readout import EXP2_TABLE, Q_CAP
    from tests.support.sim_programs import exp2_table as reference_table

    table, q_cap = exp2_table()
    assert q_cap == Q_CAP == 144 and table.tolist() == list(EXP2_TABLE) and table.size == 145
    ref, ref_cap = reference_table()
    assert ref_cap == q_cap and np.array_equal(ref, table)


def test_exp2_table_and_attention_constants_must_match_the_contract(tmp_path, program, model):
    name = exp2_table_of(model)
    table = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == name)).copy()
    bad = table.copy()
    bad[17] += 1
    expect(tmp_path, tampered(model, lambda m: set_const(m, name, bad)),
           "attention", f"exp2 table {name!r}", "differs at index 17", f"{float(bad[17])} in the graph", f"{int(table[17])} expected")
    expect(tmp_path, tampered(model, lambda m: set_const(m, name, table[:130])), "has shape [130], expected [145]")
    cap = writer(model, writer(model, writer(model, "attention").input[1]).input[0])
    assert cap.op_type == "Min"
    q_cap_const = next(i for i in cap.input if i.startswith("c"))
    expect(tmp_path, tampered(model, lambda m: set_const(m, q_cap_const, 143.0)), "index cap", "is 143.0", "Q_CAP=144")
    shift = -program.readout.score_log2 - spec.EXP2_FRAC_BITS
    assert shift == 17
    div = writer(model, writer(model, cap.input[0]).input[0])
    assert div.op_type == "Div"
    expect(tmp_path, tampered(model, lambda m: set_const(m, div.input[1], 2.0 ** 16)),
           "score shift divisor", "is 65536.0", "score_log2=-21", "2^17")


def test_left_shift_attention_constants_must_match(tmp_path):
    """score_log2 > -4: q = min(d, Q_CAP) * 2^(score_log2 + 4); the factor and the cap are checked."""
    p = random_program(np.random.default_rng(3), fusion="taaf")
    p.readout.score_log2 = -2
    m = build_onnx(p)
    load_program(save(tmp_path, m))                       # the untouched file loads
    mul = writer(m, writer(m, writer(m, "attention").input[1]).input[0])
    mul = writer(m, next(i for i in mul.input if not i.startswith("c")))
    assert mul.op_type == "Mul"
    factor = next(i for i in mul.input if i.startswith("c"))
    expect(tmp_path, tampered(m, lambda t: set_const(t, factor, 2.0)), "score shift factor", "is 2.0", "score_log2=-2", "2^2")
    pre = writer(m, next(i for i in mul.input if not i.startswith("c")))
    cap = next(i for i in pre.input if i.startswith("c"))
    expect(tmp_path, tampered(m, lambda t: set_const(t, cap, 200.0)), "the cap of Min", "is 200.0", "Q_CAP=144")


def test_concat_attention_must_be_one(tmp_path):
    m = build_onnx(random_program(np.random.default_rng(5), fusion="concat"))
    load_program(save(tmp_path, m))
    node = writer(m, "attention")
    expect(tmp_path, tampered(m, lambda t: set_attr(writer(t, "attention"), "value",
                                                    numpy_helper.from_array(np.full(1, 2.0, np.float32)))),
           "fusion 'concat' needs attention 1", "[2.0]")
    assert node.op_type == "ConstantOfShape"


# ---------------------------------------------------------------- the same on a file written by quant/export.py

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from quant import export
    from tests.support.quant_models import tiny_model

    path = tmp_path_factory.mktemp("exported") / "m.onnx"
    export.export_onnx(tiny_model("taaf", 8, 4.0, 1), path)
    return onnx.load(str(path))


def test_exported_file_tampered_is_refused(tmp_path, exported):
    meta = json.loads(next(p.value for p in exported.metadata_props if p.key == spec.METADATA_PROGRAM_KEY))
    conv = meta["layers"][0]
    assert conv["kind"] == "conv" and reader(exported, "vision.conv0.weight.int", "Conv")
    load_program(save(tmp_path, exported))                # the untouched export loads
    s = conv["stride"]
    expect(tmp_path, tampered(exported, lambda m: set_attr(reader(m, "vision.conv0.weight.int", "Conv"), "strides", [s + 1] * 2)),
           "'vision.conv0'", f"strides=[{s + 1}, {s + 1}]", f"stride={s}")
    p = conv["padding"]
    expect(tmp_path, tampered(exported, lambda m: set_attr(reader(m, "vision.conv0.weight.int", "Conv"), "pads", [p + 1] * 4)),
           "'vision.conv0'", f"pads=[{p + 1}, {p + 1}, {p + 1}, {p + 1}]", f"padding={p}")
    expect(tmp_path, tampered(exported, lambda m: set_attr(reader(m, "vision.dense.weight.int", "Gemm"), "transB", 0)),
           "'vision.dense'", "untransposed", "transB=0")
    table = numpy_helper.to_array(next(i for i in exported.graph.initializer if i.name == "exp2_table")).copy()
    table[40] = 0
    expect(tmp_path, tampered(exported, lambda m: set_const(m, "exp2_table", table)),
           "exp2 table 'exp2_table'", "differs at index 40", "0.0 in the graph")
    theta = meta["layers"][1]["theta"]
    expect(tmp_path, edit_program(exported, lambda d: d["layers"][1].update(theta=theta + 3)),
           f"'{meta['layers'][1]['name']}'", "spike threshold", f"is {float(theta)}", f"theta={theta + 3}")


# ---------------------------------------------------------------- taaf_modal: graph and metadata agree

@pytest.fixture(scope="module")
def modal():
    """A taaf_modal program (per-modality predictions on, a right-shift score lookup) and its file."""
    p = random_program(np.random.default_rng(8), fusion="taaf_modal")
    p.readout.modality_logits, p.readout.score_log2 = True, -12
    return p.check(), build_onnx(p.check())


def main_node(m, op, value, attr, want):
    """The one main-graph node of type op reading value whose attribute attr is want."""
    found = [n for n in m.graph.node if n.op_type == op and value in n.input and _Graph.attr(n, attr, None) == want]
    assert len(found) == 1, (op, value, attr, want)
    return found[0]


def test_modal_file_loads_and_names_its_outputs(tmp_path, modal):
    program, model = modal
    loaded = load_program(save(tmp_path, model))
    assert loaded.readout.modality_logits and list(loaded.readout.branches) == ["audio", "vision"]
    assert {"logits_audio", "logits_vision", "scores", "attention"} <= {o.name for o in model.graph.output}


def test_modal_shift_divisors_must_match_the_program(tmp_path, modal):
    program, model = modal
    r = program.readout
    matmul = reader(model, reader(model, int_weight(model, "score.vision.hidden.weight"), "Transpose").output[0], "MatMul")
    relu = reader(model, reader(model, matmul.output[0], "Add").output[0], "Relu")
    div = reader(model, relu.output[0], "Div")
    expect(tmp_path, tampered(model, lambda m: set_const(m, div.input[1], 2.0 ** (r.hidden_shift + 1))),
           "score hidden layer (vision branch)", f"is {2.0 ** (r.hidden_shift + 1)}", f"readout.hidden_shift={r.hidden_shift}")
    logit = writer(model, writer(model, "step_logits").input[0])
    expect(tmp_path, tampered(model, lambda m: set_const(m, logit.input[1], 2.0 ** (r.logit_shift + 2))),
           "readout: step logits", f"readout.logit_shift={r.logit_shift}")


@pytest.mark.parametrize("out", ["attention", "attention_own"])
def test_modal_lookup_constants_must_match_the_program(tmp_path, modal, out):
    """The joint lookup ('attention') and each modality's own ('attention_own'): the table, the cap, the score shift."""
    program, model = modal
    cap = writer(model, writer(model, writer(model, out).input[1]).input[0])
    div = writer(model, writer(model, cap.input[0]).input[0])
    assert (cap.op_type, div.op_type, -program.readout.score_log2 - spec.EXP2_FRAC_BITS) == ("Min", "Div", 8)
    expect(tmp_path, tampered(model, lambda m: set_const(m, div.input[1], 2.0 ** 9)),
           f"readout: {out}", "score shift divisor", "is 512.0", "score_log2=-12", "2^8")
    q_cap = next(i for i in cap.input if i.startswith("c"))
    expect(tmp_path, tampered(model, lambda m: set_const(m, q_cap, 100.0)), f"readout: {out}", "index cap", "Q_CAP=144")
    table = writer(model, out).input[0]
    bad = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == table)).copy()
    bad[3] -= 1
    expect(tmp_path, tampered(model, lambda m: set_const(m, table, bad)), f"readout: {out}", "differs at index 3")


def test_modal_joint_maximum_is_over_time_and_modality(tmp_path, modal):
    _, model = modal
    for axes, other, fragment in (([0, 2], [0], "over time and modality (axes=[0, 2]"), ([0], [0, 2], "over time (axes=[0]")):
        node = main_node(model, "ReduceMax", "scores", "axes", axes)
        expect(tmp_path, tampered(model, lambda m: set_attr(main_node(m, "ReduceMax", "scores", "axes", axes), "axes", other)),
               fragment, f"it has axes={other}")
        assert node.op_type == "ReduceMax"


def test_modality_logits_flag_must_match_the_outputs(tmp_path, modal):
    _, model = modal
    expect(tmp_path, edit_program(model, lambda d: d["readout"].update(modality_logits=False)),
           "['logits_audio', 'logits_vision']", "modality_logits=false")
    p = random_program(np.random.default_rng(8), fusion="taaf_modal")
    p.readout.modality_logits = False
    without = build_onnx(p.check())
    assert not {"logits_audio", "logits_vision"} & {o.name for o in without.graph.output}
    load_program(save(tmp_path, without))
    expect(tmp_path, edit_program(without, lambda d: d["readout"].update(modality_logits=True)),
           "graph output(s) ['logits_audio', 'logits_vision'] missing")


@pytest.mark.parametrize("edit, fragments", [
    (lambda d: d["readout"].pop("vision_score_out_bias"), ("lacks field(s) ['vision_score_out_bias']", "taaf_modal")),
    (lambda d: d["readout"].update(modality_logits="yes"), ("modality_logits='yes'", "true or false")),
    (lambda d: d.update(max_T=32), ("max_T=32", "<= 16", "taaf_modal")),
    (lambda d: d["readout"].update(audio_readout_bias="score.audio.out.bias"), ("audio_readout_bias", "shape")),
])
def test_bad_modal_program_fields(tmp_path, modal, edit, fragments):
    _, model = modal
    expect(tmp_path, edit_program(model, edit), *fragments)


def test_modality_logits_belong_to_taaf_modal(tmp_path, model):
    expect(tmp_path, edit_program(model, lambda d: d["readout"].update(modality_logits=True)),
           "modality_logits=True", "only fusion 'taaf_modal'")


def test_modal_static_bounds_are_checked():
    """Program.check: every branch's worst-case score below 2^23 (its difference to the joint maximum stays below
    2^24), its logits below 2^11 after the shift; one H for every branch."""
    for edit, fragment in ((lambda r: setattr(r.branches["vision"], "out_bias", np.array([2 ** 23])), "|e_t| of the vision branch"),
                           (lambda r: setattr(r, "logit_shift", 0), "logit_shift=0"),
                           (lambda r: setattr(r.branches["audio"], "bias", r.branches["audio"].bias[:2]), "audio_readout_bias")):
        p = random_program(np.random.default_rng(8), fusion="taaf_modal")
        edit(p.readout)
        with pytest.raises(ContractError) as err:
            p.check()
        assert fragment in str(err.value), str(err.value)
    p = random_program(np.random.default_rng(8), fusion="taaf_modal")
    br = p.readout.branches["vision"]
    br.hidden_weight, br.hidden_bias, br.out_weight = br.hidden_weight[:0], br.hidden_bias[:0], br.out_weight[:, :0]
    with pytest.raises(ContractError, match="vision_score_hidden_weight has shape"):
        p.check()
