"""The field's bokeh benchmarks, each read from its folder as downloaded (README "The field's benchmarks"):

- ``blb``: BokehMe's Blender Lens Blur set (CVPR 2022). One folder per scene with ``image.exr``, ``depth.exr``,
  ``bokeh_{i:02d}_{j:02d}.exr`` (blur level i, focus j) and ``info.json`` (``blur_parameters``,
  ``focus_distances``, ...). Linear EXR shown as ``x ** (1/2.2)`` clipped to [0, 1], disparity 1/depth (depth
  65504: sky, disparity 0), K_i = blur_parameters[i], d_f = 1/focus_distances[j]; the input is the all-in-focus
  ``image.exr``, every target scored (10 scenes × 50 = 500; BokehDiff reports level 5 alone: the "level 5" group).
- ``ebb_val294``: EBB! training ids 4400–4693 inclusive (294 pairs), ``original/{id}.jpg`` → ``bokeh/{id}.jpg``,
  no focus and no K (methods that need them take --K and an oracle).
- ``ebb400``: the 400 EBB! pairs released with BokehMe, ``in/`` → ``gt/`` (paired in sorted order, as Bokehlicious's
  loader pairs them, both cropped to a multiple of 4), with their MiDaS disparity in ``disp/`` (or ``disparity/``)
  when present.
- ``ebb400_lq``: MagicBokeh's EBB400-LQ: the EBB400 input and target taken to 512² (area filter), the input degraded
  with bokehgen's Real-ESRGAN pipeline at the evaluation's stated per-image seeds (cached in OUT/lq with its
  manifest, as for ``pairs``).
- ``realbokeh``: Bokehlicious's RealBokeh (ICCV 2025) ``{split}/metadata/{id}.json`` (``source_image``,
  ``target_images``, ``target_avs``: paths relative to the split folder and the targets' f-numbers); every target of
  every scene scored, grouped by f-number; K = K_f2 · 2/N for a target at f/N (:func:`realbokeh_k`, K_f2 from --K).
  ``realbokeh_bin``: one target per scene, the first one listed (Bokehlicious's loader takes index 0).

Each reader yields :class:`~.shared.Item` s (or (name, why) for an item skipped) and refuses a folder that holds
none of its layout in one line; a partial folder is said in one line (what is missing, and the first of it) and
scored as far as it goes (the report marks it partial).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from common.images import display_name, list_images, read_disparity, to_uint8

from .shared import Item, LQCache, crop4, disparity_file, rgb_u8

VAL294_IDS = range(4400, 4694)  # EBB! Val294: ids 4400–4693 inclusive (a loop stopping at 4692 scores 293)
BLB_SKY = 65504.0  # BLB's depth of the sky (float16's largest value)
EBB400_LQ_SIDE = 512  # MagicBokeh's EBB400-LQ: the input taken to 512²
REALBOKEH_REF_F = 2.0  # the f-number --K gives K at on RealBokeh


#: how each benchmark is scored, in the report's words (crops, resizes, where K and the focus come from)
PROTOCOL_NOTES = {
    "blb": "BLB: input image.exr and targets shown as x^(1/2.2) clipped to [0, 1], native resolution; K and d_f "
    "from info.json (K_i = blur_parameters[i], d_f = 1/focus_distances[j]); groups: blur levels 1-5 (BokehDiff "
    "reports level 5)",
    "ebb_val294": "EBB! Val294 (ids 4400-4693): native resolution, no crop; no focus or K in the benchmark (--K)",
    "ebb400": "EBB400: native resolution cropped to a multiple of 4 (as Bokehlicious's loader); K from --K",
    "ebb400_lq": f"EBB400-LQ: input and target area-resized to {EBB400_LQ_SIDE}², the input degraded with the "
    "Real-ESRGAN pipeline (×4) at the stated seed below; K from --K",
    "realbokeh": "RealBokeh: every target of every scene at native resolution; K = K_f2 · 2/N (K_f2: --K); groups: "
    "the target's f-number",
    "realbokeh_bin": "RealBokeh_bin: the first target of each scene (Bokehlicious's index 0) at native resolution; "
    "K = K_f2 · 2/N (K_f2: --K)",
}


def read_exr(path: Path) -> np.ndarray:
    """An OpenEXR file as float32: H×W×3 (R, G, B) for a colour image, H×W for a one-channel one; a ValueError
    naming the file otherwise."""
    import OpenEXR

    try:
        with OpenEXR.File(str(path)) as f:
            channels = {name: ch.pixels for name, ch in f.channels().items()}
    except (RuntimeError, OSError) as e:
        raise ValueError(f"{path}: not a readable OpenEXR file ({e})") from None
    for name in ("RGB", "RGBA"):
        if name in channels:
            return np.ascontiguousarray(channels[name][..., :3], dtype=np.float32)
    if len(channels) == 1:
        (only,) = channels.values()
        return np.asarray(only, dtype=np.float32)
    for name in ("Y", "Z", "R", "V"):
        if name in channels:
            return np.asarray(channels[name], dtype=np.float32)
    raise ValueError(f"{path}: no RGB and no single depth channel (channels: {', '.join(sorted(channels))})")


def linear_to_display(x: np.ndarray) -> np.ndarray:
    """BLB's linear radiance shown as its authors show it: x ** (1/2.2), clipped to [0, 1], as 8-bit."""
    return to_uint8(np.clip(np.maximum(x, 0.0) ** (1 / 2.2), 0.0, 1.0))


