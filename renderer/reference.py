"""A slow, independent dense-sampling reference of the layered thin-lens model, in plain NumPy.

It shares no code with the Numba kernels: every aperture sample is a full-image pass (vectorised over pixels)
that intersects each layer in closed form (constant, plane, and each bilinear cell of a general layer, walked
cell by cell along the ray), reads premultiplied
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
    return (img[i0, j0] * (1 - fx) + img[i0, j1] * fx) * (1 - fy) + (img[i1, j0] * (1 - fx) + img[i1, j1] * fx) * fy


def _cell(u: np.ndarray, du: float, n: int) -> np.ndarray:
    """Cell index along one axis of n texels for coordinates u moving at du: −1 / n − 1 for the clamped regions
    below the first / beyond the last texel centre, else j with u in [j, j + 1] (the cell the motion enters)."""
    j = np.floor(u)
    if du < 0:
        j = np.where(u == j, j - 1, j)
    j = np.minimum(j, n - 2)
    j = np.where((u < 0) | ((u == 0) & (du < 0)), -1, j)
    return np.where((u > n - 1) | ((u == n - 1) & (du > 0)), n - 1, j).astype(np.int64)


def _exit(u: np.ndarray, du: float, j: np.ndarray, n: int) -> np.ndarray:
    if du > 0:
        return np.where(j < n - 1, (j + 1.0 - u) / du, np.inf)
    if du < 0:
        return np.where(j >= 0, (u - j) / -du, np.inf)
    return np.full(u.shape, np.inf)


def exact_hit(disp: np.ndarray, px, py, ox: float, oy: float, df: float, lo: float, hi: float) -> np.ndarray:
    """Nearest disparity in [lo, hi] where each pixel's ray meets the bilinear surface ``disp`` (clamp to edge),
    exactly: every pixel's ray is walked through the texel cells it crosses, all pixels at once (they share the
    ray's direction, so the walk has the same number of steps for all), and solved in closed form against each
    cell's bilinear patch (a quadratic along the ray). No step size: nothing to converge."""
    h, w = disp.shape
    span = hi - lo
    u = px + (hi - df) * ox - 0.5  # texel coordinates where the ray starts (d = hi, t = 0; d = hi − t)
    v = py + (hi - df) * oy - 0.5
    du, dv = -ox, -oy
    ju, jv = _cell(u, du, w), _cell(v, dv, h)
    tu, tv = _exit(u, du, ju, w), _exit(v, dv, jv, h)
    t0 = np.zeros(u.shape)
    hit = np.full(u.shape, np.nan)
    steps = int(np.ceil(abs(du) * span) + np.ceil(abs(dv) * span)) + 4
    for _ in range(steps):
        live = np.isnan(hit) & (t0 < span)
        if not live.any():
            break
        t1 = np.minimum(np.minimum(tu, tv), span)
        j0, i0 = np.clip(ju, 0, w - 2), np.clip(jv, 0, h - 2)
        inside_u, inside_v = (ju >= 0) & (ju <= w - 2), (jv >= 0) & (jv <= h - 2)
        fx0 = np.where(inside_u, u + du * t0 - j0, np.where(ju < 0, 0.0, 1.0))
        fy0 = np.where(inside_v, v + dv * t0 - i0, np.where(jv < 0, 0.0, 1.0))
        ax, ay = np.where(inside_u, du, 0.0), np.where(inside_v, dv, 0.0)
        a00, a01 = disp[i0, j0], disp[i0, j0 + 1]
        a10, a11 = disp[i0 + 1, j0], disp[i0 + 1, j0 + 1]
        gx, gy, e = a01 - a00, a10 - a00, a00 - a01 - a10 + a11
        c = a00 + gx * fx0 + gy * fy0 + e * fx0 * fy0 - (hi - t0)  # f(t0 + s) = c + b·s + a·s²
        b = gx * ax + gy * ay + e * (fx0 * ay + fy0 * ax) + 1.0
        a = e * ax * ay
        smax = t1 - t0
        with np.errstate(divide="ignore", invalid="ignore"):
            lin = np.where(b > 0, -c / b, np.inf)
            disc = b * b - 4 * a * c
            sq = np.sqrt(np.maximum(disc, 0.0))
            r1, r2 = (-b - sq) / (2 * a), (-b + sq) / (2 * a)
            quad = np.where(disc >= 0, np.fmin(np.where(r1 >= 0, r1, np.inf), np.where(r2 >= 0, r2, np.inf)), np.inf)
        s = np.where(np.abs(a) * smax < 1e-12 * np.maximum(np.abs(b), 1e-300), lin, quad)
        s = np.where(c >= 0, 0.0, s)
        met = live & (s <= smax)
        hit = np.where(met, hi - (t0 + s), hit)
        step_u = tu <= tv
        ju = np.where(step_u, ju + (1 if du > 0 else -1), ju)
        jv = np.where(~step_u, jv + (1 if dv > 0 else -1), jv)
        tu = np.where(step_u, _exit(u, du, ju, w), tu)
        tv = np.where(~step_u, _exit(v, dv, jv, h), tv)
        t0 = t1
    return np.where(np.isnan(hit), lo, hit)


