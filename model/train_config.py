"""The ``train:`` section (:class:`TrainConfig`) and what a training step needs from it (autocast, devices)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import ModelConfig, load_section
from .logs import get_logger
from .photos import PhotoSource, check_online

log = get_logger(__name__)


@dataclass
class TrainConfig:
    batch_size: int = 4
    num_workers: int = 0
    shuffle_buffer: int = 256
    crop: int | None = None  # train on random crops of this size (on the LQ grid); None: whole samples
    total_steps: int = 20000
    isr1_steps: int = 2000
    bokeh_steps: int = 500
    isr_steps: int = 100
    lr_isr1: float = 5e-5
    lr_bokeh: float = 5e-5
    lr_isr: float = 5e-6
    weight_decay: float = 1e-2
    lpips_weight: float = 1.0
    lpips_net: str = "vgg"
    lpips_backbone: str | None = None  # torchvision ImageNet state dict of the LPIPS backbone (local file)
    prior_vae_steps: int = 0  # tiny configuration only: fit the random VAE first (see module doc) ...
    prior_fit_steps: int = 0  # ... then the random U-Net
    prior_lr: float = 1e-3
    log_every: int = 10
    val_every: int = 500
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"  # "auto" (cuda when there is one), "cpu", "cuda", "cuda:1", ...
    precision: str = "fp32"  # "fp32" or "bf16" (autocast; weights and optimizer state stay fp32)
    gradient_checkpointing: bool = False  # recompute U-Net/ControlNet activations in backward (less memory)
    grad_accum: int = 1  # micro-batches per optimizer step (global batch = batch_size × grad_accum × processes)
    max_grad_norm: float | None = None  # clip the trained parameters' gradient norm (after averaging over ranks)
    # natural photos for the Real-ISR phases (isr1, isr), degraded online (model/photos.py); None: the shards'
    # all-in-focus images (not the paper's recipe, which uses LSDIR + 10k FFHQ faces)
    isr_data: list[PhotoSource] | None = None
    redegrade: bool = False  # the bokeh stream's LQ made afresh from the stored all-in-focus image at each serving
    hflip: bool = True  # the same random horizontal flip for a sample's LQ, all-in-focus, bokeh and disparity
    degradation: str = "realesrgan_x4plus"  # preset of the online degradation (photos, redegrade)
    # damaged shard samples (missing or undecodable members) are skipped, named on stderr and counted in
    # train_log.csv (bad_samples); more than this share of the samples read (after 20) ends the run in one line
    max_bad_fraction: float = 0.1

    def __post_init__(self):
        for name in (
            "batch_size",
            "total_steps",
            "log_every",
            "val_every",
            "ckpt_every",
            "keep_checkpoints",
            "grad_accum",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision: fp32 or bf16, got {self.precision!r}")
        if self.isr1_steps < 0 or self.bokeh_steps < 0 or self.isr_steps < 0 or self.bokeh_steps + self.isr_steps == 0:
            raise ValueError("train: isr1_steps, bokeh_steps, isr_steps >= 0 with bokeh_steps + isr_steps > 0")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction: in [0, 1], got {self.max_bad_fraction}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm: must be > 0 (or null), got {self.max_grad_norm}")
        check_online(self.crop, self.degradation)

    def phase(self, step: int) -> str:
        if step < self.isr1_steps:
            return "isr1"
        k = (step - self.isr1_steps) % (self.bokeh_steps + self.isr_steps)
        return "bokeh" if k < self.bokeh_steps else "isr"


def load_configs(path, overrides=()) -> tuple[ModelConfig, TrainConfig]:
    return load_section(path, overrides, "train", TrainConfig)


def autocast(device: torch.device, precision: str):
    """bf16 autocast on ``device`` when ``precision == "bf16"``; a no-op context for fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
