"""The program's file form: the JSON of the ONNX file's metadata and the names of its integer tensors.

One set of names from writer to reader (docs/accelerator.md, "The ONNX file"):
  to_metadata(program)              Program -> (program JSON, {tensor name: integer array})
  from_metadata(meta, weight, bias) program JSON + a way to fetch each named tensor -> checked Program
quant/export.py writes the first into the file; firmware_sim/loader.py reads the second back (fetching
weights through the graph's QuantizeLinear -> Clip -> DequantizeLinear chains). Every problem raises
ContractError naming the source and the field.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from firmware_sim import spec
from firmware_sim.frontend import FrontEnd
from firmware_sim.program import (CONCAT, FUSIONS, MODALITIES, TAAF, TAAF_MODAL, ContractError, Layer, ModalBranch, Program,
                                  Readout)

PROGRAM_FIELDS = ("contract", "T", "max_T", "weight_bits", "state_bits", "leak_shift", "reset", "n_classes", "fusion",
                  "inputs", "frontends", "layers", "readout")
FRONTEND_FIELDS = ("pool", "mode", "min_count", "clip", "refractory", "leak_shift", "gain_shift")
LAYER_FIELDS = ("name", "modality", "kind", "input", "in_shape", "out_shape", "weight", "weight_log2", "theta")
CONV_FIELDS = ("kernel", "stride", "padding")
READOUT_FIELDS = ("audio_input", "vision_input", "warp_audio", "warp_vision", "warp_log2", "readout_weight",
                  "readout_log2", "logit_shift")
TAAF_FIELDS = ("score_hidden_weight", "score_hidden_log2", "score_hidden_bias", "hidden_shift", "score_out_weight",
               "score_out_log2", "score_out_bias", "score_log2")
# taaf_modal: per modality m, "<m>_<field>" (null when m does not reach the readout), and the shared scales
BRANCH_FIELDS = ("readout_bias", "score_hidden_weight", "score_hidden_bias", "score_out_weight", "score_out_bias")
MODAL_FIELDS = ("score_hidden_log2", "hidden_shift", "score_out_log2", "score_log2", "modality_logits")
FUSION_FIELDS = {TAAF: ("readout_bias",) + TAAF_FIELDS, CONCAT: ("readout_bias",),
                 TAAF_MODAL: tuple(f"{m}_{f}" for m in MODALITIES for f in BRANCH_FIELDS) + MODAL_FIELDS}
# The readout's tensors: JSON field -> the initializer name it holds.
READOUT_TENSORS = {"warp_audio": "warp.audio", "warp_vision": "warp.vision", "readout_weight": "readout.weight",
                   "readout_bias": "readout.bias", "score_hidden_weight": "score.hidden.weight",
                   "score_hidden_bias": "score.hidden.bias", "score_out_weight": "score.out.weight",
                   "score_out_bias": "score.out.bias",
                   **{f"{m}_{f}": name.format(m=m) for m in MODALITIES for f, name in (
                       ("readout_bias", "readout.{m}.bias"), ("score_hidden_weight", "score.{m}.hidden.weight"),
                       ("score_hidden_bias", "score.{m}.hidden.bias"), ("score_out_weight", "score.{m}.out.weight"),
                       ("score_out_bias", "score.{m}.out.bias"))}}
# Graph outputs of a taaf_modal program with modality_logits: each present modality's own prediction y_m (B, K).
MODALITY_LOGITS = {m: f"logits_{m}" for m in MODALITIES}


def batch_axis(output: str) -> int:
    """The batch axis of a graph output: 0 for the predictions (logits, logits_<m>: (B, K)), 1 for the
    time-major rest ((T, B, ...))."""
    return 0 if output == "logits" or output in MODALITY_LOGITS.values() else 1

WeightFetch = Callable[[str, int, str], np.ndarray]   # (tensor name, log2 scale, what) -> integer weights
BiasFetch = Callable[[str, str], np.ndarray]          # (tensor name, what) -> int64 biases


def weight_name(layer: str) -> str:
    """The initializer holding a spiking layer's weights."""
    return f"{layer}.weight"


