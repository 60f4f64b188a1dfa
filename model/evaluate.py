"""Score bokeh methods on the field's protocols and on an exact synthetic one, side by side, offline.

    python -m model.evaluate --protocol {pairs,realsr,depth,synthetic} --data PATH \\
        --methods identity,classical[,classical-gt][,model] [--weights DIR] [--predictions NAME=DIR ...] \\
        [--metrics LIST] [--metric-weights DIR|random] [--K K] [--limit N] --out OUT

Protocols and data layouts (README "Evaluation"):
  pairs      original/NAME.*, bokeh/NAME.*, focus.json {"NAME": {"x": px, "y": px, "K": k}} in the original's pixels
             (K optional, else --K) or focus/NAME.png (a mask of the focal region); optional disparity/NAME.(npy|png)
             (ground truth, for classical-gt and the stratified metrics). The input is the original degraded with
             bokehgen's Real-ESRGAN pipeline (×4 smaller) at a fixed seed, made once and cached in OUT/lq/ with a
             manifest ("EBB400-LQ"-style: byte-identical for anyone with the same originals).
  realsr     LR/ + HR/ with matching names; or RealSR's NAME_LR4.* / NAME_HR.* (any folders below PATH); or DRealSR's
             test_LR/NAME_x4.* / test_HR/NAME_x1.*. K = 0: the model as a pure ×4 super-resolver.
  depth      rgb/NAME.* + depth/NAME.(png|npy) (16-bit PNG in millimetres or float metres; 0 = invalid): AbsRel and δ1
             of a depth model on the clear image and on its degraded version (cached as for pairs), after the
             affine-invariant alignment of relative depth (least-squares scale and shift in disparity).
  synthetic  bokehgen WebDataset shards (a brace pattern, a glob, or a build folder: its val shards); exact ground
             truth: metrics also per blur radius r = K·|d − d_f| and in the occlusion band.

Methods: identity (the LQ upsampled bicubically: the floor), classical (bokehgen's ray tracer on the disparity a
depth model estimates from the input), classical-gt (the ray tracer on the clean all-in-focus image and the
ground-truth disparity: the ceiling of rendering from one RGBD image), model (trained MagicBokeh weights,
--weights, on the estimated disparity), model-gt (the same network on the ground-truth disparity: its error without
the depth model's); --predictions NAME=DIR scores another method's images (same names as the targets). Depth protocol:
model (the depth network: --depth-weights, else the one recorded in --weights) and --predictions NAME=DIR with
DIR/clear/NAME.* and DIR/degraded/NAME.* disparity maps.

Outputs: OUT/results.csv (one row per image × method), OUT/summary.md (means, the paper's column order, seconds per
image), OUT/examples.png (input, each method, target). A rerun with the same arguments reuses OUT/lq and the
predictions in OUT/predictions/METHOD/.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from common.images import display_name, list_images, load_image, read_disparity, to_uint8
from common.limits import MAX_K
from manifests.outdir import claim
from manifests.storage import atomic_file

from . import iqa

COMMAND = "model.evaluate"
OUTPUTS = ("results.csv", "summary.md", "examples.png", "lq/**", "predictions/**", "fid/**")
REALSR_SCALE = 4  # the model and Table 4 are ×4 super-resolution
PROTOCOLS = ("pairs", "realsr", "depth", "synthetic")
IMAGE_METHODS = ("identity", "classical", "classical-gt", "model", "model-gt")
DEPTH_METHODS = ("model",)
# the papers' column orders (MagicBokeh Tables 1-2 for bokeh; Table 4, as OSEDiff's, for Real-ISR)
ORDER = {"pairs": ("psnr", "ssim", "lpips", "dists", "musiq", "maniqa", "clipiqa", "niqe", "fid"),
         "synthetic": ("psnr", "ssim", "lpips", "dists", "musiq", "maniqa", "clipiqa", "niqe", "fid"),
         "realsr": ("psnr", "ssim", "lpips", "dists", "fid", "niqe", "musiq", "maniqa", "clipiqa")}
# blur-radius strata of the synthetic protocol (pixels): in focus, slight, medium, strong
BINS = (("r<=1", 0.0, 1.0), ("1<r<=4", 1.0, 4.0), ("4<r<=12", 4.0, 12.0), ("r>12", 12.0, math.inf))
EVAL_SEED = 20240801  # the LQ sets' degradation seed (with each image's name)
CACHE_VERSION = 1


# ------------------------------------------------------------------------------------------------ items
@dataclass
class Item:
    """One benchmark image. ``lq``: the method's input (uint8, the target's size / ``scale``); ``target``: uint8;
    ``aif``: the clean all-in-focus image at the target's size (classical-gt's input), when the benchmark has it;
    ``disp``: ground-truth disparity in [0, 1] at the target's size; ``K``, ``focus_disparity`` (exact, synthetic)
    or ``focus_xy`` / ``focus_mask`` (target pixels)."""
    name: str
    lq: np.ndarray
    target: np.ndarray
    K: float = 0.0
    aif: np.ndarray | None = None
    disp: np.ndarray | None = None
    focus_disparity: float | None = None
    focus_xy: tuple | None = None
    focus_mask: np.ndarray | None = None
    source: str = ""


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def image_seed(name: str, seed: int = EVAL_SEED) -> int:
    """The degradation seed of one benchmark image: from the set's seed and the image's name (not its position,
    so --limit and reordering keep every LQ)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big") % 2 ** 63


def _crop4(img: np.ndarray, scale: int = 4) -> np.ndarray:
    h, w = img.shape[:2]
    return img[:h - h % scale, :w - w % scale]


