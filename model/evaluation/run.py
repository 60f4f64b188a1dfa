"""The image loop of model.evaluate: each item through each method (or its cached prediction), scored, and the
report written."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.images import to_uint8
from manifests.outdir import claim
from manifests.storage import atomic_file, save_image

from .. import iqa
from .depth import evaluate_depth
from .methods import Predictions, Runner, external_method, gt_edges_mask, method_key, upsample
from .protocols import READERS
from .report import example_sheet, summarise, write_csv, write_html
from .shared import COMMAND, OUTPUTS, Item, LQCache
from .strata import strata

if TYPE_CHECKING:
    from .shared import EvalConfig


def evaluate(args: "EvalConfig") -> dict:
    """Run one evaluation as the command line describes it (``check_args`` filled ``args``); returns the rows,
    the summary text and the output paths."""
    if args.protocol == "depth":
        return evaluate_depth(args)
    from tqdm import tqdm

    out = Path(args.out)
    claim(out, COMMAND, OUTPUTS, signature="results.csv")
    here = [m for m in args.metric_list if m in iqa.HERE_METRICS]
    pyiqa_names = tuple(m for m in args.metric_list if m in iqa.PYIQA_METRICS)
    metrics = iqa.PyiqaMetrics(pyiqa_names, args.metric_weights, args.device)
    for name, why in metrics.missing.items():
        print(f"metric {name}: missing: {why}", file=sys.stderr)
    runner = Runner(args)
    cache = LQCache(out / "lq")
    items = READERS[args.protocol](args.data, cache, args.K)
    methods = args.method_list + list(args.prediction_dirs)
    stores = {m: Predictions(out / "predictions" / m, method_key(args, m)) for m in args.method_list}
    rows, skipped, examples = [], [], []
    total = args.limit
    bar = tqdm(total=total, desc=f"evaluating {args.protocol}", unit="image")
    done = 0
    fid_dirs = {m: out / "fid" / m for m in methods}
    for item in items:
        if not isinstance(item, Item):
            name, why = item
            skipped.append((name, why))
            print(f"skipped {name}: {why}", file=sys.stderr)
            continue
        done += 1
        if args.focus_from == "gt-edges":  # the focus oracle replaces the benchmark's own focus
            item.focus_mask, item.focus_xy, item.focus_disparity = gt_edges_mask(item.target), None, None
        shown = [to_uint8(upsample(item.lq, item.target.shape[:2]))]
        for method in methods:
            row = {"image": item.name, "method": method}
            if method in args.method_list:
                row["oracles"] = runner.oracles(method)
            if item.f_number is not None:
                row["f_number"] = item.f_number
            if item.group is not None:
                row["group"] = item.group
            try:
                if method in args.prediction_dirs:
                    pred = external_method(args.prediction_dirs[method], item.name, item.target.shape[:2])
                    seconds = None
                else:
                    cached = stores[method].get(item.name)
                    if cached is None:
                        t0 = time.perf_counter()
                        pred = runner.run(method, item)
                        seconds = time.perf_counter() - t0
                        if args.k_search and runner.oracles(method):
                            row["K_oracle"] = runner.k_used
                        stores[method].put(item.name, pred, seconds)
                    else:
                        pred, seconds = cached
            except ValueError as e:
                row["error"] = str(e)
                rows.append(row)
                shown.append(None)
                continue
            row["seconds"] = seconds
            if here or item.disp is not None:
                se, smap = iqa.psnr_ssim_maps(pred, item.target, args.color, args.crop_border)
                if "psnr" in here:
                    row["psnr"] = iqa.psnr_from_se(se)
                if "ssim" in here:
                    row["ssim"] = float(np.nanmean(smap))
                if "ssim_u7" in here:
                    row["ssim_u7"] = iqa.ssim_uniform7(pred, item.target, args.color, args.crop_border)
                if args.protocol == "synthetic" or item.disp is not None:
                    c = args.crop_border
                    sub = item if not c else _cropped(item, c)
                    row.update(strata(sub, se, smap))
            row.update(metrics.score(pred, item.target))
            if "fid" in metrics.metrics:
                fid_dirs[method].mkdir(parents=True, exist_ok=True)
                save_image(fid_dirs[method] / f"{item.name}.png", pred)
            rows.append(row)
            shown.append(pred)
        if "fid" in metrics.metrics:
            (out / "fid" / "_target").mkdir(parents=True, exist_ok=True)
            save_image(out / "fid" / "_target" / f"{item.name}.png", item.target)
        if len(examples) < args.examples:
            examples.append((item.name, shown + [item.target]))
        bar.update(1)
        if args.limit is not None and done >= args.limit:
            break  # before the next item's LQ is made
    bar.close()
    cache.save()
    if done == 0:
        raise ValueError(
            f"--data {args.data}: no image could be evaluated"
            + (f" ({len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else "")
        )
    fid = {}
    if "fid" in metrics.metrics:
        for method in methods:
            try:
                fid[method] = metrics.fid(fid_dirs[method], out / "fid" / "_target")
            except Exception as e:  # too few images for the covariance, ...
                fid[method] = None
                metrics.missing.setdefault("fid", f"could not be computed: {e}")
    write_csv(out / "results.csv", rows)
    summary = summarise(args, rows, fid, metrics, runner.notes, skipped, cache, done)
    with atomic_file(out / "summary.md", "w") as f:
        f.write(summary)
    if examples:
        example_sheet(out / "examples.png", examples, ["input (LQ up)"] + methods + ["target"])
    write_html(out / "report.html", summary, f"model.evaluate: {args.protocol}", bool(examples))
    print(summary)
    print(f"results: {out / 'results.csv'}, {out / 'summary.md'}, {out / 'report.html'}, {out / 'examples.png'}")
    unscored = [m for m in methods if not any(r["method"] == m and "error" not in r for r in rows)]
    if unscored:  # the outputs are written (they say why); the exit status says it too
        raise ValueError(f"{', '.join(unscored)}: no image scored (see {out / 'summary.md'})")
    return {
        "rows": rows,
        "summary": summary,
        "fid": fid,
        "missing": dict(metrics.missing),
        "skipped": skipped,
        "lq_made": cache.made,
        "lq_reused": cache.reused,
        "predictions_reused": {m: s.reused for m, s in stores.items()},
    }


def _cropped(item: Item, c: int) -> Item:
    return Item(
        item.name,
        item.lq,
        item.target[c:-c, c:-c],
        item.K,
        disp=item.disp[c:-c, c:-c],
        focus_disparity=item.focus_disparity,
    )
