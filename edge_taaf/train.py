"""The training loop: train whatever model it is handed (float or quantization-aware) on cfg.data.

The app that builds the model and calls this is edge_taaf/apps/train.py (edge-taaf-train);
nothing here knows how a model is quantized. ``train(cfg, run_dir, model)`` writes into the run folder:
checkpoint.pt (atomic, every epoch), metrics.jsonl (one line per epoch), accuracy.png and attention.png.

Every epoch is measured on the VALIDATION split (metrics ``val_fused_acc``, ``val_<modality>_acc``,
``val_attention_per_step``, ``val_share_audio``); nothing here builds or reads the test split, which is
left to the one reported number (docs/evaluation.md). ``resume=true`` continues from checkpoint.pt and ends with
the same weights as an uninterrupted run (shuffling and noise are seeded per epoch / saved).
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from edge_taaf import distributed
from edge_taaf.checkpoint import atomic_torch_save, check_state_matches, load_checkpoint
from sensors.atomic import atomic_write_text
from edge_taaf.config import ConfigError, TrainingOptions
from edge_taaf.augment import random_shift
from edge_taaf.corrupt import CorruptSettings, corrupt_batch, failing
from edge_taaf.fusion import balance_loss
from edge_taaf.firing_rate_init import scale_to_firing_rate
from edge_taaf.losses import build_loss
from edge_taaf.model import model_modalities
from edge_taaf.plots import plot_training
from edge_taaf.dataset import PairedSpikeDataset
from sensors.data_options import DataSettings
from sensors.datasets import build_dataset
from sensors.paired import PairedSpikes


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("trainer.device=cuda but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_time_major(vision: torch.Tensor | None, audio: torch.Tensor | None, device):
    """(B, T, ...) batches -> (T, B, ...) on device; a missing modality (None) stays None."""
    def move(x):
        return None if x is None else x.transpose(0, 1).to(device)
    return move(vision), move(audio)


def cosine_lr(cfg, epoch: int) -> float:
    """Base learning rate of an epoch: cosine decay from trainer.lr to trainer.lr_min."""
    frac = epoch / max(cfg.epochs - 1, 1)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * frac))


@torch.no_grad()
def evaluate(model, dataset, batch_size: int, device) -> dict:
    """On ``dataset``: fused accuracy, each present modality's head accuracy, the mean attention per time
    step and the audio's mean attention share (keys fused_acc, <modality>_acc, attention_per_step, share_audio)."""
    model.eval()
    hits = {"fused": 0, **{m: 0 for m in model.modalities}}
    alpha_sum, share_sum, n = None, torch.zeros(2), 0
    for idx in torch.arange(len(dataset)).split(batch_size):
        vision, audio, y = dataset[idx]  # one indexed batch, as in training (no per-sample collate)
        v, a = to_time_major(vision, audio, device)
        y = y.to(device)
        out = model(v, a)
        hits["fused"] += int((out.logits.argmax(1) == y).sum())
        for m in model.modalities:
            hits[m] += int((getattr(out, f"head_{m}").argmax(1) == y).sum())
        a_sum = out.fusion.alpha.sum(1).cpu()
        alpha_sum = a_sum if alpha_sum is None else alpha_sum + a_sum
        share_sum += out.fusion.share.sum(0).cpu()
        n += y.numel()
    return {**{f"{k}_acc": v / n for k, v in hits.items()},
            "attention_per_step": (alpha_sum / n).tolist(), "share_audio": float(share_sum[0] / n)}


def model_data(cfg, split: str, modalities, settings: DataSettings | None = None) -> PairedSpikes:
    """The ``split`` of cfg.data holding the model's modalities only (``settings``: cfg.data parsed once by the
    app; None parses it); a ConfigError names model.modalities when the data set lacks one of them."""
    data = build_dataset(cfg.data, split, settings)
    try:
        return data.only(modalities)
    except ValueError as exc:
        raise ConfigError(f"model.modalities={list(modalities)} but data={cfg.data.name}: {exc}") from None


