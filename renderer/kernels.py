"""Numba kernels of the layered thin-lens ray tracer.

Physical model (DESIGN.md). For output pixel p and an aperture point s, the ray crosses disparity level d at
image position

    x(d) = p + K·(d − d_f)·s.

Each layer is met where d = D_l(x(d)); along the ray the layers met are composited front to back with "over",

    C(p, s) = Σ_l  a_l(x_l)·c_l(x_l) · Π_{m nearer than l} (1 − a_m(x_m)),

and the pixel is the aperture average  I(p) = ∫ C(p, s) ds / ∫ ds.

Sampling. A pixel gets N aperture samples on a Vogel (golden-angle) spiral, rotated by a per-pixel hash of
(seed, row, column) so that no two neighbouring pixels share a pattern; N grows with the area of the largest
circle of confusion that can reach the pixel (N ≈ π·r_max² / cell_px²). Each sample stands for a cell of
area π/N of the aperture, whose footprint on layer l is a patch of side h = |r_l|·√(π/N): the sample reads the
layer's premultiplied colour and alpha averaged over that patch (a box filter from a summed-area table), so
the pixel sums patches that tile the disk instead of N point samples. With h → 0 the box lookup becomes the
bilinear lookup of the path-traced references (box(1) ∗ nearest = bilinear), so in-focus layers stay exact.

Pixel coordinates: the centre of pixel (row i, column j) is (x, y) = (j + 0.5, i + 0.5). Textures are padded
by P texels (edge replicated, i.e. clamp to edge); tilted planes continue beyond the frame.

All kernels compile once and are cached on disk (numba ``cache=True``: beside the sources when writable, else
in the user's cache directory; ``NUMBA_CACHE_DIR`` overrides both).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))

# Sampling modes.
MODE_ADAPTIVE = 0  # Vogel spiral, per-pixel rotation, N scaled to the circle of confusion
MODE_GRID = 1  # one fixed pattern shared by every pixel (MPIB-style n×n grid inside the disk)

# Transmittance below which a ray stops looking further back.
T_EPS = 1e-7


# --------------------------------------------------------------------------------------------------------
# Hashing: a per-pixel rotation that depends only on (seed, row, column)
# --------------------------------------------------------------------------------------------------------

@njit(cache=True)
def hash_unit(seed, i, j):
    """splitmix64 of (seed, i, j) -> float in [0, 1)."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    z = z + np.uint64(i) * np.uint64(0xBF58476D1CE4E5B9) + np.uint64(j) * np.uint64(0x94D049BB133111EB)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


# --------------------------------------------------------------------------------------------------------
# Texture reads
# --------------------------------------------------------------------------------------------------------

@njit(cache=True)
def bilinear4(tex, layer, x, y, pad):
    """Bilinear read of the 4 channels of padded texture ``tex[layer]`` at image position (x, y)."""
    hp = tex.shape[1]
    wp = tex.shape[2]
    u = min(max(x - 0.5 + pad, 0.0), wp - 1.0)
    v = min(max(y - 0.5 + pad, 0.0), hp - 1.0)
    j0 = min(int(u), wp - 2)
    i0 = min(int(v), hp - 2)
    fx = u - j0
    fy = v - i0
    w00 = (1.0 - fx) * (1.0 - fy)
    w01 = fx * (1.0 - fy)
    w10 = (1.0 - fx) * fy
    w11 = fx * fy
    t = tex[layer]
    c0 = t[i0, j0, 0] * w00 + t[i0, j0 + 1, 0] * w01 + t[i0 + 1, j0, 0] * w10 + t[i0 + 1, j0 + 1, 0] * w11
    c1 = t[i0, j0, 1] * w00 + t[i0, j0 + 1, 1] * w01 + t[i0 + 1, j0, 1] * w10 + t[i0 + 1, j0 + 1, 1] * w11
    c2 = t[i0, j0, 2] * w00 + t[i0, j0 + 1, 2] * w01 + t[i0 + 1, j0, 2] * w10 + t[i0 + 1, j0 + 1, 2] * w11
    c3 = t[i0, j0, 3] * w00 + t[i0, j0 + 1, 3] * w01 + t[i0 + 1, j0, 3] * w10 + t[i0 + 1, j0 + 1, 3] * w11
    return c0, c1, c2, c3


@njit(cache=True)
def bilinear1(tex, layer, x, y, pad):
    """Bilinear read of single-channel padded texture ``tex[layer]`` at image position (x, y)."""
    hp = tex.shape[1]
    wp = tex.shape[2]
    u = min(max(x - 0.5 + pad, 0.0), wp - 1.0)
    v = min(max(y - 0.5 + pad, 0.0), hp - 1.0)
    j0 = min(int(u), wp - 2)
    i0 = min(int(v), hp - 2)
    fx = u - j0
    fy = v - i0
    t = tex[layer]
    return ((t[i0, j0] * (1.0 - fx) + t[i0, j0 + 1] * fx) * (1.0 - fy)
            + (t[i0 + 1, j0] * (1.0 - fx) + t[i0 + 1, j0 + 1] * fx) * fy)


