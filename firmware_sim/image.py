"""The chip image: one binary file the accelerator boots from, and its reader (issue #26 item 1).

    write_image(program) -> bytes        a checked Program -> the image
    read_image(data, source) -> Program  the image -> the same Program, every field checked

Layout (little-endian; offsets in bytes):
    0   magic          8s   b"ETAFIMG\\0"
    8   format         u16  IMAGE_FORMAT
    10  header_bytes   u16  HEADER_BYTES
    12  contract       24s  spec.CONTRACT_VERSION, NUL-padded
    36  image_bytes    u32  the whole image's length
    40  payload_crc32  u32  CRC-32 of bytes [HEADER_BYTES, image_bytes)
    44  n_sections     u16
    46  (zero)         u16
    48  header_crc32   u32  CRC-32 of the header with this field zero
    52  (zero)         12 bytes
    64  section table  n_sections x 48 bytes: kind u8, bits u8, (zero) u16, offset u32, nbytes u32, count u32,
                       name 32s
    ... sections       the descriptors (kind 0, UTF-8 JSON: the program's layer descriptors and neuron constants
                       as program_io.to_metadata writes them, each tensor's shape and packing width, and the
                       memory map) and one section per integer tensor (kind 1), packed two's complement at its
                       width, little-endian bit order: every weight tensor at the program's weight width, the
                       rest (biases, warps) at 32 bits.

The memory map gives each memory's contents with addresses: ``weight`` (the packed weights of the layers, the
readout and the score MLP, in that order), ``constants`` (biases and warps, 32-bit words) and ``state`` (one membrane of
``state_bits`` per neuron of every spiking layer). Every problem is a ContractError naming the offset and the
field; nothing of a refused image is used.
"""
from __future__ import annotations

import json
import math
import struct
import zlib

import numpy as np

from firmware_sim import spec
from firmware_sim.program import ContractError, Program
from firmware_sim.program_io import from_arrays, to_metadata

MAGIC = b"ETAFIMG\x00"
IMAGE_FORMAT = 1
HEADER = struct.Struct("<8sHH24sIIHHI12x")       # up to header_crc32, then 12 zero bytes: 64 bytes
HEADER_BYTES = HEADER.size
ENTRY = struct.Struct("<BBHIII32s")              # one section table entry: 48 bytes
DESCRIPTORS, TENSOR = 0, 1
CONSTANT_BITS = 32                               # biases and score parameters: 32-bit words
FIELDS = {"magic": 0, "format": 8, "header_bytes": 10, "contract": 12, "image_bytes": 36, "payload_crc32": 40,
          "n_sections": 44, "header_crc32": 48}   # field -> offset, for the errors


def pack(values: np.ndarray, bits: int) -> bytes:
    """Integers packed two's complement at ``bits`` each, little-endian bit order, zero-padded to a byte."""
    v = np.asarray(values, np.int64).ravel()
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if v.size and (v.min() < low or v.max() > high):
        raise ContractError(f"image: values {int(v.min())}..{int(v.max())} do not fit {bits}-bit two's complement")
    u = (v & ((1 << bits) - 1)).astype(np.uint64)
    bit_matrix = ((u[:, None] >> np.arange(bits, dtype=np.uint64)) & 1).astype(np.uint8)
    return np.packbits(bit_matrix.ravel(), bitorder="little").tobytes()


def unpack(data: bytes, count: int, bits: int) -> np.ndarray:
    """The inverse of :func:`pack`: (count,) int64."""
    flat = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[: count * bits]
    u = (flat.reshape(count, bits).astype(np.int64) << np.arange(bits, dtype=np.int64)).sum(axis=1)
    return np.where(u >= 1 << (bits - 1), u - (1 << bits), u)


def tensor_bits(name: str, program: Program) -> int:
    """A tensor's packing width: the program's weight width for weights, 32 bits for the rest."""
    return program.weight_bits if name.endswith("weight") else CONSTANT_BITS


def memory_map(program: Program, tensors: dict[str, np.ndarray], bits: dict[str, int]) -> dict:
    """{memory: {"bytes": total, "contents": [{name, address, bytes}]}} for the weight, constant and state memories."""
    memories = {"weight": [], "constants": [], "state": []}
    for name, values in tensors.items():
        memories["weight" if bits[name] == program.weight_bits and name.endswith("weight") else "constants"].append(
            (name, math.ceil(values.size * bits[name] / 8)))
    memories["state"] = [(layer.name, math.ceil(layer.n_out * program.state_bits / 8)) for layer in program.layers]
    out = {}
    for memory, items in memories.items():
        address, contents = 0, []
        for name, size in items:
            contents.append({"name": name, "address": address, "bytes": size})
            address += size
        out[memory] = {"bytes": address, "contents": contents}
    return out


