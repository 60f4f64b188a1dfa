"""Alternating SR/bokeh training of MagicBokeh from bokehgen's shards.

    python -m model.train --config model/configs/tiny.yaml --shards 'DIR/train-{000000..000003}.tar' \
        --val 'DIR/val-*.tar' --out runs/tiny [--set train.total_steps=600]

Stage 1 ("isr1", ``isr1_steps``): VAE-encoder LoRA + SR LoRA on LQ -> HQ all-in-focus (defocus 0, M = 0). Then
phases alternate: "bokeh" (``bokeh_steps``: ControlNet + bokeh LoRA, LQ -> HQ bokeh, conditioned on the defocus
map with the focus mask, lr 5e-5) and "isr" (``isr_steps``: SR LoRA only, lr 5e-6). Loss: L2 + λ·LPIPS.
The run folder holds checkpoints (trained weights only + optimizer state), train_log.csv, val.csv, curves.png
and val_examples_*.png; rerunning the same command resumes from the last checkpoint.

The tiny configuration's U-Net and VAE are random: ``prior_fit_steps`` first fits them (all weights) on the same
data, as the stand-in for the pretrained Stable Diffusion weights the real configuration starts from.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from manifests.lock import writer_lock
from manifests.outdir import OutputFolderError, claim
from manifests.storage import atomic_file, save_figure

from .config import ModelConfig, configs_or_exit, load_section, parse_run_args
from .data import ShardStream, StreamConfig, check_max_k, expand_urls, loader, val_batches
from .figures import example_grid
from .fit import fit
from .logs import get_logger
from .photos import PhotoSource, PhotoStream, check_online, check_run_inputs, photo_loader

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
        for name in ("batch_size", "total_steps", "log_every", "val_every", "ckpt_every", "keep_checkpoints",
                     "grad_accum"):
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


# ---------------------------------------------------------------- the tiny prior
def fit_tiny_prior(mcfg: ModelConfig, tcfg: TrainConfig, urls, out: Path) -> Path:
    """Fit the tiny random VAE (autoencoder on HQ and LQ images) and then the whole pruned U-Net (one step,
    LQ -> all-in-focus) on the training shards; save them in SD layout under ``out``."""
    from .network import load_components, save_sd_folder

    if mcfg.base is not None:
        raise ValueError("prior_fit_steps is for the tiny random configuration (model.base: null) only")
    if (out / "unet" / "config.json").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    unet, vae, scheduler = load_components(None, mcfg.seed)
    data = iter(loader(ShardStream(urls, StreamConfig(tcfg.batch_size, tcfg.shuffle_buffer, tcfg.seed + 7, mcfg.k_max,
                                                      mcfg.focus_radius, tcfg.crop), rank=0, world=1)))

    def autoencode(b):
        x = torch.cat([b["aif"], b["bokeh"], b["lq"]])
        return F.mse_loss(vae.decode(vae.encode(x).latent_dist.mode()).sample, x)

    fit(vae.parameters(), autoencode, data, tcfg.prior_vae_steps, tcfg.prior_lr, "prior: VAE autoencoder (L2)")
    vae.requires_grad_(False)
    # start the single step near the identity: ε̂ = 0 gives x0 = z/√ᾱ (a random conv_out gives noise, which a few
    # hundred steps do not undo at t = 999, where x0 amplifies ε̂'s error 15×)
    torch.nn.init.zeros_(unet.conv_out.weight)
    torch.nn.init.zeros_(unet.conv_out.bias)
    ab = scheduler.alphas_cumprod[mcfg.timestep].item()
    sf = vae.config.scaling_factor
    t = torch.tensor([mcfg.timestep])

    def single_step(b):
        z = vae.encode(b["lq"]).latent_dist.mode() * sf
        eps = unet(z, t.expand(len(z)), encoder_hidden_states=None).sample
        return F.mse_loss(vae.decode((z - (1 - ab) ** 0.5 * eps) / ab ** 0.5 / sf).sample, b["aif"])

    fit(unet.parameters(), single_step, data, tcfg.prior_fit_steps, tcfg.prior_lr, "prior: U-Net single step (L2)")
    save_sd_folder(tmp, unet, vae)
    tmp.rename(out)
    return out


# ---------------------------------------------------------------- checkpoints
def _checkpoints(run: Path) -> list[Path]:
    return sorted(p for p in (run / "checkpoints").glob("step-*") if (p / "state.json").is_file())


def save_checkpoint(run: Path, step: int, model, optimizers: dict, keep: int) -> Path:
    final = run / "checkpoints" / f"step-{step:07d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_weights(tmp)
    torch.save({k: o.state_dict() for k, o in optimizers.items()}, tmp / "optimizers.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "torch_rng": torch.get_rng_state().tolist()}))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in _checkpoints(run)[:-keep]:
        shutil.rmtree(old)
    return final


def _trim_csv(path: Path, step: int) -> None:
    """Drop log rows after ``step`` (written after the checkpoint a resumed run starts from)."""
    if not path.is_file():
        return
    with open(path) as f:
        rows = list(csv.reader(f))
    keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
    with atomic_file(path, "w") as f:
        csv.writer(f).writerows(keep)


def _append(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


# ---------------------------------------------------------------- validation
@torch.no_grad()
def validate(model, urls, mcfg: ModelConfig, tcfg: TrainConfig, step: int, run: Path, max_examples: int = 4) -> dict:
    model.eval()
    scfg = StreamConfig(tcfg.batch_size, 1, tcfg.seed, mcfg.k_max, mcfg.focus_radius, None)  # whole samples
    acc = {k: [] for k in ("psnr_rgb_bokeh", "ssim_y_bokeh", "psnr_rgb_aif", "ssim_y_aif",
                           "psnr_rgb_bokeh_identity", "psnr_rgb_aif_identity")}
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
    return {"step": step, "n": len(acc["psnr_rgb_bokeh"]),
            **{k: round(float(np.mean(v)), 4) for k, v in acc.items()}}


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
        for key, style in (("psnr_rgb_bokeh", "-o"), ("psnr_rgb_bokeh_identity", "--"),
                           ("psnr_rgb_aif", "-s"), ("psnr_rgb_aif_identity", ":")):
            axes[1].plot(steps, [float(r[key]) for r in rows], style, label=key)
        axes[1].set(xlabel="step", ylabel="PSNR dB", title="validation")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    save_figure(run / "curves.png", fig, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- training
def resolve_depth(mcfg: ModelConfig, depth_weights=None) -> ModelConfig:
    """``--depth-weights`` (else ``model.depth``) as an absolute path to a local Depth Anything folder, checked
    (a ValueError naming it); the trained weights' model.yaml records it, so inference uses the same depth model by
    default (model.pipeline.depth_folder)."""
    from .depthnet import check_depth_folder

    folder = depth_weights or mcfg.depth
    if folder is None:
        return mcfg
    check_depth_folder(folder, "--depth-weights" if depth_weights else "model.depth")
    return dataclasses.replace(mcfg, depth=str(Path(folder).resolve()))


# what model.train writes into its run folder (manifests.outdir patterns)
TRAIN_OUTPUTS = ("config.json", "train_log.csv", "val.csv", "curves.png", "val_examples_*.png", "base/**",
                 "base.tmp/**", "checkpoints/**", "weights/**")


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """'key: old -> new' for every value that differs between two nested config records."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return out


