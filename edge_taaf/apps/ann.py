"""edge-taaf-ann: train the single-pass int8 ANN competitor, choose its size on validation, measure it with a
bit-exact integer run and price it (Hydra app).

    edge-taaf-ann data=fsdd_mnist                                   # the five sizes of configs/ann.yaml
    edge-taaf-ann data=fsdd_mnist sizes=null ann.hidden=16          # one size: ann alone
    edge-taaf-ann +experiment=robust                                # the robust recipe's data and corruptions
    edge-taaf-ann +experiment=robust data.split=speaker data.test_speakers=[jackson]

Measured like the SNN (docs/evaluation.md):
1. Every candidate size (``sizes``: each a partial override of ``ann``) is built from quant.ann_competitor,
   trained quantization-aware (AdamW, warm-up then cosine per step, ``trainer.corrupt`` on its inputs as
   the SNN's trainer applies it: edge_taaf/corrupt.py), exported to standard ONNX (quant/ann_onnx.py) and
   scored by that integer run in onnxruntime on the val split. The chosen size: the fewest MACs among
   those within ``select_tolerance`` of the best val accuracy. Training never reads the test split.
2. The chosen size alone meets the test split, once: onnxruntime's logits and the integer reference's
   (quant/ann_int.py, int64 numpy) are compared on every test sample (``int_exact`` 1 when all are equal);
   the accuracy is the argmax of onnxruntime's integer logits.
3. Its nonzero inputs per layer on the test split price one pass (dense and zero-skipping) on every
   configs/hardware/*.yaml with firmware_sim.ann_cost.

Options the ANN cannot take (an experiment written for the SNN: its model, loss, epochs per stage, the
attention balance) are listed under ``ignored_options`` with the reason, and printed. Writes into the run
folder, atomically: ann_result.json, ann_model.pt and ann_model.onnx (the chosen size), sizes/<name>.onnx
(every candidate, as scored), metrics.jsonl (per size and epoch: train loss, val accuracy).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from edge_taaf import CONFIG_DIR
from edge_taaf.augment import random_shift
from edge_taaf.checkpoint import atomic_torch_save
from edge_taaf.config import DEVICES, ConfigError, check_select_on, corrupt_settings
from edge_taaf.corrupt import corrupt_batch
from edge_taaf.dataset import PairedSpikeDataset
from edge_taaf.train import model_data, pick_device, seed_everything, to_time_major
from firmware_sim.ann_cost import price_ann
from firmware_sim.energy import HardwareConfigError, load_hardware
from firmware_sim.program import ContractError
from quant.ann_competitor import AnnArchError, AnnCompetitor, arch_from_dict, measure_nonzero
from quant.ann_int import ann_program, reference_logits
from quant.ann_onnx import AnnOrt, save_ann_onnx
from sensors.atomic import atomic_write_text
from sensors.data_options import DataSettings, parse_data_config
from sensors.options import MODALITIES, check_choice, check_number

RESULT = "ann_result.json"
ONNX_FILE = "ann_model.onnx"
# What an experiment written for the SNN may hold that the ANN does not take, and why.
SNN_ONLY = {
    "model": "the SNN's architecture (the ANN's is ann and sizes)",
    "loss": "the SNN's TAAF / OGM-GE losses over time steps and attention (the ANN: cross-entropy of its logits)",
    "float_epochs": "the SNN's float stage (the ANN trains quantization-aware from the start: trainer.epochs)",
    "qat_epochs": "the SNN's QAT stage (the ANN trains quantization-aware from the start: trainer.epochs)",
    "qat_lr": "the SNN's QAT stage",
    "trainer.modal_balance": "balances taaf_modal's attention mass between the sensors; the ANN has no attention",
    "trainer.rate_targets": "firing-rate targets of spiking layers; the ANN has none",
    "trainer.spike_penalty": "a firing-rate penalty; the ANN has no spikes",
    "trainer.rate_penalty": "a firing-rate penalty; the ANN has no spikes",
}
ANN_KEYS = {"data", "sensor", "seed", "ann", "sizes", "select_on", "select_tolerance", "trainer", "eval_batch_size"}


def candidate_archs(cfg) -> dict:
    """{size name: AnnArch}: each of ``sizes`` merged over ``ann`` (``sizes`` null or empty: ann alone, as
    "ann"). AnnArchError naming sizes.<name> and the option at fault."""
    base = OmegaConf.to_container(cfg.ann, resolve=True)
    sizes = cfg.get("sizes")
    if not sizes:
        return {"ann": arch_from_dict(base)}
    if not OmegaConf.is_dict(sizes):
        raise AnnArchError(f"sizes={sizes!r}; expected a mapping of size names to overrides of ann (or null)")
    out = {}
    for name, override in OmegaConf.to_container(sizes, resolve=True).items():
        override = override or {}
        unknown = sorted(set(override) - set(base) - {"vision", "audio", "hidden", "weight_bits", "act_bits"})
        if unknown:
            raise AnnArchError(f"sizes.{name}.{unknown[0]} is unknown; expected vision, audio, hidden, weight_bits, act_bits")
        try:
            out[str(name)] = arch_from_dict({**base, **override})
        except AnnArchError as exc:
            raise AnnArchError(f"sizes.{name}: {exc}") from None
    return out


def check_ann_config(cfg) -> DataSettings:
    """ConfigError naming the option for any invalid size, selection, trainer or data value; returns the data
    config parsed once, for the builders."""
    candidate_archs(cfg)
    check_select_on(cfg)                  # sizes are chosen on val; anything else names select_on
    check_number("select_tolerance", cfg.select_tolerance, 0, 1)     # an accuracy difference
    tr = cfg.trainer
    for name in ("epochs", "batch_size"):
        check_number(f"trainer.{name}", tr[name], 1, integer=True)
    check_number("trainer.lr", tr.lr, 0, low_open=True)
    check_number("trainer.lr_min", tr.lr_min, 0, tr.lr)
    for name in ("warmup_steps", "augment_shift"):
        check_number(f"trainer.{name}", tr[name], 0, integer=True)
    check_number("trainer.weight_decay", tr.weight_decay, 0)
    check_number("eval_batch_size", cfg.eval_batch_size, 1, integer=True)
    check_number("trainer.grad_clip", tr.grad_clip, 0, low_open=True, optional=True)
    check_choice("trainer.device", tr.device, DEVICES)
    data = parse_data_config(cfg.data)    # T, clips, splits, sensors: the data set's own rules
    held = list(cfg.data.modalities)
    if sorted(held) != sorted(MODALITIES):
        raise ConfigError(f"data={cfg.data.name} holds {held}; the ANN competitor needs both audio and vision")
    corrupt_settings(cfg)                 # trainer.corrupt, checked as the SNN's trainer checks it
    return data


def ignored_options(cfg) -> dict[str, str]:
    """Options in cfg the ANN does not take (e.g. from +experiment=robust), each with the reason."""
    out = {}
    for key in cfg:
        if key not in ANN_KEYS:
            out[str(key)] = SNN_ONLY.get(str(key), "not an option of edge-taaf-ann")
    for key in cfg.trainer:
        dotted = f"trainer.{key}"
        if dotted in SNN_ONLY:
            out[dotted] = SNN_ONLY[dotted]
    return out


def choose_size(val_acc: dict[str, float], macs: dict[str, int], tolerance: float = 0.0) -> str:
    """The size with the fewest MACs (then name) among those whose val accuracy is within ``tolerance`` of the
    best; it sees validation scores only."""
    best = max(val_acc.values())
    fit = [name for name, acc in val_acc.items() if acc >= best - tolerance]
    return min(fit, key=lambda name: (macs[name], name))


def build_ann(cfg, arch, train_set: PairedSpikeDataset) -> AnnCompetitor:
    """The competitor for ``arch`` and the data's shapes; input counts up to T x clip (vision), clip_audio (audio)."""
    data = train_set.data
    return AnnCompetitor(arch, data.vision_pool.shape[2:], data.audio.shape[1:], int(cfg.data.T) * int(cfg.data.clip),
                         int(cfg.data.clip_audio))


