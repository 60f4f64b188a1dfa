"""What every part of model.evaluate shares: the command's name and outputs, the protocols and methods, one
benchmark image (:class:`Item`), reading images by name, and the degraded inputs made once per benchmark
(:class:`LQCache`)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from common.images import display_name, list_images, load_image, to_uint8
from manifests.storage import atomic_file

COMMAND = "model.evaluate"
OUTPUTS = ("results.csv", "summary.md", "report.html", "examples.png", "lq/**", "predictions/**", "fid/**")
REALSR_SCALE = 4  # the model and Table 4 are ×4 super-resolution
DEPTH_METHODS = ("model",)
# the papers' column orders (MagicBokeh Tables 1-2 for bokeh; Table 4, as OSEDiff's, for Real-ISR)
FIELD = ("psnr", "ssim", "ssim_u7", "lpips", "lpips_vgg", "dists", "musiq", "maniqa", "clipiqa", "niqe", "fid")
ORDER = {
    "pairs": ("psnr", "ssim", "lpips", "dists", "musiq", "maniqa", "clipiqa", "niqe", "fid"),
    **{p: FIELD for p in ("blb", "ebb_val294", "ebb400", "ebb400_lq", "realbokeh", "realbokeh_bin")},
    "synthetic": ("psnr", "ssim", "lpips", "dists", "musiq", "maniqa", "clipiqa", "niqe", "fid"),
    "realsr": ("psnr", "ssim", "lpips", "dists", "fid", "niqe", "musiq", "maniqa", "clipiqa"),
}
# blur-radius strata of the synthetic protocol (pixels): in focus, slight, medium, strong
# the target camera's f-number in camera-true synthetic sets (the upper end of each bin)
F_NUMBER_BINS = ((1.4, "f/1.4 and faster"), (2.0, "f/1.4-2"), (2.8, "f/2-2.8"), (4.0, "f/2.8-4"), (math.inf, "slower"))
BINS = (("r<=1", 0.0, 1.0), ("1<r<=4", 1.0, 4.0), ("4<r<=12", 4.0, 12.0), ("r>12", 12.0, math.inf))
EVAL_SEED = 20240801  # the LQ sets' degradation seed (with each image's name)
CACHE_VERSION = 1


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
    f_number: float | None = None  # the target camera's, in a camera-true synthetic set
    group: str | None = None  # the benchmark's breakdown (BLB's blur level, RealBokeh's f-number): summary.md's table


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def image_seed(name: str, seed: int = EVAL_SEED) -> int:
    """The degradation seed of one benchmark image: from the set's seed and the image's name (not its position,
    so --limit and reordering keep every LQ)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big") % 2**63


def crop4(img: np.ndarray, scale: int = 4) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


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

        source_sha = file_sha256(source)
        path = self.folder / f"{name}.png"
        entry = self.entries.get(name)
        if (
            entry
            and entry["source_sha256"] == source_sha
            and path.is_file()
            and file_sha256(path) == entry["lq_sha256"]
        ):
            self.reused += 1
            return np.asarray(Image.open(path).convert("RGB"))
        seed = image_seed(name)
        lq, _ = degrade(hq_u8, seed, self.cfg)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            Image.fromarray(lq).save(f, format="PNG")
        self.entries[name] = {
            "source": display_name(source),
            "source_sha256": source_sha,
            "seed": seed,
            "lq": path.name,
            "lq_sha256": file_sha256(path),
            "hq_size": list(hq_u8.shape[1::-1]),
        }
        self.made += 1
        return lq

    def save(self) -> None:
        from common.jsonfile import dumps

        if not self.entries:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {
            "version": CACHE_VERSION,
            "preset": self.preset,
            "scale": self.cfg.scale,
            "seed": EVAL_SEED,
            "seed_rule": "sha256(f'{seed}:{name}')[:8] big-endian mod 2**63",
            "images": dict(sorted(self.entries.items())),
        }
        with atomic_file(self.manifest_path, "w") as f:
            f.write(dumps(data, indent=1))


def stem_map(folder: Path, strip: tuple = ()) -> dict[str, Path]:
    out = {}
    for p in list_images(folder):
        stem = p.stem
        for suffix in strip:
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        out[stem] = p
    return out


def rgb_u8(path: Path) -> np.ndarray:
    rgb, alpha = load_image(path)  # names the file on bad input
    if alpha is not None:
        from common.images import on_white

        rgb = on_white(rgb, alpha)
    return to_uint8(rgb)


def disparity_file(folder: Path, name: str) -> Path | None:
    for ext in (".npy", ".png", ".tif", ".tiff", ".pfm", ".exr"):
        p = folder / f"{name}{ext}"
        if p.is_file():
            return p
    return None


def as_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 65535.0)


@dataclass
class EvalConfig:
    """One evaluation, typed: what the command line builds and :func:`model.evaluation.evaluate` runs (the fields
    are the command line's flags; ``check_args`` fills the last three)."""

    protocol: str
    data: str
    out: str
    methods: str = "identity,classical"
    weights: str | None = None
    depth_weights: str | None = None
    predictions: list = field(default_factory=list)
    metrics: str | None = None  # None: check_args picks the protocol's columns (ORDER)
    metric_weights: str | None = None
    K: float | None = None
    limit: int | None = None
    color: str | None = None  # "y" or "rgb"; None: check_args picks the protocol's (RGB on the field's benchmarks)
    crop_border: int = 0
    depth_preset: str = "none"
    examples: int = 4
    device: str = "cpu"
    # oracles: help from the ground truth, as some published baselines are scored (every row says which it used)
    k_search: str | None = None  # "ssim": per image, the K of a grid that maximises SSIM against the target
    focus_from: str | None = None  # "gt-edges": the focus where the target is sharpest
    method_list: list = field(default_factory=list)
    prediction_dirs: dict = field(default_factory=dict)
    metric_list: list = field(default_factory=list)
