"""DVS (event camera) emulator: a still grayscale image moved along N-MNIST saccades -> camera events.

Pixel model (per canvas pixel, log intensity L = log(I + eps), I in [0, 1]):
- a reference ``ref`` starts at L of the first frame; while ``L - ref >= theta_on`` the pixel emits an
  ON event (p=1) and ``ref += theta_on``; while ``ref - L >= theta_off`` an OFF event (p=0) and
  ``ref -= theta_off`` (so one step can cross several thresholds and give several events);
- ``theta_on`` / ``theta_off`` are drawn once per pixel, nominal + N(0, mismatch_sigma), clipped at
  10 % of nominal;
- a crossing less than ``refractory_us`` after the pixel's last event is dropped (the reference
  still moves, so the change is lost, as in a pixel that is blind while it resets);
- background noise: a Poisson process of ``noise_rate_hz`` per pixel, ON with probability
  ``noise_on_fraction``; noise events obey the refractory period and leave the reference alone.

Time: frames every ``dt_us`` microseconds. With ``interpolate_time`` (default) L is taken as linear
between two frames and each crossing gets the time where that line meets its level, floored to a
whole microsecond; otherwise all of a step's events carry the step's end time.

Motion (Orchard et al. 2015, "Converting static image datasets to spiking neuromorphic datasets
using saccades", Front. Neurosci. 9:437): three saccades along an isosceles triangle. The image
displacement follows the authors' own stabilisation code (gorchard/event-Python, neuro_dataset.py,
``stabilize``): (0, 0) -> (+3.5, +7) -> (+7, 0) -> (0, 0) pixels (x right, y down), with the 28x28
digit at (3, 3) of the 34x34 window at t=0 (34 = 3 + 4-pixel MNIST margin + 20 + 7). That code
assumes 105 ms per saccade; we default to the nominal 100 ms. The velocity profile defaults to a
raised cosine because the real N-MNIST sample's event rate is bell-shaped within each saccade
(16 events in its first 10 ms, 287 at 50 ms); ``"linear"`` gives the constant speed ``stabilize``
assumes. Bilinear interpolation gives sub-pixel positions; outside the image is background (0).

Calibration of the defaults: with eps = 0.1 (a display black level of 10 % of white; it also damps
MNIST's faint anti-aliased pixels), theta_on = theta_off = 0.52 gives a mean of 4,296 events over 100
real MNIST digits (mnist5k rows 0, 50, ..., 4950; seed 0) against 4,325 in the real N-MNIST sample
(events/sample_nmnist.bin): measured ratio 0.99 (seeds 1, 2: 0.99, 1.00). noise_rate_hz = 0.38 and
noise_on_fraction = 0.9 were measured on that sample's border pixels, which the digit never reaches
(44 events, 40 ON, 373 pixels, 0.31 s); refractory_us = 1000 because the sample's same-polarity
intervals at a pixel exceed 1.2 ms in 99.5 % of cases. Polarity here is physical (p=1: brighter); in
the real sample the leading edge of the moving digit gives p=0, i.e. its polarity bit reads inverted
for a bright digit.

Numba: Tonic has no image -> events emulator, and v2e / ESIM are not installable here (PyTorch + video
pipelines, far too heavy for 34x34 digits), so the per-frame pixel loop is a small ``@njit`` kernel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .events import CAMERA_DTYPE, make_events, validate_events
from sensors.options import is_int

_PROFILES = ("cosine", "linear")


@dataclass(frozen=True)
class DVSParams:
    """Emulator settings. Thresholds in log-intensity units, times in microseconds, sizes in pixels."""

    theta_on: float = 0.52  #: ON contrast threshold (log units)
    theta_off: float = 0.52  #: OFF contrast threshold (log units)
    mismatch_sigma: float = 0.03  #: std of the per-pixel Gaussian threshold mismatch (log units)
    refractory_us: int = 1000  #: minimum time between two events of one pixel
    noise_rate_hz: float = 0.38  #: background-noise events per pixel per second
    noise_on_fraction: float = 0.9  #: share of noise events that are ON
    eps: float = 0.1  #: L = log(I + eps), I in [0, 1]; eps plays the display's black level
    dt_us: int = 1000  #: simulation step (1 ms -> 300 frames for 3 x 100 ms)
    interpolate_time: bool = True  #: crossing times inside a step (True) or at step ends (False)
    saccade_us: int = 100_000  #: duration of one saccade
    #: image displacement (dx, dy) at the start of each saccade; the path closes on the first vertex
    saccade_vertices_px: tuple = ((0.0, 0.0), (3.5, 7.0), (7.0, 0.0))
    saccade_profile: str = "cosine"  #: "cosine" (bell-shaped speed) or "linear" (constant speed)
    origin_px: tuple = (3.0, 3.0)  #: (x, y) of the image's top-left pixel on the canvas at t=0
    canvas_size: tuple = (34, 34)  #: (W, H) of the emulated sensor
    seed: int = 0  #: default seed for mismatch and noise

    def __post_init__(self):
        for name in ("saccade_vertices_px", "origin_px", "canvas_size"):  # lists (Hydra) -> tuples
            value = getattr(self, name)
            try:
                value = tuple(tuple(map(float, v)) for v in value) if name[0] == "s" else tuple(value)
            except (TypeError, ValueError):
                raise ValueError(f"DVSParams.{name} must be a sequence of numbers, got {value!r}") from None
            object.__setattr__(self, name, value)
        for name in ("theta_on", "theta_off", "eps"):
            _check(name, getattr(self, name), "a finite number > 0", lambda v: math.isfinite(v) and v > 0)
        for name in ("mismatch_sigma", "noise_rate_hz"):
            _check(name, getattr(self, name), "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)
        _check("noise_on_fraction", self.noise_on_fraction, "a number in [0, 1]", lambda v: 0 <= v <= 1)
        _check("refractory_us", self.refractory_us, "an integer >= 0", lambda v: is_int(v) and v >= 0)
        for name in ("dt_us", "saccade_us"):
            _check(name, getattr(self, name), "an integer > 0", lambda v: is_int(v) and v > 0)
        _check("saccade_profile", self.saccade_profile, f"one of {_PROFILES}", lambda v: v in _PROFILES)
        _check(
            "saccade_vertices_px", self.saccade_vertices_px, "at least 2 finite (dx, dy) pairs",
            lambda v: len(v) >= 2 and all(len(p) == 2 and all(math.isfinite(c) for c in p) for p in v),
        )
        _check("origin_px", self.origin_px, "two finite numbers (x, y)",
               lambda v: len(v) == 2 and all(math.isfinite(float(c)) for c in v))
        _check("canvas_size", self.canvas_size, "two integers (W, H) > 0",
               lambda v: len(v) == 2 and all(is_int(c) and c > 0 for c in v))
        _check("seed", self.seed, "an integer >= 0", lambda v: is_int(v) and v >= 0)


def _check(name, value, expected, ok) -> None:
    try:
        good = bool(ok(value))
    except (TypeError, ValueError):
        good = False
    if not good:
        raise ValueError(f"DVSParams.{name} must be {expected}, got {value!r}")


def saccade_trajectory(params: DVSParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame times and image displacement along the saccades.

    Returns:
        times_us: int64 (S + 1,), 0, dt_us, ..., S * dt_us with S = ceil(n_saccades * saccade_us / dt_us).
        dx, dy: float64 (S + 1,), displacement in pixels (x right, y down) relative to ``origin_px``.
    """
    vertices = np.asarray(params.saccade_vertices_px, dtype=np.float64)
    n = len(vertices)
    n_steps = -(-n * params.saccade_us // params.dt_us)
    times = np.arange(n_steps + 1, dtype=np.int64) * params.dt_us
    k = np.minimum(times // params.saccade_us, n - 1)
    u = np.clip((times - k * params.saccade_us) / params.saccade_us, 0.0, 1.0)
    s = u if params.saccade_profile == "linear" else 0.5 - 0.5 * np.cos(np.pi * u)
    start, end = vertices[k], vertices[(k + 1) % n]
    pos = start + s[:, None] * (end - start)
    return times, pos[:, 0].copy(), pos[:, 1].copy()


def emulate_saccades(image: np.ndarray, params: DVSParams | None = None, seed: int | None = None) -> np.ndarray:
    """Emulate a DVS watching ``image`` while it moves along ``saccade_trajectory(params)``.

    Args:
        image: (H, W) grayscale, uint8 (0..255) or float in [0, 1]; bright = high intensity.
        params: emulator settings (defaults: N-MNIST protocol, calibrated thresholds).
        seed: seed of the threshold mismatch and the noise; ``params.seed`` when None.

    Returns:
        events: CAMERA_DTYPE (x, y, t, p) array sorted by t (microseconds), on a sensor of
        ``(W, H, 2) = (*params.canvas_size, 2)``. The same inputs and seed give the same array.

    Raises:
        ValueError: the image is not 2-D, holds NaN / inf or values outside [0, 1], has another dtype,
            or the seed is negative (DVSParams checks its own fields).
    """
    params = DVSParams() if params is None else params
    img = _unit_image(image)
    seed = params.seed if seed is None else seed
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    width, height = params.canvas_size
    n_pix = width * height
    times, dx, dy = saccade_trajectory(params)
    rng = np.random.default_rng(seed)
    th_on = _thresholds(rng, params.theta_on, params.mismatch_sigma, n_pix)
    th_off = _thresholds(rng, params.theta_off, params.mismatch_sigma, n_pix)
    n_noise = rng.poisson(params.noise_rate_hz * n_pix * times[-1] * 1e-6)
    noise_t = rng.integers(0, max(int(times[-1]), 1), n_noise)
    noise_pix = rng.integers(0, n_pix, n_noise)
    noise_p = (rng.random(n_noise) < params.noise_on_fraction).astype(np.int64)
    order = np.argsort(noise_t, kind="stable")
    box, row0, col0 = _ink_box(img)
    args = (box, row0, col0, times, params.origin_px[0] + dx, params.origin_px[1] + dy, int(width), int(height),
            th_on, th_off, float(params.eps), int(params.refractory_us), bool(params.interpolate_time),
            noise_t[order], noise_pix[order], noise_p[order])
    out = np.empty((16384 + n_noise, 4), dtype=np.int64)
    n = _emulate_kernel(*args, out)
    if n > out.shape[0]:  # rare: rerun (deterministic) with exactly enough room
        out = np.empty((n, 4), dtype=np.int64)
        _emulate_kernel(*args, out)
    rows = out[:n][np.argsort(out[:n, 2], kind="stable")]
    events = make_events(CAMERA_DTYPE, x=rows[:, 0], y=rows[:, 1], t=rows[:, 2], p=rows[:, 3])
    return validate_events(events, (width, height, 2), "dvs_emulator")


def _unit_image(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"image must be a non-empty 2-D (H, W) grayscale array, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"image must be uint8 (0..255) or float in [0, 1], got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError("image contains NaN or inf; expected finite floats in [0, 1]")
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"image values {arr.min():g}..{arr.max():g} fall outside [0, 1] (float images)")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _ink_box(img: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The smallest box holding every nonzero pixel, with a one-pixel zero border, and the source
    (row, col) of its [0, 0]; the emulator's frame loop only visits canvas pixels that can see it."""
    rows, cols = np.flatnonzero(img.any(axis=1)), np.flatnonzero(img.any(axis=0))
    if rows.size == 0:
        return np.zeros((2, 2)), 0, 0
    box = np.pad(img[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1], 1)
    return box, int(rows[0]) - 1, int(cols[0]) - 1


def _thresholds(rng, nominal: float, sigma: float, n: int) -> np.ndarray:
    if sigma == 0:
        return np.full(n, nominal)
    return np.maximum(nominal + sigma * rng.standard_normal(n), 0.1 * nominal)


@njit(cache=True)
def _render(img, row0, col0, sx, sy, width, height, eps, log_eps, out):
    """out (H * W,) = log(I + eps) of the canvas, where canvas pixel (cx, cy) reads the source image
    bilinearly at (cx - sx, cy - sy). ``img`` is the source's nonzero box with a zero border, its
    [0, 0] being source pixel (row0, col0); everything outside it is background (0)."""
    h_img, w_img = img.shape
    ix = int(math.floor(-sx)) - col0
    iy = int(math.floor(-sy)) - row0
    fx = -sx - math.floor(-sx)
    fy = -sy - math.floor(-sy)
    out[:] = log_eps
    # only canvas pixels whose 2x2 source block lies inside img can see ink
    for cy in range(max(0, -iy), min(height, h_img - 1 - iy)):
        r0 = cy + iy
        for cx in range(max(0, -ix), min(width, w_img - 1 - ix)):
            c0 = cx + ix
            a = img[r0, c0]
            b = img[r0, c0 + 1]
            c = img[r0 + 1, c0]
            d = img[r0 + 1, c0 + 1]
            if a != 0.0 or b != 0.0 or c != 0.0 or d != 0.0:
                v = (1.0 - fy) * ((1.0 - fx) * a + fx * b) + fy * ((1.0 - fx) * c + fx * d)
                out[cy * width + cx] = math.log(v + eps)


@njit(cache=True)
def _emulate_kernel(img, row0, col0, times, shift_x, shift_y, width, height, th_on, th_off, eps, refractory_us,
                    interpolate, noise_t, noise_pix, noise_p, out):
    """Frames -> events written as rows (x, y, t, p) of out (cap, 4); returns the number of events,
    which may exceed cap (then only the first cap are written and the caller reruns with more room).
    img, row0, col0: see _render; shift_x/y (S + 1,): canvas position of source pixel (0, 0) per frame."""
    n_pix = width * height
    cap = out.shape[0]
    log_eps = math.log(0.0 + eps)
    ref = np.empty(n_pix)
    prev = np.empty(n_pix)
    cur = np.empty(n_pix)
    last = np.full(n_pix, -(1 << 62), dtype=np.int64)
    n = 0
    j = 0
    _render(img, row0, col0, shift_x[0], shift_y[0], width, height, eps, log_eps, ref)
    prev[:] = ref
    for k in range(1, times.size):
        _render(img, row0, col0, shift_x[k], shift_y[k], width, height, eps, log_eps, cur)
        t0 = times[k - 1]
        dt = times[k] - t0
        for i in range(n_pix):
            lp = prev[i]
            lc = cur[i]
            prev[i] = lc
            if lc - ref[i] >= th_on[i]:
                pol, step = 1, th_on[i]
            elif ref[i] - lc >= th_off[i]:
                pol, step = 0, -th_off[i]
            else:
                continue
            while (lc - ref[i] >= th_on[i]) if pol == 1 else (ref[i] - lc >= th_off[i]):
                level = ref[i] + step
                ref[i] = level
                te = t0 + int((level - lp) / (lc - lp) * dt) if interpolate else t0 + dt
                if refractory_us > 0 and te - last[i] < refractory_us:
                    continue
                if n < cap:
                    out[n, 0] = i % width
                    out[n, 1] = i // width
                    out[n, 2] = te
                    out[n, 3] = pol
                last[i] = te
                n += 1
        while j < noise_t.size and noise_t[j] <= times[k]:
            i = noise_pix[j]
            te = noise_t[j]
            if refractory_us == 0 or te - last[i] >= refractory_us:
                if n < cap:
                    out[n, 0] = i % width
                    out[n, 1] = i // width
                    out[n, 2] = te
                    out[n, 3] = noise_p[j]
                last[i] = te
                n += 1
            j += 1
    return n


def add_background_events(frames: np.ndarray, rate_hz: float, bin_us: float, on_fraction: float, clip: int,
                          rng: np.random.Generator) -> np.ndarray:
    """Binned DVS frames (..., T, 2, H, W) (channel 1 = ON, 0 = OFF) plus extra background activity, as the
    emulator models it: per pixel a Poisson process of ``rate_hz`` events per second, each ON with probability
    ``on_fraction``; counted into bins of ``bin_us`` microseconds, added, and clipped at ``clip``.
    Returns a new array of frames' dtype (integer counts); ``rate_hz = 0`` returns an unchanged copy."""
    frames = np.asarray(frames)
    if frames.ndim < 4 or frames.shape[-3] != 2:
        raise ValueError(f"add_background_events: frames must be (..., T, 2, H, W), got {frames.shape}")
    for name, value, ok in (("rate_hz", rate_hz, rate_hz >= 0), ("bin_us", bin_us, bin_us > 0),
                            ("on_fraction", on_fraction, 0 <= on_fraction <= 1), ("clip", clip, clip >= 1)):
        if not (np.isfinite(value) and ok):
            raise ValueError(f"add_background_events: {name}={value!r} is out of range")
    mean = rate_hz * bin_us * 1e-6
    pixel_shape = frames.shape[:-3] + frames.shape[-2:]
    on = rng.poisson(mean * on_fraction, pixel_shape)
    off = rng.poisson(mean * (1.0 - on_fraction), pixel_shape)
    extra = np.stack([off, on], axis=-3)
    return np.minimum(frames.astype(np.int64) + extra, clip).astype(frames.dtype)