def _uses_photos(tcfg: TrainConfig, phase: str) -> bool:
    return tcfg.isr_data is not None and phase in ("isr1", "isr")


def train(mcfg: ModelConfig, tcfg: TrainConfig, shards, run, val=None, perceptual=None,
          stop_after: int | None = None) -> dict:
    """Train (or resume) into ``run``; returns the last validation row (or {}). ``stop_after`` ends this call
    after that many steps (tests: a run interrupted and resumed). Under ``torchrun``/``accelerate launch``
    (``WORLD_SIZE`` > 1) every process runs this: data-parallel with DDP, rank 0 alone writes and logs
    (model/distributed.py, model/logs.py)."""
    from .distributed import setup

    ctx = setup(tcfg.device)
    try:
        return _train(ctx, mcfg, tcfg, shards, Path(run), val, perceptual, stop_after)
    finally:
        ctx.close()


def _train(ctx, mcfg: ModelConfig, tcfg: TrainConfig, shards, run: Path, val, perceptual, stop_after) -> dict:
    urls = expand_urls(shards)
    val_urls = expand_urls(val) if val else None
    check_max_k(urls, mcfg.k_max)
    photos = _photo_source(mcfg, tcfg)
    torch.manual_seed(tcfg.seed)
    _own_run_folder(ctx, run, mcfg, tcfg, [*urls, *(val_urls or [])])
    mcfg = _prior(ctx, mcfg, tcfg, urls, run)
    model, perceptual, optimizers = build_model(ctx, mcfg, tcfg, perceptual)
    start = _resume(ctx, run, model, optimizers)
    streams = _streams(mcfg, tcfg, urls, photos, start)
    end = tcfg.total_steps if stop_after is None else min(tcfg.total_steps, start + stop_after)
    global_batch = tcfg.batch_size * tcfg.grad_accum * ctx.world
    log.info(f"batch: {tcfg.batch_size} per process × {tcfg.grad_accum} accumulated × {ctx.world} processes = "
             f"{global_batch} per step; device {ctx.device}")
    last_val = {}
    t_start = time.perf_counter()
    net = None
    for step in range(start, end):
        phase = tcfg.phase(step)
        if model.phase != phase or net is None:
            model.set_phase(phase)
            net = None  # a new DDP wrapper for the new set of trained parameters (the old one is released first)
            net = ctx.wrap(model)
        opt = optimizers[phase]
        stream = streams["photos" if _uses_photos(tcfg, phase) else "shards"]
        losses = train_step(ctx, net, opt, stream, phase, perceptual, tcfg)
        done = step + 1
        rate = (time.perf_counter() - t_start) / (done - start)
        _log_step(ctx, run, tcfg, done, phase, losses, opt, global_batch, rate, end)
        if val_urls and (done % tcfg.val_every == 0 or done == tcfg.total_steps):
            last_val = _validate(ctx, model, val_urls, mcfg, tcfg, done, run) or last_val
        if done % tcfg.ckpt_every == 0 or done == end:
            if ctx.main:
                save_checkpoint(run, done, model, optimizers, tcfg.keep_checkpoints)
            ctx.barrier()
    net = None
    _finish(ctx, run, model, end == tcfg.total_steps)
    return last_val


