"""Hardware configs (configs/hardware/*.yaml): parsing, checks, and the per-operation costs they give.

A config is one of two kinds, named by its ``kind`` field and printed in every report that quotes it:

  component        a table of component energies (adds, multiplies, SRAM by size, registers): every
                   arithmetic operation and every memory word is priced (horowitz45nm).
  operation_count  a published chip's system-level energy per operation (``per_op_pj``: per synaptic op,
                   per neuron update, per MAC), memory and control included: the price is an operation
                   count times those figures, nothing else (sne22nm).

Either kind may declare ``sensor_frontend``: per sensor input, the digital front-end that turns the
raw signal into the events the networks read (the cochlea's gammatone filterbank), priced alike for the
SNN and every ANN (firmware_sim.energy). Units: pJ, bytes, MHz, mW, Hz, seconds.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from firmware_sim import spec

KINDS = ("component", "operation_count")
ENERGY_KEYS = ("add8", "add32", "mult8", "mult32")
PARALLEL_KEYS = ("syn_units", "neuron_units", "mac_units")
DATAFLOWS = ("scatter", "gather")
PER_OP_KEYS = ("synaptic_op", "neuron_update", "mac")
SENSOR_KEYS = ("sample_rate_hz", "window_s", "operand_bits", "mults_per_sample", "adds_per_sample",
               "register_accesses_per_sample")


class HardwareConfigError(ValueError):
    """A hardware config lacks a constant or holds an invalid one; the message names it."""


@dataclass(frozen=True)
class SensorFrontend:
    """A sensor's digital front-end, per channel and input sample (e.g. one gammatone channel): it runs
    at ``sample_rate_hz`` over ``window_s`` seconds per inference on every channel of the sensor."""

    sample_rate_hz: float
    window_s: float
    operand_bits: int
    mults_per_sample: float
    adds_per_sample: float
    register_accesses_per_sample: float
    description: str = ""


@dataclass(frozen=True)
class Hardware:
    name: str
    energy_pj: dict
    sram: tuple[tuple[int, float], ...]    # (size bytes, pJ per read of one sram_word_bits word), ascending size
    sram_word_bits: int
    sram_write_factor: float
    event_fifo_bytes: int
    static_power_mw: float
    clock_mhz: float
    syn_units: int
    neuron_units: int
    mac_units: int
    register_file_bytes: int = 0           # the accumulators' register file (gather, ANN baselines)
    register_pj: float = 0.0               # pJ per access of one register (accumulator or operand buffer)
    dataflow: str = "auto"                 # scatter | gather | auto (the cheaper per layer)
    per_op_pj: dict | None = None          # operation_count: a chip's system-level energy per operation
    kind: str = "component"                # component | operation_count
    note: str = ""                         # what the figures are and where they hold (printed with them)
    sensors: tuple[tuple[str, SensorFrontend], ...] = ()   # (input name, its digital front-end)

    def add(self, bits: int) -> float:
        e8, e32 = self.energy_pj["add8"], self.energy_pj["add32"]
        return e8 + (e32 - e8) * (bits - 8) / 24

    def mult(self, bits: int) -> float:
        e8, e32 = self.energy_pj["mult8"], self.energy_pj["mult32"]
        return e8 * (e32 / e8) ** ((math.log2(bits) - 3) / 2) if e8 > 0 else e32 * (bits / 32) ** 2

    def mult_narrow(self, a_bits: int, b_bits: int) -> float:
        """An a_bits x b_bits integer multiply (array multiplier: energy ~ the product of the widths, from
        mult8); a 1-bit operand makes it an AND gate row (a binary input needs no real multiply)."""
        return self.mult(8) * a_bits * b_bits / 64

    def sram_word(self, size_bytes: float) -> float:
        """pJ per access (one sram_word_bits word) of an SRAM of size_bytes."""
        smallest, cost = self.sram[0]
        return cost if size_bytes <= smallest else _interpolate(self.sram, size_bytes)

    def words(self, bits: float) -> int:
        """Whole memory words one access of ``bits`` bits takes."""
        return math.ceil(bits / self.sram_word_bits) if bits > 0 else 0

    @property
    def operation_count(self) -> bool:
        return self.per_op_pj is not None

    def describe(self) -> dict:
        """The config's name, kind and note: printed beside every figure priced with it."""
        return {"name": self.name, "kind": self.kind, "note": self.note}


