"""Bokeh from one photo: depth -> defocus map -> single step -> image.

    python -m model.infer --image IN --out OUT.png (--focus X,Y | --focus-disparity D) --K 16 [--weights DIR]
    python -m model.infer ... --classical      # our ray-tracing renderer on the estimated depth (no model weights)

Images larger than the model's tile (512 for SD2.1) are processed in overlapping tiles blended with linear
ramps; depth, the focus disparity and the defocus map are computed once on the whole image.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .conditioning import defocus_and_mask, focus_at
from .config import ModelConfig
from .depth import DepthEstimator, load_depth_model

NO_WEIGHTS = ("NOTE: no trained MagicBokeh weights given (--weights DIR): running the UNTRAINED tiny random model. "
              "Its output is not a bokeh rendering. Train weights with `python -m model.train`, or use --classical "
              "for the ray-traced baseline.")
NO_DEPTH = ("NOTE: no Depth Anything V2 weights (--depth-weights DIR or `depth:` in the model config): the depth "
            "network has random weights and its disparity is meaningless. Pass --disparity FILE if you have one.")


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


def load_disparity(path, shape, out_shape=None) -> np.ndarray:
    """A disparity file of the input's ``shape`` normalised to [0, 1], resized to ``out_shape``."""
    path = Path(path)
    if path.suffix == ".npy":
        disp = np.load(path, allow_pickle=False).astype(np.float32)
    else:
        from common.images import load_alpha

        disp = load_alpha(path)
    if disp.shape != shape:
        raise ValueError(f"{path}: disparity is {disp.shape[1]}×{disp.shape[0]}, the image {shape[1]}×{shape[0]}")
    if not np.isfinite(disp).all():
        raise ValueError(f"{path}: disparity has NaN or infinite values")
    lo, hi = float(disp.min()), float(disp.max())
    disp = (disp - lo) / max(hi - lo, 1e-8)
    if out_shape is not None and out_shape != shape:
        disp = np.asarray(Image.fromarray(disp).resize(out_shape[::-1], Image.BILINEAR), np.float32)
    return disp


def _save(path: Path, rgb: np.ndarray) -> None:
    from common.images import to_uint8

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(rgb)).save(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.infer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", required=True, help="input photo (any PIL-readable RGB image)")
    p.add_argument("--out", required=True, help="output image (PNG); the disparity goes beside it (*_disparity.png)")
    focus = p.add_mutually_exclusive_group(required=True)
    focus.add_argument("--focus", help="X,Y: focus on the surface at this pixel of the input image")
    focus.add_argument("--focus-disparity", type=float, help="focus disparity d_f in [0, 1] (1 = nearest)")
    p.add_argument("--K", type=float, required=True, help="blur strength in [0, 32]: radius K·|d − d_f| px")
    p.add_argument("--weights", help="folder of trained MagicBokeh weights (model.yaml, lora_*.safetensors, ...)")
    p.add_argument("--config", default="tiny", help="model config used without --weights (default: tiny)")
    p.add_argument("--depth-weights", help="local Depth Anything V2 folder (overrides the model config's)")
    p.add_argument("--disparity", help="use this disparity (.npy or grey image, larger = nearer) instead of depth")
    p.add_argument("--upscale", type=float, default=1.0, help="resize the input by this factor first (LQ -> HQ)")
    p.add_argument("--classical", action="store_true", help="render with bokehgen's ray tracer on the disparity")
    p.add_argument("--tile-overlap", type=int, default=64)
    args = p.parse_args(argv)
    t_start = time.perf_counter()

    from common.images import load_image

    image = Path(args.image)
    rgb, _ = load_image(image)  # names the file on bad input
    in_shape = rgb.shape[:2]
    if args.upscale != 1.0:
        if args.upscale <= 0:
            p.error("--upscale must be > 0")
        h, w = rgb.shape[:2]
        size = (max(8, round(w * args.upscale)), max(8, round(h * args.upscale)))
        rgb = np.asarray(Image.fromarray((rgb * 255).round().astype(np.uint8)).resize(size, Image.BICUBIC),
                         np.float32) / 255
    h, w = rgb.shape[:2]

    model = None
    if not args.classical:
        if args.weights:
            from .network import load_trained

            model = load_trained(args.weights).eval()
            model.fuse()
        else:
            print(NO_WEIGHTS)
            from .network import MagicBokeh

            model = MagicBokeh(ModelConfig.from_yaml(args.config)).eval()
    cfg = model.cfg if model is not None else ModelConfig.from_yaml(args.config)
    if not 0 <= args.K <= cfg.k_max:
        p.error(f"--K must be in [0, {cfg.k_max:g}]")

    t0 = time.perf_counter()
    if args.disparity:
        disp = load_disparity(args.disparity, in_shape, (h, w))
        depth_s = 0.0
    else:
        depth_dir = args.depth_weights or cfg.depth
        if depth_dir is None:
            print(NO_DEPTH)
        estimator = DepthEstimator(load_depth_model(cfg.depth_size, depth_dir), cfg.depth_input).eval()
        with torch.no_grad():
            disp = estimator(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0, 0].numpy()
        depth_s = time.perf_counter() - t0
    if args.focus:
        try:
            x, y = (int(v) for v in args.focus.split(","))
        except ValueError:
            p.error(f"--focus: X,Y in pixels expected, got {args.focus!r}")
        d_f = focus_at(disp, round(x * args.upscale), round(y * args.upscale))
    else:
        if not 0 <= args.focus_disparity <= 1:
            p.error("--focus-disparity must be in [0, 1]")
        d_f = args.focus_disparity

    t1 = time.perf_counter()
    if args.classical:
        from renderer import Layer, render_bokeh

        layer = Layer(rgb, np.ones((h, w), np.float32), disp)
        out = render_bokeh([layer], args.K, d_f)
        what = "ray-traced (classical)"
    else:
        defocus, mask = defocus_and_mask(disp, args.K, d_f, cfg.k_max, cfg.focus_radius)
        lq = torch.from_numpy(rgb).permute(2, 0, 1)[None] * 2 - 1
        pred = run_tiled(model, lq, torch.from_numpy(defocus)[None, None], torch.from_numpy(mask)[None, None],
                         cfg.resolution, args.tile_overlap)
        out = ((pred[0].permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)
        what = "MagicBokeh single step" + ("" if args.weights else " (untrained)")
    render_s = time.perf_counter() - t1

    out_path = Path(args.out)
    _save(out_path, out)
    disp_path = out_path.with_name(out_path.stem + "_disparity.png")
    Image.fromarray((disp * 65535).round().astype(np.uint16)).save(disp_path)
    total = time.perf_counter() - t_start
    print(f"{image} ({w}×{h}) -> {out_path}  [{what}, K={args.K:g}, d_f={d_f:.3f}]")
    print(f"time: depth {depth_s:.2f} s, bokeh {render_s:.2f} s, total {total:.2f} s; disparity -> {disp_path}")
    return 0


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
