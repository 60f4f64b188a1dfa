"""Numba kernels of the layered thin-lens ray tracer.

Physical model (ARCHITECTURE.md, "Renderer contract"). For output pixel p and an aperture point s, the ray crosses
disparity level d at image position

    x(d) = p + K·(d − d_f)·s.

Each layer is met where d = D_l(x(d)); along the ray the layers met are composited front to back with "over",

    C(p, s) = Σ_l  a_l(x_l)·c_l(x_l) · Π_{m nearer than l} (1 − a_m(x_m)),

and the pixel is the aperture average  I(p) = ∫ C(p, s) ds / ∫ ds.

Sampling. A pixel whose largest circle of confusion (over the layers whose coverage can reach it) has radius
r_max cuts the aperture into a square grid of N ≈ π·r_max²/cell_px² cells of side δ = √(π/N), shifted per pixel
by a low-discrepancy offset of (seed, row, column), so no two neighbouring pixels share a pattern. Each cell is
one ray through its centre that stands for the whole cell: on layer l the cell's footprint is a square of side
h = |r_l|·δ, and the ray reads that layer's premultiplied colour and alpha box-filtered over it (a summed-area
table). Cells tile the aperture, so their footprints tile each layer's disk: the pixel integrates the disk
instead of summing point samples, without noise or ghost copies of highlights. Two places where one box read is
not enough are refined into refine × refine sub-cells: cells cut by the aperture's edge (where their footprint
exceeds edge_px) and cells whose footprint straddles an occlusion edge (a partly covered patch with layers
behind it, where the product of box means is not the mean of the product). A cell cut by the edge is weighted
by its exact coverage under the edge's tangent and reads a box with the centroid and the second moments of the
part inside, so the box reads (nearly) only what the aperture lets through and the rim of a bokeh disk stays
sharp.
Two shortcuts leave the result unchanged or nearly so. A layer that is nearer than every other along every ray
and opaque wherever a ray can meet it hides the rest, so only it is traced (one ray when it is in focus). A
pixel whose rays all meet one fronto-parallel (or barely tilted) surface through a round aperture takes the
aperture integral in closed form, a disk mean read in texel rows (``strips``).
With h < 1 px a read is bilinear, exactly as the path-traced references read textures, so in-focus layers are
exact. A general (RGBD) surface whose circle of confusion varies by more than half a pixel across a patch (a
fold) is read at the hit point and the cell refined.

Pixel coordinates: the centre of pixel (row i, column j) is (x, y) = (j + 0.5, i + 0.5). Textures are padded
by P texels (edge replicated, i.e. clamp to edge); tilted planes continue beyond the frame.

All kernels compile once and are cached on disk (numba ``cache=True``: beside the sources when writable, else
in the user's cache directory; ``NUMBA_CACHE_DIR`` overrides both).
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_thread_id, njit, prange

from .layers import GEOM_CONSTANT, GEOM_GENERAL, GEOM_PLANE

# Sampling modes.
MODE_ADAPTIVE = 0  # per-pixel shifted grid of box-filtered cells, N scaled to the circle of confusion
MODE_GRID = 1  # one fixed pattern shared by every pixel (MPIB-style n×n grid inside the disk)

# What a traced cell saw (trace_ray): nothing its reads cannot stand for, an occlusion edge, a possible fold.
MIX_EDGE = 1
MIX_FOLD = 2
# Transmittance below which a ray stops looking further back.
T_EPS = 1e-7
# Pixels that see a general (RGBD) layer use cells this many times smaller (its self-occlusions need rays).
GENERAL_CELL_DIVISOR = 1.6
# A general layer's blurred read stands for its cell only while its blur varies by at most this many px across the
# footprint (else the cell is refined): its footprint is then close to the sheared box it reads.
GENERAL_SPREAD_PX = 0.5
# A general layer may fold (a ray meet it more than once) where K·|∇D| reaches 1 (D: its disparity per px); a
# texel is steep from this bound on, and a pixel with no steep texel within its circle of confusion sees a smooth
# graph (one crossing per ray; its footprint read as a weighted disk where it is round enough).
FOLD_SLOPE = 0.95
# A pixel may see a general layer fold when a steep texel lies within its circle of confusion plus this margin (its
# cells' footprints span a texel each way, and p lies within a texel of the window's texel).
FOLD_MARGIN_PX = 2.5
# Disk reads in rows (see render_kernel) need a plane tilted so little that its footprint departs from the disk
# by at most this many pixels.
STRIP_MAX_DISTORTION = 0.25
# A general layer's footprint is read as a (weighted, shifted) disk only while its centre moves by at most this
# fraction of its radius (the surface's slope K·|∇D|; the weight is first order in it).
GENERAL_STRIP_MAX_SHIFT = 0.05
# A tilted plane's footprint is read as its sheared box where its blur changes by more than this fraction of a pixel
# per pixel (K·|∇D|₁): below, the square it reads is within this fraction of the footprint's sides.
PLANE_SHEAR_MIN = 0.02
# Side of the square tiles of pixels that the render kernel's threads take in turn.
TILE = 16
# Disparities this close to the focus (float32 resolution of [0, 1]) count as exactly in focus.
FOCUS_EPS = 1e-6
# A layer counts as reaching a pixel when its alpha summed over the pixel's box exceeds this (texels of alpha). The
# box sum is a difference of summed-area-table entries as large as the image's area: its round-off (~1e-10 at 512²,
# ~1e-8 at 8192²) must not make a layer that is absent from the box count as present. A layer that reached the
# box with this little alpha could change the pixel by at most ~1e-6 of its value.
COVER_EPS = 1e-6


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


@njit(cache=True)
def pixel_shift(seed, i, j, axis):
    """Sub-cell shift in [0, 1) of pixel (i, j)'s aperture grid along ``axis`` (0 or 1): a Kronecker lattice
    over the pixel grid with the R2 (plastic number) ratios, offset by a hash of the seed, so that neighbouring
    pixels cover the shifts evenly (no shared pattern, blue-noise-like error) and every seed gives another set."""
    a1 = 0.7548776662466927
    a2 = 0.5698402909980532
    if axis == 0:
        return (hash_unit(seed, 0, 0) + i * a1 + j * a2) % 1.0
    return (hash_unit(seed, 1, 1) + i * a2 + j * a1) % 1.0


# --------------------------------------------------------------------------------------------------------
# Texture reads
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def texel_cell(hp, wp, x, y, pad):
    """Top-left texel (i0, j0) and fractions (fy, fx) of image position (x, y) in a padded texture of hp × wp
    texels (texel centres at +0.5; clamp to edge)."""
    u = min(max(x - 0.5 + pad, 0.0), wp - 1.0)
    v = min(max(y - 0.5 + pad, 0.0), hp - 1.0)
    j0 = min(int(u), wp - 2)
    i0 = min(int(v), hp - 2)
    return i0, j0, v - i0, u - j0


@njit(cache=True, inline="always")
def bilinear4(tex, layer, x, y, pad):
    """Bilinear read of the 4 channels of padded texture ``tex[layer]`` at image position (x, y)."""
    i0, j0, fy, fx = texel_cell(tex.shape[1], tex.shape[2], x, y, pad)
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
    i0, j0, fy, fx = texel_cell(tex.shape[1], tex.shape[2], x, y, pad)
    t = tex[layer]
    return (t[i0, j0] * (1.0 - fx) + t[i0, j0 + 1] * fx) * (1.0 - fy) + (
        t[i0 + 1, j0] * (1.0 - fx) + t[i0 + 1, j0 + 1] * fx
    ) * fy


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
    return (s[i0, j0, c] * (1.0 - fx) + s[i0, j0 + 1, c] * fx) * (1.0 - fy) + (
        s[i0 + 1, j0, c] * (1.0 - fx) + s[i0 + 1, j0 + 1, c] * fx
    ) * fy


@njit(cache=True)
def box_sum(sat, layer, x0, y0, x1, y1, pad, c):
    """Integral of channel c over the image-space box [x0, x1] × [y0, y1] (clamped to the padded texture)."""
    wmax = sat.shape[2] - 1.0
    hmax = sat.shape[1] - 1.0
    X0 = min(max(x0 + pad, 0.0), wmax)
    X1 = min(max(x1 + pad, 0.0), wmax)
    Y0 = min(max(y0 + pad, 0.0), hmax)
    Y1 = min(max(y1 + pad, 0.0), hmax)
    return (
        sat_corner(sat, layer, X1, Y1, c)
        - sat_corner(sat, layer, X0, Y1, c)
        - sat_corner(sat, layer, X1, Y0, c)
        + sat_corner(sat, layer, X0, Y0, c)
    )


@njit(cache=True, inline="always")
def _sat_rows(s, i0, fy, j0, fx, j1, gx):
    """Bilinear reads of SAT ``s`` along one row pair at two columns: (value at j0+fx) − (value at j1+gx)."""
    a = 1.0 - fx
    b = 1.0 - gx
    c = 1.0 - fy
    out0 = (s[i0, j0, 0] * a + s[i0, j0 + 1, 0] * fx - s[i0, j1, 0] * b - s[i0, j1 + 1, 0] * gx) * c + (
        s[i0 + 1, j0, 0] * a + s[i0 + 1, j0 + 1, 0] * fx - s[i0 + 1, j1, 0] * b - s[i0 + 1, j1 + 1, 0] * gx
    ) * fy
    out1 = (s[i0, j0, 1] * a + s[i0, j0 + 1, 1] * fx - s[i0, j1, 1] * b - s[i0, j1 + 1, 1] * gx) * c + (
        s[i0 + 1, j0, 1] * a + s[i0 + 1, j0 + 1, 1] * fx - s[i0 + 1, j1, 1] * b - s[i0 + 1, j1 + 1, 1] * gx
    ) * fy
    out2 = (s[i0, j0, 2] * a + s[i0, j0 + 1, 2] * fx - s[i0, j1, 2] * b - s[i0, j1 + 1, 2] * gx) * c + (
        s[i0 + 1, j0, 2] * a + s[i0 + 1, j0 + 1, 2] * fx - s[i0 + 1, j1, 2] * b - s[i0 + 1, j1 + 1, 2] * gx
    ) * fy
    out3 = (s[i0, j0, 3] * a + s[i0, j0 + 1, 3] * fx - s[i0, j1, 3] * b - s[i0, j1 + 1, 3] * gx) * c + (
        s[i0 + 1, j0, 3] * a + s[i0 + 1, j0 + 1, 3] * fx - s[i0 + 1, j1, 3] * b - s[i0 + 1, j1 + 1, 3] * gx
    ) * fy
    return out0, out1, out2, out3


@njit(cache=True, inline="always")
def _edge_texel(sat, layer, X, Y):
    """The 4 channels of the texel at padded position (X, Y) on the texture's border, from its summed-area table."""
    j = min(max(int(X), 0), sat.shape[2] - 2)
    i = min(max(int(Y), 0), sat.shape[1] - 2)
    s = sat[layer]
    return (
        s[i + 1, j + 1, 0] - s[i, j + 1, 0] - s[i + 1, j, 0] + s[i, j, 0],
        s[i + 1, j + 1, 1] - s[i, j + 1, 1] - s[i + 1, j, 1] + s[i, j, 1],
        s[i + 1, j + 1, 2] - s[i, j + 1, 2] - s[i + 1, j, 2] + s[i, j, 2],
        s[i + 1, j + 1, 3] - s[i, j + 1, 3] - s[i + 1, j, 3] + s[i, j, 3],
    )


