"""Validation of a training run: PSNR on RGB and SSIM on 8-bit Y of the held-out shards (val.csv), example
grids and the curves plot."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from manifests.storage import save_figure

from .config import ModelConfig
from .data import StreamConfig, val_batches
from .figures import example_grid
from .logs import get_logger
from .train_config import TrainConfig, autocast, to_device

log = get_logger(__name__)


# ---------------------------------------------------------------- metrics and images
def psnr_rgb(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR per image on RGB in [0, 1], unquantised (val.csv's psnr_rgb_*): inputs in [-1, 1]. model.evaluate's
    summary.md reports iqa's PSNR on 8-bit BT.601 Y instead; both through common.metrics.psnr_from_mse."""
    from common.metrics import psnr_from_mse

    mse = (((pred.clamp(-1, 1) - target) / 2) ** 2).flatten(1).mean(1)
    return psnr_from_mse(mse.clamp_min(1e-12), peak=1.0)


def ssim_y(pred: torch.Tensor, target: torch.Tensor) -> list[float]:
    """SSIM per image, the project's one definition (model.iqa, as in evaluate's summary.md): 8-bit images, BT.601
    luma Y, 11×11 Gaussian window (σ 1.5), equal to BasicSR's calculate_ssim(test_y_channel=True). Inputs in
    [-1, 1]; val.csv names its columns ssim_y_*."""
    from .iqa import psnr_ssim

    def u8(x):
        return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()

    return [psnr_ssim(a, b, "y")[1] for a, b in zip(u8(pred), u8(target))]


# ---------------------------------------------------------------- validation
@torch.no_grad()
def validate(model, urls, mcfg: ModelConfig, tcfg: TrainConfig, step: int, run: Path, max_examples: int = 4) -> dict:
    model.eval()
    scfg = StreamConfig(tcfg.batch_size, 1, tcfg.seed, mcfg.k_max, mcfg.focus_radius, None)  # whole samples
    acc = {
        k: []
        for k in (
            "psnr_rgb_bokeh",
            "ssim_y_bokeh",
            "psnr_rgb_aif",
            "ssim_y_aif",
            "psnr_rgb_bokeh_identity",
            "psnr_rgb_aif_identity",
        )
    }
    rows = []
    device = next(model.parameters()).device
    for b in val_batches(urls, scfg):
        d = to_device(b, device)
        with autocast(device, tcfg.precision):
            bokeh = model(d["lq"], d["defocus"], d["mask"]).float().cpu()
            aif = model(d["lq"]).float().cpu()
        acc["psnr_rgb_bokeh"] += psnr_rgb(bokeh, b["bokeh"]).tolist()
        acc["ssim_y_bokeh"] += ssim_y(bokeh, b["bokeh"])
        acc["psnr_rgb_aif"] += psnr_rgb(aif, b["aif"]).tolist()
        acc["ssim_y_aif"] += ssim_y(aif, b["aif"])
        acc["psnr_rgb_bokeh_identity"] += psnr_rgb(b["lq"], b["bokeh"]).tolist()
        acc["psnr_rgb_aif_identity"] += psnr_rgb(b["lq"], b["aif"]).tolist()
        for i in range(len(b["key"])):
            if len(rows) < max_examples:
                rows.append([b["lq"][i], aif[i], b["aif"][i], b["defocus"][i] * 2 - 1, bokeh[i], b["bokeh"][i]])
    model.train()
    if not acc["psnr_rgb_bokeh"]:
        raise ValueError(f"validation shards {urls!r} hold no samples")
    example_grid(rows, run / f"val_examples_{step:07d}.png")
    return {"step": step, "n": len(acc["psnr_rgb_bokeh"]), **{k: round(float(np.mean(v)), 4) for k, v in acc.items()}}


def plot(run: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if (run / "train_log.csv").is_file():
        with open(run / "train_log.csv") as f:
            rows = list(csv.DictReader(f))
        for phase in ("isr1", "bokeh", "isr"):
            pts = [(int(r["step"]), float(r["loss"])) for r in rows if r["phase"] == phase]
            if pts:
                axes[0].plot(*zip(*pts), ".", ms=3, label=phase)
        axes[0].set(xlabel="step", ylabel="loss (L2 + λ·LPIPS)", yscale="log", title="training loss")
        axes[0].legend()
    if (run / "val.csv").is_file():
        with open(run / "val.csv") as f:
            rows = list(csv.DictReader(f))
        steps = [int(r["step"]) for r in rows]
        for key, style in (
            ("psnr_rgb_bokeh", "-o"),
            ("psnr_rgb_bokeh_identity", "--"),
            ("psnr_rgb_aif", "-s"),
            ("psnr_rgb_aif_identity", ":"),
        ):
            axes[1].plot(steps, [float(r[key]) for r in rows], style, label=key)
        axes[1].set(xlabel="step", ylabel="PSNR dB", title="validation")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    save_figure(run / "curves.png", fig, dpi=100)
    plt.close(fig)
