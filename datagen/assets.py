"""Find and vet the assets of a dataset: matted foregrounds and background photographs.

Adapters for the layouts of the public matting sets:

* ``photomatte85``: a folder of RGBA PNGs (the alpha channel is the matte);
* ``aim500`` (``original/*.jpg`` + GT mattes in ``mask/``; its ``trimap/`` and ``usr/`` are not read), ``rwp636``
  (RealWorldPortrait-636: ``image/`` + GT mattes in ``alpha/``; its ``mask/``, ``trimap/`` and ``detailmap/`` are
  coarse, not the matte), ``am2k`` (``original/`` + ``mask/``), ``p3m10k`` (``blurred_image/`` + ``mask/``) and
  ``pairs`` (``image/`` + ``mask/``): an image folder and a matte folder whose files match by stem;
* ``generic``: one folder of RGBA images and/or image + matte pairs matched by stem (``NAME.jpg`` with
  ``NAME_alpha.png``, ``NAME_mask.png`` or ``NAME_matte.png``);
* ``backgrounds``: any images (landscapes in the paper), each optionally with a disparity map beside it
  (``NAME_disp.npy``, float, larger = nearer, or ``NAME_disp.png``, 16-bit grey) that scenes may use as its depth.

Every file is opened and checked once: unreadable or truncated files, image/matte size mismatches, empty or
all-opaque mattes and images smaller than ``min_size`` are kept in the manifest as skipped rows with the reason; a
scan never stops on one file. An asset's id is the SHA-256 of its bytes (image, then matte), so the same picture
found twice gets the same id, and its split (train/val) is a function of the id alone: validation samples never
reuse a training asset, whatever the order or the machine of the scan.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from common.images import IMAGE_SUFFIXES, FileBytes, display_name, load_alpha, load_image, read_disparity
from manifests import assets_schema, write_table

from .sources import AssetUnavailable, Folder, read_bytes, read_checked, shown

MATTE_SUFFIXES = ("_alpha", "_mask", "_matte")


@dataclass
class Asset:
    """One row of assets.parquet (schema: manifests.assets_schema)."""

    id: str
    uri: str
    alpha_uri: str  # "" when the matte is the image's own alpha channel (or a background)
    kind: str  # "foreground" | "background"
    source: str  # adapter / dataset name
    width: int
    height: int
    has_alpha: bool
    sha256: str
    split: str  # "train" | "val" | "" for skipped rows
    ok: bool
    reason: str  # why the file was skipped; "" when ok
    disp_uri: str = ""  # a background's disparity map (NAME_disp.npy / NAME_disp.png beside it), "" when none


def split_of(asset_id: str, val_fraction: float) -> str:
    """ "val" for a fixed, id-determined fraction of assets: the id's first 8 hex digits as a number in [0, 1)."""
    return "val" if int(asset_id[:8], 16) / 16**8 < val_fraction else "train"


def _skipped(
    uri: str, kind: str, source: str, reason: str, alpha_uri: str = "", sha: str = "", disp_uri: str = ""
) -> Asset:
    return Asset(sha[:16], uri, alpha_uri, kind, source, 0, 0, False, sha, "", False, reason, disp_uri)


DISP_SUFFIX = "_disp"


def load_disparity_map(path) -> np.ndarray:
    """A background's disparity map as H×W float32, larger = nearer (:func:`common.images.read_disparity`: a path or
    :class:`common.images.FileBytes`). Only its relative values matter (a scene rescales it), so a constant map is
    refused too, naming the file."""
    disp = read_disparity(path)
    if float(disp.max() - disp.min()) <= 0.0:
        raise ValueError(f"{display_name(path)}: constant disparity map (no depth to use)")
    return disp


