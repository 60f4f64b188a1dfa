"""Scene preparation for the kernels: padded premultiplied linear textures, summed-area tables, N-buffers and
geometry arrays (:func:`prepare_layers`), and :class:`TextureCache`, which keeps a layer's tables between renders
of the same layers (a clip's frames, a refocus sweep)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import kernels
from .layers import GEOM_GENERAL, Layer, to_linear
from .options import Highlights

# ----------------------------------------------------------------------------------------------------------
# Scene preparation: padded premultiplied linear textures, summed-area tables, geometry arrays
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Scene:
    tex: np.ndarray  # L×Hp×Wp×4 float64, premultiplied linear colour + alpha
    dtex: np.ndarray  # L×Hp×Wp float64 disparity
    kinds: np.ndarray  # L int64
    gparam: np.ndarray  # L×3 float64
    drange: np.ndarray  # L×2 float64
    pad: int


def general_windows(scene: Scene, K: float, df: float) -> np.ndarray:
    """L×Hp×Wp×3: for each general (RGBD) layer, per texel, the min and max of its disparity over the square window
    that a pixel's disk (the largest circle of confusion the layer's range allows, plus the bilinear footprint)
    can cover (every ray from that pixel meets the layer at a disparity in between), and the distance in texels
    to the nearest steep texel, where K·|∇D| of the bilinear interpolant may reach kernels.FOLD_SLOPE (within
    a pixel's circle of confusion of one, a ray may meet the layer twice: it may fold). The kernel brackets the
    ray's search with the range, reads the pixel as a disk mean where the layer cannot fold within reach and
    samples folding parts finer. L×1×1×3 when no layer is general."""
    import cv2

    if not np.any(scene.kinds == GEOM_GENERAL):
        return np.zeros((len(scene.kinds), 1, 1, 3))
    out = np.zeros(scene.dtex.shape + (3,))
    for k in np.flatnonzero(scene.kinds == GEOM_GENERAL):
        lo, hi = scene.drange[k]
        radius = int(math.ceil(K * max(abs(lo - df), abs(hi - df)))) + 2
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        d = scene.dtex[k]
        out[k, ..., 0] = cv2.erode(d, kernel, borderType=cv2.BORDER_REPLICATE)
        out[k, ..., 1] = cv2.dilate(d, kernel, borderType=cv2.BORDER_REPLICATE)
        # |∂D/∂x| of the bilinear interpolant in a texel cell is at most the larger of its two row differences
        # (|∂D/∂y| likewise): per texel, the largest difference to a neighbour along each axis
        dx = np.abs(np.diff(d, axis=1))
        dy = np.abs(np.diff(d, axis=0))
        gx = np.zeros_like(d)
        gy = np.zeros_like(d)
        gx[:, :-1] = dx
        gx[:, 1:] = np.maximum(gx[:, 1:], dx)
        gy[:-1] = dy
        gy[1:] = np.maximum(gy[1:], dy)
        flat = (K * np.hypot(gx, gy) < kernels.FOLD_SLOPE).astype(np.uint8)
        if flat.all():
            out[k, ..., 2] = np.inf
        else:
            out[k, ..., 2] = cv2.distanceTransform(flat, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return out


def nbuffers(scene: Scene, r_max: float) -> tuple[np.ndarray, np.ndarray]:
    """N-buffers of the general layers' padded disparity (Décoret 2005): G×M×Hp×Wp float32, level k holding the
    max over the 2^k × 2^k square of texels starting at each texel (clamped at the far border), with M levels up
    to the largest blur's diameter; and per layer its slot (−1: not general). The kernel bounds a depth map over
    any box in at most four reads of one level (kernels.nbuffer_max)."""
    general = np.flatnonzero(scene.kinds == GEOM_GENERAL)
    gslot = np.full(len(scene.kinds), -1, dtype=np.int64)
    if len(general) == 0:
        return np.zeros((1, 1, 1, 1), np.float32), gslot
    levels = max(int(math.ceil(math.log2(2.0 * r_max + 4.0))), 1) + 1
    hp, wp = scene.dtex.shape[1:]
    nb = np.empty((len(general), levels, hp, wp), np.float32)
    for g, k in enumerate(general):
        gslot[k] = g
        cur = scene.dtex[k].astype(np.float32)
        nb[g, 0] = cur
        for lev in range(1, levels):
            s = 1 << (lev - 1)
            nxt = cur.copy()
            if s < hp:
                np.maximum(nxt[:-s], cur[s:], out=nxt[:-s])
            if s < wp:
                np.maximum(nxt[:, :-s], nxt[:, s:], out=nxt[:, :-s])  # numpy buffers the overlapping operands
            nb[g, lev] = cur = nxt
    return nb, gslot


def fold_fraction(windows: np.ndarray, scene: Scene, K: float, df: float, h: int, w: int) -> float:
    """Share of the pixels where some general layer may fold within their circle of confusion (a steep texel in
    reach: the kernel's test, ignoring whether nearer layers hide the layer there). Those pixels are traced with
    finer cells and a marched intersection (no closed form, no root bracketing): they set a depth map's cost."""
    fold = np.zeros((h, w), dtype=bool)
    p = scene.pad
    for k in np.flatnonzero(scene.kinds == GEOM_GENERAL):
        win = windows[k, p : p + h, p : p + w]
        r = K * np.maximum(np.abs(win[..., 0] - df), np.abs(win[..., 1] - df))
        r[r < K * kernels.FOCUS_EPS] = 0.0
        fold |= win[..., 2] <= r + kernels.FOLD_MARGIN_PX
    return float(fold.mean())


EVERY_PIXEL = np.zeros((0, 0), dtype=np.bool_)  # render_kernel's ``todo`` that renders every pixel


class TextureCache:
    """Work kept between renders of the same :class:`Layer` objects: a layer's premultiplied linear texture (its
    colour decoded, boosted by ``highlights``, times alpha), its summed-area table at each padding, and the latest
    image rendered with each set of settings.

    Pass one cache to :func:`pinhole_view` and :func:`render_bokeh` calls on layers that repeat, as a clip's frames
    do where a layer does not move (a locked camera's background):

    - a layer given again, the same object with the same ``gamma`` and ``highlights``, is not decoded again, and its
      table is not summed again at a padding it already has;
    - a render with the same K, focus, quality, aperture, seed, gamma, highlights and padding as the latest one, on
      the same number of layers of which some are the same objects, traces only the pixels within reach of a
      changed layer (its coverage before or now, dilated by the rays' reach, r_max·(1 + 1.25·√(π/min_samples)) +
      2.5 px); every other pixel sees only unchanged layers and takes the latest render's value: a locked shot
      with a fixed focus renders only around its moving subjects.

    Results are bit-identical to renders without the cache (tested). The cache holds only the layers of its latest
    call (a layer that call does not list is dropped) and the latest render of at most 4 settings, so its memory is
    about one frame's. ``hits`` and ``misses`` count layer textures reused and prepared, ``tables_reused`` the
    summed-area tables and ``pixels_reused`` the pixels taken from an earlier render.
    """

    def __init__(self):
        self._entries: dict = {}
        self._renders: dict = {}  # settings -> the latest render_bokeh with them: its layers, out and spp
        self.hits = self.misses = self.tables_reused = self.pixels_reused = 0

    def _keep_only(self, layers: list[Layer]) -> None:
        ids = {id(layer) for layer in layers}
        self._entries = {k: v for k, v in self._entries.items() if k[0] in ids}

    def _entry(self, layer: Layer, gamma, highlights, build) -> dict:
        key = (id(layer), gamma, highlights)
        entry = self._entries.get(key)
        if entry is None or entry["layer"] is not layer:
            entry = {"layer": layer, "core": build(), "tables": {}}
            self._entries[key] = entry
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def _reuse(self, layers: list[Layer], settings: tuple, out: np.ndarray, spp: np.ndarray, radius: int) -> np.ndarray:
        """The pixels render_bokeh must trace (0×0: all). Where the latest render with the same ``settings`` had
        the same number of layers and some are the same objects here, a pixel farther than ``radius`` px (its rays'
        reach) from every pixel that a changed layer covers, before or now, sees only unchanged layers: its value
        and ray count are copied from that render into ``out`` and ``spp``."""
        prev = self._renders.get(settings)
        if prev is None or len(prev["layers"]) != len(layers):
            return EVERY_PIXEL
        changed = [(a, b) for a, b in zip(prev["layers"], layers) if a is not b]
        if len(changed) == len(layers):
            return EVERY_PIXEL
        import cv2

        support = np.zeros(layers[0].shape, dtype=np.uint8)
        for a, b in changed:
            support |= (a.alpha > 0) | (b.alpha > 0)
        todo = cv2.dilate(support, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
        keep = ~todo
        out[keep] = prev["out"][keep]
        spp[keep] = prev["spp"][keep]
        self.pixels_reused += int(keep.sum())
        return todo

    def _remember(self, settings: tuple, layers: list[Layer], out: np.ndarray, spp: np.ndarray) -> None:
        self._renders.pop(settings, None)
        self._renders[settings] = {"layers": list(layers), "out": out, "spp": spp}
        while len(self._renders) > 4:  # the renders of one frame (a clip's target and input cameras)
            self._renders.pop(next(iter(self._renders)))


def linear_core(layer: Layer, gamma, highlights: Highlights | None, core: np.ndarray | None = None) -> np.ndarray:
    """H×W×4 float64: the layer's premultiplied linear colour and its alpha (written into ``core`` if given)."""
    h, w = layer.shape
    core = np.empty((h, w, 4)) if core is None else core
    lin = to_linear(layer.rgb, gamma)
    if highlights is not None:
        lin = lin * highlights.boost(layer.rgb)[..., None]
    np.multiply(lin, layer.alpha[..., None], out=core[..., :3])
    core[..., 3] = layer.alpha
    return core


def prepare_layers(
    layers: list[Layer], gamma, pad: int, highlights: Highlights | None, cache: TextureCache | None = None
) -> tuple[Scene, list]:
    """The padded scene, and per layer its cache entry (None without a cache)."""
    L = len(layers)
    h, w = layers[0].shape
    tex = np.empty((L, h + 2 * pad, w + 2 * pad, 4))
    dtex = np.empty((L, h + 2 * pad, w + 2 * pad))
    entries = []
    if cache is not None:
        cache._keep_only(layers)
    for k, layer in enumerate(layers):
        if cache is None:
            linear_core(layer, gamma, highlights, tex[k, pad : pad + h, pad : pad + w])
            entries.append(None)
        else:
            # a new layer's texture is decoded straight into this scene; its entry keeps a view of it
            core = tex[k, pad : pad + h, pad : pad + w]
            entry = cache._entry(
                layer, gamma, highlights, lambda layer=layer, core=core: linear_core(layer, gamma, highlights, core)
            )
            if entry["core"] is not core:
                core[...] = entry["core"]
            entries.append(entry)
        dtex[k, pad : pad + h, pad : pad + w] = layer.disparity
        _pad_edge(tex[k], pad)
        _pad_edge(dtex[k], pad)
    scene = Scene(
        tex=tex,
        dtex=dtex,
        kinds=np.array([layer.geometry[0] for layer in layers], dtype=np.int64),
        gparam=np.array([layer.geometry[1] for layer in layers], dtype=np.float64),
        drange=np.array([layer.geometry[2] for layer in layers], dtype=np.float64),
        pad=pad,
    )
    return scene, entries


def scene_tables(scene: Scene, entries: list, cache: TextureCache | None) -> np.ndarray:
    """The scene's summed-area tables, a layer's taken from its cache entry when it has one at this padding."""
    if cache is None:
        return summed_area_tables(scene.tex)
    L, hp, wp, c = scene.tex.shape
    sat = np.empty((L, hp + 1, wp + 1, c))
    for k, entry in enumerate(entries):
        table = entry["tables"].get(scene.pad)
        if table is None:
            summed_area_tables(scene.tex[k : k + 1], sat[k : k + 1])
            entry["tables"] = {scene.pad: sat[k]}  # one padding kept per layer (a view of this scene's tables)
        else:
            cache.tables_reused += 1
            sat[k] = table
    return sat


def _pad_edge(a: np.ndarray, pad: int) -> None:
    """Fill the ``pad``-wide border of ``a`` (rows × columns × …) in place by replicating its edge, as
    ``np.pad(mode="edge")`` does, without the copies."""
    if pad == 0:
        return
    a[pad:-pad, :pad] = a[pad:-pad, pad : pad + 1]
    a[pad:-pad, -pad:] = a[pad:-pad, -pad - 1 : -pad]
    a[:pad] = a[pad]
    a[-pad:] = a[-pad - 1]


def summed_area_tables(tex: np.ndarray, sat: np.ndarray | None = None) -> np.ndarray:
    """L×Hp×Wp×C -> L×(Hp+1)×(Wp+1)×C, S[y, x] = sum of tex[:y, :x] (written into ``sat`` if given)."""
    L, h, w, c = tex.shape
    if sat is None:
        sat = np.zeros((L, h + 1, w + 1, c), dtype=np.float64)
    else:
        sat[:, 0] = 0.0
        sat[:, :, 0] = 0.0
    np.cumsum(tex, axis=1, out=sat[:, 1:, 1:])
    np.cumsum(sat[:, 1:, 1:], axis=2, out=sat[:, 1:, 1:])
    return sat
