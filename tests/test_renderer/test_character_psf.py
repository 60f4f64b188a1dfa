"""Lens character (renderer.Character, Aperture.swirl) against each term's analytic point-spread function."""

import math

import numpy as np
import pytest

from renderer import Aperture, Character, Layer, render_bokeh

N = 96


def _point_scene(x, y, d_point=0.6, d_bg=0.1, radius=1.0):
    """A small white disk (radius px) at disparity d_point over a black background at d_bg, in linear light."""
    yy, xx = np.mgrid[0:N, 0:N] + 0.5
    alpha = np.clip(radius + 0.5 - np.hypot(xx - x, yy - y), 0, 1).astype(np.float32)
    point = Layer(np.ones((N, N, 3), np.float32), alpha, np.full((N, N), d_point, np.float32))
    bg = Layer(np.zeros((N, N, 3), np.float32), np.ones((N, N), np.float32), np.full((N, N), d_bg, np.float32))
    return [point, bg], alpha


def _moments(img):
    """(total, centroid, covariance) of a non-negative H×W image."""
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]] + 0.5
    w = img.sum()
    cx, cy = (img * xx).sum() / w, (img * yy).sum() / w
    cov = (
        np.array(
            [
                [(img * (xx - cx) ** 2).sum(), (img * (xx - cx) * (yy - cy)).sum()],
                [(img * (xx - cx) * (yy - cy)).sum(), (img * (yy - cy) ** 2).sum()],
            ]
        )
        / w
    )
    return w, (cx, cy), cov


@pytest.mark.parametrize("d_point", [0.6, 0.05])  # in front of the focus and behind it
def test_loca_gives_each_channel_its_own_disk_radius(d_point):
    """A point at d images in channel c as a uniform disk of radius K·|d − d_f − loca[c]|: its second moment
    E[ρ²] = (r² + a²)/2 (a: the source disk's radius), on both sides of the focus."""
    K, d_f, loca = 40.0, 0.3, (0.05, 0.0, -0.05)
    layers, _ = _point_scene(48, 48, d_point=d_point, d_bg=min(0.3, d_point - 0.05))  # the black behind it
    img = render_bokeh(layers, K, d_f, gamma=1.0, character=Character(loca=loca))
    a2 = 1.0**2 + 1 / 12  # the source: a 1 px disk with a 1 px anti-aliased rim
    for c in range(3):
        _, _, cov = _moments(img[..., c].astype(np.float64))
        r = math.sqrt(2 * (cov[0, 0] + cov[1, 1]) - a2)  # E[ρ²] = tr(cov) = (r² + a²)/2
        want = K * abs(d_point - d_f - loca[c])
        assert r == pytest.approx(want, rel=0.04, abs=0.3), (c, r, want)


def test_an_ideal_character_renders_bit_identically():
    layers, _ = _point_scene(30, 60)
    plain = render_bokeh(layers, 20.0, 0.3, seed=3)
    assert np.array_equal(render_bokeh(layers, 20.0, 0.3, seed=3, character=Character()), plain)
    assert np.array_equal(render_bokeh(layers, 20.0, 0.3, seed=3, character={"loca": [0, 0, 0]}), plain)
    with pytest.raises(ValueError, match="loca: three focus shifts"):
        Character(loca=(0.1, 0.0))
    with pytest.raises(ValueError, match="swirl: 'tangential' or 'radial'"):
        Aperture(cateye=0.5, swirl="spiral")


@pytest.mark.parametrize("angle_deg", [0, 45, 90, 135, 210, 300])
def test_swirl_sets_the_cat_eyes_axis_at_every_field_angle(angle_deg):
    """A point off centre at field angle θ: the cat-eye's long axis is tangential (⟂ the radius) by default, and
    along the radius with swirl='radial'."""
    t = math.radians(angle_deg)
    x, y = 48 + 30 * math.cos(t), 48 + 30 * math.sin(t)
    layers, _ = _point_scene(x, y)
    radial_dir = np.array([math.cos(t), math.sin(t)])
    for swirl in ("tangential", "radial"):
        img = render_bokeh(layers, 24.0, 0.3, gamma=1.0, aperture=Aperture(cateye=0.6, swirl=swirl))
        _, _, cov = _moments(img[..., 0].astype(np.float64))
        vals, vecs = np.linalg.eigh(cov)
        long_axis = vecs[:, 1]
        along = abs(float(long_axis @ radial_dir))
        assert vals[1] > 1.3 * vals[0]  # an eye, not a disk
        assert (along < 0.1) if swirl == "tangential" else (along > 0.99), (swirl, along)