@njit(cache=True, inline="always")
def box4(sat, layer, x, y, side_x, side_y, pad):
    """Mean of the 4 channels over the axis-aligned box of sides (side_x, side_y) centred at (x, y)."""
    wmax = sat.shape[2] - 1.0
    hmax = sat.shape[1] - 1.0
    X0 = min(max(x - 0.5 * side_x + pad, 0.0), wmax)
    X1 = min(max(x + 0.5 * side_x + pad, 0.0), wmax)
    Y0 = min(max(y - 0.5 * side_y + pad, 0.0), hmax)
    Y1 = min(max(y + 0.5 * side_y + pad, 0.0), hmax)
    area = (X1 - X0) * (Y1 - Y0)
    if area <= 1e-12:  # a box wholly beyond the padded texture: its edge texel (clamp to edge)
        return _edge_texel(sat, layer, X0, Y0)
    # S(X1, Y) − S(X0, Y) at Y = Y1 and Y = Y0, each bilinear between table entries
    j1 = min(int(X1), sat.shape[2] - 2)
    j0 = min(int(X0), sat.shape[2] - 2)
    i1 = min(int(Y1), sat.shape[1] - 2)
    i0 = min(int(Y0), sat.shape[1] - 2)
    s = sat[layer]
    u0, u1, u2, u3 = _sat_rows(s, i1, Y1 - i1, j1, X1 - j1, j0, X0 - j0)
    v0, v1, v2, v3 = _sat_rows(s, i0, Y0 - i0, j1, X1 - j1, j0, X0 - j0)
    inv = 1.0 / area
    return (u0 - v0) * inv, (u1 - v1) * inv, (u2 - v2) * inv, (u3 - v3) * inv


@njit(cache=True, inline="always")
def _disk_chord(i, X, Y, r, wmax):
    """Texel row i's part of the disk of radius r centred at padded position (X, Y): (height, mid-height offset
    from Y, chord [X0, X1] at the mid-height clamped to [0, wmax]); height 0 when the row misses it."""
    ylo = max(float(i), Y - r)
    yhi = min(i + 1.0, Y + r)
    hgt = yhi - ylo
    if hgt <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    dy = 0.5 * (ylo + yhi) - Y
    hw = math.sqrt(max(r * r - dy * dy, 0.0))
    X0 = min(max(X - hw, 0.0), wmax)
    X1 = min(max(X + hw, 0.0), wmax)
    if X1 <= X0:
        return 0.0, 0.0, 0.0, 0.0
    return hgt, dy, X0, X1


@njit(cache=True, inline="always")
def _row_sum(s, i, j0, f0, j1, f1, c):
    """Integral of channel c of texel row i over [j0 + f0, j1 + f1] from summed-area table ``s``: the row prefix
    R(x) = S[i+1, x] − S[i, x], linear in x between table columns."""
    return (
        (s[i + 1, j1, c] - s[i, j1, c]) * (1.0 - f1)
        + (s[i + 1, j1 + 1, c] - s[i, j1 + 1, c]) * f1
        - (s[i + 1, j0, c] - s[i, j0, c]) * (1.0 - f0)
        - (s[i + 1, j0 + 1, c] - s[i, j0 + 1, c]) * f0
    )


@njit(cache=True)
def disk_mean3(sat, sat1, layer, x, y, r, pad, ax, ay):
    """Mean of the 3 colour channels over the disk of radius r centred at image position (x, y) under the weight
    1 + ax·(u − x) + ay·(v − y) at image position (u, v) (ax = ay = 0: the plain mean), in texel rows: each row's
    chord at its mid-height, integrated exactly from the summed-area table (the difference of two table rows is that
    texel row's prefix sum along x). A row's weight in v is taken at its mid-height; in u it is integrated exactly
    with ``sat1``, the summed-area table of u·texel, read only when ax ≠ 0 (pass ``sat`` when there is none). The
    alpha channel is not read: a disk read is taken only where one opaque surface covers the disk.
    Returns (c0, c1, c2, rows read)."""
    wmax = sat.shape[2] - 1.0
    X = x + pad
    Y = y + pad
    s = sat[layer]
    m = sat1[layer]
    i_lo = max(int(math.floor(Y - r)), 0)
    i_hi = min(int(math.floor(Y + r)), sat.shape[1] - 2)
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    area = 0.0
    for i in range(i_lo, i_hi + 1):
        hgt, dy, X0, X1 = _disk_chord(i, X, Y, r, wmax)
        if hgt <= 0.0:
            continue
        j0 = min(int(X0), sat.shape[2] - 2)
        j1 = min(int(X1), sat.shape[2] - 2)
        f0 = X0 - j0
        f1 = X1 - j1
        base = 1.0 + ay * dy - ax * X  # the row's weight is base + ax·u (u in padded texels)
        c0 = base * _row_sum(s, i, j0, f0, j1, f1, 0)
        c1 = base * _row_sum(s, i, j0, f0, j1, f1, 1)
        c2 = base * _row_sum(s, i, j0, f0, j1, f1, 2)
        w = base * (X1 - X0)
        if ax != 0.0:
            c0 += ax * _row_sum(m, i, j0, f0, j1, f1, 0)
            c1 += ax * _row_sum(m, i, j0, f0, j1, f1, 1)
            c2 += ax * _row_sum(m, i, j0, f0, j1, f1, 2)
            w += 0.5 * ax * (X1 * X1 - X0 * X0)
        a0 += hgt * c0
        a1 += hgt * c1
        a2 += hgt * c2
        area += hgt * w
    if area <= 0.0:
        return 0.0, 0.0, 0.0, 0
    inv = 1.0 / area
    return a0 * inv, a1 * inv, a2 * inv, i_hi - i_lo + 1


@njit(cache=True, inline="always")
def rim_distance(dtex, layer, pad, K, df, px, py, ex, ey, rho):
    """Distance ρ from p, along the unit direction e, to the rim of the pixel's footprint on a general layer that
    cannot fold there: the fixed point of ρ = K·|D(p + ρ·e) − d_f| (a contraction, K·|∇D| < 1), from ``rho``."""
    for _ in range(8):
        nxt = K * abs(bilinear1(dtex, layer, px + rho * ex, py + rho * ey, pad) - df)
        done = abs(nxt - rho) < 1e-3
        rho = nxt
        if done:
            break
    return rho


# --------------------------------------------------------------------------------------------------------
# Ray / layer intersection
# --------------------------------------------------------------------------------------------------------


@njit(cache=True)
def monotone_root(dtex, layer, pad, px, py, ox, oy, df, dlo, dhi, fhi, speed):
    """The one root in [dlo, dhi] of f(d) = D(x(d)) − d, which falls strictly there (f(dhi) = fhi < 0), by regula
    falsi with the Illinois rule, to 1e-3 px along the ray; dlo when f(dlo) ≤ 0 (the ray passes the window's
    range without meeting the surface)."""
    flo = bilinear1(dtex, layer, px + (dlo - df) * ox, py + (dlo - df) * oy, pad) - dlo
    if flo <= 0.0:
        return dlo
    a = dlo  # f(a) > 0 > f(b)
    b = dhi
    fa = flo
    fb = fhi
    side = 0
    tol = 1e-3 / speed
    d = a
    for _ in range(64):
        d = (a * fb - b * fa) / (fb - fa)
        f = bilinear1(dtex, layer, px + (d - df) * ox, py + (d - df) * oy, pad) - d
        if f > 0.0:
            a = d
            fa = f
            if side == 1:
                fb *= 0.5
            side = 1
        else:
            b = d
            fb = f
            if side == -1:
                fa *= 0.5
            side = -1
        if b - a < tol or abs(f) * speed < 1e-4:
            break
    return d


@njit(cache=True, inline="always")
def _axis_cell(u, du, n):
    """Cell of texture coordinate ``u`` along one axis of n texels, entered moving at du per unit of t: −1 below
    the first texel centre (clamped), n − 1 beyond the last (clamped), else the cell j whose [j, j + 1] holds u
    (on a boundary, the cell the motion enters)."""
    if u < 0.0 or (u == 0.0 and du < 0.0):
        return -1
    if u > n - 1.0 or (u == n - 1.0 and du > 0.0):
        return n - 1
    j = int(math.floor(u))
    if u == j and du < 0.0:
        j -= 1
    return min(j, n - 2)


