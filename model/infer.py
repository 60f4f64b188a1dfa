"""Bokeh from one photo: depth -> defocus map -> single step -> image.

    python -m model.infer --image IN --out OUT.png (--focus X,Y | --focus-disparity D) --K 16 [--weights DIR]
    python -m model.infer ... --classical      # our ray-tracing renderer on the estimated depth (no model weights)
    python -m model.infer --image IN --out OUT.png --lens 85 --f-number 1.4 --focus-distance 3 --depth D.npy
                                               # a camera on metric depth instead of --K (README "Cameras")

Images larger than the model's tile (512 for SD2.1) are processed in overlapping tiles blended with linear
ramps; depth, the focus disparity and the defocus map are computed once on the whole image.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from manifests.outdir import check_not_input
from renderer.options import MAX_COC_PX, max_blur_radius

from .conditioning import focus_at
from .config import ModelConfig
from .depthnet import check_depth_folder, depth_kind
from .pipeline import depth_folder, estimate_disparity, load_estimator, load_model, render_classical, render_model

NO_WEIGHTS = (
    "NOTE: no trained MagicBokeh weights given (--weights DIR): running the UNTRAINED tiny random model. "
    "Its output is not a bokeh rendering. Train weights with `python -m model.train`, or use --classical "
    "for the ray-traced baseline."
)
NO_DEPTH = (
    "NOTE: no Depth Anything V2 weights (--depth-weights DIR or `depth:` in the model config): the depth "
    "network has random weights and its disparity is meaningless. Pass --disparity FILE if you have one."
)


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
    from manifests.storage import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(path, to_uint8(rgb))


@dataclass
class InferRequest:
    """One inference, typed: what ``python -m model.infer`` and :func:`render` both build and :func:`infer` runs.
    The fields are the command line's (README "The model"); ``camera`` and ``focus_xy`` are filled by
    :func:`check_args`."""

    image: str
    out: str
    K: float | None = None
    focus: str | None = None  # "X,Y" in the input's pixels
    focus_disparity: float | None = None
    lens: float | None = None
    f_number: float | None = None
    sensor: str = "full-frame"
    focus_distance: float | None = None
    depth: str | None = None
    weights: str | None = None
    config: str = "tiny"
    depth_weights: str | None = None
    disparity: str | None = None
    upscale: float = 1.0
    classical: bool = False
    tile_overlap: int = 64
    camera: object = field(default=None, repr=False)  # renderer.lens.Camera of the camera form
    focus_xy: tuple[int, int] | None = None


def parse_args(argv=None) -> InferRequest:
    p = argparse.ArgumentParser(
        prog="python -m model.infer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--image", required=True, help="input photo (any PIL-readable image; RGBA is composited on white)")
    p.add_argument(
        "--out",
        required=True,
        help="output image (.png, .jpg, .tif, ...); the disparity goes beside it (*_disparity.png)",
    )
    p.add_argument(
        "--focus", help="X,Y: focus on the surface at this pixel of the input image (0-based, inside the image)"
    )
    p.add_argument("--focus-disparity", type=float, help="focus disparity d_f in [0, 1] (1 = nearest)")
    p.add_argument(
        "--K",
        type=float,
        help=f"blur strength in [0, {MAX_COC_PX:g}]: radius K·|d − d_f| px; past the model's k_max the image is "
        "rendered downscaled by k_max/K and brought back (the trainer's mapping)",
    )
    cam = p.add_argument_group("the camera form (instead of --K; README 'Cameras'): a thin lens on metric depth")
    cam.add_argument("--lens", type=float, metavar="MM", help="focal length in mm (e.g. 85)")
    cam.add_argument("--f-number", type=float, help="f-number (e.g. 1.4)")
    cam.add_argument("--sensor", default="full-frame", help="sensor width: 'full-frame' (36 mm) or millimetres")
    cam.add_argument("--focus-distance", type=float, metavar="M", help="focus distance in metres (or --focus X,Y)")
    cam.add_argument("--depth", help="metric depth of the image: .npy in metres or a 16-bit PNG in millimetres")
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
            argv[i : i + 2] = [f"--focus={argv[i + 1]}", ""]
    args = InferRequest(**vars(p.parse_args([a for a in argv if a != ""])))
    try:
        check_args(args)
    except ValueError as e:
        p.error(str(e))
    return args


def disparity_path(out) -> Path:
    """Where the disparity of the output ``out`` is written: beside it, NAME_disparity.png."""
    out = Path(out)
    return out.with_name(out.stem + "_disparity.png")


def check_camera_args(args: InferRequest) -> None:
    """The camera form: --lens, --f-number, --depth and one of --focus-distance / --focus, and none of the K form's
    flags. Fills ``args.camera`` (renderer.lens.Camera)."""
    from renderer.lens import FULL_FRAME_WIDTH_MM, Camera

    for flag, value in (("--K", args.K), ("--focus-disparity", args.focus_disparity), ("--disparity", args.disparity)):
        if value is not None:
            raise ValueError(
                f"{flag}: not with the camera form (--lens ...): the camera and the metric depth give the blur"
            )
    missing = [f for f, v in (("--lens", args.lens), ("--f-number", args.f_number)) if v is None]
    if missing:
        raise ValueError(f"the camera form needs {' and '.join(missing)}")
    if args.depth and not Path(args.depth).is_file():
        raise ValueError(f"--depth {args.depth}: no such file")
    if not args.depth:  # a metric depth network will do; a relative one cannot give metres
        folder = depth_folder(args.weights, args.depth_weights) if (args.weights or args.depth_weights) else None
        if folder is None or depth_kind(folder) != "metric":
            what = f"the depth network {folder}" if folder else "the depth network (random, relative)"
            raise ValueError(
                f"the camera form needs metric depth: --depth FILE (metres as .npy, or a 16-bit PNG in "
                f"millimetres) or a metric Depth Anything V2 folder (--depth-weights). {what} gives "
                "relative depth (disparity up to an unknown scale and shift), from which no distance in "
                "metres, hence no camera blur, follows"
            )
    if (args.focus is None) == (args.focus_distance is None):
        raise ValueError("the camera form needs exactly one of --focus-distance M and --focus X,Y")
    if args.focus_distance is not None and not 0 < args.focus_distance < math.inf:
        raise ValueError(f"--focus-distance: metres > 0, got {args.focus_distance:g}")
    if args.sensor == "full-frame":
        sensor = FULL_FRAME_WIDTH_MM
    else:
        try:
            sensor = float(args.sensor)
        except ValueError:
            raise ValueError(f"--sensor: 'full-frame' or a width in mm, got {args.sensor!r}") from None
        if not 0 < sensor < math.inf:
            raise ValueError(f"--sensor: a sensor width in mm, finite and > 0, got {args.sensor!r}")
    for flag, v in (("--lens", args.lens), ("--f-number", args.f_number)):
        if not 0 < v < math.inf:
            raise ValueError(f"{flag}: finite and > 0, got {v:g}")
    args.camera = Camera(
        args.lens, args.f_number, sensor, name=f"{args.lens:g} mm f/{args.f_number:g} on a {sensor:g} mm sensor"
    )


def exif_camera(path) -> str | None:
    """The camera that took a photo, from its EXIF (focal length, 35-mm equivalent, f-number, model), or None."""
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            ifd = exif.get_ifd(0x8769)
    except Exception:
        return None
    focal, eq, fn, model = ifd.get(0x920A), ifd.get(0xA405), ifd.get(0x829D), exif.get(0x0110)
    if focal is None and fn is None:
        return None
    parts = [str(model).strip()] if model else []
    if focal is not None:
        parts.append(f"{float(focal):g} mm" + (f" ({int(eq)} mm equivalent)" if eq else ""))
    if fn is not None:
        parts.append(f"f/{float(fn):g}")
    return ", ".join(parts)


def camera_disparity(args, z: np.ndarray, shape) -> tuple[np.ndarray, float, float, str]:
    """The camera form's (disparity d = z_near/z at the working size ``shape``, K, d_f, a description) from metric
    depth ``z`` at the input's size (--depth, or a metric network): z_near is the nearest valid depth (or the focus
    distance when nearer); invalid depths (0) read as the farthest valid."""
    source = f"--depth {args.depth}" if args.depth else "the metric depth network"
    negative = np.isfinite(z) & (z < 0)
    if negative.any():
        raise ValueError(
            f"{source}: {int(negative.sum())} pixels of negative depth (down to "
            f"{float(z[negative].min()):g} m): depth is metres from the camera, 0 (or NaN) where unknown"
        )
    valid = np.isfinite(z) & (z > 0)
    if not valid.any():
        raise ValueError(f"{source}: no valid depth (every value is 0, NaN or infinite)")
    if args.focus_xy is not None:
        x, y = args.focus_xy
        if not valid[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].any():
            raise ValueError(
                f"--focus {x},{y}: {source} holds no valid depth there (0 or NaN): focus on a pixel "
                f"of known depth, or give --focus-distance"
            )
    z = np.where(valid, z, z[valid].max()).astype(np.float32)
    if args.focus_xy is not None:
        x, y = args.focus_xy
        z_f = float(np.median(z[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]))
    else:
        z_f = float(args.focus_distance)
    z_near = min(float(z.min()), z_f)
    disp = z_near / z
    if shape != z.shape:
        disp = np.asarray(Image.fromarray(disp).resize(shape[::-1], Image.BILINEAR), np.float32)
    K, d_f = args.camera.render_params(z_f, z_near, shape[1])
    return disp, K, d_f, f"{args.camera.name}, focused at {z_f:g} m (nearest {z_near:g} m)"


def check_args(args: InferRequest) -> None:
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
    if args.K is not None and not 0 <= args.K <= MAX_COC_PX:
        raise ValueError(f"--K: in [0, {MAX_COC_PX:g}] (the renderer's largest blur radius), got {args.K:g}")
    if not args.upscale > 0:
        raise ValueError(f"--upscale: must be > 0, got {args.upscale:g}")
    if args.tile_overlap < 0:
        raise ValueError(f"--tile-overlap: must be >= 0, got {args.tile_overlap}")
    for flag, folder in (("--weights", args.weights), ("--depth-weights", args.depth_weights)):
        if folder and not Path(folder).is_dir():
            raise ValueError(f"{flag} {folder}: no such folder")
    if args.weights and not (Path(args.weights) / "model.yaml").is_file():
        raise ValueError(
            f"--weights {args.weights}: holds no model (no model.yaml): give the weights/ folder that model.train wrote"
        )
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
    args.camera = None
    if args.lens is not None or args.f_number is not None or args.focus_distance is not None or args.depth:
        check_camera_args(args)
    else:
        if args.K is None:
            raise ValueError(
                "give --K (blur strength), or a camera: --lens MM --f-number N --focus-distance M --depth FILE"
            )
        if (args.focus is None) == (args.focus_disparity is None):
            raise ValueError("give exactly one of --focus X,Y and --focus-disparity D")
    args.focus_xy = None
    if args.focus is not None:
        try:
            x, y = (int(v) for v in args.focus.split(","))
        except ValueError:
            raise ValueError(
                f"--focus: X,Y in whole pixels expected (e.g. --focus 320,240), got {args.focus!r}"
            ) from None
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"--focus {x},{y}: outside the {w}×{h} image (0 <= X < {w}, 0 <= Y < {h})")
        args.focus_xy = (x, y)
    elif args.focus_disparity is not None and not 0 <= args.focus_disparity <= 1:
        raise ValueError(f"--focus-disparity: in [0, 1], got {args.focus_disparity:g}")
    if args.camera is not None and args.depth:  # the camera's K, from the depth file: before any network loads
        _check_camera_k(args, (w, h))


def _check_camera_k(args: InferRequest, size: tuple[int, int]) -> None:
    """The camera form with --depth FILE: its K at the working size within the renderer's (--classical) or the
    model's limit, and the depth itself usable (a ValueError naming it otherwise)."""
    from common.images import read_depth

    z = read_depth(args.depth)
    if z.shape != size[::-1]:
        raise ValueError(f"--depth {args.depth}: {z.shape[1]}×{z.shape[0]}, the image {size[0]}×{size[1]}")
    w, h = (max(8, round(s * args.upscale)) for s in size) if args.upscale != 1.0 else size
    _, K, _, described = camera_disparity(args, z, (h, w))
    # the model takes what the renderer takes: past its k_max it renders downscaled (model.pipeline.render_model)
    limit = max_blur_radius(max(w, h)) if args.classical else MAX_COC_PX
    if K > limit:
        raise ValueError(
            f"{described}: K = {K:.1f} at {w} px, above the renderer's largest blur radius {limit:g}: a longer focus "
            f"distance, a larger f-number or a smaller image"
        )


