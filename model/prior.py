"""The tiny configuration's stand-in for pretrained weights: its random VAE and U-Net fitted on the shards first."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import ModelConfig
from .data import ShardStream, StreamConfig, loader
from .fit import fit
from .logs import get_logger
from .train_config import TrainConfig

log = get_logger(__name__)


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
    data = iter(
        loader(
            ShardStream(
                urls,
                StreamConfig(
                    tcfg.batch_size, tcfg.shuffle_buffer, tcfg.seed + 7, mcfg.k_max, mcfg.focus_radius, tcfg.crop
                ),
                rank=0,
                world=1,
            )
        )
    )

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
        return F.mse_loss(vae.decode((z - (1 - ab) ** 0.5 * eps) / ab**0.5 / sf).sample, b["aif"])

    fit(unet.parameters(), single_step, data, tcfg.prior_fit_steps, tcfg.prior_lr, "prior: U-Net single step (L2)")
    save_sd_folder(tmp, unet, vae)
    tmp.rename(out)
    return out