def to_metadata(program: Program) -> tuple[dict, dict[str, np.ndarray]]:
    """(program JSON, integer tensors by name) of a checked program; the inverse of from_metadata."""
    program.check()
    tensors: dict[str, np.ndarray] = {}
    layers = []
    for layer in program.layers:
        entry = {"name": layer.name, "modality": layer.modality, "input": layer.input, "kind": layer.kind,
                 "in_shape": list(layer.in_shape), "out_shape": list(layer.out_shape)}
        if layer.kind == "conv":
            entry.update(kernel=layer.kernel, stride=layer.stride, padding=layer.padding)
        entry.update(weight=weight_name(layer.name), weight_log2=int(layer.weight_log2), theta=int(layer.theta))
        tensors[entry["weight"]] = np.asarray(layer.weight, np.int64)
        layers.append(entry)
    r = program.readout
    readout = {"audio_input": r.audio_input, "vision_input": r.vision_input}
    arrays = {"warp_audio": r.warp_audio, "warp_vision": r.warp_vision, "readout_weight": r.weight}
    if r.fusion == TAAF_MODAL:
        for m in MODALITIES:
            br = r.branches.get(m)
            values = (None,) * len(BRANCH_FIELDS) if br is None else \
                (br.bias, br.hidden_weight, br.hidden_bias, br.out_weight, br.out_bias)
            arrays.update({f"{m}_{f}": v for f, v in zip(BRANCH_FIELDS, values)})
    else:
        arrays["readout_bias"] = r.bias
    if r.fusion == TAAF:
        arrays.update(score_hidden_weight=r.hidden_weight, score_hidden_bias=r.hidden_bias,
                      score_out_weight=r.out_weight, score_out_bias=r.out_bias)
    for field, value in arrays.items():
        readout[field] = None if value is None else READOUT_TENSORS[field]
        if value is not None:
            tensors[READOUT_TENSORS[field]] = np.asarray(value, np.int64)
    readout.update(warp_log2=int(r.log2["warp_log2"]), readout_log2=int(r.log2["readout_log2"]),
                   logit_shift=int(r.logit_shift))
    if r.fusion in (TAAF, TAAF_MODAL):
        readout.update(score_hidden_log2=int(r.log2["score_hidden_log2"]), hidden_shift=int(r.hidden_shift),
                       score_out_log2=int(r.log2["score_out_log2"]), score_log2=int(r.score_log2))
    if r.fusion == TAAF_MODAL:
        readout["modality_logits"] = bool(r.modality_logits)
    meta = {"contract": spec.CONTRACT_VERSION, "T": int(program.T), "max_T": int(program.max_T),
            "weight_bits": int(program.weight_bits), "state_bits": int(program.state_bits),
            "leak_shift": int(program.leak_shift), "reset": spec.RESET, "n_classes": int(program.n_classes),
            "fusion": r.fusion,
            "inputs": {name: {"shape": list(shape), "max": int(top)} for name, (shape, top) in program.inputs.items()},
            "frontends": {name: frontend_entry(program.frontend(name)) for name in program.inputs},
            "layers": layers, "readout": readout}
    return meta, tensors


def from_metadata(meta: dict, weight: WeightFetch, bias: BiasFetch, source: str = "<program>") -> Program:
    """Parse and check a program JSON; ``weight`` and ``bias`` fetch the named integer tensors."""
    if not isinstance(meta, dict):
        raise ContractError(f"{source}: {spec.METADATA_PROGRAM_KEY} must be a JSON object, got {type(meta).__name__}")
    missing = [f for f in PROGRAM_FIELDS if f not in meta]
    if missing:
        raise ContractError(f"{source}: {spec.METADATA_PROGRAM_KEY} lacks field(s) {missing}")
    if meta["contract"] != spec.CONTRACT_VERSION:
        raise ContractError(f"{source}: edge_taaf.program.contract={meta['contract']!r}, expected {spec.CONTRACT_VERSION!r}")
    bits = _int(meta, "weight_bits", source)
    try:
        spec.check_weight_bits(bits)
    except ValueError as err:
        raise ContractError(f"{source}: edge_taaf.program: {err}") from None
    if meta["reset"] != spec.RESET:
        raise ContractError(f"{source}: edge_taaf.program.reset={meta['reset']!r}; the accelerator only has {spec.RESET!r}")
    inputs = _inputs(meta, source)
    frontends = _frontends(meta, inputs, source)
    layers = [_layer(entry, i, weight, source) for i, entry in enumerate(_list(meta, "layers", source))]
    readout = _readout(meta, weight, bias, source)
    program = Program(T=_int(meta, "T", source), max_T=_int(meta, "max_T", source), weight_bits=bits,
                      state_bits=_int(meta, "state_bits", source), leak_shift=_int(meta, "leak_shift", source),
                      n_classes=_int(meta, "n_classes", source), inputs=inputs, layers=layers, readout=readout, meta=meta,
                      frontends=frontends)
    try:
        return program.check()
    except ContractError as err:
        raise ContractError(f"{source}: {err}") from None


