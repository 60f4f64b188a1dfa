"""The project's one PSNR, shared by the evaluation (8-bit images, peak 255), training's validation (RGB in [0, 1])
and the renderer's benchmarks and tests (linear renders in [0, 1])."""

from __future__ import annotations

import numpy as np


def psnr_from_mse(mse, peak: float = 255.0):
    """10·log10(peak² / MSE), +inf for a zero MSE; ``mse`` a float, a NumPy array or a torch tensor (elementwise)."""
    if type(mse).__module__.startswith("torch"):
        import torch

        return 10 * torch.log10(peak**2 / mse.clamp_min(1e-30))
    mse = np.asarray(mse, np.float64)
    with np.errstate(divide="ignore"):
        out = np.where(mse == 0, np.inf, 10 * np.log10(peak**2 / np.where(mse == 0, 1.0, mse)))
    return float(out) if out.ndim == 0 else out


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR of two arrays of the same shape (float64 arithmetic), peak 1 by default (images in [0, 1])."""
    return psnr_from_mse(float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)), peak)
