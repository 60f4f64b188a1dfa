"""Render bokeh from a real photograph with real disparity: the Middlebury "motorcycle" stereo pair that
scikit-image ships (left view + ground-truth disparity), as one RGBD layer.

    python -m renderer.demo [--out DIR] [--scale 0.5]

Writes one PNG per (focus, K, aperture) setting, the disparity map, and ``contact_sheet.png``, and prints where.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .layers import Layer
from .render import composite, render_bokeh

# (name, focus: "near" | "far", K, aperture)
SETTINGS = [
    ("near_k8_circle", "near", 8.0, "circle"),
    ("near_k16_circle", "near", 16.0, "circle"),
    ("far_k16_circle", "far", 16.0, "circle"),
    ("near_k16_hexagon", "near", 16.0, "hexagon"),
    ("far_k16_cateye", "far", 16.0, "cateye"),
]


def middlebury_layer(scale: float) -> tuple[Layer, dict]:
    """The motorcycle left view (sRGB) with its disparity, holes filled, normalised to [0, 1], as a Layer."""
    from skimage import data

    left, _, disp = data.stereo_motorcycle()
    valid = np.isfinite(disp)
    lo, hi = float(disp[valid].min()), float(disp[valid].max())
    norm = np.zeros(disp.shape, np.float32)
    norm[valid] = (disp[valid] - lo) / (hi - lo)
    # Occlusion holes: fill from the surrounding valid disparity (Telea inpainting on 16 bits).
    holes = (~valid).astype(np.uint8)
    norm16 = np.round(norm * 65535).astype(np.uint16)
    filled = cv2.inpaint(norm16, holes, 5, cv2.INPAINT_TELEA).astype(np.float32) / 65535.0
    rgb = left.astype(np.float32) / 255.0
    if scale != 1.0:
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        rgb = np.clip(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), 0, 1)
        filled = np.clip(cv2.resize(filled, size, interpolation=cv2.INTER_AREA), 0, 1)
    meta = {
        "source": "scikit-image data.stereo_motorcycle (Middlebury 2014, CC BY)",
        "disparity_px_range": [lo, hi],
        "hole_fraction": float((~valid).mean()),
        "scale": scale,
    }
    return Layer(rgb, np.ones(filled.shape, np.float32), filled, name="motorcycle"), meta


def _save(path: Path, image: np.ndarray) -> None:
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bokeh_demo"), help="output folder (created)")
    p.add_argument("--scale", type=float, default=0.5, help="resize factor of the 741×500 photo (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    return p.parse_args(argv)


def main(args: argparse.Namespace) -> Path:
    args.out.mkdir(parents=True, exist_ok=True)
    layer, meta = middlebury_layer(args.scale)
    d = layer.disparity
    focus = {"near": float(np.percentile(d, 95)), "far": float(np.percentile(d, 5))}
    _save(args.out / "all_in_focus.png", composite([layer]))
    import matplotlib

    cmap = matplotlib.colormaps["turbo"]
    _save(args.out / "disparity.png", cmap(d)[..., :3])
    tiles, report = [composite([layer])], {"scene": meta, "renders": []}
    for i, (name, where, K, aperture) in enumerate(SETTINGS, 1):
        image, info = render_bokeh([layer], K, focus[where], aperture=aperture, seed=args.seed, return_info=True)
        _save(args.out / f"{name}.png", image)
        tiles.append(image)
        report["renders"].append(
            {"file": f"{name}.png", **{k: info[k] for k in ("K", "focus_disparity", "aperture", "mean_spp", "seconds")}}
        )
        print(
            f"[{i}/{len(SETTINGS)}] {name}: focus {where} (d_f={focus[where]:.3f}) K={K:g} {aperture}: "
            f"{info['seconds']:.1f} s, {info['mean_spp']:.0f} samples/px",
            flush=True,
        )
    sheet = np.concatenate([np.concatenate(tiles[:3], axis=1), np.concatenate(tiles[3:], axis=1)], axis=0)
    _save(args.out / "contact_sheet.png", sheet)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print(
        f"wrote {len(SETTINGS)} bokeh renders, all_in_focus.png, disparity.png and contact_sheet.png "
        f"to {args.out.resolve()}"
    )
    return args.out


def cli() -> None:
    from common.cli import run

    t0 = time.perf_counter()
    run(main, parse_args())
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    cli()
