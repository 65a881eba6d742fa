"""Image augmentation (sensors/image_augment.py): geometry, stroke thickness, blur, seeded draws,
settings checks, and a real MNIST digit through the DVS emulator."""
from __future__ import annotations

import numpy as np
import pytest

from sensors.dvs_emulator import emulate_saccades
from sensors.image_augment import (
    ImageAugmentParams,
    ImageDraw,
    affine,
    augment_image,
    blur,
    draw_image,
    stroke_thickness,
)
from sensors.mnist import load_mnist5k


def _bar(horizontal=True, size=28, width=2, length=16):
    img = np.zeros((size, size))
    lo, hi = size // 2 - width // 2, size // 2 - width // 2 + width
    a, b = (size - length) // 2, (size - length) // 2 + length
    if horizontal:
        img[lo:hi, a:b] = 1.0
    else:
        img[a:b, lo:hi] = 1.0
    return img


def test_identity_draw_returns_the_image():
    img = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)
    assert np.array_equal(augment_image(img, ImageDraw()), img)
    off = ImageAugmentParams(scale_prob=0, rotation_prob=0, translate_prob=0, thickness_prob=0, blur_prob=0)
    assert draw_image(off, np.random.default_rng(1)) == ImageDraw()


def test_rotation_by_90_degrees_turns_a_bar_counter_clockwise():
    bar = _bar(horizontal=True)
    turned = affine(bar, rotation_deg=90.0)
    assert np.allclose(turned, _bar(horizontal=False), atol=1e-9)
    img = np.random.default_rng(2).random((28, 28))
    assert np.allclose(affine(img, rotation_deg=90.0), np.rot90(img), atol=1e-9)  # rot90: counter-clockwise
    assert np.allclose(affine(img, rotation_deg=-90.0), np.rot90(img, -1), atol=1e-9)
    assert np.allclose(affine(img, rotation_deg=180.0), img[::-1, ::-1], atol=1e-9)


def test_scale_and_translation():
    square = np.zeros((28, 28))
    square[10:18, 10:18] = 1.0  # 8 x 8, centred on (13.5, 13.5)
    big = affine(square, scale=2.0)
    rows = np.flatnonzero(big.max(axis=1) > 0.5)
    assert rows[-1] - rows[0] + 1 == 16
    moved = affine(square, shift_px=(3.0, -2.0))  # 3 rows down, 2 columns left
    assert np.allclose(moved, np.roll(np.roll(square, 3, axis=0), -2, axis=1))
    with pytest.raises(ValueError, match="scale"):
        affine(square, scale=0.0)


def test_dilation_thickens_and_erosion_thins_strokes():
    bar = _bar(width=3)
    thick, thin = stroke_thickness(bar, 1.0), stroke_thickness(bar, -1.0)
    assert np.count_nonzero(thick) > np.count_nonzero(bar) > np.count_nonzero(thin) > 0
    # one step widens a 3-pixel stroke to 4 and narrows it to 2
    col = bar.shape[1] // 2
    assert (np.count_nonzero(thick[:, col]), np.count_nonzero(thin[:, col])) == (4, 2)
    half = stroke_thickness(bar, 0.5)  # continuous in the amount: halfway between
    assert np.allclose(half, 0.5 * bar + 0.5 * thick)
    assert np.count_nonzero(stroke_thickness(bar, 2.0)[:, col]) == 5
    assert np.array_equal(stroke_thickness(bar, 0.0), bar)


def test_blur_spreads_ink_and_keeps_its_sum():
    dot = np.zeros((28, 28))
    dot[14, 14] = 1.0
    out = blur(dot, 1.0)
    assert out.max() < 0.2 and np.count_nonzero(out > 1e-3) > 9 and np.isclose(out.sum(), 1.0)
    assert np.array_equal(blur(dot, 0.0), dot)
    with pytest.raises(ValueError, match="sigma_px"):
        blur(dot, -1.0)


def test_draws_are_reproducible_and_within_their_ranges():
    params = ImageAugmentParams(thickness_prob=1.0, blur_prob=1.0)
    draws = [draw_image(params, np.random.default_rng([0, 1, row])) for row in range(50)]
    assert draws[7] == draw_image(params, np.random.default_rng([0, 1, 7])) and draws[7] != draws[8]
    for d in draws:
        assert 0.9 <= d.scale <= 1.1 and -15 <= d.rotation_deg <= 15 and 0 <= d.blur_sigma_px <= 0.8
        assert all(-2 <= s <= 2 for s in d.shift_px) and -0.5 <= d.thickness_px <= 1.0
    no_blur = draw_image(ImageAugmentParams(thickness_prob=1.0, blur_prob=0.0), np.random.default_rng([0, 1, 7]))
    assert no_blur.blur_sigma_px == 0.0 and no_blur.rotation_deg == draws[7].rotation_deg


def test_real_digit_augmented_through_the_dvs_emulator(fixture_data_root):
    images, _ = load_mnist5k(fixture_data_root)
    digit = images[0]
    rng = np.random.default_rng(3)
    out = augment_image(digit, draw_image(ImageAugmentParams(thickness_prob=1.0, blur_prob=1.0), rng))
    assert out.dtype == np.uint8 and out.shape == (28, 28) and not np.array_equal(out, digit)
    plain, augmented = emulate_saccades(digit, seed=0).size, emulate_saccades(out, seed=0).size
    assert 0.5 < augmented / plain < 2.0  # still a digit-sized event stream


@pytest.mark.parametrize("change, message", [
    ({"rotation_deg": (-190.0, 10.0)}, r"rotation_deg=\[-190.0, 10.0\]; expected values in \[-180, 180\]"),
    ({"scale": (1.2, 0.8)}, r"scale=\[1.2, 0.8\]; expected min <= max"),
    ({"scale": (0.0, 1.0)}, r"scale=\[0.0, 1.0\]; expected values > 0"),
    ({"blur_sigma_px": (-0.5, 1.0)}, r"blur_sigma_px=.*expected values >= 0"),
    ({"blur_prob": -0.1}, r"blur_prob=-0.1; expected a probability in \[0, 1\]"),
    ({"translate_px": "2"}, r"translate_px='2'; expected \[min, max\]"),
])
def test_bad_settings_name_the_option(change, message):
    with pytest.raises(ValueError, match=message):
        ImageAugmentParams(**change)


def test_settings_from_a_config_section():
    params = ImageAugmentParams.from_mapping({"rotation_deg": [-5, 5]})
    assert params.rotation_deg == (-5.0, 5.0) and params.scale == (0.9, 1.1)
    with pytest.raises(ValueError, match="shear is unknown"):
        ImageAugmentParams.from_mapping({"shear": [0, 1]})