@njit(cache=True)
def sat_corner(sat, layer, X, Y, c):
    """Summed-area table channel c at padded position (X, Y), bilinear between table entries.

    The SAT of a piecewise-constant image is piecewise bilinear, so this is the exact integral of the
    nearest-neighbour image over [0, X] × [0, Y].
    """
    j0 = min(int(X), sat.shape[2] - 2)
    i0 = min(int(Y), sat.shape[1] - 2)
    fx = X - j0
    fy = Y - i0
    s = sat[layer]
    return ((s[i0, j0, c] * (1.0 - fx) + s[i0, j0 + 1, c] * fx) * (1.0 - fy)
            + (s[i0 + 1, j0, c] * (1.0 - fx) + s[i0 + 1, j0 + 1, c] * fx) * fy)


@njit(cache=True)
def box_sum(sat, layer, x0, y0, x1, y1, pad, c):
    """Integral of channel c over the image-space box [x0, x1] × [y0, y1] (clamped to the padded texture)."""
    wmax = sat.shape[2] - 1.0
    hmax = sat.shape[1] - 1.0
    X0 = min(max(x0 + pad, 0.0), wmax)
    X1 = min(max(x1 + pad, 0.0), wmax)
    Y0 = min(max(y0 + pad, 0.0), hmax)
    Y1 = min(max(y1 + pad, 0.0), hmax)
    return (sat_corner(sat, layer, X1, Y1, c) - sat_corner(sat, layer, X0, Y1, c)
            - sat_corner(sat, layer, X1, Y0, c) + sat_corner(sat, layer, X0, Y0, c))


@njit(cache=True)
def box4(sat, layer, x, y, side, pad):
    """Mean of the 4 channels over the axis-aligned square of the given side centred at (x, y)."""
    wmax = sat.shape[2] - 1.0
    hmax = sat.shape[1] - 1.0
    half = 0.5 * side
    X0 = min(max(x - half + pad, 0.0), wmax)
    X1 = min(max(x + half + pad, 0.0), wmax)
    Y0 = min(max(y - half + pad, 0.0), hmax)
    Y1 = min(max(y + half + pad, 0.0), hmax)
    area = (X1 - X0) * (Y1 - Y0)
    if area <= 1e-12:  # a box squeezed to nothing at the padded border (never hit with pad >= r_max)
        return 0.0, 0.0, 0.0, 0.0
    inv = 1.0 / area
    out0 = 0.0
    out1 = 0.0
    out2 = 0.0
    out3 = 0.0
    # Four corners, each a bilinear read of 4 channels; weights +1, -1, -1, +1.
    for corner in range(4):
        X = X1 if (corner == 0 or corner == 2) else X0
        Y = Y1 if corner < 2 else Y0
        sign = 1.0 if (corner == 0 or corner == 3) else -1.0
        j0 = min(int(X), sat.shape[2] - 2)
        i0 = min(int(Y), sat.shape[1] - 2)
        fx = X - j0
        fy = Y - i0
        w00 = sign * (1.0 - fx) * (1.0 - fy)
        w01 = sign * fx * (1.0 - fy)
        w10 = sign * (1.0 - fx) * fy
        w11 = sign * fx * fy
        s = sat[layer]
        out0 += s[i0, j0, 0] * w00 + s[i0, j0 + 1, 0] * w01 + s[i0 + 1, j0, 0] * w10 + s[i0 + 1, j0 + 1, 0] * w11
        out1 += s[i0, j0, 1] * w00 + s[i0, j0 + 1, 1] * w01 + s[i0 + 1, j0, 1] * w10 + s[i0 + 1, j0 + 1, 1] * w11
        out2 += s[i0, j0, 2] * w00 + s[i0, j0 + 1, 2] * w01 + s[i0 + 1, j0, 2] * w10 + s[i0 + 1, j0 + 1, 2] * w11
        out3 += s[i0, j0, 3] * w00 + s[i0, j0 + 1, 3] * w01 + s[i0 + 1, j0, 3] * w10 + s[i0 + 1, j0 + 1, 3] * w11
    return out0 * inv, out1 * inv, out2 * inv, out3 * inv


# --------------------------------------------------------------------------------------------------------
# Ray / layer intersection
# --------------------------------------------------------------------------------------------------------

