"""DVS background activity with the statistics of real recordings (an unseen failure: the DVS emulator's own
background is uniform Poisson, and training's floods scale a sample's own activity).

Measured (:func:`measure_recording`) from the real recordings in tests/data/events and stored in
sensors/dvs_background.json, written by

    python -m sensors.dvs_background tests/data/events/sample_nmnist.bin tests/data/events/sample.aedat4 \
        --out sensors/dvs_background.json

Background events are those tonic.functional.denoise_numpy drops at its default filter_time of 10 ms: no event
at a 4-neighbour pixel within 10 ms (the standard background-activity filter; a hot pixel's events are
uncorrelated with its neighbours, so they count as background). Per recording (:func:`summarise`):
    rate_hz          background events per pixel per second over the whole sensor and recording;
    on_fraction      share of background events that are ON;
    hot_fraction     share of pixels whose background count k is implausible for a Poisson pixel at the
                     recording's mean count mu: P(Poisson(mu) >= k) < HOT_P_VALUE (the hot-pixel tail);
    hot_counts       the hot pixels' background counts over the recording, sorted (empty when there are none);
    cold_rate_hz, cold_rate_cv  mean and coefficient of variation of the other pixels' rates, the CV corrected
                     for Poisson counting noise (method of moments: var(rate) = (var(k) - mean(k)) / duration^2).
:func:`background_rates` draws one sensor's per-pixel rates from them (hot pixels: a measured hot pixel's
rate drawn at random; others: a gamma law with that mean and CV) and :func:`real_background` adds its Poisson events to
binned frames (..., T, 2, H, W).
"""
from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np
from scipy import stats
from tonic.functional import denoise_numpy

from sensors.atomic import atomic_write_text
from sensors.readers import NMNIST_SENSOR_SIZE, read_aedat4, read_nmnist_bin

STATS_PATH = Path(__file__).with_name("dvs_background.json")
FILTER_TIME_US = 10_000      # tonic.functional.denoise_numpy's default
HOT_P_VALUE = 1e-4
COMMAND = ("python -m sensors.dvs_background tests/data/events/sample_nmnist.bin tests/data/events/sample.aedat4 "
           "--out sensors/dvs_background.json")


def read_recording(path) -> tuple[np.ndarray, tuple[int, int]]:
    """(events CAMERA_DTYPE, (width, height)) of an N-MNIST .bin or an AEDAT 4 file (sensors.readers)."""
    path = Path(path)
    if path.suffix == ".bin":
        return read_nmnist_bin(path), NMNIST_SENSOR_SIZE[:2]
    if path.suffix == ".aedat4":
        rec = read_aedat4(path)
        return rec.events, rec.sensor_size[:2]
    raise ValueError(f"{path}: expected an N-MNIST .bin or an .aedat4 recording")


def recording_name(path) -> str:
    """A recording's key in the JSON: the file's stem, "_aedat4" appended for an AEDAT 4 file (sample.aedat4 ->
    sample_aedat4; sample_nmnist.bin -> sample_nmnist)."""
    path = Path(path)
    return path.stem + ("_aedat4" if path.suffix == ".aedat4" else "")


def background_mask(events: np.ndarray, filter_time_us: int = FILTER_TIME_US) -> np.ndarray:
    """(N,) bool: True where tonic.functional.denoise_numpy drops the event (keeps order, so a two-pointer walk
    matches the kept events back; of identical events the earlier is taken as kept, which changes no count)."""
    kept = denoise_numpy(events, filter_time=filter_time_us)
    mask = np.ones(events.size, bool)
    j = 0
    for i in range(events.size):
        if j < kept.size and events[i] == kept[j]:
            mask[i] = False
            j += 1
    return mask


def summarise(on_counts: np.ndarray, off_counts: np.ndarray, duration_s: float) -> dict:
    """The statistics of the module docstring from per-pixel ON and OFF background counts (any shape, one entry
    per pixel) over ``duration_s`` seconds."""
    on, off = np.asarray(on_counts, np.int64).ravel(), np.asarray(off_counts, np.int64).ravel()
    counts = on + off
    if counts.size == 0 or not duration_s > 0:
        raise ValueError(f"summarise: need pixels and a duration > 0 s, got {counts.size} pixels, {duration_s} s")
    mu = float(counts.mean())
    hot = stats.poisson.sf(counts - 1, mu) < HOT_P_VALUE if mu > 0 else np.zeros(counts.size, bool)
    cold = counts[~hot]
    cold_mean = float(cold.mean()) if cold.size else 0.0
    excess = max(float(cold.var()) - cold_mean, 0.0) if cold.size else 0.0
    return {"pixels": int(counts.size), "duration_s": float(duration_s), "events": int(counts.sum()),
            "rate_hz": mu / duration_s, "on_fraction": float(on.sum() / counts.sum()) if counts.sum() else 0.5,
            "hot_fraction": float(hot.mean()), "hot_min_events": int(counts[hot].min()) if hot.any() else None,
            "hot_counts": np.sort(counts[hot]).tolist(),
            "cold_rate_hz": cold_mean / duration_s,
            "cold_rate_cv": math.sqrt(excess) / cold_mean if cold_mean > 0 else 0.0}


