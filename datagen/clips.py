"""Bokeh video clips: a moving layered scene rendered exactly in every frame (the core of the ``sequence:`` recipe).

A clip is one drawn scene (datagen.scenes.draw_scene) plus its motion, drawn from a generator of its own
(seed, index, 4), so the image recipe's draws are untouched:

- subjects: each foreground moves in 2-D (velocity v and acceleration a in px per frame, directions uniform) and in
  depth, its disparity going linearly from d0 to d1 = d0·ρ (kept nearer than the background by the scene's margin
  and at most 1); a subject at disparity d is scaled by d/d0 about its centre, image size being ∝ 1/z;
- the camera: a lateral move of τ = t·k px (at disparity 1) by frame k shifts every surface of disparity d by τ·d
  px (parallax: the background barely moves, near subjects most). A tilted-plane background d = a + g·x maps
  affinely, x' = x + τ·d(x); a depth-mapped background is traced back exactly at every pixel (the nearest part of
  its surface that lands there: near parts slide over far ones); then an optional slow zoom scales everything;
- focus: fixed on the drawn target (which moves with it), a pull to a second target over a drawn span of frames
  (linear or eased in disparity), or a ramp of K by a drawn ratio.

Each frame is a render of the scene at that instant (no warping of rendered images): the layers are placed, then
moved by exact sub-pixel affine resampling of their premultiplied textures (cv2.warpAffine, bilinear), a frame
with no motion skipping it, so a still clip renders the image recipe's bytes in every frame. datagen/build.py
writes one clip per sample when ``sequence.frames`` is set (make_clip, encode_clip, decode_clip in shards.py).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from common.limits import MAX_K
from datagen.flow import background_flow, compose, flow_image, forward_flow, visible_layer
from renderer import Layer, TextureCache, pinhole_view, render_bokeh

FOCUS_MODES = ("fixed", "pull", "ramp")
PULL_SPACES = ("disparity", "distance")
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # the affine map of a layer that does not move
MIN_ZOOM, MAX_ZOOM = 0.5, 2.0  # bounds of a clip's zoom (last frame's magnification over the first's)


@dataclass
class SequenceConfig:
    """The ``sequence:`` section: clip length and motion distributions (every range [low, high])."""

    frames: int = 0  # 0 = off (the image recipe); else 2..64
    speed_px: tuple[float, float] = (0.0, 2.0)  # a subject's speed at frame 0, px per frame
    accel_px: tuple[float, float] = (0.0, 0.1)  # its acceleration, px per frame²
    depth_ratio: tuple[float, float] = (0.8, 1.25)  # d_last / d_first of a subject
    camera_shift_px: tuple[float, float] = (0.0, 1.0)  # lateral camera move per frame, px at disparity 1
    focus_probs: list[float] = field(default_factory=lambda: [1 / 3, 1 / 3, 1 / 3])  # fixed, pull, ramp
    pull_span: tuple[float, float] = (0.3, 1.0)  # frames a pull takes, as a fraction of the clip
    ease_prob: float = 0.5  # a pull eased (smoothstep) rather than linear
    pull_space: str = "disparity"  # a pull linear (or eased) in "disparity" or in "distance" (metres: d ∝ 1/z)
    k_ramp: tuple[float, float] = (0.5, 2.0)  # K_last / K_first of a ramp (K kept in [0, 32])
    still_camera_prob: float = 0.0  # a clip shot from a locked camera: no move, no zoom, the background static
    zoom: tuple[float, float] = (1.0, 1.0)  # magnification of the last frame over the first (log-uniform)
    flow: bool = False  # also write flow.NNN.npy: the pinhole view's exact forward flow, frame k to k + 1

    def __post_init__(self):
        if self.frames and not 2 <= self.frames <= 64:
            raise ValueError(f"frames: 0 (off) or 2..64, got {self.frames}")
        for name in ("speed_px", "accel_px", "camera_shift_px"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi < math.inf:
                raise ValueError(f"{name}: [low, high] with 0 <= low <= high, got {[lo, hi]}")
        for name in ("depth_ratio", "k_ramp"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi < math.inf:
                raise ValueError(f"{name}: [low, high] with 0 < low <= high, got {[lo, hi]}")
        lo, hi = self.pull_span
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"pull_span: [low, high] in (0, 1], got {[lo, hi]}")
        if len(self.focus_probs) != 3 or min(self.focus_probs) < 0 or abs(sum(self.focus_probs) - 1) > 1e-6:
            raise ValueError(f"focus_probs: 3 probabilities (fixed, pull, ramp) summing to 1, got {self.focus_probs}")
        if self.pull_space not in PULL_SPACES:
            raise ValueError(f"pull_space: one of {list(PULL_SPACES)}, got {self.pull_space!r}")
        for name in ("ease_prob", "still_camera_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: a probability, got {getattr(self, name)}")
        if self.flow and not self.frames:
            raise ValueError("flow: true needs clips (frames >= 2): an image has no next frame to flow to; set "
                             "sequence.frames, or flow: false")
        lo, hi = self.zoom
        if not MIN_ZOOM <= lo <= hi <= MAX_ZOOM:
            raise ValueError(f"zoom: [low, high] within [{MIN_ZOOM}, {MAX_ZOOM}] (a slow zoom: the last frame's "
                             f"magnification over the first's), got {[lo, hi]}")


    def check_motion(self, size: int) -> None:
        """Motion bounded by the frame: over a clip a subject's travel (speed, and acceleration's ½·a·t²) and the
        camera's shift each stay within one frame width ``size`` (the ranges themselves are checked on or off)."""
        if not self.frames:
            return
        n = self.frames - 1
        for name, travel in (("speed_px", lambda v: v * n), ("accel_px", lambda v: 0.5 * v * n * n),
                             ("camera_shift_px", lambda v: v * n)):
            hi = getattr(self, name)[1]
            if travel(hi) > size:
                raise ValueError(f"sequence.{name}: {hi:g} px per frame{'²' if name == 'accel_px' else ''} moves "
                                 f"{travel(hi):.0f} px over {n + 1} frames, more than the {size} px frame; at most "
                                 f"{size / (0.5 * n * n if name == 'accel_px' else n):.3g}")