def write_image(program: Program) -> bytes:
    """The chip image of a checked program (the layout in this module's docstring)."""
    meta, tensors = to_metadata(program)
    bits = {name: tensor_bits(name, program) for name in tensors}
    descriptors = json.dumps({"program": meta, "memory_map": memory_map(program, tensors, bits),
                              "tensors": {n: {"shape": list(t.shape), "bits": bits[n]} for n, t in tensors.items()}},
                             sort_keys=True).encode("utf-8")
    sections = [(DESCRIPTORS, 8, "descriptors", len(descriptors), descriptors)]
    sections += [(TENSOR, bits[n], n, t.size, pack(t, bits[n])) for n, t in tensors.items()]
    table_bytes = ENTRY.size * len(sections)
    offset, entries, body = HEADER_BYTES + table_bytes, [], []
    for kind, width, name, count, data in sections:
        if len(name.encode("ascii")) > 32:
            raise ContractError(f"image: tensor name {name!r} is longer than the table's 32 bytes")
        entries.append(ENTRY.pack(kind, width, 0, offset, len(data), count, name.encode("ascii")))
        body.append(data)
        offset += len(data)
    payload = b"".join(entries) + b"".join(body)
    image_bytes = HEADER_BYTES + len(payload)
    contract = spec.CONTRACT_VERSION.encode("ascii")
    fields = (MAGIC, IMAGE_FORMAT, HEADER_BYTES, contract, image_bytes, zlib.crc32(payload), len(sections), 0)
    header_crc = zlib.crc32(HEADER.pack(*fields, 0))
    return HEADER.pack(*fields, header_crc) + payload


def _refuse(source: str, field: str, message: str, offset: int | None = None) -> ContractError:
    at = FIELDS.get(field, offset)
    return ContractError(f"{source}: chip image, offset {at}, field {field}: {message}")


def _read_header(data: bytes, source: str) -> int:
    """The section count of a header that holds together (magic, format, contract, lengths, both CRCs)."""
    if len(data) < HEADER_BYTES:
        raise _refuse(source, "header_bytes", f"the image has {len(data)} bytes, fewer than the {HEADER_BYTES}-byte header")
    magic, fmt, header_bytes, contract, image_bytes, payload_crc, n_sections, _, header_crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise _refuse(source, "magic", f"{magic!r}, expected {MAGIC!r} (not an edge-taaf chip image)")
    if fmt != IMAGE_FORMAT or header_bytes != HEADER_BYTES:
        field = "format" if fmt != IMAGE_FORMAT else "header_bytes"
        raise _refuse(source, field, f"{fmt if field == 'format' else header_bytes}, expected "
                                     f"{IMAGE_FORMAT if field == 'format' else HEADER_BYTES}")
    if contract.rstrip(b"\x00") != spec.CONTRACT_VERSION.encode("ascii"):
        raise _refuse(source, "contract", f"{contract.rstrip(bytes(1)).decode('ascii', 'replace')!r}, this simulator runs "
                                          f"{spec.CONTRACT_VERSION!r}")
    if zlib.crc32(data[:48] + bytes(4) + data[52:HEADER_BYTES]) != header_crc:
        raise _refuse(source, "header_crc32", f"{header_crc:#010x} does not match the header (a corrupt header)")
    if image_bytes != len(data):
        raise _refuse(source, "image_bytes", f"declares {image_bytes} bytes, the image has {len(data)} (truncated or padded)")
    if zlib.crc32(data[HEADER_BYTES:]) != payload_crc:
        raise _refuse(source, "payload_crc32", f"{payload_crc:#010x} does not match the payload (corrupt sections)")
    return n_sections


def read_image(data: bytes, source: str = "<image>") -> Program:
    """Boot a Program from a chip image alone; a ContractError names the offset and the field of any problem."""
    data = bytes(data)
    n_sections = _read_header(data, source)
    sections = {}
    for i in range(n_sections):
        at = HEADER_BYTES + i * ENTRY.size
        if at + ENTRY.size > len(data):
            raise _refuse(source, f"section[{i}]", "the section table runs past the image's end", at)
        kind, bits, _, offset, nbytes, count, raw = ENTRY.unpack_from(data, at)
        name = raw.rstrip(b"\x00").decode("ascii", "replace")
        if offset + nbytes > len(data) or offset < HEADER_BYTES + n_sections * ENTRY.size:
            raise _refuse(source, f"section[{i}] ({name}).offset", f"bytes [{offset}, {offset + nbytes}) lie outside "
                                                                    f"the sections ({len(data)} bytes in all)", at + 4)
        if kind == TENSOR and (not 2 <= bits <= 64 or nbytes != math.ceil(count * bits / 8)):
            raise _refuse(source, f"section[{i}] ({name}).nbytes", f"{nbytes} bytes for {count} values of {bits} bits",
                          at + 8)
        sections[name] = (kind, bits, count, data[offset:offset + nbytes])
    if "descriptors" not in sections:
        raise _refuse(source, "descriptors", "no descriptor section", HEADER_BYTES)
    try:
        doc = json.loads(sections.pop("descriptors")[3].decode("utf-8"))
        shapes = {name: entry["shape"] for name, entry in doc["tensors"].items()}
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise _refuse(source, "descriptors", f"not the descriptor JSON ({err})", HEADER_BYTES) from None
    tensors = {}
    for name, (kind, bits, count, raw) in sections.items():
        if name not in shapes or math.prod(shapes[name]) != count:
            raise _refuse(source, f"tensor {name}", f"{count} values, the descriptors give shape {shapes.get(name)}",
                          HEADER_BYTES)
        tensors[name] = unpack(raw, count, bits).reshape(shapes[name])
    return from_arrays(doc["program"], tensors, f"{source} (chip image)")