def _same_size(path, image: np.ndarray, reference: np.ndarray, what: str) -> None:
    """A ValueError naming ``path`` when ``image`` is not the size of ``reference`` (``what`` names the latter)."""
    if image.shape[:2] != reference.shape[:2]:
        h, w = image.shape[:2]
        raise ValueError(f"{path}: {w}×{h}, {what} {reference.shape[1]}×{reference.shape[0]}")


def _missing_line(what: str, missing: list, total: int) -> str:
    return f"{what}: {len(missing)} of {total} missing, first {missing[0]}"


def _partial(line: str) -> None:
    print(f"partial: {line}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------------------- BLB
def blb_scenes(data: Path) -> list[Path]:
    scenes = sorted(p.parent for p in data.glob("*/info.json"))
    if not scenes:
        raise ValueError(
            f"--data {data}: no BLB scenes (folders holding info.json, image.exr, depth.exr and "
            "bokeh_II_JJ.exr; the BLB folder as downloaded)"
        )
    return scenes


def blb_disparity(depth: np.ndarray) -> np.ndarray:
    """1/depth, 0 for the sky (depth 65504) and for non-positive depth."""
    ok = (depth > 0) & (depth < BLB_SKY)
    return np.where(ok, 1.0 / np.where(ok, depth, 1.0), 0.0)


def blb_items(data: Path, names=None):
    """Every (scene, blur level i, focus j) target of BLB. Disparity is 1/depth scaled by s (its largest value over
    the scene and the focus planes) into [0, 1], and K by s with it, so the blur K_i·|1/z − 1/z_f| is BLB's exactly."""
    scenes = blb_scenes(data)
    missing, total = [], 0
    for scene in scenes:
        try:
            info = json.loads((scene / "info.json").read_text())
            Ks, focus = [float(k) for k in info["blur_parameters"]], [float(z) for z in info["focus_distances"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            yield scene.name, f"{scene / 'info.json'}: unreadable or without blur_parameters/focus_distances ({e})"
            continue
        files = {(i, j): scene / f"bokeh_{i:02d}_{j:02d}.exr" for i in range(len(Ks)) for j in range(len(focus))}
        total += len(files)
        present = {ij for ij, path in files.items() if path.is_file()}
        missing += [f"{scene.name}/{path.name}" for ij, path in files.items() if ij not in present]
        try:
            aif = linear_to_display(read_exr(scene / "image.exr"))
            depth = read_exr(scene / "depth.exr")
            if depth.ndim == 3:
                depth = depth[..., 0]
            _same_size(scene / "depth.exr", depth, aif, "image.exr")
        except ValueError as e:
            yield scene.name, str(e)
            continue
        disp = blb_disparity(depth)
        s = max(float(disp.max()), *(1.0 / z for z in focus if z > 0), 1e-12)
        disp = (disp / s).astype(np.float32)  # every target of the scene shares it
        for (i, j), path in files.items():
            name = f"{scene.name}_{path.stem}"
            if (i, j) not in present or (names and name not in names):
                continue
            try:
                target = linear_to_display(read_exr(path))
                _same_size(path, target, aif, "image.exr")
            except ValueError as e:
                yield name, str(e)
                continue
            d_f = (1.0 / focus[j] if focus[j] > 0 else 0.0) / s
            yield Item(
                name,
                aif,
                target,
                Ks[i] * s,
                aif=aif,
                disp=disp,
                focus_disparity=d_f,
                source=display_name(path),
                group=f"level {i + 1}",
            )
    if missing:
        _partial(_missing_line(f"BLB {data}", missing, total))


# ---------------------------------------------------------------------------------------------------- EBB! Val294
def val294_items(data: Path, K: float | None, names=None):
    """EBB! Val294: ids 4400–4693 of the training set's original/ and bokeh/."""
    for sub in ("original", "bokeh"):
        if not (data / sub).is_dir():
            raise ValueError(
                f"--data {data}: no {sub}/ folder (EBB! Val294 reads the EBB! training set's original/ and bokeh/, "
                f"ids {VAL294_IDS[0]}–{VAL294_IDS[-1]})"
            )
    originals, bokehs = _by_stem(data / "original"), _by_stem(data / "bokeh")
    missing = [str(i) for i in VAL294_IDS if str(i) not in originals or str(i) not in bokehs]
    if len(missing) == len(VAL294_IDS):
        raise ValueError(
            f"--data {data}: none of EBB! Val294's ids {VAL294_IDS[0]}–{VAL294_IDS[-1]} is in original/ and bokeh/"
        )
    if missing:
        _partial(_missing_line(f"EBB! Val294 {VAL294_IDS[0]}–{VAL294_IDS[-1]}", missing, len(VAL294_IDS)))
    for i in VAL294_IDS:
        name = str(i)
        if name in missing or (names and name not in names):
            continue
        try:
            src, target = rgb_u8(originals[name]), rgb_u8(bokehs[name])
            _same_size(bokehs[name], target, src, "the original")
        except ValueError as e:
            yield name, str(e)
            continue
        yield Item(name, src, target, float(K or 0.0), aif=src, source=display_name(originals[name]))


def _by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in list_images(folder) if p.parent == folder}


# --------------------------------------------------------------------------------------------- EBB400 (-LQ)
def ebb400_root(data: Path) -> Path:
    for root in (data, data / "validation"):
        if (root / "in").is_dir() and (root / "gt").is_dir():
            return root
    raise ValueError(f"--data {data}: no in/ and gt/ folders (EBB400 as released with BokehMe: validation/in, gt)")


def ebb400_pairs(data: Path) -> list[tuple[str, Path, Path, Path | None]]:
    """(name, input, target, disparity file or None), paired in sorted order as Bokehlicious's loader pairs them."""
    root = ebb400_root(data)
    ins = sorted((p for p in list_images(root / "in") if p.parent == root / "in"), key=lambda p: p.stem)
    gts = sorted((p for p in list_images(root / "gt") if p.parent == root / "gt"), key=lambda p: p.stem)
    if not ins or len(ins) != len(gts):
        raise ValueError(f"--data {data}: {len(ins)} inputs in {root / 'in'} and {len(gts)} targets in {root / 'gt'}")
    disp_dir = next((root / d for d in ("disp", "disparity") if (root / d).is_dir()), None)
    return [(a.stem, a, b, disparity_file(disp_dir, a.stem) if disp_dir else None) for a, b in zip(ins, gts)]


def ebb400_items(data: Path, K: float | None, names=None):
    for name, src_path, gt_path, disp_path in ebb400_pairs(data):
        if names and name not in names:
            continue
        try:
            src, target = crop4(rgb_u8(src_path)), crop4(rgb_u8(gt_path))
            _same_size(gt_path, target, src, "the input")
            disp = None
            if disp_path is not None:
                disp = crop4(read_disparity(disp_path))
                if disp.shape != src.shape[:2]:
                    disp = cv2.resize(disp, (src.shape[1], src.shape[0]), interpolation=cv2.INTER_LINEAR)
        except ValueError as e:
            yield name, str(e)
            continue
        yield Item(name, src, target, float(K or 0.0), aif=src, disp=disp, source=display_name(src_path))


def ebb400_lq_items(data: Path, cache: LQCache, K: float | None, names=None):
    side = EBB400_LQ_SIDE
    for name, src_path, gt_path, disp_path in ebb400_pairs(data):
        if names and name not in names:
            continue
        try:
            src, target = (_square(rgb_u8(p), side) for p in (src_path, gt_path))
            disp = _square(read_disparity(disp_path), side) if disp_path is not None else None
            lq = cache.get(name, src_path, src)
        except ValueError as e:
            yield name, str(e)
            continue
        yield Item(name, lq, target, float(K or 0.0), aif=src, disp=disp, source=display_name(src_path))


def _square(img: np.ndarray, side: int) -> np.ndarray:
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)


# -------------------------------------------------------------------------------------------------- RealBokeh
def realbokeh_k(f_number: float, K_ref: float, ref_f: float = REALBOKEH_REF_F) -> float:
    """A target at f/N: the blur radius scales with the aperture's diameter f/N, so K = K_ref · ref_f / N (K_ref: the
    blur at f/ref_f). The input (about f/22) is treated as sharp."""
    if not f_number > 0:
        raise ValueError(f"f-number: > 0, got {f_number}")
    return float(K_ref) * ref_f / float(f_number)


def realbokeh_split(data: Path) -> Path:
    for split in (data, data / "test", data / "val"):
        if (split / "metadata").is_dir() and any((split / "metadata").glob("*.json")):
            return split
    raise ValueError(
        f"--data {data}: no metadata/*.json (RealBokeh: give the split folder, e.g. RealBokeh/test, holding "
        "in/, gt/ and metadata/)"
    )


def realbokeh_items(data: Path, K: float | None, names=None, binary: bool = False):
    split = realbokeh_split(data)
    missing, total = [], 0
    for meta_path in sorted(split.glob("metadata/*.json")):
        try:
            meta = json.loads(meta_path.read_text())
            source, targets, avs = meta["source_image"], list(meta["target_images"]), list(meta["target_avs"])
            if len(targets) != len(avs) or not targets:
                raise ValueError(f"{len(targets)} target_images and {len(avs)} target_avs")
        except (OSError, ValueError, KeyError, TypeError) as e:
            yield meta_path.stem, f"{meta_path}: unreadable metadata ({e})"
            continue
        pairs = list(zip(targets, avs))[:1] if binary else list(zip(targets, avs))
        total += len(pairs)
        src_path = split / source
        if not src_path.is_file():
            missing += [source]
            continue
        try:
            src = rgb_u8(src_path)
        except ValueError as e:
            yield meta_path.stem, str(e)
            continue
        for rel, av in pairs:
            path = split / rel
            name = Path(rel).stem
            if names and name not in names:
                continue
            if not path.is_file():
                missing.append(rel)
                continue
            try:
                target = rgb_u8(path)
                _same_size(path, target, src, "the input")
                k = realbokeh_k(float(av), K) if K else 0.0
            except ValueError as e:
                yield name, str(e)
                continue
            yield Item(
                name, src, target, k, aif=src, source=display_name(path), f_number=float(av), group=f"f/{float(av):g}"
            )
    if missing:
        _partial(_missing_line(f"RealBokeh {split}", missing, total))
