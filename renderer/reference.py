"""A slow, independent dense-sampling reference of the layered thin-lens model, in plain NumPy.

It shares no code with the Numba kernels: every aperture sample is a full-image pass (vectorised over pixels)
that intersects each layer in closed form (constant, plane) or by fine marching (general), reads premultiplied
linear colour and alpha by bilinear interpolation (clamp to edge), sorts the hits nearest first and composites
them with "over". The same stratified-jittered aperture points serve every pixel; with n × n strata the result
converges to the aperture integral. Used by the tests and as the converged reference of the benchmarks.
"""

from __future__ import annotations

import numpy as np

from .layers import GEOM_CONSTANT, GEOM_PLANE, check_gamma, check_layers, from_linear, to_linear


def aperture_points(n: int, seed: int = 0) -> np.ndarray:
    """Stratified, jittered points of the unit disk: an n×n grid of strata on [0,1)² mapped area-preservingly
    (Shirley–Chiu concentric map). Returns M×2 float64 with M = n²."""
    rng = np.random.default_rng(seed)
    u = (np.arange(n)[:, None] + rng.random((n, n))) / n
    v = (np.arange(n)[None, :] + rng.random((n, n))) / n
    a = 2.0 * u.ravel() - 1.0
    b = 2.0 * v.ravel() - 1.0
    r = np.where(np.abs(a) > np.abs(b), a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(np.abs(a) > np.abs(b), (np.pi / 4) * (b / a), (np.pi / 2) - (np.pi / 4) * (a / b))
    phi = np.where((a == 0) & (b == 0), 0.0, phi)
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear read of H×W(×C) ``img`` at image positions (pixel centres at +0.5), clamp to edge."""
    h, w = img.shape[:2]
    u = np.clip(x - 0.5, 0.0, w - 1.0)
    v = np.clip(y - 0.5, 0.0, h - 1.0)
    j0 = np.minimum(np.floor(u).astype(np.int64), max(w - 2, 0))
    i0 = np.minimum(np.floor(v).astype(np.int64), max(h - 2, 0))
    j1 = np.minimum(j0 + 1, w - 1)
    i1 = np.minimum(i0 + 1, h - 1)
    fx = u - j0
    fy = v - i0
    if img.ndim == 3:
        fx = fx[..., None]
        fy = fy[..., None]
    return ((img[i0, j0] * (1 - fx) + img[i0, j1] * fx) * (1 - fy)
            + (img[i1, j0] * (1 - fx) + img[i1, j1] * fx) * fy)


def _hit_disparity(layer, px, py, ox, oy, df, march_step_px: float) -> np.ndarray:
    kind, (a, gx, gy), (lo, hi) = layer.geometry
    if kind == GEOM_CONSTANT:
        return np.full(px.shape, a)
    if kind == GEOM_PLANE:
        go = gx * ox + gy * oy
        return (a + gx * px + gy * py - df * go) / (1.0 - go)
    disp = layer.disparity.astype(np.float64)
    reach = np.hypot(ox, oy) * (hi - lo)
    steps = max(int(np.ceil(reach / march_step_px)), 1)
    ds = np.linspace(hi, lo, steps + 1)
    hit = np.full(px.shape, np.nan)
    d_prev, f_prev = None, None
    for d in ds:
        f = _bilinear(disp, px + (d - df) * ox, py + (d - df) * oy) - d
        if d_prev is None:
            hit = np.where(f >= 0, d, hit)
        else:
            cross = np.isnan(hit) & (f >= 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                root = d + (d_prev - d) * (f / (f - f_prev))
            hit = np.where(cross, root, hit)
        d_prev, f_prev = d, f
    return np.where(np.isnan(hit), lo, hit)


def render_reference(layers, K: float, focus_disparity: float, *, gamma=2.2, n: int = 48, seed: int = 0,
                     march_step_px: float = 0.25) -> np.ndarray:
    """Dense reference of :func:`renderer.render_bokeh` (circle aperture): n×n stratified aperture samples
    shared by every pixel. Returns H×W×3 float32 in [0, 1], encoded like the input. Slow: use small images."""
    layers = check_layers(layers)
    gamma = check_gamma(gamma)
    h, w = layers[0].shape
    py, px = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    premult = []
    for layer in layers:
        a = layer.alpha.astype(np.float64)[..., None]
        premult.append(np.concatenate([to_linear(layer.rgb, gamma) * a, a], axis=-1))
    acc = np.zeros((h, w, 3))
    pts = aperture_points(n, seed)
    for sx, sy in pts:
        ox, oy = K * sx, K * sy
        hits = np.stack([_hit_disparity(layer, px, py, ox, oy, focus_disparity, march_step_px)
                         for layer in layers])
        order = np.argsort(-hits, axis=0, kind="stable")
        reads = np.stack([_bilinear(tex, px + (d - focus_disparity) * ox, py + (d - focus_disparity) * oy)
                          for tex, d in zip(premult, hits)])
        T = np.ones((h, w, 1))
        for rank in range(len(layers)):
            idx = order[rank]
            rgba = np.take_along_axis(reads, idx[None, ..., None], axis=0)[0]
            acc += T * rgba[..., :3]
            T = T * (1.0 - rgba[..., 3:])
    return from_linear(np.minimum(acc / len(pts), 1.0), gamma).astype(np.float32)
