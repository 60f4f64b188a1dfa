"""Degrade a folder of images into HQ/LQ pairs, with a Parquet file of every draw.

    python -m degradations.cli --input PHOTOS --out PAIRS [--preset s3diff | --config FILE] [--set key=value ...]

Each image is loaded with its EXIF orientation applied and converted to RGB, centre-cropped to a multiple of the
scale, and degraded with the seed derived from (--seed, its index in sorted order). Writes PAIRS/hq/NAME.png,
PAIRS/lq/NAME.png, PAIRS/pairs.parquet (schema: manifests.pairs_schema) and PAIRS/skipped.parquet (file and reason
for every image that could not be used; one bad file never stops the run).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.images import IMAGE_SUFFIXES, list_images, load_image, on_white, to_uint8
from manifests import pairs_schema, skipped_schema, write_table
from manifests.lock import writer_lock
from manifests.outdir import OutputFolderError, claim
from manifests.storage import save_image

from .config import DegradationConfig
from .pipeline import degrade

COMMAND = "degradations.cli"
OUTPUTS = ("hq/*.png", "lq/*.png", "pairs.parquet", "skipped.parquet")


def sample_seed(seed: int, index: int) -> int:
    """The seed of image ``index``: from (run seed, index) only (ARCHITECTURE.md, "Seeds")."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def load_rgb(path: Path) -> np.ndarray:
    """H×W×3 uint8 RGB with EXIF orientation applied (transparent images over white); raises ValueError naming the
    file and the problem."""
    return to_uint8(on_white(*load_image(path)))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, required=True, help="folder of images (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--preset", default="realesrgan_x4plus", help="shipped config: realesrgan_x4plus or s3diff")
    p.add_argument("--config", type=Path, help="YAML config file (overrides --preset)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (repeatable)",
    )
    p.add_argument("--seed", type=int, default=0, help="run seed; image i uses a seed derived from (seed, i)")
    return p.parse_args(argv)


def main(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    try:
        cfg = DegradationConfig.from_yaml(args.config) if args.config else DegradationConfig.preset(args.preset)
        cfg = cfg.override(args.overrides)
    except ValueError as e:  # names the file or the override and the key
        raise SystemExit(f"error: {e}") from None
    with writer_lock(args.out, COMMAND):
        return _degrade_folder(args, cfg)


def _degrade_folder(args: argparse.Namespace, cfg) -> tuple[list[dict], list[dict]]:
    if not args.input.exists():
        raise SystemExit(f"error: --input {args.input}: no such folder")
    if not args.input.is_dir():
        raise SystemExit(f"error: --input {args.input}: is a file, not a folder of images")
    try:
        claim(args.out, COMMAND, OUTPUTS, inputs=[args.input], create=False, signature="pairs.parquet")
    except OutputFolderError as e:
        raise SystemExit(f"error: {e}") from None
    files = list_images(args.input)
    if not files:
        raise SystemExit(f"error: --input {args.input}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    claim(args.out, COMMAND, OUTPUTS, inputs=[args.input], signature="pairs.parquet")
    (args.out / "hq").mkdir(parents=True, exist_ok=True)
    (args.out / "lq").mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    for index, path in enumerate(tqdm(files, desc="degrading", unit="img")):
        try:
            rgb = load_rgb(path)
            if min(rgb.shape[:2]) < cfg.min_side:  # checked before the crop to the scale, which would hide the size
                raise ValueError(
                    f"{path}: {rgb.shape[1]}×{rgb.shape[0]} is smaller than the minimum of {cfg.min_side} "
                    f"px on a side (scale × largest kernel)"
                )
            h, w = (s - s % cfg.scale for s in rgb.shape[:2])
            top, left = (rgb.shape[0] - h) // 2, (rgb.shape[1] - w) // 2
            hq = np.ascontiguousarray(rgb[top : top + h, left : left + w])
            lq, rec = degrade(hq, sample_seed(args.seed, index), cfg)
        except ValueError as e:
            skipped.append({"source": str(path), "reason": str(e)})
            continue
        name = path.relative_to(args.input).with_suffix("").as_posix().replace("/", "__")
        save_image(args.out / "hq" / f"{name}.png", hq)
        save_image(args.out / "lq" / f"{name}.png", lq)
        rows.append(
            {
                "name": name,
                "source": str(path),
                "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "hq": f"hq/{name}.png",
                "lq": f"lq/{name}.png",
                "hq_height": h,
                "hq_width": w,
                "index": index,
                **rec.columns(),
            }
        )
    write_table(rows, pairs_schema(), args.out / "pairs.parquet")
    write_table(skipped, skipped_schema(), args.out / "skipped.parquet")
    # an earlier run's pairs that this run did not make: the folder holds exactly what pairs.parquet lists
    listed = {r["hq"] for r in rows} | {r["lq"] for r in rows}
    stale = [
        p for sub in ("hq", "lq") for p in sorted((args.out / sub).glob("*.png")) if f"{sub}/{p.name}" not in listed
    ]
    for p in stale:
        p.unlink()
    if stale:
        print(f"removed {len(stale)} files of an earlier run that this one did not make")
    print(f"wrote {len(rows)} HQ/LQ pairs to {args.out.resolve()} ({len(skipped)} skipped: see skipped.parquet)")
    return rows, skipped


def cli() -> None:
    from common.cli import run

    run(main, parse_args())


if __name__ == "__main__":
    cli()