# ---------------------------------------------------------------- the steps of a run
def _photo_source(mcfg: ModelConfig, tcfg: TrainConfig):
    """The Real-ISR phases' natural photos as a function of the batches already served, or None (the shards'
    all-in-focus images instead); listed and checked before any work."""
    if tcfg.isr_data is None:
        log.info("NOTE: no train.isr_data: the Real-ISR phases (isr1, isr) learn from the shards' all-in-focus "
                 "images. The paper's recipe uses natural photos (LSDIR + 10k FFHQ faces) degraded online: set "
                 "train.isr_data.")
        return None
    crop = tcfg.crop or mcfg.resolution

    def photos(skip: int) -> PhotoStream:
        return PhotoStream(tcfg.isr_data, crop, tcfg.batch_size, tcfg.seed, tcfg.degradation, tcfg.hflip, skip)

    log.info(f"Real-ISR phases: natural photos degraded online: {photos(0).describe()}")
    return photos


def _own_run_folder(ctx, run: Path, mcfg: ModelConfig, tcfg: TrainConfig, inputs: list) -> None:
    """Rank 0 claims the run folder (manifests.outdir) and records the configuration; a folder holding a run of
    another configuration is refused naming the differences. Every rank checks it runs the recorded one."""
    record = {"model": mcfg.to_dict(), "train": dataclasses.asdict(tcfg)}
    cfg_file = run / "config.json"
    if ctx.main:
        claim(run, "model.train", TRAIN_OUTPUTS, inputs=inputs, signature="config.json")
        if cfg_file.is_file():
            differ = config_differences(json.loads(cfg_file.read_text()), json.loads(json.dumps(record)))
            if differ:
                raise OutputFolderError(f"--out {run}: holds a run of another configuration ({'; '.join(differ[:6])}"
                                        f"{' ...' if len(differ) > 6 else ''}); use another --out, or the same config")
        with atomic_file(cfg_file, "w") as f:
            f.write(json.dumps(record, indent=2))
    ctx.barrier()
    if ctx.distributed and json.loads(cfg_file.read_text()) != json.loads(json.dumps(record)):
        raise ValueError(f"{run}: rank {ctx.rank} has another configuration than rank 0 ({cfg_file})")


def _prior(ctx, mcfg: ModelConfig, tcfg: TrainConfig, urls, run: Path) -> ModelConfig:
    """The tiny configuration's stand-in for pretrained weights, fitted once by rank 0 into run/base; the model
    config then points there."""
    if not (tcfg.prior_fit_steps or tcfg.prior_vae_steps):
        return mcfg
    t0 = time.perf_counter()
    if ctx.main:
        fit_tiny_prior(mcfg, tcfg, urls, run / "base")
    ctx.barrier()  # the other ranks load what rank 0 fitted
    log.info(f"prior ready in {run / 'base'} ({time.perf_counter() - t0:.1f} s)")
    return dataclasses.replace(mcfg, base=str((run / "base").resolve()))


