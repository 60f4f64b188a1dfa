"""The depth protocol: AbsRel and δ1 of a depth network on clear images and on their degraded versions, after the
affine-invariant alignment of relative depth (least-squares scale and shift in disparity)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from common.images import read_depth, read_disparity
from manifests.outdir import claim
from manifests.storage import atomic_file

from .methods import Runner
from .report import fmt_cell, mean_or_nan, write_csv
from .shared import COMMAND, OUTPUTS, LQCache, as_float, crop4, disparity_file, rgb_u8, stem_map

if TYPE_CHECKING:
    from .shared import EvalConfig


def align_disparity(pred: np.ndarray, gt_depth: np.ndarray, valid: np.ndarray, max_depth: float) -> np.ndarray:
    """Relative disparity → metric depth by the least-squares scale and shift that best match the ground truth's
    disparity (1/depth) on the valid pixels (the affine-invariant protocol of MiDaS and Depth Anything)."""
    x, y = pred[valid].astype(np.float64), 1.0 / gt_depth[valid].astype(np.float64)
    A = np.stack([x, np.ones_like(x)], axis=1)
    (s, t), *_ = np.linalg.lstsq(A, y, rcond=None)
    aligned = s * pred.astype(np.float64) + t
    return 1.0 / np.clip(aligned, 1.0 / max_depth, None)


def metric_depth_errors(pred_disp: np.ndarray, gt_depth: np.ndarray, valid: np.ndarray, max_depth: float) -> dict:
    """AbsRel and δ1 in metric *depth* (metres) of a disparity prediction aligned to the ground truth (scale and
    shift in disparity), as Depth Anything evaluates NYUv2 and KITTI."""
    depth = align_disparity(pred_disp, gt_depth, valid, max_depth)
    p, g = depth[valid], gt_depth[valid].astype(np.float64)
    return {"absrel": float(np.mean(np.abs(p - g) / g)), "delta1": float(np.mean(np.maximum(p / g, g / p) < 1.25))}


DEPTH_PRESETS = {
    "nyu": dict(min_depth=1e-3, max_depth=10.0, crop=(45, 471, 41, 601)),  # Eigen crop on 480×640
    "kitti": dict(min_depth=1e-3, max_depth=80.0, crop="garg"),
    "none": dict(min_depth=1e-3, max_depth=1e4, crop=None),
}


def depth_valid(gt: np.ndarray, preset: str) -> np.ndarray:
    p = DEPTH_PRESETS[preset]
    valid = (gt > p["min_depth"]) & (gt < p["max_depth"])
    crop = p["crop"]
    if crop is not None:
        h, w = gt.shape
        region = np.zeros_like(valid)
        if crop == "garg":  # Garg et al.'s crop, as fractions of the KITTI frame
            region[int(0.40810811 * h) : int(0.99189189 * h), int(0.03594771 * w) : int(0.96405229 * w)] = True
        else:
            y0, y1, x0, x1 = crop
            if (h, w) == (480, 640):
                region[y0:y1, x0:x1] = True
            else:
                region[:] = True
        valid &= region
    return valid


def evaluate_depth(args: "EvalConfig") -> dict:
    """AbsRel and δ1 of depth models on clear images and their degraded versions (Degrade / Clear / Average)."""
    from tqdm import tqdm

    out = Path(args.out)
    claim(out, COMMAND, OUTPUTS, signature="results.csv")
    data = Path(args.data)
    rgbs = stem_map(data / "rgb")
    if not rgbs:
        raise ValueError(f"--data {data}: no images in {data / 'rgb'} (depth layout: rgb/, depth/)")
    runner = Runner(args)
    cache = LQCache(out / "lq")
    rows, skipped, done = [], [], 0
    for name in tqdm(sorted(rgbs)[: args.limit], desc="evaluating depth", unit="image"):
        gt_path = disparity_file(data / "depth", name)
        try:
            if gt_path is None:
                raise ValueError(f"no depth/{name}.(png|npy) beside rgb/{rgbs[name].name}")
            rgb = crop4(rgb_u8(rgbs[name]))
            gt = crop4(read_depth(gt_path))
            if gt.shape != rgb.shape[:2]:
                raise ValueError(f"{gt_path}: {gt.shape[1]}×{gt.shape[0]}, the image {rgb.shape[1]}×{rgb.shape[0]}")
            valid = depth_valid(gt, args.depth_preset)
            if valid.sum() < 10:
                raise ValueError(f"{gt_path}: fewer than 10 valid pixels")
            lq = cache.get(name, rgbs[name], rgb)
        except ValueError as e:
            skipped.append((name, str(e)))
            print(f"skipped {name}: {e}", file=sys.stderr)
            continue
        done += 1
        max_depth = DEPTH_PRESETS[args.depth_preset]["max_depth"]
        for method in args.method_list + list(args.prediction_dirs):
            row = {"image": name, "method": method}
            try:
                for cond, img in (("clear", rgb), ("degraded", lq)):
                    t0 = time.perf_counter()
                    if method == "model":
                        disp = runner.estimate(as_float(img))
                    else:
                        path = disparity_file(args.prediction_dirs[method] / cond, name)
                        if path is None:
                            raise ValueError(f"{args.prediction_dirs[method] / cond}: no {name}.(npy|png)")
                        disp = read_disparity(path)
                    if disp.shape != gt.shape:
                        disp = np.asarray(
                            Image.fromarray(disp.astype(np.float32)).resize(gt.shape[::-1], Image.BILINEAR)
                        )
                    row[f"seconds_{cond}"] = time.perf_counter() - t0
                    for k, v in metric_depth_errors(disp, gt, valid, max_depth).items():
                        row[f"{k}_{cond}"] = v
            except ValueError as e:
                row["error"] = str(e)
            rows.append(row)
    cache.save()
    if done == 0:
        raise ValueError(
            f"--data {args.data}: no image could be evaluated"
            + (f" ({len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else "")
        )
    write_csv(out / "results.csv", rows)
    lines = [
        f"# depth: {args.data}",
        "",
        f"{done} images; preset {args.depth_preset} ({DEPTH_PRESETS[args.depth_preset]}); prediction aligned to "
        "the ground truth by least-squares scale and shift in disparity; degraded = bokehgen's Real-ESRGAN "
        "pipeline (×4 smaller, OUT/lq).",
        "",
    ]
    lines += [f"- {note}" for note in runner.notes]
    if skipped:
        lines.append(f"- {len(skipped)} images skipped: " + "; ".join(f"{a}: {b}" for a, b in skipped[:5]))
    lines += [
        "",
        "| method | AbsRel ↓ Degrade | Clear | Average | δ1 ↑ Degrade | Clear | Average |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method and "error" not in r]
        cells = [method]
        for k in ("absrel", "delta1"):
            d, c = mean_or_nan(r[f"{k}_degraded"] for r in mine), mean_or_nan(r[f"{k}_clear"] for r in mine)
            cells += [fmt_cell(d), fmt_cell(c), fmt_cell(None if d is None or c is None else (d + c) / 2)]
        lines.append("| " + " | ".join(cells) + " |")
    summary = "\n".join(lines) + "\n"
    with atomic_file(out / "summary.md", "w") as f:
        f.write(summary)
    print(summary)
    return {"rows": rows, "summary": summary, "skipped": skipped, "lq_made": cache.made, "lq_reused": cache.reused}
