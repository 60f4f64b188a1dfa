"""Bundled demo assets, generated on first use from photographs that ship inside scikit-image.

    python -m datagen.demo_assets [--out DIR]

Backgrounds: scikit-image's colour photographs (coffee, chelsea, rocket, astronaut). Foregrounds: subjects cut out
of the same photographs with procedurally generated soft mattes (a feathered ellipse; a blob with a hair-like fringe
of thin fractional-alpha strands; a soft rounded rectangle). Licences, from the docstrings of skimage.data: astronaut
(NASA, no known copyright restrictions), coffee (CC0, Rachel Michetti), chelsea (CC0, Stefan van der Walt), rocket
(SpaceX, released into the public domain); written to LICENSES.txt beside the assets. Plus the Middlebury 2014
"motorcycle" left view with its real disparity (``bg/motorcycle.png`` + ``bg/motorcycle_disp.npy``, unknown pixels
filled with the background beside them: :func:`fill_disparity_holes`), a background with real depth (Scharstein et
al., GCPR 2014). The folder layout is the scanner's: ``fg/`` (generic RGBA cut-outs) and ``bg/`` (backgrounds);
nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

BACKGROUNDS = ("coffee", "chelsea", "rocket", "astronaut")
LICENCES = {
    "astronaut": "NASA, no known copyright restrictions",
    "coffee": "CC0, Rachel Michetti",
    "chelsea": "CC0, Stefan van der Walt",
    "rocket": "SpaceX, public domain",
    "motorcycle": "Middlebury Stereo 2014 (Scharstein et al.), as shipped by scikit-image",
}
VERSION = "3"  # bump when the set changes: an older generated folder is rewritten


def default_dir() -> Path:
    """Where generated demo assets live: $BOKEHGEN_CACHE or ~/.cache/bokehgen, then demo_assets/."""
    base = Path(os.environ.get("BOKEHGEN_CACHE", Path.home() / ".cache" / "bokehgen"))
    return base / "demo_assets"


def _ellipse(h, w, soft):
    ys, xs = (np.mgrid[0:h, 0:w] + 0.5) / [[[h]], [[w]]]
    d = np.hypot((ys - 0.5) / 0.42, (xs - 0.5) / 0.38)
    return np.clip((1.0 - d) * min(h, w) * 0.4 / soft, 0.0, 1.0)


def _hairy(h, w, rng):
    """A soft blob with a fringe of thin strands whose alpha is fractional (like hair against the sky)."""
    base = _ellipse(h, w, soft=3.0)
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    cy, cx = h * 0.5, w * 0.5
    strands = np.zeros((h, w))
    for _ in range(160):
        ang = rng.uniform(0, 2 * np.pi)
        r0 = 0.36 * min(h, w) * rng.uniform(0.8, 1.0)
        length = min(h, w) * rng.uniform(0.06, 0.18)
        curl = rng.uniform(-0.6, 0.6)
        for t in np.linspace(0, 1, 40):
            a = ang + curl * t * 0.3
            y = cy + (r0 + length * t) * np.sin(a)
            x = cx + (r0 + length * t) * np.cos(a)
            iy, ix = int(y), int(x)
            if 0 <= iy < h and 0 <= ix < w:
                strands[iy, ix] = max(strands[iy, ix], 0.35 + 0.45 * (1 - t))
    return np.clip(np.maximum(base, strands), 0.0, 1.0)


def _rounded_rect(h, w, soft):
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    qy = np.abs(ys - h / 2) - h * 0.32
    qx = np.abs(xs - w / 2) - w * 0.3
    r = min(h, w) * 0.12
    d = np.hypot(np.maximum(qy + r, 0), np.maximum(qx + r, 0)) - r
    return np.clip(-d / soft + 0.5, 0.0, 1.0)


def make_demo_assets(out: Path | None = None) -> Path:
    """Write the demo assets (idempotent); returns the folder."""
    from skimage import data

    final = Path(out) if out else default_dir()
    if _complete(final):
        return final
    # written into a private folder and moved into place whole: Ray tasks on one node may generate at once, and
    # none may read a half-written file
    final.parent.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    done = out / "DONE"
    (out / "fg").mkdir(parents=True, exist_ok=True)
    (out / "bg").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in BACKGROUNDS:
        Image.fromarray(getattr(data, name)()[..., :3]).save(out / "bg" / f"{name}.png")
    cutouts = [
        ("astronaut", (30, 360, 100, 400), "hairy"),
        ("chelsea", (0, 300, 40, 400), "ellipse"),
        ("coffee", (40, 380, 100, 500), "rect"),
        ("rocket", (20, 420, 180, 420), "ellipse"),
    ]
    for name, (y0, y1, x0, x1), shape in cutouts:
        img = getattr(data, name)()[y0:y1, x0:x1, :3]
        h, w = img.shape[:2]
        if shape == "hairy":
            matte = _hairy(h, w, rng)
        elif shape == "ellipse":
            matte = _ellipse(h, w, soft=4.0)
        else:
            matte = _rounded_rect(h, w, soft=3.0)
        alpha = np.round(matte * 255).astype(np.uint8)
        Image.fromarray(np.dstack([img, alpha])).save(out / "fg" / f"{name}_{shape}.png")
    left, _, disp = data.stereo_motorcycle()
    disp = fill_disparity_holes(np.asarray(disp, np.float32))
    Image.fromarray(left[..., :3]).save(out / "bg" / "motorcycle.png")
    np.save(out / "bg" / "motorcycle_disp.npy", disp)
    (out / "LICENSES.txt").write_text("".join(f"{k}: {v} (scikit-image data)\n" for k, v in LICENCES.items()))
    done.write_text(VERSION + "\n")
    if not _complete(final):
        shutil.rmtree(final, ignore_errors=True)  # an older version
        try:
            os.rename(out, final)
        except OSError:  # another process moved its copy in first: the same bytes
            pass
    shutil.rmtree(out, ignore_errors=True)
    return final


def _complete(folder: Path) -> bool:
    done = folder / "DONE"
    return done.exists() and done.read_text().strip() == VERSION


def fill_disparity_holes(disp: np.ndarray) -> np.ndarray:
    """A stereo ground truth's unknown pixels (non-finite or ≤ 0: mostly seen by one camera only, i.e. occluded
    background beside a nearer edge) filled along their row with the smaller (farther) of the nearest known
    disparities to their left and right: the background the occluder hides, not a pit. A row with no known
    pixel takes the farthest known disparity."""
    valid = np.isfinite(disp) & (disp > 0)
    cols = np.arange(disp.shape[1])
    left = np.maximum.accumulate(np.where(valid, cols, -1), axis=1)
    right = np.minimum.accumulate(np.where(valid, cols, disp.shape[1])[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(disp.shape[0])[:, None]
    known = np.where(valid, disp, np.inf)
    from_left = np.where(left >= 0, known[rows, np.maximum(left, 0)], np.inf)
    from_right = np.where(right < disp.shape[1], known[rows, np.minimum(right, disp.shape[1] - 1)], np.inf)
    fill = np.minimum(from_left, from_right)
    fill = np.where(np.isfinite(fill), fill, known[valid].min() if valid.any() else 1.0)
    return np.where(valid, disp, fill).astype(np.float32)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the user cache)")
    return p.parse_args(argv)


def main(args: argparse.Namespace) -> Path:
    out = make_demo_assets(args.out)
    print(f"demo assets in {out}")
    return out


def cli() -> None:
    from common.cli import run

    run(main, parse_args())


if __name__ == "__main__":
    cli()
