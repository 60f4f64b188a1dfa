"""The bundled demo assets scan cleanly, include a hair-like fractional matte, and feed a contact sheet."""

import numpy as np
from PIL import Image

from common.images import load_image
from datagen.assets import scan, usable
from datagen.demo_assets import make_demo_assets
from datagen.preview import contact_sheet
from datagen.scenes import SceneConfig, draw_scene, make_sample


def test_demo_assets_scan_and_preview(tmp_path):
    root = make_demo_assets(tmp_path / "demo")
    rows = scan(
        [("generic", root / "fg"), ("backgrounds", root / "bg")], min_size=128, val_fraction=0.0, progress=False
    )
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


def test_stereo_holes_are_filled_with_the_background_beside_them():
    """Unknown disparities (occluded in the other view) take the farther of their row's nearest known neighbours,
    never a pit down to the scene's farthest depth: a hole between a near and a far surface becomes the far one,
    a hole inside one surface that surface."""
    from datagen.demo_assets import fill_disparity_holes

    d = np.array(
        [
            [np.inf, 50.0, 50.0, np.inf, np.inf, 20.0, 20.0, 0.0, 20.0, np.nan],
            [np.inf] * 10,
            [30.0, 30.0, 31.0, np.inf, 32.0, 32.0, 33.0, 33.0, 34.0, 35.0],
        ],
        np.float32,
    )
    filled = fill_disparity_holes(d)
    np.testing.assert_array_equal(filled[0], [50, 50, 50, 20, 20, 20, 20, 20, 20, 20])
    np.testing.assert_array_equal(filled[1], [20] * 10)  # no known pixel in the row: the farthest known
    np.testing.assert_array_equal(filled[2, 3], 31.0)
    # on the real Middlebury ground truth: no filled pixel lies below both row neighbours (a pit)
    from skimage import data

    _, _, gt = data.stereo_motorcycle()
    gt = np.asarray(gt, np.float32)
    holes = ~(np.isfinite(gt) & (gt > 0))
    assert holes.mean() > 0.05  # the ground truth does have them
    moto = fill_disparity_holes(gt)
    assert np.isfinite(moto).all() and moto.min() > 0
    iy, ix = np.nonzero(holes[:, 1:-1])
    ix += 1
    assert np.all(moto[iy, ix] >= np.minimum(moto[iy, ix - 1], moto[iy, ix + 1]) - 1e-6)
