"""Render the kernels' edge cases; run under NUMBA_BOUNDSCHECK=1 by test_boundscheck.py (an IndexError fails it).

Edge cases: the most samples per pixel, refinement, every layer kind (constant, plane, general), a general layer
that reaches the frame's edge, the grid pattern, a cat-eye aperture, and the build's render settings.
"""

import numpy as np

from datagen.config import BUILD_RENDER
from renderer import Aperture, Highlights, Layer, composite, defocus_map, pinhole_view, render_bokeh

H = W = 40
rng = np.random.default_rng(0)
ys, xs = np.mgrid[0:H, 0:W] / H


def layer(disp, alpha=None, name=""):
    rgb = rng.random((H, W, 3)).astype(np.float32)
    a = np.ones((H, W), np.float32) if alpha is None else alpha.astype(np.float32)
    return Layer(rgb, a, np.asarray(disp, np.float32), name=name)


disk = (np.hypot(ys - 0.5, xs - 0.5) < 0.3).astype(np.float32)
edge_blob = (np.hypot(ys, xs) < 0.45).astype(np.float32)  # touches the top-left corner of the frame
scenes = {
    "constant": [layer(np.full((H, W), 0.8), disk), layer(np.full((H, W), 0.1))],
    "plane": [layer(0.6 + 0.2 * xs, disk), layer(0.05 + 0.2 * ys)],
    "general": [
        layer(0.5 + 0.3 * np.sin(9 * xs) * np.cos(7 * ys), edge_blob),
        layer(np.where(xs > 0.5, 0.3, 0.05) + 0.1 * ys),
    ],  # a depth step, reaching every edge
    "general_alone": [layer(np.clip(0.2 + 0.7 * (xs > 0.3) * (ys > 0.6) + 0.1 * xs, 0, 1))],
}
qualities = {
    "default": {},
    "max_samples": {"cell_px": 0.5, "min_samples": 64, "max_samples": 4096, "refine": 4},
    "refine": {"refine": 3, "edge_px": 0.0},
    "build": BUILD_RENDER,  # datagen's BuildConfig.render
    "no_strips": {"strips": False, "prefilter": False},
    "grid": {"pattern": "grid", "grid_n": 9},
}
n = 0
for name, layers in scenes.items():
    composite(layers)
    pinhole_view(layers)
    defocus_map(layers, 32.0, 0.5)
    for qname, q in qualities.items():
        for K, d_f in ((32.0, 0.5), (32.0, 0.95), (4.0, 0.0)):
            out = render_bokeh(layers, K=K, focus_disparity=d_f, **q)
            assert np.isfinite(out).all(), (name, qname)
            n += 1
    render_bokeh(
        layers, K=24.0, focus_disparity=0.3, aperture=Aperture(blades=6, cateye=0.5), highlights=Highlights(0.5, 4.0)
    )
    n += 1
print(f"boundscheck renders: {n} ok")
