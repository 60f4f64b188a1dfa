"""What a person reads: results.csv, summary.md in the papers' column order (with the stratified table when the
benchmark has ground-truth disparity) and examples.png."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image

from manifests.storage import atomic_file, save_image

from .. import iqa
from .benchmarks import PROTOCOL_NOTES
from .shared import BINS, EVAL_SEED, F_NUMBER_BINS, ORDER


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = ["image", "method", "seconds"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    with atomic_file(path, "w") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def mean_or_nan(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else None


def fmt_cell(v, digits=4) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.{digits}f}" if abs(v) < 10 else f"{v:.2f}"


def summarise(args, rows, fid, metrics, notes, skipped, cache, n) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    order = [m for m in ORDER[args.protocol] if m in args.metric_list]
    lines = [
        f"# {args.protocol}: {args.data}",
        "",
        f"{n} images; PSNR/SSIM on {'BT.601 luma (Y)' if args.color == 'y' else 'RGB'}, 8-bit (clipped to "
        f"[0, 255]), border crop {args.crop_border} px (PSNR of the mean squared error over the image; SSIM: Gaussian "
        "11×11, σ 1.5; SSIM-u7: uniform 7×7, scikit-image's default; LPIPS: alex backbone, LPIPS-vgg: vgg). Mean "
        "over images; FID over the set. ↓ lower is better.",
        "",
        f"Metrics: {metrics.describe()}.",
    ]
    if args.protocol in PROTOCOL_NOTES:
        lines.append(f"- {PROTOCOL_NOTES[args.protocol]}")
    if cache.made or cache.reused:
        lines.append(
            f"- LQ seed: {EVAL_SEED} (each image's: sha256 of '{EVAL_SEED}:NAME'), the degradation preset "
            f"{cache.preset}"
        )
    for name, why in metrics.missing.items():
        lines.append(f"- **{iqa.LABELS[name]} missing**: {why}")
    for note in notes:
        lines.append(f"- {note}")
    if cache.made or cache.reused:
        lines.append(f"- LQ inputs: {cache.made} made, {cache.reused} reused (OUT/lq/manifest.json)")
    if skipped:
        lines.append(f"- {len(skipped)} images skipped: " + "; ".join(f"{a}: {b}" for a, b in skipped[:5]))
    lines.append("")
    header = (
        ["method"] + [iqa.LABELS[m] + (" ↓" if m in iqa.LOWER_BETTER else "") for m in order] + ["s / image (median)"]
    )
    oracles = {m: next((r.get("oracles") for r in rows if r["method"] == m and r.get("oracles")), "") for m in methods}
    plain, helped = [m for m in methods if not oracles[m]], [m for m in methods if oracles[m]]
    for group in (plain, helped):
        if not group:
            continue
        if group is helped:
            lines += [
                "",
                "With oracles (help from the ground truth, as some published baselines are scored: never ranked "
                "beside the rows above):",
                "",
            ]
        head = header if group is plain else header[:1] + ["oracles"] + header[1:]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for method in group:
            mine = [r for r in rows if r["method"] == method and "error" not in r]
            cells = [method] + ([oracles[method]] if group is helped else [])
            for m in order:
                cells.append(fmt_cell(fid.get(method)) if m == "fid" else fmt_cell(mean_or_nan(r.get(m) for r in mine)))
            # the median: the first image of a method also pays one-time costs (compiling the renderer, weights)
            seconds = [r["seconds"] for r in mine if r.get("seconds") is not None]
            cells.append(fmt_cell(float(np.median(seconds)) if seconds else None, 3))
            lines.append("| " + " | ".join(cells) + " |")
    failures = []
    for method in methods:  # failed or missing predictions, in the text a reader sees
        errors = [r for r in rows if r["method"] == method and "error" in r]
        if errors:
            scored = sum(1 for r in rows if r["method"] == method and "error" not in r)
            failures.append(
                f"- **{method}: {len(errors)} of {len(errors) + scored} images failed** (its means "
                f"are over the other {scored}); e.g. {errors[0]['image']}: {errors[0]['error']}"
            )
    if failures:
        lines += ["", *failures]
    if any("px@r<=1" in r for r in rows):
        labels = [b[0] for b in BINS] + ["occlusion"]
        pixels = [r for r in rows if r["method"] == methods[0] and "px@r<=1" in r]
        total = sum(sum(r[f"px@{b[0]}"] for b in BINS) for r in pixels) or 1
        share = {lab: sum(r[f"px@{lab}"] for r in pixels) / total for lab in labels}
        lines += [
            "",
            "PSNR (dB) by blur radius r = K·|d − d_f| and in the occlusion band (pixels within r of a "
            "disparity discontinuity), pooled over all images' pixels; share of pixels in brackets:",
            "",
            "| method | " + " | ".join(f"{lab} ({100 * share[lab]:.1f}%)" for lab in labels) + " |",
            "|---|" + "---|" * len(labels),
        ]
        for method in methods:
            mine = [r for r in rows if r["method"] == method and "px@r<=1" in r]
            cells = [method]
            for lab in labels:
                # pooled PSNR: the pixel-weighted mean squared error of the stratum over all images
                se = [
                    (r[f"px@{lab}"], 255.0**2 / 10 ** (r[f"psnr@{lab}"] / 10))
                    for r in mine
                    if r[f"px@{lab}"] and not math.isnan(r[f"psnr@{lab}"])
                ]
                count = sum(c for c, _ in se)
                mse = sum(c * e for c, e in se) / count if count else None
                psnr = None if mse is None else math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
                cells.append("–" if psnr is None else fmt_cell(psnr, 2))
            lines.append("| " + " | ".join(cells) + " |")
    lines += f_number_table(rows, methods)
    lines += group_table(rows, methods, [m for m in ("psnr", "ssim") if m in order])
    return "\n".join(lines) + "\n"


def write_html(path: Path, summary: str, title: str, examples: bool) -> None:
    """report.html: summary.md as a page (python-markdown's tables), with examples.png below it."""
    import html

    import markdown

    body = markdown.markdown(summary, extensions=["tables"])
    figure = '<h2>Examples</h2><img src="examples.png" alt="input, each method, target">' if examples else ""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}
