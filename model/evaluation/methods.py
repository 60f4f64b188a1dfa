"""The methods scored side by side: identity (the floor), classical and classical-gt (our ray tracer), model and
model-gt (trained MagicBokeh weights), each through :mod:`model.pipeline`; and the cache of their predictions."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from common.images import list_images, to_uint8
from manifests.storage import atomic_file

from .shared import CACHE_VERSION, Item, as_float, crop4, file_sha256, rgb_u8

#: the K oracle's grid (px; with the benchmark's own K when it has one): BokehMe's and Genfocus's per-image search
K_GRID = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0)


def gt_edges_mask(target_u8: np.ndarray, share: float = 0.05) -> np.ndarray:
    """The focus oracle (BokehDiff's focus from the target's edges): the ``share`` of the target's pixels where it
    is sharpest (the absolute Laplacian of its luma, averaged over 7×7)."""
    import cv2

    y = cv2.cvtColor(target_u8, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = cv2.blur(np.abs(cv2.Laplacian(y, cv2.CV_32F)), (7, 7))
    return energy >= np.quantile(energy, 1.0 - share)


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
            from ..pipeline import load_model

            if not self.args.weights:
                raise ValueError("method 'model' needs --weights DIR (trained MagicBokeh weights)")
            self._model = load_model(self.args.weights)
        return self._model

    def depth(self):
        if self._depth is None:
            from ..config import ModelConfig
            from ..network import trained_config
            from ..pipeline import depth_folder, load_estimator

            cfg = trained_config(self.args.weights) if self.args.weights else ModelConfig.from_yaml("tiny")
            folder = depth_folder(None, self.args.depth_weights, cfg)  # --depth-weights, else the weights' own
            if folder is None:
                self.notes.append(
                    "depth: no Depth Anything V2 weights (--depth-weights or the model's `depth:`): "
                    "a RANDOM tiny depth network: its disparity is meaningless"
                )
            else:
                self.notes.append(f"depth: {folder}")
            self._depth = load_estimator(cfg, folder)
        return self._depth

    def estimate(self, rgb: np.ndarray) -> np.ndarray:
        from ..pipeline import estimate_disparity

        return estimate_disparity(self.depth(), rgb)

    @staticmethod
    def focus(item: Item, disp: np.ndarray, exact: bool) -> float:
        from ..conditioning import focus_at

        if exact and item.focus_disparity is not None:
            return item.focus_disparity
        if item.focus_mask is not None:
            return float(np.median(disp[item.focus_mask]))
        if item.focus_xy is not None:
            x, y = item.focus_xy
            return focus_at(disp, min(x, disp.shape[1] - 1), min(y, disp.shape[0] - 1))
        return 0.0

    def run(self, method: str, item: Item) -> np.ndarray:
        """The method's output for ``item``: H×W×3 uint8 at the target's size (the method looked up by name in
        :data:`METHODS`). With the K oracle (``k_search``), the best of :data:`K_GRID` by SSIM against the
        target; the K it took is ``self.k_used``."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
        up = upsample(item.lq, item.target.shape[:2])
        self.k_used = item.K
        if self.args.k_search != "ssim" or not METHODS[method].uses_k:
            return to_uint8(METHODS[method].run(self, item, up))
        from .. import iqa

        best = None
        for K in sorted({*K_GRID, item.K} - {0.0}):
            pred = to_uint8(METHODS[method].run(self, dataclasses.replace(item, K=K), up))
            score = iqa.psnr_ssim(pred, item.target, "rgb")[1]
            if best is None or score > best[0]:
                best = (score, K, pred)
        self.k_used = best[1]
        return best[2]

    def oracles(self, method: str) -> str:
        """The oracles ``method`` used in this run ("" for none): what every report row says."""
        used = []
        if not METHODS[method].uses_k:
            return ""
        if self.args.k_search:
            used.append(f"K by {self.args.k_search}")
        if self.args.focus_from:
            used.append(f"focus from {self.args.focus_from}")
        return ", ".join(used)

    def gt_disparity(self, item: Item, method: str):
        """(ground-truth disparity, its exact focus) of a benchmark that has them, else a ValueError."""
        if item.disp is None:
            raise ValueError(f"{method}: this benchmark has no ground-truth disparity")
        return item.disp, self.focus(item, item.disp, exact=True)

    def estimated_disparity(self, item: Item, up: np.ndarray):
        disp = self.estimate(up)
        return disp, self.focus(item, disp, exact=False)


@dataclass(frozen=True)
class Method:
    """A bokeh method of the evaluation: ``run(runner, item, up)`` -> H×W×3 image in [0, 1] (or uint8) at the
    target's size, from the LQ input upsampled (``up``); ``depth``: it estimates depth (the depth weights are in
    its cache key); ``weights``: it runs the trained model (the weights are in its cache key)."""

    run: Callable
    depth: bool = False
    weights: bool = False
    uses_k: bool = True  # it renders with K and a focus (the oracles apply to it)


def _identity(runner, item, up):
    return up


def _classical_gt(runner, item, up):
    from ..pipeline import render_classical

    if item.aif is None:
        raise ValueError("classical-gt: this benchmark has no ground-truth disparity")
    disp, d_f = runner.gt_disparity(item, "classical-gt")
    return render_classical(as_float(item.aif), disp, item.K, d_f)


def _classical(runner, item, up):
    from ..pipeline import render_classical

    disp, d_f = runner.estimated_disparity(item, up)
    return render_classical(up, disp, item.K, d_f) if item.K > 0 else up


def _model(runner, item, up):
    from ..pipeline import render_model

    disp, d_f = runner.estimated_disparity(item, up)
    return render_model(runner.model(), up, disp, item.K, d_f)


def _model_gt(runner, item, up):
    from ..pipeline import render_model

    disp, d_f = runner.gt_disparity(item, "model-gt")
    return render_model(runner.model(), up, disp, item.K, d_f)


#: the image methods by name (--methods): a new method is one entry
METHODS: dict[str, Method] = {
    "identity": Method(_identity, uses_k=False),
    "classical": Method(_classical, depth=True),
    "classical-gt": Method(_classical_gt),
    "model": Method(_model, depth=True, weights=True),
    "model-gt": Method(_model_gt, weights=True),
}


def method_key(args, method: str) -> str:
    """What a cached prediction depends on: a rerun with other settings recomputes."""
    parts = {
        "method": method,
        "protocol": args.protocol,
        "data": str(Path(args.data).resolve()) if args.protocol != "synthetic" else args.data,
        "version": CACHE_VERSION,
    }
    parts["oracles"] = [args.k_search, args.focus_from]
    if METHODS[method].depth:
        parts["depth"] = str(Path(args.depth_weights).resolve()) if args.depth_weights else None
    if METHODS[method].weights:
        folder = Path(args.weights)
        parts["weights"] = {p.name: file_sha256(p) for p in sorted(folder.glob("*.safetensors"))}
        parts["model.yaml"] = file_sha256(folder / "model.yaml")
    if args.protocol not in ("synthetic", "realsr", "blb"):  # the protocols whose K comes from --K
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


def external_method(folder: Path, name: str, shape) -> np.ndarray:
    matches = [p for p in list_images(folder) if p.stem == name and p.parent == folder]
    if not matches:
        raise ValueError(f"{folder}: no image named {name}.*")
    img = crop4(rgb_u8(matches[0]))[: shape[0], : shape[1]]
    if img.shape[:2] != tuple(shape):
        raise ValueError(f"{matches[0]}: {img.shape[1]}×{img.shape[0]}, the target is {shape[1]}×{shape[0]}")
    return img
