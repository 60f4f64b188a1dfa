"""Public rendering functions: the pinhole composite, the thin-lens bokeh render and their companion maps.

Colour: layers carry sRGB-encoded straight colour; every function composites premultiplied colour in linear
light (decoded with ``gamma``: a power law, 1.0 = already linear, or ``"srgb"`` for the exact sRGB curve) and
returns encoded values again, H×W×3 float32 in [0, 1], composited over black where no layer covers a pixel.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import numba
import numpy as np

from common import config

from . import kernels
from .layers import GEOM_GENERAL, GEOM_NAMES, GEOM_PLANE, Layer, check_gamma, check_layers, from_linear
from .options import (  # noqa: F401 - the public options, importable from here as before
    APERTURES,
    MAX_COC_PX,
    MAX_RADIUS_OVER_SIZE,
    Aperture,
    Character,
    Highlights,
    Quality,
    as_aperture,
    as_character,
    max_blur_radius,
)
from .textures import (  # noqa: F401
    EVERY_PIXEL,
    Scene,
    TextureCache,
    fold_fraction,
    general_windows,
    nbuffers,
    prepare_layers,
    scene_tables,
    summed_area_tables,
)


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


def render_bokeh(
    layers,
    K: float,
    focus_disparity: float,
    *,
    gamma=2.2,
    aperture="circle",
    seed: int = 0,
    highlights: Highlights | dict | None = None,
    return_info: bool = False,
    textures: TextureCache | None = None,
    character: Character | dict | None = None,
    **quality,
):
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
        character: lens character (:class:`Character`: per-channel focus shifts); None or an ideal one: the thin
            lens, bit-identically.
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
    ch = as_character(character)
    if ch is not None and not ch.ideal:  # each channel its own thin lens, focused at d_f + loca[c]
        channels, infos = [], []
        for c, shift in enumerate(ch.loca):
            img, info = render_bokeh(
                layers,
                K,
                min(max(df + shift, 0.0), 1.0),
                gamma=gamma,
                aperture=aperture,
                seed=seed,
                highlights=highlights,
                return_info=True,
                textures=textures,
                **quality,
            )
            channels.append(img[..., c])
            infos.append(info)
        image = np.stack(channels, axis=-1)
        if not return_info:
            return image
        info = {**infos[1], "focus_disparity": df, "character": asdict(ch)}
        info["mean_spp"] = float(np.mean([i["mean_spp"] for i in infos]))
        info["rays"] = sum(i["rays"] for i in infos)
        info["seconds"] = time.perf_counter() - t0
        return image, info
    gamma = check_gamma(gamma)
    ap = as_aperture(aperture)
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
        raise ValueError(
            f"K: {K:g} gives a blur radius of up to {r_max:.0f} px on a {w}×{h} image (over "
            f"{MAX_RADIUS_OVER_SIZE}× its size: the image would be a uniform smear, and the buffers, "
            f"padded by that radius, would take gigabytes); use a smaller K"
        )
    if r_max > MAX_COC_PX:
        raise ValueError(
            f"K: {K:g} gives a blur radius of up to {r_max:.0f} px, above the renderer's limit of "
            f"{MAX_COC_PX} px (K·max|d − d_f| ≤ {MAX_COC_PX}); use a smaller K"
        )
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
    sat = scene_tables(scene, entries, textures)

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
    todo = (
        EVERY_PIXEL
        if textures is None
        else textures._reuse(
            layers, settings, out, spp, int(math.ceil(r_max * kernels.reach_factor(mode, q.min_samples) + 1.5)) + 1
        )
    )
    nb, gslot = nbuffers(scene, r_max)
    kernels.render_kernel(
        (scene.tex, sat, sat1, scene.dtex, windows, scene.kinds, scene.gparam, scene.pad, nb, gslot),
        K,
        df,
        (
            mode,
            float(q.cell_px),
            int(q.min_samples),
            int(q.max_samples),
            int(q.refine),
            float(q.edge_px),
            bool(q.strips),
            float(q.strip_min_px),
            grid,
            bool(q.prefilter),
            float(q.flat_px),
            float(q.fold_cell),
        ),
        (
            int(ap.blades),
            math.radians(ap.rotation_deg),
            float(ap.roundness),
            float(ap.cateye),
            bool(ap.falloff),
            ap.swirl == "radial",
        ),
        int(seed),
        queues,
        out,
        spp,
        todo,
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
        "layers": [
            {"name": layer.name, "geometry": GEOM_NAMES[layer.geometry[0]], "disparity_range": list(layer.geometry[2])}
            for layer in layers
        ],
        "max_coc_radius_px": r_max,
        "mean_spp": rays / spp.size,
        "max_spp": int(spp.max()),
        "rays": rays,
        "seconds": seconds,
        "rays_per_second": rays / seconds if seconds > 0 else float("nan"),
        "general_layers": int(np.sum(general)),
        "fold_fraction": fold_fraction(windows, scene, K, df, h, w),
    }
    return image, info
