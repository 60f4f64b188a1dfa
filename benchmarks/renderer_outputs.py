"""Render a fixed set of scenes through every path of the render kernel (constant, tilted and general layers;
defaults, the build's settings, no strips, polygon, cat-eye, grid, no prefilter, refine 1, rounded blades; three
K/focus pairs) and save every image and its ray count to one .npz, so two versions of the kernel can be compared
bit for bit:

    python benchmarks/renderer_outputs.py before.npz     # on the old code
    python benchmarks/renderer_outputs.py after.npz      # on the new code
    python benchmarks/renderer_outputs.py --compare before.npz after.npz
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import disk_alpha, textured

from renderer import Aperture, Layer, render_bokeh

if sys.argv[1] == "--compare":
    a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
    differ = [k for k in a.files if k not in b.files or not np.array_equal(a[k], b[k])]
    print(f"{len(a.files)} arrays compared, {len(differ)} differ{': ' + ', '.join(differ[:10]) if differ else ''}")
    sys.exit(1 if differ else 0)

h, w = 96, 128
bg = Layer(textured(h, w, 1), np.ones((h, w), np.float32), np.full((h, w), 0.1, np.float32))
ys, xs = np.mgrid[0:h, 0:w]
tilted = Layer(textured(h, w, 2), np.ones((h, w), np.float32), (0.05 + 0.002 * xs + 0.001 * ys).astype(np.float32))
fg = Layer(textured(h, w, 3), disk_alpha(h, w, 40, 50, 25), np.full((h, w), 0.8, np.float32))
fg2 = Layer(textured(h, w, 4), disk_alpha(h, w, 60, 90, 20), np.full((h, w), 0.6, np.float32))
general = Layer(
    textured(h, w, 5),
    disk_alpha(h, w, 50, 70, 35),
    (0.4 + 0.3 * np.sin(xs / 9.0) * np.cos(ys / 7.0)).astype(np.float32),
)
scenes = {"flat": [bg, fg, fg2], "tilted": [tilted, fg], "general": [bg, general, fg2]}
configs = {
    "defaults": {},
    "build": dict(cell_px=10.0, edge_px=np.inf, strip_min_px=1.0),
    "edge3_nostrips": dict(edge_px=3.0, strips=False),
    "hexagon": dict(aperture="hexagon"),
    "cateye": dict(aperture="cateye"),
    "grid": dict(pattern="grid", grid_n=15),
    "noprefilter": dict(prefilter=False),
    "refine1": dict(refine=1),
    "round_blades": dict(aperture=Aperture(blades=7, rotation_deg=10, roundness=0.4, cateye=0.3, falloff=False)),
}
out = {}
for sname, layers in scenes.items():
    for cname, kw in configs.items():
        for K, df in ((24.0, 0.8), (12.0, 0.1), (0.0, 0.5)):
            img, info = render_bokeh(layers, K, df, seed=3, return_info=True, **kw)
            out[f"{sname}/{cname}/{K}"] = img
            out[f"{sname}/{cname}/{K}/spp"] = np.array([info["rays"], info["max_spp"]])
np.savez(sys.argv[1], **out)
print(len(out), "arrays")