@njit(cache=True, inline="always")
def _axis_exit(u, du, j, n):
    """t at which coordinate u(t) = u + du·t leaves cell j (see :func:`_axis_cell`); inf when it never does."""
    if du > 0.0:
        return (j + 1.0 - u) / du if j < n - 1 else math.inf
    if du < 0.0:
        return (u - j) / -du if j >= 0 else math.inf
    return math.inf


@njit(cache=True, inline="always")
def _axis_entry(u, du, t, j, n):
    """(texel index of the patch, fraction where the ray is at t, its rate) along one axis in cell j: a clamped
    cell reads the border texels at a fixed fraction."""
    j0 = min(max(j, 0), n - 2)
    if j < 0:
        return j0, 0.0, 0.0
    if j > n - 2:
        return j0, 1.0, 0.0
    return j0, u + du * t - j0, du


@njit(cache=True)
def exact_root(dtex, layer, pad, px, py, ox, oy, df, dlo, dhi):
    """The largest d in [dlo, dhi] where the ray x(d) = p + (d − d_f)·o meets the bilinear surface D (the nearest
    hit), exactly: no step, so no sliver of surface can be stepped over; dlo when the ray meets none.

    With t = dhi − d the ray is a straight line in texel coordinates. It is walked cell by cell (2-D DDA over the
    texel cells it crosses, the clamped region beyond the border as cells of their own). Within a cell D is one
    bilinear patch, so f = D(x(t)) − d(t) is a quadratic in t, solved in closed form for its first root. f is
    continuous from cell to cell and f(0) < 0 (the caller's check), so the first root found is the first hit."""
    hp = dtex.shape[1]
    wp = dtex.shape[2]
    t_end = dhi - dlo
    u = px + (dhi - df) * ox - 0.5 + pad  # texel coordinates at t = 0
    v = py + (dhi - df) * oy - 0.5 + pad
    du = -ox  # d decreases as t grows
    dv = -oy
    ju = _axis_cell(u, du, wp)
    jv = _axis_cell(v, dv, hp)
    tu = _axis_exit(u, du, ju, wp)
    tv = _axis_exit(v, dv, jv, hp)
    t0 = 0.0
    tex = dtex[layer]
    for _ in range(4 * (hp + wp) + 8):
        t1 = min(tu, tv, t_end)
        # ---- this cell's patch: corners, and where the ray enters it (clamped axes stay put) ----
        j0, fx0, ax = _axis_entry(u, du, t0, ju, wp)
        i0, fy0, ay = _axis_entry(v, dv, t0, jv, hp)
        a00 = tex[i0, j0]
        a01 = tex[i0, j0 + 1]
        a10 = tex[i0 + 1, j0]
        a11 = tex[i0 + 1, j0 + 1]
        d1 = dhi - t1  # the ray's disparity where it leaves the cell (its least in the cell)
        if max(max(a00, a01), max(a10, a11)) >= d1:  # else the patch lies wholly behind the ray here
            gx = a01 - a00
            gy = a10 - a00
            e = a00 - a01 - a10 + a11
            # f(t0 + s) = C + B·s + A·s²
            C = a00 + gx * fx0 + gy * fy0 + e * fx0 * fy0 - (dhi - t0)
            B = gx * ax + gy * ay + e * (fx0 * ay + fy0 * ax) + 1.0
            A = e * ax * ay
            if C >= 0.0:
                return dhi - t0
            smax = t1 - t0
            s = math.inf
            if abs(A) * smax < 1e-12 * max(abs(B), 1e-300):
                if B > 0.0:
                    s = -C / B
            else:
                disc = B * B - 4.0 * A * C
                if disc >= 0.0:
                    q = -0.5 * (B + math.copysign(math.sqrt(disc), B))
                    r1 = q / A
                    r2 = C / q if q != 0.0 else math.inf
                    if r1 >= 0.0:
                        s = r1
                    if 0.0 <= r2 < s:
                        s = r2
            if s <= smax:
                return dhi - (t0 + s)
        if t1 >= t_end:
            return dlo
        # ---- into the next cell ----
        t0 = t1
        if tu <= tv:
            ju += 1 if du > 0.0 else -1
            tu = _axis_exit(u, du, ju, wp)
        else:
            jv += 1 if dv > 0.0 else -1
            tv = _axis_exit(v, dv, jv, hp)
    return dlo


@njit(cache=True, inline="always")
def intersect(layer, kinds, gparam, dlo, dhi, fold, dtex, pad, px, py, ox, oy, df):
    """Disparity d at which the ray x(d) = p + (d − d_f)·o meets the layer (o = K·s).

    constant: d = a.   plane: d = a + g·x(d)  solved in closed form.
    general: [dlo, dhi] brackets the disparities the ray can meet (the layer's range over the pixel's window).
    Where the surface cannot fold there (``fold`` False: K·|∇D| < 1 over the window), f(d) = D(x(d)) − d falls
    strictly, so it has one root, found by regula falsi (Illinois) to 1e-3 px along the ray. Elsewhere the ray is
    walked cell by cell and solved exactly against each bilinear patch (:func:`exact_root`): the nearest surface
    the ray meets, however thin the sliver of it that the ray crosses.
    """
    kind = kinds[layer]
    if kind == GEOM_CONSTANT:
        return gparam[layer, 0]
    if kind == GEOM_PLANE:
        a = gparam[layer, 0]
        gx = gparam[layer, 1]
        gy = gparam[layer, 2]
        go = gx * ox + gy * oy
        den = 1.0 - go
        base = a + gx * px + gy * py
        if den <= 1e-9:  # plane seen edge-on along this ray: take its disparity at the pixel
            return base
        return (base - df * go) / den
    speed = math.sqrt(ox * ox + oy * oy)  # px of x per unit of disparity
    reach = speed * (dhi - dlo)
    nsteps = int(math.ceil(reach / 0.5))
    if nsteps == 0:
        d0 = bilinear1(dtex, layer, px, py, pad)
        return bilinear1(dtex, layer, px + (d0 - df) * ox, py + (d0 - df) * oy, pad)
    fhi = bilinear1(dtex, layer, px + (dhi - df) * ox, py + (dhi - df) * oy, pad) - dhi
    if fhi >= 0.0:
        return dhi
    if not fold:
        return monotone_root(dtex, layer, pad, px, py, ox, oy, df, dlo, dhi, fhi, speed)
    return exact_root(dtex, layer, pad, px, py, ox, oy, df, dlo, dhi)


@njit(cache=True, inline="always")
def insert_nearest_first(dl, order, n, l):
    """Insert layer l into ``order[:n]`` (layers sorted by their disparity ``dl``, nearest first; stable: among equal
    disparities the earlier layer stays in front)."""
    m = n
    while m > 0 and dl[order[m - 1]] < dl[l]:
        order[m] = order[m - 1]
        m -= 1
    order[m] = l


@njit(cache=True)
def disparity_at_pixel(layer, kinds, gparam, dtex, pad, px, py):
    """The layer's disparity at image position (px, py) (no ray: the pinhole view)."""
    kind = kinds[layer]
    if kind == GEOM_CONSTANT:
        return gparam[layer, 0]
    if kind == GEOM_PLANE:
        return gparam[layer, 0] + gparam[layer, 1] * px + gparam[layer, 2] * py
    return bilinear1(dtex, layer, px, py, pad)


@njit(cache=True, inline="always")
def nbuffer_max(nb, g, i0, i1, j0, j1):
    """Largest texel of general layer slot ``g`` over the inclusive texel rectangle [i0, i1] × [j0, j1] (clamped to
    the padded texture) from its N-buffers ``nb[g, k]`` (the max over the 2^k × 2^k square starting at each texel):
    squares of the largest side that fits the rectangle's shorter side, laid to cover it (Décoret 2005)."""
    hp = nb.shape[2]
    wp = nb.shape[3]
    i0 = min(max(i0, 0), hp - 1)
    i1 = min(max(i1, 0), hp - 1)
    j0 = min(max(j0, 0), wp - 1)
    j1 = min(max(j1, 0), wp - 1)
    m = min(i1 - i0, j1 - j0) + 1
    k = 0
    while (2 << k) <= m and k + 1 < nb.shape[1]:
        k += 1
    s = 1 << k
    best = -math.inf
    a = i0
    while True:
        aa = min(a, i1 - s + 1)
        b = j0
        while True:
            bb = min(b, j1 - s + 1)
            v = nb[g, k, aa, bb]
            if v > best:
                best = v
            if bb >= j1 - s + 1:
                break
            b += s
        if aa >= i1 - s + 1:
            break
        a += s
    return best


@njit(cache=True, inline="always")
def _slab_max(nb, g, pad, K, df, px, py, x0, x1, y0, y1, a, b):
    """Largest disparity of the surface (slot g) where rays through the aperture box [x0, x1] × [y0, y1] can be at
    disparities in [a, b]: the N-buffer max over the bounding box of those points, widened by a texel (the bilinear
    surface between texel centres)."""
    ra = K * (a - df)
    rb = K * (b - df)
    ux0 = min(min(ra * x0, ra * x1), min(rb * x0, rb * x1)) + px - 0.5 + pad
    ux1 = max(max(ra * x0, ra * x1), max(rb * x0, rb * x1)) + px - 0.5 + pad
    vy0 = min(min(ra * y0, ra * y1), min(rb * y0, rb * y1)) + py - 0.5 + pad
    vy1 = max(max(ra * y0, ra * y1), max(rb * y0, rb * y1)) + py - 0.5 + pad
    return nbuffer_max(
        nb, g, int(math.floor(vy0)), int(math.floor(vy1)) + 1, int(math.floor(ux0)), int(math.floor(ux1)) + 1
    )