def vet(
    image: str,
    matte: str | None,
    kind: str,
    source: str,
    *,
    min_size: int,
    val_fraction: float,
    disp: str | None = None,
) -> Asset:
    """Read and check one asset (locations as :mod:`datagen.sources` reads them: a local path, a URI or demo://),
    with its matte, or for a background its disparity map; returns an ok row or a skipped row naming the problem
    (never raises for a bad file)."""
    uri, alpha_uri, disp_uri = (
        display_name(image),
        display_name(matte) if matte else "",
        display_name(disp) if disp else "",
    )
    for path, text in ((image, uri), (matte, alpha_uri), (disp, disp_uri)):
        if path is not None and text != str(path):
            return _skipped(
                uri, kind, source, f"{text}: the file name is not valid UTF-8 (shown escaped); rename it", alpha_uri
            )
    try:
        blobs = [read_bytes(u) for u in (image, matte, disp) if u]
    except AssetUnavailable as e:
        return _skipped(uri, kind, source, f"{shown(uri)}: cannot read ({e})", alpha_uri)
    sha = hashlib.sha256(b"".join(blobs)).hexdigest()
    asset_id = sha[:16]
    files = dict(zip([u for u in (image, matte, disp) if u], blobs))
    try:
        rgb, alpha = load_image(FileBytes(files[image], shown(uri)))
        if matte is not None:
            alpha = load_alpha(FileBytes(files[matte], shown(alpha_uri)))
            if alpha.shape != rgb.shape[:2]:
                raise ValueError(
                    f"{shown(alpha_uri)}: matte size {alpha.shape[1]}×{alpha.shape[0]} does not match "
                    f"{shown(uri)} ({rgb.shape[1]}×{rgb.shape[0]})"
                )
        h, w = rgb.shape[:2]
        if disp is not None:
            dmap = load_disparity_map(FileBytes(files[disp], shown(disp_uri)))
            if dmap.shape != (h, w):
                raise ValueError(
                    f"{shown(disp_uri)}: disparity map size {dmap.shape[1]}×{dmap.shape[0]} does not "
                    f"match {shown(uri)} ({w}×{h})"
                )
        if min(h, w) < min_size:
            raise ValueError(f"{shown(uri)}: too small ({w}×{h}, need at least {min_size} px on each side)")
        if kind == "foreground":
            name = shown(alpha_uri or uri)
            if alpha is None:
                raise ValueError(f"{shown(uri)}: a foreground needs a matte (alpha channel or matte file)")
            if float(alpha.max()) < 1.0 / 255.0:
                raise ValueError(f"{name}: empty matte (alpha is 0 everywhere)")
            if float(alpha.min()) > 1.0 - 1.0 / 255.0:
                raise ValueError(f"{name}: all-opaque matte (alpha is 1 everywhere): not a cut-out")
    except ValueError as e:
        return _skipped(uri, kind, source, str(e), alpha_uri, sha, disp_uri)
    except Exception as e:  # a decoder bug on one odd file must not stop a scan of thousands
        return _skipped(
            uri, kind, source, f"{shown(uri)}: cannot decode ({type(e).__name__}: {e})", alpha_uri, sha, disp_uri
        )
    return Asset(
        asset_id,
        uri,
        alpha_uri,
        kind,
        source,
        w,
        h,
        alpha is not None,
        sha,
        split_of(asset_id, val_fraction),
        True,
        "",
        disp_uri,
    )


def _images(files) -> list[PurePosixPath]:
    return [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]


def photomatte85(files) -> list[tuple[PurePosixPath, None]]:
    """A folder of RGBA images (paths relative to the folder)."""
    return [(p, None) for p in _images(files)]


def pairs(
    files, image_dir: str, matte_dir: str
) -> tuple[list[tuple[PurePosixPath, PurePosixPath]], list[PurePosixPath]]:
    """image_dir/NAME.* with matte_dir/NAME.*; images without a matte are reported."""
    under = lambda d: [f for f in _images(files) if f.parts[0] == d]  # noqa: E731
    mattes = {p.relative_to(matte_dir).with_suffix("").as_posix(): p for p in under(matte_dir)}
    found, missing = [], []
    for img in under(image_dir):
        stem = img.relative_to(image_dir).with_suffix("").as_posix()
        if stem in mattes:
            found.append((img, mattes[stem]))
        else:
            missing.append(img)
    return found, missing


