"""Score bokeh methods on the field's protocols and on an exact synthetic one, side by side, offline.

    python -m model.evaluate --protocol {pairs,realsr,depth,synthetic,blb,ebb_val294,ebb400,ebb400_lq,realbokeh,
        realbokeh_bin} --data PATH \\
        --methods identity,classical[,classical-gt][,model] [--weights DIR] [--predictions NAME=DIR ...] \\
        [--metrics LIST] [--metric-weights DIR|random] [--K K] [--limit N] --out OUT

Protocols and data layouts (README "Evaluation"):
  pairs      original/NAME.*, bokeh/NAME.*, focus.json {"NAME": {"x": px, "y": px, "K": k}} in the original's pixels
             (K optional, else --K) or focus/NAME.png (a mask of the focal region); optional disparity/NAME.(npy|png)
             (ground truth, for classical-gt and the stratified metrics). The input is the original degraded with
             bokehgen's Real-ESRGAN pipeline (×4 smaller) at a fixed seed, made once and cached in OUT/lq/ with a
             manifest ("EBB400-LQ"-style: byte-identical for anyone with the same originals).
  realsr     LR/ + HR/ with matching names; or RealSR's NAME_LR4.* / NAME_HR.* (any folders below PATH); or DRealSR's
             test_LR/NAME_x4.* / test_HR/NAME_x1.*. K = 0: the model as a pure ×4 super-resolver.
  depth      rgb/NAME.* + depth/NAME.(png|npy) (16-bit PNG in millimetres or float metres; 0 = invalid): AbsRel and δ1
             of a depth model on the clear image and on its degraded version (cached as for pairs), after the
             affine-invariant alignment of relative depth (least-squares scale and shift in disparity).
  synthetic  bokehgen WebDataset shards (a brace pattern, a glob, or a build folder: its val shards); exact ground
             truth: metrics also per blur radius r = K·|d − d_f| and in the occlusion band.
  blb, ebb_val294, ebb400, ebb400_lq, realbokeh, realbokeh_bin
             the field's benchmarks, each pointed at its folder as downloaded (model/evaluation/benchmarks.py;
             README "The field's benchmarks"), scored on RGB; --k-search ssim and --focus-from gt-edges are the
             oracles some papers score with, reported apart.

Methods: identity (the LQ upsampled bicubically: the floor), classical (bokehgen's ray tracer on the disparity a
depth model estimates from the input), classical-gt (the ray tracer on the clean all-in-focus image and the
ground-truth disparity: the ceiling of rendering from one RGBD image), model (trained MagicBokeh weights,
--weights, on the estimated disparity), model-gt (the same network on the ground-truth disparity: its error without
the depth model's); --predictions NAME=DIR scores another method's images (same names as the targets). Depth protocol:
model (the depth network: --depth-weights, else the one recorded in --weights) and --predictions NAME=DIR with
DIR/clear/NAME.* and DIR/degraded/NAME.* disparity maps.

Outputs: OUT/results.csv (one row per image × method), OUT/summary.md (means, the paper's column order, seconds per
image), OUT/examples.png (input, each method, target). A rerun with the same arguments reuses OUT/lq and the
predictions in OUT/predictions/METHOD/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from manifests.lock import writer_lock
from manifests.outdir import claim
from renderer.options import MAX_COC_PX

from .. import iqa
from .depth import DEPTH_PRESETS
from .methods import METHODS
from .protocols import FIELD_PROTOCOLS, READERS
from .run import evaluate
from .shared import COMMAND, DEPTH_METHODS, ORDER, OUTPUTS, EvalConfig

PROTOCOLS = (*READERS, "depth")  # the registries decide what exists
IMAGE_METHODS = tuple(METHODS)


def parse_args(argv=None) -> EvalConfig:
    p = argparse.ArgumentParser(
        prog="python -m model.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--protocol", required=True, choices=PROTOCOLS)
    p.add_argument("--data", required=True, help="the benchmark's folder (layouts above) or shards (synthetic)")
    p.add_argument(
        "--methods",
        default="identity,classical",
        help="comma-separated: identity, classical, classical-gt, model (depth protocol: model)",
    )
    p.add_argument("--weights", help="trained MagicBokeh weights folder (for the method 'model')")
    p.add_argument("--depth-weights", help="local Depth Anything V2 folder (default: the one in --weights)")
    p.add_argument(
        "--predictions",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="score another method's output images (same names as the targets); repeatable",
    )
    p.add_argument(
        "--metrics",
        default=None,
        help=f"comma-separated subset of {','.join(iqa.ALL_METRICS)} (default: the protocol's papers' columns; "
        "depth: absrel, delta1 always)",
    )
    p.add_argument(
        "--metric-weights",
        help="torch hub folder holding pyiqa's, torchvision's and CLIP's files "
        "(nothing is downloaded); 'random' = random weights (a plumbing check)",
    )
    p.add_argument("--K", type=float, help="blur strength where the benchmark does not give one (pairs)")
    p.add_argument("--limit", type=int, help="only the first N images (a quick look)")
    p.add_argument(
        "--color",
        default=None,
        choices=("y", "rgb"),
        help="PSNR/SSIM on BT.601 luma or RGB (default: RGB on the field's benchmarks, as their papers score them; "
        "luma elsewhere, as the Real-ISR papers)",
    )
    p.add_argument("--crop-border", type=int, default=0, help="pixels removed at each border for PSNR/SSIM")
    p.add_argument(
        "--depth-preset",
        default="none",
        choices=sorted(DEPTH_PRESETS),
        help="depth protocol: valid range and crop (nyu: Eigen crop, ≤ 10 m; kitti: Garg crop, ≤ 80 m)",
    )
    p.add_argument(
        "--k-search",
        choices=("ssim",),
        help="an oracle: per image, the K (of a grid, and the benchmark's own) whose output has the best SSIM against "
        "the target, as BokehMe and Genfocus score their baselines; its rows are reported apart",
    )
    p.add_argument(
        "--focus-from",
        choices=("gt-edges",),
        help="an oracle: the focus where the target is sharpest (its strongest 5%% of edges), as BokehDiff focuses; "
        "its rows are reported apart",
    )
    p.add_argument("--examples", type=int, default=4, help="images shown in examples.png")
    p.add_argument("--device", default="cpu", help="device for the networks and pyiqa (cpu, cuda, ...)")
    p.add_argument("--out", required=True, help="output folder")
    args = EvalConfig(**vars(p.parse_args(argv)))
    try:
        check_args(args)
    except ValueError as e:
        p.error(str(e))
    return args


def check_args(args: EvalConfig) -> None:
    """Every argument checked before any work; fills ``args.method_list``, ``args.prediction_dirs``,
    ``args.metric_list``."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    allowed = DEPTH_METHODS if args.protocol == "depth" else IMAGE_METHODS
    bad = [m for m in methods if m not in allowed]
    if bad:
        raise ValueError(
            f"--methods: {bad} not available for --protocol {args.protocol} (choose from "
            f"{', '.join(allowed)}; other methods' outputs: --predictions NAME=DIR)"
        )
    if len(set(methods)) != len(methods):
        raise ValueError(f"--methods: a method is named twice in {args.methods!r}")
    preds = {}
    for spec in args.predictions:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--predictions {spec!r}: NAME=DIR expected")
        if name in methods or name in preds:
            raise ValueError(f"--predictions {spec!r}: the name {name!r} is already used")
        if not Path(folder).is_dir():
            raise ValueError(f"--predictions {spec!r}: no such folder {folder}")
        preds[name] = Path(folder)
    if not methods and not preds:
        raise ValueError("nothing to score: give --methods and/or --predictions")
    for m in ("model", "model-gt"):
        if m in methods and args.protocol != "depth" and not args.weights:
            raise ValueError(f"--methods {m} needs --weights DIR (trained MagicBokeh weights)")
    for flag, folder in (("--weights", args.weights), ("--depth-weights", args.depth_weights)):
        if folder and not Path(folder).is_dir():
            raise ValueError(f"{flag} {folder}: no such folder")
    if args.weights and not (Path(args.weights) / "model.yaml").is_file():
        raise ValueError(f"--weights {args.weights}: no model.yaml: not a folder of trained MagicBokeh weights")
    if args.metrics is None:
        args.metrics = ",".join(ORDER.get(args.protocol, ORDER["pairs"]))
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in iqa.ALL_METRICS]
    if unknown:
        raise ValueError(f"--metrics: unknown {unknown}; choose from {','.join(iqa.ALL_METRICS)}")
    if args.metric_weights and args.metric_weights != "random" and not Path(args.metric_weights).is_dir():
        raise ValueError(f"--metric-weights {args.metric_weights}: no such folder (or 'random')")
    if args.K is not None and not 0 <= args.K <= MAX_COC_PX:
        raise ValueError(f"--K: in [0, {MAX_COC_PX:g}] (the renderer's largest blur radius), got {args.K:g}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit: at least 1, got {args.limit}")
    if args.color is None:
        args.color = "rgb" if args.protocol in FIELD_PROTOCOLS else "y"
    if args.crop_border < 0:
        raise ValueError(f"--crop-border: at least 0, got {args.crop_border}")
    if args.protocol != "synthetic" and not Path(args.data).is_dir():
        raise ValueError(f"--data {args.data}: no such folder")
    claim(
        args.out,
        COMMAND,
        OUTPUTS,
        inputs=[args.data] if "://" not in str(args.data) and Path(args.data).exists() else [],
        create=False,
        signature="results.csv",
    )  # refused naming the foreign files, before any network loads
    args.method_list, args.prediction_dirs, args.metric_list = methods, preds, metrics


def main(args: EvalConfig) -> dict:
    with writer_lock(args.out, COMMAND):
        return evaluate(args)


def cli() -> None:
    from common.cli import run

    args = parse_args()
    try:
        run(main, args)
    except ValueError as e:
        sys.exit(f"error: {e}")
