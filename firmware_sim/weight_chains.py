"""The integer weights of an ONNX file, read through their QCDQ chains (docs/accelerator.md, 'The ONNX file').

Each weight initializer W (float32) must feed exactly one QuantizeLinear -> Clip -> DequantizeLinear
chain with scale 2^log2 (the program's *_log2), an int8 zero point 0 and the narrow weight_bits range,
followed by one Mul by 2^-log2; the integer weight is then clip(round_half_to_even(W / 2^log2), narrow
range), exactly what the QCDQ nodes compute. Biases are int32 initializers. Every problem raises
ContractError naming the file, the program field and the node at fault.
"""
from __future__ import annotations

import numpy as np

from firmware_sim import spec
from firmware_sim.program import ContractError


class WeightChains:
    """Integer weights through their QuantizeLinear -> Clip -> DequantizeLinear chain.

    consts: every constant and initializer of the model by name; consumers: value name -> the nodes
    reading it; bits: the program's weight_bits; source: the file, for error messages. ``weight``
    and ``bias`` return the integers; ``int_value`` maps each weight initializer read so far to the
    graph value holding its integers (w_int), where firmware_sim.graph_checks follows it."""

    def __init__(self, consts, consumers, bits, source):
        self.consts, self.consumers, self.bits, self.source = consts, consumers, bits, source
        self.limit = spec.weight_limit(bits)
        self.int_value: dict[str, str] = {}   # initializer name -> the graph value holding w_int

    def _fail(self, msg):
        raise ContractError(f"{self.source}: {msg}")

    def _const(self, name, what):
        if name not in self.consts:
            self._fail(f"{what} {name!r} is not a constant or initializer")
        return self.consts[name]

    def _next(self, value, op, what):
        nodes = [n for n in self.consumers.get(value, []) if n.op_type == op]
        if len(nodes) != 1:
            found = sorted({n.op_type for n in self.consumers.get(value, [])})
            self._fail(f"{what}: expected exactly one {op} reading {value!r} (QCDQ chain), found consumers {found}")
        return nodes[0]

    def _scale_zp(self, node, log2, what):
        scale = self._const(node.input[1], f"{what}: {node.op_type} scale")
        if scale.size != 1 or float(scale.reshape(())) != 2.0 ** log2:
            self._fail(f"{what}: {node.op_type} scale {scale.ravel()[:3].tolist()} != 2^{log2} (its *_log2 in the program)")
        if len(node.input) < 3 or not node.input[2]:
            self._fail(f"{what}: {node.op_type} has no zero point; expected an int8 zero point 0")
        zp = self._const(node.input[2], f"{what}: {node.op_type} zero point")
        if zp.dtype != np.int8 or zp.size != 1 or int(zp.reshape(())) != 0:
            self._fail(f"{what}: {node.op_type} zero point {zp.ravel()[:3].tolist()} ({zp.dtype}); expected int8 0")

    def weight(self, name, log2, what) -> np.ndarray:
        if not isinstance(name, str) or name not in self.consts:
            self._fail(f"{what}: initializer {name!r} is missing from the graph")
        w = self.consts[name]
        if w.dtype != np.float32:
            self._fail(f"{what}: initializer {name!r} has dtype {w.dtype}, expected float32 (QCDQ input)")
        q_node = self._next(name, "QuantizeLinear", what)
        self._scale_zp(q_node, log2, what)
        clip = self._next(q_node.output[0], "Clip", what)
        if len(clip.input) < 3:
            self._fail(f"{what}: Clip after QuantizeLinear needs min and max inputs")
        lo = self._const(clip.input[1], f"{what}: Clip min")
        hi = self._const(clip.input[2], f"{what}: Clip max")
        if int(lo.reshape(())) != -self.limit or int(hi.reshape(())) != self.limit:
            self._fail(f"{what}: Clip range [{int(lo.reshape(()))}, {int(hi.reshape(()))}] is not the narrow "
                       f"{self.bits}-bit range [-{self.limit}, {self.limit}] (weight_bits={self.bits})")
        dq = self._next(clip.output[0], "DequantizeLinear", what)
        self._scale_zp(dq, log2, what)
        uses = self.consumers.get(dq.output[0], [])
        if len(uses) != 1 or uses[0].op_type != "Mul":
            self._fail(f"{what}: expected exactly one Mul by 2^{-log2} after DequantizeLinear (w_int = dequantized "
                       f"weight * 2^{-log2}), found consumers {[n.op_type for n in uses]}")
        mul = uses[0]
        other = mul.input[1] if mul.input[0] == dq.output[0] else mul.input[0]
        factor = self.consts.get(other)
        if factor is None or factor.size != 1 or float(factor.reshape(())) != 2.0 ** -log2:
            found = "not a constant" if factor is None else factor.ravel()[:3].tolist()
            self._fail(f"{what}: the Mul after DequantizeLinear multiplies by {found}, expected 2^{-log2} = "
                       f"{2.0 ** -log2:g} (1 / the scale 2^{log2} of the program's *_log2)")
        self.int_value[name] = mul.output[0]
        q = np.rint(w.astype(np.float64) / 2.0 ** log2)          # round half to even, as QuantizeLinear
        return np.clip(q, -self.limit, self.limit).astype(np.int8)

    def bias(self, name, what) -> np.ndarray:
        if not isinstance(name, str) or name not in self.consts:
            self._fail(f"{what}: initializer {name!r} is missing from the graph")
        b = self.consts[name]
        if b.dtype != np.int32:
            self._fail(f"{what}: bias {name!r} has dtype {b.dtype}, expected int32")
        return b.astype(np.int64)