def generic(files) -> tuple[list[tuple[PurePosixPath, PurePosixPath | None]], list[PurePosixPath]]:
    """RGBA images, and images with a NAME_alpha / NAME_mask / NAME_matte file beside them; returns those and the
    orphan mattes (a NAME_alpha file with no NAME image beside it)."""
    files = _images(files)
    by_stem = {p.with_suffix(""): p for p in files}
    mattes = {p for p in files if p.stem.endswith(MATTE_SUFFIXES)}
    out, used = [], set()
    for p in files:
        if p in mattes:
            continue
        matte = next(
            (
                by_stem[p.with_suffix("").with_name(p.stem + s)]
                for s in MATTE_SUFFIXES
                if p.with_suffix("").with_name(p.stem + s) in by_stem
            ),
            None,
        )
        out.append((p, matte))
        used.add(matte)
    return out, sorted(mattes - used)


def backgrounds(files) -> tuple[list[tuple[PurePosixPath, None, PurePosixPath | None]], list[PurePosixPath]]:
    """Photos, each with its disparity map when one lies beside it (NAME_disp.npy, else NAME_disp.png); returns
    (image, None, map) triples and the orphan maps."""
    images = _images(files)
    pngs = {p.with_suffix(""): p for p in images if p.stem.endswith(DISP_SUFFIX)}
    npys = {p.with_suffix(""): p for p in files if p.name.endswith(f"{DISP_SUFFIX}.npy")}
    out, used = [], set()
    for p in images:
        if p.stem.endswith(DISP_SUFFIX):
            continue
        stem = p.with_suffix("").with_name(p.stem + DISP_SUFFIX)
        disp = npys.get(stem) or pngs.get(stem)
        out.append((p, None, disp))
        used.add(stem)
    orphans = sorted(m for stem, m in {**pngs, **npys}.items() if stem not in used)
    return out, orphans


# Each public matting set as it is published, read with its ground-truth soft matte (never the coarse masks,
# trimaps or detail maps that some of them also ship).
LAYOUTS = {
    "photomatte85": dict(kind="foreground"),  # RGBA PNGs
    "aim500": dict(kind="foreground", image_dir="original", matte_dir="mask"),  # mask/ is AIM-500's GT matte
    "rwp636": dict(kind="foreground", image_dir="image", matte_dir="alpha"),  # RealWorldPortrait-636: alpha/ is GT
    "am2k": dict(kind="foreground", image_dir="original", matte_dir="mask"),  # AM-2k: mask/ is the GT matte
    "p3m10k": dict(kind="foreground", image_dir="blurred_image", matte_dir="mask"),  # P3M-10k
    "pairs": dict(kind="foreground", image_dir="image", matte_dir="mask"),
    "generic": dict(kind="foreground"),
    "backgrounds": dict(kind="background"),
}


