"""Scene layers, their validation, and the colour transfer between sRGB-encoded and linear light.

A :class:`Layer` is one matted plane of the scene: straight (not premultiplied) sRGB-encoded colour, an alpha
matte and a disparity map. The renderer never looks up a layer's disparity at the output pixel; it classifies
each layer's disparity field once (:func:`layer_geometry`) so that a ray can be intersected with it exactly:

* ``constant``: a fronto-parallel plane, d(x, y) = a;
* ``plane``: a tilted plane, d(x, y) = a + gx·x + gy·y with pixel centres at (j + 0.5, i + 0.5);
* ``general``: any other field (a single RGBD photo), intersected by marching along the ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Geometry kinds understood by the kernels (see renderer/kernels.py).
GEOM_CONSTANT = 0
GEOM_PLANE = 1
GEOM_GENERAL = 2
GEOM_NAMES = {GEOM_CONSTANT: "constant", GEOM_PLANE: "plane", GEOM_GENERAL: "general"}

# A disparity field whose least-squares plane fits within this tolerance is treated as that exact plane.
PLANE_TOLERANCE = 1e-5


def _check_array(name: str, value, shape_desc: str, ndim: int, last: int | None = None) -> np.ndarray:
    """``value`` checked, as the layer's own read-only float32 copy (one copy: a later write into the caller's
    array cannot bring a NaN or an out-of-range value to the render)."""
    arr = np.asarray(value)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name}: expected a float array in [0, 1], got dtype {arr.dtype}")
    if arr.ndim != ndim or (last is not None and arr.shape[-1] != last):
        raise ValueError(f"{name}: expected shape {shape_desc}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array of shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name}: {int((~finite).sum())} non-finite value(s) (NaN or inf), first at index {tuple(bad)}"
        )
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name}: values must lie in [0, 1], got range [{lo:.6g}, {hi:.6g}]")
    own = np.array(arr, dtype=np.float32)
    own.flags.writeable = False
    return own


@dataclass(frozen=True, eq=False)
class Layer:
    """One matted layer of a scene.

    Args:
        rgb: H×W×3 float32 in [0, 1], straight (not premultiplied) colour, sRGB-encoded, RGB channel order.
        alpha: H×W float32 in [0, 1], coverage of the layer (1 = opaque).
        disparity: H×W float32 in [0, 1], larger = nearer. May vary per pixel (tilted plane, RGBD photo).
        name: optional label used in error messages and render reports.

    Raises:
        TypeError / ValueError naming the array and the problem (dtype, shape mismatch, NaN, out of range).
    """

    rgb: np.ndarray
    alpha: np.ndarray
    disparity: np.ndarray
    name: str = ""
    geometry: tuple = field(init=False, repr=False)

    def __post_init__(self):
        label = f"layer {self.name!r}" if self.name else "layer"
        rgb = _check_array(f"{label}.rgb", self.rgb, "H×W×3", 3, 3)
        h, w = rgb.shape[:2]
        alpha = _check_array(f"{label}.alpha", self.alpha, "H×W", 2)
        disparity = _check_array(f"{label}.disparity", self.disparity, "H×W", 2)
        for nm, arr in (("alpha", alpha), ("disparity", disparity)):
            if arr.shape != (h, w):
                raise ValueError(f"{label}.{nm}: shape {arr.shape} does not match rgb's {(h, w)}")
        object.__setattr__(self, "rgb", rgb)  # the layer's own read-only copies (_check_array)
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "disparity", disparity)
        object.__setattr__(self, "geometry", layer_geometry(disparity))

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape

    @property
    def geometry_kind(self) -> str:
        return GEOM_NAMES[self.geometry[0]]


def layer_geometry(disparity: np.ndarray) -> tuple[int, tuple[float, float, float], tuple[float, float]]:
    """Classify a disparity field H×W (float32, [0, 1]) as constant, plane or general.

    Returns ``(kind, (a, gx, gy), (d_min, d_max))`` with d(x, y) = a + gx·x + gy·y for a plane, where the
    centre of pixel (row i, column j) is (x, y) = (j + 0.5, i + 0.5).
    """
    d = disparity.astype(np.float64)
    lo, hi = float(d.min()), float(d.max())
    if hi - lo <= 1e-7:
        return GEOM_CONSTANT, (float(d.mean()), 0.0, 0.0), (lo, hi)
    h, w = d.shape
    ys, xs = np.mgrid[0:h, 0:w]
    design = np.stack([np.ones(d.size), xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1)
    coef, *_ = np.linalg.lstsq(design, d.ravel(), rcond=None)
    residual = np.abs(design @ coef - d.ravel()).max()
    if residual <= PLANE_TOLERANCE:
        return GEOM_PLANE, (float(coef[0]), float(coef[1]), float(coef[2])), (lo, hi)
    return GEOM_GENERAL, (0.0, 0.0, 0.0), (lo, hi)


def check_layers(layers) -> list[Layer]:
    """Validate a non-empty sequence of Layers of one size; returns it as a list."""
    layers = list(layers)
    if not layers:
        raise ValueError("layers: the layer list is empty; give at least one Layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"layers[{i}]: expected renderer.Layer, got {type(layer).__name__}")
    shape = layers[0].shape
    for i, layer in enumerate(layers):
        if layer.shape != shape:
            raise ValueError(f"layers[{i}]: size {layer.shape} differs from layers[0]'s {shape}")
    return layers


# ----------------------------------------------------------------------------------------------------------
# Colour transfer: sRGB-encoded <-> linear light
# ----------------------------------------------------------------------------------------------------------


def check_gamma(gamma) -> float | str:
    """``gamma`` is a positive float (a pure power law; 1.0 means the input is already linear) or ``"srgb"``."""
    if isinstance(gamma, str):
        if gamma != "srgb":
            raise ValueError(f"gamma: expected a positive number or 'srgb', got {gamma!r}")
        return gamma
    g = float(gamma)
    if not np.isfinite(g) or g <= 0:
        raise ValueError(f"gamma: must be a positive finite number or 'srgb', got {gamma!r}")
    return g


def to_linear(encoded: np.ndarray, gamma: float | str) -> np.ndarray:
    """Encoded values in [0, 1] -> linear light (float64). ``gamma='srgb'`` applies the IEC 61966-2-1 curve."""
    x = np.asarray(encoded, dtype=np.float64)
    if gamma == "srgb":
        return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    if gamma == 1.0:
        return x
    return x**gamma


def from_linear(linear: np.ndarray, gamma: float | str) -> np.ndarray:
    """Linear light (>= 0) -> encoded values (float64), inverse of :func:`to_linear`."""
    x = np.maximum(np.asarray(linear, dtype=np.float64), 0.0)
    if gamma == "srgb":
        return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)
    if gamma == 1.0:
        return x
    return x ** (1.0 / gamma)
