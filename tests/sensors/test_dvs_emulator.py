"""DVS emulator (sensors.dvs_emulator) and the MNIST 5k loader (sensors.mnist).

Real digits come from the fixture set (tests/data: rows 0, 50, ..., 4950 of the 5k subset, so
fixture digit i is full digit 50 i); the tests marked full_data read the whole set in EDGE_TAAF_DATA."""
from __future__ import annotations

import gzip
import math
from dataclasses import replace

import numpy as np
import pytest

from sensors.dvs_emulator import DVSParams, emulate_saccades, saccade_trajectory
from sensors.events import CAMERA_DTYPE, validate_events
from sensors.mnist import load_mnist5k
from sensors.readers import read_nmnist_bin

QUIET = DVSParams(noise_rate_hz=0.0)


@pytest.fixture(scope="module")
def mnist(fixture_data_root):
    """The fixture's 100 real digits (10 per class)."""
    return load_mnist5k(fixture_data_root)


@pytest.fixture(scope="module")
def mnist_full(full_data_root):
    """All 5,000 digits of the full set."""
    return load_mnist5k(full_data_root)


def _edge_image() -> np.ndarray:
    """60x60, bright left half: on the canvas (origin -13) only its vertical edge is ever visible."""
    img = np.zeros((60, 60))
    img[:, :30] = 1.0
    return img


EDGE = replace(QUIET, origin_px=(-13.0, -13.0))


# ---------------------------------------------------------------- determinism and validity


def test_same_seed_same_events_and_other_seed_differs(mnist):
    img = mnist[0][7]  # a real 0
    a, b = emulate_saccades(img, seed=3), emulate_saccades(img, seed=3)
    assert a.size > 1000
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, emulate_saccades(img, seed=4))
    np.testing.assert_array_equal(emulate_saccades(img, replace(DVSParams(), seed=3)), a)


def test_events_are_valid_and_sorted(mnist):
    ev = emulate_saccades(mnist[0][25])  # a real 2
    assert ev.dtype == CAMERA_DTYPE
    validate_events(ev, (34, 34, 2), "test")
    assert np.all(np.diff(ev["t"]) >= 0)
    assert 0 <= ev["t"].min() and ev["t"].max() <= 300_000
    assert set(np.unique(ev["p"])) == {0, 1}


def test_blank_image_without_noise_gives_no_events():
    assert emulate_saccades(np.zeros((28, 28), np.uint8), QUIET).size == 0
    assert emulate_saccades(np.full((28, 28), 0.7), QUIET).size > 0  # its borders move: not trivially empty
    assert emulate_saccades(np.zeros((28, 28), np.uint8), DVSParams(noise_rate_hz=5.0)).size > 0


def test_moving_bright_edge_gives_on_when_advancing_and_off_when_retreating():
    ev = emulate_saccades(_edge_image(), EDGE)
    # saccades 1 and 2 move the image right (dx 0 -> 3.5 -> 7), saccade 3 back left (7 -> 0)
    on, off = ev[ev["p"] == 1], ev[ev["p"] == 0]
    assert on.size > 50 and off.size > 50
    assert on["t"].max() <= 200_000 <= off["t"].min()
    assert set(np.unique(ev["x"])) <= set(range(15, 26))  # only around the edge (canvas x = 17 + dx)


def test_one_step_can_cross_several_thresholds():
    # 50 ms steps, events at step ends: a pixel the edge sweeps over changes by log(1.1 / 0.1) = 2.4
    # within ~2 steps, several thresholds of 0.52 per step
    ev = emulate_saccades(_edge_image(), replace(EDGE, dt_us=50_000, refractory_us=0, interpolate_time=False))
    assert set(np.unique(ev["t"])) <= {50_000 * k for k in range(1, 7)}
    _, per_pixel_step = np.unique(ev[["x", "y", "t"]], return_counts=True)
    assert per_pixel_step.max() >= 3