def measure_recording(path, filter_time_us: int = FILTER_TIME_US) -> dict:
    """:func:`summarise` of a recording's background events (:func:`background_mask`), plus its totals."""
    events, (width, height) = read_recording(path)
    bg = events[background_mask(events, filter_time_us)]
    on, off = np.zeros((width, height), np.int64), np.zeros((width, height), np.int64)
    np.add.at(on, (bg["x"][bg["p"] == 1], bg["y"][bg["p"] == 1]), 1)
    np.add.at(off, (bg["x"][bg["p"] == 0], bg["y"][bg["p"] == 0]), 1)
    duration_s = float(events["t"].max() - events["t"].min()) * 1e-6
    return {"sensor_size": [int(width), int(height)], "all_events": int(events.size),
            "filter_time_us": int(filter_time_us), **summarise(on, off, duration_s)}


def load_stats(name: str, path=STATS_PATH) -> dict:
    """The measured statistics of recording ``name`` (e.g. "sample_nmnist") from the committed JSON."""
    doc = json.loads(Path(path).read_text())
    if name not in doc["recordings"]:
        raise KeyError(f"{path}: no recording {name!r}; it holds {sorted(doc['recordings'])}")
    return doc["recordings"][name]


def background_rates(n_pixels: int, stats_: dict, rng: np.random.Generator) -> np.ndarray:
    """(n_pixels,) float64 per-pixel background rates in Hz of one sensor: each pixel hot with probability
    hot_fraction (the rate of a measured hot pixel, hot_counts / duration_s, drawn with replacement), else gamma
    distributed with mean cold_rate_hz and coefficient of variation cold_rate_cv (constant when the CV is 0)."""
    hot = rng.random(n_pixels) < float(stats_["hot_fraction"])
    mean, cv = float(stats_["cold_rate_hz"]), float(stats_["cold_rate_cv"])
    rates = rng.gamma(1.0 / cv ** 2, mean * cv ** 2, n_pixels) if cv > 0 and mean > 0 else np.full(n_pixels, mean)
    hot_rates = np.asarray(stats_["hot_counts"], np.float64) / float(stats_["duration_s"])
    if hot.any() and hot_rates.size:
        rates[hot] = rng.choice(hot_rates, int(hot.sum()))
    return rates


def real_background(frames: np.ndarray, stats_: dict, bin_us: float, clip: int, seed: int,
                    scale: float = 1.0) -> np.ndarray:
    """Binned DVS frames (..., T, 2, H, W) plus background events of one sensor measured on a real recording
    (``stats_``, :func:`load_stats`): per-pixel rates from :func:`background_rates` (default_rng([seed, 0]); one
    seed is one sensor, the same rates for every sample) times ``scale``; in each bin of ``bin_us`` microseconds
    Poisson counts (default_rng([seed, 1])), each event ON with probability on_fraction; clipped at ``clip``."""
    frames = np.asarray(frames)
    if frames.ndim < 4 or frames.shape[-3] != 2:
        raise ValueError(f"real_background: frames must be (..., T, 2, H, W), got shape {frames.shape}")
    if not (math.isfinite(scale) and scale >= 0 and bin_us > 0 and clip >= 1):
        raise ValueError(f"real_background: scale={scale!r} (>= 0), bin_us={bin_us!r} (> 0), clip={clip!r} (>= 1)")
    height, width = frames.shape[-2:]
    rates = background_rates(height * width, stats_, np.random.default_rng([int(seed), 0])).reshape(height, width)
    rng = np.random.default_rng([int(seed), 1])
    total = rng.poisson(np.broadcast_to(rates * scale * bin_us * 1e-6, frames.shape[:-3] + (height, width)))
    on = rng.binomial(total, float(stats_["on_fraction"]))
    extra = np.stack([total - on, on], axis=-3)
    return np.minimum(frames.astype(np.int64) + extra, clip).astype(frames.dtype)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="measure the background statistics of real DVS recordings")
    parser.add_argument("recordings", nargs="+", help="N-MNIST .bin or .aedat4 files")
    parser.add_argument("--out", default=str(STATS_PATH), help="the JSON to write")
    args = parser.parse_args(argv)
    doc = {"command": COMMAND, "method":
           f"background = events tonic.functional.denoise_numpy(filter_time={FILTER_TIME_US}) drops; hot pixel: "
           f"P(Poisson(mean count) >= count) < {HOT_P_VALUE}; cold CV Poisson-corrected (sensors/dvs_background.py)",
           "recordings": {recording_name(p): {"source": Path(p).as_posix(), **measure_recording(p)}
                          for p in args.recordings}}
    text = re.sub(r"\[\s*([-0-9.,\s]*?)\s*\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]",
                  json.dumps(doc, indent=1))          # number lists on one line
    atomic_write_text(args.out, text + "\n")
    print(json.dumps({k: {f: v[f] for f in ("rate_hz", "on_fraction", "hot_fraction", "cold_rate_cv")}
                      for k, v in doc["recordings"].items()}))


if __name__ == "__main__":
    main()