def rate_targets(cfg, model) -> dict[int, float]:
    """trainer.rate_targets as {position in the record: target rate}; ConfigError naming a layer the model
    does not have or a rate outside [0, 1]."""
    raw = cfg.trainer.rate_targets or {}
    raw = OmegaConf.to_container(raw) if OmegaConf.is_config(raw) else dict(raw)

    def flat(d, prefix=""):   # {vision: {conv0: 0.1}} (a dotted key on the command line) -> {vision.conv0: 0.1}
        for key, value in d.items():
            if isinstance(value, dict):
                yield from flat(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value
    targets = dict(flat(raw))
    names = [name for name, _, _, _ in model.spiking_layers()]
    out = {}
    for name, rate in targets.items():
        if name not in names:
            raise ConfigError(f"trainer.rate_targets names layer {name!r}; the model's spiking layers are {names}")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ConfigError(f"trainer.rate_targets.{name}={rate!r}; expected a firing rate in [0, 1]")
        out[names.index(name)] = float(rate)
    return out


def rate_loss(record: list[torch.Tensor], targets: dict[int, float]) -> torch.Tensor:
    """Sum over the targeted layers of (mean firing rate - target)^2: activity regularisation per layer."""
    return sum((record[i].float().mean() - rate) ** 2 for i, rate in targets.items())


def spike_rate(record: list[torch.Tensor]) -> torch.Tensor:
    """Mean firing rate of the recorded spiking layers (each (T, B, ...) spikes; layers weigh equally).

    Every spike costs the accelerator a routed event, a weight-row read and the updates of the
    neurons it reaches (docs/accelerator.md, "Dataflow"); trainer.spike_penalty times this rate is
    added to the loss to trade accuracy for energy."""
    return torch.stack([s.float().mean() for s in record]).mean()


@dataclass
class _Penalties:
    """What is added to the objective in training (trainer.spike_penalty; trainer.rate_penalty over
    trainer.rate_targets, {position in the record: rate}; trainer.modal_balance) and the sensor corruption of
    training batches (trainer.corrupt, with data.clip / data.clip_audio as each sensor's count limit)."""
    spike: float
    rate: float
    modal_balance: float
    targets: dict[int, float]
    corruption: CorruptSettings
    clips: dict[str, int]

    @classmethod
    def of(cls, cfg: DictConfig, model, corruption: CorruptSettings) -> "_Penalties":
        rate_penalty = float(cfg.trainer.rate_penalty)
        return cls(spike=float(cfg.trainer.spike_penalty), rate=rate_penalty,
                   # taaf_modal: equal attention mass when healthy
                   modal_balance=float(cfg.trainer.modal_balance),
                   targets=rate_targets(cfg, model) if rate_penalty else {},
                   # trainer.corrupt: all off by default (batches untouched, nothing drawn)
                   corruption=corruption,
                   clips={"vision": int(cfg.data.clip), "audio": int(cfg.data.clip_audio)})


@dataclass
class _Run:
    """One training run: its config and folder, this process's device and rank, the model (``net``: the same,
    wrapped in DDP when world > 1), the train and validation sets, the objective and optimizer, and the epochs
    done (``history``: one metrics dict each)."""
    cfg: DictConfig
    run_dir: Path
    device: torch.device
    rank: int
    world: int
    model: torch.nn.Module
    train_set: PairedSpikeDataset
    val_set: PairedSpikeDataset
    objective: object
    opt: torch.optim.Optimizer
    start_epoch: int = 0
    history: list = field(default_factory=list)
    net: torch.nn.Module | None = None
    penalties: _Penalties | None = None

    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"


def _setup(cfg: DictConfig, run_dir: Path, model: torch.nn.Module, data: DataSettings) -> _Run:
    """Device, process group and seeds; the train and validation sets of the model's modalities; the model on
    the device (fresh weights scaled to trainer.init_firing_rate); the objective and one Adam group per modality."""
    device = pick_device(cfg.trainer.device)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    rank, world = distributed.setup(device)
    run_dir = Path(distributed.broadcast_object(str(run_dir)))
    seed_everything(cfg.seed)

    modalities = model_modalities(cfg.model)
    train_set = PairedSpikeDataset(model_data(cfg, "train", modalities, data))
    val_set = PairedSpikeDataset(model_data(cfg, "val", modalities, data))   # choices and the log read val, never test
    model = model.to(device)
    if cfg.trainer.init_firing_rate and not cfg.init_from:  # fresh weights only
        vision, audio, _ = train_set[torch.arange(min(128, len(train_set)))]
        scale_to_firing_rate(model, *to_time_major(vision, audio, device), target=cfg.trainer.init_firing_rate)
    objective = build_loss(cfg.loss, cfg.seed)
    model.detach_heads = not objective.heads_train_encoders
    groups = {n: p for n, p in model.param_groups().items() if p}  # a unimodal model has no group for the other
    opt = torch.optim.Adam([{"params": p, "name": n} for n, p in groups.items()], lr=cfg.trainer.lr,
                           weight_decay=cfg.trainer.weight_decay)
    return _Run(cfg, run_dir, device, rank, world, model, train_set, val_set, objective, opt)


def _resume(run: _Run) -> None:
    """cfg.init_from: start from its weights (quantized: float or QAT weights). cfg.resume with a checkpoint
    in the run folder: its weights, optimizer, epoch, history and the loss's noise stream."""
    cfg, model, ckpt_path = run.cfg, run.model, run.ckpt_path
    if cfg.init_from:
        init = load_checkpoint(cfg.init_from)
        getattr(model, "load_init_state", model.load_state_dict)(init["model"])
    if cfg.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        check_state_matches(model, ckpt["model"], ckpt_path)
        model.load_state_dict(ckpt["model"])
        run.opt.load_state_dict(ckpt["optimizer"])
        run.start_epoch, run.history = int(ckpt["epoch"]) + 1, list(ckpt["history"])
        if "loss_rng" in ckpt and hasattr(run.objective, "generator"):
            run.objective.generator.set_state(ckpt["loss_rng"])
        if run.rank == 0 and run.start_epoch < cfg.trainer.epochs:
            print(f"resuming from epoch {run.start_epoch + 1} ({ckpt_path})", flush=True)


def _epoch_batches(run: _Run, epoch: int) -> list[torch.Tensor]:
    """This rank's batches of sample indices for ``epoch`` (a new vision pairing first, where
    data.repair_each_epoch)."""
    cfg, train_set, world = run.cfg, run.train_set, run.world
    if train_set.can_repair and cfg.data.repair_each_epoch:
        train_set.repair(epoch)  # a new same-class vision pairing per epoch, from (pair_seed, epoch)
    # One permutation per epoch from (seed, epoch): a resumed run sees the same batches.
    perm = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
    # Equal shards (drop len % world samples, others each epoch): ranks must run the same number of
    # steps, or DDP's all-reduces fall out of step.
    perm = perm[: len(perm) - len(perm) % world][run.rank::world]
    return perm.split(cfg.trainer.batch_size)


def _train_step(run: _Run, idx: torch.Tensor, epoch: int, step: int, gens: tuple[torch.Generator, torch.Generator],
                base_lr: float, hooks: dict) -> tuple[torch.Tensor, dict, float | None]:
    """One optimizer step on the samples ``idx``: the loss, the learning-rate coefficient of each modality and
    the mean spike rate (None unless trainer.spike_penalty). TrainingDiverged on a loss that is not finite."""
    cfg, pen, aug_gen, corrupt_gen = run.cfg, run.penalties, *gens
    vision, audio, y = run.train_set[idx]
    if vision is not None:
        vision = random_shift(vision, cfg.trainer.augment_shift, aug_gen)
    v, a = to_time_major(vision, audio, run.device)
    healthy = torch.ones(len(y), dtype=torch.bool)
    if pen.corruption.active:
        v, a, applied = corrupt_batch(v, a, pen.corruption, pen.clips, corrupt_gen, y)
        healthy = ~failing(applied)
    record = [] if pen.spike or pen.targets else None
    out = run.net(v, a, record)
    loss, stats = run.objective(out, y.to(run.device))
    rate = None
    if record and pen.spike:
        rate = spike_rate(record)
        loss = loss + pen.spike * rate
    if pen.targets:
        loss = loss + pen.rate * rate_loss(record, pen.targets)
    if pen.modal_balance:
        loss = loss + pen.modal_balance * balance_loss(out.fusion.share, healthy)
    if "loss" in hooks:
        loss = hooks["loss"](epoch, step, loss)
    if not torch.isfinite(loss):
        raise TrainingDiverged(
            f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}: stopping; the last good checkpoint "
            f"{run.ckpt_path} is kept" + ("" if run.ckpt_path.exists() else " (none written yet)"))
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    stats = distributed.mean_stats(stats)
    run.objective.before_step(run.model, stats, epoch)
    coeffs = run.objective.lr_coefficients(stats, epoch)
    for g in run.opt.param_groups:
        g["lr"] = base_lr * coeffs.get(g["name"], 1.0)
    if cfg.trainer.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.trainer.grad_clip)
    run.opt.step()
    return loss, coeffs, None if rate is None else rate.item()