@njit(cache=True)
def intersect(layer, kinds, gparam, drange, dtex, pad, px, py, ox, oy, df):
    """Disparity d at which the ray x(d) = p + (d − d_f)·o meets the layer (o = K·s).

    constant: d = a.   plane: d = a + g·x(d)  solved in closed form.
    general: march from the layer's nearest disparity to its farthest in steps that move x by ≤ 0.5 px and
    refine the first crossing of D(x(d)) − d by linear interpolation (the nearest surface the ray meets).
    """
    kind = kinds[layer]
    if kind == 0:
        return gparam[layer, 0]
    if kind == 1:
        a = gparam[layer, 0]
        gx = gparam[layer, 1]
        gy = gparam[layer, 2]
        go = gx * ox + gy * oy
        den = 1.0 - go
        base = a + gx * px + gy * py
        if den <= 1e-9:  # plane seen edge-on along this ray: take its disparity at the pixel
            return base
        return (base - df * go) / den
    dhi = drange[layer, 1]
    dlo = drange[layer, 0]
    reach = math.sqrt(ox * ox + oy * oy) * (dhi - dlo)
    nsteps = int(math.ceil(reach / 0.5))
    if nsteps == 0:
        d0 = bilinear1(dtex, layer, px, py, pad)
        return bilinear1(dtex, layer, px + (d0 - df) * ox, py + (d0 - df) * oy, pad)
    dprev = dhi
    fprev = bilinear1(dtex, layer, px + (dhi - df) * ox, py + (dhi - df) * oy, pad) - dhi
    if fprev >= 0.0:
        return dhi
    for t in range(1, nsteps + 1):
        d = dhi - (dhi - dlo) * t / nsteps
        f = bilinear1(dtex, layer, px + (d - df) * ox, py + (d - df) * oy, pad) - d
        if f >= 0.0:
            return d + (dprev - d) * (f / (f - fprev))
        dprev = d
        fprev = f
    return dlo


@njit(cache=True)
def disparity_at_pixel(layer, kinds, gparam, dtex, pad, px, py):
    """The layer's disparity at image position (px, py) (no ray: the pinhole view)."""
    kind = kinds[layer]
    if kind == 0:
        return gparam[layer, 0]
    if kind == 1:
        return gparam[layer, 0] + gparam[layer, 1] * px + gparam[layer, 2] * py
    return bilinear1(dtex, layer, px, py, pad)


# --------------------------------------------------------------------------------------------------------
# Aperture shape
# --------------------------------------------------------------------------------------------------------

@njit(cache=True)
def aperture_radius(phi, blades, rotation, roundness):
    """Boundary radius of the aperture in direction phi: 1 for a circle; a regular polygon with ``blades``
    sides inscribed in the unit circle (vertices at radius 1), blended toward the circle by ``roundness``."""
    if blades < 3:
        return 1.0
    sector = 2.0 * math.pi / blades
    a = (phi - rotation) % sector
    r_poly = math.cos(math.pi / blades) / math.cos(a - 0.5 * sector)
    return (1.0 - roundness) * r_poly + roundness


