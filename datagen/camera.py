"""Camera-true scenes (the ``camera:`` section of a build config; off unless ``target`` names a camera).

A scene is measured in metres: foregrounds at distances drawn from ``fg_distance_m``, the background spanning
distances drawn from ``bg_distance_m`` (uniform in inverse distance, so up to infinity). With z_near the scene's
nearest distance, disparity is d = z_near/z (the layer API's [0, 1]). The target camera (a large-sensor lens)
renders ``bokeh``; the input camera (a phone, with its digital zoom) renders the image that is degraded into
``lq``, both focused on the same drawn target; ``aif`` stays the pinhole image. K and d_f follow from the lens
(renderer/lens.py): K = K_m/z_near, d_f = z_near/z_f.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from renderer.lens import FULL_FRAME_WIDTH_MM, PRESETS, Camera

PINHOLE = "pinhole"
#: the largest digital zoom of an input camera (phones offer up to about 100×)
MAX_INPUT_ZOOM = 100.0

# the values each [low, high] range of the camera section may hold: (least, greatest, whether the least itself is
# allowed); checked whether or not the section is switched on
RANGE_BOUNDS = {
    "focal_length_range": (0.0, 2000.0, False),  # mm
    "f_number_range": (0.5, 64.0, True),  # the fastest lenses made are about f/0.7
    "sensor_width_range": (0.0, 100.0, False),  # mm: a phone's 5 mm to medium format's 54 mm
    "input_zoom_range": (1.0, MAX_INPUT_ZOOM, True),
    "fg_distance_m": (0.0, 10000.0, False),
}


@dataclass
class CameraConfig:
    """Which cameras and distances a camera-true build draws (README "Cameras")."""

    # the target camera: a preset name, a list of them (drawn with target_weights, alike when empty), or "ranges"
    # (focal length, f-number and sensor width drawn from the three ranges below); "" = off (the K-range recipe)
    target: str | list[str] = ""
    target_weights: list[float] = field(default_factory=list)
    focal_length_range: tuple[float, float] = (50.0, 135.0)
    f_number_range: tuple[float, float] = (1.4, 2.8)
    sensor_width_range: tuple[float, float] = (FULL_FRAME_WIDTH_MM, FULL_FRAME_WIDTH_MM)
    # the input camera (a preset, or "pinhole": the LQ is degraded from the all-in-focus image as in the K recipe)
    input: str = "phone_tele"
    input_zoom_range: tuple[float, float] = (1.0, 1.0)  # digital zoom of the input camera
    fg_distance_m: tuple[float, float] = (1.5, 4.0)
    bg_distance_m: tuple[float, float] = (6.0, math.inf)
    # refocus pairs: "same" (the input focused on the drawn target, as the target camera) or "other" (the input
    # camera focused on another drawn target: an input that is itself defocused elsewhere)
    input_focus: str = "same"

    @property
    def enabled(self) -> bool:
        return bool(self.targets())

    def targets(self) -> list[str]:
        return (
            [self.target]
            if isinstance(self.target, str) and self.target
            else list(self.target)
            if isinstance(self.target, list)
            else []
        )

    def __post_init__(self):
        names = self.targets()
        for name in names:
            if name != "ranges":
                _preset("target", name)
        if self.target_weights and (
            len(self.target_weights) != len(names) or min(self.target_weights) < 0 or sum(self.target_weights) <= 0
        ):
            raise ValueError(
                f"target_weights: {len(names)} non-negative weights (one per target), got {self.target_weights}"
            )
        if self.input != PINHOLE:
            _preset("input", self.input)
        if self.input_focus not in ("same", "other"):
            raise ValueError(f"input_focus: 'same' or 'other', got {self.input_focus!r}")
        if self.input_focus == "other" and self.input == PINHOLE:
            raise ValueError(
                "input_focus: 'other' needs an input camera with a lens (a pinhole is sharp wherever it focuses): "
                "set camera.input to a preset"
            )
        for name, (least, greatest, closed) in RANGE_BOUNDS.items():
            lo, hi = getattr(self, name)
            if not lo <= hi or not ((least <= lo) if closed else (least < lo)) or not hi <= greatest:
                raise ValueError(
                    f"{name}: [low, high] with low <= high, both in {'[' if closed else '('}{least:g}, "
                    f"{greatest:g}], got {[lo, hi]}"
                )
        lo, hi = self.bg_distance_m
        if not self.fg_distance_m[1] < lo <= hi:
            raise ValueError(
                f"bg_distance_m: [low, high] (high may be .inf) beyond the foregrounds' farthest "
                f"{self.fg_distance_m[1]:g} m, got {[lo, hi]}"
            )

    def max_k(self, size: int) -> float:
        """The largest K the target cameras can give at ``size`` px: K = K_m(z_f)/z_near is largest focused at the
        nearest distance (z_f = z_near = the nearest foreground distance), with the longest focal length, the
        smallest f-number and the narrowest sensor."""
        z = self.fg_distance_m[0]
        return max(cam.k_metric(z, size) / z for cam in self._extreme_targets())

    def check_k(self, size: int) -> None:
        """Refuse a camera range whose K (the target's) or K_input (the input camera's, at its largest zoom) at
        ``size`` px can exceed the renderer's largest blur radius (renderer.options.max_blur_radius): see
        :meth:`max_k`. (Above the model's K the trainer downscales the samples: model.data.)"""
        from renderer.options import max_blur_radius

        limit = max_blur_radius(size)
        z = self.fg_distance_m[0]
        for cam in self._extreme_targets():
            K = cam.k_metric(z, size) / z
            if K > limit:
                raise ValueError(
                    f"camera: {cam.name} focused at {z:g} m (camera.fg_distance_m's nearest) gives K = "
                    f"{K:.1f} at {size} px, above the renderer's largest blur radius {limit:g} px: a farther "
                    f"fg_distance_m, a larger f-number or a smaller size"
                )
        if self.input != PINHOLE:
            cam = PRESETS[self.input].with_zoom(self.input_zoom_range[1])
            K = cam.k_metric(z, size) / z
            if K > limit:
                raise ValueError(
                    f"camera.input_zoom_range: {self.input} at {self.input_zoom_range[1]:g}× zoom focused "
                    f"at {z:g} m gives the LQ's K_input = {K:.1f} at {size} px, above the renderer's "
                    f"largest blur radius {limit:g} px: a smaller zoom, a farther fg_distance_m or a smaller size"
                )

    def _extreme_targets(self) -> list[Camera]:
        out = []
        for name in self.targets():
            if name == "ranges":
                out.append(
                    Camera(
                        self.focal_length_range[1],
                        self.f_number_range[0],
                        self.sensor_width_range[0],
                        name=f"{self.focal_length_range[1]:g} mm f/{self.f_number_range[0]:g} on "
                        f"{self.sensor_width_range[0]:g} mm (the ranges' extreme)",
                    )
                )
            else:
                out.append(PRESETS[name])
        return out


@dataclass
class CameraDraw:
    """One sample's cameras and distances (the sample JSON's ``camera``)."""

    target: Camera
    input: Camera | None  # None: a pinhole
    z_near_m: float
    fg_distances_m: list
    bg_distances_m: tuple  # nearest, farthest (inf allowed)
    # a refocus pair's input focus: (target name, the two uniform numbers that pick its point); None: the target's
    input_focus: tuple | None = None

    def lens_k(self, focus_disparity: float, width_px: int) -> tuple[float, float, float]:
        """(z_f, K, K_input) focused at ``focus_disparity``: the focus distance z_f = z_near/d_f (inf at d_f = 0),
        and render_bokeh's K of the target and the input camera there (K = K_m(z_f)/z_near; 0 for a pinhole)."""
        z_f = self.z_near_m / focus_disparity if focus_disparity > 0 else math.inf
        K = self.target.k_metric(z_f, width_px) / self.z_near_m
        K_input = 0.0 if self.input is None else self.input.k_metric(z_f, width_px) / self.z_near_m
        return z_f, K, K_input

    def focus_record(self, target: str, xy, disparity: float) -> dict:
        """Where a camera focused, as the record's ``input_focus`` holds it: the target, its point, its disparity
        and its distance z_near/d (inf at d = 0)."""
        distance = self.z_near_m / disparity if disparity > 0 else math.inf
        return {"target": target, "xy": list(xy), "disparity": disparity, "distance_m": distance}

    def record(self, focus_distance_m: float, K: float, K_input: float, input_focus: dict | None = None) -> dict:
        """The sample JSON's ``camera``; ``input_focus``: where the input camera focused ({target, xy,
        disparity, distance_m}; None: a clip's frame record, whose input focuses with the target)."""
        t, i = self.target, self.input
        out = {
            "target": {
                "name": t.name,
                "focal_length_mm": t.focal_length_mm,
                "f_number": t.f_number,
                "sensor_width_mm": t.sensor_width_mm,
            },
            # a pinhole has no lens: its focal length, f-number and sensor are null
            "input": {
                "name": i.name if i else PINHOLE,
                "focal_length_mm": i.focal_length_mm if i else None,
                "f_number": i.f_number if i else None,
                "sensor_width_mm": i.sensor_width_mm if i else None,
                "zoom": i.zoom if i else 1.0,
            },
            "focus_distance_m": focus_distance_m,
            "z_near_m": self.z_near_m,
            "K_input": K_input,
            "K": K,
        }
        if input_focus is not None:
            out["input_focus"] = input_focus
        return out


def _preset(key: str, name) -> None:
    """A camera preset name of ``key`` (target, input), else a ValueError naming the key and the presets."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(
            f"{key}: {name!r} is not a camera preset; presets: {', '.join(sorted(PRESETS))}"
            + (", pinhole" if key == "input" else "")
            + (", ranges" if key == "target" else "")
        )


def camera_columns(camera: dict) -> dict:
    """The sample JSON's ``camera`` as flat samples.parquet columns (cam_*)."""
    out = {f"cam_target_{k}": v for k, v in camera["target"].items()}
    out.update({f"cam_input_{k}": v for k, v in camera["input"].items()})
    out.update({f"cam_{k}": camera[k] for k in ("focus_distance_m", "z_near_m", "K_input")})
    if "input_focus" in camera:
        out.update({f"cam_input_focus_{k}": camera["input_focus"][k] for k in ("target", "disparity", "distance_m")})
    return out


def draw_camera(spec, cfg: CameraConfig) -> CameraDraw:
    """Draw the cameras and the scene's distances for ``spec`` (a datagen.scenes.SceneSpec) from a generator of its
    own (seed, index, 3), and set the spec's disparities from them (d = z_near/z): the foregrounds', and the
    background's plane (its drawn tilt direction kept, every corner inside the range) or map range."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, spec.index, 3]))
    names = cfg.targets()
    probs = np.asarray(cfg.target_weights or [1.0] * len(names), np.float64)
    name = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    if name == "ranges":
        f, n, s = (float(rng.uniform(*r)) for r in (cfg.focal_length_range, cfg.f_number_range, cfg.sensor_width_range))
        target = Camera(f, n, s, name=f"{f:.1f} mm f/{n:.2f} on {s:.1f} mm")
    else:
        target = PRESETS[name]
    zoom = float(rng.uniform(*cfg.input_zoom_range))
    phone = None if cfg.input == PINHOLE else PRESETS[cfg.input].with_zoom(zoom)
    z_fg = [float(rng.uniform(*cfg.fg_distance_m)) for _ in spec.foregrounds]
    lo, hi = cfg.bg_distance_m
    inv = sorted(float(rng.uniform(0.0 if math.isinf(hi) else 1.0 / hi, 1.0 / lo)) for _ in range(2))
    z_bg = (1.0 / inv[1], math.inf if inv[0] == 0 else 1.0 / inv[0])
    z_near = min(z_fg + [z_bg[0]])
    for fg, z in zip(spec.foregrounds, z_fg):
        fg.disparity = z_near / z
    d_lo, d_hi = z_near * inv[0], z_near * inv[1]
    if spec.bg_model == "map":
        spec.bg_map_range = (d_lo, d_hi)
    else:
        W, H = spec.frame
        _, gx, gy = spec.bg_plane
        # the drawn tilt's direction (in the frame's fractions: gx = t·cos φ/W, gy = t·sin φ/H), rescaled so that
        # the plane spans [d_lo, d_hi] between the frame's extreme pixel centres
        phi = math.atan2(gy * H, gx * W) if (gx or gy) else 0.0
        cos, sin = math.cos(phi), math.sin(phi)
        t = (d_hi - d_lo) / max(abs(cos) * (W - 1) / W + abs(sin) * (H - 1) / H, 1e-12)
        gx, gy = t * cos / W, t * sin / H
        c = 0.5 * (d_lo + d_hi)
        spec.bg_plane = (c - gx * W / 2 - gy * H / 2, gx, gy)
    input_focus = None
    if cfg.input_focus == "other":  # drawn last: every draw above is the same with or without refocus pairs
        others = [f"fg{i}" for i in range(len(spec.foregrounds)) if f"fg{i}" != spec.focus_target]
        others += [] if spec.focus_target == "background" else ["background"]
        input_focus = (others[int(rng.integers(len(others)))], (float(rng.random()), float(rng.random())))
    return CameraDraw(target, phone, z_near, z_fg, z_bg, input_focus)