@njit(cache=True)
def nearer_surface(nb, g, dwin, layer, pad, K, df, px, py, sx, sy, h, d_hit, dhi):
    """Whether some ray through the aperture cell [sx ± h] × [sy ± h] may meet a general layer (N-buffer slot g)
    nearer than where the cell's centre ray met it (d_hit) by more than the cell itself spans there: a part of the
    map in front of the hit, blurred over it (self-occlusion), that no read at the hit point can see.

    Conservative: the disparities above the hit are walked in slabs [a, b]; no ray of the cell meets the surface in
    a slab where the surface's largest disparity over the slab's swept box stays below a. A slab that may hold a hit
    is halved until the cell's rays move less than half a pixel across it: then the cell may see two surfaces."""
    x0 = sx - h
    x1 = sx + h
    y0 = sy - h
    y1 = sy + h
    # the surface the cell meets at the hit spans up to m0 over the cell's footprint there: the same sheet where it
    # is smooth there (no steep texel in the footprint), else a step of the map inside the footprint
    m0 = _slab_max(nb, g, pad, K, df, px, py, x0, x1, y0, y1, d_hit, d_hit)
    if K * (m0 - d_hit) > 0.5:
        rh = K * (d_hit - df)
        half = abs(rh) * h  # the footprint's half side
        ti = min(max(int(py + rh * sy + pad), 0), dwin.shape[1] - 1)
        tj = min(max(int(px + rh * sx + pad), 0), dwin.shape[2] - 1)
        if dwin[layer, ti, tj, 2] <= 1.5 * half + 1.5:
            return True
    a = max(d_hit, m0) + 0.5 / K
    if a >= dhi:
        return False
    reach = max(abs(x0), abs(x1)) + max(abs(y0), abs(y1))  # px the ray moves per px of CoC, at most
    w = dhi - a
    for _ in range(96):
        b = min(a + w, dhi)
        if _slab_max(nb, g, pad, K, df, px, py, x0, x1, y0, y1, a, b) < a:
            if b >= dhi:
                return False
            a = b
            w *= 2.0
        elif K * (b - a) * reach <= 0.5:
            return True
        else:
            w *= 0.5
    return True


# --------------------------------------------------------------------------------------------------------
# Aperture shape
# --------------------------------------------------------------------------------------------------------


@njit(cache=True)
def aperture_radius(y, x, blades, rotation, roundness):
    """Boundary radius of the aperture in the direction of (x, y): 1 for a circle; a regular polygon with
    ``blades`` sides inscribed in the unit circle (vertices at radius 1), blended toward the circle by
    ``roundness``."""
    if blades < 3:
        return 1.0
    phi = math.atan2(y, x)
    sector = 2.0 * math.pi / blades
    a = (phi - rotation) % sector
    r_poly = math.cos(math.pi / blades) / math.cos(a - 0.5 * sector)
    return (1.0 - roundness) * r_poly + roundness


# --------------------------------------------------------------------------------------------------------
# The renderer
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def sheared_box(hx, hy, ox, oy, vx, vy):
    """Sides of the axis-aligned box with the second moments of a cell's footprint on a surface of slope v = ∇D:
    x − p = r(x)·s gives dx = r·(I − o·vᵀ)⁻¹·ds = r·(I + o·vᵀ / (1 − vᵀo))·ds (o = K·s), so the square of sides
    (hx, hy) on a fronto-parallel surface is sheared and stretched by that Jacobian."""
    den = max(1.0 - (ox * vx + oy * vy), 0.1)
    j00 = 1.0 + ox * vx / den
    j01 = ox * vy / den
    j10 = oy * vx / den
    j11 = 1.0 + oy * vy / den
    return math.sqrt((j00 * hx) ** 2 + (j01 * hy) ** 2), math.sqrt((j10 * hx) ** 2 + (j11 * hy) ** 2)


@njit(cache=True, inline="always")
def trace_ray(textures, state, view, sx, sy, cell_x, cell_y, prefilter, bx, by, bh):
    """Premultiplied linear colour gathered by the ray through aperture point s: "over" front to back.

    The ray stands for the aperture cell of sides (cell_x, cell_y) around s (aperture units). Each layer is read
    box-filtered over the patch of sides |r|·cell it subtends, or bilinearly when both are under 1 px (box(1) ∗ nearest
    is bilinear, so in-focus layers are read exactly as the path-traced references read them). Also returns
    whether a box read saw a partly covered patch with more layers behind it (an occlusion edge in the cell).

    textures = (tex, sat, dtex, kinds, gparam, pad, nb, gslot, dwin) (see :func:`render_kernel`); state = (relevant,
    dlo, dhi, fold, dl, order): stage 1's per-layer results for this pixel and the ray's scratch; view = (K, df, px,
    py).

    [bx ± bh] × [by ± bh] is the whole cell (a cell cut by the aperture's edge reads a smaller box, of the
    moments of its part inside): where a general layer may fold, every ray in it is asked whether it may meet the
    layer in front of the hit (bh = 0: not asked; the fixed grid's point rays are never refined).

    The flag returned is 0 (the cell's reads stand for it), MIX_EDGE (an occlusion edge between layers, or a general
    surface whose blur varies across the patch) or MIX_FOLD (a general layer that may fold: some ray of the cell may
    meet it in front of the hit, :func:`nearer_surface`).
    """
    tex, sat, dtex, kinds, gparam, pad, nb, gslot, dwin = textures
    relevant, dlo, dhi, fold, dl, order = state
    K, df, px, py = view
    ox = K * sx
    oy = K * sy
    # ---- where the ray meets each layer that can reach the pixel, nearest first (stable insertion sort) ----
    nl = 0
    for l in range(kinds.shape[0]):
        if not relevant[l]:
            continue
        dl[l] = intersect(l, kinds, gparam, dlo[l], dhi[l], fold[l], dtex, pad, px, py, ox, oy, df)
        insert_nearest_first(dl, order, nl, l)
        nl += 1
    # ---- front-to-back "over" ----
    T = 1.0  # transmittance of everything nearer
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    mixed = 0  # a box read saw a partly covered patch with more layers behind it (MIX_EDGE), or a fold (MIX_FOLD)
    for q in range(nl):
        l = order[q]
        dd = dl[l] - df
        if abs(dd) < FOCUS_EPS:  # in focus to float32 precision: read exactly at p
            dd = 0.0
        r = K * dd
        x = px + r * sx
        y = py + r * sy
        hx = abs(r) * cell_x if prefilter else 0.0
        hy = abs(r) * cell_y if prefilter else 0.0
        if kinds[l] == GEOM_GENERAL and (max(hx, hy) >= 1.0 or (fold[l] and max(hx, hy) > 0.0)):
            # a general (RGBD) surface: where it may fold and its circle of confusion varies by more than
            # GENERAL_SPREAD_PX across the patch, read the hit point and have the cell refined to binary leaves.
            # Else the cell's footprint is the square sheared and stretched by the surface's slope v = ∇D, averaged
            # over the patch (sheared_box), refined while the blur varies that much (a curved smooth graph)
            ax = max(0.5 * hx, 0.5)
            ay = max(0.5 * hy, 0.5)
            d00 = bilinear1(dtex, l, x - ax, y - ay, pad)
            d01 = bilinear1(dtex, l, x + ax, y - ay, pad)
            d10 = bilinear1(dtex, l, x - ax, y + ay, pad)
            d11 = bilinear1(dtex, l, x + ax, y + ay, pad)
            spread = max(max(d00, d01, d10, d11) - dl[l], dl[l] - min(d00, d01, d10, d11))
            if K * spread > GENERAL_SPREAD_PX and fold[l]:
                # it may fold within the patch: read the hit point, refine to binary leaves
                hx = 0.0
                hy = 0.0
                mixed = MIX_FOLD
            else:
                # a smooth graph (no ray meets it twice here): the sheared box, refined while curved
                if K * spread > GENERAL_SPREAD_PX:
                    mixed = max(mixed, MIX_EDGE)
                hx, hy = sheared_box(
                    hx, hy, ox, oy, (d01 - d00 + d11 - d10) / (4.0 * ax), (d10 - d00 + d11 - d01) / (4.0 * ay)
                )
        elif (
            kinds[l] == GEOM_PLANE
            and max(hx, hy) >= 1.0
            and K * (abs(gparam[l, 1]) + abs(gparam[l, 2])) > PLANE_SHEAR_MIN
        ):
            # a tilted plane's footprint is sheared and stretched the same way, by its exact slope; where its blur
            # varies across the patch by over half a pixel and over 5 % of itself, the footprint is no longer near
            # a parallelogram (the map is projective; its error relative to the patch is scale-free): refine
            if K * (abs(gparam[l, 1]) * hx + abs(gparam[l, 2]) * hy) > max(0.5, 0.05 * abs(r)):
                mixed = max(mixed, MIX_EDGE)
            hx, hy = sheared_box(hx, hy, ox, oy, gparam[l, 1], gparam[l, 2])
        if hx < 1.0 and hy < 1.0:
            t0, t1, t2, t3 = bilinear4(tex, l, x, y, pad)
        else:
            t0, t1, t2, t3 = box4(sat, l, x, y, max(hx, 1.0), max(hy, 1.0), pad)
            if q < nl - 1 and 1e-3 < t3 < 1.0 - 1e-3:
                mixed = max(mixed, MIX_EDGE)
        if (
            fold[l]
            and bh > 0.0
            and mixed < MIX_FOLD
            and nearer_surface(nb, gslot[l], dwin, l, pad, K, df, px, py, bx, by, bh, dl[l], dhi[l])
        ):
            mixed = MIX_FOLD
        c0 += T * t0
        c1 += T * t1
        c2 += T * t2
        T *= 1.0 - t3
        if T < T_EPS:
            break
    return c0, c1, c2, mixed


