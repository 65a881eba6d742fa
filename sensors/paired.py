"""PairedSpikes: an encoded data set in memory (numpy only), the one container every builder returns."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PairedSpikes:
    """Encoded data set in memory.

    audio (N, T, C) uint8 and labels (N,) per sample; vision frames live in a pool
    (P, T, 2, H, W) uint8 with ``vision_index`` (N,) saying which frame each sample is paired with.
    For fsdd_mnist's train split the pool is the whole MNIST train pool, so ``repair`` can draw a
    new same-class pairing each epoch (augmentation); elsewhere the pool is the paired frames.
    A unimodal data set has None for the modality it lacks (``audio``, or ``vision_pool`` and
    ``vision_index``). ``vision_source`` says where the vision frames come from and who wrote them, for a
    report (fsdd_mnist: sensors.splits.VISION_SOURCES, e.g. "mnist_test: MNIST t10k, writers disjoint from
    training"); None where a builder does not say.
    """

    audio: np.ndarray | None
    labels: np.ndarray
    vision_pool: np.ndarray | None
    vision_index: np.ndarray | None
    pool_labels: np.ndarray | None = None
    pair_seed: int = 0
    vision_source: str | None = None

    @property
    def vision(self) -> np.ndarray | None:
        """(N, T, 2, H, W) paired frames (a copy), or None without vision."""
        return None if self.vision_pool is None else self.vision_pool[self.vision_index]

    @property
    def modalities(self) -> tuple[str, ...]:
        """The sensors this data set holds, in ("audio", "vision") order."""
        return tuple(m for m, x in (("audio", self.audio), ("vision", self.vision_pool)) if x is not None)

    def inputs(self) -> dict[str, np.ndarray]:
        """Every present modality's (N, T, ...) spike counts, by the simulator's input names."""
        return {m: getattr(self, m) for m in self.modalities}

    def only(self, modalities) -> "PairedSpikes":
        """The same samples holding only ``modalities`` (for a one-sensor model on a paired data set).

        Raises ValueError naming a modality the data set does not hold."""
        missing = sorted(set(modalities) - set(self.modalities))
        if missing:
            raise ValueError(f"the data set holds {list(self.modalities)}, not {missing}")
        keep_v = "vision" in modalities
        return PairedSpikes(self.audio if "audio" in modalities else None, self.labels,
                            self.vision_pool if keep_v else None, self.vision_index if keep_v else None,
                            self.pool_labels if keep_v and "audio" in modalities else None, self.pair_seed,
                            self.vision_source if keep_v else None)

    @property
    def T(self) -> int:
        return int((self.audio if self.audio is not None else self.vision_pool).shape[1])

    def repair(self, epoch: int) -> None:
        """Pair every sample with a same-class pool frame drawn from (pair_seed, epoch); deterministic."""
        if self.pool_labels is None:
            raise ValueError("this data set has no vision pool to re-pair from")
        rng = np.random.default_rng([self.pair_seed, 7, epoch])
        index = np.empty_like(self.vision_index)
        for c in np.unique(self.labels):
            rows = np.flatnonzero(self.labels == c)
            pool = np.flatnonzero(self.pool_labels == c)
            picks = rng.permutation(pool)
            index[rows] = picks[np.arange(rows.size) % picks.size]
        self.vision_index = index

    def summary(self) -> dict:
        n = int(self.labels.size)

        def per_sample(x):
            return float(x.reshape(len(x), -1).sum(1).mean()) if x is not None and n else 0.0
        vision = self.vision
        return {
            "samples": n,
            "T": self.T,
            "modalities": list(self.modalities),
            "vision_shape": list(self.vision_pool.shape[2:]) if self.vision_pool is not None else None,
            "audio_shape": list(self.audio.shape[2:]) if self.audio is not None else None,
            "vision_pool": int(len(self.vision_pool)) if self.vision_pool is not None else 0,
            "class_counts": np.bincount(self.labels, minlength=10).tolist(),
            "vision_spikes_per_sample": per_sample(vision),
            "audio_spikes_per_sample": per_sample(self.audio),
            "vision_source": self.vision_source,
        }