def check_layout(layout: str, root) -> None:
    """The folder (a path, a pyarrow.fs URI or demo://) exists and, for layouts of two subfolders (aim500:
    original/ + mask/, ...), holds both; a ValueError naming the folder and what was expected otherwise."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown asset layout {layout!r}; known: {sorted(LAYOUTS)}")
    folder = root if isinstance(root, Folder) else Folder(root)
    if folder.kind == "local" and folder.local_root.is_file():
        raise ValueError(f"{folder.display()}: is a file; give the folder that holds the {layout} assets")
    if not folder.exists():
        raise ValueError(f"{folder.display()}: no such folder (assets of layout {layout!r})")
    spec = LAYOUTS[layout]
    if "image_dir" in spec:
        absent = [d for d in (spec["image_dir"], spec["matte_dir"]) if not folder.has_subfolder(d)]
        if absent:
            raise ValueError(
                f"{folder.display()}: the {layout} layout expects the subfolders {spec['image_dir']}/ "
                f"(images) and {spec['matte_dir']}/ (mattes); missing: "
                f"{', '.join(d + '/' for d in absent)}"
            )


def scan(
    sources: list[tuple[str, object]],
    out: Path | None = None,
    *,
    min_size: int = 256,
    val_fraction: float = 0.05,
    progress: bool = True,
) -> list[Asset]:
    """Scan (layout, folder) pairs into asset rows; write them to ``out`` (assets.parquet) when given.

    A folder is a local path, a ``pyarrow.fs`` URI (``s3://bucket/fg``: listed and read through its filesystem) or
    ``demo://fg`` (the bundled demo assets); see :mod:`datagen.sources`. Layouts: photomatte85, aim500, rwp636,
    pairs, generic, backgrounds (see the module docstring). Rows are sorted by (kind, uri), so the manifest is the
    same for the same files.
    """
    jobs, rows = [], []
    for layout, root in sources:
        folder = Folder(root)
        check_layout(layout, folder)
        spec = LAYOUTS[layout]
        files = folder.files()

        def where(p, folder=folder):
            return display_name(folder.uri(p))

        if "image_dir" in spec:
            found, missing = pairs(files, spec["image_dir"], spec["matte_dir"])
            rows += [
                _skipped(
                    where(p),
                    spec["kind"],
                    layout,
                    f"{shown(where(p))}: no matte with the same name in {folder.display()}/{spec['matte_dir']}",
                )
                for p in missing
            ]
        elif layout == "generic":
            found, orphans = generic(files)
            rows += [
                _skipped(
                    where(p),
                    spec["kind"],
                    layout,
                    f"{shown(where(p))}: a matte with no image of the same name beside it (orphan)",
                )
                for p in orphans
            ]
        elif layout == "backgrounds":
            triples, orphans = backgrounds(files)
            rows += [
                _skipped(
                    where(p),
                    spec["kind"],
                    layout,
                    f"{shown(where(p))}: a disparity map with no photo of the same name beside it (orphan)",
                )
                for p in orphans
            ]
            jobs += [
                (folder.uri(img), None, folder.uri(disp) if disp else None, spec["kind"], layout)
                for img, _, disp in triples
            ]
            continue
        else:
            found = photomatte85(files)
        jobs += [
            (folder.uri(img), folder.uri(matte) if matte else None, None, spec["kind"], layout) for img, matte in found
        ]
    for img, matte, disp, kind, layout in tqdm(jobs, desc="scanning assets", unit="file", disable=not progress):
        rows.append(vet(img, matte, kind, layout, min_size=min_size, val_fraction=val_fraction, disp=disp))
    rows.sort(key=lambda a: (a.kind, a.uri))
    if out is not None:
        write_table([asdict(a) for a in rows], assets_schema(), out)
    return rows


def usable(rows: list[Asset], kind: str, split: str) -> list[Asset]:
    """The ok assets of one kind and split, without duplicates (same id)."""
    seen, out = set(), []
    for a in rows:
        if a.ok and a.kind == kind and a.split == split and a.id not in seen:
            seen.add(a.id)
            out.append(a)
    return out


def load_asset(asset: Asset) -> tuple[np.ndarray, np.ndarray | None]:
    """(rgb, alpha) of a scanned asset, as :func:`common.images.load_image` returns them, read on this node with its
    files' hash checked (:func:`datagen.sources.read_checked`)."""
    rgb, alpha, _ = load_asset_files(asset)
    return rgb, alpha


def load_asset_files(asset: Asset) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(rgb, alpha, disparity map or None) of a scanned asset: every file read once on this node, their SHA-256
    checked against the scan's (AssetUnavailable names the node and the files otherwise)."""
    uris = [u for u in (asset.uri, asset.alpha_uri, asset.disp_uri) if u]
    files = dict(zip(uris, read_checked(uris, asset.sha256)))
    rgb, alpha = load_image(FileBytes(files[asset.uri], shown(asset.uri)))
    if asset.alpha_uri:
        alpha = load_alpha(FileBytes(files[asset.alpha_uri], shown(asset.alpha_uri)))
    disp = load_disparity_map(FileBytes(files[asset.disp_uri], shown(asset.disp_uri))) if asset.disp_uri else None
    return rgb, alpha, disp
