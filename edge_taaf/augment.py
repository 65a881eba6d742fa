"""Training-time augmentation of event frames (pure tensor functions, seeded)."""
from __future__ import annotations

import torch


def random_shift(frames: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each sample's frames by a random integer (dx, dy) in [-max_shift, max_shift], zero fill.

    frames: (B, T, C, H, W). The same shift applies to all T steps of a sample (a displaced
    saccade); N-MNIST digits already move by up to 7 px, so small shifts stay in distribution.
    """
    if max_shift <= 0:
        return frames
    b, _, _, h, w = frames.shape
    s = max_shift
    padded = torch.nn.functional.pad(frames, (s, s, s, s))
    offsets = torch.randint(0, 2 * s + 1, (b, 2), generator=generator)
    out = torch.empty_like(frames)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, :, dy : dy + h, dx : dx + w]
    return out
