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
from PIL import Image

from common.limits import MAX_K
from manifests.outdir import check_not_input

from .conditioning import focus_at
from .config import ModelConfig
from .depthnet import check_depth_folder
from .pipeline import depth_folder, estimate_disparity, load_estimator, load_model, render_classical, render_model

NO_WEIGHTS = ("NOTE: no trained MagicBokeh weights given (--weights DIR): running the UNTRAINED tiny random model. "
              "Its output is not a bokeh rendering. Train weights with `python -m model.train`, or use --classical "
              "for the ray-traced baseline.")
NO_DEPTH = ("NOTE: no Depth Anything V2 weights (--depth-weights DIR or `depth:` in the model config): the depth "
            "network has random weights and its disparity is meaningless. Pass --disparity FILE if you have one.")


def load_disparity(path, shape, out_shape=None) -> np.ndarray:
    """A disparity file of the input's ``shape`` normalised to [0, 1], resized to ``out_shape``."""
    from common.images import read_disparity

    disp = read_disparity(path)
    if disp.shape != shape:
        raise ValueError(f"{path}: disparity is {disp.shape[1]}×{disp.shape[0]}, the image {shape[1]}×{shape[0]}")
    lo, hi = float(disp.min()), float(disp.max())
    disp = (disp - lo) / max(hi - lo, 1e-8)
    if out_shape is not None and out_shape != shape:
        disp = np.asarray(Image.fromarray(disp).resize(out_shape[::-1], Image.BILINEAR), np.float32)
    return disp


def _save(path: Path, rgb: np.ndarray) -> None:
    from common.images import to_uint8

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(rgb)).save(path)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.infer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", required=True, help="input photo (any PIL-readable image; RGBA is composited on white)")
    p.add_argument("--out", required=True, help="output image (.png, .jpg, .tif, ...); the disparity goes beside it "
                                                "(*_disparity.png)")
    focus = p.add_mutually_exclusive_group(required=True)
    focus.add_argument("--focus", help="X,Y: focus on the surface at this pixel of the input image (0-based, "
                                       "inside the image)")
    focus.add_argument("--focus-disparity", type=float, help="focus disparity d_f in [0, 1] (1 = nearest)")
    p.add_argument("--K", type=float, required=True, help=f"blur strength in [0, {MAX_K:g}]: radius K·|d − d_f| px")
    p.add_argument("--weights", help="folder of trained MagicBokeh weights (model.yaml, lora_*.safetensors, ...)")
    p.add_argument("--config", default="tiny", help="model config used without --weights (default: tiny)")
    p.add_argument("--depth-weights", help="local Depth Anything V2 folder (overrides the model config's)")
    p.add_argument("--disparity", help="use this disparity (.npy or grey image, larger = nearer) instead of depth")
    p.add_argument("--upscale", type=float, default=1.0, help="resize the input by this factor first (LQ -> HQ)")
    p.add_argument("--classical", action="store_true", help="render with bokehgen's ray tracer on the disparity")
    p.add_argument("--tile-overlap", type=int, default=64, help="pixels by which the model's tiles overlap")
    # "--focus -5,10" would read as an option: join a value that starts with '-' to its flag
    argv = list(sys.argv[1:] if argv is None else argv)
    for i in range(len(argv) - 1):
        if argv[i] == "--focus" and argv[i + 1][:1] == "-" and argv[i + 1][1:2].isdigit():
            argv[i:i + 2] = [f"--focus={argv[i + 1]}", ""]
    args = p.parse_args([a for a in argv if a != ""])
    try:
        check_args(args)
    except ValueError as e:
        p.error(str(e))
    return args


def disparity_path(out) -> Path:
    """Where the disparity of the output ``out`` is written: beside it, NAME_disparity.png."""
    out = Path(out)
    return out.with_name(out.stem + "_disparity.png")


def check_args(args: argparse.Namespace) -> None:
    """Every argument checked before anything heavy runs (depth network, model, renderer); a ValueError names
    the argument. Fills ``args.focus_xy``."""
    image = Path(args.image)
    if not image.is_file():
        raise ValueError(f"--image {image}: no such file")
    out = Path(args.out)
    if out.suffix.lower() not in Image.registered_extensions():
        raise ValueError(f"--out {out}: unknown image extension {out.suffix!r}; use .png (or .jpg, .tif, .webp)")
    if out.exists() and out.is_dir():
        raise ValueError(f"--out {out}: is a folder; give a file name such as {out / 'bokeh.png'}")
    inputs = [args.image, args.disparity]
    check_not_input(out, inputs, "--out")  # never write over the photo or its disparity
    check_not_input(disparity_path(out), inputs, f"--out {out}: its disparity")
    if not 0 <= args.K <= MAX_K:
        raise ValueError(f"--K: in [0, {MAX_K:g}], got {args.K:g}")
    if not args.upscale > 0:
        raise ValueError(f"--upscale: must be > 0, got {args.upscale:g}")
    if args.tile_overlap < 0:
        raise ValueError(f"--tile-overlap: must be >= 0, got {args.tile_overlap}")
    for flag, folder in (("--weights", args.weights), ("--depth-weights", args.depth_weights)):
        if folder and not Path(folder).is_dir():
            raise ValueError(f"{flag} {folder}: no such folder")
    if args.weights and not (Path(args.weights) / "model.yaml").is_file():
        raise ValueError(f"--weights {args.weights}: holds no model (no model.yaml): give the weights/ folder that "
                         f"model.train wrote")
    if args.depth_weights:
        check_depth_folder(args.depth_weights, "--depth-weights")
    if args.disparity and not Path(args.disparity).is_file():
        raise ValueError(f"--disparity {args.disparity}: no such file")
    try:
        with Image.open(image) as im:  # the header only: the size, without decoding
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientations that swap the sides
                w, h = h, w
    except Exception as e:
        raise ValueError(f"--image {image}: not a readable image ({e})") from None
    args.focus_xy = None
    if args.focus is not None:
        try:
            x, y = (int(v) for v in args.focus.split(","))
        except ValueError:
            raise ValueError(f"--focus: X,Y in whole pixels expected (e.g. --focus 320,240), got {args.focus!r}") \
                from None
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"--focus {x},{y}: outside the {w}×{h} image (0 <= X < {w}, 0 <= Y < {h})")
        args.focus_xy = (x, y)
    elif not 0 <= args.focus_disparity <= 1:
        raise ValueError(f"--focus-disparity: in [0, 1], got {args.focus_disparity:g}")


