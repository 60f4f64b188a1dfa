"""Depth-mapped (general) layers are intersected exactly: the Numba walk over texel cells and the reference's
independent NumPy walk agree with each other and with a brute-force march 10⁴× finer than the old one; rays no
longer step over thin in-focus surfaces (a box's edges, 1-2 px ridges)."""

import numpy as np
import pytest
from conftest import psnr, textured
from scipy import ndimage

from datagen.config import BUILD_RENDER
from renderer import Layer, render_bokeh
from renderer.kernels import bilinear1, exact_root
from renderer.reference import exact_hit, render_reference


def _maps(rng, h=24, w=30):
    d = rng.random((h, w)) * 0.2 + 0.3
    d[:, rng.integers(2, w - 2)] = 0.9  # a 1-texel ridge
    d[rng.integers(0, h) :, : rng.integers(0, w)] += 0.3  # a step
    return np.clip(d, 0, 1).astype(np.float32)


def test_the_kernel_and_the_reference_solve_the_same_rays_exactly():
    rng = np.random.default_rng(2)
    pad = 40
    worst_pair = worst_brute = 0.0
    for _ in range(12):
        d = _maps(rng)
        h, w = d.shape
        dtex = np.pad(d, pad, mode="edge")[None]
        ang, rad = rng.random() * 2 * np.pi, np.sqrt(rng.random())
        ox, oy, df = 32 * rad * np.cos(ang), 32 * rad * np.sin(ang), rng.random()
        lo, hi = float(d.min()), float(d.max())
        py, px = np.mgrid[0:h, 0:w] + 0.5
        ref = exact_hit(d.astype(np.float64), px, py, ox, oy, df, lo, hi)
        for i, j in zip(rng.integers(0, h, 60), rng.integers(0, w, 60)):
            x, y = j + 0.5, i + 0.5
            if bilinear1(dtex, 0, x + (hi - df) * ox, y + (hi - df) * oy, pad) - hi >= 0:
                continue
            k = exact_root(dtex, 0, pad, x, y, ox, oy, df, lo, hi)
            worst_pair = max(worst_pair, abs(k - ref[i, j]))
            # brute force: 2·10⁵ steps along the ray, the first where the surface is reached
            ds = np.linspace(hi, lo, 200001)
            u = np.clip(x + (ds - df) * ox - 0.5, 0, w - 1)
            v = np.clip(y + (ds - df) * oy - 0.5, 0, h - 1)
            j0, i0 = np.minimum(u.astype(int), w - 2), np.minimum(v.astype(int), h - 2)
            fx, fy = u - j0, v - i0
            dv = (d[i0, j0] * (1 - fx) + d[i0, j0 + 1] * fx) * (1 - fy) + (
                d[i0 + 1, j0] * (1 - fx) + d[i0 + 1, j0 + 1] * fx
            ) * fy
            met = np.nonzero(dv - ds >= 0)[0]
            brute = ds[met[0]] if len(met) else lo
            worst_brute = max(worst_brute, abs(k - brute) - (hi - lo) / 200000)
    assert worst_pair < 1e-6 and worst_brute < 1e-6, (worst_pair, worst_brute)


def _box():
    h = w = 64
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    box = (np.abs(xs - 30) < 13) & (np.abs(ys - 34) < 12)
    layer = Layer(textured(h, w, 7), np.ones((h, w), np.float32), np.where(box, 0.6, 0.3).astype(np.float32))
    return [layer], 24.0, 0.58, box & ~ndimage.binary_erosion(box)  # focused just behind the box's face


def _ridges():
    h = w = 64
    d = np.full((h, w), 0.25, np.float32)
    for x0, width in ((14, 1), (30, 2), (46, 1)):
        d[:, x0 : x0 + width] = 0.7
    d[40:42, :] = 0.7
    return [Layer(textured(h, w, 11), np.ones((h, w), np.float32), d)], 28.0, 0.69, d > 0.5


