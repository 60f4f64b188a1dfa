"""Random scenes composed as MagicBokeh composes its training data, and one complete sample from a scene.

A scene is two matted foregrounds over one background photograph at the output size. Each foreground sits on its
own fronto-parallel plane, nearer than every point of the background; the background is a tilted plane (random
depth variation); K ~ U(K range); the focus is a random point on one of the three layers. Every draw comes from
``numpy.random.default_rng(SeedSequence([seed, index]))`` into a :class:`SceneSpec`, which serialises to JSON and
rebuilds the identical sample.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from common.images import to_uint8, to_uint16
from common.limits import MAX_K
from degradations import DegradationConfig, degrade
from renderer import Highlights, Layer, TextureCache, pinhole_view, render_bokeh
from renderer.options import MAX_COC_PX

from .assets import Asset, load_asset, load_asset_files

MAX_FOREGROUNDS = 8


@dataclass
class SceneConfig:
    """The distribution of the random scenes (the ``scene:`` section of a build config); every range is
    [low, high]. Defaults: the paper's recipe (two foregrounds, focus on either or the background alike)."""

    k_range: tuple[float, float] = (0.0, MAX_K)  # blur strength K ~ U(k_range)
    num_foregrounds: int = 2  # matted subjects per scene, 0..MAX_FOREGROUNDS
    # probability of each focus target: fg0, fg1, ..., background (num_foregrounds + 1 values summing to 1);
    # empty = all alike
    focus_probs: list[float] = field(default_factory=list)
    bg_disparity_range: tuple[float, float] = (0.0, 0.3)  # disparity at the background's centre
    bg_tilt_range: tuple[float, float] = (0.0, 0.2)  # disparity change across the frame (plane) / map's span
    # probability that a background with a disparity map (NAME_disp.npy / .png beside it) uses it, rescaled into
    # [c − t/2, c + t/2] for the drawn centre c and span t, instead of a tilted plane
    bg_map_prob: float = 0.5
    fg_margin: float = 0.05  # a foreground is at least this much nearer than the nearest background point
    fg_scale_range: tuple[float, float] = (0.4, 0.8)  # foreground's longer side / output size
    fg_center_range: tuple[float, float] = (0.2, 0.8)  # foreground centre / output size, narrowed to fit
    bg_crop_range: tuple[float, float] = (0.6, 1.0)  # side of the background crop / shorter side of the photo

    def __post_init__(self):
        ranges = {
            "k_range": (0.0, MAX_COC_PX),
            "bg_disparity_range": (0.0, 1.0),
            "bg_tilt_range": (0.0, 1.0),
            "fg_scale_range": (1e-3, 4.0),
            "fg_center_range": (0.0, 1.0),
            "bg_crop_range": (1e-3, 1.0),
        }
        for name, (lo, hi) in ranges.items():
            a, b = getattr(self, name)
            if not lo <= a <= b <= hi:
                if name == "k_range" and b > MAX_COC_PX:
                    raise ValueError(
                        f"k_range: the upper end {b:g} exceeds the renderer's largest blur radius {MAX_COC_PX:g} px "
                        f"(renderer.options.MAX_COC_PX)"
                    )
                raise ValueError(f"{name}: [low, high] with {lo:g} <= low <= high <= {hi:g}, got {[a, b]}")
        if not 0 <= self.num_foregrounds <= MAX_FOREGROUNDS:
            raise ValueError(f"num_foregrounds: 0..{MAX_FOREGROUNDS}, got {self.num_foregrounds}")
        if self.focus_probs:
            if (
                len(self.focus_probs) != self.num_foregrounds + 1
                or min(self.focus_probs) < 0
                or abs(sum(self.focus_probs) - 1.0) > 1e-6
            ):
                raise ValueError(
                    f"focus_probs: {self.num_foregrounds + 1} probabilities (fg0 .. "
                    f"fg{self.num_foregrounds - 1}, background) summing to 1, got {self.focus_probs}"
                )
        if not 0.0 <= self.bg_map_prob <= 1.0:
            raise ValueError(f"bg_map_prob: a probability in [0, 1], got {self.bg_map_prob}")
        if not 0.0 <= self.fg_margin < 1.0:
            raise ValueError(f"fg_margin: in [0, 1), got {self.fg_margin}")

    def targets(self) -> tuple[list[str], list[float]]:
        """The focus targets and their probabilities."""
        names = [f"fg{i}" for i in range(self.num_foregrounds)] + ["background"]
        probs = list(self.focus_probs) or [1.0 / len(names)] * len(names)
        return names, probs


