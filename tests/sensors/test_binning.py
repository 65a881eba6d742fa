"""Binning encoder: exact agreement with tonic.transforms.ToFrame, window modes, clip, errors."""
from __future__ import annotations

import numpy as np
import pytest
import tonic
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.binning import bin_audio_events, bin_camera_events
from sensors.events import AUDIO_DTYPE, CAMERA_DTYPE, EventStreamError, make_events, validate_events

FAST = settings(max_examples=60, deadline=None)


def camera(x, y, t, p):
    return make_events(CAMERA_DTYPE, x=np.asarray(x), y=np.asarray(y), t=np.asarray(t), p=np.asarray(p))


def audio(t, x, p=None):
    t = np.asarray(t)
    return make_events(AUDIO_DTYPE, t=t, x=np.asarray(x), p=np.zeros(len(t), int) if p is None else np.asarray(p))


@st.composite
def camera_streams(draw):
    w, h, n_pol = draw(st.integers(1, 6)), draw(st.integers(1, 6)), draw(st.sampled_from([1, 2]))
    n = draw(st.integers(1, 120))
    steps = draw(st.lists(st.integers(0, draw(st.sampled_from([0, 3, 50, 5000]))), min_size=n, max_size=n))
    t = draw(st.integers(0, 10**6)) + np.cumsum(steps)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = rng.integers(0, n_pol, n)  # Tonic rejects two polarities on a 1-polarity sensor
    return camera(rng.integers(0, w, n), rng.integers(0, h, n), t, p), (w, h, n_pol)


