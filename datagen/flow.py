"""Ground-truth optical flow of a clip's all-in-focus view (``sequence.flow``: flow.NNN.npy, frame k to k + 1).

Each pixel follows the nearest layer whose alpha there is at least 1/2. A subject's motion between frames is one
affine map (datagen.clips.subject_motion); the background's is given per pixel by the disparity it shows (a plane
or a depth map). Both are exact, so the flow is ground truth, not an estimate.
"""

from __future__ import annotations

import cv2
import numpy as np

from renderer import Layer


def compose(B: np.ndarray, A: np.ndarray) -> np.ndarray:
    """The 2×3 affine map x -> B(A(x))."""
    return B[:, :2] @ A + np.hstack([np.zeros((2, 2)), B[:, 2:]])


def visible_layer(layers: list[Layer]) -> np.ndarray:
    """H×W int8: per pixel, the nearest layer whose alpha there is at least 1/2 (ties: list order; -1 where none),
    the surface that the pinhole view's flow follows."""
    key = np.stack([np.where(layer.alpha >= 0.5, layer.disparity, -1.0) for layer in layers])
    front = np.argmax(key, axis=0).astype(np.int8)
    front[key.max(axis=0) < 0] = -1
    return front


def background_flow(clip, k: int, disparity: np.ndarray) -> np.ndarray:
    """H×W×2: the background's flow from frame k to k + 1, exact for a plane or a depth map: the point seen at p
    with disparity d (frame k's background disparity there) is x + k·τ·d = Z_k⁻¹(p) before the zoom, and
    Z_k+1(Z_k⁻¹(p) + τ·d) in the next frame (τ: the camera's move per frame, Z: the zoom)."""
    h, w = disparity.shape
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    cx, cy = w / 2, h / 2
    m0, m1 = clip.magnification(k), clip.magnification(k + 1)
    d = disparity.astype(np.float64)
    qx = ((xs - cx) / m0 + clip.camera[0] * d) * m1 + cx
    qy = ((ys - cy) / m0 + clip.camera[1] * d) * m1 + cy
    return np.stack([qx - xs, qy - ys], axis=-1)


def forward_flow(
    front: np.ndarray, maps: list[np.ndarray], next_maps: list[np.ndarray], fields: dict | None = None
) -> np.ndarray:
    """H×W×2 float32 (x, y) px: where the surface seen at each pixel centre of frame k is in frame k + 1, minus
    where it is now. ``front``: frame k's :func:`visible_layer`; ``maps``/``next_maps``: each layer's affine map
    from frame 0 at frames k and k + 1, so the layer's point at p moves to B·A⁻¹·p, exactly (0 where no layer);
    ``fields``: layer index -> its flow field (H×W×2), for a layer whose motion is not one affine map."""
    h, w = front.shape
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    p = np.stack([xs, ys, np.ones_like(xs)], axis=-1)
    flow = np.zeros((h, w, 2))
    for i, (A, B) in enumerate(zip(maps, next_maps)):
        sel = front == i
        if not sel.any():
            continue
        if fields and i in fields:
            flow[sel] = fields[i][sel]
            continue
        A3 = np.vstack([A, [0.0, 0.0, 1.0]])
        step = compose(B, np.linalg.inv(A3)[:2])  # frame k -> frame k + 1 for this layer
        q = p[sel] @ step.T
        flow[sel] = q - p[sel][:, :2]
    return flow.astype(np.float32)


def flow_image(flow: np.ndarray, top: float) -> np.ndarray:
    """H×W×3 uint8 picture of a flow field (H×W×2, px): direction as hue, speed as brightness, full brightness at
    speed ``top`` (a clip's fastest, so that its frames compare)."""
    speed = np.hypot(flow[..., 0], flow[..., 1])
    top = top or 1.0
    hsv = np.zeros(flow.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = ((np.degrees(np.arctan2(flow[..., 1], flow[..., 0])) % 360) / 2).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(speed / top * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
