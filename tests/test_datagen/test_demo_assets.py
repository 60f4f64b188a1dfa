"""The bundled demo assets scan cleanly, include a hair-like fractional matte, and feed a contact sheet."""

import numpy as np
from PIL import Image

from datagen.assets import scan, usable
from datagen.demo_assets import make_demo_assets
from common.images import load_image
from datagen.preview import contact_sheet
from datagen.scenes import SceneConfig, draw_scene, make_sample


def test_demo_assets_scan_and_preview(tmp_path):
    root = make_demo_assets(tmp_path / "demo")
    rows = scan([("generic", root / "fg"), ("backgrounds", root / "bg")], min_size=128, val_fraction=0.0,
                progress=False)
    assert all(r.ok for r in rows), [r.reason for r in rows if not r.ok]
    fgs, bgs = usable(rows, "foreground", "train"), usable(rows, "background", "train")
    assert len(fgs) == 4 and len(bgs) == 5
    # the Middlebury motorcycle comes with its real disparity, nearer = larger, no holes
    (moto,) = [b for b in bgs if b.disp_uri]
    assert moto.uri.endswith("motorcycle.png") and moto.disp_uri.endswith("motorcycle_disp.npy")
    disp = np.load(moto.disp_uri)
    assert disp.shape == (moto.height, moto.width) and np.isfinite(disp).all() and disp.min() > 0
    _, alpha = load_image(root / "fg" / "astronaut_hairy.png")
    fractional = (alpha > 0.05) & (alpha < 0.95)
    assert fractional.mean() > 0.01  # strands and feathered edge, not a binary mask
    by_id = {a.id: a for a in rows}
    samples = [make_sample(draw_scene(0, i, fgs, bgs, SceneConfig(), size=96), by_id) for i in range(2)]
    sheet = np.asarray(Image.open(contact_sheet(samples, tmp_path / "sheet.png")))
    assert sheet.shape == (2 * 96, 5 * 96, 3)
    assert (tmp_path / "demo" / "LICENSES.txt").read_text().count("\n") == 5