class LQCache:
    """The degraded inputs of a benchmark, made once with bokehgen's pipeline at fixed per-image seeds and kept in
    ``folder`` with ``manifest.json`` (source checksum, seed, degradation, LQ checksum): a rerun reuses every LQ
    whose source and settings are unchanged, and the same originals give byte-identical LQ files anywhere."""

    def __init__(self, folder: Path, preset: str = "realesrgan_x4plus"):
        from degradations import DegradationConfig

        self.folder = Path(folder)
        self.cfg = DegradationConfig.preset(preset)
        self.preset = preset
        self.manifest_path = self.folder / "manifest.json"
        self.entries = {}
        if self.manifest_path.is_file():
            data = json.loads(self.manifest_path.read_text())
            if data.get("preset") == preset and data.get("version") == CACHE_VERSION:
                self.entries = data.get("images", {})
        self.made = self.reused = 0

    def get(self, name: str, source: Path, hq_u8: np.ndarray) -> np.ndarray:
        from degradations import degrade

        source_sha = _sha256(source)
        path = self.folder / f"{name}.png"
        entry = self.entries.get(name)
        if entry and entry["source_sha256"] == source_sha and path.is_file() and _sha256(path) == entry["lq_sha256"]:
            self.reused += 1
            return np.asarray(Image.open(path).convert("RGB"))
        seed = image_seed(name)
        lq, _ = degrade(hq_u8, seed, self.cfg)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            Image.fromarray(lq).save(f, format="PNG")
        self.entries[name] = {"source": display_name(source), "source_sha256": source_sha, "seed": seed,
                              "lq": path.name, "lq_sha256": _sha256(path), "hq_size": list(hq_u8.shape[1::-1])}
        self.made += 1
        return lq

    def save(self) -> None:
        from common.jsonfile import dumps

        if not self.entries:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {"version": CACHE_VERSION, "preset": self.preset, "scale": self.cfg.scale,
                "seed": EVAL_SEED, "seed_rule": "sha256(f'{seed}:{name}')[:8] big-endian mod 2**63",
                "images": dict(sorted(self.entries.items()))}
        with atomic_file(self.manifest_path, "w") as f:
            f.write(dumps(data, indent=1))


def _stem_map(folder: Path, strip: tuple = ()) -> dict[str, Path]:
    out = {}
    for p in list_images(folder):
        stem = p.stem
        for suffix in strip:
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        out[stem] = p
    return out


def _rgb_u8(path: Path) -> np.ndarray:
    rgb, alpha = load_image(path)  # names the file on bad input
    if alpha is not None:
        from common.images import on_white

        rgb = on_white(rgb, alpha)
    return to_uint8(rgb)


def _disparity_file(folder: Path, name: str) -> Path | None:
    for ext in (".npy", ".png", ".tif", ".tiff", ".pfm", ".exr"):
        p = folder / f"{name}{ext}"
        if p.is_file():
            return p
    return None