@njit(cache=True)
def square_in_region(sx, sy, half, blades, rotation, roundness):
    """Coverage of the square [sx ± half] × [sy ± half] by the aperture region centred at 0 (circle or polygon
    of boundary radius R(φ) ≤ 1): exactly 1 when its farthest corner is inside, exactly 0 when its nearest point
    is outside, otherwise the exact fraction under the boundary's tangent line, kept strictly inside (0, 1) (the
    caller refines such cells)."""
    ax = abs(sx)
    ay = abs(sy)
    fx = ax + half
    fy = ay + half
    far = math.sqrt(fx * fx + fy * fy)
    if far <= aperture_radius(math.copysign(fy, sy), math.copysign(fx, sx), blades, rotation, roundness):
        return 1.0
    nx = max(ax - half, 0.0)
    ny = max(ay - half, 0.0)
    near = math.sqrt(nx * nx + ny * ny)
    if near > 0.0 and near >= aperture_radius(
        math.copysign(ny, sy), math.copysign(nx, sx), blades, rotation, roundness
    ):
        return 0.0
    rho = math.sqrt(ax * ax + ay * ay)
    if rho == 0.0:
        return 1.0 - 1e-9
    R = aperture_radius(sy, sx, blades, rotation, roundness)
    w = square_under_line(half, ax / rho, ay / rho, R - rho)
    return min(max(w, 1e-9), 1.0 - 1e-9)


@njit(cache=True)
def square_under_line(a, p, q, c):
    """Fraction of the square [−a, a]² on the side n·x ≤ c of a straight line with unit normal n = (±p, ±q)
    (the boundary, locally straight, at distance c from the square's centre along n)."""
    if p < q:
        p, q = q, p
    lo = a * (p - q)
    hi = a * (p + q)
    if c <= -hi:
        return 0.0
    if c >= hi:
        return 1.0
    if q < 1e-9 or -lo <= c <= lo:
        return (c + a * p) / (2.0 * a * p)
    if c < -lo:
        return (c + hi) * (c + hi) / (2.0 * p * q) / (4.0 * a * a)
    return 1.0 - (hi - c) * (hi - c) / (2.0 * p * q) / (4.0 * a * a)


@njit(cache=True, inline="always")
def disk_overlap(d):
    """The area shared by two unit disks whose centres are d apart."""
    if d >= 2.0:
        return 0.0
    return 2.0 * math.acos(0.5 * d) - 0.5 * d * math.sqrt(4.0 - d * d)


@njit(cache=True)
def cell_coverage(sx, sy, size, blades, rotation, roundness, cateye, cx, cy):
    """Coverage of the square aperture cell of side ``size`` centred at s: (by the aperture, by the aperture
    and the vignetting exit pupil, a unit disk centred at (cx, cy) when cateye > 0)."""
    w_ap = square_in_region(sx, sy, 0.5 * size, blades, rotation, roundness)
    w = w_ap
    if cateye > 0.0 and w > 0.0:
        w *= square_in_region(sx - cx, sy - cy, 0.5 * size, 0, 0.0, 0.0)
    return w_ap, w


@njit(cache=True, inline="always")
def _segment_moments(u0, v0, u1, v1):
    """Green's-theorem terms of the directed segment (u0, v0) → (u1, v1): twice the signed area, and the
    integrands of ∫u, ∫v, ∫u², ∫v² over the region it bounds (times 6, 6, 12, 12)."""
    cr = u0 * v1 - u1 * v0
    return cr, (u0 + u1) * cr, (v0 + v1) * cr, (u0 * u0 + u0 * u1 + u1 * u1) * cr, (v0 * v0 + v0 * v1 + v1 * v1) * cr


@njit(cache=True)
def clipped_square_moments(h, nx, ny, c):
    """The part of the square [−h, h]² where nx·u + ny·v ≤ c: (area, centroid u, centroid v, variance of u,
    variance of v). The boundary is walked counter-clockwise (the square's edges clipped to the inside, closed
    along the line) and the moments summed with Green's theorem, without building the polygon."""
    a2 = 0.0
    su = 0.0
    sv = 0.0
    suu = 0.0
    svv = 0.0
    eu = 0.0  # where the boundary leaves the region (onto the line) and where it comes back
    ev = 0.0
    iu = 0.0
    iv = 0.0
    cut = False
    for e in range(5):
        if e == 4:  # close the boundary along the line, from where it left the square to where it came back
            if not cut:
                break
            u0, v0, u1, v1 = eu, ev, iu, iv
        else:
            # corners counter-clockwise: (−h, −h), (h, −h), (h, h), (−h, h)
            u0 = -h if e == 0 or e == 3 else h
            v0 = -h if e <= 1 else h
            u1 = -h if e == 2 or e == 3 else h
            v1 = -h if e == 0 or e == 3 else h
            f0 = nx * u0 + ny * v0 - c
            f1 = nx * u1 + ny * v1 - c
            if f0 > 0.0 and f1 > 0.0:
                continue
            if f0 > 0.0 or f1 > 0.0:
                t = f0 / (f0 - f1)
                xu = u0 + t * (u1 - u0)
                xv = v0 + t * (v1 - v0)
                cut = True
                if f0 <= 0.0:
                    u1 = xu
                    v1 = xv
                    eu = xu
                    ev = xv
                else:
                    u0 = xu
                    v0 = xv
                    iu = xu
                    iv = xv
        d0, d1, d2, d3, d4 = _segment_moments(u0, v0, u1, v1)
        a2 += d0
        su += d1
        sv += d2
        suu += d3
        svv += d4
    area = 0.5 * a2
    if area <= 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    mu = su / (6.0 * area)
    mv = sv / (6.0 * area)
    return area, mu, mv, max(suu / (12.0 * area) - mu * mu, 0.0), max(svv / (12.0 * area) - mv * mv, 0.0)


# Columns of a row of the per-pixel cell queue.
Q_SX, Q_SY, Q_SIZE_X, Q_W, Q_W_AP, Q_LEVEL, Q_SIZE_Y, Q_SX0, Q_SY0, Q_SIZE = range(10)
Q_COLUMNS = 10


@njit(cache=True, inline="always")
def _arc_moments(u0, v0, u1, v1):
    """The terms :func:`_segment_moments` gives a straight edge (each edge's triangle with the origin), for the unit
    circle's arc from (u0, v0) to (u1, v1), counter-clockwise and shorter than a half turn: its sector's twice area
    (the angle t) and its ∫u, ∫v, ∫u², ∫v² (times 6, 6, 12, 12): ∫∫ r·(cos θ, sin θ)·r dr dθ = ⅓(Δsin θ, −Δcos θ),
    ∫∫ r²·(cos²θ, sin²θ)·r dr dθ = ¼(t/2 ± Δsin 2θ / 4), with sin 2θ = 2uv."""
    t = math.atan2(u0 * v1 - u1 * v0, u0 * u1 + v0 * v1)
    h2 = 1.5 * (u1 * v1 - u0 * v0)
    return t, 2.0 * (v1 - v0), 2.0 * (u0 - u1), 1.5 * t + h2, 1.5 * t - h2


@njit(cache=True, inline="always")
def _chord_part(t0, t1, c):
    """The part of an edge running from t0 to t1 along its line that lies within the circle's chord [−c, c] there:
    (whether there is one, where it starts, where it ends, whether it starts inside the edge — coming back from
    the circle —, whether it ends inside it — leaving onto the circle)."""
    if t0 < t1:
        a = max(t0, -c)
        b = min(t1, c)
        return a < b, a, b, a > t0, b < t1
    a = min(t0, c)
    b = max(t1, -c)
    return b < a, a, b, a < t0, b > t1


@njit(cache=True)
def disk_square_moments(sx, sy, h):
    """The part of the square [sx ± h] × [sy ± h] inside the unit disk, exactly: (area, centroid u, centroid v,
    variance of u, variance of v). Its boundary, walked counter-clockwise, is the square's edges clipped to the disk
    and the arcs of the circle between where it leaves the square's edges and where it comes back; the moments are
    summed with Green's theorem (straight edges and circular arcs in closed form). A square of side < 2 holds
    arcs shorter than a half turn."""
    u_lo = sx - h
    u_hi = sx + h
    v_lo = sy - h
    v_hi = sy + h
    # half-chords of the circle along the square's four lines (−1: the line misses the disk)
    cv_lo = math.sqrt(1.0 - v_lo * v_lo) if abs(v_lo) < 1.0 else -1.0
    cv_hi = math.sqrt(1.0 - v_hi * v_hi) if abs(v_hi) < 1.0 else -1.0
    cu_lo = math.sqrt(1.0 - u_lo * u_lo) if abs(u_lo) < 1.0 else -1.0
    cu_hi = math.sqrt(1.0 - u_hi * u_hi) if abs(u_hi) < 1.0 else -1.0
    a2 = 0.0
    su = 0.0
    sv = 0.0
    suu = 0.0
    svv = 0.0
    first = False  # the boundary came back from the circle onto an edge before any exit was seen
    fu = 0.0  # that first entry point
    fv = 0.0
    exited = False
    eu = 0.0  # where the boundary last left an edge onto the circle
    ev = 0.0
    any_edge = False
    for e in range(4):
        # counter-clockwise: bottom (+u at v_lo), right (+v at u_hi), top (−u at v_hi), left (−v at u_lo)
        if e == 0:
            t0, t1, c, fixed = u_lo, u_hi, cv_lo, v_lo
        elif e == 1:
            t0, t1, c, fixed = v_lo, v_hi, cu_hi, u_hi
        elif e == 2:
            t0, t1, c, fixed = u_hi, u_lo, cv_hi, v_hi
        else:
            t0, t1, c, fixed = v_hi, v_lo, cu_lo, u_lo
        if c < 0.0:
            continue
        inside, a, b, ent, ext = _chord_part(t0, t1, c)
        if not inside:
            continue
        if e % 2 == 0:
            pu0, pv0, pu1, pv1 = a, fixed, b, fixed
        else:
            pu0, pv0, pu1, pv1 = fixed, a, fixed, b
        any_edge = True
        if ent:  # came back from the circle here: the arc since the last exit ends here
            if exited:
                d0, d1, d2, d3, d4 = _arc_moments(eu, ev, pu0, pv0)
                a2 += d0
                su += d1
                sv += d2
                suu += d3
                svv += d4
            else:
                first = True
                fu = pu0
                fv = pv0
        d0, d1, d2, d3, d4 = _segment_moments(pu0, pv0, pu1, pv1)
        a2 += d0
        su += d1
        sv += d2
        suu += d3
        svv += d4
        if ext:
            exited = True
            eu = pu1
            ev = pv1
    if not any_edge:
        if u_lo <= -1.0 and u_hi >= 1.0 and v_lo <= -1.0 and v_hi >= 1.0:
            return math.pi, 0.0, 0.0, 0.25, 0.25  # the whole disk
        return 0.0, 0.0, 0.0, 0.0, 0.0
    if exited and first:  # close the last arc
        d0, d1, d2, d3, d4 = _arc_moments(eu, ev, fu, fv)
        a2 += d0
        su += d1
        sv += d2
        suu += d3
        svv += d4
    area = 0.5 * a2
    if area <= 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    mu = su / (6.0 * area)
    mv = sv / (6.0 * area)
    return area, mu, mv, max(suu / (12.0 * area) - mu * mu, 0.0), max(svv / (12.0 * area) - mv * mv, 0.0)


