"""renderer.lens: thin-lens cameras in mm and m map exactly onto render_bokeh's (K, d_f)."""

import math

import numpy as np
import pytest

from renderer import Layer, render_bokeh
from renderer.lens import PRESETS, Camera, depth_from_disparity, f_number_for, preset


def test_the_worked_example():
    """85 mm f/1.4, a 36 mm sensor at 1920 px, focused at 3 m: K_m = 141.6 px·m; a point at 5 m: radius 18.9 px."""
    cam = Camera(85.0, 1.4, 36.0)
    assert cam.k_metric(3.0, 1920) == pytest.approx(141.6, abs=0.05)
    assert cam.blur_radius_px(5.0, 3.0, 1920) == pytest.approx(18.9, abs=0.05)
    # the same through render_bokeh's parameters, for any z_near
    for z_near in (0.5, 1.0, 3.0):
        K, d_f = cam.render_params(3.0, z_near, 1920)
        assert K * abs(z_near / 5.0 - d_f) == pytest.approx(cam.blur_radius_px(5.0, 3.0, 1920), rel=1e-12)


def test_the_phone_telephoto_of_the_issue():
    """≈ 9 mm f/2.8 on a 4.2 mm sensor focused at 2 m: the far background blurs by ≈ 7 px at 4032 px and still
    ≈ 4 px after a 5× digital-zoom crop resized to 512 px."""
    tele = preset("phone_tele")
    assert tele.blur_radius_px(math.inf, 2.0, 4032) == pytest.approx(7.0, abs=0.1)
    assert tele.with_zoom(5).blur_radius_px(math.inf, 2.0, 512) == pytest.approx(4.4, abs=0.1)
    assert tele.equivalent_focal_length_mm == pytest.approx(77.1, abs=0.1)
    assert tele.with_zoom(5).equivalent_focal_length_mm == pytest.approx(5 * 77.1, abs=0.5)


def test_the_inverse_helpers():
    cam = Camera(50.0, 2.2, 22.3)
    K, d_f = cam.render_params(4.0, 1.5, 512)
    assert f_number_for(K, 1.5, 4.0, 50.0, 22.3, 512) == pytest.approx(2.2, rel=1e-12)
    assert f_number_for(0.0, 1.5, 4.0, 50.0, 22.3, 512) == math.inf
    assert Camera(50.0, math.inf, 36.0).render_params(4.0, 1.5, 512)[0] == 0.0  # a pinhole
    z = depth_from_disparity(np.array([1.0, 0.5, 0.0]), 1.5)
    assert z.tolist() == [1.5, 3.0, math.inf]
    assert 1.5 / 4.0 == d_f


def test_bad_cameras_are_named():
    with pytest.raises(ValueError, match="unknown; presets: ebb_canon7d_50mm_f1.8, fullframe_50mm_f1.8"):
        preset("leica")
    with pytest.raises(ValueError, match="f_number must be > 0"):
        Camera(50.0, 0.0, 36.0)
    with pytest.raises(ValueError, match="zoom must be"):
        Camera(9.0, 2.8, 4.2, zoom=0.5)
    with pytest.raises(ValueError, match="not beyond the focal length"):
        Camera(85.0, 1.4, 36.0).k_metric(0.05, 1920)
    assert all(p.name == name for name, p in PRESETS.items())


@pytest.mark.parametrize("z", [1.8, 10.0])
def test_a_point_source_images_as_a_disk_of_the_predicted_radius(z):
    """One bright texel at distance z over a black background, rendered with the camera's (K, d_f): the disk's
    second moment (of a uniform disk: r²/2, plus the texel's 1/6 per axis) gives its radius."""
    cam, W, z_f, z_near = Camera(200.0, 2.0, 36.0), 96, 3.0, 1.5
    K, d_f = cam.render_params(z_f, z_near, W)
    r_pred = cam.blur_radius_px(z, z_f, W)
    alpha = np.zeros((W, W), np.float32)
    alpha[48, 48] = 1.0
    point = Layer(np.ones((W, W, 3), np.float32), alpha, np.full((W, W), z_near / z, np.float32))
    black = Layer(np.zeros((W, W, 3), np.float32), np.ones((W, W), np.float32), np.full((W, W), 0.01, np.float32))
    out = render_bokeh([point, black], K, d_f, gamma=1.0)[..., 0].astype(np.float64)
    ys, xs = np.mgrid[0:W, 0:W] + 0.5
    m = out.sum()
    cx, cy = (out * xs).sum() / m, (out * ys).sum() / m
    r = math.sqrt(2 * (out * ((xs - cx) ** 2 + (ys - cy) ** 2)).sum() / m - 1 / 3)
    assert 3.0 < r_pred < 30 and r == pytest.approx(r_pred, rel=0.02), (r, r_pred)
    assert m == pytest.approx(1.0, abs=0.01)  # the point's energy, spread, not lost
