"""Thin-lens cameras in millimetres and metres, and their exact map to render_bokeh's (K, d_f).

A thin lens of focal length f (mm) and f-number N, focused at distance z_f, images a point at distance z as a
disk (the circle of confusion) of diameter f²·|z − z_f| / (N·z·(z_f − f)) on the sensor. On an image W px wide
from a sensor S mm wide (pixel pitch p = S/W mm) its radius in pixels is

    r = K_m · |1/z − 1/z_f|,   K_m = f²·z_f / (2·N·p·(z_f − f))   (f, p, z_f in mm; K_m / 1000 in px·m, z in m).

With the layer API's disparity d = z_near/z (z_near: the nearest distance of the scene, d in (0, 1]), this is
exactly render_bokeh's model r = K·|d − d_f| with

    K = K_m / z_near,   d_f = z_near / z_f.

Worked example: 85 mm at f/1.4 on a 36 mm sensor imaged at 1920 px, focused at 3 m: K_m = 141.6 px·m, and a
point at 5 m images as a disk of radius 141.6·|1/5 − 1/3| = 18.9 px.

Digital zoom by a factor Z is a centre crop of the sensor (S/Z mm wide) resized to W px: the pitch in output
pixels is S/(Z·W), so the blur in output pixels grows by Z while the optics stay the same. The 35-mm equivalent
focal length is f·Z·36/S (the crop factor measured on the sensor's width).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

FULL_FRAME_WIDTH_MM = 36.0


@dataclass(frozen=True)
class Camera:
    """A thin-lens camera: focal length (mm), f-number, sensor width (mm) and digital zoom (a centre crop, ≥ 1).
    ``f_number`` = inf is a pinhole (no blur)."""

    focal_length_mm: float
    f_number: float
    sensor_width_mm: float
    zoom: float = 1.0
    name: str = ""

    def __post_init__(self):
        for field in ("focal_length_mm", "f_number", "sensor_width_mm"):
            v = getattr(self, field)
            if not v > 0 or (math.isinf(v) and field != "f_number"):  # f/inf: a pinhole
                raise ValueError(f"camera {self.name or ''}: {field} must be > 0 (finite but the f-number), got {v!r}")
        if not self.zoom >= 1.0 or math.isinf(self.zoom):
            raise ValueError(f"camera {self.name or ''}: zoom must be a finite number >= 1, got {self.zoom!r}")

    @property
    def crop_factor(self) -> float:
        """36 mm over the sensor width (after the digital zoom's crop)."""
        return FULL_FRAME_WIDTH_MM * self.zoom / self.sensor_width_mm

    @property
    def equivalent_focal_length_mm(self) -> float:
        """The 35-mm equivalent focal length (the field of view's), zoom included."""
        return self.focal_length_mm * self.crop_factor

    def pitch_mm(self, width_px: int) -> float:
        """Sensor millimetres per output pixel of an image ``width_px`` wide (the zoom's crop included)."""
        return self.sensor_width_mm / (self.zoom * width_px)

    def k_metric(self, focus_distance_m: float, width_px: int) -> float:
        """K_m in px·m: the blur radius in pixels of a point at distance z is K_m·|1/z − 1/z_f| (z in metres)."""
        f = self.focal_length_mm
        zf = focus_distance_m * 1000.0
        if math.isinf(zf):  # focused at infinity: the limit f² / (2·N·p)
            n = self.f_number
            return 0.0 if math.isinf(n) else f * f / (2.0 * n * self.pitch_mm(width_px)) / 1000.0
        if not zf > f:
            raise ValueError(
                f"camera {self.name or ''}: focus distance {focus_distance_m:g} m is not beyond the "
                f"focal length {f:g} mm"
            )
        if math.isinf(self.f_number):
            return 0.0
        return f * f * zf / (2.0 * self.f_number * self.pitch_mm(width_px) * (zf - f)) / 1000.0

    def blur_radius_px(self, distance_m: float, focus_distance_m: float, width_px: int) -> float:
        """Radius in pixels of the disk a point at ``distance_m`` images as (inf: a point at infinity)."""
        return self.k_metric(focus_distance_m, width_px) * abs(1.0 / distance_m - 1.0 / focus_distance_m)

    def render_params(self, focus_distance_m: float, z_near_m: float, width_px: int) -> tuple[float, float]:
        """(K, d_f) of render_bokeh for disparities d = z_near/z: K = K_m/z_near, d_f = z_near/z_f."""
        if not 0 < z_near_m <= focus_distance_m or math.isinf(z_near_m):
            raise ValueError(f"z_near {z_near_m!r} m: must be in (0, focus distance {focus_distance_m:g} m]")
        return self.k_metric(focus_distance_m, width_px) / z_near_m, z_near_m / focus_distance_m

    def with_zoom(self, zoom: float) -> "Camera":
        return replace(self, zoom=float(zoom))


def f_number_for(
    K: float,
    z_near_m: float,
    focus_distance_m: float,
    focal_length_mm: float,
    sensor_width_mm: float,
    width_px: int,
    zoom: float = 1.0,
) -> float:
    """The f-number that gives render_bokeh's blur strength ``K`` (for d = z_near/z) with this lens, sensor and
    focus: N = f²·z_f / (2·p·(z_f − f)·K·z_near) (inf for K = 0)."""
    if K < 0:
        raise ValueError(f"K must be >= 0, got {K}")
    if K == 0:
        return math.inf
    one = Camera(focal_length_mm, 1.0, sensor_width_mm, zoom)  # K_m scales as 1/N
    return one.k_metric(focus_distance_m, width_px) / (K * z_near_m)


def depth_from_disparity(disp, z_near_m: float):
    """Metric depth (m) from a sample's normalised disparity d = z_near/z: z = z_near/d (d = 0: infinity)."""
    import numpy as np

    d = np.asarray(disp, np.float64)
    with np.errstate(divide="ignore"):
        return np.where(d > 0, z_near_m / np.maximum(d, 1e-300), np.inf)


# Named cameras; each value's source in the comment.
PRESETS = {
    # a full-frame body (36 × 24 mm) with the common fast primes
    "fullframe_50mm_f1.8": Camera(50.0, 1.8, 36.0, name="fullframe_50mm_f1.8"),
    "fullframe_85mm_f1.4": Camera(85.0, 1.4, 36.0, name="fullframe_85mm_f1.4"),
    # EBB! (Ignatov et al., "Rendering Natural Camera Bokeh Effect with Deep Learning", CVPRW 2020): Canon 7D with
    # a Canon EF 50mm f/1.8 STM; the 7D's APS-C sensor is 22.3 × 14.9 mm (Canon's specification)
    "ebb_canon7d_50mm_f1.8": Camera(50.0, 1.8, 22.3, name="ebb_canon7d_50mm_f1.8"),
    # a phone main camera: iPhone 14 Pro's 24 mm-equivalent wide camera, 6.86 mm f/1.78 on a 1/1.28" sensor
    # (≈ 9.8 × 7.3 mm) (Apple's technical specifications; sensor size from the type designation)
    "phone_main": Camera(6.86, 1.78, 9.8, name="phone_main"),
    # a phone telephoto (the and MagicBokeh's high-zoom phone): ≈ 9 mm f/2.8 on a ≈ 4.2 mm-wide sensor
    # (≈ 77 mm equivalent; e.g. iPhone 13 Pro's 3× camera); digital zoom 1–10× on top (with_zoom)
    "phone_tele": Camera(9.0, 2.8, 4.2, name="phone_tele"),
}


def preset(name: str) -> Camera:
    """A named camera (:data:`PRESETS`); a ValueError listing them otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"camera {name!r}: unknown; presets: {', '.join(sorted(PRESETS))}") from None