@dataclass
class HighlightsConfig:
    """The ``highlights:`` section of a build config: with probability ``prob`` a sample is rendered with the
    renderer's :class:`renderer.Highlights` (clipped highlights boosted, so light sources make bright bokeh balls)."""

    threshold: float = 0.9
    gain: float = 4.0
    prob: float = 0.0

    def __post_init__(self):
        Highlights(self.threshold, self.gain)  # its own range checks
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"prob: a probability in [0, 1], got {self.prob}")


@dataclass
class ForegroundSpec:
    asset_id: str
    disparity: float
    scale: float  # longer side / output size
    center: tuple  # (x, y) / output size
    flip: bool


@dataclass
class SceneSpec:
    """Every parameter of one sample."""

    seed: int
    index: int
    size: int  # the frame's width W in px (its height: ``height``; a square frame has both equal)
    background_id: str
    bg_crop: tuple  # (x0, y0, side): fractions of the photo's width, height, and of the largest W:H crop it holds
    bg_flip: bool
    bg_plane: tuple  # (a, gx, gy): disparity = a + gx·x + gy·y, pixel centres at (j + 0.5, i + 0.5)
    foregrounds: list = field(default_factory=list)
    K: float = 0.0
    focus_target: str = "background"  # "fg0" | "fg1" | ... | "background"
    focus_u: tuple = (0.0, 0.0)  # uniform numbers that pick the focus point on the target (resolve_focus)
    degradation_seed: int = 0
    bg_model: str = "plane"  # "plane": the tilted plane bg_plane; "map": the background's own disparity map
    bg_map_range: tuple = (0.0, 0.0)  # "map": the map's [min, max] rescaled to this disparity range
    highlights: bool = False  # rendered with the build's renderer.Highlights
    height: int = 0  # the frame's height H in px (0: a square frame, set to ``size``)

    def __post_init__(self):
        if not self.height:
            self.height = self.size

    @property
    def frame(self) -> tuple[int, int]:
        """(W, H) in px."""
        return self.size, self.height

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def columns(self) -> dict:
        """Flat, typed manifest columns (schema: manifests.scene_schema): tuples split into _0, _1, …; the two
        foregrounds as fg0_*, fg1_*."""
        flat = {}
        for key, value in asdict(self).items():
            if key == "foregrounds":
                for i, fg in enumerate(value):
                    for k, v in fg.items():
                        if isinstance(v, (list, tuple)):
                            flat.update({f"fg{i}_{k}_{n}": float(x) for n, x in enumerate(v)})
                        else:
                            flat[f"fg{i}_{k}"] = v
            elif isinstance(value, (list, tuple)):
                flat.update({f"{key}_{n}": float(x) for n, x in enumerate(value)})
            else:
                flat[key] = value
        return flat

    @classmethod
    def from_json(cls, text: str) -> "SceneSpec":
        d = json.loads(text)
        d["foregrounds"] = [ForegroundSpec(**{**f, "center": tuple(f["center"])}) for f in d["foregrounds"]]
        for key in ("bg_crop", "bg_plane", "focus_u", "bg_map_range"):
            d[key] = tuple(d[key])
        return cls(**d)


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The sample's generator: from (run seed, sample index) only (ARCHITECTURE.md, "Seeds")."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def _u(rng, lo_hi) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def render_seed(spec: "SceneSpec") -> int:
    """The seed of the renderer's aperture sampling pattern for one sample: from (run seed, sample index) like every
    other draw, so neighbouring samples do not share a pattern."""
    return int(np.random.SeedSequence([spec.seed, spec.index, 1]).generate_state(1)[0])


