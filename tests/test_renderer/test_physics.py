"""Physical properties of the thin-lens renderer."""

import math

import numpy as np
import pytest
from conftest import disk_alpha, psnr, textured

from renderer import Aperture, Highlights, Layer, composite, defocus_map, pinhole_view, render_bokeh, visible_disparity
from renderer.reference import render_reference


def _const(rgb, alpha, d, name=""):
    h, w = alpha.shape
    if np.ndim(rgb) == 1:
        rgb = np.broadcast_to(np.asarray(rgb, np.float32), (h, w, 3))
    return Layer(
        np.ascontiguousarray(rgb, dtype=np.float32), alpha.astype(np.float32), np.full((h, w), d, np.float32), name=name
    )


def _three_layer_scene(h=64, w=64, seed=0):
    """Two soft foreground disks at their own disparities over a textured, tilted background."""
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    bg_d = (0.1 + 0.15 * xs / w + 0.05 * ys / h).astype(np.float32)
    bg = Layer(textured(h, w, seed), np.ones((h, w), np.float32), bg_d, name="bg")
    fg1 = _const(textured(h, w, seed + 1), disk_alpha(h, w, 0.4 * h, 0.35 * w, 0.22 * h), 0.8, "fg1")
    fg2 = _const(textured(h, w, seed + 2), disk_alpha(h, w, 0.65 * h, 0.65 * w, 0.2 * h), 0.55, "fg2")
    return [bg, fg2, fg1]


# ---------------------------------------------------------------------------------------------------------
# K = 0 and companions
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [2.2, "srgb", 1.0])
def test_k0_equals_composite_exactly(gamma):
    layers = _three_layer_scene()
    np.testing.assert_array_equal(render_bokeh(layers, 0.0, 0.3, gamma=gamma), composite(layers, gamma=gamma))


def test_composite_is_over_in_linear_light():
    h, w = 16, 16
    a = np.full((h, w), 0.25, np.float32)
    front = _const([1.0, 0.0, 0.0], a, 0.9)
    back = _const([0.0, 0.0, 1.0], np.ones((h, w)), 0.1)
    out = composite([back, front], gamma=2.2)  # any order: sorted by disparity
    expect = np.array([0.25, 0.0, 0.75]) ** (1 / 2.2)
    np.testing.assert_allclose(out, np.broadcast_to(expect, out.shape), atol=1e-6)


@pytest.mark.parametrize("gamma", [2.2, "srgb"])
def test_pinhole_view_is_composite_and_visible_disparity_in_one_pass(gamma):
    layers = _three_layer_scene()
    image, disp = pinhole_view(layers, gamma=gamma)
    np.testing.assert_array_equal(image, composite(layers, gamma=gamma))
    np.testing.assert_array_equal(disp, visible_disparity(layers))


