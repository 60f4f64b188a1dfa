"""The build's configuration: one typed dataclass, loaded and checked by ``common.config`` (types, ranges, unknown
keys) before anything is written or Ray starts."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from common import config
from common.limits import MAX_K, check_seed
from datagen.camera import CameraConfig
from datagen.character import LensConfig
from datagen.motion import SequenceConfig
from datagen.scenes import HighlightsConfig, SceneConfig, frame_size
from degradations import DegradationConfig
from renderer.options import max_blur_radius

MAX_SIZE = 8192  # px: a 8192² sample already needs ~2 GB of float buffers in the renderer
# the build's render settings (BuildConfig.render's default): coarser cells, unsplit rim cells, closed-form disks
# down to 1 px, depth-map folds refined to a tenth of the aperture's radius
BUILD_RENDER = {"cell_px": 10.0, "edge_px": math.inf, "strip_min_px": 1.0, "fold_cell": 0.1}


def _check_size(size):
    """``size`` as the config keeps it: an int for a square (also from [S, S], so its hash stays the square's), else
    [W, H]; each side a multiple of 4 in [96, MAX_SIZE]."""
    if isinstance(size, list):
        if len(size) != 2:
            raise ValueError(f"size: an int (a square) or [W, H], got {size}")
        if size[0] == size[1]:
            size = size[0]
    for side in [size] if isinstance(size, int) else size:
        if side % 4 or not 96 <= side <= MAX_SIZE:
            raise ValueError(
                f"size: each side a multiple of 4 in [96, {MAX_SIZE}] (96: the degradation's smallest input), "
                f"got {size}"
            )
    return size


def parse_size(text: str) -> int | list[int]:
    """``--size``: 512 (a square) or WxH (1536x1024); a ValueError otherwise."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--size: an int (512) or WxH (1536x1024), got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) != 2:
        raise ValueError(f"--size: an int (512) or WxH (1536x1024), got {text!r}")
    return values


@dataclass
class BuildConfig:
    """Everything that determines the dataset's bytes (its hash guards the output directory). Loaded and checked by
    ``common.config`` (types, ranges, unknown keys) before anything is written or Ray starts."""

    assets: list[str] = field(default_factory=list)  # ["layout:path", ...]; empty = bundled demo assets
    num_samples: int = 16  # training samples
    val_samples: int = 4  # built only from validation assets, when there are any
    samples_per_shard: int = 8
    seed: int = 0
    size: int | list[int] = 512  # px: an int is a square; [W, H] any aspect (each side a multiple of 4)
    min_asset_size: int = 256
    val_fraction: float = 0.05
    max_failure_rate: float = 0.1  # a shard fails when more of its samples raise than this
    # the scene distribution (datagen.scenes.SceneConfig: K range, foregrounds, focus targets, background model)
    scene: SceneConfig = field(default_factory=SceneConfig)
    k_range: list[float] | None = None  # alias of scene.k_range (older configs)
    # the degradation: {preset: realesrgan_x4plus | s3diff, KEY: VALUE ...} (degradations.DegradationConfig keys)
    degradation: dict = field(default_factory=dict)
    highlights: HighlightsConfig = field(default_factory=HighlightsConfig)  # bright bokeh balls, per sample
    bit_depth: int = 8  # 8, or 16: the all-in-focus and bokeh PNGs in 16 bits (the LQ stays 8-bit)
    license: str = "other"  # the dataset card's license (an SPDX id or "other": yours to state for your assets)
    # renderer.Quality fields for the bokeh render ({} = the renderer's defaults); the default trades a few dB
    # (≥ 58 dB against a converged reference on every scene class, above 8-bit storage's ~59 dB mean) for speed:
    # see README and benchmarks/README.md
    render: dict = field(default_factory=lambda: dict(BUILD_RENDER))
    png_compress_level: int = 3  # zlib level of the PNG members (6 is ~3x slower for ~5% smaller files)
    # camera-true scenes in metres (datagen.camera.CameraConfig; off unless camera.target names a camera)
    camera: CameraConfig = field(default_factory=CameraConfig)
    # clips instead of images (datagen.clips.SequenceConfig; off while sequence.frames is 0)
    sequence: SequenceConfig = field(default_factory=SequenceConfig)
    # lens character in the ground truth (datagen.character.LensConfig; off while lens.characters is empty)
    lens: LensConfig = field(default_factory=LensConfig)

    def __post_init__(self):
        from datagen.assets import LAYOUTS
        from renderer import Quality

        for i, item in enumerate(self.assets):
            layout, sep, path = item.partition(":")
            if not sep or layout not in LAYOUTS or not path:
                raise ValueError(
                    f"assets[{i}]: expected LAYOUT:PATH with LAYOUT one of {', '.join(sorted(LAYOUTS))}, got {item!r}"
                )
        check_seed(self.seed)
        if self.num_samples < 1:
            raise ValueError(
                f"num_samples: at least 1 (a build that produces nothing is not a dataset), got {self.num_samples}"
            )
        if self.val_samples < 0:
            raise ValueError(f"val_samples: >= 0, got {self.val_samples}")
        if self.samples_per_shard < 1:
            raise ValueError(f"samples_per_shard: >= 1, got {self.samples_per_shard}")
        self.size = _check_size(self.size)
        if self.min_asset_size < 1:
            raise ValueError(f"min_asset_size: >= 1, got {self.min_asset_size}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction: in [0, 1), got {self.val_fraction}")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError(f"max_failure_rate: in [0, 1], got {self.max_failure_rate}")
        if self.k_range is not None:  # the alias: checked as scene.k_range, then folded into it (one hash)
            self.scene = config.from_dict(SceneConfig, {**config.to_dict(self.scene), "k_range": self.k_range}, "")
            self.k_range = None
        deg = self.degradation_config()
        for side in self.frame:
            if side % deg.scale or side < deg.min_side:
                raise ValueError(
                    f"size: {self.size_text} must be a multiple of the degradation's scale {deg.scale} and at "
                    f"least {deg.min_side} (scale × largest kernel) on each side"
                )
        if not self.license.strip():
            raise ValueError("license: an SPDX id (e.g. cc-by-4.0) or 'other', got an empty string")
        if self.bit_depth not in (8, 16):
            raise ValueError(f"bit_depth: 8 or 16, got {self.bit_depth}")
        Quality.from_dict(self.render, "render")
        if not 0 <= self.png_compress_level <= 9:
            raise ValueError(f"png_compress_level: 0..9, got {self.png_compress_level}")
        if self.camera.enabled:
            # a clip's zoom magnifies the blur with the image: K as at size × the largest zoom
            self.camera.check_k(self._zoomed_size())
        elif self.scene.k_range[1] > max_blur_radius(max(self.frame)):
            raise ValueError(
                f"scene.k_range: the upper end {self.scene.k_range[1]:g} exceeds the renderer's largest blur radius "
                f"at size {self.size_text}: {max_blur_radius(max(self.frame)):g} px"
            )
        self.sequence.check_motion(min(self.frame))
        if self.sequence.frames and self.camera.enabled and self.camera.input_focus != "same":
            raise ValueError(
                "camera.input_focus: 'other' is for images (refocus pairs); a clip's input focuses with its target"
            )

    @property
    def frame(self) -> tuple[int, int]:
        """(W, H) in px."""
        return frame_size(self.size)

    @property
    def size_text(self) -> str:
        """The frame as a person writes it: 1536x1024."""
        return "{}x{}".format(*self.frame)

    def _zoomed_size(self) -> int:
        """The width (the camera's sensor width maps to it) magnified by a clip's largest zoom."""
        return round(self.frame[0] * (self.sequence.zoom[1] if self.sequence.frames else 1.0))

    def max_k(self) -> float:
        """The bound on the data's K that ``dataset.json`` records as ``max_K``: the model's MAX_K (32), or more
        where scene.k_range, or the cameras at this size, reach further (the trainer maps such data to its own
        k_max by downscaling: model.data)."""
        top = self.camera.max_k(self._zoomed_size()) if self.camera.enabled else self.scene.k_range[1]
        return float(max(MAX_K, top))

    def degradation_config(self) -> DegradationConfig:
        """The ``degradation:`` section as a checked DegradationConfig: its ``preset`` (default realesrgan_x4plus)
        with the section's other keys over it."""
        values = dict(self.degradation)
        preset = values.pop("preset", "realesrgan_x4plus")
        if not isinstance(preset, str):
            raise ValueError(f"degradation.preset: a preset name, got {preset!r}")
        try:
            base = DegradationConfig.preset(preset)
        except ValueError as e:
            raise ValueError(f"degradation.preset: {e}") from None
        return config.from_dict(DegradationConfig, {**config.to_dict(base), **values}, "", "degradation.")

    @classmethod
    def load(cls, path: Path | None, overrides: list[str]) -> "BuildConfig":
        """The YAML file ``path`` (optional) with ``key=value`` overrides, every value checked."""
        where = str(path) if path else "build config"
        data = config.parse_overrides(overrides, config.read_yaml(path) if path is not None else {})
        if "k_range" in data and isinstance(data.get("scene"), dict) and "k_range" in data["scene"]:
            raise ValueError(
                f"{where}: k_range and scene.k_range are both given; k_range is the older name of "
                f"scene.k_range: give only scene.k_range"
            )
        return config.load(cls, path, overrides, where=where)

    def digest(self) -> str:
        values = config.to_dict(self)
        if not self.camera.enabled:  # off: the hash of every K-range build stays what it was
            values.pop("camera")
        elif self.camera.input_focus == "same":  # the default: camera builds keep their hash
            values["camera"].pop("input_focus")
        if not self.sequence.frames:  # likewise for clips
            values.pop("sequence")
        if not self.lens.enabled:  # and for lens characters
            values.pop("lens")
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
