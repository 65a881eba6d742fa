"""Checkpoints: written atomically, loaded with weights_only=True, never half-loaded.

A checkpoint is a plain dict of tensors, numbers, strings and lists (so ``weights_only=True``
can read it). Writing goes to a temporary file in the same folder, is fsynced, then renamed over
the old file: a crash at any point leaves the last good checkpoint.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from sensors.atomic import atomic_write

REQUIRED_KEYS = ("model", "optimizer", "epoch", "history", "config")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, corrupt or not one of ours."""


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    atomic_write(path, lambda fh: torch.save(obj, fh))


def load_checkpoint(path: str | os.PathLike, required=REQUIRED_KEYS) -> dict:
    """Load a checkpoint with weights_only=True; raise CheckpointError naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes, foreign pickles
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); not loaded") from exc
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in required):
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"checkpoint {path} lacks the fields {list(required)} (found {keys}); not loaded")
    return ckpt


def check_state_matches(model: torch.nn.Module, state: dict, path: str | os.PathLike) -> None:
    """Raise CheckpointError naming the first parameter that a checkpoint's ``state`` lacks, has in
    excess or holds in another shape than ``model`` (another architecture or config); loads nothing."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or shapes:
        detail = "; ".join(part for part in (
            f"missing {missing[:3]}{' ...' if len(missing) > 3 else ''}" if missing else "",
            f"unexpected {extra[:3]}{' ...' if len(extra) > 3 else ''}" if extra else "",
            f"shape mismatch {shapes[0]}" if shapes else "") if part)
        raise CheckpointError(f"checkpoint {path} was written by another architecture or config ({detail}); "
                              "not resumed: use a new run folder or the config it was trained with")