def pairs_items(data: Path, cache: LQCache, K_default: float | None, names: list | None = None):
    """The ``pairs`` layout, one :class:`Item` at a time (an image that fails is reported and skipped)."""
    originals, bokehs = _stem_map(data / "original"), _stem_map(data / "bokeh")
    if not originals:
        raise ValueError(f"--data {data}: no images in {data / 'original'} (pairs layout: original/, bokeh/, "
                         "focus.json)")
    focus = {}
    if (data / "focus.json").is_file():
        try:
            focus = json.loads((data / "focus.json").read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{data / 'focus.json'}: not valid JSON ({e})") from None
    for name in names or sorted(originals):
        if name not in bokehs:
            yield name, f"no bokeh/{name}.* beside original/{originals[name].name}"
            continue
        try:
            hq = _crop4(_rgb_u8(originals[name]))
            target = _crop4(_rgb_u8(bokehs[name]))
            if target.shape != hq.shape:
                raise ValueError(f"{bokehs[name]}: {target.shape[1]}×{target.shape[0]}, the original "
                                 f"{hq.shape[1]}×{hq.shape[0]}")
            f = focus.get(name, {})
            K = f.get("K", K_default)
            if K is None:
                raise ValueError(f"{name}: no K in focus.json and no --K")
            if not 0 <= float(K) <= MAX_K:
                raise ValueError(f"{name}: K in [0, {MAX_K:g}], got {K}")
            mask_path = data / "focus" / f"{name}.png"
            xy = mask = None
            if "x" in f and "y" in f:
                xy = (int(f["x"]), int(f["y"]))
                if not (0 <= xy[0] < hq.shape[1] and 0 <= xy[1] < hq.shape[0]):
                    raise ValueError(f"{data / 'focus.json'}: {name}: focus point {xy} outside the "
                                     f"{hq.shape[1]}×{hq.shape[0]} image")
            elif mask_path.is_file():
                mask = _crop4(np.asarray(Image.open(mask_path).convert("L")) > 127)
                if mask.shape != hq.shape[:2] or not mask.any():
                    raise ValueError(f"{mask_path}: must be the original's size and mark the focal region")
            else:
                raise ValueError(f"{name}: no focus point in focus.json and no focus/{name}.png")
            disp_path = _disparity_file(data / "disparity", name)
            disp = None
            if disp_path is not None:
                disp = _crop4(read_disparity(disp_path))
                if disp.shape != hq.shape[:2]:
                    raise ValueError(f"{disp_path}: {disp.shape[1]}×{disp.shape[0]}, the original "
                                     f"{hq.shape[1]}×{hq.shape[0]}")
            lq = cache.get(name, originals[name], hq)
        except ValueError as e:
            yield name, str(e)
            continue
        item = Item(name, lq, target, float(K), aif=hq, disp=disp, focus_xy=xy, focus_mask=mask,
                    source=display_name(originals[name]))
        if disp is not None:  # the focus disparity on the ground truth: classical-gt's and the strata's
            item.focus_disparity = Runner.focus(item, disp, exact=False)
        yield item


def realsr_pairs(data: Path) -> list[tuple[str, Path, Path]]:
    """(name, LR, HR) in any of the three layouts."""
    if (data / "LR").is_dir() and (data / "HR").is_dir():
        lr, hr = _stem_map(data / "LR"), _stem_map(data / "HR")
    elif (data / "test_LR").is_dir() and (data / "test_HR").is_dir():
        lr, hr = _stem_map(data / "test_LR", ("_x4",)), _stem_map(data / "test_HR", ("_x1",))
    else:
        lr = {p.stem[:-4]: p for p in list_images(data) if p.stem.endswith("_LR4")}
        hr = {p.stem[:-3]: p for p in list_images(data) if p.stem.endswith("_HR")}
    common = sorted(set(lr) & set(hr))
    if not common:
        raise ValueError(f"--data {data}: no LR/HR pairs (LR/ + HR/ with matching names, NAME_LR4.* + NAME_HR.*, "
                         "or test_LR/NAME_x4.* + test_HR/NAME_x1.*)")
    return [(n, lr[n], hr[n]) for n in common]


def realsr_items(data: Path, names=None):
    pairs = realsr_pairs(data)
    for name, lr_path, hr_path in pairs:
        if names and name not in names:
            continue
        try:
            lq, hr = _rgb_u8(lr_path), _rgb_u8(hr_path)
            want = (lq.shape[0] * REALSR_SCALE, lq.shape[1] * REALSR_SCALE)
            # the documented crop: the HR's bottom and right edges down to 4× the LR (at most 3 px each)
            if not all(w <= h < w + REALSR_SCALE for h, w in zip(hr.shape[:2], want)):
                raise ValueError(f"{hr_path}: {hr.shape[1]}×{hr.shape[0]} is not {REALSR_SCALE}× its LR "
                                 f"{lr_path.name} ({lq.shape[1]}×{lq.shape[0]} -> {want[1]}×{want[0]}, up to "
                                 f"{REALSR_SCALE - 1} px more cropped); pair skipped")
            hr = hr[:want[0], :want[1]]
        except ValueError as e:
            yield name, str(e)
            continue
        yield Item(name, lq, hr, 0.0, source=display_name(hr_path))


def synthetic_urls(data: str) -> list[str]:
    from .data import expand_urls

    path = Path(data)
    if path.is_dir():
        if not (path / "dataset.json").is_file():
            raise ValueError(f"--data {data}: a folder without dataset.json: not a bokehgen build (give shards: "
                             "'DIR/val-{000000..000003}.tar' or a glob)")
        urls = sorted(str(p) for p in path.glob("val-*.tar"))
        if not urls:
            raise ValueError(f"--data {data}: the build has no val-*.tar shards")
        return urls
    return expand_urls(data)


def synthetic_items(data: str, names=None):
    import io

    import webdataset as wds

    from common.images import decode_png

    for sample in wds.WebDataset(synthetic_urls(data), shardshuffle=False, empty_check=False):
        key = sample["__key__"]
        if names and key not in names:
            continue
        try:
            missing = [m for m in ("aif.png", "bokeh.png", "lq.png", "disp.npy", "json") if m not in sample]
            if missing:
                raise ValueError(f"sample {key} ({sample.get('__url__')}): missing members {missing}")
            meta = json.loads(sample["json"])
            def dec(m, sample=sample, key=key):
                return to_uint8(_as_float(decode_png(sample[m], f"sample {key}: {m}")))

            disp = np.load(io.BytesIO(sample["disp.npy"]), allow_pickle=False).astype(np.float32)
            x, y = meta["focus"]["xy"]
            item = Item(key, dec("lq.png"), dec("bokeh.png"), float(meta["render"]["K"]), aif=dec("aif.png"),
                        disp=disp, focus_disparity=float(meta["render"]["focus_disparity"]),
                        focus_xy=(int(x), int(y)), source=f"{Path(sample['__url__']).name}:{key}")
        except (ValueError, KeyError) as e:
            yield key, f"{e}"
            continue
        yield item


def _as_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 65535.0)