def _train_epoch(run: _Run, epoch: int, hooks: dict) -> dict:
    """One epoch of training; its metrics (epoch, train_loss, lr, lr_coef_<modality>, train_spike_rate)."""
    cfg = run.cfg
    run.model.train()
    base_lr = cosine_lr(cfg.trainer, epoch)
    batches = _epoch_batches(run, epoch)
    aug_gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch + 17)  # resumable augmentation
    # sensor corruption: its own stream per (seed, epoch, rank), so a resumed run draws the same
    corrupt_gen = torch.Generator().manual_seed((cfg.seed * 100_003 + epoch) * 1_009 + 31 + run.rank)
    coef_sum = {"audio": 0.0, "vision": 0.0}
    loss_sum = rate_sum = 0.0
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.trainer.epochs}",
               disable=not cfg.trainer.progress or run.rank > 0, leave=False)
    for step, idx in enumerate(bar):
        loss, coeffs, rate = _train_step(run, idx, epoch, step, (aug_gen, corrupt_gen), base_lr, hooks)
        if rate is not None:
            rate_sum += rate
        for m in coef_sum:
            coef_sum[m] += coeffs[m]
        loss_sum += loss.item()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    n_steps = max(len(batches), 1)
    metrics = {"epoch": epoch + 1, "train_loss": loss_sum / n_steps, "lr": base_lr,
               "lr_coef_audio": coef_sum["audio"] / n_steps, "lr_coef_vision": coef_sum["vision"] / n_steps}
    if run.penalties.spike:
        metrics["train_spike_rate"] = rate_sum / n_steps
    return metrics