def draw_scene(
    seed: int,
    index: int,
    foregrounds: list[Asset],
    backgrounds: list[Asset],
    cfg: SceneConfig | None = None,
    *,
    size: int | tuple[int, int] = 512,
    highlights_prob: float = 0.0,
) -> SceneSpec:
    """Draw one scene of ``size`` px (an int: a square; (W, H): any aspect) from the given (already split-filtered)
    assets. The draws of the paper's recipe come first from the sample's generator; the background model and
    highlights come from a second generator of the same (seed, index), so adding them left the recipe's draws as
    they were. A square frame draws what it drew before frames had an aspect."""
    cfg = cfg or SceneConfig()
    if (cfg.num_foregrounds and not foregrounds) or not backgrounds:
        raise ValueError(
            f"draw_scene: needs {'at least one foreground and ' if cfg.num_foregrounds else ''}one background asset"
        )
    rng = sample_rng(seed, index)
    extra = np.random.default_rng(np.random.SeedSequence([seed, index, 2]))
    W, H = frame_size(size)
    bg = backgrounds[int(rng.integers(len(backgrounds)))]
    side = _u(rng, cfg.bg_crop_range)
    cw, ch = largest_crop(bg.width, bg.height, W, H)
    crop = (
        float(rng.uniform(0, 1 - side * cw / bg.width)),
        float(rng.uniform(0, 1 - side * ch / bg.height)),
        side,
    )
    # background: centre disparity c, tilt of total change t across the frame in direction phi
    c, t, phi = _u(rng, cfg.bg_disparity_range), _u(rng, cfg.bg_tilt_range), float(rng.uniform(0, 2 * math.pi))
    gx, gy = t * math.cos(phi) / W, t * math.sin(phi) / H
    a = c - gx * W / 2 - gy * H / 2
    corners = [a + gx * x + gy * y for x in (0.5, W - 0.5) for y in (0.5, H - 0.5)]
    lo = min(corners)
    if lo < 0:  # keep the whole frame in [0, 1] (with a margin for rounding)
        a -= lo - 1e-9
    bg_max = max(corners) - min(lo, 0.0)
    use_map = bool(extra.random() < cfg.bg_map_prob) and bool(bg.disp_uri)
    map_range = (0.0, 0.0)
    if use_map:  # the map's values rescaled into [c − t/2, c + t/2], kept inside [0, 1]
        m_lo = min(max(0.0, c - t / 2), 1.0 - t)
        map_range = (m_lo, m_lo + t)
        bg_max = map_range[1]
    fgs = []
    for _ in range(cfg.num_foregrounds):
        asset = foregrounds[int(rng.integers(len(foregrounds)))]
        disparity = _u(rng, (min(bg_max + cfg.fg_margin, 1.0), 1.0))
        scale = _u(rng, cfg.fg_scale_range)
        # the centre stays within the configured range and far enough from the border for the subject to fit
        # (its longer side is scale × the frame's shorter side)
        center = []
        for extent in (scale * min(W, H) / W, scale * min(W, H) / H):
            lo_c, hi_c = max(cfg.fg_center_range[0], extent / 2), min(cfg.fg_center_range[1], 1 - extent / 2)
            if lo_c > hi_c:
                lo_c = hi_c = 0.5
            center.append(_u(rng, (lo_c, hi_c)))
        center = tuple(center)
        fgs.append(ForegroundSpec(asset.id, disparity, scale, center, bool(rng.integers(2))))
    K = _u(rng, cfg.k_range)
    names, probs = cfg.targets()
    pick = int(rng.integers(len(names))) if not cfg.focus_probs else int(rng.choice(len(names), p=probs))
    target = names[pick]
    focus_u = (float(rng.random()), float(rng.random()))
    return SceneSpec(
        int(seed),
        int(index),
        W,
        bg.id,
        crop,
        bool(rng.integers(2)),
        (a, gx, gy),
        fgs,
        K,
        target,
        focus_u,
        int(rng.integers(2**62)),
        "map" if use_map else "plane",
        map_range,
        bool(extra.random() < highlights_prob),
        H,
    )


