"""Always-on streams from real recordings (sensors/streams.py, issue #24 item 2)."""
from __future__ import annotations

import numpy as np
import pytest

from sensors.data_options import parse_data_config
from sensors.dvs_emulator import DVSParams
from sensors.options import OptionError
from sensors.streams import StreamSpec, build_streams, camera_events, encode_stream, mix_audio, place_utterances
from tests.support.configs import compose_config, composition_error

FS = 8000


def spec(**changes) -> StreamSpec:
    base = dict(duration_s=10.0, gap_s=(0.5, 1.5), snr_db=None, noise="pink", jitter_ms=(-50.0, 50.0),
                dvs_background=0.0, seed=0)
    return StreamSpec(**{**base, **changes})


def stream_cfg(root, cache, *extra):
    return compose_config("data_app", ["data=fsdd_mnist", f"data.root={root}", f"data.cache_dir={cache}", "data.T=8",
                                       "data.mnist_test_per_class=3", "data.mnist_val_per_class=2", "data.step_ms=10",
                                       "data.stream.duration_s=20", *extra]).data


def test_utterances_fall_inside_the_stream_with_idle_gaps_between_them():
    rng = np.random.default_rng(0)
    spans = place_utterances([4000] * 50, FS, spec(), rng)
    assert 0 < len(spans) < 50 and spans[-1][1] <= 10 * FS
    gaps = np.array([b[0] - a[1] for a, b in zip(spans, spans[1:])]) / FS
    assert gaps.min() >= 0.5 - 1e-9 and gaps.max() <= 1.5 + 1e-9 and spans[0][0] >= 0.5 * FS
    assert place_utterances([4000] * 50, FS, spec(), np.random.default_rng(0)) == spans     # seeded


def test_the_noise_floor_sits_at_the_set_snr_below_the_speech():
    rng = np.random.default_rng(1)
    waves = [np.sin(np.arange(4000) * 0.3) for _ in range(3)]
    spans = [(8000, 12000), (20000, 24000), (40000, 44000)]
    clean = mix_audio(waves, spans, 80_000, spec(), rng)
    assert np.all(clean[:8000] == 0) and np.allclose(clean[8000:12000], waves[0])
    noisy = mix_audio(waves, spans, 80_000, spec(snr_db=10.0), np.random.default_rng(1))
    noise = noisy - clean
    speech_power = np.mean(np.concatenate(waves) ** 2)
    assert 10 * np.log10(speech_power / np.mean(noise ** 2)) == pytest.approx(10.0, abs=1e-9)


def test_each_digit_shows_while_its_word_is_spoken_and_the_camera_is_quiet_otherwise():
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12:16] = 255
    onsets = [1_000_000, 5_000_000]
    events = camera_events([image, image], onsets, DVSParams(), [1, 2], spec(), np.random.default_rng(0))
    window = DVSParams().saccade_us * len(DVSParams().saccade_vertices_px)
    for onset in onsets:
        near = (events["t"] >= onset - 50_000) & (events["t"] < onset + window + 50_000)
        assert near.sum() > 100
    inside = np.zeros(events.size, bool)
    for onset in onsets:
        inside |= (events["t"] >= onset - 50_000) & (events["t"] < onset + window + 50_000)
    assert inside.all() and np.all(np.diff(events["t"]) >= 0)


def test_a_split_streams_its_own_clips_once_deterministically(fixture_data_root, tmp_path):
    cfg = stream_cfg(fixture_data_root, tmp_path)
    streams = build_streams(cfg, "test")
    labels = np.concatenate([s["labels"] for s in streams])
    settings = parse_data_config(cfg)
    from sensors.datasets import build_dataset
    windowed = build_dataset(cfg, "test", settings)
    assert labels.shape[0] == windowed.labels.size                      # every test clip once
    assert sorted(labels[:, 2].tolist()) == sorted(windowed.labels.tolist())
    for s in streams:
        steps = s["audio"].shape[0]
        assert s["audio"].shape == (steps, 64) and s["vision"].shape == (steps, 2, 34, 34) and steps == 2000
        on, off = s["labels"][:, 0], s["labels"][:, 1]
        assert np.all(on < off) and np.all(off[:-1] < on[1:]) and off[-1] <= 20_000_000
        active = np.zeros(steps, bool)
        for a, b, _ in s["labels"]:
            active[a // 10_000:b // 10_000 + 1] = True
        per_step = s["audio"].sum(axis=1)
        assert per_step[active].mean() > 5 * max(per_step[~active].mean(), 1e-3)   # speech where the labels say
        seen = np.zeros(steps, bool)                                      # the digit's saccades, with jitter
        for a, _, _ in s["labels"]:
            seen[max(a - 50_000, 0) // 10_000:(a + 350_000) // 10_000 + 1] = True
        camera = s["vision"].reshape(steps, -1).sum(axis=1)
        assert camera[seen].mean() > 5 * camera[~seen].mean() > 0              # background only, elsewhere
    again = build_streams(cfg, "test")
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(streams, again) for k in a)


def test_bad_stream_settings_name_the_option(fixture_data_root, tmp_path):
    with pytest.raises(OptionError, match=r"data\.stream\.gap_s=\[2\.0, 1\.0\]; expected min <= max"):
        build_streams(stream_cfg(fixture_data_root, tmp_path, "data.stream.gap_s=[2.0,1.0]"), "test")
    with pytest.raises(OptionError, match="data.stream.noise='brown' is unknown"):
        build_streams(stream_cfg(fixture_data_root, tmp_path, "data.stream.noise=brown"), "test")
    with pytest.raises(ValueError, match="set data=fsdd_mnist and data.step_ms"):
        build_streams(stream_cfg(fixture_data_root, tmp_path, "data.step_ms=null"), "test")
    assert "full_key: data.stream.duration_s" in composition_error("data_app", ["data=fsdd_mnist", "data.stream.duration_s=long"])
