"""Input validation and colour transfer."""

import numpy as np
import pytest

from renderer import Layer, composite, from_linear, render_bokeh, to_linear


def _layer(h=8, w=8, d=0.5, **kw):
    args = dict(
        rgb=np.full((h, w, 3), 0.5, np.float32),
        alpha=np.ones((h, w), np.float32),
        disparity=np.full((h, w), d, np.float32),
    )
    args.update(kw)
    return Layer(**args)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(rgb=np.zeros((8, 8), np.float32)), r"rgb: expected shape H×W×3"),
        (dict(alpha=np.ones((8, 7), np.float32)), r"alpha: shape \(8, 7\) does not match"),
        (dict(disparity=np.full((8, 8), 1.5, np.float32)), r"disparity: values must lie in \[0, 1\]"),
        (dict(alpha=np.where(np.eye(8) > 0, np.nan, 1).astype(np.float32)), r"alpha: 8 non-finite"),
        (dict(rgb=np.full((8, 8, 3), -0.1, np.float32)), r"rgb: values must lie in \[0, 1\].*-0.1"),
    ],
)
def test_bad_layer_is_rejected_with_the_problem_named(kw, match):
    with pytest.raises(ValueError, match=match):
        _layer(**kw)


def test_integer_images_are_rejected_not_coerced():
    with pytest.raises(TypeError, match="rgb: expected a float array"):
        _layer(rgb=np.zeros((8, 8, 3), np.uint8))


def test_scene_level_errors():
    with pytest.raises(ValueError, match="layer list is empty"):
        render_bokeh([], 4, 0.5)
    with pytest.raises(ValueError, match=r"layers\[1\]: size \(4, 4\) differs"):
        composite([_layer(), _layer(4, 4)])
    with pytest.raises(ValueError, match="K: must be finite and >= 0"):
        render_bokeh([_layer()], -1, 0.5)
    with pytest.raises(ValueError, match="focus_disparity"):
        render_bokeh([_layer()], 4, float("nan"))
    with pytest.raises(ValueError, match="render_bokeh: unknown key .cell_size.; known: cell_px"):
        render_bokeh([_layer()], 4, 0.5, cell_size=3)
    with pytest.raises(ValueError, match="aperture"):
        render_bokeh([_layer()], 4, 0.5, aperture="star")
    # a blur radius many times the image would pad its buffers by that radius (gigabytes for K = 1e4 on 64×64)
    big = Layer(np.zeros((64, 64, 3), np.float32), np.ones((64, 64), np.float32), np.full((64, 64), 0.9, np.float32))
    with pytest.raises(ValueError, match=r"K: 10000 gives a blur radius of up to 8000 px on a 64×64 image"):
        render_bokeh([big], 1e4, 0.1)


def test_geometry_classification():
    ys, xs = np.mgrid[0:16, 0:16] + 0.5
    plane = (0.2 + 0.01 * xs + 0.005 * ys).astype(np.float32)
    assert _layer(16, 16).geometry_kind == "constant"
    lay = _layer(16, 16, disparity=plane)
    assert lay.geometry_kind == "plane"
    np.testing.assert_allclose(lay.geometry[1], (0.2, 0.01, 0.005), atol=1e-6)
    bumpy = plane.copy()
    bumpy[3, 3] += 0.05
    assert _layer(16, 16, disparity=bumpy).geometry_kind == "general"


@pytest.mark.parametrize("gamma", [1.0, 2.2, "srgb"])
def test_transfer_round_trip(gamma):
    x = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(from_linear(to_linear(x, gamma), gamma), x, atol=1e-12)


def test_srgb_curve_is_the_standard_one():
    # IEC 61966-2-1: encoded 0.5 -> 0.21404 linear; linear segment below 0.04045.
    assert to_linear(np.array(0.5), "srgb") == pytest.approx(0.214041, abs=1e-6)
    assert to_linear(np.array(0.04), "srgb") == pytest.approx(0.04 / 12.92)


def test_a_layer_keeps_what_was_checked_nan_written_later_cannot_reach_the_render():
    """A NaN written into a Layer's array after construction once reached the render."""
    from renderer import Layer, render_bokeh

    rgb = np.full((8, 8, 3), 0.5, np.float32)
    alpha = np.ones((8, 8), np.float32)
    disp = np.full((8, 8), 0.5, np.float32)
    layer = Layer(rgb, alpha, disp)
    with pytest.raises(ValueError, match="read-only"):
        layer.disparity[0, 0] = np.nan
    disp[0, 0] = np.nan  # the caller's own array: the layer holds a copy
    rgb[1, 1] = 7.0
    assert np.isfinite(render_bokeh([layer], 8.0, 0.2)).all() and layer.rgb.max() == 0.5