def frame_size(size) -> tuple[int, int]:
    """(W, H) from a build's ``size``: an int (a square) or [W, H]."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    w, h = size
    return int(w), int(h)


def largest_crop(width: float, height: float, W: int, H: int) -> tuple[float, float]:
    """The largest crop of aspect W:H that a width × height photo holds: (crop width, crop height) in its pixels."""
    cw = min(width, height * W / H)
    return cw, cw * H / W


def _place(rgb, alpha, fg: ForegroundSpec, frame: tuple[int, int]):
    """The foreground scaled and placed on a W×H canvas (its longer side: fg.scale × the frame's shorter side):
    premultiplied resampling, straight colour back."""
    W, H = frame
    h, w = alpha.shape
    scale = fg.scale * min(W, H) / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    pm = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1)
    pm = cv2.resize(pm, (nw, nh), interpolation=interp)
    if fg.flip:
        pm = pm[:, ::-1]
    canvas = np.zeros((H, W, 4), np.float32)
    x0 = round(fg.center[0] * W - nw / 2)
    y0 = round(fg.center[1] * H - nh / 2)
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    cw, ch = min(nw - sx0, W - dx0), min(nh - sy0, H - dy0)
    if cw > 0 and ch > 0:
        canvas[dy0 : dy0 + ch, dx0 : dx0 + cw] = pm[sy0 : sy0 + ch, sx0 : sx0 + cw]
    a = np.clip(canvas[..., 3], 0.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        straight = np.where(a[..., None] > 1e-6, canvas[..., :3] / a[..., None], 0.0)
    return np.clip(straight, 0.0, 1.0).astype(np.float32), a.astype(np.float32)


def build_layers(spec: SceneSpec, assets: dict[str, Asset]) -> list[Layer]:
    """The scene's layers (foregrounds first, background last), W × H, from the assets by id."""
    W, H = spec.frame
    bg = assets[spec.background_id]
    rgb, _, bg_map = load_asset_files(bg)
    h, w = rgb.shape[:2]
    cw, ch = largest_crop(w, h, W, H)
    box = (spec.bg_crop[0] * w, spec.bg_crop[1] * h, spec.bg_crop[2] * cw, spec.bg_crop[2] * ch)
    crop = _background_view(rgb, box, spec.frame, spec.bg_flip)
    if spec.bg_model == "map":
        if bg_map is None:
            raise ValueError(f"{bg.uri}: the scene uses its disparity map, but the asset has none")
        bg_disp = _background_map(bg_map, spec, box)
    else:
        ys, xs = np.mgrid[0:H, 0:W] + 0.5
        a, gx, gy = spec.bg_plane
        bg_disp = np.clip(a + gx * xs + gy * ys, 0.0, 1.0).astype(np.float32)
    layers = []
    for i, fg in enumerate(spec.foregrounds):
        frgb, falpha = load_asset(assets[fg.asset_id])
        prgb, palpha = _place(frgb, falpha, fg, spec.frame)
        layers.append(Layer(prgb, palpha, np.full((H, W), fg.disparity, np.float32), name=f"fg{i}"))
    layers.append(
        Layer(
            np.clip(np.ascontiguousarray(crop), 0, 1).astype(np.float32),
            np.ones((H, W), np.float32),
            bg_disp,
            name="background",
        )
    )
    return layers


def _background_view(arr: np.ndarray, box: tuple, frame: tuple[int, int], flip: bool) -> np.ndarray:
    """The scene's view of a background array (the photo, or its disparity map): the crop (x0, y0, width, height)
    in its pixels, resized to the W×H frame (area averaging when shrinking), mirrored when ``flip``."""
    x0, y0, cw, ch = box
    W, H = frame
    view = arr[int(y0) : int(y0 + ch), int(x0) : int(x0 + cw)]
    view = cv2.resize(view, (W, H), interpolation=cv2.INTER_AREA if view.shape[0] > H else cv2.INTER_LINEAR)
    return view[:, ::-1] if flip else view


def _background_map(disp: np.ndarray, spec: SceneSpec, box: tuple) -> np.ndarray:
    """The background's disparity map, cropped, resized and flipped like its photo, its [min, max] over the crop
    rescaled to ``spec.bg_map_range`` (a flat crop: the range's middle)."""
    crop_d = _background_view(disp, box, spec.frame, spec.bg_flip)
    lo, hi = float(crop_d.min()), float(crop_d.max())
    m_lo, m_hi = spec.bg_map_range
    if hi - lo < 1e-9:
        return np.full((spec.height, spec.size), 0.5 * (m_lo + m_hi), np.float32)
    return np.ascontiguousarray(np.clip(m_lo + (crop_d - lo) / (hi - lo) * (m_hi - m_lo), 0.0, 1.0), dtype=np.float32)


def resolve_focus(spec: SceneSpec, layers: list[Layer]) -> tuple[str, tuple, float]:
    """(target, (x, y), focus disparity): the point of the target picked by ``spec.focus_u``, among the pixels
    where the target is solid (alpha > 0.5); a foreground that left the frame hands the focus to the background."""
    target = spec.focus_target
    layer = layers[int(target[2:])] if target.startswith("fg") else layers[-1]
    ys, xs = np.nonzero(layer.alpha > 0.5)
    if len(ys) == 0:
        target, layer = "background", layers[-1]
        ys, xs = np.nonzero(layer.alpha > 0.5)
    k = min(int(spec.focus_u[0] * len(ys)), len(ys) - 1)
    i, j = int(ys[k]), int(xs[k])
    return target, (j + 0.5, i + 0.5), float(layer.disparity[i, j])


def make_sample(
    spec: SceneSpec,
    assets: dict[str, Asset],
    degradation: DegradationConfig | None = None,
    highlights: Highlights | None = None,
    bit_depth: int = 8,
    camera=None,
    lens: dict | None = None,
    **render_options,
) -> dict:
    """Every member of one sample (ARCHITECTURE.md, "Samples"): aif, bokeh (H×W×3 sRGB, uint8, or uint16 with
    ``bit_depth=16``), lq (uint8: the phone input, degraded from the 8-bit all-in-focus image either way), disp
    (float32 H×W, full precision, nearest visible surface), json (the spec, the degradation draws, the renderer
    report). ``highlights`` applies where ``spec.highlights`` is set. ``camera`` (datagen.camera.CameraDraw, whose
    draw_camera set the spec's disparities): K comes from the target camera focused at the drawn target's distance
    (``spec.K`` is set to it), the LQ is degraded from the input camera's own render (the all-in-focus image for a
    pinhole), and the JSON gets ``camera``. ``lens`` (datagen.character.draw_character): the bokeh render's lens
    character (the input camera's render stays the ideal lens), recorded as the JSON's ``lens``."""
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth: 8 or 16, got {bit_depth}")
    layers = build_layers(spec, assets)
    target, xy, focus_disparity = resolve_focus(spec, layers)
    textures = TextureCache()  # the pinhole view and the renders share each layer's decoded texture
    aif_f, disp = pinhole_view(layers, textures=textures)
    aif = to_uint8(aif_f)
    boost = highlights if spec.highlights else None
    lq_source, K_input = aif, 0.0
    if camera is not None:
        z_f, spec.K, K_input = camera.lens_k(focus_disparity, spec.size)
        in_target, in_xy, in_d = target, xy, focus_disparity
        if camera.input_focus is not None:  # a refocus pair: the input camera focused on another target
            name, u = camera.input_focus
            in_target, in_xy, in_d = resolve_focus(dataclasses.replace(spec, focus_target=name, focus_u=u), layers)
            _, _, K_input = camera.lens_k(in_d, spec.size)
        input_focus = camera.focus_record(in_target, in_xy, in_d)
        if K_input > 0:  # the input camera's own capture, with its own blur, focused on its target
            lq_source = to_uint8(
                render_bokeh(
                    layers,
                    K_input,
                    in_d,
                    seed=render_seed(spec),
                    highlights=boost,
                    textures=textures,
                    **render_options,
                )
            )
    from datagen.character import render_terms

    bokeh, info = render_bokeh(
        layers,
        spec.K,
        focus_disparity,
        seed=render_seed(spec),
        return_info=True,
        highlights=boost,
        textures=textures,
        **render_terms(lens),
        **render_options,
    )
    lq, rec = degrade(lq_source, spec.degradation_seed, degradation)
    meta = {
        "scene": json.loads(spec.to_json()),
        "degradation": rec.columns(),
        "focus": {"target": target, "xy": list(xy), "disparity": focus_disparity},
        "render": {
            k: info[k] for k in ("K", "focus_disparity", "gamma", "aperture", "quality", "mean_spp", "highlights")
        },
        "background": {
            "model": spec.bg_model,
            "uri": assets[spec.background_id].disp_uri if spec.bg_model == "map" else "",
        },
        "bit_depth": bit_depth,
        "defocus": "r = K * |disp - focus_disparity| (pixels); focus mask: r below the trainer's threshold",
    }
    if camera is not None:
        meta["camera"] = camera.record(z_f, spec.K, K_input, input_focus)
    if lens is not None:
        meta["lens"] = lens
    if bit_depth == 16:
        return {"aif": to_uint16(aif_f), "bokeh": to_uint16(bokeh), "lq": lq, "disp": disp, "json": meta}
    return {"aif": aif, "bokeh": to_uint8(bokeh), "lq": lq, "disp": disp, "json": meta}
