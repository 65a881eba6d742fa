"""Image augmentation for unseen writers: pure numpy / scipy.ndimage functions on a grey-scale digit
image (H, W) before the DVS emulator.

Tonic-style: every transform is a pure function of its inputs; randomness enters only through a
numpy Generator that the caller seeds, so one (seed, image) always gives the same result.

    affine(image, scale, rotation_deg, shift_px)   scale and rotate about the image centre, then shift
    stroke_thickness(image, amount_px)             grey dilation (> 0) or erosion (< 0) of the strokes
    blur(image, sigma_px)                          Gaussian blur

ImageAugmentParams (the ``augment.vision`` config section), draw_image() (one image's random
choices, an ImageDraw) and augment_image() (affine, thickness, blur; back to uint8) tie them together.
Images are float64 in [0, 1] inside (uint8 0..255 is accepted); pixels outside the image are
background (0). Coordinates are (row, col) with row 0 at the top.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from sensors.audio_augment import settings_from_mapping
from sensors.options import check_pair, check_probability

#: footprint of one thickness step: a 2 x 2 maximum (minimum) widens (narrows) a stroke by one pixel
_STEP_FOOTPRINT = np.ones((2, 2), dtype=bool)


def _as_unit(image) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"image must be a non-empty 2-D (H, W) array, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if not np.issubdtype(arr.dtype, np.floating) or not np.isfinite(arr).all():
        raise ValueError(f"image must be uint8 (0..255) or finite floats in [0, 1], got dtype {arr.dtype}")
    return arr.astype(np.float64)


def affine(image, scale: float = 1.0, rotation_deg: float = 0.0, shift_px=(0.0, 0.0)) -> np.ndarray:
    """Scale by ``scale`` and rotate by ``rotation_deg`` about the image centre ((H-1)/2, (W-1)/2),
    then shift by ``shift_px`` = (rows down, columns right) pixels -> (H, W) float64.

    Positive angles turn the digit counter-clockwise as displayed (row 0 at the top): a pixel right
    of the centre goes above it at +90 deg. Output pixel o reads the input at
    c + R(-theta) (o - c - shift) / scale, bilinearly (scipy.ndimage.affine_transform, order 1,
    mode "grid-constant": outside the input is 0, and a point just past the edge blends the edge pixel
    with that 0 instead of dropping to 0). The identity returns a copy.
    """
    img = _as_unit(image)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"affine: scale must be a finite number > 0, got {scale!r}")
    shift = np.asarray(shift_px, dtype=np.float64)
    if scale == 1.0 and rotation_deg == 0.0 and not shift.any():
        return img.copy()
    theta = math.radians(rotation_deg)
    # forward map in (row, col): d' = R d with R = [[cos, -sin], [sin, cos]] turns counter-clockwise on screen
    inverse = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]]) / scale
    centre = (np.array(img.shape, dtype=np.float64) - 1.0) / 2.0
    offset = centre - inverse @ (centre + shift)
    return ndimage.affine_transform(img, inverse, offset=offset, order=1, mode="grid-constant", cval=0.0)


def stroke_thickness(image, amount_px: float) -> np.ndarray:
    """Thicken (amount_px > 0) or thin (< 0) the strokes by about |amount_px| pixels -> (H, W) float64.

    One whole step is a grey dilation (erosion) with a 2 x 2 footprint (scipy.ndimage.grey_dilation /
    grey_erosion), which widens (narrows) a stroke by one pixel; floor(|amount_px|) steps are applied
    and the fractional rest blends linearly towards one more step, so the change is continuous in
    amount_px. 0 returns a copy.
    """
    img = _as_unit(image)
    if not math.isfinite(amount_px):
        raise ValueError(f"stroke_thickness: amount_px must be finite, got {amount_px!r}")
    op = ndimage.grey_dilation if amount_px > 0 else ndimage.grey_erosion
    whole, rest = divmod(abs(amount_px), 1.0)
    out = img.copy()
    for _ in range(int(whole)):
        out = op(out, footprint=_STEP_FOOTPRINT, mode="constant", cval=0.0)
    if rest > 0:
        out = (1.0 - rest) * out + rest * op(out, footprint=_STEP_FOOTPRINT, mode="constant", cval=0.0)
    return out


def blur(image, sigma_px: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma_px`` pixels (scipy.ndimage.gaussian_filter,
    truncated at 4 sigma, outside = 0) -> (H, W) float64. 0 returns a copy."""
    img = _as_unit(image)
    if not (math.isfinite(sigma_px) and sigma_px >= 0):
        raise ValueError(f"blur: sigma_px must be a finite number >= 0, got {sigma_px!r}")
    if sigma_px == 0:
        return img.copy()
    return ndimage.gaussian_filter(img, sigma_px, mode="constant", cval=0.0)