@dataclass
class ClipDraw:
    """One clip's motion and focus schedule (all in the sample JSON)."""

    frames: int
    velocity: list  # per foreground (vx, vy), px per frame
    accel: list  # per foreground (ax, ay), px per frame²
    depth_ratio: list  # per foreground
    camera: tuple  # (tx, ty): lateral move per frame, px at disparity 1
    focus_mode: str
    pull_target: str = ""  # the second focus target of a pull
    pull_start: float = 0.0  # frame where the pull starts
    pull_frames: float = 1.0  # frames it takes
    eased: bool = False
    pull_space: str = "disparity"  # the pull interpolates disparity, or distance (harmonic in disparity)
    k_ratio: float = 1.0  # K_last / K_first of a ramp
    still: bool = False  # a locked camera (no move, no zoom)
    zoom: float = 1.0  # magnification of the last frame over the first

    def magnification(self, k: int) -> float:
        """The zoom's magnification at frame k, geometric from 1 to ``zoom`` (a steady zoom speed)."""
        return self.zoom ** (k / (self.frames - 1)) if self.zoom != 1.0 and self.frames > 1 else 1.0

    def pull_weight(self, k: int) -> float:
        """How far the pull has gone at frame k: 0 before it, 1 after it (smoothstep when eased)."""
        w = min(max((k - self.pull_start) / self.pull_frames, 0.0), 1.0)
        return w * w * (3 - 2 * w) if self.eased else w

    def K(self, K0: float, k: int, ramp: bool = True) -> float:
        """K at frame k: a ramp's linear change (an iris pull; ``ramp=False``: a camera whose aperture stays, the
        phone's), times the zoom's magnification (the blur disks magnify with the image: a digital zoom, or a zoom
        lens whose entrance pupil keeps its size), kept in [0, 32]."""
        K = K0
        if ramp and self.focus_mode == "ramp" and self.frames >= 2:
            K = K0 * (1 + (self.k_ratio - 1) * k / (self.frames - 1))
        m = self.magnification(k)
        if K == K0 and m == 1.0:
            return K0
        return float(min(max(K * m, 0.0), MAX_K))

    def blend(self, d_a: float, d_b: float, k: int) -> float:
        """The pull's focus disparity at frame k, from d_a to d_b: linear (or eased) in disparity, or in distance
        (z ∝ 1/d, so 1/d_f blends linearly; a pull to or from infinity, d = 0, blends in disparity)."""
        w = self.pull_weight(k)
        if self.pull_space == "distance" and min(d_a, d_b) > 0:
            return 1.0 / ((1 - w) / d_a + w / d_b)
        return d_a + (d_b - d_a) * w


