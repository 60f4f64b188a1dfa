"""report.html of a built dataset: the contact sheet, histograms of every sampled parameter, per-shard counts,
failures and timings. One self-contained file (figures embedded as PNG)."""

from __future__ import annotations

import base64
import html
import io
import json

import matplotlib

from common import config
from datagen.scenes import SceneConfig
from manifests import Store, stats

HISTOGRAMS = [
    "fg0_disparity",
    "fg1_disparity",
    "bg_plane_0",
    "focus_disparity",
    "fg0_scale",
    "fg1_scale",
    "bg_crop_2",
    "deg_stage1_noise_sigma",
    "deg_stage1_noise_scale",
    "deg_stage1_jpeg_quality",
    "deg_stage2_jpeg_quality",
    "deg_kernel1_sigma_x",
    "deg_stage1_resize_scale",
    # camera-true builds only (datagen.camera)
    "cam_target_f_number",
    "cam_target_focal_length_mm",
    "cam_focus_distance_m",
    "cam_z_near_m",
    "cam_input_zoom",
    "cam_K_input",
    # lens characters only (datagen.character)
    "lens_loca_r",
    "lens_cateye",
]
CATEGORIES = [
    "focus_target_used",
    "deg_kernel1_type",
    "deg_stage1_noise",
    "deg_final_order",
    "cam_target_name",
    "cam_input_focus_target",
    "lens_character",
]


def configured_vs_realised(table, cfg: dict, plt) -> list[str]:
    """Figures (base64 PNGs) of the realised distributions against the configured ones: K against its uniform
    range, the drawn focus target against ``scene.focus_probs``, the background model against ``bg_map_prob``
    (a background without a map always takes the plane), and the foregrounds' disparities against their range."""
    scene = config.from_dict(SceneConfig, cfg.get("scene", {}), "dataset.json", "scene.")
    figs = []
    k = [v for v in table["K"].to_pylist() if v is not None]
    lo, hi = scene.k_range
    fig, ax = plt.subplots(figsize=(3.6, 2.4))
    ax.hist(k, bins=16, range=(0, max(hi, 1e-6) * 1.05), density=True, alpha=0.7, label=f"realised (n={len(k)})")
    cameras = bool(cfg.get("camera", {}).get("target"))
    if hi > lo and not cameras:
        ax.plot([lo, lo, hi, hi], [0, 1 / (hi - lo), 1 / (hi - lo), 0], "r-", label="configured U(k_range)")
    ax.set_title("K (from each sample's camera and distances)" if cameras else "K", fontsize=9)
    ax.legend(fontsize=6)
    figs.append(_png(fig))
    n_fg = scene.num_foregrounds
    names, probs = scene.targets()
    drawn = table["focus_target"].to_pylist()
    fig, ax = plt.subplots(figsize=(3.6, 2.4))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [drawn.count(n) / max(len(drawn), 1) for n in names], 0.4, label="realised")
    ax.bar([i + 0.2 for i in x], probs, 0.4, label="configured")
    ax.set_xticks(list(x), names, fontsize=7)
    ax.set_title("focus target (drawn)", fontsize=9)
    ax.legend(fontsize=6)
    figs.append(_png(fig))
    if "bg_model" in table.column_names:
        models = table["bg_model"].to_pylist()
        fig, ax = plt.subplots(figsize=(3.6, 2.4))
        share = models.count("map") / max(len(models), 1)
        ax.bar(["realised", "configured (max)"], [share, scene.bg_map_prob])
        ax.set_ylim(0, 1)
        ax.set_title("share of depth-map backgrounds", fontsize=9)
        figs.append(_png(fig))
    fg = [
        v
        for i in range(n_fg)
        if f"fg{i}_disparity" in table.column_names
        for v in table[f"fg{i}_disparity"].to_pylist()
        if v is not None
    ]
    if fg:
        fig, ax = plt.subplots(figsize=(3.6, 2.4))
        ax.hist(fg, bins=20, range=(0, 1), alpha=0.7, label="foregrounds")
        bg = [v for v in table["bg_plane_0"].to_pylist() if v is not None]
        ax.hist(bg, bins=20, range=(0, 1), alpha=0.7, label="background plane offset")
        ax.set_title("disparities", fontsize=9)
        ax.legend(fontsize=6)
        figs.append(_png(fig))
    return figs


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    matplotlib.pyplot.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(folder, sheet: bytes | None = None) -> str:
    """Write report.html into ``folder`` (a path, a ``pyarrow.fs`` URI or a Store); ``sheet``: the contact
    sheet's PNG bytes. Returns the report's location."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = Store.of(folder)
    table = store.read_table("samples.parquet")
    figs = []
    for name in HISTOGRAMS + CATEGORIES:
        if name not in table.column_names:
            continue
        values = [v for v in table[name].to_pylist() if v is not None and v == v]
        fig, ax = plt.subplots(figsize=(3.2, 2.2))
        if name in CATEGORIES:
            labels = sorted(set(map(str, values)))
            ax.bar(labels, [sum(1 for v in values if str(v) == lab) for lab in labels])
            ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        else:
            ax.hist(values, bins=20)
        ax.set_title(name, fontsize=9)
        figs.append(_png(fig))
    cfg = json.loads(store.read_text("dataset.json")).get("config", {}) if store.exists("dataset.json") else {}
    compare = configured_vs_realised(table, cfg, plt)
    st = stats(store)
    timings = {}
    if store.exists("build_log.json"):
        for run in json.loads(store.read_text("build_log.json")):
            for shard in run["shards"]:
                timings[shard["shard"] + ".tar"] = shard["seconds"]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{info['samples']}</td><td>{len(info['failures'])}</td>"
        f"<td>{timings.get(name, float('nan')):.1f}</td></tr>"
        for name, info in st["shards"].items()
    )
    sheet_html = ""
    if sheet:
        sheet_html = (
            f"<h2>Samples</h2><p>LQ · all-in-focus · disparity · defocus · bokeh</p>"
            f'<img src="data:image/png;base64,{base64.b64encode(sheet).decode()}" width="100%">'
        )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>bokehgen dataset report</title>
<style>body{{font-family:sans-serif;margin:2em}} img.h{{margin:4px}} td,th{{padding:2px 8px;text-align:right}}</style>
</head><body><h1>bokehgen dataset: {st["samples"]} samples</h1>
<p>splits: {html.escape(json.dumps(st["splits"]))}</p>{sheet_html}
<h2>Configured vs realised</h2>{"".join(f'<img class="h" src="data:image/png;base64,{f}">' for f in compare)}
<h2>Sampled parameters</h2>{"".join(f'<img class="h" src="data:image/png;base64,{f}">' for f in figs)}
<h2>Shards</h2><table>
<tr><th>shard</th><th>samples</th><th>failures</th><th>seconds (last build)</th></tr>{rows}</table>
</body></html>"""
    store.write_text("report.html", page)
    return store.path("report.html")