def _moto():
    """The Middlebury motorcycle (scikit-image's copy), a 320 px crop around the wheel and struts at 64×64,
    focused on the bike."""
    from PIL import Image
    from skimage import data

    from datagen.demo_assets import fill_disparity_holes

    left, _, disp = data.stereo_motorcycle()
    disp = fill_disparity_holes(np.asarray(disp, np.float32))
    y0, x0, s = 300, 700, 320
    rgb = np.asarray(Image.fromarray(left[y0 : y0 + s, x0 : x0 + s]).resize((64, 64), Image.BILINEAR), np.float32) / 255
    d = np.asarray(Image.fromarray(disp[y0 : y0 + s, x0 : x0 + s]).resize((64, 64), Image.BILINEAR), np.float32)
    d = (d - d.min()) / (d.max() - d.min())
    df = float(np.percentile(d, 90))  # the bike
    return [Layer(rgb, np.ones_like(d), d.astype(np.float32))], 24.0, df, np.abs(d - df) * 24 < 1.0


def _wall_object():
    """Self-occlusion: a raised ellipse (disparity 0.75) on a textured wall (0.3) of one depth map, focused on the
    wall: the object's blurred edge (10.8 px) covers the in-focus wall beside it."""
    h = w = 64
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    obj = ((xs - 0.45 * w) / (0.22 * w)) ** 2 + ((ys - 0.5 * h) / (0.3 * h)) ** 2 < 1
    d = np.where(obj, 0.75, 0.3).astype(np.float32)
    wall = ~obj & (ndimage.distance_transform_edt(~obj) > 2)
    return [Layer(textured(h, w, 5), np.ones((h, w), np.float32), d)], 24.0, 0.3, wall


def _moto_background():
    """Self-occlusion on real data: the Middlebury motorcycle's crop of _moto focused on its background (the 10th
    percentile of its disparity): the bike's blurred parts over the in-focus back wall."""
    layers, K, _, _ = _moto()
    d = layers[0].disparity
    df = float(np.percentile(d, 10))
    return layers, K, df, np.abs(d - df) * K < 1.0


BUILD = BUILD_RENDER  # datagen's render settings


def _hatching(out, ref, disp, K, df):
    """RMS of the error's high-frequency part (the error minus its 3×3 mean) along the blurred outlines of the map's
    depth steps (within the largest blur radius of a step): a sampling pattern shows here, smooth bias does not."""
    err = np.abs(out - ref).mean(axis=2)
    hf = err - ndimage.uniform_filter(err, 3)
    step = ndimage.morphological_gradient(disp, size=3) > 0.05
    band = ndimage.distance_transform_edt(~step) <= max(K * np.abs(disp - df).max(), 2.0)
    return float(np.sqrt(np.mean(hf[band] ** 2)))


@pytest.mark.slow
@pytest.mark.parametrize("scene", [_box, _ridges, _moto, _wall_object, _moto_background])
def test_depth_map_scenes_match_a_converged_reference_at_the_defaults_and_the_builds_settings(scene):
    """≥ 62 dB at the defaults and ≥ 60 dB at the build's settings (the issue asks 58), in-focus parts within 0.02.
    Measured, dB at the defaults | the build's settings: box 63.8 | 62.8; ridges 68.0 | 67.6 (65.0 | 62.3 with
    the fold floor before); motorcycle focused on the bike 76.7 | 69.8; the self-occluding classes, new: object on
    a wall focused on the wall 68.1 | 62.2 (55.4 | 53.4 before the fold probe), the motorcycle focused on its
    background (its smooth ramps were read as a first-order shifted disk: 52.6 | 52.5 dB on a 144² crop before,
    78.2 | 74.8 now). The reference is shown converged on the hardest case, the object on the wall (n 40 → 56)."""
    layers, K, df, focused = scene()
    ref = render_reference(layers, K, df, n=40)
    if scene is _wall_object:  # more aperture samples move nothing that matters; the finer one is the reference
        finer = render_reference(layers, K, df, n=56, seed=1)
        assert psnr(ref, finer) > 65
        ref = finer
    disp = layers[0].disparity
    default, build = render_bokeh(layers, K, df), render_bokeh(layers, K, df, **BUILD)
    for out, min_db in ((default, 62.0), (build, 60.0)):
        assert psnr(out, ref) >= min_db
        assert np.abs(out - ref).max(axis=2)[focused].max() <= 0.02
    # no sampling pattern: the build's high-frequency error stays within 1.5× the defaults' or below 5e-4 RMS
    # (66 dB, invisible), whichever is larger
    assert _hatching(build, ref, disp, K, df) <= max(1.5 * _hatching(default, ref, disp, K, df), 5e-4)