def _vector(rng, lo_hi) -> tuple[float, float]:
    r, phi = float(rng.uniform(*lo_hi)), float(rng.uniform(0, 2 * math.pi))
    return (r * math.cos(phi), r * math.sin(phi))


def draw_clip(spec, cfg: SequenceConfig, targets: list[str]) -> ClipDraw:
    """The motion and focus schedule of a clip of ``spec`` (a SceneSpec); ``targets``: the scene's focus targets."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, spec.index, 4]))
    n = len(spec.foregrounds)
    velocity = [_vector(rng, cfg.speed_px) for _ in range(n)]
    accel = [_vector(rng, cfg.accel_px) for _ in range(n)]
    ratio = [float(rng.uniform(*cfg.depth_ratio)) for _ in range(n)]
    camera = _vector(rng, cfg.camera_shift_px)
    mode = FOCUS_MODES[int(rng.choice(3, p=np.asarray(cfg.focus_probs) / sum(cfg.focus_probs)))]
    others = [t for t in targets if t != spec.focus_target]
    draw = ClipDraw(cfg.frames, velocity, accel, ratio, camera, mode)
    if mode == "pull" and others:
        span = float(rng.uniform(*cfg.pull_span)) * (cfg.frames - 1)
        draw.pull_target = others[int(rng.integers(len(others)))]
        draw.pull_frames = max(span, 1.0)
        draw.pull_start = float(rng.uniform(0, max(cfg.frames - 1 - span, 0.0)))
        draw.eased = bool(rng.random() < cfg.ease_prob)
        draw.pull_space = cfg.pull_space
    elif mode == "pull":
        draw.focus_mode = "fixed"  # a scene with one target has nothing to pull to
    if mode == "ramp":
        draw.k_ratio = float(rng.uniform(*cfg.k_ramp))
    # drawn last, so that a config without them draws the clips it drew before
    still = bool(rng.random() < cfg.still_camera_prob)
    zoom = float(math.exp(rng.uniform(math.log(cfg.zoom[0]), math.log(cfg.zoom[1]))))
    if still:
        draw.camera, draw.still = (0.0, 0.0), True
    else:
        draw.zoom = zoom
    return draw


def _warp(layer: Layer, A: np.ndarray, border: int = cv2.BORDER_CONSTANT) -> Layer:
    """``layer`` moved by the affine map x' = A·[x, y, 1] (pixel centres at j + 0.5): premultiplied colour and
    alpha resampled bilinearly, exactly the identity when A is; the disparity moves with it. ``border``: what enters
    at the frame's edge (nothing for a subject; the background's edge replicated, so it stays opaque)."""
    if np.array_equal(A, IDENTITY):
        return layer
    h, w = layer.alpha.shape
    # cv2 maps pixel indices (centre of pixel j at j): x_c = x - 0.5
    M = A.copy()
    M[:, 2] += A[:, 0] * 0.5 + A[:, 1] * 0.5 - 0.5
    flags = cv2.INTER_LINEAR
    out = cv2.warpAffine(_premultiplied(layer), M, (w, h), flags=flags, borderMode=border, borderValue=0)
    disp = cv2.warpAffine(np.ascontiguousarray(layer.disparity, np.float32), M, (w, h), flags=flags,
                          borderMode=cv2.BORDER_REPLICATE)
    return _resampled(out, disp, layer.name)


def _premultiplied(layer: Layer) -> np.ndarray:
    """H×W×4 float32: the layer's premultiplied colour and its alpha, as layers are resampled."""
    return np.concatenate([layer.rgb * layer.alpha[..., None], layer.alpha[..., None]], axis=-1).astype(np.float32)