def infer(args: InferRequest) -> dict:
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
    photo = rgb  # the input's own pixels (metric depth is estimated there)
    if args.upscale != 1.0:
        h, w = rgb.shape[:2]
        size = (max(8, round(w * args.upscale)), max(8, round(h * args.upscale)))
        rgb = (
            np.asarray(Image.fromarray((rgb * 255).round().astype(np.uint8)).resize(size, Image.BICUBIC), np.float32)
            / 255
        )
    h, w = rgb.shape[:2]

    model = None
    if not args.classical:
        if not args.weights:
            print(NO_WEIGHTS)
        model = load_model(args.weights, args.config)
    cfg = model.cfg if model is not None else ModelConfig.from_yaml(args.config)
    if args.camera is None and args.classical and args.K > max_blur_radius(max(h, w)):
        raise ValueError(f"--K: {args.K:g} is past the renderer's largest blur radius at {w}×{h}")
    if args.camera is None and not args.classical and args.K > cfg.k_max:
        print(
            f"--K {args.K:g} is past the model's k_max {cfg.k_max:g}: rendered at {cfg.k_max / args.K:.3g}× the size "
            f"and brought back (model.pipeline.render_model)"
        )

    t0 = time.perf_counter()
    taken = exif_camera(image)
    if taken:
        print(f"{image}: taken with {taken}")
    if args.camera is not None:
        if args.depth:
            from common.images import read_depth

            z = read_depth(args.depth)
            if z.shape != in_shape:
                raise ValueError(
                    f"--depth {args.depth}: {z.shape[1]}×{z.shape[0]}, the image {in_shape[1]}×{in_shape[0]}"
                )
        else:  # a metric network (checked): metres, estimated on the photo as given
            import torch

            folder = depth_folder(args.weights, args.depth_weights, cfg)
            print(f"depth: metric network {folder}")
            with torch.no_grad():
                z = load_estimator(cfg, folder).metric(torch.from_numpy(photo).permute(2, 0, 1)[None])[0, 0].numpy()
        disp, args.K, d_f, described = camera_disparity(args, z, (h, w))
        limit = max_blur_radius(max(w, h)) if args.classical else MAX_COC_PX
        if args.K > limit:
            raise ValueError(
                f"{described}: K = {args.K:.1f} at {w} px, above the renderer's largest blur radius {limit:g}: a "
                f"longer focus distance, a larger f-number or a smaller image"
            )
        print(f"camera: {described}: K = {args.K:.2f}, d_f = {d_f:.4f}")
        if not args.classical and args.K > cfg.k_max:
            print(
                f"K {args.K:.1f} is past the model's k_max {cfg.k_max:g}: rendered at {cfg.k_max / args.K:.3g}× the "
                f"size and brought back (model.pipeline.render_model)"
            )
        depth_s = time.perf_counter() - t0
    elif args.disparity:
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
    if args.camera is None:  # (the camera form set d_f from the lens and the metric depth)
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
    from manifests.storage import save_image

    save_image(disp_path, (disp * 65535).round().astype(np.uint16))
    total = time.perf_counter() - t_start
    print(f"{image} ({w}×{h}) -> {out_path}  [{what}, K={args.K:g}, d_f={d_f:.3f}]")
    print(f"time: depth {depth_s:.2f} s, bokeh {render_s:.2f} s, total {total:.2f} s; disparity -> {disp_path}")
    return {"out": out_path, "disparity": disp_path, "focus_disparity": d_f, "seconds": total}