def infer(args: argparse.Namespace) -> dict:
    """Run one inference as the command line describes it (``parse_args`` checked ``args``); returns the paths,
    the focus disparity and the timings."""
    t_start = time.perf_counter()
    from common.images import load_image, on_white

    image = Path(args.image)
    rgb, alpha = load_image(image)  # names the file on bad input
    if alpha is not None:
        rgb = on_white(rgb, alpha)
        print(f"NOTE: {image} has an alpha channel: composited on white (the model takes RGB)")
    in_shape = rgb.shape[:2]
    if args.upscale != 1.0:
        h, w = rgb.shape[:2]
        size = (max(8, round(w * args.upscale)), max(8, round(h * args.upscale)))
        rgb = np.asarray(Image.fromarray((rgb * 255).round().astype(np.uint8)).resize(size, Image.BICUBIC),
                         np.float32) / 255
    h, w = rgb.shape[:2]

    model = None
    if not args.classical:
        if not args.weights:
            print(NO_WEIGHTS)
        model = load_model(args.weights, args.config)
    cfg = model.cfg if model is not None else ModelConfig.from_yaml(args.config)
    if not 0 <= args.K <= cfg.k_max:
        raise ValueError(f"--K: in [0, {cfg.k_max:g}] for this model, got {args.K:g}")

    t0 = time.perf_counter()
    if args.disparity:
        disp = load_disparity(args.disparity, in_shape, (h, w))
        depth_s = 0.0
    else:
        folder = depth_folder(args.weights, args.depth_weights, cfg)
        if folder is None:
            print(NO_DEPTH)
        else:
            print(f"depth: {folder} ({'--depth-weights' if args.depth_weights else 'the model config'})")
        disp = estimate_disparity(load_estimator(cfg, folder), rgb)
        depth_s = time.perf_counter() - t0
    if args.focus_xy is not None:
        x, y = args.focus_xy
        d_f = focus_at(disp, min(w - 1, round(x * args.upscale)), min(h - 1, round(y * args.upscale)))
    else:
        d_f = args.focus_disparity

    t1 = time.perf_counter()
    if args.classical:
        out = render_classical(rgb, disp, args.K, d_f)
        what = "ray-traced (classical)"
    else:
        out = render_model(model, rgb, disp, args.K, d_f, args.tile_overlap)
        what = "MagicBokeh single step" + ("" if args.weights else " (untrained)")
    render_s = time.perf_counter() - t1

    out_path = Path(args.out)
    _save(out_path, out)
    disp_path = disparity_path(out_path)
    Image.fromarray((disp * 65535).round().astype(np.uint16)).save(disp_path)
    total = time.perf_counter() - t_start
    print(f"{image} ({w}×{h}) -> {out_path}  [{what}, K={args.K:g}, d_f={d_f:.3f}]")
    print(f"time: depth {depth_s:.2f} s, bokeh {render_s:.2f} s, total {total:.2f} s; disparity -> {disp_path}")
    return {"out": out_path, "disparity": disp_path, "focus_disparity": d_f, "seconds": total}


def render(image, out, *, K: float, focus: tuple[int, int] | None = None, focus_disparity: float | None = None,
           weights=None, config: str = "tiny", depth_weights=None, disparity=None, upscale: float = 1.0,
           classical: bool = False, tile_overlap: int = 64) -> dict:
    """The Python form of ``python -m model.infer``: the same checks (a ValueError naming the argument, before any
    work) and the same outputs. ``focus``: (x, y) in the input's pixels, or ``focus_disparity`` in [0, 1]."""
    if (focus is None) == (focus_disparity is None):
        raise ValueError("give exactly one of focus=(x, y) and focus_disparity=d")
    args = argparse.Namespace(
        image=str(image), out=str(out), K=float(K), focus=None if focus is None else f"{focus[0]},{focus[1]}",
        focus_disparity=focus_disparity, weights=weights and str(weights), config=config,
        depth_weights=depth_weights and str(depth_weights), disparity=disparity and str(disparity),
        upscale=float(upscale), classical=classical, tile_overlap=int(tile_overlap))
    check_args(args)
    return infer(args)


def main(args: argparse.Namespace) -> dict:
    try:
        return infer(args)
    except ValueError as e:  # a bad file met while loading (a disparity of the wrong shape, NaN): one line
        raise SystemExit(f"error: {e}") from None


def cli() -> None:
    from common.cli import run

    run(main, parse_args())


if __name__ == "__main__":
    cli()