def lr_at(step: int, total: int, tr) -> float:
    """Linear warm-up over trainer.warmup_steps, then cosine from trainer.lr to trainer.lr_min at the last step."""
    if step < tr.warmup_steps:
        return tr.lr * (step + 1) / tr.warmup_steps
    frac = (step - tr.warmup_steps) / max(total - tr.warmup_steps - 1, 1)
    return tr.lr_min + 0.5 * (tr.lr - tr.lr_min) * (1 + math.cos(math.pi * min(frac, 1.0)))


def _optimizer(model, tr) -> torch.optim.Optimizer:
    """AdamW; weight decay on the weight tensors only (not on the quantizers' learned scales)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": tr.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=tr.lr)


@torch.no_grad()
def accuracy(model: AnnCompetitor, dataset: PairedSpikeDataset, batch_size: int, device) -> float:
    """Accuracy of the quantized torch model (eval mode: Brevitas' power-of-two scales, int weights); training's
    monitor on the val split (the reported numbers come from the integer run)."""
    model.eval()
    hits = 0
    for idx in torch.arange(len(dataset)).split(batch_size):
        vision, audio, y = dataset[idx]
        v, a = to_time_major(vision, audio, device)
        hits += int((model(v, a).argmax(1) == y.to(device)).sum())
    return hits / max(len(dataset), 1)


def train_ann(cfg, model: AnnCompetitor, train_set, val_set, device, log, size: str = "ann") -> list[dict]:
    """Train in place, corrupting the inputs as ``trainer.corrupt`` says; one metrics row per epoch (train loss,
    val accuracy of the quantized model), each passed to ``log``."""
    tr = cfg.trainer
    opt = _optimizer(model, tr)
    corruption = corrupt_settings(cfg)
    clips = {"vision": int(cfg.data.clip), "audio": int(cfg.data.clip_audio)}
    steps_per_epoch = math.ceil(len(train_set) / tr.batch_size)
    total, step, history = tr.epochs * steps_per_epoch, 0, []
    for epoch in range(tr.epochs):
        t0 = time.time()
        model.train()
        if cfg.data.get("repair_each_epoch", False) and train_set.can_repair:
            train_set.repair(epoch)           # a new same-class vision pairing per epoch (augmentation)
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        corrupt_gen = torch.Generator().manual_seed((cfg.seed * 100_003 + epoch) * 1_009 + 31)   # as the SNN's
        batches = torch.randperm(len(train_set), generator=gen).split(tr.batch_size)
        loss_sum = 0.0
        bar = tqdm(batches, desc=f"{size} epoch {epoch + 1}/{tr.epochs}", disable=not tr.progress, leave=False)
        for idx in bar:
            vision, audio, y = train_set[idx]
            vision = random_shift(vision, tr.augment_shift, gen)
            v, a = to_time_major(vision, audio, device)
            if corruption.active:
                v, a, _ = corrupt_batch(v, a, corruption, clips, corrupt_gen, y)
            lr = lr_at(step, total, tr)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = F.cross_entropy(model(v, a), y.to(device))
            if not torch.isfinite(loss):
                raise RuntimeError(f"size {size}: loss is {loss.item()} at epoch {epoch + 1}; stopping")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tr.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tr.grad_clip)
            opt.step()
            step += 1
            loss_sum += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
        row = {"size": size, "epoch": epoch + 1, "train_loss": loss_sum / max(len(batches), 1), "lr": lr,
               "val_acc": accuracy(model, val_set, cfg.eval_batch_size, device), "seconds": time.time() - t0}
        history.append(row)
        log(row)
        print(f"{size} epoch {epoch + 1}: loss {row['train_loss']:.4f} val (int8 torch) {row['val_acc']:.4f} "
              f"({row['seconds']:.1f} s)", flush=True)
    return history


def integer_accuracy(runner: AnnOrt, data, batch_size: int) -> tuple[float, np.ndarray]:
    """(accuracy, int64 logits (N, K)) of the exported competitor in onnxruntime over a PairedSpikes split."""
    logits = runner.run(data.vision, data.audio, batch_size)
    return float((logits.argmax(1) == data.labels).mean()) if len(logits) else 0.0, logits


def exactness(program, logits: np.ndarray, data, batch_size: int) -> dict:
    """``int_exact`` 1 when onnxruntime's logits equal the integer reference's on every sample, else 0, with the
    number of differing samples (or the reference's error: an accumulator past float32's exact range)."""
    try:
        ref = reference_logits(program, np.swapaxes(data.vision, 0, 1), np.swapaxes(data.audio, 0, 1), batch_size)
    except ContractError as exc:
        return {"int_exact": 0, "int_differing_samples": None, "int_exact_error": str(exc)}
    differing = int((ref != logits).any(axis=1).sum())
    return {"int_exact": int(differing == 0), "int_differing_samples": differing}


def hardware_configs() -> list:
    """Every shipped hardware config (configs/hardware/*.yaml), by name."""
    return [load_hardware(path) for path in sorted((Path(CONFIG_DIR) / "hardware").glob("*.yaml"))]


def _summary(priced: dict | None) -> dict | None:
    if priced is None:
        return None
    keys = ("energy_uj", "compute_uj", "memory_uj", "static_uj", "dominant", "cycles", "latency_us", "by_layer")
    return {k: priced[k] for k in keys}


def _price(model: AnnCompetitor, test_set: PairedSpikeDataset, cfg, device) -> tuple[list, dict]:
    """(layer shapes with the test split's nonzeros, energy per hardware config: dense and zero-skip)."""
    vision, audio, _ = test_set[torch.arange(len(test_set))]
    nonzero = measure_nonzero(model, *to_time_major(vision, audio, device), batch_size=cfg.eval_batch_size)
    shapes = model.layer_shapes(nonzero)
    energy = {}
    for hw in hardware_configs():
        priced = price_ann(shapes, hw)
        energy[hw.name] = {"dense": _summary(priced["dense"]), "zero_skip": _summary(priced["zero_skip"])}
    return shapes, energy


def select_size(cfg, run_dir: Path, train_set, val_set, device) -> dict:
    """Train every candidate, export it and score its integer run on val; returns the chosen size's model,
    program, history and the per-size table (val accuracy, weights, MACs; no test accuracy)."""
    rows: list[dict] = []

    def log(row):
        rows.append(row)
        atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    sizes, kept = {}, {}
    for name, arch in candidate_archs(cfg).items():
        seed_everything(cfg.seed)
        model = build_ann(cfg, arch, train_set).to(device)
        t0 = time.time()
        history = train_ann(cfg, model, train_set, val_set, device, log, name)
        program = ann_program(model.cpu())      # raises if a weight or scale left the power-of-two int grid
        save_ann_onnx(program, run_dir / "sizes" / f"{name}.onnx")
        val_acc, _ = integer_accuracy(AnnOrt(run_dir / "sizes" / f"{name}.onnx"), val_set.data, cfg.eval_batch_size)
        sizes[name] = {"val_acc": val_acc, "weights": model.weight_count(), "macs": model.mac_count(),
                       "train_seconds": time.time() - t0, "arch": asdict(arch)}
        kept[name] = (model, program, history)
        print(f"size {name}: val accuracy (integer run) {val_acc:.4f}, {sizes[name]['weights']} weights, "
              f"{sizes[name]['macs']} MACs", flush=True)
    chosen = choose_size({n: s["val_acc"] for n, s in sizes.items()}, {n: s["macs"] for n, s in sizes.items()},
                         float(cfg.get("select_tolerance", 0.0)))
    model, program, history = kept[chosen]
    return {"chosen": chosen, "sizes": sizes, "model": model.to(device), "program": program, "history": history}


def run_ann(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Choose the size on val, read the chosen one on test once (integer run), price it; write
    run_dir/ann_result.json; return its content."""
    run_dir = Path(run_dir)
    data = check_ann_config(cfg)
    ignored = ignored_options(cfg)
    for key, why in ignored.items():
        print(f"edge-taaf-ann: ignoring {key}: {why}", flush=True)
    device = pick_device(cfg.trainer.device)
    train_set = PairedSpikeDataset(model_data(cfg, "train", MODALITIES, data))
    val_set = PairedSpikeDataset(model_data(cfg, "val", MODALITIES, data))
    pick = select_size(cfg, run_dir, train_set, val_set, device)
    model, program, chosen = pick["model"], pick["program"], pick["chosen"]
    save_ann_onnx(program, run_dir / ONNX_FILE)
    atomic_torch_save({"model": model.state_dict(), "config": OmegaConf.to_yaml(cfg), "size": chosen},
                      run_dir / "ann_model.pt")
    test_set = PairedSpikeDataset(model_data(cfg, "test", MODALITIES, data))          # read once, for the chosen size
    acc, logits = integer_accuracy(AnnOrt(run_dir / ONNX_FILE), test_set.data, cfg.eval_batch_size)
    exact = exactness(program, logits, test_set.data, cfg.eval_batch_size)
    shapes, energy = _price(model, test_set, cfg, device)
    result = {
        "data": str(cfg.data.name), "synthetic": str(cfg.data.name).startswith("synth"),
        "split": str(cfg.data.get("split", "test")), "test_samples": len(test_set), "val_samples": len(val_set),
        "selected_on": check_select_on(cfg), "select_tolerance": float(cfg.get("select_tolerance", 0.0)),
        "chosen": chosen, "sizes": pick["sizes"], "val_acc": pick["sizes"][chosen]["val_acc"],
        "accuracy": acc, "test_acc": acc, "accuracy_source": "onnxruntime integer run of ann_model.onnx", **exact,
        "onnx": ONNX_FILE, "weights": model.weight_count(),
        "weight_bytes": model.weight_count() * model.arch.weight_bits / 8, "macs": model.mac_count(),
        "nonzero_macs": sum(s.nonzero_macs for s in shapes), "weight_bits": model.arch.weight_bits,
        "act_bits": model.arch.act_bits, "input_bits": model.in_bits,
        "layers": [s.as_dict() for s in shapes], "energy": energy,
        "energy_uj": {name: {"dense": e["dense"]["energy_uj"], "zero_skip": e["zero_skip"]["energy_uj"]}
                      for name, e in energy.items()},
        "dominant": {name: {"dense": e["dense"]["dominant"], "zero_skip": e["zero_skip"]["dominant"]}
                     for name, e in energy.items()},
        "corrupt": json.loads(json.dumps(asdict(corrupt_settings(cfg)))),      # trainer.corrupt as trained
        "ignored_options": ignored, "history": pick["history"],
        "train_seconds": sum(s["train_seconds"] for s in pick["sizes"].values()),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    atomic_write_text(run_dir / RESULT, json.dumps(result, indent=2) + "\n")
    return result


def headline(result: dict) -> dict:
    """The one-line summary printed last: the choice, the integer run's accuracy, size and energy per hardware."""
    return {"data": result["data"], "synthetic": result["synthetic"], "selected_on": result["selected_on"],
            "chosen": result["chosen"], "val_acc": result["val_acc"], "accuracy": result["accuracy"],
            "int_exact": result["int_exact"], "weights": result["weights"], "macs": result["macs"],
            "energy_uj": result["energy_uj"], "dominant": result["dominant"]}


# CONFIG_DIR is an absolute path (the shipped edge_taaf.configs package), as in the other apps.
@hydra.main(config_path=CONFIG_DIR, config_name="ann", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir)
    try:
        result = run_ann(cfg, run_dir)
    except (ConfigError, HardwareConfigError) as exc:
        raise SystemExit(f"edge-taaf-ann: {exc}") from None
    for name, e in result["energy"].items():
        print(f"{name}: dense {e['dense']['energy_uj']:.4f} uJ ({e['dense']['dominant']} dominates), "
              f"zero-skip {e['zero_skip']['energy_uj']:.4f} uJ ({e['zero_skip']['dominant']}), "
              f"{e['dense']['latency_us']:.1f} us dense")
    print(f"chosen on val: {result['chosen']} (val {result['val_acc']:.4f}); test accuracy (integer run in "
          f"onnxruntime) {result['accuracy']:.4f}, int_exact {result['int_exact']}, {result['weights']} weights, "
          f"{result['macs']} MACs; {run_dir / RESULT}")
    print(json.dumps(headline(result)), flush=True)


if __name__ == "__main__":
    main()