def test_visible_disparity_and_defocus_map():
    h, w = 32, 32
    fg = _const([1, 1, 1], disk_alpha(h, w, 16, 16, 8, soft=1e-3), 0.8)
    bg = _const([0, 0, 0], np.ones((h, w)), 0.2)
    d = visible_disparity([bg, fg])
    assert d[16, 16] == pytest.approx(0.8) and d[0, 0] == pytest.approx(0.2)
    np.testing.assert_allclose(defocus_map([bg, fg], 10.0, 0.5), 10.0 * (d - 0.5), atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Point spread: a bright point images as a flat disk of radius K·|d − d_f|
# ---------------------------------------------------------------------------------------------------------


def _point_scene(size, d, pos=None):
    alpha = np.zeros((size, size), np.float32)
    cy, cx = pos if pos is not None else (size // 2, size // 2)
    alpha[cy, cx] = 1.0
    return [_const([1.0, 1.0, 1.0], alpha, d)], (cy + 0.5, cx + 0.5)


def _radius_by_angle(psf, cy, cx, plateau, bins=120, sub=4):
    """Boundary radius R(φ) of a uniform highlight from the light in each angular wedge outside r_in = 8 px:
    mass = plateau·(R² − r_in²)·dφ/2. Pixels are split into sub × sub parts for the angle assignment. Robust to
    the sub-pixel dithering of the rim, unlike tracing the rim pixel by pixel."""
    h, w = psf.shape
    offs = (np.arange(sub) + 0.5) / sub
    ys = (np.arange(h)[:, None] + offs[None, :]).reshape(-1)[:, None]
    xs = (np.arange(w)[:, None] + offs[None, :]).reshape(-1)[None, :]
    val = np.repeat(np.repeat(psf, sub, axis=0), sub, axis=1) / sub**2
    rho = np.hypot(ys - cy, xs - cx)
    phi = np.arctan2(ys - cy, xs - cx) % (2 * np.pi)
    r_in = 8.0
    keep = rho >= r_in
    idx = (phi[keep] / (2 * np.pi) * bins).astype(int) % bins
    mass = np.bincount(idx, weights=val[keep], minlength=bins)
    return np.sqrt(2 * mass / (plateau * 2 * np.pi / bins) + r_in**2)


@pytest.mark.parametrize("K, d, df", [(8.0, 0.9, 0.4), (20.0, 0.2, 0.95), (32.0, 0.75, 0.25)])
def test_point_images_as_flat_disk_of_the_coc_radius(K, d, df):
    r = K * abs(d - df)
    size = int(2 * r) + 24
    layers, (cy, cx) = _point_scene(size, d)
    out = render_bokeh(layers, K, df, gamma=1.0)[..., 0].astype(np.float64)
    energy = out.sum()
    assert energy == pytest.approx(1.0, rel=0.01)  # the texel's energy (its bilinear footprint integrates to 1)
    plateau = 1.0 / (math.pi * r * r)
    radius = math.sqrt(np.count_nonzero(out > 0.5 * plateau) / math.pi)
    assert abs(radius - r) <= 0.5
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    dist = np.hypot(ys - cy, xs - cx)
    inner = out[dist < r - 2.0]
    assert inner.std() / inner.mean() < 0.05  # flat, no ghost copies
    assert out[dist > r + 2.0].sum() < 0.005 * energy  # nothing beyond the rim


@pytest.mark.parametrize("blades", [5, 6, 8])
@pytest.mark.parametrize("behind_focus", [True, False])
def test_polygon_aperture_gives_polygonal_highlight_with_n_sides(blades, behind_focus):
    """R(φ) of the highlight has N-fold symmetry (its strongest harmonic is the N-th), vertices on the CoC circle
    at the blade rotation, and, in front of the focus, the point-mirrored polygon (as through a real lens)."""
    K, rot = 30.0, 10.0
    d, df = (0.1, 0.9) if behind_focus else (0.9, 0.1)
    r = K * abs(d - df)
    size = int(2 * r) + 16
    layers, (cy, cx) = _point_scene(size, d)
    out = render_bokeh(layers, K, df, gamma=1.0, aperture=Aperture(blades=blades, rotation_deg=rot))[..., 0]
    area = (r * r) * blades / 2 * math.sin(2 * math.pi / blades)
    radii = _radius_by_angle(out, cy, cx, 1.0 / area)
    spectrum = np.fft.rfft(radii)
    assert np.argmax(np.abs(spectrum[1:25])) + 1 == blades
    smooth = (np.roll(radii, 1) + radii + np.roll(radii, -1)) / 3.0
    assert smooth.max() == pytest.approx(r, abs=1.0)  # vertices on the CoC circle
    assert smooth.min() == pytest.approx(r * math.cos(math.pi / blades), abs=1.0)  # flat sides at the apothem
    # phase of the N-th harmonic: a vertex at the blade rotation (mirrored through the centre in front of focus)
    vertex = math.degrees(-np.angle(spectrum[blades]) / blades) + 0.5 * 360.0 / len(radii)  # bin centres
    expect = rot if behind_focus else rot + 180.0
    sector = 360.0 / blades
    assert abs((vertex - expect + sector / 2) % sector - sector / 2) <= 2.0


def test_circle_aperture_highlight_is_round():
    layers, (cy, cx) = _point_scene(64, 0.9)
    out = render_bokeh(layers, 30.0, 0.1, gamma=1.0)[..., 0]
    radii = _radius_by_angle(out, cy, cx, 1.0 / (math.pi * 24.0**2))
    assert radii.mean() == pytest.approx(24.0, abs=0.5)
    assert np.abs(np.fft.rfft(radii)[1:25]).max() / len(radii) < 0.1  # no shape harmonic above 0.1 px


def test_cateye_clips_toward_the_corner_and_darkens_it():
    size = 96
    K, d, df = 24.0, 0.9, 0.1
    centre, _ = _point_scene(size, d, (48, 48))
    corner, _ = _point_scene(size, d, (80, 80))
    ap = Aperture(cateye=0.6)
    e_centre = render_bokeh(centre, K, df, gamma=1.0, aperture=ap)[..., 0]
    e_corner = render_bokeh(corner, K, df, gamma=1.0, aperture=ap)[..., 0]
    # no vignetting on axis (the rays' share of the pupil's exact overlap: within 2 % on an isolated point)
    assert e_centre.sum() == pytest.approx(1.0, rel=0.02)
    assert e_corner.sum() < 0.9  # light falloff toward the corner
    # The corner highlight is a cat's eye: narrower along the radial direction (the diagonal) than across it.
    ys, xs = np.nonzero(e_corner > 0.5 * e_corner.max())
    u = (xs - xs.mean() + ys - ys.mean()) / math.sqrt(2)  # radial (toward the corner)
    v = (xs - xs.mean() - ys + ys.mean()) / math.sqrt(2)  # tangential
    assert np.ptp(u) < 0.8 * np.ptp(v)


def test_a_cat_eye_darkens_a_surface_by_exactly_the_pupils_overlap():
    """Light falloff under mechanical vignetting: a uniform surface, in focus or blurred, reads its colour times
    the share of the aperture the shifted exit pupil lets through, A(d)/π for two unit disks d apart (d = 2·cateye·
    the pixel's offset over the half diagonal). It was off by up to 24 % where the aperture's cells were coarse."""
    size, cateye = 96, 0.5
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    d = 2 * cateye * np.hypot(xx - size / 2, yy - size / 2) / (0.5 * math.sqrt(2) * size)
    want = 0.5 * (2 * np.arccos(d / 2) - d / 2 * np.sqrt(4 - d * d)) / math.pi
    for disparity in (0.3, 0.1):  # in focus, and blurred by 8 px
        surface = _const([0.5, 0.5, 0.5], np.ones((size, size)), disparity, "surface")
        out = render_bokeh([surface], 40.0, 0.3, gamma=1.0, aperture=Aperture(cateye=cateye))[..., 0]
        assert np.abs(out / want - 1)[12:-12, 12:-12].max() < 1e-4, disparity


# ---------------------------------------------------------------------------------------------------------
# Occlusion
# ---------------------------------------------------------------------------------------------------------


def test_sharp_subject_shows_no_background_colour():
    h = w = 64
    subject = disk_alpha(h, w, 32, 32, 14, soft=1e-3)
    fg = _const([1.0, 0.0, 0.0], subject, 0.7, "subject")
    bg = _const(textured(h, w, 3) * np.array([0, 1, 1], np.float32), np.ones((h, w)), 0.1, "bg")
    out = render_bokeh([fg, bg], 24.0, 0.7)
    inside = subject >= 1.0
    np.testing.assert_array_equal(out[inside], np.broadcast_to(np.float32([1, 0, 0]), out[inside].shape))
    # ...while the background around it really is blurred (r = 14.4 px)
    outside = subject <= 0.0
    assert out[outside][:, 1].std() < textured(h, w, 3)[outside][:, 1].std() * 0.8


@pytest.mark.parametrize("hidden", [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
def test_blurred_foreground_edge_reveals_the_true_hidden_background(hidden):
    """Sharp background; blurred opaque foreground covering x < 32. A pixel just inside the foreground sees the
    background through the part of its aperture disk that misses the foreground: I = f·c_fg + (1 − f)·c_bg(p),
    with c_bg(p) the content hidden behind the foreground, not a smear of the foreground."""
    h, w, edge, K, d_fg, df = 32, 64, 32, 16.0, 0.8, 0.2
    r = K * (d_fg - df)  # 9.6 px
    fg_alpha = np.zeros((h, w), np.float32)
    fg_alpha[:, :edge] = 1.0
    fg = _const([0.9, 0.6, 0.1], fg_alpha, d_fg, "fg")
    bg_rgb = np.zeros((h, w, 3), np.float32)
    bg_rgb[:] = [0.1, 0.1, 0.9]
    bg_rgb[:, edge - 8 : edge] = hidden  # hidden behind the foreground in the pinhole view
    bg = _const(bg_rgb, np.ones((h, w)), df, "bg")
    assert np.allclose(composite([fg, bg], gamma=1.0)[:, edge - 8 : edge], [0.9, 0.6, 0.1])
    out = render_bokeh([fg, bg], K, df, gamma=1.0)
    for col in range(edge - 7, edge):
        t = (edge - (col + 0.5)) / r  # distance to the edge in units of r, inside the foreground
        f = 1.0 - (math.acos(t) - t * math.sqrt(1 - t * t)) / math.pi  # disk fraction on the foreground side
        expect = f * np.array([0.9, 0.6, 0.1]) + (1 - f) * np.array(hidden)
        np.testing.assert_allclose(out[h // 2, col], expect, atol=0.02)


# ---------------------------------------------------------------------------------------------------------
# Convergence to the aperture integral
# ---------------------------------------------------------------------------------------------------------


def test_agrees_with_dense_reference_on_three_layer_scene():
    layers = _three_layer_scene()
    for K, df in [(12.0, 0.55), (24.0, 0.8), (32.0, 0.15)]:
        ref = render_reference(layers, K, df, n=48)
        assert psnr(render_bokeh(layers, K, df), ref) >= 45.0, (K, df)


def test_general_disparity_layer_is_intersected_where_the_ray_meets_it():
    """A single RGBD layer with a depth step: near half blurred, far half in focus. The blurred near surface
    spills over the far one (it is in front), which a lookup of disparity at the output pixel cannot do."""
    h, w = 48, 64
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    disp = np.where(xs < 32, 0.85, 0.15 + 0.001 * ys).astype(np.float32)
    rgb = textured(h, w, 7)
    rgb[:, :32] = [1.0, 0.9, 0.0]
    layer = Layer(rgb, np.ones((h, w), np.float32), disp, name="rgbd")
    assert layer.geometry_kind == "general"
    K, df = 16.0, 0.15
    out = render_bokeh([layer], K, df)
    ref = render_reference([layer], K, df, n=48)
    assert psnr(out, ref) >= 45.0
    # The far region next to the step is partly covered by the blurred yellow near surface.
    assert out[24, 34, 2] < rgb[24, 34, 2] - 0.05 or out[24, 34, 0] > rgb[24, 34, 0] + 0.05


def test_tilted_plane_converges_to_aperture_integral_as_samples_grow():
    layers = _three_layer_scene(48, 48, seed=4)
    ref = render_reference(layers, 24.0, 0.8, n=64)
    # the ray sampler alone: disk reads in rows (strips) do not depend on cell_px
    scores = [
        psnr(render_bokeh(layers, 24.0, 0.8, cell_px=c, min_samples=1, strips=False), ref) for c in (6.0, 3.0, 1.5)
    ]
    assert scores[0] < scores[1] < scores[2]


def test_oracle_references_at_default_quality(oracle_scenes):
    for name, (layers, K, df, ref, _) in oracle_scenes.items():
        out = render_bokeh(layers, K, df, gamma=1.0)
        # ref is linear; gamma=1 output is linear too (clipped at 1 like the render)
        score = psnr(out, np.minimum(ref, 1.0))
        assert score >= 55.0, f"{name}: {score:.2f} dB"


# ---------------------------------------------------------------------------------------------------------
# Determinism, highlights, reporting
# ---------------------------------------------------------------------------------------------------------


def test_deterministic_for_a_seed_whatever_the_thread_count():
    import numba

    layers = _three_layer_scene(32, 32)
    a = render_bokeh(layers, 16.0, 0.55, seed=3)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        b = render_bokeh(layers, 16.0, 0.55, seed=3)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, render_bokeh(layers, 16.0, 0.55, seed=4))


def test_highlight_recovery_brightens_clipped_bokeh_balls_and_is_reported():
    size = 48
    alpha = np.zeros((size, size), np.float32)
    alpha[22:26, 22:26] = 1.0  # a small clipped light
    light = _const([1.0, 1.0, 1.0], alpha, 0.9)
    bg = _const([0.2, 0.2, 0.2], np.ones((size, size)), 0.9)
    plain = render_bokeh([light, bg], 16.0, 0.3, gamma=1.0)
    hl = Highlights(threshold=0.9, gain=4.0)
    boosted, info = render_bokeh([light, bg], 16.0, 0.3, gamma=1.0, highlights=hl, return_info=True)

    # The light's linear value goes from 1 to the gain (4): its energy above the 0.2 background grows by
    # (4 − 0.2) / (1 − 0.2); the unclipped background is unchanged.
    def excess(img):
        return (img[..., 0].astype(np.float64) - 0.2).sum()

    assert excess(boosted) == pytest.approx((4.0 - 0.2) / (1.0 - 0.2) * excess(plain), rel=0.02)
    assert boosted[0, 0, 0] == pytest.approx(0.2, abs=1e-6)
    assert info["highlights"]["gain"] == 4.0 and info["highlights"]["threshold"] == 0.9
    assert "clipped_fraction" in info["highlights"]


def test_sampling_scales_with_circle_of_confusion():
    layers = _three_layer_scene()
    _, small = render_bokeh(layers, 4.0, 0.55, return_info=True)
    _, large = render_bokeh(layers, 32.0, 0.55, return_info=True)
    assert small["mean_spp"] < large["mean_spp"]
    _, sharp = render_bokeh(layers, 0.0, 0.55, return_info=True)
    assert sharp["mean_spp"] == 1.0


# ---------------------------------------------------------------------------------------------------------
# Shortcuts and speed knobs
# ---------------------------------------------------------------------------------------------------------


def test_edge_cell_moments_match_the_clipped_square():
    from renderer.kernels import clipped_square_moments

    g = (np.arange(400) + 0.5) / 200.0 - 1.0
    U, V = np.meshgrid(g, g)
    rng = np.random.default_rng(0)
    for _ in range(25):
        phi, c = rng.uniform(0, 2 * np.pi), rng.uniform(-1.3, 1.3)
        nx, ny = math.cos(phi), math.sin(phi)
        inside = nx * U + ny * V <= c
        area, mu, mv, vu, vv = clipped_square_moments(1.0, nx, ny, c)
        assert area == pytest.approx(4.0 * inside.mean(), abs=0.02)
        if inside.mean() > 0.01:
            np.testing.assert_allclose(
                [mu, mv, vu, vv], [U[inside].mean(), V[inside].mean(), U[inside].var(), V[inside].var()], atol=0.01
            )


def test_disk_read_in_rows_agrees_with_traced_rays_and_the_reference():
    """Every ray of every pixel meets one fronto-parallel layer: the closed-form disk mean (strips=True) and the
    traced cells (strips=False) give the same aperture integral."""
    h, w = 64, 64
    layer = _const(textured(h, w, 3), np.ones((h, w)), 0.2)
    ref = render_reference([layer], 24.0, 0.8, n=48)  # r = 14.4 px
    rows, info_rows = render_bokeh([layer], 24.0, 0.8, return_info=True)
    rays, info_rays = render_bokeh([layer], 24.0, 0.8, return_info=True, strips=False)
    assert psnr(rows, ref) >= 45.0 and psnr(rays, ref) >= 45.0 and psnr(rows, rays) >= 45.0
    assert info_rows["max_spp"] <= 2 * 14.4 + 3  # one read per texel row of the disk
    assert info_rays["mean_spp"] > info_rows["mean_spp"]


def test_disk_read_for_a_general_layer_only_where_it_is_flat_over_the_disk():
    """A depth-map (general) background is read as a disk mean where its disparity stays within 0.25 px of blur
    of the pixel's own over the disk, and traced where it varies more: the result agrees with the reference
    either way, and the flat part costs row reads instead of rays."""
    h, w = 64, 64
    ys, xs = np.mgrid[0:h, 0:w]
    disp = 0.2 + 0.002 * np.sin(xs / 7.0) * np.cos(ys / 5.0)  # not a plane; K·Δd ≤ 0.1 px at K = 24
    disp[:, 48:] += 0.1 * (xs[:, 48:] - 48) / 16  # a ramp on the right: K·Δd of several px over the disk
    layer = Layer(textured(h, w, 4), np.ones((h, w), np.float32), disp.astype(np.float32))
    assert layer.geometry_kind == "general"
    ref = render_reference([layer], 24.0, 0.8, n=48)
    rows, info_rows = render_bokeh([layer], 24.0, 0.8, return_info=True)
    rays, info_rays = render_bokeh([layer], 24.0, 0.8, return_info=True, strips=False)
    assert psnr(rows, ref) >= 40.0 and psnr(rows, rays) >= 45.0
    # the ramp's columns and the disk radius (~16 px) left of it are traced: about half the image reads rows
    # (measured: 128 vs 232 mean reads per pixel)
    assert info_rows["mean_spp"] < 0.65 * info_rays["mean_spp"]


@pytest.mark.parametrize("slope, rows_read", [(0.0015, True), (0.004, False)])
def test_smooth_sloped_depth_map_is_read_as_a_shifted_weighted_disk(slope, rows_read):
    """A depth map sloped too much for a plain disk but smooth (no ray meets it twice): where the slope is gentle
    (K·|∇D| ≈ 0.036 at K = 24) its footprint is a circle shifted by the slope, read in rows with the slope's
    first-order weight; steeper (≈ 0.1), the weight's second-order term (6·(k·u/r)², ~6 % at the rim) would cost
    ~10 dB, so its rays are traced. Either way it agrees with the reference and with tracing every ray (measured:
    64.7 / 67.5 dB rows / rays at 0.0015; 67.4 / 67.8 dB at 0.004; the rows path at 0.004 scored 52 dB)."""
    h, w = 64, 64
    ys, xs = np.mgrid[0:h, 0:w]
    disp = 0.2 + slope * xs + 0.002 * np.sin(ys / 6.0)  # blur 8–14 px at d_f = 0.8
    layer = Layer(textured(h, w, 6), np.ones((h, w), np.float32), disp.astype(np.float32))
    assert layer.geometry_kind == "general"
    ref = render_reference([layer], 24.0, 0.8, n=48)
    rows, info_rows = render_bokeh([layer], 24.0, 0.8, return_info=True)
    rays, info_rays = render_bokeh([layer], 24.0, 0.8, return_info=True, strips=False)
    assert psnr(rows, ref) >= 62.0 and psnr(rays, ref) >= 62.0 and psnr(rows, rays) >= 62.0
    assert (info_rows["mean_spp"] < 0.5 * info_rays["mean_spp"]) == rows_read


def test_fold_fraction_reports_the_band_within_blur_of_a_depth_step():
    """``info["fold_fraction"]``: the share of pixels where a depth map may occlude itself within their blur (a
    step's steep texels in reach). A smooth map has none; at a step it is the columns within the circle of
    confusion (+ the margin) of the step, so it grows with K, and those pixels cost more rays than the rest."""
    h, w = 32, 96
    ys, xs = np.mgrid[0:h, 0:w]
    smooth = Layer(
        textured(h, w, 7), np.ones((h, w), np.float32), (0.2 + 0.002 * xs + 0.001 * np.sin(ys / 4.0)).astype(np.float32)
    )
    assert render_bokeh([smooth], 10.0, 0.88, return_info=True)[1]["fold_fraction"] == 0.0
    step = Layer(
        textured(h, w, 7),
        np.ones((h, w), np.float32),
        np.where(xs < w // 2, 0.2, 0.5).astype(np.float32) + 0.001 * np.sin(ys / 4.0).astype(np.float32),
    )
    assert step.geometry_kind == "general"
    fractions = []
    for K in (5.0, 10.0):
        _, info = render_bokeh([step], K, 0.88, return_info=True, seed=1)
        # steep columns: w/2 − 1 and w/2. A column folds when one lies within its blur + 2.5 px: the far side's
        # blur is K·0.68; the near side's is K·0.38 unless its window (the layer's largest blur + 2 columns) holds
        # far texels, whose rays can reach it too
        radius = math.ceil(K * 0.681) + 2
        band = 0
        for j in range(w):
            far_in_window = j < w // 2 or j - radius <= w // 2 - 1
            blur = K * (0.68 if far_in_window else 0.38)
            band += min(abs(j - (w // 2 - 1)), abs(j - w // 2)) <= blur + 2.5
        assert info["fold_fraction"] == pytest.approx(band / w, abs=1e-9)
        fractions.append(info["fold_fraction"])
    assert fractions[0] < fractions[1]
    # those pixels are the ones traced with finer cells
    _, info = render_bokeh([smooth], 10.0, 0.88, return_info=True)
    _, info_step = render_bokeh([step], 10.0, 0.88, return_info=True)
    assert info_step["mean_spp"] > info["mean_spp"]


def test_opaque_in_focus_foreground_is_read_once_and_hides_the_background():
    h, w = 48, 48
    alpha = disk_alpha(h, w, 24, 24, 16, soft=1e-3)
    bg = _const(textured(h, w, 5), np.ones((h, w)), 0.1)
    out, info = render_bokeh([bg, _const(textured(h, w, 6), alpha, 0.7)], 20.0, 0.7, return_info=True)
    sharp = composite([bg, _const(textured(h, w, 6), alpha, 0.7)])
    np.testing.assert_allclose(out[20:29, 20:29], sharp[20:29, 20:29], atol=1e-6)
    # the same foreground a little transparent inside: every ray must look behind it
    _, info_clear = render_bokeh(
        [bg, _const(textured(h, w, 6), np.minimum(alpha, 0.99), 0.7)], 20.0, 0.7, return_info=True
    )
    assert info["mean_spp"] < info_clear["mean_spp"]


def test_fast_settings_stay_close_to_the_reference():
    """The datagen build's render settings."""
    from datagen.build import BuildConfig

    layers = _three_layer_scene()
    for K, df in [(12.0, 0.55), (32.0, 0.15)]:
        ref = render_reference(layers, K, df, n=48)
        fast, info = render_bokeh(layers, K, df, return_info=True, **BuildConfig().render)
        _, full = render_bokeh(layers, K, df, return_info=True)
        assert psnr(fast, ref) >= 40.0, (K, df)
        assert info["rays"] < full["rays"]
    with pytest.raises(ValueError, match="edge_px"):
        render_bokeh(layers, 8.0, 0.5, edge_px=-1.0)
    with pytest.raises(ValueError, match="strip_min_px"):
        render_bokeh(layers, 8.0, 0.5, strip_min_px=-1.0)


def test_a_texture_cache_reuses_repeated_layers_and_changes_no_bit():
    """renderer.TextureCache: a layer object given again is not decoded again, its summed-area table not summed
    again at the same padding; every image equals the uncached render bit for bit; the cache keeps only the layers
    of its latest call."""
    from renderer import TextureCache

    bg, fg2, fg1 = _three_layer_scene(48, 48)
    cache = TextureCache()
    for df in (0.3, 0.3, 0.9):  # 0.9 changes the padding: textures reused, tables summed anew
        for boost in (None, Highlights()):
            got = render_bokeh([bg, fg2, fg1], 6.0, df, highlights=boost, textures=cache)
            assert np.array_equal(got, render_bokeh([bg, fg2, fg1], 6.0, df, highlights=boost))
    assert (cache.misses, cache.hits) == (6, 12)  # 3 layers × (no boost, boost), each prepared once
    assert cache.tables_reused == 6  # the second df = 0.3 pass
    view = pinhole_view([bg, fg2, fg1], textures=cache)
    assert cache.hits == 15 and all(np.array_equal(a, b) for a, b in zip(view, pinhole_view([bg, fg2, fg1])))
    moved = _const(textured(48, 48, 9), disk_alpha(48, 48, 20, 20, 9), 0.7, "moved")
    render_bokeh([bg, moved], 6.0, 0.3, textures=cache)
    assert {entry["layer"].name for entry in cache._entries.values()} == {"bg", "moved"}


def test_a_render_that_repeats_the_latest_one_traces_only_around_what_moved():
    """A subject moves between two renders with the same settings: the cache traces only the pixels within its
    rays' reach of the subject's old and new coverage, and the image equals a full render bit for bit (on the
    bundled photos: tests/test_datagen/test_clips.py)."""
    from renderer import TextureCache

    n = 256
    ys, xs = np.mgrid[0:n, 0:n] + 0.5
    bg = Layer(textured(n, n, 0), np.ones((n, n), np.float32), (0.15 + 0.1 * xs / n).astype(np.float32), name="bg")

    def wall(shift):
        alpha = np.zeros((n, n), np.float32)
        alpha[int(0.1 * n) : int(0.9 * n), : int(0.55 * n) + shift] = 1.0
        return _const(textured(n, n, 5), alpha, 0.8, "wall")

    cache = TextureCache()
    render_bokeh([bg, wall(0)], 5.0, 0.2, textures=cache)
    for shift in (2, 5):
        before = cache.pixels_reused
        got = render_bokeh([bg, wall(shift)], 5.0, 0.2, textures=cache)
        assert np.array_equal(got, render_bokeh([bg, wall(shift)], 5.0, 0.2))
        assert cache.pixels_reused - before > n * n // 4  # the right of the frame is not traced again
    # another focus: every pixel is traced again
    before = cache.pixels_reused
    render_bokeh([bg, wall(5)], 5.0, 0.3, textures=cache)
    assert cache.pixels_reused == before


def test_a_layer_absent_from_a_box_does_not_reach_it_through_the_tables_round_off():
    """The kernel counts a layer as reaching a pixel when its alpha summed over the pixel's box exceeds
    kernels.COVER_EPS. A box sum is a difference of bilinear reads of summed-area-table entries as large as the
    image's area: beside a 512² soft matte, boxes where the matte is exactly 0 read up to ~2e-11, so the old
    threshold 1e-12 let an absent layer count as present (and blur in-focus pixels far from it by up to 0.02)."""
    from renderer import kernels
    from renderer.render import summed_area_tables

    n, pad = 512, 34
    rng = np.random.default_rng(0)
    tex = np.zeros((1, n + 2 * pad, n + 2 * pad, 4))
    tex[0, :, :300, 3] = rng.random((n + 2 * pad, 300))  # a soft matte on the left; nothing right of column 300
    sat = summed_area_tables(tex)
    reads = []
    for _ in range(2000):
        half = rng.uniform(1.5, 30)
        x, y = rng.uniform(300 - pad + half + 1, n - 3), rng.uniform(3, n - 3)
        reads.append(abs(kernels.box_sum(sat, 0, x - half, y - half, x + half, y + half, pad, 3)))
    assert max(reads) > 1e-12  # the round-off the old threshold sat inside
    assert max(reads) < 1e-3 * kernels.COVER_EPS
