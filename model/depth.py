"""``python -m model.depth --images DIR --weights FOLDER``: disparity maps for a folder of background photos, with
the Depth Anything V2 network of :mod:`model.depthnet`."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch

from .depthnet import DepthEstimator, check_depth_folder, load_depth_model

# ---------------------------------------------------------------------------------------------------------------
# python -m model.depth --images DIR: disparity maps for a folder of background photos
# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m model.depth",
        description=(
            "Write NAME_disp.npy (float32, larger = nearer, [0, 1]) beside every photo of a folder with a local Depth "
            "Anything V2 folder, so datagen's 'backgrounds' layout gives those photos real depth."
        ),
    )
    p.add_argument("--images", required=True, type=Path, help="folder of photos (searched recursively)")
    p.add_argument(
        "--weights",
        required=True,
        type=Path,
        help="local Depth Anything V2 folder in transformers format (e.g. Depth-Anything-V2-Large-hf, "
        "or a model.distill output): nothing is downloaded",
    )
    p.add_argument("--input-size", type=int, default=518, help="short side fed to the network (multiple of 14)")
    p.add_argument("--overwrite", action="store_true", help="replace existing NAME_disp.npy files")
    args = p.parse_args(argv)
    if not args.images.is_dir():
        p.error(f"--images {args.images}: no such folder")
    try:
        check_depth_folder(args.weights)
    except ValueError as e:
        p.error(str(e))
    if args.input_size < 14:
        p.error(f"--input-size: at least 14, got {args.input_size}")
    return args


DEPTH_RECORD = ".bokehgen-depth.json"  # in --images: the maps model.depth wrote, with their sha256


def main(args: argparse.Namespace) -> dict:
    """Write the maps; returns counts (written, kept, failed with reasons). A bad photo is reported and skipped.

    A photo that already has a disparity map (``NAME_disp.npy`` or ``NAME_disp.png``) keeps it: the user's depth
    is never replaced. ``--overwrite`` replaces only maps this command wrote (listed with their sha256 in
    ``.bokehgen-depth.json`` in the folder) and still unchanged."""
    import hashlib
    import json

    from tqdm import tqdm

    from common.images import list_images, load_image
    from manifests import Store

    folder = Store(args.images)
    record = json.loads(folder.read_text(DEPTH_RECORD)) if folder.exists(DEPTH_RECORD) else {}
    photos = [p for p in list_images(args.images) if not p.stem.endswith("_disp")]
    if not photos:
        raise SystemExit(f"error: --images {args.images}: no photos")
    estimator = DepthEstimator(load_depth_model(weights=args.weights), args.input_size).eval()
    written, kept, failed = [], [], []
    for photo in tqdm(photos, desc="depth", unit="photo"):
        target = photo.with_name(photo.stem + "_disp.npy")
        existing = [m for m in (target, photo.with_name(photo.stem + "_disp.png")) if m.exists()]
        rel = target.relative_to(args.images).as_posix()
        ours = target.exists() and record.get(rel) == hashlib.sha256(target.read_bytes()).hexdigest()
        if existing and not (args.overwrite and ours and existing == [target]):
            kept.append(str(existing[0]))
            continue
        try:
            rgb, alpha = load_image(photo)
        except ValueError as e:
            failed.append(str(e))
            print(f"skipped: {e}", file=sys.stderr)
            continue
        with torch.no_grad():
            disp = estimator(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0, 0].numpy().astype(np.float32)
        buf = io.BytesIO()
        np.save(buf, disp, allow_pickle=False)
        Store(target.parent).write_bytes(target.name, buf.getvalue())
        record[rel] = hashlib.sha256(buf.getvalue()).hexdigest()
        folder.write_text(DEPTH_RECORD, json.dumps(record, indent=1, sort_keys=True))
        written.append(str(target))
    print(
        f"{len(written)} disparity maps written, {len(kept)} kept (existing maps are never replaced, except ones "
        f"model.depth wrote, with --overwrite), {len(failed)} photos skipped "
        f"(use them with --assets backgrounds:{args.images})"
    )
    if not written and not kept:
        raise SystemExit(f"error: --images {args.images}: no disparity map written ({len(failed)} photos failed)")
    return {"written": written, "kept": kept, "failed": failed}


def cli() -> None:
    from common.cli import run

    run(main, parse_args())


if __name__ == "__main__":
    cli()