def ceil_div(a: float, b: int) -> float:
    """Cycles of ``a`` operations on ``b`` parallel units (0 for none)."""
    return math.ceil(a / b) if a else 0


def _interpolate(table, size):
    """Power law between table entries (linear in log size and log cost); past the last entry,
    along the last segment's power law."""
    if len(table) == 1:
        return table[0][1]
    x = math.log2(size)
    pts = [(math.log2(s), math.log2(c) if c > 0 else -math.inf) for s, c in table]
    for (x0, c0), (x1, c1) in zip(pts, pts[1:]):
        if x <= x1:
            break
    return 2.0 ** (c0 + (c1 - c0) * (x - x0) / (x1 - x0)) if math.isfinite(c0) and math.isfinite(c1) else 0.0


def load_hardware(source, folder: str | os.PathLike | None = None) -> Hardware:
    """A Hardware from a mapping, a YAML path, or a name (e.g. 'horowitz45nm') of a YAML file in ``folder``
    (the project's configs/hardware/, which the apps pass: firmware_sim itself knows no config folder)."""
    if isinstance(source, Mapping):
        return hardware_from_dict(dict(source), "<mapping>")
    path = Path(source)
    if not path.suffix:
        if folder is None:
            raise HardwareConfigError(f"hardware config {os.fspath(source)!r}: a bare name needs the folder of "
                                      "hardware YAML files (or give a path or a mapping)")
        path = Path(folder) / f"{source}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise HardwareConfigError(f"hardware config {os.fspath(source)!r}: no file {path} (known names: {known})")
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise HardwareConfigError(f"hardware config {path}: expected a YAML mapping")
    data.pop("defaults", None)     # a Hydra preset's defaults list (the name of its typed schema), not a constant
    return hardware_from_dict(data, str(path))


def _number(d: Mapping, key: str, where: str, positive: bool = False) -> float:
    if key not in d or d[key] is None:
        raise HardwareConfigError(f"hardware config {where}: {key} is missing")
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HardwareConfigError(f"hardware config {where}: {key}={value!r} is not a number")
    if value < 0 or (positive and value == 0):
        raise HardwareConfigError(f"hardware config {where}: {key}={value} must be {'> 0' if positive else '>= 0'}")
    return float(value)


def _whole(d: Mapping, key: str, where: str) -> int:
    value = _number(d, key, where, positive=True)
    if value != int(value):
        raise HardwareConfigError(f"hardware config {where}: {key}={value} must be a whole number")
    return int(value)


def _section(d: Mapping, key: str, where: str) -> Mapping:
    if not isinstance(d.get(key), Mapping):
        raise HardwareConfigError(f"hardware config {where}: section {key!r} is missing or not a mapping")
    return d[key]


def _sensors(d: Mapping, where: str) -> tuple[tuple[str, SensorFrontend], ...]:
    """The optional ``sensor_frontend`` section: input name -> SensorFrontend."""
    if d.get("sensor_frontend") is None:
        return ()
    out = []
    for name, section in _section(d, "sensor_frontend", where).items():
        at = f"{where} sensor_frontend.{name}"
        if not isinstance(section, Mapping):
            raise HardwareConfigError(f"hardware config {at}: expected a mapping of {SENSOR_KEYS}")
        unknown = sorted(set(section) - set(SENSOR_KEYS) - {"description"})
        if unknown:
            raise HardwareConfigError(f"hardware config {at}: unknown keys {unknown}; expected {SENSOR_KEYS}")
        values = {k: _number(section, k, at, positive=k in ("sample_rate_hz", "window_s", "operand_bits"))
                  for k in SENSOR_KEYS}
        bits = values["operand_bits"]
        if bits != int(bits) or not 2 <= bits <= 32:
            raise HardwareConfigError(f"hardware config {at}: operand_bits={bits:g} must be a whole number 2..32")
        values["operand_bits"] = int(bits)
        out.append((str(name), SensorFrontend(**values, description=str(section.get("description", "")))))
    return tuple(out)