# --------------------------------------------------------------------------------------------------------
# The renderer
# --------------------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def render_kernel(tex, sat, dtex, kinds, gparam, drange, pad, K, df,
                  mode, cell_px, min_n, max_n, grid, prefilter,
                  blades, rotation, roundness, cateye, falloff, seed, out, spp):
    """Render the layered scene into ``out`` (H×W×3 linear light) and the samples used into ``spp`` (H×W).

    tex: L×Hp×Wp×4 float64 premultiplied linear colour + alpha, padded by ``pad`` texels.
    sat: L×(Hp+1)×(Wp+1)×4 float64 summed-area tables of ``tex``.
    dtex: L×Hp×Wp float64 padded disparity (read only for general layers).
    kinds, gparam, drange: per-layer geometry (renderer/layers.py).
    grid: G×2 aperture points shared by every pixel (MODE_GRID only).
    """
    H = out.shape[0]
    W = out.shape[1]
    L = tex.shape[0]
    for i in prange(H):
        # ---- per-row scratch: per-layer hit disparity and the nearest-first order of one ray ----
        dl = np.empty(L)
        order = np.empty(L, dtype=np.int64)
        py = i + 0.5
        for j in range(W):
            px = j + 0.5
            # ---- 1. largest circle of confusion of any layer with coverage near this pixel ----
            rmax = 0.0
            for l in range(L):
                if kinds[l] == 2:
                    r = K * max(abs(drange[l, 0] - df), abs(drange[l, 1] - df))
                else:
                    r = K * abs(disparity_at_pixel(l, kinds, gparam, dtex, pad, px, py) - df)
                if r > rmax:
                    half = r + 1.0
                    if box_sum(sat, l, px - half, py - half, px + half, py + half, pad, 3) > 1e-9:
                        rmax = r
            # ---- 2. samples for this pixel ----
            if mode == 1:
                n = grid.shape[0]
            elif rmax <= 0.0:
                n = 1
            else:
                n = int(math.ceil(math.pi * rmax * rmax / (cell_px * cell_px)))
                n = min(max(n, min_n), max_n)
            spp[i, j] = n
            theta = 2.0 * math.pi * hash_unit(seed, i, j)
            cell = math.sqrt(math.pi / n)  # side of one sample's share of the unit disk
            # cat-eye: the exit pupil, a unit disk shifted toward the frame centre, clips the aperture
            vx = (px - 0.5 * W) / (0.5 * math.sqrt(W * W + H * H))
            vy = (py - 0.5 * H) / (0.5 * math.sqrt(W * W + H * H))
            cx = -2.0 * cateye * vx
            cy = -2.0 * cateye * vy
            acc0 = 0.0
            acc1 = 0.0
            acc2 = 0.0
            wsum = 0.0
            wtot = 0.0
            for k in range(n):
                # ---- 3. aperture point s and its weight (cell area) ----
                if mode == 1:
                    sx = grid[k, 0]
                    sy = grid[k, 1]
                    R = 1.0
                else:
                    rho = math.sqrt((k + 0.5) / n)
                    phi = theta + k * GOLDEN_ANGLE
                    R = aperture_radius(phi, blades, rotation, roundness)
                    sx = rho * R * math.cos(phi)
                    sy = rho * R * math.sin(phi)
                w = R * R
                wtot += w
                if cateye > 0.0 and (sx - cx) * (sx - cx) + (sy - cy) * (sy - cy) > 1.0:
                    continue
                wsum += w
                ox = K * sx
                oy = K * sy
                # ---- 4. where the ray meets each layer, nearest first (stable insertion sort) ----
                for l in range(L):
                    dl[l] = intersect(l, kinds, gparam, drange, dtex, pad, px, py, ox, oy, df)
                    m = l
                    while m > 0 and dl[order[m - 1]] < dl[l]:
                        order[m] = order[m - 1]
                        m -= 1
                    order[m] = l
                # ---- 5. front-to-back "over" along the ray ----
                T = 1.0  # transmittance of everything nearer
                c0 = 0.0
                c1 = 0.0
                c2 = 0.0
                for q in range(L):
                    l = order[q]
                    r = K * (dl[l] - df)
                    x = px + r * sx
                    y = py + r * sy
                    h = abs(r) * cell * R if prefilter else 0.0
                    if h < 1e-3:
                        t0, t1, t2, t3 = bilinear4(tex, l, x, y, pad)
                    else:
                        t0, t1, t2, t3 = box4(sat, l, x, y, math.sqrt(h * h + 1.0), pad)
                    c0 += T * t0
                    c1 += T * t1
                    c2 += T * t2
                    T *= 1.0 - t3
                    if T < T_EPS:
                        break
                acc0 += w * c0
                acc1 += w * c1
                acc2 += w * c2
            norm = wtot if falloff else wsum
            if norm > 0.0:
                out[i, j, 0] = acc0 / norm
                out[i, j, 1] = acc1 / norm
                out[i, j, 2] = acc2 / norm
            else:
                out[i, j, 0] = 0.0
                out[i, j, 1] = 0.0
                out[i, j, 2] = 0.0


@njit(parallel=True, cache=True)
def pinhole_kernel(tex, dtex, kinds, gparam, pad, out_rgb, out_disp, out_cover):
    """K = 0 view: per pixel, layers sorted nearest first by their disparity there, composited with "over".

    out_rgb: H×W×3 premultiplied linear colour; out_disp: disparity composited with the same weights,
    normalised by coverage; out_cover: total alpha.
    """
    H = out_rgb.shape[0]
    W = out_rgb.shape[1]
    L = tex.shape[0]
    for i in prange(H):
        dl = np.empty(L)
        order = np.empty(L, dtype=np.int64)
        py = i + 0.5
        for j in range(W):
            px = j + 0.5
            for l in range(L):
                dl[l] = disparity_at_pixel(l, kinds, gparam, dtex, pad, px, py)
                m = l
                while m > 0 and dl[order[m - 1]] < dl[l]:
                    order[m] = order[m - 1]
                    m -= 1
                order[m] = l
            T = 1.0
            c0 = 0.0
            c1 = 0.0
            c2 = 0.0
            dsum = 0.0
            for q in range(L):
                l = order[q]
                t0, t1, t2, t3 = bilinear4(tex, l, px, py, pad)
                c0 += T * t0
                c1 += T * t1
                c2 += T * t2
                dsum += T * t3 * dl[l]
                T *= 1.0 - t3
                if T < T_EPS:
                    break
            out_rgb[i, j, 0] = c0
            out_rgb[i, j, 1] = c1
            out_rgb[i, j, 2] = c2
            cover = 1.0 - T
            out_cover[i, j] = cover
            out_disp[i, j] = dsum / cover if cover > 0.0 else 0.0