def test_refractory_period_holds_per_pixel(mnist):
    img = mnist[0][40]  # full digit 2000
    busy = DVSParams(noise_rate_hz=50.0, dt_us=250)

    def min_gap(ev):
        order = np.lexsort((ev["t"], ev["y"] * 34 + ev["x"]))
        pix, t = (ev["y"] * 34 + ev["x"])[order], ev["t"][order]
        return np.diff(t)[np.diff(pix) == 0].min()

    assert min_gap(emulate_saccades(img, replace(busy, refractory_us=0))) < 5000  # the limit would bind
    assert min_gap(emulate_saccades(img, replace(busy, refractory_us=5000))) >= 5000


# ---------------------------------------------------------------- exact numpy reference


def _reference(image: np.ndarray, p: DVSParams) -> np.ndarray:
    """Same model without mismatch and noise, written plainly; math.log is the C library's log, the
    one Numba calls, so the two implementations can agree bit for bit."""
    img = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    w, h = p.canvas_size
    times, dx, dy = saccade_trajectory(p)
    sx, sy = p.origin_px[0] + dx, p.origin_px[1] + dy
    pad = 64
    big = np.zeros((img.shape[0] + 2 * pad, img.shape[1] + 2 * pad))
    big[pad:-pad, pad:-pad] = img
    cx, cy = np.meshgrid(np.arange(w), np.arange(h))
    frames = []
    for k in range(times.size):
        fx, fy = -sx[k] - math.floor(-sx[k]), -sy[k] - math.floor(-sy[k])
        c0 = cx + int(math.floor(-sx[k])) + pad
        r0 = cy + int(math.floor(-sy[k])) + pad
        a, b, c, d = big[r0, c0], big[r0, c0 + 1], big[r0 + 1, c0], big[r0 + 1, c0 + 1]
        v = (1.0 - fy) * ((1.0 - fx) * a + fx * b) + fy * ((1.0 - fx) * c + fx * d)
        frames.append(np.array([math.log(x + p.eps) for x in v.ravel()]))
    ref, last, rows = frames[0].copy(), {}, []
    for k in range(1, times.size):
        t0, dt = int(times[k - 1]), int(times[k] - times[k - 1])
        for i in range(w * h):
            lp, lc = frames[k - 1][i], frames[k][i]
            for pol, step in ((1, p.theta_on), (0, -p.theta_off)):
                while (lc - ref[i] >= p.theta_on) if pol else (ref[i] - lc >= p.theta_off):
                    ref[i] += step
                    te = t0 + int((ref[i] - lp) / (lc - lp) * dt) if p.interpolate_time else t0 + dt
                    if p.refractory_us and i in last and te - last[i] < p.refractory_us:
                        continue
                    last[i] = te
                    rows.append((i % w, i // w, te, pol))
    rows = np.array(rows, dtype=np.int64).reshape(-1, 4)
    rows = rows[np.argsort(rows[:, 2], kind="stable")]
    out = np.empty(len(rows), CAMERA_DTYPE)
    for j, name in enumerate(("x", "y", "t", "p")):
        out[name] = rows[:, j]
    return out


@pytest.mark.parametrize("interpolate", [True, False])
def test_matches_numpy_reference_exactly(mnist, interpolate):
    img = mnist[0][13, 4:24, 4:24]  # the ink of one real digit (full digit 650)
    p = DVSParams(mismatch_sigma=0.0, noise_rate_hz=0.0, saccade_us=20_000, dt_us=500, refractory_us=700,
                  canvas_size=(30, 28), origin_px=(2.5, 1.0), interpolate_time=interpolate)
    ours, ref = emulate_saccades(img, p, seed=11), _reference(img, p)
    assert ref.size > 500
    np.testing.assert_array_equal(ours, ref)


# ---------------------------------------------------------------- trajectory


def test_saccade_trajectory_follows_the_n_mnist_triangle():
    t, dx, dy = saccade_trajectory(DVSParams())
    assert t.size == 301 and t[0] == 0 and t[-1] == 300_000 and np.all(np.diff(t) == 1000)
    for time_us, vx, vy in ((0, 0, 0), (100_000, 3.5, 7), (200_000, 7, 0), (300_000, 0, 0)):
        assert (dx[time_us // 1000], dy[time_us // 1000]) == pytest.approx((vx, vy))
    assert (dx[50], dy[50]) == pytest.approx((1.75, 3.5))  # halfway along the first side
    _, lx, _ = saccade_trajectory(DVSParams(saccade_profile="linear"))
    assert dx[10] < lx[10]  # the raised cosine starts slower than constant speed


# ---------------------------------------------------------------- calibration against real N-MNIST


def _calibration(root, digits, labels):
    real = read_nmnist_bin(root / "events" / "sample_nmnist.bin")
    assert real.size == 4325
    assert digits.shape[0] == 100 and np.all(np.bincount(labels) == 10)
    mean = np.mean([emulate_saccades(d).size for d in digits])
    assert abs(mean / real.size - 1) <= 0.25, f"mean {mean:.0f} events vs {real.size} real"


def test_mean_event_count_matches_real_n_mnist_sample(fixture_data_root, mnist):
    _calibration(fixture_data_root, *mnist)  # all 100 fixture digits


@pytest.mark.full_data
def test_mean_event_count_matches_real_n_mnist_sample_full(full_data_root, mnist_full):
    _calibration(full_data_root, mnist_full[0][::50], mnist_full[1][::50])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "image, match",
    [
        (np.full((28, 28), np.nan), "NaN"),
        (np.zeros((2, 28, 28)), "2-D"),
        (np.zeros(28), "2-D"),
        (np.full((28, 28), 1.5), r"outside \[0, 1\]"),
        (np.zeros((28, 28), np.int32), "dtype int32"),
    ],
)
def test_bad_image_is_rejected(image, match):
    with pytest.raises(ValueError, match=match):
        emulate_saccades(image, QUIET)


@pytest.mark.parametrize(
    "field, value",
    [
        ("theta_on", -0.1), ("theta_off", 0.0), ("mismatch_sigma", -0.01), ("refractory_us", -1),
        ("noise_rate_hz", -2.0), ("noise_on_fraction", 1.5), ("eps", 0.0), ("dt_us", 0), ("dt_us", 0.5),
        ("saccade_us", -100), ("saccade_profile", "zigzag"), ("saccade_vertices_px", ((0, 0),)),
        ("canvas_size", (34, 0)), ("origin_px", (float("nan"), 0.0)), ("seed", -1),
    ],
)
def test_bad_params_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"DVSParams.{field} "):
        DVSParams(**{field: value})


def test_negative_seed_is_rejected():
    with pytest.raises(ValueError, match="seed"):
        emulate_saccades(np.zeros((28, 28), np.uint8), QUIET, seed=-5)


# ---------------------------------------------------------------- MNIST 5k loader


def test_mnist5k_loads_real_digits(mnist):
    images, labels = mnist
    assert images.shape == (100, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.all(np.bincount(labels) == 10) and np.all(np.diff(labels) >= 0)
    assert images.max() == 255 and 50 < (images[0] > 0).sum() < 400


@pytest.mark.full_data
def test_mnist5k_loads_real_digits_full(mnist_full, mnist):
    images, labels = mnist_full
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.all(np.bincount(labels) == 500) and np.all(np.diff(labels) >= 0)
    assert images.max() == 255 and 50 < (images[0] > 0).sum() < 400
    # the fixture is rows 0, 50, ..., 4950 of the full set, unchanged
    assert np.array_equal(images[::50], mnist[0]) and np.array_equal(labels[::50], mnist[1])


def _write_csv(tmp_path, rows: list[list[int]]):
    (tmp_path / "mnist5k").mkdir()
    with gzip.open(tmp_path / "mnist5k" / "mnist_5k.csv.gz", "wt") as f:
        f.write("\n".join(",".join(map(str, r)) for r in rows) + "\n")


def test_mnist5k_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist_5k.csv.gz"):
        load_mnist5k(tmp_path)


@pytest.mark.parametrize(
    "rows, match",
    [
        ([[0] * 785, [0] * 784], "785 comma-separated"),  # one short row
        ([[0] * 784] * 2, "rows have 784 fields"),
        ([[0] * 783 + [256, 3]], "row 1 has pixel values 0..256"),
        ([[0] * 784 + [12]], "label 12"),
    ],
)
def test_mnist5k_malformed_rows_name_the_file(tmp_path, rows, match):
    _write_csv(tmp_path, rows)
    with pytest.raises(ValueError, match=match) as err:
        load_mnist5k(tmp_path)
    assert "mnist_5k.csv.gz" in str(err.value)