def _common(d: Mapping, where: str) -> dict:
    """The fields every kind has: name, kind, note, static power, clock, parallel units, sensors."""
    kind = d.get("kind")
    if kind not in KINDS:
        raise HardwareConfigError(f"hardware config {where}: kind={kind!r}; expected one of {KINDS} (component: "
                                  "every operation and memory word priced; operation_count: per_op_pj)")
    if (kind == "operation_count") != (d.get("per_op_pj") is not None):
        raise HardwareConfigError(f"hardware config {where}: kind={kind!r} but per_op_pj is "
                                  f"{'absent' if d.get('per_op_pj') is None else 'given'}: an operation_count config "
                                  "prices with per_op_pj, a component config with energy_pj and sram_read_pj")
    par = _section(d, "parallel", where)
    units = {k: _whole(par, k, f"{where} parallel") for k in PARALLEL_KEYS}
    return dict(name=str(d.get("name", where)), kind=kind, note=" ".join(str(d.get("note", "")).split()),
                static_power_mw=_number(d, "static_power_mw", where),
                clock_mhz=_number(d, "clock_mhz", where, positive=True), sensors=_sensors(d, where), **units)


def _sram_table(d: Mapping, where: str) -> tuple[tuple[int, float], ...]:
    table = _section(d, "sram_read_pj", where)
    sram = []
    for size, cost in table.items():
        try:
            s = int(size)
        except (TypeError, ValueError):
            raise HardwareConfigError(f"hardware config {where}: sram_read_pj key {size!r} is not a size in bytes") from None
        if s <= 0:
            raise HardwareConfigError(f"hardware config {where}: sram_read_pj size {s} must be > 0")
        sram.append((s, _number(table, size, f"{where} sram_read_pj")))
    if not sram:
        raise HardwareConfigError(f"hardware config {where}: sram_read_pj needs at least one size: cost entry")
    return tuple(sorted(sram))


def hardware_from_dict(d: dict, where: str) -> Hardware:
    """A Hardware from a config mapping; HardwareConfigError names the constant at fault. An
    operation_count config (``per_op_pj``) needs no component table."""
    common = _common(d, where)
    if common["kind"] == "operation_count":
        section = _section(d, "per_op_pj", where)
        per_op = {k: _number(section, k, f"{where} per_op_pj", positive=True) for k in PER_OP_KEYS}
        extra = sorted(set(d) & {"energy_pj", "sram_read_pj", "register_file", "dataflow"})
        if extra:
            raise HardwareConfigError(f"hardware config {where}: per_op_pj prices every operation; {extra} would be "
                                      "ignored (remove them, or per_op_pj)")
        return Hardware(energy_pj={}, sram=((1, 0.0),), sram_word_bits=64, sram_write_factor=0.0, event_fifo_bytes=1,
                        per_op_pj=per_op, **common)
    energy = _section(d, "energy_pj", where)
    e = {k: _number(energy, k, f"{where} energy_pj") for k in ENERGY_KEYS}
    word_bits = _number(d, "sram_word_bits", where, positive=True)
    if word_bits != int(word_bits) or int(word_bits) % 8:
        raise HardwareConfigError(f"hardware config {where}: sram_word_bits={word_bits} must be a whole number of bytes (8, 16, 32, 64, ...)")
    dataflow = d.get("dataflow", "auto")
    if dataflow not in (*DATAFLOWS, "auto"):
        raise HardwareConfigError(f"hardware config {where}: dataflow={dataflow!r}; expected scatter, gather or auto")
    rf = _section(d, "register_file", where)
    rf_bytes = _number(rf, "bytes", f"{where} register_file", positive=True)
    need = common["syn_units"] * spec.ACC_BITS // 8
    if rf_bytes < need:
        raise HardwareConfigError(f"hardware config {where}: register_file.bytes={rf_bytes:g} cannot hold the "
                                  f"{common['syn_units']} {spec.ACC_BITS}-bit accumulators of parallel.syn_units "
                                  f"({need} bytes)")
    return Hardware(energy_pj=e, sram=_sram_table(d, where), sram_word_bits=int(word_bits),
                    sram_write_factor=_number(d, "sram_write_factor", where),
                    event_fifo_bytes=int(_number(d, "event_fifo_bytes", where, positive=True)),
                    register_file_bytes=int(rf_bytes), register_pj=_number(rf, "pj_per_access", f"{where} register_file"),
                    dataflow=dataflow, **common)