@njit(cache=True)
def push_cell(q, n, sx, sy, size, scale, level, blades, rotation, roundness, cateye, cx, cy):
    """Append aperture cell (centre s, side ``size``, area weight ``scale``) to queue ``q`` with its coverage;
    returns (new length, aperture weight of a cell the exit pupil blocks entirely).

    A cell cut by the aperture's edge (under the edge's tangent line) reads a box with the centroid and the
    second moments of the part of it inside: the box's mean then matches the mean over that part for any
    texture that varies linearly or quadratically across it."""
    if blades < 3 and cateye <= 0.0:
        # a round aperture without vignetting: inside, outside, or cut (its exact part below)
        hh = 0.5 * size
        fx = abs(sx) + hh
        fy = abs(sy) + hh
        nx = max(abs(sx) - hh, 0.0)
        ny = max(abs(sy) - hh, 0.0)
        if nx * nx + ny * ny >= 1.0:
            return n, 0.0
        w_ap = 1.0 if fx * fx + fy * fy <= 1.0 else 0.5  # 0.5: cut (its exact share is taken below)
        w = w_ap
    else:
        w_ap, w = cell_coverage(sx, sy, size, blades, rotation, roundness, cateye, cx, cy)
    if w_ap <= 0.0:
        return n, 0.0
    if w <= 0.0:
        return n, w_ap * scale
    sx0 = sx
    sy0 = sy
    size_x = size
    size_y = size
    if w_ap < 1.0 and blades < 3:
        # a round aperture: the part of the cell inside it, exactly
        a, mx, my, vx, vy = disk_square_moments(sx, sy, 0.5 * size)
        if a <= 1e-12 * size * size:
            return n, 0.0
        passed = w / w_ap  # the share the exit pupil lets through (1 without cat-eye)
        w_ap = a / (size * size)
        w = w_ap * passed
        sx = mx
        sy = my
        size_x = math.sqrt(12.0 * vx)
        size_y = math.sqrt(12.0 * vy)
    elif w_ap < 1.0:
        rho = math.sqrt(sx * sx + sy * sy)
        if rho > 0.0:
            R = aperture_radius(sy, sx, blades, rotation, roundness)
            a, mx, my, vx, vy = clipped_square_moments(0.5 * size, sx / rho, sy / rho, R - rho)
            if a > 1e-12 * size * size:
                sx += mx
                sy += my
                size_x = math.sqrt(12.0 * vx)
                size_y = math.sqrt(12.0 * vy)
    q[n, Q_SX] = sx
    q[n, Q_SY] = sy
    q[n, Q_SIZE_X] = size_x
    q[n, Q_SIZE_Y] = size_y
    q[n, Q_W] = w * scale
    q[n, Q_W_AP] = w_ap * scale
    q[n, Q_LEVEL] = level
    q[n, Q_SX0] = sx0
    q[n, Q_SY0] = sy0
    q[n, Q_SIZE] = size
    return n + 1, 0.0


@njit(cache=True)
def push_split(q, n, sx, sy, size, level, refine, blades, rotation, roundness, cateye, cx, cy):
    """Append the refine × refine sub-cells of the cell (centre s, side ``size``, at depth ``level`` of the
    refinement: a base cell is level 0 and weighs 1), each weighing 1/refine² of it; returns (new length, blocked
    aperture weight)."""
    sub = size / refine
    scale = 1.0 / (refine * refine) ** (level + 1.0)
    blocked = 0.0
    for u in range(refine):
        for v in range(refine):
            tx = sx + (u + 0.5 - 0.5 * refine) * sub
            ty = sy + (v + 0.5 - 0.5 * refine) * sub
            n, b = push_cell(q, n, tx, ty, sub, scale, level + 1.0, blades, rotation, roundness, cateye, cx, cy)
            blocked += b
    return n, blocked


# Deepest refinement of a cell (levels of refine × refine splits below the base grid).
MAX_LEVEL = 12


def queue_capacity(max_n, refine):
    """Rows of the per-pixel cell stack: every cell of the bounding square of the aperture grid, each possibly
    split into refine² sub-cells, and the sub-cells that splitting one cell per level to MAX_LEVEL holds at once
    (the stack is worked last in, first out)."""
    side = 2 * (int(math.ceil(1.0 / math.sqrt(math.pi / max_n))) + 1)
    return side * side * (1 + refine * refine) + (MAX_LEVEL + 1) * refine * refine


# --------------------------------------------------------------------------------------------------------
# The render kernel, one stage per helper: 1. which layers a pixel's rays can meet (and the shortcut when the
# nearest of them hides the rest), 1c. the closed-form disk read, 2. the aperture cells, 3. tracing them
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def reachable_layers(
    sat, dtex, dwin, kinds, gparam, pad, K, df, px, py, reach, cell_px, relevant, opaque, dlo, dhi, rl, fold
):
    """Stage 1 for the pixel centred at (px, py): fills, per layer, ``relevant`` (some alpha within r·reach of
    p), ``opaque`` (alpha 1 over that whole box), the disparities [dlo, dhi] at which a ray can meet it, its
    circle of confusion radius ``rl`` and, for a general layer, whether it may fold (occlude itself) where the
    pixel's rays meet it (``fold``: a steep texel, K·|∇D| ≥ FOLD_SLOPE, within its circle of confusion; ``dwin``
    gives a general layer's range and the distance to a steep texel). A layer nearer than every other along every
    ray and opaque wherever a ray meets it hides the rest: only it stays relevant (in focus, that is a single ray).

    Returns (rmax, cell, folds): the largest circle of confusion among the relevant layers (0 when only an
    in-focus front layer is), the cell side to sample with (smaller when a general surface is relevant) and whether
    it may fold (its cells cut by the aperture's edge are then split, and trace_ray probes each cell for a nearer
    part of the map: cells that may see two of its surfaces are refined to fold_cell).
    """
    L = kinds.shape[0]
    ti = int(py) + pad
    tj = int(px) + pad
    for l in range(L):
        dc = 0.0
        fold[l] = False
        if kinds[l] == GEOM_GENERAL:
            # every ray meets the layer within the window a disk of the layer's largest blur covers: at a
            # disparity within the layer's range there
            dlo[l] = dwin[l, ti, tj, 0]
            dhi[l] = dwin[l, ti, tj, 1]
            r = max(abs(dlo[l] - df), abs(dhi[l] - df))
            r = 0.0 if r < FOCUS_EPS else K * r
            # a steep texel within reach
            fold[l] = dwin[l, ti, tj, 2] <= r + FOLD_MARGIN_PX
        else:
            dc = disparity_at_pixel(l, kinds, gparam, dtex, pad, px, py)
            r = abs(dc - df)
            r = 0.0 if r < FOCUS_EPS else K * r  # in focus to float32 precision, as trace_ray reads it
        half = r * reach + 1.5
        cover = box_sum(sat, l, px - half, py - half, px + half, py + half, pad, 3)
        relevant[l] = cover > COVER_EPS
        # disparities at which a ray can meet the layer (a plane: its range over the box)
        if kinds[l] == GEOM_PLANE:
            dspread = (abs(gparam[l, 1]) + abs(gparam[l, 2])) * half
            dlo[l] = dc - dspread
            dhi[l] = dc + dspread
        elif kinds[l] == GEOM_CONSTANT:
            dlo[l] = gparam[l, 0]
            dhi[l] = gparam[l, 0]
        # opaque over the whole box: no ray gets past it (to ~1e-5 of transmittance at worst)
        opaque[l] = cover >= (1.0 - 1e-9) * 4.0 * half * half
        rl[l] = r
    # ---- 1b. the nearest layer, opaque wherever a ray meets it, hides the rest ----
    front = -1
    for l in range(L):
        if not (relevant[l] and opaque[l]):
            continue
        nearest = True
        for m in range(L):
            if m != l and relevant[m] and dhi[m] >= dlo[l]:
                nearest = False
                break
        if nearest:
            front = l
            break
    rmax = 0.0
    for l in range(L):
        if relevant[l] and rl[l] > rmax:
            rmax = rl[l]
    if front >= 0:
        for l in range(L):
            relevant[l] = l == front
        if rl[front] <= 0.0:
            rmax = 0.0
    cell = cell_px
    folds = False
    for l in range(L):
        if relevant[l] and kinds[l] == GEOM_GENERAL:
            # a general surface occludes itself where it folds, which no box read can average over, and where
            # it does not, its footprint departs from the square a cell reads
            cell = min(cell, cell_px / GENERAL_CELL_DIVISOR)
            if fold[l] and rl[l] > 0.0:
                folds = True
    return rmax, cell, folds


