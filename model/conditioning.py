"""The model's conditioning from a disparity map and the focus settings (shared by training and inference)."""

from __future__ import annotations

import numpy as np
import torch

from common.limits import MAX_K


def defocus_and_mask(disp, K: float, focus_disparity: float, k_max: float = MAX_K, focus_radius: float = 1.0):
    """Disparity H×W (numpy or torch, values in [0, 1]) -> (defocus map r / K_max, focus mask), same type.
    r = K·|d − d_f| is the blur radius in pixels (the renderer's thin-lens disk); the focus mask is 1 where
    r ≤ ``focus_radius`` (the in-focus region of the focus-aware mask attention)."""
    if not 0 <= K <= k_max:
        raise ValueError(f"K: in [0, {k_max}], got {K}")
    r = K * abs(disp - focus_disparity)
    if isinstance(r, torch.Tensor):
        return r / k_max, (r <= focus_radius).to(r.dtype)
    r = np.asarray(r, np.float32)
    return r / np.float32(k_max), (r <= focus_radius).astype(np.float32)


def focus_at(disp: np.ndarray, x: int, y: int, window: int = 9) -> float:
    """Focus disparity from a pixel: the median disparity in a ``window``² box around (x, y)."""
    h, w = disp.shape
    if not (0 <= x < w and 0 <= y < h):
        raise ValueError(f"focus point ({x}, {y}) outside the {w}×{h} image")
    r = window // 2
    return float(np.median(disp[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1]))