def _resampled(out: np.ndarray, disparity: np.ndarray, name: str) -> Layer:
    """The Layer of resampled premultiplied colour and alpha ``out`` (H×W×4) with ``disparity``."""
    a = np.clip(out[..., 3], 0, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rgb = np.where(a[..., None] > 1e-6, out[..., :3] / a[..., None], 0.0)
    return Layer(np.clip(rgb, 0, 1).astype(np.float32), a.astype(np.float32), disparity, name=name)


def zoom_map(clip: ClipDraw, k: int, size: int) -> np.ndarray:
    """The zoom at frame k: a scaling by the magnification about the frame's centre."""
    m, c = clip.magnification(k), size / 2
    return np.array([[m, 0.0, c - m * c], [0.0, m, c - m * c]])


def background_map(spec, clip: ClipDraw, k: int) -> np.ndarray:
    """The background's affine map from frame 0 to frame k: the camera's parallax x' = x + τ·d(x) of its plane
    d = a + gx·x + gy·y, then the zoom (for a depth-mapped background: the zoom alone; see :func:`_moved_map`)."""
    tx, ty = clip.camera[0] * k, clip.camera[1] * k
    a, gx, gy = spec.bg_plane if spec.bg_model == "plane" else (0.0, 0.0, 0.0)
    A = np.array([[1 + tx * gx, tx * gy, tx * a], [ty * gx, 1 + ty * gy, ty * a]])
    return compose(zoom_map(clip, k, spec.size), A)


def frame_layers(spec, clip: ClipDraw, k: int, layers: list[Layer], margin: float = 0.0) -> list[Layer]:
    """The scene's layers at frame k, from its frame-0 ``layers`` (datagen.scenes.build_layers of ``spec``: the
    foregrounds, then the background). ``margin``: how much nearer than the background's nearest point a subject
    stays (the scene's fg_margin)."""
    return frame_state(spec, clip, k, layers, margin)[0]


def frame_state(spec, clip: ClipDraw, k: int, layers: list[Layer], margin: float = 0.0):
    """(layers, maps, subject disparities) at frame k: :func:`frame_layers`, each layer's affine map from frame 0
    (2×3) and each foreground's disparity. A layer that does not move is frame 0's own object."""
    s = spec.size
    A_bg = background_map(spec, clip, k)
    if spec.bg_model == "map" and any(clip.camera) and k:
        bg = _moved_map(layers[-1], clip, k)
    else:
        bg = _warp(layers[-1], A_bg, cv2.BORDER_REPLICATE)
    if bg is not layers[-1] and spec.bg_model == "plane":
        # its disparity stays a plane: d'(x') = d(A⁻¹(x')), written exactly rather than resampled
        a, gx, gy = spec.bg_plane
        inv = np.linalg.inv(A_bg[:, :2])
        ys, xs = np.mgrid[0:s, 0:s] + 0.5
        x0 = inv[0, 0] * (xs - A_bg[0, 2]) + inv[0, 1] * (ys - A_bg[1, 2])
        y0 = inv[1, 0] * (xs - A_bg[0, 2]) + inv[1, 1] * (ys - A_bg[1, 2])
        bg = Layer(bg.rgb, bg.alpha, np.clip(a + gx * x0 + gy * y0, 0, 1).astype(np.float32), name=bg.name)
    bg_max = float(bg.disparity.max())
    out, maps, depths = [], [], []
    for i, layer in enumerate(layers[:-1]):
        d, A = subject_motion(spec, clip, k, i, bg_max, margin)
        moved = _warp(layer, A)
        out.append(moved if moved is layer else
                   Layer(moved.rgb, moved.alpha, np.full((s, s), d, np.float32), name=layer.name))
        maps.append(A)
        depths.append(d)
    return out + [bg], maps + [A_bg], depths


def _moved_map(layer: Layer, clip: ClipDraw, k: int) -> Layer:
    """A depth-mapped background at frame k of a moving camera: a point at x with disparity d(x) is seen at
    Z(x + τ·d(x)) (τ: the camera's move by frame k, Z: the zoom). Each pixel centre p is traced back exactly: the
    nearest d where x = Z⁻¹(p) − τ·d meets the map's bilinear surface (renderer.reference.surface_hit: the
    intersection the renderer itself solves), so near parts of the surface occlude far ones and parts it hid come
    into view as the surface between them (the renderer's continuous model of a depth map); colour and alpha are
    read there (premultiplied, bilinear, edge replicated)."""
    from renderer.reference import surface_hit

    h, w = layer.shape
    tx, ty = clip.camera[0] * k, clip.camera[1] * k
    m, c = clip.magnification(k), w / 2
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    px, py = (xs - c) / m + c, (ys - c) / m + c
    d = surface_hit(layer.disparity, px, py, -tx, -ty)
    # cv2 reads pixel j's centre at index j
    mx, my = (px - tx * d - 0.5).astype(np.float32), (py - ty * d - 0.5).astype(np.float32)
    out = cv2.remap(_premultiplied(layer), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _resampled(out, np.clip(d, 0, 1).astype(np.float32), layer.name)


def subject_motion(spec, clip: ClipDraw, k: int, i: int, bg_max: float, margin: float) -> tuple[float, np.ndarray]:
    """Foreground i at frame k: its disparity (linear from d0 to d1 = d0·ρ, kept ``margin`` nearer than the
    background's nearest point ``bg_max`` and at most 1) and the affine map from its frame-0 placement (scaled by
    d/d0 about its centre, then moved by v·k + a·k²/2 and the camera's parallax τ·d, then the zoom)."""
    s = spec.size
    fg = spec.foregrounds[i]
    tx, ty = clip.camera[0] * k, clip.camera[1] * k
    d0 = fg.disparity
    d1 = min(max(d0 * clip.depth_ratio[i], min(bg_max + margin, 1.0)), 1.0)
    d = d0 + (d1 - d0) * k / max(clip.frames - 1, 1)
    (vx, vy), (ax, ay) = clip.velocity[i], clip.accel[i]
    cx, cy = fg.center[0] * s, fg.center[1] * s
    dx = vx * k + 0.5 * ax * k * k + tx * d
    dy = vy * k + 0.5 * ay * k * k + ty * d
    m = d / d0
    A = np.array([[m, 0.0, cx - m * cx + dx], [0.0, m, cy - m * cy + dy]])
    return d, (A if clip.zoom == 1.0 else compose(zoom_map(clip, k, s), A))


def focus_disparity(spec, clip: ClipDraw, k: int, layers: list[Layer], resolve) -> tuple[str, tuple, float]:
    """(target, point, d_f) at frame k: the drawn target's disparity at its point in this frame, and during a pull
    the blend toward the second target's by :meth:`ClipDraw.blend`. ``resolve``: datagen.scenes.resolve_focus."""
    target, xy, d_a = resolve(spec, layers)
    if clip.focus_mode != "pull":
        return target, xy, d_a
    second = copy.copy(spec)
    second.focus_target = clip.pull_target
    target_b, xy_b, d_b = resolve(second, layers)
    w = clip.pull_weight(k)
    return (target if w < 0.5 else target_b), (xy if w < 0.5 else xy_b), clip.blend(d_a, d_b, k)


def render_clip(spec, clip: ClipDraw, layers: list[Layer], resolve, margin: float = 0.0, flow: bool = False,
                textures: TextureCache | None = None, camera=None, **render_options):
    """Every frame's (aif linear-light composite, disparity, bokeh, K, d_f, target, and with ``flow`` the forward
    flow to the next frame, none for the last); ``layers``: frame 0's. The bokeh uses the sample's render seed in
    every frame (datagen.scenes.render_seed), as the image does. One renderer.TextureCache (``textures``, or a
    new one) serves the whole clip: a layer that does not move (a locked camera's background) is decoded and summed
    once, not once per frame; each frame's render reuses its pinhole view's textures (without highlights); and
    where K and the focus stay (a fixed focus, no ramp, no zoom) only the pixels within reach of a moving layer
    are traced again, bit-identically (the cache counts all three). ``camera`` (datagen.camera.CameraDraw): K
    follows the target lens focused at each frame's focus distance z_f = z_near/d_f (times the ramp and the zoom),
    and each frame gets "input": the input camera's own render (None for a pinhole) and "camera": z_f, K_input and
    the target's f-number."""
    from datagen.scenes import render_seed

    cache = textures if textures is not None else TextureCache()
    frames, maps, fronts, bg_flows = [], [], [], []
    for k in range(clip.frames):
        fl, frame_maps, depths = frame_state(spec, clip, k, layers, margin)
        target, xy, d_f = focus_disparity(spec, clip, k, fl, resolve)
        aif, disp = pinhole_view(fl, textures=cache)
        K, lens = clip.K(spec.K, k), None
        if camera is not None:
            K, lens = _camera_frame(camera, clip, k, d_f, spec.size)
            lens["input"] = None if lens["K_input"] == 0 else \
                render_bokeh(fl, lens["K_input"], d_f, seed=render_seed(spec), textures=cache, **render_options)
        bokeh = render_bokeh(fl, K, d_f, seed=render_seed(spec), textures=cache, **render_options)
        subjects = []
        for i, fg in enumerate(spec.foregrounds):
            c = frame_maps[i] @ np.array([fg.center[0] * spec.size, fg.center[1] * spec.size, 1.0])
            subjects.append({"name": f"fg{i}", "disparity": depths[i], "center_px": [float(c[0]), float(c[1])]})
        frames.append({"aif": aif, "disp": disp, "bokeh": bokeh, "K": K, "focus_disparity": d_f, "target": target,
                       "xy": list(xy), "subjects": subjects,
                       "background_max_disparity": float(fl[-1].disparity.max()), "lens": lens})
        if flow:
            maps.append(frame_maps)
            fronts.append(visible_layer(fl))
            bg_flows.append(background_flow(clip, k, fl[-1].disparity) if k < clip.frames - 1 else None)
    for k in range(clip.frames - 1 if flow else 0):
        frames[k]["flow"] = forward_flow(fronts[k], maps[k], maps[k + 1], {len(layers) - 1: bg_flows[k]})
    return frames


def _camera_frame(camera, clip: ClipDraw, k: int, d_f: float, size: int) -> tuple[float, dict]:
    """K and the lens record of frame k of a camera-true clip focused at disparity d_f."""
    z_f, K_lens, K_input = camera.lens_k(d_f, size)
    K = clip.K(K_lens, k)
    K_input = clip.K(K_input, k, ramp=False) if K_input else 0.0
    # the f-number that gives this K (a ramp is an iris pull; K's clip at 32 shows as a larger f-number)
    f_number = camera.target.f_number * K_lens * clip.magnification(k) / K if K > 0 else math.inf
    return K, {"focus_distance_m": z_f, "K_input": K_input, "f_number": f_number}


def make_clip(spec, assets: dict, clip: ClipDraw, degradation=None, highlights=None, bit_depth: int = 8,
              margin: float = 0.0, flow: bool = False, camera=None, **render_options) -> dict:
    """Every member of one clip sample (README "Clips"): per frame aif, bokeh (uint8, or uint16 with
    ``bit_depth=16``), lq (uint8) and disp (float32), and one json with the scene, the motion, the degradation
    (drawn once per clip: kernels, resizes, JPEG qualities) and per frame K, d_f, the focus target and point, the
    subjects' disparities and centres, the zoom's magnification and the noise seed (the noise is drawn afresh each
    frame; frame 0's is the image recipe's); with ``flow``, flow (float32 H×W×2) for every frame but the last.
    ``camera`` (datagen.camera.CameraDraw, as for datagen.scenes.make_sample): K from the target lens at each
    frame's focus distance, each LQ degraded from the input camera's own frame, the JSON's ``camera`` (frame 0's, as
    an image's) and per frame ``camera`` (focus distance, K_input, the target's f-number)."""
    import dataclasses

    from common.images import to_uint8, to_uint16
    from datagen.scenes import build_layers, resolve_focus
    from degradations import DegradationConfig
    from degradations.pipeline import degrade_with, draw
    from renderer import Quality

    cfg = degradation or DegradationConfig()
    rec = draw(spec.degradation_seed, cfg)
    boost = highlights if spec.highlights else None
    frames = render_clip(spec, clip, build_layers(spec, assets), resolve_focus, margin, flow, highlights=boost,
                         camera=camera, **render_options)
    if camera is not None:
        spec.K = frames[0]["K"]  # the lens's K at frame 0, as make_sample sets it
    out = {"aif": [], "bokeh": [], "lq": [], "disp": []}
    if flow:
        out["flow"] = [f["flow"] for f in frames[:-1]]
    meta_frames = []
    for k, f in enumerate(frames):
        aif8 = to_uint8(f["aif"])
        noise = rec.noise_seed if k == 0 else \
            int(np.random.SeedSequence([rec.noise_seed, k]).generate_state(1, np.uint64)[0] % 2 ** 62)
        lens = f["lens"]
        source = aif8 if lens is None or lens["input"] is None else to_uint8(lens["input"])
        out["lq"].append(degrade_with(source, dataclasses.replace(rec, noise_seed=noise), cfg))
        out["aif"].append(to_uint16(f["aif"]) if bit_depth == 16 else aif8)
        out["bokeh"].append(to_uint16(f["bokeh"]) if bit_depth == 16 else to_uint8(f["bokeh"]))
        out["disp"].append(f["disp"])
        meta_frames.append({"frame": k, "K": f["K"], "focus_disparity": f["focus_disparity"], "target": f["target"],
                            "xy": f["xy"], "noise_seed": noise, "subjects": f["subjects"],
                            "magnification": clip.magnification(k),
                            "background_max_disparity": f["background_max_disparity"],
                            **({"camera": {n: v for n, v in lens.items() if n != "input"}} if lens else {})})
    out["json"] = {"scene": json.loads(spec.to_json()), "clip": dataclasses.asdict(clip), "frames": meta_frames,
                   "degradation": rec.columns(), "bit_depth": bit_depth,
                   "render": {"quality": dataclasses.asdict(Quality.from_dict(render_options))},
                   "defocus": "per frame: r = K * |disp - focus_disparity| (pixels)"}
    if camera is not None:
        first = meta_frames[0]["camera"]
        out["json"]["camera"] = camera.record(first["focus_distance_m"], frames[0]["K"], first["K_input"])
    return out


def clip_preview(samples: list[dict], width: int = 128, max_frames: int = 8) -> tuple[bytes, bytes]:
    """(PNG, GIF) of decoded clips (datagen.shards.decode_clip): the PNG holds one strip per clip (up to
    ``max_frames`` frames of its bokeh, above the same frames all in focus, above their flow where the clip has it:
    direction as hue, speed as brightness, full at the clip's fastest; black under the last frame, which has none);
    the GIF plays the first clip's frames, all in focus beside the bokeh, so the focus pull and the motion can be
    watched."""
    import io

    from PIL import Image, ImageDraw

    def cells(frames):
        return [np.asarray(Image.fromarray(f).resize((width, width), Image.BILINEAR)) for f in frames]

    rows = []
    for c in samples:
        T = len(c["bokeh"])
        pick = sorted(set(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int).tolist()))
        rows.append(np.concatenate(cells([c["bokeh"][k] for k in pick]), axis=1))
        rows.append(np.concatenate(cells([c["aif"][k] for k in pick]), axis=1))
        if "flow" in c:
            # the last frame has no flow (black)
            top = float(np.hypot(c["flow"][..., 0], c["flow"][..., 1]).max())
            rows.append(np.concatenate(cells([flow_image(c["flow"][k], top) if k < T - 1 else
                                              np.zeros_like(c["aif"][k]) for k in pick]), axis=1))
    w = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0))) for r in rows]
    png = io.BytesIO()
    Image.fromarray(np.concatenate(rows, axis=0)).save(png, format="PNG", compress_level=1)
    first = samples[0]
    gif_frames = []
    for k, (a, b) in enumerate(zip(cells(first["aif"]), cells(first["bokeh"]))):
        im = Image.fromarray(np.concatenate([a, b], axis=1))
        meta = first["json"]["frames"][k]
        ImageDraw.Draw(im).text((2, 2), f"{k} K {meta['K']:.1f} d_f {meta['focus_disparity']:.2f}",
                                fill=(255, 255, 255))
        gif_frames.append(im)
    gif = io.BytesIO()
    gif_frames[0].save(gif, format="GIF", save_all=True, append_images=gif_frames[1:], duration=120, loop=0)
    return png.getvalue(), gif.getvalue()


def clip_columns(meta: dict) -> dict:
    """A clip's samples.parquet columns: its frame count and, per frame (list columns), K, d_f and the zoom's
    magnification, and for a camera-true clip the focus distance (m) and the input camera's K."""
    frames = meta["frames"]
    cols = {"frames": len(frames), "frame_K": [f["K"] for f in frames],
            "frame_focus_disparity": [f["focus_disparity"] for f in frames],
            "frame_magnification": [f["magnification"] for f in frames]}
    if "camera" in frames[0]:
        cols["frame_focus_distance_m"] = [f["camera"]["focus_distance_m"] for f in frames]
        cols["frame_K_input"] = [f["camera"]["K_input"] for f in frames]
    return cols