@njit(cache=True, inline="always")
def strip_layer(kinds, gparam, dtex, dwin, pad, K, df, px, py, relevant, rl, fold, strip_min_px):
    """Stage 1c test: (layer, r, cx, cy) when every ray meets one single surface whose footprint, of radius
    r >= ``strip_min_px``, departs from a disk of centre p + (cx, cy) by at most STRIP_MAX_DISTORTION px (its
    aperture integral is then a disk mean, weighted when the centre moves): a constant layer, a barely tilted
    plane, a general (RGBD) layer whose disparity stays that close to the pixel's own over its window, or one that
    cannot fold there whose rim, found in eight directions, lies that close to the circle fitted to four of them
    (a centre moved by c ≠ 0); else (-1, 0, 0, 0)."""
    only = -1
    count = 0
    for l in range(kinds.shape[0]):
        if relevant[l]:
            only = l
            count += 1
    if count != 1:
        return -1, 0.0, 0.0, 0.0
    if kinds[only] == GEOM_GENERAL:
        if fold[only]:
            return -1, 0.0, 0.0, 0.0
        dc = bilinear1(dtex, only, px, py, pad)
        r = abs(dc - df)
        r = 0.0 if r < FOCUS_EPS else K * r
        ti = int(py) + pad
        tj = int(px) + pad
        if K * max(dwin[only, ti, tj, 1] - dc, dc - dwin[only, ti, tj, 0]) <= STRIP_MAX_DISTORTION:
            # flat enough over the window: the disk of the pixel's own blur
            return (only, r, 0.0, 0.0) if r >= strip_min_px else (-1, 0.0, 0.0, 0.0)
        # the rim along ±x and ±y fixes a circle (centre p + c, radius R: the first-order footprint)
        xp = rim_distance(dtex, only, pad, K, df, px, py, 1.0, 0.0, r)
        xm = rim_distance(dtex, only, pad, K, df, px, py, -1.0, 0.0, r)
        yp = rim_distance(dtex, only, pad, K, df, px, py, 0.0, 1.0, r)
        ym = rim_distance(dtex, only, pad, K, df, px, py, 0.0, -1.0, r)
        cx = 0.5 * (xp - xm)
        cy = 0.5 * (yp - ym)
        R = 0.25 * (xp + xm + yp + ym)
        if R < strip_min_px or cx * cx + cy * cy > (GENERAL_STRIP_MAX_SHIFT * R) ** 2:
            return -1, 0.0, 0.0, 0.0
        # the diagonals must lie on that circle too
        h = math.sqrt(0.5)
        for k in range(4):
            ex = h if k < 2 else -h
            ey = h if k % 2 == 0 else -h
            ec = ex * cx + ey * cy
            pred = ec + math.sqrt(max(R * R - cx * cx - cy * cy + ec * ec, 0.0))
            if abs(rim_distance(dtex, only, pad, K, df, px, py, ex, ey, pred) - pred) > STRIP_MAX_DISTORTION:
                return -1, 0.0, 0.0, 0.0
        return only, R, cx, cy
    r0 = rl[only]
    if r0 < strip_min_px:
        return -1, 0.0, 0.0, 0.0
    tilt = K * (abs(gparam[only, 1]) + abs(gparam[only, 2])) if kinds[only] == GEOM_PLANE else 0.0
    if tilt * r0 <= STRIP_MAX_DISTORTION:
        return only, r0, 0.0, 0.0
    # a tilted plane: r(x) = r0 + k·(x − p) (k = ±K·g, the sign of d − d_f), so its footprint |x − p| = r(x) is an
    # ellipse with a focus at p, within r0·|k|² of the circle through its rims along ±x and ±y, and the aperture
    # weighs it by |det ∂s/∂x| = r0 / r(x)³ (read to first order, exact to 6·|k|² at the rim)
    sgn = 1.0 if disparity_at_pixel(only, kinds, gparam, dtex, pad, px, py) >= df else -1.0
    kx = sgn * K * gparam[only, 1]
    ky = sgn * K * gparam[only, 2]
    k2 = kx * kx + ky * ky
    if k2 > GENERAL_STRIP_MAX_SHIFT * GENERAL_STRIP_MAX_SHIFT or r0 * k2 > STRIP_MAX_DISTORTION:
        return -1, 0.0, 0.0, 0.0
    xp = r0 / (1.0 - kx)
    xm = r0 / (1.0 + kx)
    yp = r0 / (1.0 - ky)
    ym = r0 / (1.0 + ky)
    return only, 0.25 * (xp + xm + yp + ym), 0.5 * (xp - xm), 0.5 * (yp - ym)


@njit(cache=True, inline="always")
def disk_read(sat, sat1, layer, pad, px, py, r_disk, cx, cy):
    """Stage 1c: the aperture integral at p of the one surface :func:`strip_layer` found, in closed form: the mean
    over its footprint, a disk of radius r_disk centred at p + (cx, cy), read in texel rows. Returns (c0, c1, c2,
    texel rows read)."""
    # radius of the disk convolved with the texel's box (bilinear reads), by second moment
    r_eff = math.sqrt(r_disk * r_disk + 1.0 / 3.0)
    if cx != 0.0 or cy != 0.0:
        # a general layer's slope k = c / r shifts the footprint by c and weighs it by the aperture area per texel,
        # |det ∂s/∂x| ∝ r(x)⁻³ ≈ 1 − 3·k·(x − p)/r: 1 − 3·c·(x − p)/R² about p, (1 − 3·|c|²/R²)·(1 + a·(x − p − c))
        # about the disk's centre
        wsc = -3.0 / (r_disk * r_disk)
        wsc /= 1.0 + wsc * (cx * cx + cy * cy)
        ax = wsc * cx
        ay = wsc * cy
        px += cx
        py += cy
    else:
        sat1 = sat
        ax = 0.0
        ay = 0.0
    m0, m1, m2, rows = disk_mean3(sat, sat1, layer, px, py, r_eff, pad, ax, ay)
    return m0, m1, m2, rows


@njit(cache=True, inline="always")
def enqueue_cells(
    q, i, j, rmax, cell, min_n, max_n, flat_px, refine, edge_px, seed, blades, rotation, roundness, cateye, cx, cy
):
    """Stage 2 (adaptive mode): the aperture cells of pixel (i, j) into the queue ``q``: a square grid of
    N ≈ π·min(rmax, flat_px)²/cell² cells of side δ (N in [min_n, max_n]), shifted per pixel; cells cut by the
    aperture's edge are split when rmax·δ exceeds ``edge_px``. One centred ray when nothing reaching the pixel is
    blurred.
    Returns (cells queued, aperture weight of the cells the exit pupil blocks)."""
    nq = 0
    wtot = 0.0
    if rmax <= 0.0 and cateye <= 0.0:
        # every layer that reaches the pixel is in focus: one ray
        for c in range(Q_COLUMNS):
            q[0, c] = 0.0
        q[0, Q_SIZE_X] = 1.0
        q[0, Q_SIZE_Y] = 1.0
        q[0, Q_SIZE] = 1.0
        q[0, Q_W] = 1.0
        q[0, Q_W_AP] = 1.0
        q[0, Q_LEVEL] = MAX_LEVEL  # never split
        return 1, wtot
    # jittered square grid of N ≈ π·min(r_max, flat_px)²/cell_px² cells of side δ (at least min_n): beyond flat_px
    # the cells grow with the disk, so a pixel's cost no longer grows with its blur
    rc = min(rmax, flat_px)
    n = int(math.ceil(math.pi * rc * rc / (cell * cell)))
    n = min(max(n, min_n), max_n)
    d0 = math.sqrt(math.pi / n)
    split_edge = refine > 1 and rmax * d0 > edge_px
    ou = pixel_shift(seed, i, j, 0)
    ov = pixel_shift(seed, i, j, 1)
    m = int(math.ceil(1.0 / d0)) + 1
    for a in range(-m, m):
        sx = (a + ou) * d0
        # rows of this column whose cell can reach the unit disk (the aperture lies inside it)
        nx = max(abs(sx) - 0.5 * d0, 0.0)
        if nx >= 1.0:
            continue
        lim = math.sqrt(1.0 - nx * nx) + 0.5 * d0 + 1e-9
        b_lo = max(-m, int(math.floor(-lim / d0 - ov)))
        b_hi = min(m, int(math.ceil(lim / d0 - ov)) + 1)
        for b in range(b_lo, b_hi):
            sy = (b + ov) * d0
            if split_edge:
                w_ap, w = cell_coverage(sx, sy, d0, blades, rotation, roundness, cateye, cx, cy)
                if w_ap <= 0.0:
                    continue
                # cut by the aperture's edge or the exit pupil's (a cell the pupil blocks whole is not split:
                # push_cell counts it as blocked)
                if w > 0.0 and (w_ap < 1.0 or w < w_ap):
                    nq, blocked = push_split(
                        q, nq, sx, sy, d0, 0.0, refine, blades, rotation, roundness, cateye, cx, cy
                    )
                    wtot += blocked
                    continue
            nq, blocked = push_cell(q, nq, sx, sy, d0, 1.0, 0.0, blades, rotation, roundness, cateye, cx, cy)
            wtot += blocked
    return nq, wtot