@st.composite
def audio_streams(draw):
    c, n = draw(st.integers(1, 40)), draw(st.integers(1, 120))
    steps = draw(st.lists(st.integers(0, draw(st.sampled_from([0, 2, 100, 10**5]))), min_size=n, max_size=n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return audio(draw(st.integers(0, 10**6)) + np.cumsum(steps), rng.integers(0, c, n)), c


@FAST
@given(camera_streams(), st.integers(1, 20))
def test_camera_equals_tonic_toframe(stream, n_bins):
    events, sensor = stream
    ref = tonic.transforms.ToFrame(sensor, n_time_bins=n_bins)(events.copy())  # ToFrame may rewrite p
    raw = bin_camera_events(events, sensor, n_bins, clip=None, drop_last_timestamp=True)
    np.testing.assert_array_equal(raw, ref)
    np.testing.assert_array_equal(bin_camera_events(events, sensor, n_bins, drop_last_timestamp=True), np.minimum(ref, 1))
    kept = bin_camera_events(events, sensor, n_bins, clip=None)
    assert kept.sum() == len(events)  # default mode loses nothing
    if ref.sum() > 0:  # otherwise w = 0 and our 1-us bins differ from Tonic's (empty) ones
        np.testing.assert_array_equal(kept[:-1], ref[:-1])
        assert (kept[-1] >= ref[-1]).all()


@FAST
@given(audio_streams(), st.integers(1, 20))
def test_audio_equals_tonic_toframe_shd_sensor(stream, n_bins):
    events, c = stream
    ref = tonic.transforms.ToFrame((c, 1, 1), n_time_bins=n_bins)(events.copy())[:, 0, :]
    raw = bin_audio_events(events, c, n_bins, clip=None, drop_last_timestamp=True)
    assert raw.shape == (n_bins, c)
    np.testing.assert_array_equal(raw, ref)
    assert bin_audio_events(events, c, n_bins, clip=None).sum() == len(events)


def test_default_mode_puts_tonic_dropped_tail_in_last_bin():
    # span 23 us, T = 2: w = 11, bins [0, 11) and [11, 22); Tonic drops t = 22 and t = 23
    events = audio([0, 10, 11, 21, 22, 23, 23], [0, 1, 0, 1, 0, 1, 1])
    tonic_like = bin_audio_events(events, 2, 2, clip=None, drop_last_timestamp=True)
    np.testing.assert_array_equal(tonic_like, [[1, 1], [1, 1]])
    np.testing.assert_array_equal(bin_audio_events(events, 2, 2, clip=None), [[1, 1], [2, 3]])


def test_default_mode_short_stream_uses_one_microsecond_bins():
    events = audio([5, 5, 7], [0, 1, 0])  # span 2 us < T = 4: Tonic's width is 0 and it keeps nothing
    assert bin_audio_events(events, 2, 4, clip=None, drop_last_timestamp=True).sum() == 0
    np.testing.assert_array_equal(bin_audio_events(events, 2, 4, clip=None), [[1, 1], [0, 0], [1, 0], [0, 0]])


def test_fixed_window_bins_and_drops_outside():
    t = [10, 50_000, 99_999, 100_000, 299_999, 300_000, 450_000]
    events = camera([0] * 7, [0] * 7, t, [1] * 7)
    out = bin_camera_events(events, (1, 1, 2), 3, clip=None, t_start=0, t_end=300_000)
    np.testing.assert_array_equal(out[:, 1, 0, 0], [3, 1, 1])
    assert out[:, 0].sum() == 0
    late = bin_camera_events(events, (1, 1, 2), 3, clip=None, t_start=60_000, t_end=300_000)
    np.testing.assert_array_equal(late[:, 1, 0, 0], [2, 0, 1])  # 80 ms bins from 60 ms


@pytest.mark.parametrize(("span", "n_bins"), [(10, 3), (7, 7), (3, 5), (100, 1), (99, 8)])
def test_fixed_window_bin_index_is_floor_of_scaled_time(span, n_bins):
    t = np.arange(span) + 1000
    out = bin_audio_events(audio(t, np.arange(span)), span, n_bins, t_start=1000, t_end=1000 + span)
    np.testing.assert_array_equal(np.argmax(out, axis=0), np.arange(span) * n_bins // span)
    assert out.sum() == span


@FAST
@given(camera_streams(), st.integers(1, 12), st.integers(1, 3000))
def test_fixed_window_equals_tonic_time_window_when_divisible(stream, n_bins, bin_us):
    events, sensor = stream
    t_start = int(events["t"][0]) + bin_us // 2
    t_end = t_start + n_bins * bin_us
    ref = tonic.transforms.ToFrame(sensor, time_window=bin_us, start_time=t_start, end_time=t_end)(events.copy())
    out = bin_camera_events(events, sensor, n_bins, clip=None, t_start=t_start, t_end=t_end)
    np.testing.assert_array_equal(out, ref)


def test_clip_behaviour_and_dtypes():
    events = camera([1] * 300 + [0], [0] * 301, np.arange(301), [0] * 301)
    sensor = (2, 1, 2)
    assert bin_camera_events(events, sensor, 1).dtype == np.uint8
    np.testing.assert_array_equal(bin_camera_events(events, sensor, 1)[0, 0, 0], [1, 1])
    np.testing.assert_array_equal(bin_camera_events(events, sensor, 1, clip=3)[0, 0, 0], [1, 3])
    np.testing.assert_array_equal(bin_camera_events(events, sensor, 1, clip=255)[0, 0, 0], [1, 255])  # no wrap
    for raw in (None, 0):
        counts = bin_camera_events(events, sensor, 1, clip=raw)
        assert counts.dtype == np.int32
        np.testing.assert_array_equal(counts[0, 0, 0], [1, 300])
    wide = bin_camera_events(events, sensor, 1, clip=280)
    assert wide.dtype == np.int32 and wide[0, 0, 0, 1] == 280


def test_single_polarity_camera_merges_polarities():
    events = camera([0, 0], [0, 0], [0, 9], [0, 1])
    out = bin_camera_events(events, (1, 1, 1), 1, clip=None)
    assert out.shape == (1, 1, 1, 1) and out.sum() == 2


@pytest.mark.parametrize("window", [{}, {"t_start": 0, "t_end": 300_000}])
def test_empty_stream_gives_zero_tensor_of_right_shape(window):
    cam = bin_camera_events(np.empty(0, CAMERA_DTYPE), (34, 20, 2), 5, **window)
    assert cam.shape == (5, 2, 20, 34) and cam.dtype == np.uint8 and not cam.any()
    aud = bin_audio_events(np.empty(0, AUDIO_DTYPE), 700, 7, clip=None, **window)
    assert aud.shape == (7, 700) and not aud.any()


def test_input_is_not_modified():
    events = camera([0, 1], [0, 1], [0, 5], [0, 1])
    before = events.copy()
    bin_camera_events(events, (2, 2, 1), 2)
    np.testing.assert_array_equal(events, before)


@pytest.mark.parametrize(
    ("events", "match"),
    [
        (camera([0, 0], [0, 0], [5, 4], [0, 0]), "not sorted"),
        (camera([0, 4], [0, 0], [1, 2], [0, 0]), "x coordinates"),
        (camera([0, 0], [0, 3], [1, 2], [0, 0]), "y coordinates"),
        (camera([0, 0], [0, 0], [1, 2], [0, 2]), "polarity"),
        (camera([0], [0], [-1], [0]), "negative timestamp"),
        (make_events(np.dtype([("x", "<i8"), ("t", "<i8"), ("p", "<i8")]), x=[0], t=[0], p=[0]), r"'y'\] missing"),
    ],
)
def test_bad_camera_stream_raises(events, match):
    with pytest.raises(EventStreamError, match=match):
        bin_camera_events(events, (4, 3, 2), 2)


def test_bad_audio_stream_raises():
    with pytest.raises(EventStreamError, match="x coordinates"):
        bin_audio_events(audio([0, 1], [0, 700]), 700, 2)
    with pytest.raises(EventStreamError, match="not sorted"):
        bin_audio_events(audio([3, 1], [0, 0]), 700, 2, t_start=0, t_end=10)
    with pytest.raises(EventStreamError, match="structured array"):
        bin_audio_events(np.zeros(3), 700, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_time_bins": 0}, "n_time_bins"),
        ({"n_time_bins": 2.0}, "n_time_bins"),
        ({"clip": -1}, "clip"),
        ({"clip": 1.5}, "clip"),
        ({"t_start": 0}, "t_start and t_end"),
        ({"t_start": 10, "t_end": 10}, "t_end"),
        ({"t_start": -5, "t_end": 10}, "t_start"),
        ({"t_start": 0, "t_end": 10, "drop_last_timestamp": True}, "drop_last_timestamp"),
    ],
)
def test_bad_options_raise_naming_the_argument(kwargs, match):
    args = {"n_time_bins": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        bin_camera_events(camera([0], [0], [0], [0]), (1, 1, 2), **args)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="sensor_size"):
        bin_camera_events(camera([0], [0], [0], [0]), (1, 1), 2)
    with pytest.raises(ValueError, match="n_channels"):
        bin_audio_events(audio([0], [0]), 0, 2)


# ---------------------------------------------------------------- integer fields: NaN, inf, fractional, float time stamps

def float_camera(t, dtype=np.float64, **overrides):
    """A camera stream whose fields have the given float dtype (t as given, x = y = p = 0 unless overridden)."""
    n = len(t)
    fields = {"x": np.zeros(n), "y": np.zeros(n), "t": np.asarray(t, dtype=np.float64), "p": np.zeros(n), **overrides}
    dt = np.dtype([(name, dtype) for name in ("x", "y", "t", "p")])
    return make_events(dt, **fields)


@pytest.mark.parametrize(
    ("t", "index", "why"),
    [
        ([0.0, 1.0, np.nan, 3.0], 2, "not a finite number"),
        ([0.0, np.inf], 1, "not a finite number"),
        ([-np.inf, 0.0], 0, "not a finite number"),
        ([0.0, 1.5, 2.0], 1, "not a whole number"),
        ([0.0, 2.0, 2.25, np.nan], 2, "not a whole number"),   # the first bad event is named
    ],
)
def test_nan_inf_and_fractional_time_stamps_are_refused(t, index, why):
    events = float_camera(t)
    pattern = rf"my_file\.aedat: time stamp t of event {index} is .*{why}.*whole number of microseconds"
    with pytest.raises(EventStreamError, match=pattern):
        validate_events(events, (2, 2, 2), "my_file.aedat")
    for binning in (lambda e: bin_camera_events(e, (2, 2, 2), 2), lambda e: bin_camera_events(e, (2, 2, 2), 2, t_start=0, t_end=9)):
        with pytest.raises(EventStreamError, match=rf"bin_camera_events\(events\): time stamp t of event {index} .*{why}"):
            binning(events)
    audio_events = make_events(np.dtype([("t", "<f8"), ("x", "<i8"), ("p", "<i8")]), t=np.asarray(t), x=np.zeros(len(t), int),
                               p=np.zeros(len(t), int))
    with pytest.raises(EventStreamError, match=rf"bin_audio_events\(events\): time stamp t of event {index} .*{why}"):
        bin_audio_events(audio_events, 2, 2)


def test_whole_valued_float_time_stamps_bin_like_integers():
    """Accepted (documented in sensors/events.py): whole-valued floats within the float type's exact range."""
    rng = np.random.default_rng(0)
    t = np.sort(rng.integers(0, 10**6, 300))
    x, y, p = rng.integers(0, 5, 300), rng.integers(0, 4, 300), rng.integers(0, 2, 300)
    ints = camera(x, y, t, p)
    floats = float_camera(t, x=x.astype(float), y=y.astype(float), p=p.astype(float))
    assert validate_events(floats, (5, 4, 2), "floats") is floats
    for kwargs in ({}, {"drop_last_timestamp": True}, {"t_start": 1000, "t_end": 900_000}):
        np.testing.assert_array_equal(bin_camera_events(floats, (5, 4, 2), 7, clip=None, **kwargs),
                                      bin_camera_events(ints, (5, 4, 2), 7, clip=None, **kwargs))
    f32 = make_events(np.dtype([("t", "<f4"), ("x", "<f4"), ("p", "<f4")]), t=t.astype(np.float32), x=x, p=p)  # t < 2^24
    np.testing.assert_array_equal(bin_audio_events(f32, 5, 7, clip=None), bin_audio_events(audio(t, x, p), 5, 7, clip=None))


def test_float_time_stamps_beyond_the_exact_range_are_refused():
    """float32 holds every integer only up to 2^24 (16.8 s in us): a later time stamp may already be rounded."""
    events = float_camera([0.0, 2.0 ** 24, 2.0 ** 24 + 2], dtype=np.float32)
    with pytest.raises(EventStreamError, match=r"src: time stamp t of event 2 is 16777218.0 us \(float32\): beyond 2\^24"):
        validate_events(events, (1, 1, 2), "src")
    validate_events(float_camera([0.0, 2.0 ** 53], dtype=np.float64), (1, 1, 2), "src")   # float64: exact up to 2^53
    with pytest.raises(EventStreamError, match=r"event 1 .*beyond 2\^53"):
        validate_events(float_camera([0.0, 2.0 ** 53 + 2], dtype=np.float64), (1, 1, 2), "src")


def test_non_integer_coordinates_and_dtypes_are_refused():
    with pytest.raises(EventStreamError, match=r"src: field 'x' of event 1 is 0.5 \(float64\): not a whole number; expected an integer"):
        validate_events(float_camera([0.0, 1.0], x=np.array([0.0, 0.5])), (2, 2, 2), "src")
    with pytest.raises(EventStreamError, match=r"bin_camera_events\(events\): field 'y' of event 0 is nan"):
        bin_camera_events(float_camera([0.0, 1.0], y=np.array([np.nan, 0.0])), (2, 2, 2), 2)
    strings = make_events(np.dtype([("t", "<U4"), ("x", "<i8")]), t=np.array(["0", "1"]), x=np.zeros(2, int))
    with pytest.raises(EventStreamError, match=r"src: event field 't' has dtype <U4; expected integers"):
        validate_events(strings, (2, 1, 1), "src")
    with pytest.raises(EventStreamError, match=r"event field 't' has dtype <U4"):
        validate_events(strings[:0], (2, 1, 1), "src")   # checked on empty streams too
    huge = make_events(np.dtype([("t", "<u8"), ("x", "<i8")]), t=np.array([0, 2 ** 63 + 5], np.uint64), x=np.zeros(2, int))
    with pytest.raises(EventStreamError, match="event 1 is 9223372036854775813, beyond the int64 range"):
        bin_audio_events(huge, 2, 2)
