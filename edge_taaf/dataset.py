"""The torch view of an encoded data set (sensors.paired.PairedSpikes) for training and evaluation."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from sensors.paired import PairedSpikes


class PairedSpikeDataset(Dataset):
    """torch Dataset over PairedSpikes: item i -> (vision float32 (T, 2, H, W), audio float32 (T, C), label int64).

    A modality the data set lacks comes out as None."""

    def __init__(self, data: PairedSpikes):
        self.data = data
        self.vision_pool = None if data.vision_pool is None else torch.from_numpy(data.vision_pool)
        self.audio = None if data.audio is None else torch.from_numpy(data.audio)
        self.labels = torch.from_numpy(data.labels.astype(np.int64))

    def __len__(self) -> int:
        return int(self.labels.numel())

    def __getitem__(self, i):
        vision = None
        if self.vision_pool is not None:
            vision = self.vision_pool[torch.from_numpy(np.asarray(self.data.vision_index))[i]].float()
        audio = None if self.audio is None else self.audio[i].float()
        return vision, audio, self.labels[i]

    def repair(self, epoch: int) -> None:
        self.data.repair(epoch)

    @property
    def can_repair(self) -> bool:
        return self.data.pool_labels is not None

    @property
    def T(self) -> int:
        return self.data.T
