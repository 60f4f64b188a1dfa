"""The inference path that model.infer and model.evaluate share: which depth network and which weights a run uses,
photo -> disparity, photo + disparity -> bokeh through the network in blended tiles, and the classical baseline
(our ray tracer on one RGBD layer) in bands."""

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
def run_tiled(
    model, lq: torch.Tensor, defocus: torch.Tensor, mask: torch.Tensor | None, tile: int, overlap: int = 64
) -> torch.Tensor:
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
        out[y0:y1] = render_bokeh([layer], K, d_f)[y0 - a : y1 - a]
    return out


def depth_folder(weights=None, depth_weights=None, cfg=None) -> str | None:
    """The Depth Anything folder a run uses: ``depth_weights`` when given, else the one the trained ``weights``
    record (their model.yaml's ``depth``), else the model config ``cfg``'s, else None (a random network: its
    disparity is meaningless)."""
    if depth_weights:
        return str(depth_weights)
    if weights:
        from .network import trained_config

        return trained_config(weights).depth
    return cfg.depth if cfg is not None else None


def load_model(weights=None, config: str = "tiny"):
    """Trained MagicBokeh weights, LoRA fused, for inference; without ``weights``, the untrained model of
    ``config`` (a plumbing check: its output is not bokeh)."""
    from .config import ModelConfig
    from .network import MagicBokeh, load_trained

    if weights:
        model = load_trained(weights).eval()
        model.fuse()
        return model
    return MagicBokeh(ModelConfig.from_yaml(config)).eval()


def load_estimator(cfg, folder):
    """The depth network of the model config ``cfg`` (its size and input resolution) with the weights in ``folder``
    (see :func:`depth_folder`; None: random)."""
    from .depthnet import DepthEstimator, load_depth_model

    return DepthEstimator(load_depth_model(cfg.depth_size, folder), cfg.depth_input).eval()


def estimate_disparity(estimator, rgb: np.ndarray) -> np.ndarray:
    """H×W disparity in [0, 1] (larger = nearer) of an H×W×3 image in [0, 1]."""
    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]
        return estimator(t)[0, 0].numpy()


def k_max_scale(K: float, k_max: float) -> float:
    """The scale an image is rendered at by a model whose defocus map is normalised by ``k_max``: 1 up to k_max;
    past it k_max / K, the mapping the trainer reads data built past k_max with (model.data.data_scale)."""
    return 1.0 if K <= k_max else float(k_max) / K


def render_model(model, rgb: np.ndarray, disp: np.ndarray, K: float, d_f: float, overlap: int = 64) -> np.ndarray:
    """The network's bokeh of an H×W×3 image in [0, 1] given its disparity, K and the focus disparity: the defocus
    map and focus mask, then one step over blended tiles. H×W×3 float32 in [0, 1]. A K past the model's k_max is
    taken with the trainer's mapping: the image and its disparity downscaled by k_max / K (area filter), rendered at
    the K that scale gives, and the result brought back to H×W (bicubic)."""
    from .conditioning import defocus_and_mask

    cfg = model.cfg
    scale = k_max_scale(K, cfg.k_max)
    if scale < 1.0:
        import cv2

        h, w = rgb.shape[:2]
        sw, sh = max(8, round(w * scale)), max(8, round(h * scale))
        small = render_model(
            model,
            cv2.resize(np.asarray(rgb, np.float32), (sw, sh), interpolation=cv2.INTER_AREA),
            cv2.resize(np.asarray(disp, np.float32), (sw, sh), interpolation=cv2.INTER_AREA),
            min(K * sw / w, cfg.k_max),
            d_f,
            overlap,
        )
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    defocus, mask = defocus_and_mask(disp, K, d_f, cfg.k_max, cfg.focus_radius)
    lq = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None] * 2 - 1
    pred = run_tiled(
        model, lq, torch.from_numpy(defocus)[None, None], torch.from_numpy(mask)[None, None], cfg.resolution, overlap
    )
    return ((pred[0].permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)
