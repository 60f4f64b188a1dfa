"""The synthetic protocol's stratified scores: PSNR and SSIM per blur-radius bin and in the occlusion band."""

from __future__ import annotations

import numpy as np

from .. import iqa
from .shared import BINS, Item


def strata(item: Item, se: np.ndarray, smap: np.ndarray) -> dict:
    """PSNR/SSIM and pixel counts per blur-radius bin and in the occlusion band (needs ground-truth disparity).

    r = K·|d − d_f| per pixel. The occlusion band: pixels within the blur radius of a disparity discontinuity,
    where a discontinuity is a pair of neighbouring pixels whose blur radii differ by more than 1 px (the
    renderer's layers decide what is seen there); the radius used is the larger of the pixel's own and the
    discontinuity's."""
    if item.disp is None:
        return {}
    r = (
        item.K
        * np.abs(item.disp.astype(np.float64) - (item.focus_disparity if item.focus_disparity is not None else 0.0))
    ).astype(np.float64)
    out = {}
    for label, lo, hi in BINS:
        sel = (r > lo) & (r <= hi) if lo > 0 else (r <= hi)
        out.update(_stratum(label, sel, se, smap))
    out.update(_stratum("occlusion", occlusion_band(r), se, smap))
    return out


def occlusion_band(r: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    edge = np.zeros(r.shape, bool)
    dy, dx = np.abs(np.diff(r, axis=0)) > 1.0, np.abs(np.diff(r, axis=1)) > 1.0
    edge[:-1] |= dy
    edge[1:] |= dy
    edge[:, :-1] |= dx
    edge[:, 1:] |= dx
    if not edge.any():
        return edge
    r_edge = np.where(edge, ndimage.maximum_filter(r, size=3), 0.0)
    dist, (iy, ix) = ndimage.distance_transform_edt(~edge, return_indices=True)
    return dist <= np.maximum(r, r_edge[iy, ix])


def _stratum(label: str, sel: np.ndarray, se: np.ndarray, smap: np.ndarray) -> dict:
    n = int(sel.sum())
    return {
        f"px@{label}": n,
        f"psnr@{label}": iqa.psnr_from_se(se[sel]) if n else float("nan"),
        f"ssim@{label}": float(np.nanmean(smap[sel])) if n and not np.isnan(smap[sel]).all() else float("nan"),
    }