def _save_epoch(run: _Run, epoch: int) -> None:
    """Rank 0: checkpoint.pt (weights, optimizer, epoch, history, config, the loss's noise stream) and
    metrics.jsonl, both atomic; the epoch's log line where trainer.log_epochs."""
    state = {"model": run.model.state_dict(), "optimizer": run.opt.state_dict(), "epoch": epoch, "history": run.history,
             "config": OmegaConf.to_yaml(run.cfg)}
    if hasattr(run.objective, "generator"):
        state["loss_rng"] = run.objective.generator.get_state()
    atomic_torch_save(state, run.ckpt_path)
    atomic_write_text(run.run_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in run.history))
    if run.cfg.trainer.log_epochs:
        metrics = run.history[-1]
        heads = "".join(f" {m} {metrics['val_' + m + '_acc']:.4f}" for m in run.model.modalities)
        print(f"epoch {epoch + 1}: loss {metrics['train_loss']:.4f} val fused {metrics['val_fused_acc']:.4f}{heads} "
              f"({metrics['seconds']:.1f} s)", flush=True)


def train(cfg: DictConfig, run_dir: Path, model: torch.nn.Module, options: TrainingOptions,
          hooks: dict | None = None) -> dict:
    """Run (or resume) a training run of ``model`` in ``run_dir``; return the last epoch's metrics.

    ``model`` maps (vision, audio) time-major spike batches to an edge_taaf.model.ModelOut and has
    ``modalities`` and ``param_groups()`` (edge_taaf.model.TwoModalitySNN, or its quantized form).
    ``options``: the config's parts the app parsed once (edge_taaf.config.TrainingOptions: the corruption, the
    data set's settings).
    ``hooks`` (tests): "loss"(epoch, step, loss) -> loss, "epoch_end"(epoch)."""
    hooks = hooks or {}
    run = _setup(cfg, run_dir, model, options.data)
    _resume(run)
    run.net = DistributedDataParallel(run.model) if run.world > 1 else run.model
    run.penalties = _Penalties.of(cfg, run.model, options.corruption)
    for epoch in range(run.start_epoch, cfg.trainer.epochs):
        t0 = time.time()
        metrics = _train_epoch(run, epoch, hooks)
        metrics.update({f"val_{k}": v for k, v in evaluate(run.model, run.val_set, 256, run.device).items()})
        metrics["seconds"] = time.time() - t0
        run.history.append(metrics)
        if run.rank == 0:
            _save_epoch(run, epoch)
        if "epoch_end" in hooks:
            hooks["epoch_end"](epoch)
    if cfg.trainer.save_rank_weights:  # for checking that DDP ranks stay identical
        atomic_torch_save(run.model.state_dict(), run.run_dir / f"weights_rank{run.rank}.pt")
    if run.rank == 0 and run.history:
        plot_training(run.history, run.run_dir)
    distributed.teardown()
    return run.history[-1] if run.history else {}