def surface_hit(disparity: np.ndarray, px, py, ox: float, oy: float, focus_disparity: float = 0.0) -> np.ndarray:
    """Where the rays p + (d − d_f)·(ox, oy) (pixel centres ``px``, ``py``; one direction for all) first meet the
    bilinear surface ``disparity`` (clamp to edge), nearest first: the disparity there, exactly (the same walk and
    closed form as the reference's depth-map intersection). With d_f = 0 and (ox, oy) = −τ this is what a camera
    moved by τ (a point at x and disparity d seen at x + τ·d) sees of a depth map at each pixel."""
    d = np.asarray(disparity, np.float64)
    return exact_hit(
        d,
        np.asarray(px, np.float64),
        np.asarray(py, np.float64),
        float(ox),
        float(oy),
        float(focus_disparity),
        float(d.min()),
        float(d.max()),
    )


def _hit_disparity(layer, px, py, ox, oy, df, march_step_px: float | None) -> np.ndarray:
    kind, (a, gx, gy), (lo, hi) = layer.geometry
    if kind == GEOM_CONSTANT:
        return np.full(px.shape, a)
    if kind == GEOM_PLANE:
        go = gx * ox + gy * oy
        return (a + gx * px + gy * py - df * go) / (1.0 - go)
    disp = layer.disparity.astype(np.float64)
    if march_step_px is None:
        return exact_hit(disp, px, py, ox, oy, df, lo, hi)
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


def render_reference(
    layers,
    K: float,
    focus_disparity: float,
    *,
    gamma=2.2,
    n: int = 48,
    seed: int = 0,
    march_step_px: float | None = None,
) -> np.ndarray:
    """Dense reference of :func:`renderer.render_bokeh` (circle aperture): n×n stratified aperture samples
    shared by every pixel. Depth maps are intersected exactly (``march_step_px=None``, the default), or by a march
    of that step (kept to show what a march misses). Returns H×W×3 float32 in [0, 1], encoded like the input.
    Slow: use small images."""
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
        hits = np.stack([_hit_disparity(layer, px, py, ox, oy, focus_disparity, march_step_px) for layer in layers])
        order = np.argsort(-hits, axis=0, kind="stable")
        reads = np.stack(
            [
                _bilinear(tex, px + (d - focus_disparity) * ox, py + (d - focus_disparity) * oy)
                for tex, d in zip(premult, hits)
            ]
        )
        T = np.ones((h, w, 1))
        for rank in range(len(layers)):
            idx = order[rank]
            rgba = np.take_along_axis(reads, idx[None, ..., None], axis=0)[0]
            acc += T * rgba[..., :3]
            T = T * (1.0 - rgba[..., 3:])
    return from_linear(np.minimum(acc / len(pts), 1.0), gamma).astype(np.float32)
