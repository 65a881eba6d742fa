"""edge-taaf-ann: train the single-pass int8 ANN competitor, measure it and price it (Hydra app).

    edge-taaf-ann data=fsdd_mnist
    edge-taaf-ann data=fsdd_mnist ann.vision.channels=[4,8,8] ann.hidden=16 trainer.epochs=20

Builds quant.ann_competitor.AnnCompetitor for the data set (count frame of the window + cochlea count
map), trains it quantization-aware (AdamW, warm-up then cosine learning rate per step), evaluates the
quantized model's test accuracy, counts the nonzero inputs of every layer on the test split, and prices
one pass (dense and zero-skipping) on every configs/hardware/*.yaml with firmware_sim.ann_cost.
Writes into the run folder, atomically: ann_result.json (accuracy, weights, MACs, energy per hardware,
the dominant term, per-layer shapes, the config), ann_model.pt (weights + config) and metrics.jsonl.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from edge_taaf import CONFIG_DIR
from edge_taaf.augment import random_shift
from edge_taaf.checkpoint import atomic_torch_save
from edge_taaf.config import ConfigError
from edge_taaf.dataset import PairedSpikeDataset
from edge_taaf.train import model_data, pick_device, seed_everything, to_time_major
from firmware_sim.ann_cost import price_ann
from firmware_sim.energy import HardwareConfigError, load_hardware
from quant.ann_competitor import AnnCompetitor, arch_from_dict, measure_nonzero
from sensors.atomic import atomic_write_text

MODALITIES = ("audio", "vision")
RESULT = "ann_result.json"


def _check_number(name: str, value, ok, expected: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} is not a number; expected {expected}")
    if not ok(value):
        raise ConfigError(f"{name}={value} is invalid; expected {expected}")


def check_ann_config(cfg) -> None:
    """ConfigError naming the option for any invalid architecture or trainer value."""
    arch_from_dict(OmegaConf.to_container(cfg.ann, resolve=True))
    tr = cfg.trainer
    for name, value, ok, expected in [
            ("trainer.epochs", tr.epochs, lambda x: x >= 1 and x == int(x), "a whole number >= 1"),
            ("trainer.batch_size", tr.batch_size, lambda x: x >= 1 and x == int(x), "a whole number >= 1"),
            ("trainer.lr", tr.lr, lambda x: x > 0, "a number > 0"),
            ("trainer.lr_min", tr.lr_min, lambda x: 0 <= x <= tr.lr, "a number in [0, trainer.lr]"),
            ("trainer.warmup_steps", tr.warmup_steps, lambda x: x >= 0 and x == int(x), "a whole number >= 0"),
            ("trainer.weight_decay", tr.weight_decay, lambda x: x >= 0, "a number >= 0"),
            ("trainer.augment_shift", tr.augment_shift, lambda x: x >= 0 and x == int(x), "a whole number >= 0"),
            ("eval_batch_size", cfg.eval_batch_size, lambda x: x >= 1 and x == int(x), "a whole number >= 1")]:
        _check_number(name, value, ok, expected)
    if tr.grad_clip is not None:
        _check_number("trainer.grad_clip", tr.grad_clip, lambda x: x > 0, "a number > 0 or null")
    if tr.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"trainer.device={tr.device!r} is invalid; expected auto, cpu or cuda")
    held = list(cfg.data.get("modalities") or [])
    if sorted(held) != sorted(MODALITIES):
        raise ConfigError(f"data={cfg.data.name} holds {held}; the ANN competitor needs both audio and vision")
    for key in ("T", "clip", "clip_audio"):
        value = cfg.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"data.{key}={value!r}; the ANN's input widths need a whole number >= 1")


def build_ann(cfg, train_set: PairedSpikeDataset) -> AnnCompetitor:
    """The competitor for cfg.ann and the data's shapes; input counts up to T x clip (vision), clip_audio (audio)."""
    data = train_set.data
    return AnnCompetitor(arch_from_dict(OmegaConf.to_container(cfg.ann, resolve=True)), data.vision_pool.shape[2:],
                         data.audio.shape[1:], int(cfg.data.T) * int(cfg.data.clip), int(cfg.data.clip_audio))


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
    """Test accuracy of the quantized model (eval mode: Brevitas' power-of-two scales, int weights)."""
    model.eval()
    hits = 0
    for idx in torch.arange(len(dataset)).split(batch_size):
        vision, audio, y = dataset[idx]
        v, a = to_time_major(vision, audio, device)
        hits += int((model(v, a).argmax(1) == y.to(device)).sum())
    return hits / max(len(dataset), 1)