img{{max-width:100%}}</style></head><body>
{body}
{figure}
</body></html>
"""
    with atomic_file(path, "w") as f:
        f.write(page)


def group_table(rows: list[dict], methods: list[str], metrics: list[str]) -> list[str]:
    """Means per method by the benchmark's own breakdown (BLB's blur level, RealBokeh's f-number, a set's lens
    character)."""
    groups = sorted({r["group"] for r in rows if r.get("group") is not None}, key=_group_order)
    if not groups or not metrics:
        return []
    title = f"{' / '.join(iqa.LABELS[m] for m in metrics)} by group"
    return _breakdown(rows, methods, lambda r: r.get("group"), groups, title, metrics)


def _group_order(g: str):
    """'level 2' < 'level 10'; 'f/2' < 'f/8' < 'f/16': by the number in the label."""
    try:
        return (0, float(g.split()[-1].removeprefix("f/")))
    except ValueError:
        return (1, g)


def f_number_table(rows: list[dict], methods: list[str]) -> list[str]:
    """Mean PSNR per method by the target camera's f-number (camera-true synthetic sets; none elsewhere)."""
    if not any("f_number" in r and "psnr" in r for r in rows):
        return []

    def label(r):
        return next(name for hi, name in F_NUMBER_BINS if r["f_number"] <= hi) if "f_number" in r else None

    used = [name for _, name in F_NUMBER_BINS if any(label(r) == name for r in rows)]
    return _breakdown(rows, methods, label, used, "PSNR (dB) by the target camera's f-number", ["psnr"])


def _breakdown(rows: list[dict], methods: list[str], label_of, labels: list[str], title: str, metrics) -> list[str]:
    """A table of means per method (rows) by ``label_of(row)`` (columns, in the order of ``labels``)."""
    count = {g: len({r["image"] for r in rows if label_of(r) == g}) for g in labels}
    out = [
        "",
        f"{title} (images in brackets):",
        "",
        "| method | " + " | ".join(f"{g} ({count[g]})" for g in labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for method in methods:
        cells = [method]
        for g in labels:
            mine = [r for r in rows if r["method"] == method and "error" not in r and label_of(r) == g]
            cells.append(
                " / ".join(fmt_cell(mean_or_nan(r.get(m) for r in mine), 2 if m == "psnr" else 4) for m in metrics)
            )
        out.append("| " + " | ".join(cells) + " |")
    return out


def example_sheet(path: Path, examples: list, labels: list[str], width: int = 256) -> None:
    """One row per image: input, each method, target; labelled columns."""
    from PIL import ImageDraw

    rows = []
    for name, images in examples:
        h0, w0 = images[-1].shape[:2]
        height = max(1, round(h0 * width / w0))
        cells = []
        for img in images:
            cell = (
                Image.new("RGB", (width, height), (40, 40, 40))
                if img is None
                else Image.fromarray(img if img.ndim == 3 else np.repeat(img[..., None], 3, 2)).resize((width, height))
            )
            cells.append(cell)
        row = Image.new("RGB", (width * len(cells), height + 14), (255, 255, 255))
        ImageDraw.Draw(row).text((2, 1), name, fill=(0, 0, 0))
        for i, c in enumerate(cells):
            row.paste(c, (i * width, 14))
        rows.append(row)
    head = Image.new("RGB", (rows[0].width, 16), (255, 255, 255))
    draw = ImageDraw.Draw(head)
    for i, lab in enumerate(labels):
        draw.text((i * width + 2, 2), lab, fill=(0, 0, 0))
    sheet = Image.new("RGB", (rows[0].width, 16 + sum(r.height for r in rows)), (255, 255, 255))
    sheet.paste(head, (0, 0))
    y = 16
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    save_image(path, sheet)