def build_model(ctx, mcfg: ModelConfig, tcfg: TrainConfig, perceptual):
    """The model on the device, the perceptual loss (LPIPS unless given) and one AdamW per phase."""
    from .network import MagicBokeh

    model = MagicBokeh(mcfg).to(ctx.device)
    if tcfg.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    if perceptual is None:
        from .perceptual import make_lpips

        perceptual = make_lpips(tcfg.lpips_net, tcfg.lpips_backbone, verbose=ctx.main)
    if isinstance(perceptual, torch.nn.Module):
        perceptual.requires_grad_(False).to(ctx.device)
    optimizers = {}
    for phase, lr in {"isr1": tcfg.lr_isr1, "bokeh": tcfg.lr_bokeh, "isr": tcfg.lr_isr}.items():
        model.set_phase(phase)
        optimizers[phase] = torch.optim.AdamW(model.trainable_parameters(), lr=lr, weight_decay=tcfg.weight_decay)
    model.set_phase(None)
    return model, perceptual, optimizers


def _resume(ctx, run: Path, model, optimizers: dict) -> int:
    """The step of the last checkpoint (0 without one), its weights, optimizer states and RNG restored; log rows
    written after it dropped."""
    start = 0
    ckpts = _checkpoints(run)
    if ckpts:
        state = json.loads((ckpts[-1] / "state.json").read_text())
        start = state["step"]
        model.load_weights(ckpts[-1])
        for k, sd in torch.load(ckpts[-1] / "optimizers.pt", weights_only=True).items():
            optimizers[k].load_state_dict(sd)
        torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
        if ctx.main:
            for name in ("train_log.csv", "val.csv"):
                _trim_csv(run / name, start)
        log.info(f"resuming from {ckpts[-1]} (step {start})")
    ctx.barrier()  # every rank has read the checkpoint before rank 0 may write the next one
    model.set_phase(None)
    model.train()
    return start


def _streams(mcfg: ModelConfig, tcfg: TrainConfig, urls, photos, start: int) -> dict:
    """The shard stream and the photo stream (when the Real-ISR phases read photos), each past the batches it has
    served in the ``start`` steps already taken (grad_accum per step of the phases that read it)."""
    served = {"photos": 0, "shards": 0}
    for step in range(start):
        served["photos" if _uses_photos(tcfg, tcfg.phase(step)) else "shards"] += tcfg.grad_accum
    scfg = StreamConfig(tcfg.batch_size, tcfg.shuffle_buffer, tcfg.seed, mcfg.k_max, mcfg.focus_radius, tcfg.crop,
                        hflip=tcfg.hflip, redegrade=tcfg.degradation if tcfg.redegrade else None,
                        max_bad_fraction=tcfg.max_bad_fraction)
    streams = {"shards": _counting_bad(iter(loader(ShardStream(urls, scfg, served["shards"]),
                                                   num_workers=tcfg.num_workers)))}
    if photos is not None:
        streams["photos"] = iter(photo_loader(photos(served["photos"]), tcfg.num_workers))
    return streams


#: damaged samples the shard stream's readers skipped so far in this process: DataLoader worker id -> count
BAD_SAMPLES: dict[int, int] = {}


def _counting_bad(batches):
    """The shard stream's batches, their ``bad_samples`` (reader, count so far) noted in BAD_SAMPLES."""
    BAD_SAMPLES.clear()
    for b in batches:
        reader, bad = (int(v) for v in b.pop("bad_samples", torch.tensor([0, 0])))
        BAD_SAMPLES[reader] = bad
        yield b


def train_step(ctx, net, opt, stream, phase: str, perceptual, tcfg: TrainConfig) -> list[float]:
    """One optimizer step of ``phase`` over grad_accum micro-batches (gradients synchronised on the last only);
    returns [loss, L2, LPIPS], averaged over the micro-batches and the processes."""
    opt.zero_grad(set_to_none=True)
    sums = [0.0, 0.0, 0.0]
    for micro in range(tcfg.grad_accum):
        b = to_device(next(stream), ctx.device)
        sync = micro == tcfg.grad_accum - 1 or not ctx.distributed
        with (contextlib.nullcontext() if sync else net.no_sync()), autocast(ctx.device, tcfg.precision):
            if phase == "bokeh":
                pred, target = net(b["lq"], b["defocus"], b["mask"]), b["bokeh"]
            else:
                pred, target = net(b["lq"]), b["aif"]
            lp = perceptual(pred, target).mean().float()
            l2 = F.mse_loss(pred.float(), target)
            loss = l2 + tcfg.lpips_weight * lp
            (loss / tcfg.grad_accum).backward()
        sums = [a + v.item() / tcfg.grad_accum for a, v in zip(sums, (loss, l2, lp))]
    if tcfg.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], tcfg.max_grad_norm)
    opt.step()
    return ctx.mean(sums)