def train_ann(cfg, model: AnnCompetitor, train_set, test_set, device, run_dir: Path) -> list[dict]:
    """Train in place; one metrics row per epoch (train loss, test accuracy of the quantized model)."""
    tr = cfg.trainer
    opt = _optimizer(model, tr)
    steps_per_epoch = math.ceil(len(train_set) / tr.batch_size)
    total, step, history = tr.epochs * steps_per_epoch, 0, []
    for epoch in range(tr.epochs):
        t0 = time.time()
        model.train()
        if cfg.data.get("repair_each_epoch", False) and train_set.can_repair:
            train_set.repair(epoch)           # a new same-class vision pairing per epoch (augmentation)
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        batches = torch.randperm(len(train_set), generator=gen).split(tr.batch_size)
        loss_sum = 0.0
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{tr.epochs}", disable=not tr.progress, leave=False)
        for idx in bar:
            vision, audio, y = train_set[idx]
            vision = random_shift(vision, tr.augment_shift, gen)
            v, a = to_time_major(vision, audio, device)
            lr = lr_at(step, total, tr)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = F.cross_entropy(model(v, a), y.to(device))
            if not torch.isfinite(loss):
                raise RuntimeError(f"loss is {loss.item()} at epoch {epoch + 1}; stopping")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tr.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tr.grad_clip)
            opt.step()
            step += 1
            loss_sum += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
        row = {"epoch": epoch + 1, "train_loss": loss_sum / max(len(batches), 1), "lr": lr,
               "test_acc": accuracy(model, test_set, cfg.eval_batch_size, device), "seconds": time.time() - t0}
        history.append(row)
        atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
        print(f"epoch {epoch + 1}: loss {row['train_loss']:.4f} test (int8) {row['test_acc']:.4f} "
              f"({row['seconds']:.1f} s)", flush=True)
    return history


def hardware_configs() -> list:
    """Every shipped hardware config (configs/hardware/*.yaml), by name."""
    return [load_hardware(path) for path in sorted((Path(CONFIG_DIR) / "hardware").glob("*.yaml"))]


def _summary(priced: dict | None) -> dict | None:
    if priced is None:
        return None
    keys = ("energy_uj", "compute_uj", "memory_uj", "static_uj", "dominant", "cycles", "latency_us", "by_layer")
    return {k: priced[k] for k in keys}


def run_ann(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Train, evaluate, measure and price the competitor; write run_dir/ann_result.json; return its content."""
    run_dir = Path(run_dir)
    check_ann_config(cfg)
    device = pick_device(cfg.trainer.device)
    seed_everything(cfg.seed)
    train_set = PairedSpikeDataset(model_data(cfg, "train", MODALITIES))
    test_set = PairedSpikeDataset(model_data(cfg, "test", MODALITIES))
    model = build_ann(cfg, train_set).to(device)
    t0 = time.time()
    history = train_ann(cfg, model, train_set, test_set, device, run_dir)
    train_seconds = time.time() - t0
    acc = accuracy(model, test_set, cfg.eval_batch_size, device)
    vision, audio, _ = test_set[torch.arange(len(test_set))]
    nonzero = measure_nonzero(model, *to_time_major(vision, audio, device), batch_size=cfg.eval_batch_size)
    shapes = model.layer_shapes(nonzero)
    energy = {}
    for hw in hardware_configs():
        priced = price_ann(shapes, hw)
        energy[hw.name] = {"dense": _summary(priced["dense"]), "zero_skip": _summary(priced["zero_skip"])}
    model.int_weights()      # raises if a weight left the power-of-two int grid
    atomic_torch_save({"model": model.state_dict(), "config": OmegaConf.to_yaml(cfg)}, run_dir / "ann_model.pt")
    synthetic = str(cfg.data.name).startswith("synth")
    result = {
        "data": str(cfg.data.name), "synthetic": synthetic, "split": str(cfg.data.get("split", "test")),
        "test_samples": len(test_set), "accuracy": acc, "weights": model.weight_count(),
        "weight_bytes": model.weight_count() * model.arch.weight_bits / 8, "macs": model.mac_count(),
        "nonzero_macs": sum(s.nonzero_macs for s in shapes), "weight_bits": model.arch.weight_bits,
        "act_bits": model.arch.act_bits, "input_bits": model.in_bits,
        "layers": [s.as_dict() for s in shapes], "energy": energy,
        "energy_uj": {name: {"dense": e["dense"]["energy_uj"], "zero_skip": e["zero_skip"]["energy_uj"]}
                      for name, e in energy.items()},
        "dominant": {name: {"dense": e["dense"]["dominant"], "zero_skip": e["zero_skip"]["dominant"]}
                     for name, e in energy.items()},
        "history": history, "train_seconds": train_seconds, "config": OmegaConf.to_container(cfg, resolve=True),
    }
    atomic_write_text(run_dir / RESULT, json.dumps(result, indent=2) + "\n")
    return result


def headline(result: dict) -> dict:
    """The one-line summary printed last: accuracy, size and energy per hardware."""
    return {"data": result["data"], "synthetic": result["synthetic"], "accuracy": result["accuracy"],
            "weights": result["weights"], "macs": result["macs"], "energy_uj": result["energy_uj"],
            "dominant": result["dominant"]}


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
    print(f"test accuracy (int8) {result['accuracy']:.4f}, {result['weights']} weights, {result['macs']} MACs; "
          f"{run_dir / RESULT}")
    print(json.dumps(headline(result)), flush=True)


if __name__ == "__main__":
    main()