def from_arrays(meta: dict, tensors: dict[str, np.ndarray], source: str = "<program>") -> Program:
    """from_metadata with the tensors given as integer arrays by name (no graph)."""
    def fetch(name, what: str) -> np.ndarray:
        if not isinstance(name, str) or name not in tensors:
            raise ContractError(f"{source}: {what} {name!r} named by the program is missing")
        value = np.asarray(tensors[name])
        if not np.issubdtype(value.dtype, np.integer):
            raise ContractError(f"{source}: {what} {name!r} must be an integer array, got {value.dtype}")
        return value.astype(np.int64)
    return from_metadata(meta, lambda name, log2, what: fetch(name, what), fetch, source)


# ---------------------------------------------------------------- field parsing

def _int(obj: dict, key: str, source: str, where: str = "edge_taaf.program") -> int:
    if key not in obj:
        raise ContractError(f"{source}: {where} lacks field {key!r}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"{source}: {where}.{key}={value!r}, expected an integer")
    return value


def _list(obj: dict, key: str, source: str) -> list:
    value = obj[key]
    if not isinstance(value, list) or not value:
        raise ContractError(f"{source}: edge_taaf.program.{key} must be a non-empty list")
    return value


def _shape(value, where: str, source: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value):
        raise ContractError(f"{source}: {where}={value!r}, expected a list of positive integers")
    return tuple(value)


def _inputs(meta: dict, source: str) -> dict:
    entries = meta["inputs"]
    if not isinstance(entries, dict) or not entries:
        raise ContractError(f"{source}: edge_taaf.program.inputs must be a non-empty object name -> {{shape, max}}")
    out = {}
    for name, entry in entries.items():
        where = f"edge_taaf.program.inputs.{name}"
        if not isinstance(entry, dict) or "shape" not in entry or "max" not in entry:
            raise ContractError(f"{source}: {where} must hold 'shape' and 'max'")
        out[name] = (_shape(entry["shape"], f"{where}.shape", source), _int(entry, "max", source, where))
    return out


def frontend_entry(fe: FrontEnd) -> dict:
    """A FrontEnd as its program JSON object."""
    return {"pool": list(fe.pool), "mode": fe.mode, "min_count": int(fe.min_count), "clip": int(fe.clip),
            "refractory": int(fe.refractory), "leak_shift": int(fe.leak_shift), "gain_shift": int(fe.gain_shift)}


def _frontends(meta: dict, inputs: dict, source: str) -> dict[str, FrontEnd]:
    """One front-end object per input (the ranges are Program.check's)."""
    entries = meta["frontends"]
    where = "edge_taaf.program.frontends"
    if not isinstance(entries, dict) or set(entries) != set(inputs):
        names = sorted(entries) if isinstance(entries, dict) else entries
        raise ContractError(f"{source}: {where} must be an object with one entry per input {sorted(inputs)}, got {names!r}")
    out = {}
    for name, entry in entries.items():
        label = f"{where}.{name}"
        if not isinstance(entry, dict):
            raise ContractError(f"{source}: {label} must be an object")
        missing = [f for f in FRONTEND_FIELDS if f not in entry]
        extra = sorted(set(entry) - set(FRONTEND_FIELDS))
        if missing or extra:
            raise ContractError(f"{source}: {label}: missing field(s) {missing}, unknown field(s) {extra}")
        pool = entry["pool"]
        if not isinstance(pool, list) or not all(isinstance(f, int) and not isinstance(f, bool) for f in pool):
            raise ContractError(f"{source}: {label}.pool={pool!r}, expected a list of integers")
        if entry["mode"] not in spec.FRONTEND_MODES:
            raise ContractError(f"{source}: {label}.mode={entry['mode']!r}, expected one of {list(spec.FRONTEND_MODES)}")
        out[name] = FrontEnd(tuple(pool), entry["mode"], *(_int(entry, f, source, label) for f in FRONTEND_FIELDS[2:]))
    return out


def _layer(entry, i: int, weight, source: str) -> Layer:
    label = f"edge_taaf.program.layers[{i}]"
    if not isinstance(entry, dict):
        raise ContractError(f"{source}: {label} must be an object")
    label += f" ({entry.get('name')!r})"
    kind = entry.get("kind")
    missing = [f for f in LAYER_FIELDS + (CONV_FIELDS if kind == "conv" else ()) if f not in entry]
    if missing:
        raise ContractError(f"{source}: {label} lacks field(s) {missing}")
    if kind not in ("conv", "dense"):
        raise ContractError(f"{source}: {label}.kind={kind!r}, expected 'conv' or 'dense'")
    log2 = _int(entry, "weight_log2", source, label)
    w = weight(entry["weight"], log2, f"{label}.weight")
    stride = _int(entry, "stride", source, label) if kind == "conv" else 1
    padding = _int(entry, "padding", source, label) if kind == "conv" else 0
    if kind == "conv" and (w.ndim != 4 or _int(entry, "kernel", source, label) != w.shape[-1]):
        raise ContractError(f"{source}: {label}.kernel={entry['kernel']} but the weight has shape {list(w.shape)}")
    return Layer(str(entry["name"]), kind, str(entry["modality"]), str(entry["input"]),
                 _shape(entry["in_shape"], f"{label}.in_shape", source), _shape(entry["out_shape"], f"{label}.out_shape", source),
                 w, log2, _int(entry, "theta", source, label), stride, padding)


def _readout(meta: dict, weight, bias, source: str) -> Readout:
    r = meta["readout"]
    fusion = meta["fusion"]
    where = "edge_taaf.program.readout"
    if not isinstance(r, dict):
        raise ContractError(f"{source}: {where} must be an object")
    if fusion not in FUSIONS:
        raise ContractError(f"{source}: edge_taaf.program.fusion={fusion!r}, expected one of {list(FUSIONS)}")
    need = READOUT_FIELDS + FUSION_FIELDS[fusion]
    missing = [f for f in need if f not in r]
    if missing:
        raise ContractError(f"{source}: {where} lacks field(s) {missing} (fusion={fusion!r})")
    lg = {k: _int(r, k, source, where) for k in need if k.endswith("_log2")}
    warp = lg["warp_log2"]

    def optional(role: str, load):
        """A unimodal program has null for the missing modality's input layer and warp."""
        return None if r[role] is None else load(r[role])
    out = Readout(fusion, optional("audio_input", str), optional("vision_input", str),
                  optional("warp_audio", lambda n: weight(n, warp, f"{where}.warp_audio")),
                  optional("warp_vision", lambda n: weight(n, warp, f"{where}.warp_vision")),
                  weight(r["readout_weight"], lg["readout_log2"], f"{where}.readout_weight"),
                  None if fusion == TAAF_MODAL else bias(r["readout_bias"], f"{where}.readout_bias"),
                  _int(r, "logit_shift", source, where), log2=lg)
    if fusion != TAAF_MODAL and r.get("modality_logits", False) is not False:
        raise ContractError(f"{source}: {where}.modality_logits={r['modality_logits']!r}: only fusion 'taaf_modal' "
                            "has per-modality predictions")
    if fusion == TAAF_MODAL:
        out.branches = _branches(r, out.modalities, lg, weight, bias, source)
        out.hidden_shift = _int(r, "hidden_shift", source, where)
        out.score_log2 = lg["score_log2"]
        out.modality_logits = r["modality_logits"]
        if not isinstance(out.modality_logits, bool):
            raise ContractError(f"{source}: {where}.modality_logits={out.modality_logits!r}, expected true or false")
    if fusion == TAAF:
        out.hidden_weight = weight(r["score_hidden_weight"], lg["score_hidden_log2"], f"{where}.score_hidden_weight")
        out.hidden_bias = bias(r["score_hidden_bias"], f"{where}.score_hidden_bias")
        out.hidden_shift = _int(r, "hidden_shift", source, where)
        out.out_weight = weight(r["score_out_weight"], lg["score_out_log2"], f"{where}.score_out_weight")
        out.out_bias = bias(r["score_out_bias"], f"{where}.score_out_bias")
        out.score_log2 = lg["score_log2"]
    return out


def _branches(r: dict, modalities: tuple[str, ...], lg: dict, weight, bias, source: str) -> dict[str, ModalBranch]:
    """taaf_modal: each present modality's bias and score MLP (``<m>_*`` fields); an absent one's must be null."""
    where = "edge_taaf.program.readout"
    out = {}
    for m in MODALITIES:
        names = {f: r[f"{m}_{f}"] for f in BRANCH_FIELDS}
        if m not in modalities:
            given = [f"{m}_{f}" for f, name in names.items() if name is not None]
            if given:
                raise ContractError(f"{source}: {where}.{given[0]} is set but {where}.{m}_input is null")
            continue
        out[m] = ModalBranch(bias(names["readout_bias"], f"{where}.{m}_readout_bias"),
                             weight(names["score_hidden_weight"], lg["score_hidden_log2"], f"{where}.{m}_score_hidden_weight"),
                             bias(names["score_hidden_bias"], f"{where}.{m}_score_hidden_bias"),
                             weight(names["score_out_weight"], lg["score_out_log2"], f"{where}.{m}_score_out_weight"),
                             bias(names["score_out_bias"], f"{where}.{m}_score_out_bias"))
    return out
