"""The inference path that model.infer and model.evaluate share: the network over an image of any size in blended
tiles, and the classical baseline (our ray tracer on one RGBD layer) in bands."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _ramp(n: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    w = np.ones(n, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if not first:
            w[:overlap] = ramp
        if not last:
            w[-overlap:] = ramp[::-1]
    return w


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


@torch.no_grad()
def run_tiled(model, lq: torch.Tensor, defocus: torch.Tensor, mask: torch.Tensor | None, tile: int,
              overlap: int = 64) -> torch.Tensor:
    """``model`` over (1, 3, H, W) in [-1, 1] in ``tile``² tiles with ``overlap`` px blended; any H, W (a side
    smaller than a tile is padded by edge replication to a multiple of 8)."""
    _, _, h, w = lq.shape
    ph, pw = max(h, min(tile, -(-h // 8) * 8)), max(w, min(tile, -(-w // 8) * 8))
    pad = (0, pw - w, 0, ph - h)
    if any(pad):
        lq = F.pad(lq, pad, mode="replicate")
        defocus = F.pad(defocus, pad, mode="replicate")
        mask = None if mask is None else F.pad(mask, pad, mode="replicate")
    th, tw = min(tile, ph), min(tile, pw)
    ys, xs = _starts(ph, th, th - overlap), _starts(pw, tw, tw - overlap)
    out = torch.zeros(1, 3, ph, pw)
    weight = torch.zeros(1, 1, ph, pw)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            sl = (..., slice(y, y + th), slice(x, x + tw))
            m = None if mask is None else mask[sl]
            pred = model(lq[sl], defocus[sl], m).clamp(-1, 1)
            wy = _ramp(th, overlap if len(ys) > 1 else 0, i == 0, i == len(ys) - 1)
            wx = _ramp(tw, overlap if len(xs) > 1 else 0, j == 0, j == len(xs) - 1)
            wt = torch.from_numpy(np.outer(wy, wx))[None, None]
            out[sl] += pred * wt
            weight[sl] += wt
    return (out / weight)[..., :h, :w]


def render_classical(rgb: np.ndarray, disp: np.ndarray, K: float, d_f: float, band: int = 256) -> np.ndarray:
    """Our ray tracer on one RGBD layer (H×W×3 sRGB float32 in [0, 1], H×W disparity in [0, 1]), in horizontal
    bands with a progress bar: a band is rendered from the rows it needs (its own plus the largest blur radius
    above and below), so the result is the whole image's up to the renderer's aperture sampling pattern, which
    shifts with a pixel's position in the rendered array (~52 dB between the two on the test photo)."""
    from tqdm import tqdm

    from renderer import Layer, render_bokeh

    h, w = disp.shape
    margin = int(np.ceil(K * max(abs(float(disp.max()) - d_f), abs(float(disp.min()) - d_f)))) + 2
    out = np.empty((h, w, 3), np.float32)
    starts = list(range(0, h, band))
    for y0 in tqdm(starts, desc=f"ray tracing {w}×{h}", unit="band", disable=len(starts) == 1):
        y1 = min(h, y0 + band)
        a, b = max(0, y0 - margin), min(h, y1 + margin)
        layer = Layer(rgb[a:b], np.ones((b - a, w), np.float32), disp[a:b])
        out[y0:y1] = render_bokeh([layer], K, d_f)[y0 - a:y1 - a]
    return out
