"""The chip image (firmware_sim/image.py): the simulator boots from it alone, exactly as from the ONNX file, and
refuses a corrupt, truncated or foreign image naming the offset and the field."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from firmware_sim import image, spec
from firmware_sim.loader import load_program
from firmware_sim.program import ContractError
from firmware_sim.run import simulate
from quant import export
from tests.support.quant_models import tiny_model

T = 6


def exported(tmp_path, fusion="taaf", bits=8, seed=0, **kw):
    path = tmp_path / f"{fusion}{bits}.onnx"
    export.export_onnx(tiny_model(fusion, bits, 1.0, seed, T, **kw), path)
    return load_program(path)


def spikes(seed=0):
    rng = np.random.default_rng(seed)
    return {"vision": (rng.random((T, 5, 2, 34, 34)) < 0.15).astype(np.uint8),
            "audio": (rng.random((T, 5, 64)) * 9 * (rng.random((T, 5, 64)) < 0.3)).astype(np.uint8)}


@pytest.mark.parametrize("fusion, bits", [("taaf", 8), ("concat", 4), ("taaf_modal", 6)])
def test_the_simulator_booted_from_the_image_equals_the_onnx_run(tmp_path, fusion, bits):
    program = exported(tmp_path, fusion, bits)
    data = image.write_image(program)
    booted = image.read_image(data, "model.img")
    x = spikes()
    want, got = simulate(program, x).outputs(), simulate(booted, x).outputs()
    assert set(want) == set(got) and all(np.array_equal(want[k], got[k]) for k in want)
    assert image.write_image(booted) == data                      # the image holds the whole program


def test_weights_are_packed_at_their_width_and_the_memory_map_covers_every_memory(tmp_path):
    program = exported(tmp_path, "taaf", 4)
    data = image.write_image(program)
    import json
    n = struct.unpack_from("<H", data, 44)[0]
    entries = [image.ENTRY.unpack_from(data, image.HEADER_BYTES + i * image.ENTRY.size) for i in range(n)]
    doc = json.loads(data[entries[0][3]:entries[0][3] + entries[0][4]])
    layer = program.layers[0]
    packed = [e for e in entries if e[6].rstrip(b"\0").decode() == f"{layer.name}.weight"][0]
    assert packed[1] == 4 and packed[4] == -(-layer.weight.size * 4 // 8)
    memory = doc["memory_map"]
    assert {c["name"] for c in memory["state"]["contents"]} == {lay.name for lay in program.layers}
    assert memory["state"]["bytes"] == sum(-(-lay.n_out * program.state_bits // 8) for lay in program.layers)
    addresses = [c["address"] for c in memory["weight"]["contents"]]
    assert addresses == sorted(addresses) and addresses[0] == 0


def test_pack_and_unpack_are_inverse_at_every_width():
    rng = np.random.default_rng(3)
    for bits in (2, 4, 5, 8, 16, 32):
        v = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), 101)
        assert np.array_equal(image.unpack(image.pack(v, bits), v.size, bits), v)
    with pytest.raises(ContractError, match="do not fit 4-bit"):
        image.pack(np.array([8]), 4)


def resealed(data: bytes) -> bytes:
    """``data`` with both CRCs recomputed (a well-formed image whose content is wrong)."""
    head = bytearray(data[:image.HEADER_BYTES])
    struct.pack_into("<I", head, 36, len(data))
    struct.pack_into("<I", head, 40, zlib.crc32(data[image.HEADER_BYTES:]))
    struct.pack_into("<I", head, 48, 0)
    struct.pack_into("<I", head, 48, zlib.crc32(bytes(head)))
    return bytes(head) + data[image.HEADER_BYTES:]


def test_a_corrupt_truncated_or_foreign_image_is_refused_naming_offset_and_field(tmp_path):
    data = bytearray(image.write_image(exported(tmp_path)))
    flip = lambda at: bytes(data[:at]) + bytes([data[at] ^ 0x10]) + bytes(data[at + 1:])   # noqa: E731
    cases = [
        (flip(0), "offset 0, field magic"),
        (flip(44), "offset 48, field header_crc32"),                         # a flipped bit in n_sections
        (bytes(data[:-100]), "offset 36, field image_bytes: declares"),      # truncated
        (flip(len(data) - 3), "offset 40, field payload_crc32"),             # a flipped weight bit
        (b"ETAF", "offset 10, field header_bytes: the image has 4 bytes"),
    ]
    foreign = bytearray(data)
    struct.pack_into("<24s", foreign, 12, b"edge-taaf-int/1")
    cases.append((bytes(foreign), f"offset 12, field contract: 'edge-taaf-int/1', this simulator runs {spec.CONTRACT_VERSION!r}"))
    # a weight section shorter than it declares, in an otherwise well-formed image
    n = struct.unpack_from("<H", data, 44)[0]
    at = image.HEADER_BYTES + (n - 1) * image.ENTRY.size
    short = bytearray(data)
    struct.pack_into("<I", short, at + 8, struct.unpack_from("<I", data, at + 8)[0] - 1)
    cases.append((resealed(bytes(short)), f"offset {at + 8}, field section[{n - 1}]"))
    for bad, fragment in cases:
        with pytest.raises(ContractError) as err:
            image.read_image(bad, "model.img")
        assert "model.img: chip image, " + fragment in str(err.value), str(err.value)
