"""Public rendering functions: the pinhole composite, the thin-lens bokeh render and their companion maps.

Colour: layers carry sRGB-encoded straight colour; every function composites premultiplied colour in linear
light (decoded with ``gamma``: a power law, 1.0 = already linear, or ``"srgb"`` for the exact sRGB curve) and
returns encoded values again, H×W×3 float32 in [0, 1], composited over black where no layer covers a pixel.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numba
import numpy as np

from common import config

from . import kernels
from .layers import GEOM_GENERAL, GEOM_NAMES, GEOM_PLANE, Layer, check_gamma, check_layers, from_linear, to_linear

# ----------------------------------------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Aperture:
    """Shape of the lens aperture, in units of the circle of confusion r = K·|d − d_f|.

    blades: 0 for a circle of radius r; N ≥ 3 for a regular N-gon inscribed in that circle (vertices at r).
    rotation_deg: rotation of the polygon, degrees.
    roundness: 0 = straight blades … 1 = circle (boundary radius blended linearly).
    cateye: mechanical vignetting in [0, 1]: the exit pupil, a disk of radius r shifted toward the frame centre
        by 2·cateye·r·v (v = the pixel's offset from the centre over the half diagonal), clips the aperture into
        a cat's eye toward the corners. Light that it blocks is lost (natural light falloff toward the corners),
        unless ``falloff=False``.
    """

    blades: int = 0
    rotation_deg: float = 0.0
    roundness: float = 0.0
    cateye: float = 0.0
    falloff: bool = True

    def __post_init__(self):
        if self.blades != 0 and self.blades < 3:
            raise ValueError(f"blades: 0 (circle) or at least 3, got {self.blades}")
        if not 0.0 <= self.roundness <= 1.0:
            raise ValueError(f"roundness: must lie in [0, 1], got {self.roundness}")
        if not 0.0 <= self.cateye <= 1.0:
            raise ValueError(f"cateye: must lie in [0, 1], got {self.cateye}")


APERTURES = {
    "circle": Aperture(),
    "hexagon": Aperture(blades=6),
    "polygon": Aperture(blades=6),
    "cateye": Aperture(cateye=0.5),
}


def _aperture(aperture) -> Aperture:
    if isinstance(aperture, Aperture):
        return aperture
    if isinstance(aperture, str) and aperture in APERTURES:
        return APERTURES[aperture]
    if isinstance(aperture, dict):
        return config.from_dict(Aperture, aperture, "aperture")
    raise ValueError(f"aperture: expected one of {sorted(APERTURES)}, an Aperture or a dict, got {aperture!r}")


MAX_RADIUS_OVER_SIZE = 4  # render_bokeh refuses a largest blur radius above this many times the image size
MAX_COC_PX = 512  # the largest blur radius (px) render_bokeh supports, whatever the image size: the layers are
# padded by it, so a 2048² render at this limit holds ~2 GB of padded textures and tables


@dataclass(frozen=True)
class Quality:
    """Sampling knobs of :func:`render_bokeh`. The defaults are production quality: ≥ 60 dB against a converged
    reference on planar three-layer scenes from K = 32 to 256 and ≥ 62 dB on depth maps that occlude themselves
    (tests/test_renderer/test_sampler.py, test_depth_maps.py; benchmarks/bench_scaling.py), and 64–67 dB against
    the path-traced references in tests/data/oracle.

    cell_px: side, in pixels, of the patch of the most blurred layer that one aperture cell stands for; a pixel
        whose largest circle of confusion has radius r gets N = ⌈π·min(r, flat_px)² / cell_px²⌉ cells, each read
        box-filtered (a box read is the exact mean of a fronto-parallel layer over the cell's footprint, at any
        size). Smaller is slower and closer to the exact aperture integral. Pixels that see a general (RGBD) layer
        use cells 1.6× smaller: its footprint departs from the square a cell reads.
    min_samples / max_samples: bounds on N for blurred pixels (a pixel where every layer that reaches it is in
        focus takes 1 ray).
    flat_px: the blur radius from which cells grow with the disk: beyond it N stays that of a disk of radius
        flat_px, and the leaves of occlusion edges widen as √(r / flat_px) (an edge misplaced by δ px in a disk of
        radius r moves the pixel by ~δ/r), so a pixel's rays stop growing with its blur.
    refine: a cell whose rays its reads cannot stand for is traced as refine × refine sub-cells, again while the
        cause persists (1 = never): cut by the aperture's edge (where its footprint exceeds edge_px); straddling
        an occlusion edge between layers (to leaves of cell_px / refine px, widened beyond flat_px); on a steep
        tilted plane (its blur varies across the footprint by over 0.5 px and 5 % of itself); on a curved smooth
        depth map (its blur varies by over 0.5 px); or, on a depth map that may occlude itself, seeing two of its
        surfaces (to fold_cell).
    fold_cell: the side, as a fraction of the aperture's radius, down to which a cell is refined where a depth map
        may occlude itself (footprints of fold_cell·r px, at least 0.25 px): a part of the map in front of where the
        cell's centre ray met it may meet some of the cell's rays (found conservatively from N-buffers of the map,
        kernels.nearer_surface), or its blurred read spans a step of the map. Such leaves are binary (one surface
        each); their error, ~(fold_cell)^1.5 of the contrast per pixel, does not depend on the blur.
    edge_px: cells cut by the aperture's edge are split only at pixels where a cell's footprint on the most
        blurred layer exceeds this many pixels (0 = always, ``inf`` = never). An unsplit edge cell still reads
        a box with the centroid and second moments of its part inside the aperture.
    strips: a pixel whose every ray meets one surface (one layer within reach, constant disparity or a plane
        whose footprint departs from a disk by under 0.25 px, a round aperture without cat-eye, r ≥ strip_min_px)
        takes the aperture integral in closed form: the mean over the disk of radius √(r² + 1/3) (the disk
        convolved with the texel's box, by its second moment), read in texel rows from the summed-area table.
        A general (RGBD) layer qualifies where its disparity keeps the disk that round over the pixel's window, or
        where it cannot fold and its footprint's rim lies within 0.25 px of a circle: that circle, shifted by the
        surface's slope, is read with the matching first-order weight.
        Below ~2 px the disk's exact shape matters more than that approximation gets right.
    prefilter: each cell reads the box-filtered layer over its footprint (True) or a bilinear point (False).
    pattern: "adaptive" (the above) or "grid" (one fixed grid_n × grid_n grid of point rays inside the disk,
        shared by all pixels: the fixed-pattern approach of MPIB's generator, kept for comparison).
    grid_n: grid size for pattern="grid".
    """

    cell_px: float = 6.0
    min_samples: int = 8
    max_samples: int = 1024
    refine: int = 2
    edge_px: float = 0.0
    strips: bool = True
    strip_min_px: float = 2.0
    prefilter: bool = True
    pattern: str = "adaptive"
    grid_n: int = 51
    flat_px: float = 16.0
    fold_cell: float = 0.05

    def __post_init__(self):
        if not self.cell_px > 0:
            raise ValueError(f"cell_px: must be > 0, got {self.cell_px}")
        if not 1 <= self.min_samples <= self.max_samples:
            raise ValueError(f"need 1 <= min_samples <= max_samples, got {self.min_samples}, {self.max_samples}")
        if self.pattern not in ("adaptive", "grid"):
            raise ValueError(f"pattern: 'adaptive' or 'grid', got {self.pattern!r}")
        if self.refine < 1:
            raise ValueError(f"refine: must be >= 1, got {self.refine}")
        if self.grid_n < 1:
            raise ValueError(f"grid_n: must be >= 1, got {self.grid_n}")
        if not self.strip_min_px >= 0:
            raise ValueError(f"strip_min_px: must be >= 0, got {self.strip_min_px}")
        if not self.flat_px > 0:
            raise ValueError(f"flat_px: must be > 0, got {self.flat_px}")
        if not 0 < self.fold_cell <= 1:
            raise ValueError(f"fold_cell: must lie in (0, 1], got {self.fold_cell}")
        if not self.edge_px >= 0:
            raise ValueError(f"edge_px: must be >= 0 (inf = never split), got {self.edge_px}")

    @classmethod
    def from_dict(cls, options: dict, where: str = "quality") -> "Quality":
        """A Quality from a mapping of its fields, through the project's checked config loader: an unknown key or
        a value of the wrong type raises ValueError naming ``where``, the key and the known fields."""
        return config.from_dict(cls, options, where)


@dataclass(frozen=True)
class Highlights:
    """Inverse tone mapping of clipped highlights, so that bokeh balls of light sources stay bright.

    A pixel whose brightest encoded channel m exceeds ``threshold`` is taken to be clipped; its linear colour is
    multiplied by 1 + (gain − 1)·smoothstep((m − threshold) / (1 − threshold)), i.e. up to ``gain``× at m = 1.
    After the aperture integral the linear image is clipped at 1, as a sensor saturates.
    """

    threshold: float = 0.9
    gain: float = 4.0

    def __post_init__(self):
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold: must lie in [0, 1), got {self.threshold}")
        if not self.gain >= 1.0:
            raise ValueError(f"gain: must be >= 1, got {self.gain}")

    def boost(self, encoded: np.ndarray) -> np.ndarray:
        """H×W gain factors from H×W×3 encoded colour in [0, 1]."""
        t = np.clip((encoded.max(axis=-1).astype(np.float64) - self.threshold) / (1.0 - self.threshold), 0.0, 1.0)
        return 1.0 + (self.gain - 1.0) * t * t * (3.0 - 2.0 * t)


# ----------------------------------------------------------------------------------------------------------
# Scene preparation: padded premultiplied linear textures, summed-area tables, geometry arrays
# ----------------------------------------------------------------------------------------------------------

@dataclass
class _Scene:
    tex: np.ndarray  # L×Hp×Wp×4 float64, premultiplied linear colour + alpha
    dtex: np.ndarray  # L×Hp×Wp float64 disparity
    kinds: np.ndarray  # L int64
    gparam: np.ndarray  # L×3 float64
    drange: np.ndarray  # L×2 float64
    pad: int


def general_windows(scene: _Scene, K: float, df: float) -> np.ndarray:
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


def nbuffers(scene: _Scene, r_max: float) -> tuple[np.ndarray, np.ndarray]:
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


def _fold_fraction(windows: np.ndarray, scene: _Scene, K: float, df: float, h: int, w: int) -> float:
    """Share of the pixels where some general layer may fold within their circle of confusion (a steep texel in
    reach: the kernel's test, ignoring whether nearer layers hide the layer there). Those pixels are traced with
    finer cells and a marched intersection (no closed form, no root bracketing): they set a depth map's cost."""
    fold = np.zeros((h, w), dtype=bool)
    p = scene.pad
    for k in np.flatnonzero(scene.kinds == GEOM_GENERAL):
        win = windows[k, p:p + h, p:p + w]
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

    def _reuse(self, layers: list[Layer], settings: tuple, out: np.ndarray, spp: np.ndarray,
               radius: int) -> np.ndarray:
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


def _linear_core(layer: Layer, gamma, highlights: Highlights | None, core: np.ndarray | None = None) -> np.ndarray:
    """H×W×4 float64: the layer's premultiplied linear colour and its alpha (written into ``core`` if given)."""
    h, w = layer.shape
    core = np.empty((h, w, 4)) if core is None else core
    lin = to_linear(layer.rgb, gamma)
    if highlights is not None:
        lin = lin * highlights.boost(layer.rgb)[..., None]
    np.multiply(lin, layer.alpha[..., None], out=core[..., :3])
    core[..., 3] = layer.alpha
    return core


def prepare_layers(layers: list[Layer], gamma, pad: int, highlights: Highlights | None,
             cache: TextureCache | None = None) -> tuple[_Scene, list]:
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
            _linear_core(layer, gamma, highlights, tex[k, pad:pad + h, pad:pad + w])
            entries.append(None)
        else:
            # a new layer's texture is decoded straight into this scene; its entry keeps a view of it
            core = tex[k, pad:pad + h, pad:pad + w]
            entry = cache._entry(layer, gamma, highlights,
                                 lambda layer=layer, core=core: _linear_core(layer, gamma, highlights, core))
            if entry["core"] is not core:
                core[...] = entry["core"]
            entries.append(entry)
        dtex[k, pad:pad + h, pad:pad + w] = layer.disparity
        _pad_edge(tex[k], pad)
        _pad_edge(dtex[k], pad)
    scene = _Scene(
        tex=tex,
        dtex=dtex,
        kinds=np.array([layer.geometry[0] for layer in layers], dtype=np.int64),
        gparam=np.array([layer.geometry[1] for layer in layers], dtype=np.float64),
        drange=np.array([layer.geometry[2] for layer in layers], dtype=np.float64),
        pad=pad,
    )
    return scene, entries


def _scene_tables(scene: _Scene, entries: list, cache: TextureCache | None) -> np.ndarray:
    """The scene's summed-area tables, a layer's taken from its cache entry when it has one at this padding."""
    if cache is None:
        return summed_area_tables(scene.tex)
    L, hp, wp, c = scene.tex.shape
    sat = np.empty((L, hp + 1, wp + 1, c))
    for k, entry in enumerate(entries):
        table = entry["tables"].get(scene.pad)
        if table is None:
            summed_area_tables(scene.tex[k:k + 1], sat[k:k + 1])
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
    a[pad:-pad, :pad] = a[pad:-pad, pad:pad + 1]
    a[pad:-pad, -pad:] = a[pad:-pad, -pad - 1:-pad]
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


def _check_scalar(name: str, value, lo: float, hi: float | None = None) -> float:
    v = float(value)
    if not math.isfinite(v) or v < lo or (hi is not None and v > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name}: must be finite and {rng}, got {value!r}")
    return v


def _pinhole(layers: list[Layer], gamma, cache: TextureCache | None = None):
    scene, _ = prepare_layers(layers, gamma, 1, None, cache)
    h, w = layers[0].shape
    rgb = np.empty((h, w, 3))
    disp = np.empty((h, w))
    cover = np.empty((h, w))
    kernels.pinhole_kernel(scene.tex, scene.dtex, scene.kinds, scene.gparam, scene.pad, rgb, disp, cover)
    return rgb, disp, cover


# ----------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------

def composite(layers, *, gamma=2.2) -> np.ndarray:
    """Pinhole image (K = 0) of the layers.

    Args:
        layers: non-empty sequence of :class:`Layer` of one size H×W, in any order; at each pixel they are
            sorted nearest first by their disparity there (ties: list order) and composited with "over".
        gamma: transfer of the layers' encoding (see module docstring); compositing happens in linear light.

    Returns:
        H×W×3 float32 in [0, 1], encoded like the input, composited over black.
    """
    return pinhole_view(layers, gamma=gamma)[0]


def visible_disparity(layers) -> np.ndarray:
    """Disparity of the visible surface of the pinhole view, H×W float32 in [0, 1].

    Each layer's disparity is composited with the same front-to-back "over" weights as the colour in
    :func:`composite` and normalised by the total coverage; 0 where no layer covers the pixel.
    """
    return pinhole_view(layers, gamma=1.0)[1]  # gamma 1: no colour transfer to compute


def pinhole_view(layers, *, gamma=2.2, textures: TextureCache | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`composite` and :func:`visible_disparity` of the layers from one pass (the disparity does not depend
    on the colour's encoding): (H×W×3 float32 image, H×W float32 disparity), each equal to its function's.
    ``textures``: a :class:`TextureCache` shared with other calls on the same layers (the same results)."""
    layers = check_layers(layers)
    gamma = check_gamma(gamma)
    rgb, disp, _ = _pinhole(layers, gamma, textures)
    return from_linear(rgb, gamma).astype(np.float32), np.clip(disp, 0.0, 1.0).astype(np.float32)


def defocus_map(layers, K: float, focus_disparity: float) -> np.ndarray:
    """Signed defocus map K·(d − d_f) in pixels of the visible surface (d from :func:`visible_disparity`),
    H×W float32: its absolute value is the circle-of-confusion radius; positive = nearer than focus."""
    K = _check_scalar("K", K, 0.0)
    df = _check_scalar("focus_disparity", focus_disparity, 0.0, 1.0)
    return (K * (visible_disparity(layers).astype(np.float64) - df)).astype(np.float32)


def render_bokeh(layers, K: float, focus_disparity: float, *, gamma=2.2, aperture="circle", seed: int = 0,
                 highlights: Highlights | dict | None = None, return_info: bool = False,
                 textures: TextureCache | None = None, **quality):
    """Render the thin-lens image of a layered scene by tracing rays through the aperture.

    Args:
        layers: non-empty sequence of :class:`Layer` of one size H×W (sRGB-encoded straight colour, alpha,
            disparity in [0, 1] with larger = nearer), in any order.
        K: blur strength ≥ 0; a point at disparity d images as a disk of radius K·|d − d_f| pixels.
        focus_disparity: d_f in [0, 1].
        gamma: transfer function of the encoding: a power (2.2 default; 1.0 = linear input) or ``"srgb"``.
        aperture: "circle", "hexagon"/"polygon", "cateye", an :class:`Aperture`, or a dict of its fields.
        seed: seeds the per-pixel rotation of the sampling pattern (results are deterministic for a seed,
            independent of the number of threads).
        highlights: None (off) or a :class:`Highlights` (or dict) for inverse tone mapping of clipped highlights.
        return_info: also return a dict reporting the parameters used and the sampling statistics.
        textures: a :class:`TextureCache` kept across calls on layers that repeat (a clip's static layers, or the
            :func:`pinhole_view` of the same layers): their textures and tables are not prepared again; the image
            is bit-identical to a render without it.
        **quality: fields of :class:`Quality` (cell_px, min_samples, max_samples, refine, edge_px, strips,
            prefilter, pattern, grid_n).

    Returns:
        H×W×3 float32 in [0, 1], encoded like the input; with ``return_info`` a tuple (image, info).
        K = 0 gives exactly :func:`composite`.
    """
    t0 = time.perf_counter()
    layers = check_layers(layers)
    K = _check_scalar("K", K, 0.0)
    df = _check_scalar("focus_disparity", focus_disparity, 0.0, 1.0)
    gamma = check_gamma(gamma)
    ap = _aperture(aperture)
    q = Quality.from_dict(quality, "render_bokeh")
    if isinstance(highlights, dict):
        highlights = config.from_dict(Highlights, highlights, "highlights")
    if highlights is not None and not isinstance(highlights, Highlights):
        raise TypeError(f"highlights: expected None, a Highlights or a dict, got {type(highlights).__name__}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")

    drange = np.array([layer.geometry[2] for layer in layers])
    r_max = K * float(np.max(np.abs(drange - df)))
    h, w = layers[0].shape
    if r_max > MAX_RADIUS_OVER_SIZE * max(h, w) and r_max > 64:
        # the layers are padded by the largest blur radius: memory grows with its square
        raise ValueError(f"K: {K:g} gives a blur radius of up to {r_max:.0f} px on a {w}×{h} image (over "
                         f"{MAX_RADIUS_OVER_SIZE}× its size: the image would be a uniform smear, and the buffers, "
                         f"padded by that radius, would take gigabytes); use a smaller K")
    if r_max > MAX_COC_PX:
        raise ValueError(f"K: {K:g} gives a blur radius of up to {r_max:.0f} px, above the renderer's limit of "
                         f"{MAX_COC_PX} px (K·max|d − d_f| ≤ {MAX_COC_PX}); use a smaller K")
    # rays reach |x − p| ≤ r(x); on a tilted plane r grows by k = K·|∇D|₁ per px beyond the frame, so its rays reach
    # r/(1 − k): the layers are padded that far (clamp to edge), so that no read falls off the padded texture
    r_reach = r_max
    for layer in layers:
        kind, (_, gx, gy), (lo, hi) = layer.geometry
        if kind == GEOM_PLANE:
            k = K * (abs(gx) + abs(gy))
            r_reach = max(r_reach, K * max(abs(lo - df), abs(hi - df)) / max(1.0 - k, 0.25))
    pad = int(math.ceil(r_reach)) + 2
    scene, entries = prepare_layers(layers, gamma, pad, highlights, textures)
    sat = _scene_tables(scene, entries, textures)

    if q.pattern == "grid":
        mode = kernels.MODE_GRID
        g = (np.arange(q.grid_n) + 0.5) / q.grid_n * 2.0 - 1.0
        gx, gy = np.meshgrid(g, g)
        inside = gx**2 + gy**2 <= 1.0
        grid = np.ascontiguousarray(np.stack([gx[inside], gy[inside]], axis=1))
    else:
        mode = kernels.MODE_ADAPTIVE
        grid = np.zeros((1, 2))

    out = np.empty((h, w, 3))
    spp = np.empty((h, w), dtype=np.int32)
    queues = np.empty((numba.get_num_threads(), kernels.queue_capacity(q.max_samples, q.refine), kernels.Q_COLUMNS))
    general = scene.kinds == GEOM_GENERAL
    # a tilted plane is read as a shifted disk only where it departs from its plain disk
    tilt = K * (np.abs(scene.gparam[:, 1]) + np.abs(scene.gparam[:, 2])) * K * np.max(np.abs(scene.drange - df), axis=1)
    sloped = general | ((scene.kinds == GEOM_PLANE) & (tilt > kernels.STRIP_MAX_DISTORTION))
    if np.any(sloped) and q.strips:
        # the general and tilted layers' summed-area tables of u·texel (u: the padded column coordinate of the texel
        # centre), read only by their weighted (shifted) disk reads
        sat1 = np.zeros_like(sat)
        cols = np.arange(scene.tex.shape[2], dtype=np.float64)[:, None] + 0.5
        sat1[sloped] = summed_area_tables(scene.tex[sloped] * cols)
    else:
        sat1 = np.zeros((1, 1, 1, 4))
    windows = general_windows(scene, K, df)
    settings = (K, df, gamma, ap, q, int(seed), highlights, pad, (h, w))
    todo = EVERY_PIXEL if textures is None else \
        textures._reuse(layers, settings, out, spp, int(math.ceil(r_max * kernels.reach_factor(mode, q.min_samples)
                                                                   + 1.5)) + 1)
    nb, gslot = nbuffers(scene, r_max)
    kernels.render_kernel(
        (scene.tex, sat, sat1, scene.dtex, windows, scene.kinds, scene.gparam, scene.pad, nb, gslot),
        K, df,
        (mode, float(q.cell_px), int(q.min_samples), int(q.max_samples), int(q.refine), float(q.edge_px),
         bool(q.strips), float(q.strip_min_px), grid, bool(q.prefilter), float(q.flat_px), float(q.fold_cell)),
        (int(ap.blades), math.radians(ap.rotation_deg), float(ap.roundness), float(ap.cateye), bool(ap.falloff)),
        int(seed), queues, out, spp, todo,
    )
    if textures is not None:
        textures._remember(settings, layers, out, spp)
    clipped = float(np.mean(out.max(axis=-1) > 1.0)) if highlights is not None else 0.0
    image = from_linear(np.minimum(out, 1.0), gamma).astype(np.float32)
    if not return_info:
        return image
    rays = int(spp.sum(dtype=np.int64))
    seconds = time.perf_counter() - t0
    info = {
        "K": K,
        "focus_disparity": df,
        "gamma": gamma,
        "seed": int(seed),
        "aperture": asdict(ap),
        "highlights": None if highlights is None else {**asdict(highlights), "clipped_fraction": clipped},
        "quality": asdict(q),
        "layers": [{"name": layer.name, "geometry": GEOM_NAMES[layer.geometry[0]],
                    "disparity_range": list(layer.geometry[2])} for layer in layers],
        "max_coc_radius_px": r_max,
        "mean_spp": rays / spp.size,
        "max_spp": int(spp.max()),
        "rays": rays,
        "seconds": seconds,
        "rays_per_second": rays / seconds if seconds > 0 else float("nan"),
        "general_layers": int(np.sum(general)),
        "fold_fraction": _fold_fraction(windows, scene, K, df, h, w),
    }
    return image, info