def render(
    image,
    out,
    *,
    K: float,
    focus: tuple[int, int] | None = None,
    focus_disparity: float | None = None,
    weights=None,
    config: str = "tiny",
    depth_weights=None,
    disparity=None,
    upscale: float = 1.0,
    classical: bool = False,
    tile_overlap: int = 64,
) -> dict:
    """The Python form of ``python -m model.infer``: the same checks (a ValueError naming the argument, before any
    work) and the same outputs. ``focus``: (x, y) in the input's pixels, or ``focus_disparity`` in [0, 1]."""
    if (focus is None) == (focus_disparity is None):
        raise ValueError("give exactly one of focus=(x, y) and focus_disparity=d")
    req = InferRequest(
        str(image),
        str(out),
        K=float(K),
        focus=None if focus is None else f"{focus[0]},{focus[1]}",
        focus_disparity=focus_disparity,
        weights=weights and str(weights),
        config=config,
        depth_weights=depth_weights and str(depth_weights),
        disparity=disparity and str(disparity),
        upscale=float(upscale),
        classical=classical,
        tile_overlap=int(tile_overlap),
    )
    check_args(req)
    return infer(req)


def main(args: InferRequest) -> dict:
    try:
        return infer(args)
    except ValueError as e:  # a bad file met while loading (a disparity of the wrong shape, NaN): one line
        raise SystemExit(f"error: {e}") from None


def cli() -> None:
    from common.cli import run

    run(main, parse_args())


if __name__ == "__main__":
    cli()
