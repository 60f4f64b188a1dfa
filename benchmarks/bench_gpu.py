"""The real configuration's cost on a GPU, in one command, with nothing to download:

    python benchmarks/bench_gpu.py [--config sd21|tiny] [--steps 10] [--batch 4] [--out benchmarks/out/gpu]

It first writes full-size random-weight folders in the published layouts (what model/configs/sd21.yaml reads
from real downloads): Stable Diffusion 2.1-base (unet/, vae/, scheduler/ in diffusers' layout), Depth Anything V2
Large (transformers' layout) and the torchvision VGG16 state dict that LPIPS uses. Random weights cost what
trained ones cost. Then, on CUDA:

- s/step and peak memory of ``--steps`` steps of each training phase (isr1, bokeh, isr) at ``--batch`` per step,
  512², bf16 autocast, with gradient checkpointing on and off (the trainer's own build_model and train_step);
- the same under ``torchrun --nproc_per_node 1`` (NCCL, DistributedDataParallel);
- inference latency at 512² (the paper: 0.106 s on an L40s) and on a tiled 4032×3024 photo.

Without CUDA it says so and runs one CPU step of each phase (full size unless ``--config tiny``, the fast test's
size). Batches are random tensors of the trainer's shapes and ranges: the cost does not depend on the pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

PHASES = ("isr1", "bokeh", "isr")


def make_folders(out: Path, config: str) -> list[str]:
    """Random-weight folders in the published layouts (once); the --set overrides that point the config at them."""
    if config == "tiny":
        return [
            "model.base=null",
            "model.depth=null",
            "train.lpips_backbone=null",
            "train.prior_fit_steps=0",
            "train.prior_vae_steps=0",
        ]
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import DepthAnythingForDepthEstimation

    from model.depthnet import depth_config
    from model.network import SD21_UNET, SD21_VAE, save_sd_folder

    sd, da, vgg = out / "stable-diffusion-2-1-base", out / "Depth-Anything-V2-Large-hf", out / "vgg16-397923af.pth"
    if not (sd / "model_index.json").is_file():
        print(f"writing random SD2.1-base to {sd} ...", flush=True)
        torch.manual_seed(0)
        save_sd_folder(sd, UNet2DConditionModel(**SD21_UNET), AutoencoderKL(**SD21_VAE))
    if not (da / "config.json").is_file():
        print(f"writing random Depth Anything V2 Large to {da} ...", flush=True)
        DepthAnythingForDepthEstimation(depth_config("large")).save_pretrained(da)
    if not vgg.is_file():
        import torchvision

        torch.save(torchvision.models.vgg16(weights=None).state_dict(), vgg)
    return [f"model.base={sd}", f"model.depth={da}", f"train.lpips_backbone={vgg}"]


def batch(n: int, size: int, device) -> dict:
    g = torch.Generator().manual_seed(0)

    def img():
        return torch.rand(n, 3, size, size, generator=g) * 2 - 1

    return {
        k: v.to(device)
        for k, v in {
            "lq": img(),
            "aif": img(),
            "bokeh": img(),
            "defocus": torch.rand(n, 1, size, size, generator=g),
            "mask": (torch.rand(n, 1, size, size, generator=g) > 0.5).float(),
        }.items()
    }


def train_steps(config: str, sets: list[str], steps: int, n: int, checkpointing: bool, ddp: bool) -> dict:
    """{phase: (s/step, peak GiB)} for ``steps`` steps of each phase with the trainer's own code."""
    import itertools

    from model.distributed import Context, resolve_device
    from model.train import build_model, load_configs, train_step

    device = resolve_device("auto")
    cuda = device.type == "cuda"
    mcfg, tcfg = load_configs(
        config,
        sets
        + [
            f"train.batch_size={n}",
            "train.grad_accum=1",
            f"train.gradient_checkpointing={str(checkpointing).lower()}",
            f"train.precision={'bf16' if cuda else 'fp32'}",
            "train.device=auto",
        ],
    )
    ctx = Context(device=device)
    model, perceptual, optimizers = build_model(ctx, mcfg, tcfg, None)
    data = itertools.repeat(batch(n, mcfg.resolution, device))
    out = {}
    for phase in PHASES:
        model.set_phase(phase)
        model.train()
        net = model
        if ddp:
            net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
        train_step(ctx, net, optimizers[phase], data, phase, perceptual, tcfg)  # warm-up (allocations, kernels)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(steps):
            train_step(ctx, net, optimizers[phase], data, phase, perceptual, tcfg)
        if cuda:
            torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        out[phase] = ((time.perf_counter() - t0) / steps, peak)
        net = None
    return out


def inference(config: str, sets: list[str]) -> dict:
    """Seconds per image at 512² and on a tiled 4032×3024 photo (the network only: depth is given)."""
    import numpy as np

    from model.network import MagicBokeh
    from model.pipeline import render_model
    from model.train import load_configs

    mcfg = load_configs(config, sets)[0]
    model = MagicBokeh(mcfg).to("cuda").eval()
    model.fuse()
    out = {}
    for w, h in ((512, 512), (4032, 3024)):
        rgb = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
        disp = np.random.default_rng(1).random((h, w), dtype=np.float32)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            render_model(model, rgb, disp, 16.0, 0.5)  # warm-up
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            render_model(model, rgb, disp, 16.0, 0.5)
            torch.cuda.synchronize()
        out[f"{w}x{h}"] = time.perf_counter() - t0
    return out


def table(title: str, rows: dict) -> None:
    print(f"\n{title}\n  {'phase':<6} {'s/step':>8} {'peak GiB':>9}")
    for phase, (s, gib) in rows.items():
        print(f"  {phase:<6} {s:>8.3f} {gib:>9.2f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="sd21", choices=("sd21", "tiny"))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--out", default="benchmarks/out/gpu", help="where the random-weight folders are written")
    p.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = make_folders(out, args.config)
    if args.ddp_worker:  # under torchrun: one process, NCCL, DDP; rows to a file for the parent
        import torch.distributed as dist

        dist.init_process_group("nccl")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        rows = train_steps(args.config, sets, args.steps, args.batch, True, ddp=True)
        (out / "ddp.json").write_text(json.dumps(rows))
        dist.destroy_process_group()
        return
    if not torch.cuda.is_available():
        print(
            f"no CUDA device: one CPU step of each phase of the {args.config} configuration at batch "
            f"{args.batch} (fp32, no checkpointing); the GPU figures need a GPU"
        )
        table(f"{args.config}, CPU, 1 step", train_steps(args.config, sets, 1, args.batch, False, ddp=False))
        return
    print(f"{torch.cuda.get_device_name()}: {args.config}, batch {args.batch}, bf16, {args.steps} steps per phase")
    for ckpt in (True, False):
        table(
            f"gradient checkpointing {'on' if ckpt else 'off'}",
            train_steps(args.config, sets, args.steps, args.batch, ckpt, ddp=False),
        )
    torch.cuda.empty_cache()
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "1",
        __file__,
        "--ddp-worker",
        "--config",
        args.config,
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    table(
        "torchrun --nproc_per_node 1 (NCCL, DDP), checkpointing on",
        {k: tuple(v) for k, v in json.loads((out / "ddp.json").read_text()).items()},
    )
    print("\ninference (network only, bf16):")
    for k, v in inference(args.config, sets).items():
        print(f"  {k}: {v:.3f} s (the paper: 0.106 s at 512² on an L40s)" if k == "512x512" else f"  {k}: {v:.3f} s")


if __name__ == "__main__":
    main()
