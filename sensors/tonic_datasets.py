"""Tonic datasets (NMNIST, DVSGesture, SHD, NTIDIGITS18) from a local folder, never from the network.

Tonic 1.7 downloads inside the constructor whenever ``_check_exists`` fails. The classes below are the
Tonic classes with two overrides: ``_check_exists`` runs :func:`check_tonic_folder` (a FileNotFoundError
naming the folder and the files expected), and ``download`` always raises. They keep Tonic's class names,
so Tonic's folder ``<root>/<ClassName>/`` is unchanged. Unlike Tonic we do not require the downloaded
archive (e.g. ``train.zip``) to sit next to its extracted files: only what is read is checked.
Samples come out in the project's dtypes (CAMERA_DTYPE / AUDIO_DTYPE, t in microseconds).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tonic.datasets as td

from sensors.events import AUDIO_DTYPE, CAMERA_DTYPE, make_events
from sensors.paths import data_root, require_files


class _Offline:
    """Mixin placed before a Tonic dataset class: local files only."""

    key: str
    contract_dtype: np.dtype

    def __init__(self, save_to, train: bool = True, **kwargs):
        self._offline_train = bool(train)
        super().__init__(save_to, train=train, **kwargs)

    def _check_exists(self) -> bool:
        check_tonic_folder(self.key, Path(self.location_on_system).parent, self._offline_train)
        return True

    def download(self) -> None:
        raise FileNotFoundError(
            f"{type(self).__name__}: edge-taaf never downloads; put the dataset in {self.location_on_system} "
            f"(Tonic's source: {self.url})"
        )


class NMNIST(_Offline, td.NMNIST):
    key, contract_dtype = "nmnist", CAMERA_DTYPE


class DVSGesture(_Offline, td.DVSGesture):
    key, contract_dtype = "dvsgesture", CAMERA_DTYPE


class SHD(_Offline, td.SHD):
    key, contract_dtype = "shd", AUDIO_DTYPE


class NTIDIGITS18(_Offline, td.NTIDIGITS18):
    key, contract_dtype = "ntidigits18", AUDIO_DTYPE


DATASETS: dict[str, type] = {cls.key: cls for cls in (NMNIST, DVSGesture, SHD, NTIDIGITS18)}


def _dataset_class(name: str) -> type:
    if name not in DATASETS:
        raise ValueError(f"unknown Tonic dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def check_tonic_folder(name: str, root, train: bool = True) -> Path:
    """Check that ``<root>/<ClassName>/`` holds the extracted split Tonic 1.7 reads; return that folder.

    Layouts (Tonic's own minimum file counts):
      nmnist:      Train/0 .. Train/9 (Test/... for train=False) holding >= 10000 ``*.bin`` in all
      dvsgesture:  ibmGestureTrain/ (ibmGestureTest/) with >= 100 ``user*_*/<label>.npy``
      shd:         shd_train.h5 (shd_test.h5)
      ntidigits18: n-tidigits.hdf5 (both splits in one file)

    Raises FileNotFoundError naming the folder, the missing entries and what is expected there.
    """
    cls = _dataset_class(name)
    folder = Path(root) / cls.__name__
    what = f"Tonic {cls.__name__} ({'train' if train else 'test'} split)"
    if name == "nmnist":
        split = cls.train_folder if train else cls.test_folder
        require_files(folder, [f"{split}/{d}" for d in range(10)], what)
        _require_count(folder, f"{split}/*/*.bin", 10_000, what)
    elif name == "dvsgesture":
        split = "ibmGestureTrain" if train else "ibmGestureTest"
        require_files(folder, [split], what)
        _require_count(folder, f"{split}/user*_*/*.npy", 100, what)
    elif name == "shd":
        require_files(folder, [(cls.train_zip if train else cls.test_zip)[: -len(".zip")]], what)
    else:
        require_files(folder, [cls.filename], what)
    return folder


def _require_count(folder: Path, pattern: str, minimum: int, what: str) -> None:
    found = sum(1 for _ in folder.glob(pattern))
    if found < minimum:
        raise FileNotFoundError(
            f"{what}: folder {folder} holds {found} files matching {pattern}; expected at least {minimum} "
            "(incompletely extracted?)"
        )


class _ToContract:
    """Convert a Tonic sample to the project dtype, then apply ``then`` (picklable for DataLoader workers)."""

    def __init__(self, dtype: np.dtype, then=None):
        self.dtype, self.then = dtype, then

    def __call__(self, events: np.ndarray):
        if events.dtype != self.dtype:
            events = make_events(self.dtype, **{n: events[n] for n in self.dtype.names})
        return events if self.then is None else self.then(events)


def load_tonic_dataset(name: str, root: str | os.PathLike | None = None, train: bool = True,
                       transform=None, target_transform=None, **options):
    """Open Tonic dataset ``name`` (nmnist, dvsgesture, shd, ntidigits18) from ``<root>/<ClassName>/``.

    ``root`` defaults to EDGE_TAAF_DATA (:func:`sensors.paths.data_root`). Samples are (events, target) with
    events in CAMERA_DTYPE (x, y, t, p) or AUDIO_DTYPE (t, x, p), t in microseconds, before ``transform``.
    ``options`` go to the Tonic constructor (e.g. ``first_saccade_only``, ``single_digits``).
    Raises ValueError for an unknown name, FileNotFoundError when files are missing; never downloads.
    """
    cls = _dataset_class(name)
    root = data_root(root)
    check_tonic_folder(name, root, train)
    return cls(str(root), train=train, transform=_ToContract(cls.contract_dtype, transform),
               target_transform=target_transform, **options)
