"""Model cost: parameters, MACs and CPU latency of the single-step MagicBokeh network against Stable Diffusion
2.1-base's U-Net (random weights in its exact configuration), side by side at 512×512 (64×64 latents).

    python benchmarks/bench_model.py [--repeats 1] [--threads N] [--no-latency]

MACs are counted by torch.utils.flop_counter (matmul/conv FLOPs / 2) on meta tensors; latency is wall time of a
forward pass in fp32 on this machine's CPU (one warm-up call first). "SD2.1 U-Net" runs with a 77×1024 text
context (cross-attention); ours runs without cross-attention, without the mid-block, plus its ControlNet.
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode

from model.network import SD21_UNET, SD21_VAE, build_controlnet, strip_cross_attention


def build(device):
    with torch.device(device):
        torch.manual_seed(0)
        sd = UNet2DConditionModel(**SD21_UNET).eval()
        no_mid = UNet2DConditionModel(**{**SD21_UNET, "mid_block_type": None}).eval()
        pruned = UNet2DConditionModel(**{**SD21_UNET, "mid_block_type": None}).eval()
        strip_cross_attention(pruned)
        controlnet = build_controlnet(pruned).eval() if device != "meta" else _meta_controlnet(pruned)
        vae = AutoencoderKL(**SD21_VAE).eval()
    return sd, no_mid, pruned, controlnet, vae


def _meta_controlnet(pruned):
    from diffusers import ControlNetModel

    c = pruned.config
    cn = ControlNetModel(
        conditioning_channels=1,
        down_block_types=c.down_block_types,
        block_out_channels=c.block_out_channels,
        layers_per_block=c.layers_per_block,
        cross_attention_dim=c.cross_attention_dim,
        attention_head_dim=c.attention_head_dim,
        use_linear_projection=True,
        mid_block_type="UNetMidBlock2D",
    )
    strip_cross_attention(cn)
    return cn.eval()


def calls(models, device, size):
    sd, no_mid, pruned, controlnet, vae = models
    lat = size // 8
    z = torch.randn(1, 4, lat, lat, device=device)
    t = torch.tensor([999], device=device)
    text = torch.randn(1, 77, 1024, device=device)
    img = torch.randn(1, 3, size, size, device=device)
    cond = torch.rand(1, 1, size, size, device=device)

    def ours():
        down, mid = controlnet(z, t, encoder_hidden_states=None, controlnet_cond=cond, return_dict=False)
        return pruned(
            z, t, encoder_hidden_states=None, down_block_additional_residuals=down, mid_block_additional_residual=mid
        ).sample

    def ours_full():  # VAE encode + U-Net + ControlNet + VAE decode: the whole single step
        lat_ = vae.encode(img).latent_dist.mode()
        down, mid = controlnet(lat_, t, encoder_hidden_states=None, controlnet_cond=cond, return_dict=False)
        eps = pruned(
            lat_, t, encoder_hidden_states=None, down_block_additional_residuals=down, mid_block_additional_residual=mid
        ).sample
        return vae.decode(lat_ - eps).sample

    return {
        "SD2.1 U-Net (1 call, text context)": lambda: sd(z, t, encoder_hidden_states=text).sample,
        "  minus mid-block": lambda: no_mid(z, t, encoder_hidden_states=text).sample,
        "  minus mid-block and cross-attn": lambda: pruned(z, t, encoder_hidden_states=None).sample,
        "  ControlNet alone": lambda: controlnet(
            z, t, encoder_hidden_states=None, controlnet_cond=cond, return_dict=False
        ),
        "ours: pruned U-Net + ControlNet": ours,
        "ours: whole step incl. VAE enc/dec": ours_full,
    }


def params(models):
    sd, no_mid, pruned, controlnet, vae = models
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return {
        "SD2.1 U-Net (1 call, text context)": n(sd),
        "  minus mid-block": n(no_mid),
        "  minus mid-block and cross-attn": n(pruned),
        "  ControlNet alone": n(controlnet),
        "ours: pruned U-Net + ControlNet": n(pruned) + n(controlnet),
        "ours: whole step incl. VAE enc/dec": n(pruned) + n(controlnet) + n(vae),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=512, help="image side in pixels (HQ)")
    p.add_argument("--repeats", type=int, default=1, help="timed forward passes (the best counts)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    p.add_argument("--no-latency", action="store_true", help="count parameters and MACs only, time nothing")
    p.add_argument("--steps", type=int, default=50, help="sampler steps of the multi-step SD baseline")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    meta = build("meta")
    n_params = params(meta)
    macs = {}
    with torch.no_grad():
        for name, fn in calls(meta, "meta", args.size).items():
            counter = FlopCounterMode(display=False)
            with counter:
                fn()
            macs[name] = counter.get_total_flops() / 2
    latency = {}
    if not args.no_latency:
        print(f"building random fp32 models for latency ({args.threads} threads) ...", flush=True)
        cpu = build("cpu")
        with torch.inference_mode():
            for name, fn in calls(cpu, "cpu", args.size).items():
                fn()
                t0 = time.perf_counter()
                for _ in range(args.repeats):
                    fn()
                latency[name] = (time.perf_counter() - t0) / args.repeats
                print(f"  {name.strip():40s} {latency[name]:.2f} s", flush=True)

    base = "SD2.1 U-Net (1 call, text context)"
    print(
        f"\n{args.size}×{args.size} input, latents {args.size // 8}×{args.size // 8}, fp32, {args.threads} CPU threads"
    )
    print(f"{'network':40s} {'params M':>9s} {'GMACs':>8s} {'vs SD':>6s} {'CPU s':>7s} {'vs SD':>6s}")
    for name in n_params:
        lat = latency.get(name)
        lat_s = f"{lat:7.2f} {lat / latency[base]:5.2f}x" if lat is not None else f"{'-':>7s} {'-':>6s}"
        print(f"{name:40s} {n_params[name] / 1e6:9.1f} {macs[name] / 1e9:8.1f} {macs[name] / macs[base]:5.2f}x {lat_s}")
    ours = "ours: pruned U-Net + ControlNet"
    multi = 2 * args.steps * macs[base]
    print("\nwhere a speed-up comes from (U-Net MACs per image):")
    print(f"  SD2.1 sampling, {args.steps} steps × 2 (classifier-free guidance): {multi / 1e12:.1f} TMACs")
    print(
        f"  ours, one step with ControlNet:                     {macs[ours] / 1e12:.3f} TMACs "
        f"({multi / macs[ours]:.0f}× fewer)"
    )
    print(
        f"  per call: pruning saves {100 * (1 - macs['  minus mid-block and cross-attn'] / macs[base]):.1f} % "
        f"of the U-Net's MACs (mid-block alone {100 * (1 - macs['  minus mid-block'] / macs[base]):.1f} %), "
        f"the ControlNet adds {100 * macs['  ControlNet alone'] / macs[base]:.1f} %"
    )


if __name__ == "__main__":
    main()