# ------------------------------------------------------------------------------------------------ methods
def upsample(lq: np.ndarray, shape: tuple) -> np.ndarray:
    """Bicubic, as the model's own input (torch, align_corners=False), to ``shape`` (H, W)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(lq).permute(2, 0, 1)[None].float() / 255
    up = F.interpolate(t, size=shape, mode="bicubic", align_corners=False).clamp(0, 1)
    return up[0].permute(1, 2, 0).numpy()


class Runner:
    """Builds each method's networks once and renders one item."""

    def __init__(self, args):
        self.args = args
        self._model = self._depth = None
        self.notes: list[str] = []

    def model(self):
        if self._model is None:
            from .network import load_trained

            if not self.args.weights:
                raise ValueError("method 'model' needs --weights DIR (trained MagicBokeh weights)")
            self._model = load_trained(self.args.weights).eval()
            self._model.fuse()
        return self._model

    def depth_folder(self):
        if self.args.depth_weights:
            return self.args.depth_weights
        if self.args.weights:
            from .config import ModelConfig

            cfg = ModelConfig.from_yaml(Path(self.args.weights) / "model.yaml")
            if cfg.depth:
                folder = Path(cfg.depth)
                return str(folder if folder.is_absolute() else Path(self.args.weights) / folder)
        return None

    def depth(self):
        if self._depth is None:
            from .config import ModelConfig
            from .depthnet import DepthEstimator, load_depth_model

            folder = self.depth_folder()
            cfg = ModelConfig.from_yaml(Path(self.args.weights) / "model.yaml") if self.args.weights \
                else ModelConfig.from_yaml("tiny")
            if folder is None:
                self.notes.append("depth: no Depth Anything V2 weights (--depth-weights or the model's `depth:`): "
                                  "a RANDOM tiny depth network: its disparity is meaningless")
            else:
                self.notes.append(f"depth: {folder}")
            self._depth = DepthEstimator(load_depth_model(cfg.depth_size, folder), cfg.depth_input).eval()
        return self._depth

    def estimate(self, rgb: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.depth()(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float())[0, 0] \
                .numpy()

    @staticmethod
    def focus(item: Item, disp: np.ndarray, exact: bool) -> float:
        from .conditioning import focus_at

        if exact and item.focus_disparity is not None:
            return item.focus_disparity
        if item.focus_mask is not None:
            return float(np.median(disp[item.focus_mask]))
        if item.focus_xy is not None:
            x, y = item.focus_xy
            return focus_at(disp, min(x, disp.shape[1] - 1), min(y, disp.shape[0] - 1))
        return 0.0

    def run(self, method: str, item: Item) -> np.ndarray:
        """The method's output for ``item``: H×W×3 uint8 at the target's size."""
        from .pipeline import render_classical

        shape = item.target.shape[:2]
        up = upsample(item.lq, shape)
        if method == "identity":
            return to_uint8(up)
        if method == "classical-gt":
            if item.disp is None or item.aif is None:
                raise ValueError("classical-gt: this benchmark has no ground-truth disparity")
            aif = _as_float(item.aif)
            return to_uint8(render_classical(aif, item.disp, item.K, self.focus(item, item.disp, exact=True)))
        if method == "model-gt":
            if item.disp is None:
                raise ValueError("model-gt: this benchmark has no ground-truth disparity")
            disp, d_f = item.disp, self.focus(item, item.disp, exact=True)
        else:
            disp = self.estimate(up)
            d_f = self.focus(item, disp, exact=False)
        if method == "classical":
            return to_uint8(render_classical(up, disp, item.K, d_f) if item.K > 0 else up)
        if method in ("model", "model-gt"):
            import torch

            from .conditioning import defocus_and_mask
            from .pipeline import run_tiled

            model = self.model()
            cfg = model.cfg
            if item.K > cfg.k_max:
                raise ValueError(f"K {item.K:g} is above the model's k_max {cfg.k_max:g}")
            defocus, mask = defocus_and_mask(disp, item.K, d_f, cfg.k_max, cfg.focus_radius)
            lq = torch.from_numpy(up).permute(2, 0, 1)[None] * 2 - 1
            pred = run_tiled(model, lq, torch.from_numpy(defocus)[None, None], torch.from_numpy(mask)[None, None],
                             cfg.resolution)
            return to_uint8(((pred[0].permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1))
        raise ValueError(f"unknown method {method!r}")


# ------------------------------------------------------------------------------------------------ strata
def strata(item: Item, se: np.ndarray, smap: np.ndarray) -> dict:
    """PSNR/SSIM and pixel counts per blur-radius bin and in the occlusion band (needs ground-truth disparity).

    r = K·|d − d_f| per pixel. The occlusion band: pixels within the blur radius of a disparity discontinuity,
    where a discontinuity is a pair of neighbouring pixels whose blur radii differ by more than 1 px (the
    renderer's layers decide what is seen there); the radius used is the larger of the pixel's own and the
    discontinuity's."""
    if item.disp is None:
        return {}
    r = (item.K * np.abs(item.disp.astype(np.float64) - (item.focus_disparity if item.focus_disparity is not None
                                                         else 0.0))).astype(np.float64)
    out = {}
    for label, lo, hi in BINS:
        sel = (r > lo) & (r <= hi) if lo > 0 else (r <= hi)
        out.update(_stratum(label, sel, se, smap))
    out.update(_stratum("occlusion", occlusion_band(r), se, smap))
    return out


def occlusion_band(r: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    edge = np.zeros(r.shape, bool)
    dy, dx = np.abs(np.diff(r, axis=0)) > 1.0, np.abs(np.diff(r, axis=1)) > 1.0
    edge[:-1] |= dy
    edge[1:] |= dy
    edge[:, :-1] |= dx
    edge[:, 1:] |= dx
    if not edge.any():
        return edge
    r_edge = np.where(edge, ndimage.maximum_filter(r, size=3), 0.0)
    dist, (iy, ix) = ndimage.distance_transform_edt(~edge, return_indices=True)
    return dist <= np.maximum(r, r_edge[iy, ix])


def _stratum(label: str, sel: np.ndarray, se: np.ndarray, smap: np.ndarray) -> dict:
    n = int(sel.sum())
    return {f"px@{label}": n, f"psnr@{label}": iqa.psnr_from_se(se[sel]) if n else float("nan"),
            f"ssim@{label}": float(np.nanmean(smap[sel])) if n and not np.isnan(smap[sel]).all() else float("nan")}


# ------------------------------------------------------------------------------------------------ depth protocol
def align_disparity(pred: np.ndarray, gt_depth: np.ndarray, valid: np.ndarray, max_depth: float) -> np.ndarray:
    """Relative disparity → metric depth by the least-squares scale and shift that best match the ground truth's
    disparity (1/depth) on the valid pixels (the affine-invariant protocol of MiDaS and Depth Anything)."""
    x, y = pred[valid].astype(np.float64), 1.0 / gt_depth[valid].astype(np.float64)
    A = np.stack([x, np.ones_like(x)], axis=1)
    (s, t), *_ = np.linalg.lstsq(A, y, rcond=None)
    aligned = s * pred.astype(np.float64) + t
    return 1.0 / np.clip(aligned, 1.0 / max_depth, None)


def metric_depth_errors(pred_disp: np.ndarray, gt_depth: np.ndarray, valid: np.ndarray, max_depth: float) -> dict:
    """AbsRel and δ1 in metric *depth* (metres) of a disparity prediction aligned to the ground truth (scale and
    shift in disparity), as Depth Anything evaluates NYUv2 and KITTI."""
    depth = align_disparity(pred_disp, gt_depth, valid, max_depth)
    p, g = depth[valid], gt_depth[valid].astype(np.float64)
    return {"absrel": float(np.mean(np.abs(p - g) / g)), "delta1": float(np.mean(np.maximum(p / g, g / p) < 1.25))}


def read_depth(path: Path) -> np.ndarray:
    """Metres; 0 = invalid. A 16-bit PNG holds millimetres; .npy holds metres."""
    if path.suffix.lower() == ".npy":
        try:
            d = np.load(path, allow_pickle=False)
        except Exception as e:
            raise ValueError(f"{path}: not a readable .npy ({e})") from None
        if d.ndim != 2:
            raise ValueError(f"{path}: a 2-D depth map expected, got shape {d.shape}")
        return np.nan_to_num(d.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    import cv2

    d = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if d is None or d.ndim != 2 or d.dtype != np.uint16:
        raise ValueError(f"{path}: a single-channel 16-bit PNG (millimetres) expected")
    return d.astype(np.float32) / 1000.0


DEPTH_PRESETS = {"nyu": dict(min_depth=1e-3, max_depth=10.0, crop=(45, 471, 41, 601)),  # Eigen crop on 480×640
                 "kitti": dict(min_depth=1e-3, max_depth=80.0, crop="garg"), "none": dict(min_depth=1e-3,
                                                                                          max_depth=1e4, crop=None)}


def depth_valid(gt: np.ndarray, preset: str) -> np.ndarray:
    p = DEPTH_PRESETS[preset]
    valid = (gt > p["min_depth"]) & (gt < p["max_depth"])
    crop = p["crop"]
    if crop is not None:
        h, w = gt.shape
        region = np.zeros_like(valid)
        if crop == "garg":  # Garg et al.'s crop, as fractions of the KITTI frame
            region[int(0.40810811 * h):int(0.99189189 * h), int(0.03594771 * w):int(0.96405229 * w)] = True
        else:
            y0, y1, x0, x1 = crop
            if (h, w) == (480, 640):
                region[y0:y1, x0:x1] = True
            else:
                region[:] = True
        valid &= region
    return valid


# ------------------------------------------------------------------------------------------------ the run
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", required=True, choices=PROTOCOLS)
    p.add_argument("--data", required=True, help="the benchmark's folder (layouts above) or shards (synthetic)")
    p.add_argument("--methods", default="identity,classical",
                   help="comma-separated: identity, classical, classical-gt, model (depth protocol: model)")
    p.add_argument("--weights", help="trained MagicBokeh weights folder (for the method 'model')")
    p.add_argument("--depth-weights", help="local Depth Anything V2 folder (default: the one in --weights)")
    p.add_argument("--predictions", action="append", default=[], metavar="NAME=DIR",
                   help="score another method's output images (same names as the targets); repeatable")
    p.add_argument("--metrics", default=",".join(iqa.ALL_METRICS),
                   help=f"comma-separated subset of {','.join(iqa.ALL_METRICS)} (depth: absrel, delta1 always)")
    p.add_argument("--metric-weights", help="torch hub folder holding pyiqa's, torchvision's and CLIP's files "
                                            "(nothing is downloaded); 'random' = random weights (a plumbing check)")
    p.add_argument("--K", type=float, help="blur strength where the benchmark does not give one (pairs)")
    p.add_argument("--limit", type=int, help="only the first N images (a quick look)")
    p.add_argument("--color", default="y", choices=("y", "rgb"), help="PSNR/SSIM on BT.601 luma (default) or RGB")
    p.add_argument("--crop-border", type=int, default=0, help="pixels removed at each border for PSNR/SSIM")
    p.add_argument("--depth-preset", default="none", choices=sorted(DEPTH_PRESETS),
                   help="depth protocol: valid range and crop (nyu: Eigen crop, ≤ 10 m; kitti: Garg crop, ≤ 80 m)")
    p.add_argument("--examples", type=int, default=4, help="images shown in examples.png")
    p.add_argument("--device", default="cpu", help="device for the networks and pyiqa (cpu, cuda, ...)")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    try:
        check_args(args)
    except ValueError as e:
        p.error(str(e))
    return args


def check_args(args: argparse.Namespace) -> None:
    """Every argument checked before any work; fills ``args.method_list``, ``args.prediction_dirs``,
    ``args.metric_list``."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    allowed = DEPTH_METHODS if args.protocol == "depth" else IMAGE_METHODS
    bad = [m for m in methods if m not in allowed]
    if bad:
        raise ValueError(f"--methods: {bad} not available for --protocol {args.protocol} (choose from "
                         f"{', '.join(allowed)}; other methods' outputs: --predictions NAME=DIR)")
    if len(set(methods)) != len(methods):
        raise ValueError(f"--methods: a method is named twice in {args.methods!r}")
    preds = {}
    for spec in args.predictions:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--predictions {spec!r}: NAME=DIR expected")
        if name in methods or name in preds:
            raise ValueError(f"--predictions {spec!r}: the name {name!r} is already used")
        if not Path(folder).is_dir():
            raise ValueError(f"--predictions {spec!r}: no such folder {folder}")
        preds[name] = Path(folder)
    if not methods and not preds:
        raise ValueError("nothing to score: give --methods and/or --predictions")
    for m in ("model", "model-gt"):
        if m in methods and args.protocol != "depth" and not args.weights:
            raise ValueError(f"--methods {m} needs --weights DIR (trained MagicBokeh weights)")
    for flag, folder in (("--weights", args.weights), ("--depth-weights", args.depth_weights)):
        if folder and not Path(folder).is_dir():
            raise ValueError(f"{flag} {folder}: no such folder")
    if args.weights and not (Path(args.weights) / "model.yaml").is_file():
        raise ValueError(f"--weights {args.weights}: no model.yaml: not a folder of trained MagicBokeh weights")
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in iqa.ALL_METRICS]
    if unknown:
        raise ValueError(f"--metrics: unknown {unknown}; choose from {','.join(iqa.ALL_METRICS)}")
    if args.metric_weights and args.metric_weights != "random" and not Path(args.metric_weights).is_dir():
        raise ValueError(f"--metric-weights {args.metric_weights}: no such folder (or 'random')")
    if args.K is not None and not 0 <= args.K <= MAX_K:
        raise ValueError(f"--K: in [0, {MAX_K:g}], got {args.K:g}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit: at least 1, got {args.limit}")
    if args.crop_border < 0:
        raise ValueError(f"--crop-border: at least 0, got {args.crop_border}")
    if args.protocol != "synthetic" and not Path(args.data).is_dir():
        raise ValueError(f"--data {args.data}: no such folder")
    claim(args.out, COMMAND, OUTPUTS, inputs=[args.data] if "://" not in str(args.data) and Path(args.data).exists()
          else [], create=False, signature="results.csv")  # refused naming the foreign files, before any network loads
    args.method_list, args.prediction_dirs, args.metric_list = methods, preds, metrics


def _method_key(args, method: str) -> str:
    """What a cached prediction depends on: a rerun with other settings recomputes."""
    parts = {"method": method, "protocol": args.protocol, "data": str(Path(args.data).resolve()) if
             args.protocol != "synthetic" else args.data, "version": CACHE_VERSION}
    if method in ("classical", "model"):
        parts["depth"] = str(Path(args.depth_weights).resolve()) if args.depth_weights else None
    if method in ("model", "model-gt"):
        folder = Path(args.weights)
        parts["weights"] = {p.name: _sha256(p) for p in sorted(folder.glob("*.safetensors"))}
        parts["model.yaml"] = _sha256(folder / "model.yaml")
    if args.protocol == "pairs":
        parts["K"] = args.K
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class Predictions:
    """OUT/predictions/METHOD/NAME.png with ``index.json`` (the key and each image's seconds): reused on a rerun
    with the same key."""

    def __init__(self, folder: Path, key: str):
        self.folder, self.key = folder, key
        self.index_path = folder / "index.json"
        self.seconds = {}
        if self.index_path.is_file():
            data = json.loads(self.index_path.read_text())
            if data.get("key") == key:
                self.seconds = data.get("seconds", {})
        self.reused = 0

    def get(self, name: str):
        path = self.folder / f"{name}.png"
        if name in self.seconds and path.is_file():
            self.reused += 1
            return np.asarray(Image.open(path).convert("RGB")), self.seconds[name]
        return None

    def put(self, name: str, image: np.ndarray, seconds: float) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.png"
        with atomic_file(path) as f:
            Image.fromarray(image).save(f, format="PNG")
        self.seconds[name] = seconds
        with atomic_file(self.index_path, "w") as f:
            f.write(json.dumps({"key": self.key, "seconds": self.seconds}, indent=1))


def _external(folder: Path, name: str, shape) -> np.ndarray:
    matches = [p for p in list_images(folder) if p.stem == name and p.parent == folder]
    if not matches:
        raise ValueError(f"{folder}: no image named {name}.*")
    img = _crop4(_rgb_u8(matches[0]))[:shape[0], :shape[1]]
    if img.shape[:2] != tuple(shape):
        raise ValueError(f"{matches[0]}: {img.shape[1]}×{img.shape[0]}, the target is {shape[1]}×{shape[0]}")
    return img


def evaluate(args: argparse.Namespace) -> dict:
    """Run one evaluation as the command line describes it (``check_args`` filled ``args``); returns the rows,
    the summary text and the output paths."""
    if args.protocol == "depth":
        return evaluate_depth(args)
    from tqdm import tqdm

    out = Path(args.out)
    claim(out, COMMAND, OUTPUTS, signature="results.csv")
    here = [m for m in args.metric_list if m in iqa.HERE_METRICS]
    pyiqa_names = tuple(m for m in args.metric_list if m in iqa.PYIQA_METRICS)
    metrics = iqa.PyiqaMetrics(pyiqa_names, args.metric_weights, args.device)
    for name, why in metrics.missing.items():
        print(f"metric {name}: missing: {why}", file=sys.stderr)
    runner = Runner(args)
    cache = LQCache(out / "lq")
    data = Path(args.data)
    if args.protocol == "pairs":
        items = pairs_items(data, cache, args.K)
    elif args.protocol == "realsr":
        items = realsr_items(data)
    else:
        items = synthetic_items(args.data)
    methods = args.method_list + list(args.prediction_dirs)
    stores = {m: Predictions(out / "predictions" / m, _method_key(args, m)) for m in args.method_list}
    rows, skipped, examples = [], [], []
    total = args.limit
    bar = tqdm(total=total, desc=f"evaluating {args.protocol}", unit="image")
    done = 0
    fid_dirs = {m: out / "fid" / m for m in methods}
    for item in items:
        if not isinstance(item, Item):
            name, why = item
            skipped.append((name, why))
            print(f"skipped {name}: {why}", file=sys.stderr)
            continue
        done += 1
        shown = [to_uint8(upsample(item.lq, item.target.shape[:2]))]
        for method in methods:
            row = {"image": item.name, "method": method}
            try:
                if method in args.prediction_dirs:
                    pred, seconds = _external(args.prediction_dirs[method], item.name, item.target.shape[:2]), None
                else:
                    cached = stores[method].get(item.name)
                    if cached is None:
                        t0 = time.perf_counter()
                        pred = runner.run(method, item)
                        seconds = time.perf_counter() - t0
                        stores[method].put(item.name, pred, seconds)
                    else:
                        pred, seconds = cached
            except ValueError as e:
                row["error"] = str(e)
                rows.append(row)
                shown.append(None)
                continue
            row["seconds"] = seconds
            if here or item.disp is not None:
                se, smap = iqa.psnr_ssim_maps(pred, item.target, args.color, args.crop_border)
                if "psnr" in here:
                    row["psnr"] = iqa.psnr_from_se(se)
                if "ssim" in here:
                    row["ssim"] = float(np.nanmean(smap))
                if args.protocol == "synthetic" or item.disp is not None:
                    c = args.crop_border
                    sub = item if not c else _cropped(item, c)
                    row.update(strata(sub, se, smap))
            row.update(metrics.score(pred, item.target))
            if "fid" in metrics.metrics:
                fid_dirs[method].mkdir(parents=True, exist_ok=True)
                Image.fromarray(pred).save(fid_dirs[method] / f"{item.name}.png")
            rows.append(row)
            shown.append(pred)
        if "fid" in metrics.metrics:
            (out / "fid" / "_target").mkdir(parents=True, exist_ok=True)
            Image.fromarray(item.target).save(out / "fid" / "_target" / f"{item.name}.png")
        if len(examples) < args.examples:
            examples.append((item.name, shown + [item.target]))
        bar.update(1)
        if args.limit is not None and done >= args.limit:
            break  # before the next item's LQ is made
    bar.close()
    cache.save()
    if done == 0:
        raise ValueError(f"--data {args.data}: no image could be evaluated" +
                         (f" ({len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""))
    fid = {}
    if "fid" in metrics.metrics:
        for method in methods:
            try:
                fid[method] = metrics.fid(fid_dirs[method], out / "fid" / "_target")
            except Exception as e:  # too few images for the covariance, ...
                fid[method] = None
                metrics.missing.setdefault("fid", f"could not be computed: {e}")
    write_csv(out / "results.csv", rows)
    summary = summarise(args, rows, fid, metrics, runner.notes, skipped, cache, done)
    with atomic_file(out / "summary.md", "w") as f:
        f.write(summary)
    if examples:
        example_sheet(out / "examples.png", examples, ["input (LQ up)"] + methods + ["target"])
    print(summary)
    print(f"results: {out / 'results.csv'}, {out / 'summary.md'}, {out / 'examples.png'}")
    unscored = [m for m in methods if not any(r["method"] == m and "error" not in r for r in rows)]
    if unscored:  # the outputs are written (they say why); the exit status says it too
        raise ValueError(f"{', '.join(unscored)}: no image scored (see {out / 'summary.md'})")
    return {"rows": rows, "summary": summary, "fid": fid, "missing": dict(metrics.missing), "skipped": skipped,
            "lq_made": cache.made, "lq_reused": cache.reused,
            "predictions_reused": {m: s.reused for m, s in stores.items()}}


def _cropped(item: Item, c: int) -> Item:
    return Item(item.name, item.lq, item.target[c:-c, c:-c], item.K, disp=item.disp[c:-c, c:-c],
                focus_disparity=item.focus_disparity)


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = ["image", "method", "seconds"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    with atomic_file(path, "w") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else None


def _fmt(v, digits=4) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.{digits}f}" if abs(v) < 10 else f"{v:.2f}"


def summarise(args, rows, fid, metrics, notes, skipped, cache, n) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    order = [m for m in ORDER[args.protocol] if m in args.metric_list]
    lines = [f"# {args.protocol}: {args.data}", "",
             f"{n} images; PSNR/SSIM on {'BT.601 luma (Y)' if args.color == 'y' else 'RGB'}, 8-bit, "
             f"border crop {args.crop_border} px (PSNR of the mean squared error over the image; SSIM: Gaussian "
             "11×11, σ 1.5). Mean over images; FID over the set. ↓ lower is better.", "",
             f"Metrics: {metrics.describe()}."]
    for name, why in metrics.missing.items():
        lines.append(f"- **{iqa.LABELS[name]} missing**: {why}")
    for note in notes:
        lines.append(f"- {note}")
    if cache.made or cache.reused:
        lines.append(f"- LQ inputs: {cache.made} made, {cache.reused} reused (OUT/lq/manifest.json)")
    if skipped:
        lines.append(f"- {len(skipped)} images skipped: " + "; ".join(f"{a}: {b}" for a, b in skipped[:5]))
    lines.append("")
    header = ["method"] + [iqa.LABELS[m] + (" ↓" if m in iqa.LOWER_BETTER else "") for m in order] + \
        ["s / image (median)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        mine = [r for r in rows if r["method"] == method and "error" not in r]
        cells = [method]
        for m in order:
            cells.append(_fmt(fid.get(method)) if m == "fid" else _fmt(_mean(r.get(m) for r in mine)))
        # the median: the first image of a method also pays one-time costs (compiling the renderer, loading weights)
        seconds = [r["seconds"] for r in mine if r.get("seconds") is not None]
        cells.append(_fmt(float(np.median(seconds)) if seconds else None, 3))
        lines.append("| " + " | ".join(cells) + " |")
    failures = []
    for method in methods:  # failed or missing predictions, in the text a reader sees
        errors = [r for r in rows if r["method"] == method and "error" in r]
        if errors:
            scored = sum(1 for r in rows if r["method"] == method and "error" not in r)
            failures.append(f"- **{method}: {len(errors)} of {len(errors) + scored} images failed** (its means "
                            f"are over the other {scored}); e.g. {errors[0]['image']}: {errors[0]['error']}")
    if failures:
        lines += ["", *failures]
    if any("px@r<=1" in r for r in rows):
        labels = [b[0] for b in BINS] + ["occlusion"]
        pixels = [r for r in rows if r["method"] == methods[0] and "px@r<=1" in r]
        total = sum(sum(r[f"px@{b[0]}"] for b in BINS) for r in pixels) or 1
        share = {lab: sum(r[f"px@{lab}"] for r in pixels) / total for lab in labels}
        lines += ["", "PSNR (dB) by blur radius r = K·|d − d_f| and in the occlusion band (pixels within r of a "
                  "disparity discontinuity), pooled over all images' pixels; share of pixels in brackets:", "",
                  "| method | " + " | ".join(f"{lab} ({100 * share[lab]:.1f}%)" for lab in labels) + " |",
                  "|---|" + "---|" * len(labels)]
        for method in methods:
            mine = [r for r in rows if r["method"] == method and "px@r<=1" in r]
            cells = [method]
            for lab in labels:
                # pooled PSNR: the pixel-weighted mean squared error of the stratum over all images
                se = [(r[f"px@{lab}"], 255.0 ** 2 / 10 ** (r[f"psnr@{lab}"] / 10)) for r in mine
                      if r[f"px@{lab}"] and not math.isnan(r[f"psnr@{lab}"])]
                count = sum(c for c, _ in se)
                mse = sum(c * e for c, e in se) / count if count else None
                cells.append("–" if mse is None else _fmt(math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse),
                                                          2))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def example_sheet(path: Path, examples: list, labels: list[str], width: int = 256) -> None:
    """One row per image: input, each method, target; labelled columns."""
    from PIL import ImageDraw

    rows = []
    for name, images in examples:
        h0, w0 = images[-1].shape[:2]
        height = max(1, round(h0 * width / w0))
        cells = []
        for img in images:
            cell = Image.new("RGB", (width, height), (40, 40, 40)) if img is None else \
                Image.fromarray(img if img.ndim == 3 else np.repeat(img[..., None], 3, 2)).resize((width, height))
            cells.append(cell)
        row = Image.new("RGB", (width * len(cells), height + 14), (255, 255, 255))
        ImageDraw.Draw(row).text((2, 1), name, fill=(0, 0, 0))
        for i, c in enumerate(cells):
            row.paste(c, (i * width, 14))
        rows.append(row)
    head = Image.new("RGB", (rows[0].width, 16), (255, 255, 255))
    draw = ImageDraw.Draw(head)
    for i, lab in enumerate(labels):
        draw.text((i * width + 2, 2), lab, fill=(0, 0, 0))
    sheet = Image.new("RGB", (rows[0].width, 16 + sum(r.height for r in rows)), (255, 255, 255))
    sheet.paste(head, (0, 0))
    y = 16
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    sheet.save(path)


# ------------------------------------------------------------------------------------------------ depth
def evaluate_depth(args: argparse.Namespace) -> dict:
    """AbsRel and δ1 of depth models on clear images and their degraded versions (Degrade / Clear / Average)."""
    from tqdm import tqdm

    out = Path(args.out)
    claim(out, COMMAND, OUTPUTS, signature="results.csv")
    data = Path(args.data)
    rgbs = _stem_map(data / "rgb")
    if not rgbs:
        raise ValueError(f"--data {data}: no images in {data / 'rgb'} (depth layout: rgb/, depth/)")
    runner = Runner(args)
    cache = LQCache(out / "lq")
    rows, skipped, done = [], [], 0
    for name in tqdm(sorted(rgbs)[:args.limit], desc="evaluating depth", unit="image"):
        gt_path = _disparity_file(data / "depth", name)
        try:
            if gt_path is None:
                raise ValueError(f"no depth/{name}.(png|npy) beside rgb/{rgbs[name].name}")
            rgb = _crop4(_rgb_u8(rgbs[name]))
            gt = _crop4(read_depth(gt_path))
            if gt.shape != rgb.shape[:2]:
                raise ValueError(f"{gt_path}: {gt.shape[1]}×{gt.shape[0]}, the image {rgb.shape[1]}×{rgb.shape[0]}")
            valid = depth_valid(gt, args.depth_preset)
            if valid.sum() < 10:
                raise ValueError(f"{gt_path}: fewer than 10 valid pixels")
            lq = cache.get(name, rgbs[name], rgb)
        except ValueError as e:
            skipped.append((name, str(e)))
            print(f"skipped {name}: {e}", file=sys.stderr)
            continue
        done += 1
        max_depth = DEPTH_PRESETS[args.depth_preset]["max_depth"]
        for method in args.method_list + list(args.prediction_dirs):
            row = {"image": name, "method": method}
            try:
                for cond, img in (("clear", rgb), ("degraded", lq)):
                    t0 = time.perf_counter()
                    if method == "model":
                        disp = runner.estimate(_as_float(img))
                    else:
                        path = _disparity_file(args.prediction_dirs[method] / cond, name)
                        if path is None:
                            raise ValueError(f"{args.prediction_dirs[method] / cond}: no {name}.(npy|png)")
                        disp = read_disparity(path)
                    if disp.shape != gt.shape:
                        disp = np.asarray(Image.fromarray(disp.astype(np.float32)).resize(gt.shape[::-1],
                                                                                        Image.BILINEAR))
                    row[f"seconds_{cond}"] = time.perf_counter() - t0
                    for k, v in metric_depth_errors(disp, gt, valid, max_depth).items():
                        row[f"{k}_{cond}"] = v
            except ValueError as e:
                row["error"] = str(e)
            rows.append(row)
    cache.save()
    if done == 0:
        raise ValueError(f"--data {args.data}: no image could be evaluated" +
                         (f" ({len(skipped)} skipped, e.g. {skipped[0][0]}: {skipped[0][1]})" if skipped else ""))
    write_csv(out / "results.csv", rows)
    lines = [f"# depth: {args.data}", "",
             f"{done} images; preset {args.depth_preset} ({DEPTH_PRESETS[args.depth_preset]}); prediction aligned to "
             "the ground truth by least-squares scale and shift in disparity; degraded = bokehgen's Real-ESRGAN "
             "pipeline (×4 smaller, OUT/lq).", ""]
    lines += [f"- {note}" for note in runner.notes]
    if skipped:
        lines.append(f"- {len(skipped)} images skipped: " + "; ".join(f"{a}: {b}" for a, b in skipped[:5]))
    lines += ["", "| method | AbsRel ↓ Degrade | Clear | Average | δ1 ↑ Degrade | Clear | Average |",
              "|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method and "error" not in r]
        cells = [method]
        for k in ("absrel", "delta1"):
            d, c = _mean(r[f"{k}_degraded"] for r in mine), _mean(r[f"{k}_clear"] for r in mine)
            cells += [_fmt(d), _fmt(c), _fmt(None if d is None or c is None else (d + c) / 2)]
        lines.append("| " + " | ".join(cells) + " |")
    summary = "\n".join(lines) + "\n"
    with atomic_file(out / "summary.md", "w") as f:
        f.write(summary)
    print(summary)
    return {"rows": rows, "summary": summary, "skipped": skipped, "lq_made": cache.made, "lq_reused": cache.reused}


def main(args: argparse.Namespace) -> dict:
    return evaluate(args)


def cli() -> None:
    from common.cli import run

    args = parse_args()
    try:
        run(main, args)
    except ValueError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    cli()