@dataclass(frozen=True)
class ImageAugmentParams:
    """Settings of :func:`draw_image` (config section ``augment.vision``). Ranges are [min, max] and
    drawn uniformly; each transform is applied with its probability ``*_prob`` (0 turns it off).

    scale: size factor range (> 0; 1 = unchanged). rotation_deg: angle range in degrees, within
    [-180, 180] (positive = counter-clockwise). translate_px: shift range in pixels, drawn
    independently for rows and columns. thickness_px: stroke width change range in pixels (> 0
    thicker, < 0 thinner). blur_sigma_px: Gaussian blur sigma range in pixels (>= 0).
    """

    scale: tuple = (0.9, 1.1)
    scale_prob: float = 1.0
    rotation_deg: tuple = (-15.0, 15.0)
    rotation_prob: float = 1.0
    translate_px: tuple = (-2.0, 2.0)
    translate_prob: float = 1.0
    thickness_px: tuple = (-0.5, 1.0)
    thickness_prob: float = 0.5
    blur_sigma_px: tuple = (0.0, 0.8)
    blur_prob: float = 0.3

    def __post_init__(self) -> None:
        checked = {"scale": check_pair("scale", self.scale, 0.0, low_open=True),
                   "rotation_deg": check_pair("rotation_deg", self.rotation_deg, -180.0, 180.0),
                   "translate_px": check_pair("translate_px", self.translate_px),
                   "thickness_px": check_pair("thickness_px", self.thickness_px),
                   "blur_sigma_px": check_pair("blur_sigma_px", self.blur_sigma_px, 0.0)}
        checked |= {name: check_probability(name, getattr(self, name))
                    for name in ("scale_prob", "rotation_prob", "translate_prob", "thickness_prob", "blur_prob")}
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_mapping(cls, section: Mapping | None) -> "ImageAugmentParams":
        """Settings from a config section; ValueError naming an unknown or bad option."""
        return settings_from_mapping(cls, section)


@dataclass(frozen=True)
class ImageDraw:
    """The random choices for one image (identity values where a transform is not applied)."""

    scale: float = 1.0
    rotation_deg: float = 0.0
    shift_px: tuple = (0.0, 0.0)
    thickness_px: float = 0.0
    blur_sigma_px: float = 0.0


def draw_image(params: ImageAugmentParams, rng: np.random.Generator) -> ImageDraw:
    """One image's choices. Every value is drawn whether or not its transform is applied, so changing
    one probability or range leaves the other choices as they were."""
    def pick(prob, value, identity):
        return value if rng.random() < prob else identity
    scale = pick(params.scale_prob, rng.uniform(*params.scale), 1.0)
    angle = pick(params.rotation_prob, rng.uniform(*params.rotation_deg), 0.0)
    shift = pick(params.translate_prob, tuple(float(s) for s in rng.uniform(*params.translate_px, size=2)), (0.0, 0.0))
    thick = pick(params.thickness_prob, rng.uniform(*params.thickness_px), 0.0)
    sigma = pick(params.blur_prob, rng.uniform(*params.blur_sigma_px), 0.0)
    return ImageDraw(scale, angle, shift, thick, sigma)


def augment_image(image, draw: ImageDraw) -> np.ndarray:
    """Apply ``draw`` to ``image`` (H, W) (uint8 0..255 or float in [0, 1]): affine, stroke thickness,
    blur -> (H, W) uint8 0..255 (rounded, as MNIST is stored; faint blur tails below half a grey level
    become background)."""
    out = affine(image, draw.scale, draw.rotation_deg, draw.shift_px)
    out = stroke_thickness(out, draw.thickness_px)
    out = blur(out, draw.blur_sigma_px)
    return np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


__all__ = ["ImageAugmentParams", "ImageDraw", "affine", "augment_image", "blur", "draw_image", "stroke_thickness"]