def _log_step(ctx, run: Path, tcfg: TrainConfig, done: int, phase: str, losses, opt, global_batch: int,
              rate: float, end: int) -> None:
    """A row of train_log.csv (rank 0) and, every log_every steps, a progress line with the ETA."""
    loss_v, l2_v, lp_v = losses
    bad = round(ctx.mean([float(sum(BAD_SAMPLES.values()))])[0] * ctx.world)  # skipped by every process's readers
    if ctx.main:
        _append(run / "train_log.csv", {"step": done, "phase": phase, "loss": f"{loss_v:.6f}", "l2": f"{l2_v:.6f}",
                                        "lpips": f"{lp_v:.6f}", "lr": opt.param_groups[0]["lr"],
                                        "global_batch": global_batch, "bad_samples": bad})
    if done % tcfg.log_every == 0 or done == end:
        log.info(f"step {done}/{tcfg.total_steps} [{phase}] loss {loss_v:.4f} (L2 {l2_v:.4f}, LPIPS {lp_v:.4f}) "
                 f"batch {global_batch} ({ctx.world} × {tcfg.batch_size} × {tcfg.grad_accum})  {rate:.2f} s/step, "
                 f"ETA {rate * (tcfg.total_steps - done) / 60:.1f} min"
                 + (f"; {bad} damaged samples skipped so far" if bad else ""))


def _validate(ctx, model, val_urls, mcfg: ModelConfig, tcfg: TrainConfig, done: int, run: Path) -> dict:
    """Rank 0 validates, appends to val.csv and redraws curves.png; returns the row ({} on other ranks)."""
    row = {}
    if ctx.main:
        row = validate(model, val_urls, mcfg, tcfg, done, run)
        _append(run / "val.csv", row)
        log.info(f"val @ {done}: bokeh PSNR (RGB) {row['psnr_rgb_bokeh']:.2f} dB (identity "
                 f"{row['psnr_rgb_bokeh_identity']:.2f}), all-in-focus {row['psnr_rgb_aif']:.2f} dB "
                 f"(identity {row['psnr_rgb_aif_identity']:.2f})")
        plot(run)
    ctx.barrier()
    return row


def _finish(ctx, run: Path, model, complete: bool) -> None:
    """Every rank holds the same weights (checked); when the run is complete rank 0 writes run/weights."""
    digest = ctx.check_in_sync(model)
    if ctx.distributed:
        log.info(f"all {ctx.world} processes hold identical weights (sha256 {digest[:16]})")
    if complete and ctx.main:
        final = run / "weights"
        shutil.rmtree(final, ignore_errors=True)
        model.save_weights(final)
        plot(run)
        log.info(f"done: {run / 'weights'} (use: python -m model.infer --weights {final} ...); curves: "
                 f"{run / 'curves.png'}")
    ctx.barrier()


def parse_args(argv=None):
    return parse_run_args(argv, "python -m model.train", __doc__, "train", val_required=False,
                          out_help="run folder (rerun the same command to resume)", depth=True)


def main(args) -> dict:
    """Run ``python -m model.train`` with parsed arguments (the configs are checked before any work starts)."""
    mcfg, tcfg = configs_or_exit(load_configs, args)
    try:
        mcfg = resolve_depth(mcfg, getattr(args, "depth_weights", None))
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    if args.stop_after is not None and args.stop_after < 1:
        raise SystemExit(f"error: --stop-after: at least 1, got {args.stop_after}")
    check_run_inputs((args.shards, args.val), tcfg.isr_data, "train.isr_data")
    try:
        with writer_lock(args.out, "model.train"):
            return train(mcfg, tcfg, args.shards, args.out, args.val, stop_after=args.stop_after)
    except OutputFolderError as e:
        raise SystemExit(f"error: {e}") from None


def cli() -> None:
    from common.cli import run

    run(main, parse_args())


if __name__ == "__main__":
    cli()
