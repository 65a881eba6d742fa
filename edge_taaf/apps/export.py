"""edge-taaf-export: a trained checkpoint -> standard ONNX of the accelerator's integer model.

    edge-taaf-export checkpoint=outputs/train/<run>/checkpoint.pt out=model.onnx
    edge-taaf-export checkpoint=... out=model.onnx verify=300    # + exact check in onnxruntime

The checkpoint's own config gives the architecture, the input maxima (data.clip, data.clip_audio)
and, for a QAT run, the bit width. Prints one JSON line: file, bytes, weight bits, T, layers.
"""
from __future__ import annotations

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from edge_taaf import CONFIG_DIR
from edge_taaf.checkpoint import CheckpointError, load_checkpoint
from edge_taaf.apps.options import weight_bits
from firmware_sim import spec
from firmware_sim.program import ContractError
from quant.export import export_onnx
from quant.qmodel import build_quant_model, run_integer
from sensors.atomic import atomic_write
from sensors.schema import upgrade_data_config


def quant_model_from_checkpoint(checkpoint: str | Path, quant_cfg=None):
    """(integer model, its config, post_training) for a QAT checkpoint, or a float one plus ``quant_cfg``."""
    ckpt = load_checkpoint(checkpoint)
    cfg = OmegaConf.create(ckpt["config"])
    cfg.data = upgrade_data_config(cfg.data)      # a checkpoint of an older version: options added since, at their defaults
    trained_quant = weight_bits(cfg) is not None
    if not trained_quant:
        if quant_cfg is None or weight_bits({"quant": quant_cfg}) is None:
            raise ValueError(f"checkpoint {checkpoint} holds a float model: choose a bit width "
                             f"(quant.weight_bits={spec.WEIGHT_BITS_MIN}..{spec.WEIGHT_BITS_MAX})")
        cfg.quant = quant_cfg
    model = build_quant_model(cfg)
    model.load_init_state(ckpt["model"])
    return model, cfg, not trained_quant


def export_model(model, out: str | Path, post_training: bool = False):
    """Write ``out``; return (ONNX proto, summary dict)."""
    proto = export_onnx(model, out)
    return proto, {"onnx": str(out), "bytes": Path(out).stat().st_size, "weight_bits": model.bits, "T": model.T,
                   "post_training": post_training, "layers": [e["name"] for e in model.program()["layers"]]}


def resource_profile(name: str):
    """A chip profile by name: a shipped hardware config (configs/hardware/<name>.yaml) or speck / xylo."""
    from firmware_sim.hardware import load_hardware
    from firmware_sim.resources import PROFILES, hardware_profile

    if name in PROFILES:
        return PROFILES[name]
    known = sorted([*PROFILES, *(p.stem for p in (Path(CONFIG_DIR) / "hardware").glob("*.yaml"))])
    if not (Path(CONFIG_DIR) / "hardware" / f"{name}.yaml").is_file():
        raise ContractError(f"profile={name!r} is unknown; expected one of {known}")
    return hardware_profile(load_hardware(name, Path(CONFIG_DIR) / "hardware"))


def export_checkpoint(checkpoint: str | Path, out: str | Path, quant_cfg=None, verify: int = 0,
                      image: str | Path | None = None, profile: str | None = None,
                      nir: str | Path | None = None, nir_dt_s: float | None = None,
                      stream: str | Path | None = None) -> dict:
    """Build the quantized model of a checkpoint, check it against ``profile`` (a DesignRuleError before any
    file is written) and, with ``nir``, that NIR can carry it (quant.nir_export.NIRError, before any file is
    written); write ``out`` (and the chip image at ``image``, the NIR graph at ``nir``, one step being ``nir_dt_s``
    seconds) and return a summary dict."""
    if nir is not None and not (isinstance(nir_dt_s, (int, float)) and not isinstance(nir_dt_s, bool) and nir_dt_s > 0):
        raise ContractError(f"nir_dt_s={nir_dt_s!r}: writing nir={nir} needs the seconds of one accelerator step, a "
                            "positive number (e.g. nir_dt_s=1e-4, the time base snnTorch's NIR importer assumes)")
    model, cfg, post_training = quant_model_from_checkpoint(checkpoint, quant_cfg)
    resources = None
    if profile is not None:
        from firmware_sim.resources import check_resources
        resources = check_resources(model.to_program(), resource_profile(profile))
    if nir is not None:
        from quant.nir_export import check_exportable
        check_exportable(model.to_program())
    proto, summary = export_model(model, out, post_training)
    if resources is not None:
        summary["resources"] = {"profile": profile, "fits": resources["fits"]}
    if image is not None:
        summary |= write_chip_image(out, image)
    if nir is not None:
        from firmware_sim.loader import load_program
        from quant.nir_export import write_nir
        summary |= write_nir(load_program(out), nir, float(nir_dt_s))
    if stream is not None:
        from firmware_sim.loader import program_from_model
        from quant.ort_runner import streaming_model
        streaming, states = streaming_model(proto, program_from_model(proto, str(out)))
        atomic_write(stream, lambda f: f.write(streaming.SerializeToString()))
        summary |= {"stream": str(stream), "stream_states": states}
    if verify:
        from quant.ort_runner import OrtModel, compare
        from sensors.datasets import build_dataset
        test = build_dataset(cfg.data, "test").only(model.modalities)
        v, a = (None if x is None else x[:verify] for x in (test.vision, test.audio))
        diff = compare(OrtModel(proto).run(v, a), run_integer(model, v, a))
        n = min(verify, len(test.labels))
        if diff:
            raise ValueError(f"onnxruntime differs from the integer model on {diff} (first {n} test samples)")
        summary["verified_samples"] = n
    return summary


def write_chip_image(onnx_path: str | Path, image_path: str | Path) -> dict:
    """The chip image of the program an exported ONNX file holds, written atomically; the image booted back
    must be that program (firmware_sim.image.read_image), else a ContractError."""
    from firmware_sim.image import read_image, write_image
    from firmware_sim.loader import load_program

    data = write_image(load_program(onnx_path))
    if write_image(read_image(data, str(image_path))) != data:
        raise ContractError(f"{image_path}: the chip image does not boot back to the program it was written from")
    atomic_write(image_path, lambda f: f.write(data))
    return {"image": str(image_path), "image_bytes": len(data)}


@hydra.main(config_path=CONFIG_DIR, config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        summary = export_checkpoint(cfg.checkpoint, cfg.out, cfg.quant, int(cfg.verify), cfg.image, cfg.profile,
                                    cfg.nir, cfg.nir_dt_s, cfg.stream)
    except (CheckpointError, ValueError) as exc:  # contract, range and exactness errors are ValueErrors
        raise SystemExit(f"edge-taaf-export: {exc}") from None
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
