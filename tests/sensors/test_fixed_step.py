"""data.step_ms: a fixed real-time step for both sensors instead of each clip's own duration (issue #24 item 1)."""
from __future__ import annotations

import numpy as np
import pytest

from sensors.cochlea import CochleaParams
from sensors.data_options import parse_data_config
from sensors.datasets import _encode_clip, build_dataset
from sensors.splits import DataConfigError
from tests.support.configs import compose_config, composition_error

FS = 8000
T = 8


def fsdd_cfg(root, cache, *extra):
    return compose_config("data_app", ["data=fsdd_mnist", f"data.root={root}", f"data.cache_dir={cache}", f"data.T={T}",
                                       "data.mnist_test_per_class=3", "data.mnist_val_per_class=2", *extra]).data


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return (0.3 * np.sin(2 * np.pi * 700 * t)).astype(np.float32)


def test_a_fixed_step_bins_from_the_clip_start_whatever_its_length():
    cochlea = CochleaParams()
    step_us = 50_000                                             # T x 50 ms = 0.4 s
    short = _encode_clip(tone(0.2), FS, cochlea, T, 8, step_us=step_us)
    assert short[:4].sum() > 0 and short[4:].sum() == 0          # 0.2 s of sound, then silent bins
    long = _encode_clip(tone(0.8), FS, cochlea, T, 8, step_us=step_us)
    full = _encode_clip(tone(0.4), FS, cochlea, T, 8, step_us=step_us)
    assert np.array_equal(long, full)                            # a longer clip is cut at T x step
    # a clip exactly T x step long: the fixed step and the clip's own duration bin it alike
    assert np.array_equal(full, _encode_clip(tone(0.4), FS, cochlea, T, 8))
    # clip-normalised binning stretches the short clip over all T bins
    assert _encode_clip(tone(0.2), FS, cochlea, T, 8)[4:].sum() > 0


@pytest.mark.parametrize("step, fragment", [("0", "data.step_ms=0.0; expected a number > 0"),
                                            ("-10", "data.step_ms=-10.0; expected a number > 0"),
                                            ("0.5", "data.step_ms=0.5; expected a whole number of the DVS"),
                                            ("2.0625", "data.step_ms=2.0625; expected a whole number")])
def test_a_step_the_sensors_cannot_produce_is_a_config_error(tmp_path, step, fragment):
    with pytest.raises(DataConfigError) as err:
        parse_data_config(fsdd_cfg(tmp_path / "nowhere", tmp_path / "cache", f"data.step_ms={step}"))
    assert fragment in str(err.value), str(err.value)
    assert "full_key: data.step_ms" in composition_error("data_app", ["data=fsdd_mnist", "data.step_ms=fast"])


def test_the_fixed_step_encodes_its_own_data_set(fixture_data_root, tmp_path):
    clip_normalised = build_dataset(fsdd_cfg(fixture_data_root, tmp_path), "test")
    fixed = build_dataset(fsdd_cfg(fixture_data_root, tmp_path, "data.step_ms=50"), "test")
    assert parse_data_config(fsdd_cfg(fixture_data_root, tmp_path, "data.step_ms=50")).step_us == 50_000
    assert fixed.audio.shape == clip_normalised.audio.shape and np.array_equal(fixed.labels, clip_normalised.labels)
    assert not np.array_equal(fixed.audio, clip_normalised.audio)      # another cache entry, other bins
    # 8 x 50 ms = 400 ms: the three 100 ms saccades fill the first 6 bins, the camera is silent after
    assert fixed.vision_pool[:, 6:].sum() == 0 and fixed.vision_pool[:, :6].sum() > 0
