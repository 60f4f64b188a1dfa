"""Degradation-aware depth: the Depth Anything V2 architecture from transformers
(``DepthAnythingForDepthEstimation`` with a Dinov2 backbone). Small/Base/Large use the published V2
configurations and load local weights when given; "tiny" is a random configuration of the same code for tests.
Input: RGB in [0, 1]; ImageNet normalisation; the short side resized to ``input_size`` and both sides rounded to
multiples of 14; output: relative disparity (larger = nearer) at the input's size, normalised to [0, 1] per image."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PATCH = 14

# Depth Anything V2 (the "-hf" releases): backbone width/depth/heads, the 4 tapped layers, neck and fusion widths.
V2_CONFIGS = {
    "small": dict(hidden=384, layers=12, heads=6, out=[3, 6, 9, 12], neck=[48, 96, 192, 384], fusion=64),
    "base": dict(hidden=768, layers=12, heads=12, out=[3, 6, 9, 12], neck=[96, 192, 384, 768], fusion=128),
    "large": dict(hidden=1024, layers=24, heads=16, out=[5, 12, 18, 24], neck=[256, 512, 1024, 1024], fusion=256),
    "tiny": dict(hidden=32, layers=4, heads=2, out=[1, 2, 3, 4], neck=[8, 16, 32, 32], fusion=16),
}


def depth_config(size: str) -> DepthAnythingConfig:
    if size not in V2_CONFIGS:
        raise ValueError(f"depth size: one of {list(V2_CONFIGS)}, got {size!r}")
    c = V2_CONFIGS[size]
    backbone = Dinov2Config(
        hidden_size=c["hidden"],
        num_hidden_layers=c["layers"],
        num_attention_heads=c["heads"],
        intermediate_size=4 * c["hidden"],
        patch_size=PATCH,
        image_size=518,
        out_indices=c["out"],
        reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=c["hidden"],
        neck_hidden_sizes=c["neck"],
        fusion_hidden_size=c["fusion"],
        head_hidden_size=max(8, c["fusion"] // 2),
        depth_estimation_type="relative",
    )


def check_depth_folder(folder, what: str = "--weights") -> None:
    """A local Depth Anything folder in transformers format: its config.json exists and names a depth model; a
    ValueError naming the folder otherwise."""
    import json

    cfg_file = Path(folder) / "config.json"
    if not cfg_file.is_file():
        raise ValueError(f"{what} {folder}: no config.json: not a local Depth Anything folder (nothing is downloaded)")
    try:
        model_type = json.loads(cfg_file.read_text()).get("model_type")
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        raise ValueError(f"{what} {cfg_file}: unreadable config ({e})") from None
    if model_type != "depth_anything":
        raise ValueError(
            f"{what} {folder}: config.json describes a {model_type!r} model, not a Depth Anything "
            f"depth model (model_type 'depth_anything')"
        )


def depth_kind(folder) -> str:
    """ "metric" (the network predicts metres: Depth Anything V2's metric checkpoints, ``depth_estimation_type:
    metric`` in their config.json) or "relative" (disparity up to an unknown scale and shift)."""
    import json

    cfg = json.loads((Path(folder) / "config.json").read_text())
    return "metric" if cfg.get("depth_estimation_type") == "metric" else "relative"


def load_depth_model(size: str = "tiny", weights=None, seed: int = 0) -> DepthAnythingForDepthEstimation:
    """Local weights (a transformers folder: config.json + safetensors) or a random model of ``size``."""
    if weights is not None:
        weights = Path(weights)
        check_depth_folder(weights, "depth weights")
        return DepthAnythingForDepthEstimation.from_pretrained(weights, local_files_only=True)
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
        torch.manual_seed(seed)
        return DepthAnythingForDepthEstimation(depth_config(size))


def input_shape(h: int, w: int, input_size: int) -> tuple[int, int]:
    """(h, w) with the short side at ``input_size``, the aspect kept, both rounded to multiples of 14."""
    s = input_size / min(h, w)
    return (max(PATCH, round(h * s / PATCH) * PATCH), max(PATCH, round(w * s / PATCH) * PATCH))


def preprocess(rgb: torch.Tensor, input_size: int) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> normalised pixel values at the network's size."""
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb: (B, 3, H, W) in [0, 1] expected, got {tuple(rgb.shape)}")
    x = F.interpolate(rgb, size=input_shape(*rgb.shape[-2:], input_size), mode="bicubic", align_corners=False)
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x.clamp(0, 1) - mean) / std


def normalise(disp: torch.Tensor) -> torch.Tensor:
    """Per image to [0, 1] (min -> 0, max -> 1; a constant map -> 0)."""
    flat = disp.flatten(1)
    lo = flat.min(1).values.view(-1, 1, 1, 1)
    hi = flat.max(1).values.view(-1, 1, 1, 1)
    return (disp - lo) / (hi - lo).clamp_min(1e-8)


class DepthEstimator(torch.nn.Module):
    """RGB (B, 3, H, W) in [0, 1] -> disparity (B, 1, H, W) in [0, 1], larger = nearer."""

    def __init__(self, model: DepthAnythingForDepthEstimation, input_size: int = 518):
        super().__init__()
        self.model = model
        self.input_size = input_size

    def raw(self, rgb: torch.Tensor, output_hidden_states: bool = False):
        """The network's own output at its input size (``predicted_depth`` and, on request, the backbone's
        hidden states: the encoder features used for distillation)."""
        return self.model(pixel_values=preprocess(rgb, self.input_size), output_hidden_states=output_hidden_states)

    def metric(self, rgb: torch.Tensor) -> torch.Tensor:
        """A metric network's depth in metres (B, 1, H, W) at the input's size (not normalised)."""
        pred = self.raw(rgb).predicted_depth.unsqueeze(1)
        return F.interpolate(pred, size=rgb.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        pred = self.raw(rgb).predicted_depth.unsqueeze(1)
        pred = F.interpolate(pred, size=rgb.shape[-2:], mode="bilinear", align_corners=False)
        return normalise(pred)