@njit(cache=True, inline="always")
def trace_cells(
    textures, state, view, pupil, mode, q, nq, wtot, grid, grid_cell, refine, prefilter, rmax, leaf, fold_leaf
):
    """Stage 3: trace the queued cells (MODE_GRID: the shared ``grid`` of point rays), last in first out. A cell
    whose rays the reads cannot stand for is replaced by its refine × refine sub-cells, again and again, while its
    footprint on the most blurred layer (rmax·side) exceeds ``leaf`` px for an occlusion edge (MIX_EDGE; a cell of
    the base grid is always split once) or ``fold_leaf`` px for a depth map that may occlude itself (MIX_FOLD).
    Returns (c0, c1, c2, weight of the rays that pass, weight of the whole aperture, rays traced).

    textures, state, view: as :func:`trace_ray`; pupil = (blades, rotation, roundness, cateye, cx, cy)."""
    blades, rotation, roundness, cateye, cx, cy = pupil
    acc0 = 0.0
    acc1 = 0.0
    acc2 = 0.0
    wsum = 0.0  # weight of the rays that pass
    rays = 0
    head = 0  # MODE_GRID: the next grid point
    row = 0
    while (mode == MODE_GRID and head < nq) or (mode != MODE_GRID and nq > 0):
        if mode == MODE_GRID:
            sx = grid[head, 0]
            sy = grid[head, 1]
            size_x = grid_cell
            size_y = grid_cell
            bx = sx
            by = sy
            bh = 0.0  # point rays: never refined
            w = 1.0
            w_ap = 1.0
            level = MAX_LEVEL
            head += 1
            if cateye > 0.0 and (sx - cx) ** 2 + (sy - cy) ** 2 > 1.0:
                wtot += 1.0
                continue
        else:
            nq -= 1
            row = nq
            sx = q[row, Q_SX]
            sy = q[row, Q_SY]
            size_x = q[row, Q_SIZE_X]
            size_y = q[row, Q_SIZE_Y]
            bx = q[row, Q_SX0]
            by = q[row, Q_SY0]
            bh = 0.5 * q[row, Q_SIZE]
            w = q[row, Q_W]
            w_ap = q[row, Q_W_AP]
            level = q[row, Q_LEVEL]
        c0, c1, c2, mixed = trace_ray(textures, state, view, sx, sy, size_x, size_y, prefilter, bx, by, bh)
        rays += 1
        if mixed > 0 and refine > 1 and level < MAX_LEVEL:
            whole = q[row, Q_SIZE]  # split the whole cell, not the part of it the aperture's edge left
            foot = rmax * whole
            if (mixed == MIX_EDGE and (level == 0.0 or foot > leaf)) or (mixed == MIX_FOLD and foot > fold_leaf):
                # the product of box means is not the mean of the product, or the cell may see two surfaces of
                # one map: trace its sub-cells instead
                nq, blocked = push_split(
                    q,
                    nq,
                    q[row, Q_SX0],
                    q[row, Q_SY0],
                    whole,
                    level,
                    refine,
                    blades,
                    rotation,
                    roundness,
                    cateye,
                    cx,
                    cy,
                )
                wtot += blocked
                continue
        acc0 += w * c0
        acc1 += w * c1
        acc2 += w * c2
        wsum += w
        wtot += w_ap
    return acc0, acc1, acc2, wsum, wtot, rays


@njit(cache=True)
def reach_factor(mode, min_n):
    """Farthest a ray's box reaches from the pixel, in units of its circle of confusion r: a cell's centre lies
    within 1 + 0.71δ, plus the half box (adaptive sampling); 1 for the fixed grid's point rays."""
    return 1.0 + 1.25 * math.sqrt(math.pi / min_n) if mode == MODE_ADAPTIVE else 1.0


@njit(parallel=True, cache=True)
def render_kernel(scene, K, df, sampling, aperture, seed, queues, out, spp, todo):
    """Render the layered scene into ``out`` (H×W×3 linear light) and the rays traced into ``spp`` (H×W; for a
    pixel read in rows, the texel rows read); ``todo`` (H×W bool, or 0×0 for every pixel): the pixels to render,
    the others keeping what ``out`` and ``spp`` hold.

    scene = (tex, sat, sat1, dtex, dwin, kinds, gparam, pad, nb, gslot):
        tex: L×Hp×Wp×4 float64 premultiplied linear colour + alpha, padded by ``pad`` texels;
        sat: L×(Hp+1)×(Wp+1)×4 float64 summed-area tables of ``tex``;
        sat1: like ``sat``, of u·texel (u: the padded column coordinate of the texel centre) for the general layers'
            weighted disk reads (1×1×1×4 when strips are off or no layer is general);
        dtex: L×Hp×Wp float64 padded disparity (read only for general layers);
        dwin: L×Hp×Wp×3 float64, per texel, a general layer's min and max disparity over the window around it that a
            pixel's disk can cover, and the distance in texels to its nearest steep texel (K·|∇D| ≥ FOLD_SLOPE)
            (render.py: general_windows; L×1×1×3 when no layer is general);
        kinds, gparam: per-layer geometry (renderer/layers.py);
        nb: G×M×Hp×Wp float32 N-buffers of the general layers' padded disparity (level k: the max over the
            2^k × 2^k square of texels starting at each texel; render.py: nbuffers), gslot: per layer, its slot in
            ``nb`` (−1: not general).
    sampling = (mode, cell_px, min_n, max_n, refine, edge_px, strips, strip_min_px, grid, prefilter, flat_px,
        fold_cell): the Quality fields; grid: G×2 aperture points shared by every pixel (MODE_GRID only).
    aperture = (blades, rotation in radians, roundness, cateye, falloff, radial: the cat-eye's shift turned 90°).
    queues: T×Q×Q_COLUMNS float64 scratch, one cell queue per thread (Q rows from queue_capacity).

    Per pixel: 1. the layers its rays can meet; 1c. one surface, flat enough over the pixel's disk, through a round
    aperture: a disk mean read in texel rows; 2. the aperture cells into a queue (cells cut by the aperture's edge
    already split); 3. trace them, a cell whose footprint straddles an occlusion edge appending its sub-cells instead
    of counting.
    """
    tex, sat, sat1, dtex, dwin, kinds, gparam, pad, nb, gslot = scene
    mode, cell_px, min_n, max_n, refine, edge_px, strips, strip_min_px, grid, prefilter, flat_px, fold_cell = sampling
    blades, rotation, roundness, cateye, falloff, radial = aperture
    H = out.shape[0]
    W = out.shape[1]
    L = tex.shape[0]
    half_diag = 0.5 * math.sqrt(W * W + H * H)
    reach = reach_factor(mode, min_n)
    every = todo.shape[0] == 0
    grid_cell = math.sqrt(math.pi / grid.shape[0])
    disk_reads = strips and mode == MODE_ADAPTIVE and blades < 3 and cateye <= 0.0 and prefilter
    # Square tiles of pixels (not rows): the rays of nearby pixels read the same patches of the tables, so a
    # tile's reads stay in cache.
    tiles_x = (W + TILE - 1) // TILE
    for t in prange(tiles_x * ((H + TILE - 1) // TILE)):
        # ---- per-tile scratch: relevance, hit disparities and order of one ray, the cell queue ----
        dl = np.empty(L)
        order = np.empty(L, dtype=np.int64)
        relevant = np.empty(L, dtype=np.bool_)
        opaque = np.empty(L, dtype=np.bool_)
        dlo = np.empty(L)
        dhi = np.empty(L)
        rl = np.empty(L)
        fold = np.zeros(L, dtype=np.bool_)
        q = queues[get_thread_id()]
        for k in range(TILE * TILE):
            i = (t // tiles_x) * TILE + k // TILE
            j = (t % tiles_x) * TILE + k % TILE
            if i >= H or j >= W or not (every or todo[i, j]):
                continue
            py = i + 0.5
            px = j + 0.5
            # ---- 1. layers whose coverage can reach this pixel, and their largest circle of confusion ----
            rmax, cell, folds = reachable_layers(
                sat, dtex, dwin, kinds, gparam, pad, K, df, px, py, reach, cell_px, relevant, opaque, dlo, dhi, rl, fold
            )
            # ---- 1c. every ray meets one surface, a fronto-parallel (or nearly) one, through a round aperture:
            # the aperture integral is the mean over a disk of radius r on that layer, read in texel rows ----
            if disk_reads:
                only, r_disk, sx_c, sy_c = strip_layer(
                    kinds, gparam, dtex, dwin, pad, K, df, px, py, relevant, rl, fold, strip_min_px
                )
                if only >= 0:
                    m0, m1, m2, nrows = disk_read(sat, sat1, only, pad, px, py, r_disk, sx_c, sy_c)
                    out[i, j, 0] = m0
                    out[i, j, 1] = m1
                    out[i, j, 2] = m2
                    spp[i, j] = nrows
                    continue
            # cat-eye: the exit pupil, a unit disk shifted toward the frame centre, clips the aperture
            vx = (px - 0.5 * W) / half_diag
            vy = (py - 0.5 * H) / half_diag
            if radial:  # shifted across the radius: the cat-eye's long axis points at the centre
                vx, vy = -vy, vx
            cx = -2.0 * cateye * vx
            cy = -2.0 * cateye * vy
            # ---- 2. the cells of the aperture ----
            if mode == MODE_GRID:
                # one fixed pattern for every pixel, point rays: read straight from ``grid`` in stage 3
                nq = grid.shape[0]
                wtot = 0.0  # weight of the whole aperture (for light falloff)
            else:
                nq, wtot = enqueue_cells(
                    q,
                    i,
                    j,
                    rmax,
                    cell,
                    min_n,
                    max_n,
                    flat_px,
                    refine,
                    0.0 if folds else edge_px,
                    seed,
                    blades,
                    rotation,
                    roundness,
                    cateye,
                    cx,
                    cy,
                )
            # ---- 3. trace the queue: an occlusion edge is refined to leaves of cell_px / refine at most, widened
            # as √(r / flat_px) beyond flat_px (an edge misplaced by δ px in a disk of radius r moves the pixel by
            # ~δ/r); a depth map's possible fold to fold_cell of the aperture ----
            leaf = cell_px / refine * math.sqrt(max(rmax, flat_px) / flat_px)
            acc0, acc1, acc2, wsum, wtot, rays = trace_cells(
                (tex, sat, dtex, kinds, gparam, pad, nb, gslot, dwin),
                (relevant, dlo, dhi, fold, dl, order),
                (K, df, px, py),
                (blades, rotation, roundness, cateye, cx, cy),
                mode,
                q,
                nq,
                wtot,
                grid,
                grid_cell,
                refine,
                prefilter,
                rmax,
                leaf,
                max(fold_cell * rmax, 0.25),
            )
            spp[i, j] = rays
            norm = wtot if falloff else wsum
            if falloff and cateye > 0.0 and blades < 3 and wsum > 0.0:
                # a round aperture clipped by the pupil: the light that passes is exactly the two unit disks'
                # overlap (the cells' coverage of it is only as fine as the cells); the rays give its colour
                norm = wsum * math.pi / disk_overlap(math.sqrt(cx * cx + cy * cy))
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
                insert_nearest_first(dl, order, l, l)
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
