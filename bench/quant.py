"""Quantization benchmark on fsdd_mnist (official split): float vs integer accuracy per bit width,
int8 weight memory, and onnxruntime == integer mode on the whole test split.

1. a float checkpoint: ``--checkpoint`` (its config must use data fsdd_mnist, split official), or a
   float run of ``--float-epochs`` epochs trained here;
2. per bit width (8, 6, 4): post-training integer accuracy, then QAT fine-tuning from the float
   weights (``edge-taaf-train quant.weight_bits=B init_from=...``, ``--qat-epochs`` epochs at ``--qat-lr``)
   and the integer-mode accuracy of the result (argmax of the integer y);
3. the int8 model exported to ONNX and run by onnxruntime on all test samples: every output
   (logits, step logits, scores, attention, every layer's spikes) compared with np.array_equal.

Run from the repo root. On 2 CPU cores a float epoch takes about 10 s and a QAT epoch about 11 s, so
the defaults (20 float epochs, 3 QAT epochs per bit width) take about 7 minutes:
    EDGE_TAAF_DATA=../shared/data python -m bench.quant --checkpoint <float checkpoint.pt>
    EDGE_TAAF_DATA=../shared/data python -m bench.quant --float-epochs 20 --qat-epochs 3
The last line printed is one JSON object (accuracies are fractions, the gap in percentage points).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path


import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from edge_taaf import CONFIG_DIR
from edge_taaf.checkpoint import load_checkpoint
from edge_taaf.model import TwoModalitySNN
from edge_taaf.apps.train import run_training
from edge_taaf.train import evaluate
from quant.export import export_onnx
from quant.ort_runner import OrtModel, compare
from quant.qmodel import build_quant_model, run_integer
from edge_taaf.dataset import PairedSpikeDataset
from sensors.datasets import build_dataset
from sensors.schema import upgrade_data_config

CONFIGS = Path(CONFIG_DIR)
BASE = ["data=fsdd_mnist", "data.split=official", "trainer.progress=false", "trainer.device=cpu"]


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def float_accuracy(ckpt: dict, cfg, test) -> float:
    model = TwoModalitySNN(OmegaConf.to_container(cfg.model, resolve=True))
    model.load_state_dict(ckpt["model"])
    return evaluate(model, PairedSpikeDataset(test), 100, "cpu")["fused_acc"]


def integer_accuracy(model, test) -> float:
    logits = run_integer(model, test.vision, test.audio, batch_size=100)["logits"]
    return float((logits.argmax(1) == test.labels).mean())   # argmax: lowest index on ties, as the contract


def weight_bytes(program: dict, weights: dict[str, np.ndarray]) -> int:
    """Bytes of the accelerator's parameters: weights at weight_bits, biases as int32."""
    bias = {v for k, v in program["readout"].items() if k.endswith("_bias")}
    bits = sum(w.size * (32 if name in bias else program["weight_bits"]) for name, w in weights.items())
    return math.ceil(bits / 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", help="float checkpoint.pt (fsdd_mnist, official split); else train one here")
    ap.add_argument("--float-epochs", type=int, default=20)
    ap.add_argument("--qat-epochs", type=int, default=3)
    ap.add_argument("--qat-lr", type=float, default=3e-4)
    ap.add_argument("--bits", type=int, nargs="+", default=[8, 6, 4])
    ap.add_argument("--out", default="outputs/bench_quant")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    t_start = time.time()
    report = {"data": "fsdd_mnist", "split": "official", "threads": args.threads, "qat_epochs": args.qat_epochs,
              "qat_lr": args.qat_lr}

    if args.checkpoint:
        ckpt_path = Path(args.checkpoint)
        ckpt = load_checkpoint(ckpt_path)
        cfg = OmegaConf.create(ckpt["config"])
        cfg.data = upgrade_data_config(cfg.data)      # a checkpoint of an older version: options added since, at their defaults
        if cfg.data.name != "fsdd_mnist" or cfg.data.split != "official":
            raise SystemExit(f"{ckpt_path}: trained on data {cfg.data.name}/{cfg.data.get('split')}; "
                             "this bench needs fsdd_mnist, split official")
        if cfg.get("quant") and cfg.quant.get("weight_bits") is not None:
            raise SystemExit(f"{ckpt_path} is a quantized run ({cfg.quant.weight_bits} bits); give a float checkpoint")
        report["float_epochs"] = int(ckpt["epoch"]) + 1
    else:
        cfg = compose_train([*BASE, f"trainer.epochs={args.float_epochs}"])
        t0 = time.time()
        run_training(cfg, out / "float")
        report["float_train_s"] = round(time.time() - t0, 1)
        ckpt_path = out / "float" / "checkpoint.pt"
        ckpt = load_checkpoint(ckpt_path)
        report["float_epochs"] = args.float_epochs
    test = build_dataset(cfg.data, "test")
    report["test_samples"] = int(test.labels.size)
    report["float_acc"] = float_accuracy(ckpt, cfg, test)

    # QAT fine-tuning keeps the float run's model, data and loss; only quant, epochs and lr change.
    base = OmegaConf.to_container(cfg, resolve=False)
    for bits in args.bits:
        qcfg = OmegaConf.create(base)
        qcfg.quant = {"weight_bits": bits}
        qcfg.init_from, qcfg.resume = str(ckpt_path), False
        qcfg.trainer.epochs, qcfg.trainer.lr = args.qat_epochs, args.qat_lr
        qcfg.trainer.lr_min = min(qcfg.trainer.lr_min, args.qat_lr)
        qcfg.trainer.init_firing_rate, qcfg.trainer.progress, qcfg.trainer.device = None, False, "cpu"
        ptq = build_quant_model(qcfg)
        ptq.load_init_state(ckpt["model"])
        report[f"int{bits}_ptq_acc"] = integer_accuracy(ptq, test)
        t0 = time.time()
        run_training(qcfg, out / f"int{bits}")
        report[f"int{bits}_qat_s"] = round(time.time() - t0, 1)
        model = build_quant_model(qcfg)
        model.load_init_state(load_checkpoint(out / f"int{bits}" / "checkpoint.pt")["model"])
        report[f"int{bits}_acc"] = integer_accuracy(model, test)
        if bits == 8:
            program, weights = model.export_plan()
            report["weight_bytes"] = weight_bytes(program, weights)
            proto = export_onnx(model, out / "int8.onnx")
            t0 = time.time()
            diff = compare(OrtModel(proto, threads=args.threads).run(test.vision, test.audio, 100),
                           run_integer(model, test.vision, test.audio, 100))
            report["onnx_ort_s"] = round(time.time() - t0, 1)
            report["onnx_ort_exact"] = int(not diff)
            report["onnx_ort_differs"] = diff
    if "int8_acc" in report:
        report["int8_gap_pp"] = round(100 * (report["float_acc"] - report["int8_acc"]), 3)
    report["seconds"] = round(time.time() - t_start, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
