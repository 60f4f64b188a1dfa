"""A clip's motion (the ``sequence:`` section): what is drawn per clip (SequenceConfig, ClipDraw, draw_clip) and
where every layer stands at frame k (frame_layers, frame_state, subject_motion, focus_disparity). datagen.clips
renders the frames; its module docstring describes the motion model."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from common.limits import MAX_K
from datagen.flow import compose
from renderer import Layer

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
            raise ValueError(
                "flow: true needs clips (frames >= 2): an image has no next frame to flow to; set "
                "sequence.frames, or flow: false"
            )
        lo, hi = self.zoom
        if not MIN_ZOOM <= lo <= hi <= MAX_ZOOM:
            raise ValueError(
                f"zoom: [low, high] within [{MIN_ZOOM}, {MAX_ZOOM}] (a slow zoom: the last frame's "
                f"magnification over the first's), got {[lo, hi]}"
            )

    def check_motion(self, size: int) -> None:
        """Motion bounded by the frame: over a clip a subject's travel (speed, and acceleration's ½·a·t²) and the
        camera's shift each stay within one frame width ``size`` (the ranges themselves are checked on or off)."""
        if not self.frames:
            return
        n = self.frames - 1
        for name, travel in (
            ("speed_px", lambda v: v * n),
            ("accel_px", lambda v: 0.5 * v * n * n),
            ("camera_shift_px", lambda v: v * n),
        ):
            hi = getattr(self, name)[1]
            if travel(hi) > size:
                raise ValueError(
                    f"sequence.{name}: {hi:g} px per frame{'²' if name == 'accel_px' else ''} moves "
                    f"{travel(hi):.0f} px over {n + 1} frames, more than the {size} px frame; at most "
                    f"{size / (0.5 * n * n if name == 'accel_px' else n):.3g}"
                )


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
        lens whose entrance pupil keeps its size), kept in [0, max(32, K0)] (the build's max_K bounds it)."""
        K = K0
        if ramp and self.focus_mode == "ramp" and self.frames >= 2:
            K = K0 * (1 + (self.k_ratio - 1) * k / (self.frames - 1))
        m = self.magnification(k)
        if K == K0 and m == 1.0:
            return K0
        return float(min(max(K * m, 0.0), max(MAX_K, K0)))

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
    disp = cv2.warpAffine(
        np.ascontiguousarray(layer.disparity, np.float32), M, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
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


def zoom_map(clip: ClipDraw, k: int, frame: tuple[int, int]) -> np.ndarray:
    """The zoom at frame k: a scaling by the magnification about the centre of the W×H ``frame``."""
    m, (cx, cy) = clip.magnification(k), (frame[0] / 2, frame[1] / 2)
    return np.array([[m, 0.0, cx - m * cx], [0.0, m, cy - m * cy]])


def background_map(spec, clip: ClipDraw, k: int) -> np.ndarray:
    """The background's affine map from frame 0 to frame k: the camera's parallax x' = x + τ·d(x) of its plane
    d = a + gx·x + gy·y, then the zoom (for a depth-mapped background: the zoom alone; see :func:`_moved_map`)."""
    tx, ty = clip.camera[0] * k, clip.camera[1] * k
    a, gx, gy = spec.bg_plane if spec.bg_model == "plane" else (0.0, 0.0, 0.0)
    A = np.array([[1 + tx * gx, tx * gy, tx * a], [ty * gx, 1 + ty * gy, ty * a]])
    return compose(zoom_map(clip, k, spec.frame), A)


def frame_layers(spec, clip: ClipDraw, k: int, layers: list[Layer], margin: float = 0.0) -> list[Layer]:
    """The scene's layers at frame k, from its frame-0 ``layers`` (datagen.scenes.build_layers of ``spec``: the
    foregrounds, then the background). ``margin``: how much nearer than the background's nearest point a subject
    stays (the scene's fg_margin)."""
    return frame_state(spec, clip, k, layers, margin)[0]


def frame_state(spec, clip: ClipDraw, k: int, layers: list[Layer], margin: float = 0.0):
    """(layers, maps, subject disparities) at frame k: :func:`frame_layers`, each layer's affine map from frame 0
    (2×3) and each foreground's disparity. A layer that does not move is frame 0's own object."""
    W, H = spec.frame
    A_bg = background_map(spec, clip, k)
    if spec.bg_model == "map" and any(clip.camera) and k:
        bg = _moved_map(layers[-1], clip, k)
    else:
        bg = _warp(layers[-1], A_bg, cv2.BORDER_REPLICATE)
    if bg is not layers[-1] and spec.bg_model == "plane":
        # its disparity stays a plane: d'(x') = d(A⁻¹(x')), written exactly rather than resampled
        a, gx, gy = spec.bg_plane
        inv = np.linalg.inv(A_bg[:, :2])
        ys, xs = np.mgrid[0:H, 0:W] + 0.5
        x0 = inv[0, 0] * (xs - A_bg[0, 2]) + inv[0, 1] * (ys - A_bg[1, 2])
        y0 = inv[1, 0] * (xs - A_bg[0, 2]) + inv[1, 1] * (ys - A_bg[1, 2])
        bg = Layer(bg.rgb, bg.alpha, np.clip(a + gx * x0 + gy * y0, 0, 1).astype(np.float32), name=bg.name)
    bg_max = float(bg.disparity.max())
    out, maps, depths = [], [], []
    for i, layer in enumerate(layers[:-1]):
        d, A = subject_motion(spec, clip, k, i, bg_max, margin)
        moved = _warp(layer, A)
        out.append(
            moved if moved is layer else Layer(moved.rgb, moved.alpha, np.full((H, W), d, np.float32), name=layer.name)
        )
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
    m, cx, cy = clip.magnification(k), w / 2, h / 2
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    px, py = (xs - cx) / m + cx, (ys - cy) / m + cy
    d = surface_hit(layer.disparity, px, py, -tx, -ty)
    # cv2 reads pixel j's centre at index j
    mx, my = (px - tx * d - 0.5).astype(np.float32), (py - ty * d - 0.5).astype(np.float32)
    out = cv2.remap(_premultiplied(layer), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _resampled(out, np.clip(d, 0, 1).astype(np.float32), layer.name)


def subject_motion(spec, clip: ClipDraw, k: int, i: int, bg_max: float, margin: float) -> tuple[float, np.ndarray]:
    """Foreground i at frame k: its disparity (linear from d0 to d1 = d0·ρ, kept ``margin`` nearer than the
    background's nearest point ``bg_max`` and at most 1) and the affine map from its frame-0 placement (scaled by
    d/d0 about its centre, then moved by v·k + a·k²/2 and the camera's parallax τ·d, then the zoom)."""
    W, H = spec.frame
    fg = spec.foregrounds[i]
    tx, ty = clip.camera[0] * k, clip.camera[1] * k
    d0 = fg.disparity
    d1 = min(max(d0 * clip.depth_ratio[i], min(bg_max + margin, 1.0)), 1.0)
    d = d0 + (d1 - d0) * k / max(clip.frames - 1, 1)
    (vx, vy), (ax, ay) = clip.velocity[i], clip.accel[i]
    cx, cy = fg.center[0] * W, fg.center[1] * H
    dx = vx * k + 0.5 * ax * k * k + tx * d
    dy = vy * k + 0.5 * ay * k * k + ty * d
    m = d / d0
    A = np.array([[m, 0.0, cx - m * cx + dx], [0.0, m, cy - m * cy + dy]])
    return d, (A if clip.zoom == 1.0 else compose(zoom_map(clip, k, spec.frame), A))


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
