"""The MagicBokeh single-step model on diffusers + peft.

* U-Net: Stable Diffusion 2.1-base with the mid-block removed (BK-SDM: ``mid_block_type=None``) and every
  cross-attention removed (``attn2``/``norm2`` set to None; called with ``encoder_hidden_states=None``); no text
  encoder. One step at t = 999 from the VAE latent of the upsampled LQ image (no noise added), x0 in closed form.
* LoRA adapters (peft), named and trained one group at a time: ``vae`` on the VAE encoder, ``sr`` on the U-Net,
  ``bokeh`` on the self-attention (``attn1``) projections, where the focus-aware mask attention runs.
* ControlNet on the 1-channel defocus map r = K·|d − d_f| / K_max, built with a plain mid-block and initialised
  from the pruned U-Net's encoder (``ControlNetModel.from_unet`` refuses a U-Net without mid-block).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import torch
from diffusers import AutoencoderKL, ControlNetModel, DDPMScheduler, UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock
from diffusers.utils import logging as diffusers_logging
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file

from . import attention
from .config import ModelConfig

# Stable Diffusion 2.1-base's own configurations (diffusers layout), for the benchmark and for reference.
SD21_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=(5, 10, 20, 20),
    cross_attention_dim=1024,
    use_linear_projection=True,
    norm_num_groups=32,
    flip_sin_to_cos=True,
    freq_shift=0,
)
SD21_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    layers_per_block=2,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)
SD21_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    clip_sample=False,
    steps_offset=1,
)
SD21_CONTROLNET_EMBEDDING = (16, 32, 96, 256)

# The tiny random configuration: the same block types, widths a CPU can train. Its VAE downsamples 4× into 8
# latent channels (SD: 8× into 4): a VAE this small, fitted on a few images for a minute, cannot reconstruct
# through SD's 48× compression better than the LQ input already is, and the tiny model must learn something
# measurable on a CPU.
TINY_UNET = dict(
    sample_size=16,
    in_channels=8,
    out_channels=8,
    layers_per_block=1,
    block_out_channels=(32, 64, 64),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=(2, 4, 4),
    cross_attention_dim=32,
    use_linear_projection=True,
    norm_num_groups=16,
    flip_sin_to_cos=True,
    freq_shift=0,
)
TINY_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=8,
    layers_per_block=1,
    block_out_channels=(16, 32, 32),
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    norm_num_groups=8,
    sample_size=128,
    scaling_factor=0.18215,
)
TINY_CONTROLNET_EMBEDDING = (8, 16, 16, 32)

VAE_LORA_TARGETS = r"^encoder\.(conv_in|conv_out|.*\.(conv1|conv2|conv_shortcut|conv|to_q|to_k|to_v|to_out\.0))$"
SR_LORA_TARGETS = (
    r"^(down_blocks|up_blocks).*\.(conv1|conv2|conv_shortcut|proj_in|proj_out|to_q|to_k|to_v|to_out\.0"
    r"|ff\.net\.0\.proj|ff\.net\.2)$"
)
BOKEH_LORA_TARGETS = r"^.*\.attn1\.(to_q|to_k|to_v|to_out\.0)$"
ADAPTERS = ("vae", "sr", "bokeh")
# What each training phase updates (the rest is frozen). "isr1": first ISR stage; "bokeh"/"isr": alternating phases.
PHASES = {"isr1": ("lora:vae", "lora:sr"), "bokeh": ("controlnet", "lora:bokeh"), "isr": ("lora:sr",)}


def _tiny_sd(seed: int):
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
        torch.manual_seed(seed)
        return UNet2DConditionModel(**TINY_UNET), AutoencoderKL(**TINY_VAE)


def save_tiny_sd(folder, seed: int = 0) -> Path:
    """Write a tiny random Stable Diffusion (full U-Net with mid-block and cross-attention, VAE, scheduler) in
    SD2.1-base's diffusers folder layout — what :func:`load_components` reads for the real model."""
    return save_sd_folder(folder, *_tiny_sd(seed))


def save_sd_folder(folder, unet: UNet2DConditionModel, vae: AutoencoderKL) -> Path:
    """``unet``, ``vae`` and SD2.1's scheduler in SD2.1-base's diffusers folder layout."""
    folder = Path(folder)
    unet.save_pretrained(folder / "unet")
    vae.save_pretrained(folder / "vae")
    DDPMScheduler(**SD21_SCHEDULER).save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "StableDiffusionPipeline",
                "unet": ["diffusers", "UNet2DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"],
                "scheduler": ["diffusers", "DDPMScheduler"],
            },
            indent=2,
        )
    )
    return folder


def _check_base(base: Path) -> None:
    missing = [
        sub
        for sub in ("unet", "vae", "scheduler")
        if not (base / sub / ("scheduler_config.json" if sub == "scheduler" else "config.json")).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"{base}: not a diffusers Stable Diffusion folder, missing {missing} "
            "(expected unet/, vae/, scheduler/ as in stable-diffusion-2-1-base; nothing is "
            "downloaded)"
        )


def strip_cross_attention(model: torch.nn.Module) -> int:
    """Remove every cross-attention (``attn2`` and its ``norm2``) from the transformer blocks; returns how many."""
    n = 0
    for block in model.modules():
        if isinstance(block, BasicTransformerBlock) and block.attn2 is not None:
            block.attn2 = None
            block.norm2 = None
            n += 1
    return n


def load_components(base: str | Path | None, seed: int = 0):
    """(pruned U-Net, VAE, scheduler) from a local SD2.1-base folder, or the tiny random model when ``base`` is
    None. The U-Net loses its mid-block (its weights are left unused) and every cross-attention."""
    if base is None:  # exactly what loading save_tiny_sd(folder, seed) gives
        full, vae = _tiny_sd(seed)
        with torch.random.fork_rng(devices=[]):  # its random initialisation is overwritten at once
            unet = UNet2DConditionModel(**{**TINY_UNET, "mid_block_type": None})
        _, unexpected = unet.load_state_dict(full.state_dict(), strict=False)
        assert all(k.startswith("mid_block.") for k in unexpected)
        scheduler = DDPMScheduler(**SD21_SCHEDULER)
    else:
        base = Path(base)
        _check_base(base)
        verbosity = diffusers_logging.get_verbosity()
        diffusers_logging.set_verbosity_error()  # it lists the mid-block weights left unused: that is the pruning
        try:
            unet = UNet2DConditionModel.from_pretrained(
                base, subfolder="unet", mid_block_type=None, local_files_only=True
            )
        finally:
            diffusers_logging.set_verbosity(verbosity)
        vae = AutoencoderKL.from_pretrained(base, subfolder="vae", local_files_only=True)
        scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler", local_files_only=True)
    if unet.mid_block is not None:
        raise RuntimeError("the U-Net kept its mid-block: diffusers ignored mid_block_type=None")
    strip_cross_attention(unet)
    return unet, vae, scheduler


def build_controlnet(unet: UNet2DConditionModel, embedding_channels=None, vae_factor: int = 8) -> ControlNetModel:
    """A ControlNet for the 1-channel defocus map with a plain mid-block, its encoder copied from ``unet``; its
    conditioning embedding downsamples the full-size map by ``vae_factor`` (one stride-2 stage per factor 2)."""
    cfg = unet.config
    if embedding_channels is None:
        embedding_channels = (
            SD21_CONTROLNET_EMBEDDING if cfg.block_out_channels[0] >= 256 else TINY_CONTROLNET_EMBEDDING
        )
        stages = int(math.log2(vae_factor))
        if 2**stages != vae_factor or not 1 <= stages < len(embedding_channels):
            raise ValueError(f"vae_factor: a power of 2 up to {2 ** (len(embedding_channels) - 1)}, got {vae_factor}")
        embedding_channels = embedding_channels[-(stages + 1) :]
    controlnet = ControlNetModel(
        in_channels=cfg.in_channels,
        conditioning_channels=1,
        flip_sin_to_cos=cfg.flip_sin_to_cos,
        freq_shift=cfg.freq_shift,
        down_block_types=cfg.down_block_types,
        only_cross_attention=cfg.only_cross_attention,
        block_out_channels=cfg.block_out_channels,
        layers_per_block=cfg.layers_per_block,
        downsample_padding=cfg.downsample_padding,
        mid_block_scale_factor=cfg.mid_block_scale_factor,
        act_fn=cfg.act_fn,
        norm_num_groups=cfg.norm_num_groups,
        norm_eps=cfg.norm_eps,
        cross_attention_dim=cfg.cross_attention_dim,
        attention_head_dim=cfg.attention_head_dim,
        num_attention_heads=cfg.num_attention_heads,
        use_linear_projection=cfg.use_linear_projection,
        upcast_attention=cfg.upcast_attention,
        resnet_time_scale_shift=cfg.resnet_time_scale_shift,
        conditioning_embedding_out_channels=tuple(embedding_channels),
        mid_block_type="UNetMidBlock2D",
    )
    strip_cross_attention(controlnet)
    for name in ("conv_in", "time_proj", "time_embedding", "down_blocks"):
        missing, unexpected = getattr(controlnet, name).load_state_dict(getattr(unet, name).state_dict(), strict=False)
        if missing or unexpected:  # the U-Net may carry LoRA layers: copy only before adapters are added
            raise RuntimeError(f"ControlNet {name}: weights do not match the U-Net's ({missing[:3]}, {unexpected[:3]})")
    return controlnet


def _lora(rank: int, targets: str) -> LoraConfig:
    return LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights="gaussian")


class MagicBokeh(torch.nn.Module):
    """LQ (upsampled to the output size, in [-1, 1]) + defocus map + focus mask -> image in [-1, 1], one step."""

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        cfg = cfg or ModelConfig()
        self.cfg = cfg
        unet, vae, scheduler = load_components(cfg.base, cfg.seed)
        # ControlNet and LoRA initialisation from the config's seed; the caller's global RNG is left as it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + 1)
            self.vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)
            self.controlnet = build_controlnet(unet, vae_factor=self.vae_factor)
            self.unet, self.vae = unet, vae
            self.vae.add_adapter(_lora(cfg.lora_rank_vae, VAE_LORA_TARGETS), adapter_name="vae")
            self.unet.add_adapter(_lora(cfg.lora_rank_sr, SR_LORA_TARGETS), adapter_name="sr")
            with warnings.catch_warnings():  # peft warns that a second adapter joins the first: that is the design
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                self.unet.add_adapter(_lora(cfg.lora_rank_bokeh, BOKEH_LORA_TARGETS), adapter_name="bokeh")
            self.unet.set_adapters(["sr", "bokeh"])
        self.mask_processors = attention.install(self.unet)
        self.prediction_type = scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"scheduler prediction_type {self.prediction_type!r} not supported")
        alpha_bar = scheduler.alphas_cumprod[cfg.timestep].item()
        self.register_buffer("sqrt_ab", torch.tensor(math.sqrt(alpha_bar)), persistent=False)
        self.register_buffer("sqrt_1mab", torch.tensor(math.sqrt(1.0 - alpha_bar)), persistent=False)
        self.scaling_factor = float(vae.config.scaling_factor)
        self.phase = None
        self.set_phase(None)

    # ---- training phases ----
    def enable_gradient_checkpointing(self) -> None:
        """Recompute the U-Net's, ControlNet's and VAE's activations in backward instead of keeping them."""
        for module in (self.unet, self.controlnet, self.vae):
            module.enable_gradient_checkpointing()

    def set_phase(self, phase: str | None) -> list[str]:
        """Freeze everything, then make trainable what ``phase`` ("isr1", "bokeh", "isr"; None: nothing) trains.
        Returns the trainable parameter names. (peft marks every active adapter trainable: this undoes it.)"""
        if phase is not None and phase not in PHASES:
            raise ValueError(f"phase: one of {list(PHASES)} or None, got {phase!r}")
        self.phase = phase
        self.requires_grad_(False)
        wanted = PHASES.get(phase, ())
        names = []
        for name, p in self.named_parameters():
            on = ("controlnet" in wanted and name.startswith("controlnet.")) or any(
                f".lora_A.{w[5:]}." in name or f".lora_B.{w[5:]}." in name for w in wanted if w.startswith("lora:")
            )
            if on:
                p.requires_grad_(True)
                names.append(name)
        return names

    def trainable_parameters(self):
        return [p for p in self.parameters() if p.requires_grad]

    # ---- forward ----
    def encode(self, lq: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(lq).latent_dist.mode() * self.scaling_factor

    def forward(
        self, lq: torch.Tensor, defocus: torch.Tensor | None = None, focus_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``lq`` (B, 3, H, W) in [-1, 1] with H, W multiples of 8; ``defocus`` (B, 1, H, W) = K·|d − d_f| / K_max
        (None: zero, everything in focus); ``focus_mask`` (B, 1, H, W), 1 in focus (None: M = 0)."""
        if lq.ndim != 4 or lq.shape[1] != 3 or lq.shape[-1] % 8 or lq.shape[-2] % 8:
            raise ValueError(f"lq: (B, 3, H, W) with H, W multiples of 8 expected, got {tuple(lq.shape)}")
        if defocus is None:
            defocus = lq.new_zeros(lq.shape[0], 1, *lq.shape[-2:])
        if defocus.shape[-2:] != lq.shape[-2:] or defocus.shape[1] != 1:
            raise ValueError(f"defocus: (B, 1, {lq.shape[-2]}, {lq.shape[-1]}) expected, got {tuple(defocus.shape)}")
        z = self.encode(lq)
        t = torch.full((lq.shape[0],), self.cfg.timestep, dtype=torch.long, device=lq.device)
        down, mid = self.controlnet(
            z, t, encoder_hidden_states=None, controlnet_cond=defocus.to(z.dtype), return_dict=False
        )
        kwargs = None if focus_mask is None else {"focus_mask": focus_mask}
        pred = self.unet(
            z,
            t,
            encoder_hidden_states=None,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
            cross_attention_kwargs=kwargs,
        ).sample
        if self.prediction_type == "epsilon":
            x0 = (z - self.sqrt_1mab * pred) / self.sqrt_ab
        else:
            x0 = self.sqrt_ab * z - self.sqrt_1mab * pred
        return self.vae.decode(x0 / self.scaling_factor).sample

    # ---- adapters and trained weights ----
    def _adapter_module(self, name: str):
        if name not in ADAPTERS:
            raise ValueError(f"adapter: one of {ADAPTERS}, got {name!r}")
        return self.vae if name == "vae" else self.unet

    def adapter_state_dict(self, name: str) -> dict:
        return get_peft_model_state_dict(self._adapter_module(name), adapter_name=name)

    def save_adapter(self, name: str, path) -> None:
        sd = {k: v.detach().contiguous().cpu() for k, v in self.adapter_state_dict(name).items()}
        save_file(sd, str(path), metadata={"adapter": name, "format": "peft"})

    def load_adapter(self, name: str, path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: adapter {name!r} weights not found")
        sd = load_file(str(path))
        result = set_peft_model_state_dict(self._adapter_module(name), sd, adapter_name=name)
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise ValueError(f"{path}: keys that adapter {name!r} does not have, e.g. {unexpected[:3]}")

    def save_weights(self, folder) -> Path:
        """What training changes, and the config: model.yaml, lora_{vae,sr,bokeh}.safetensors,
        controlnet.safetensors; the tiny configuration's random base too (base/), so the folder stands alone."""
        import yaml

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg.to_dict()
        if self.cfg.base is None:
            self._save_tiny_base(folder / "base")
            cfg["base"] = "base"
        (folder / "model.yaml").write_text(yaml.safe_dump({"model": cfg}, sort_keys=False))
        for name in ADAPTERS:
            self.save_adapter(name, folder / f"lora_{name}.safetensors")
        save_file(
            {k: v.contiguous() for k, v in self.controlnet.state_dict().items()}, str(folder / "controlnet.safetensors")
        )
        return folder

    def _save_tiny_base(self, folder: Path) -> None:
        """The tiny random base weights, in SD layout (they come from the seed, not from this model's modules)."""
        if not (folder / "unet" / "config.json").is_file():
            save_tiny_sd(folder, self.cfg.seed)

    def load_weights(self, folder) -> None:
        folder = Path(folder)
        for name in ADAPTERS:
            self.load_adapter(name, folder / f"lora_{name}.safetensors")
        path = folder / "controlnet.safetensors"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ControlNet weights not found")
        self.controlnet.load_state_dict(load_file(str(path)))

    def fuse(self) -> None:
        """Merge the LoRA adapters into the base weights for inference (no training afterwards)."""
        self.vae.fuse_lora(adapter_names=["vae"])
        self.unet.fuse_lora(adapter_names=["sr", "bokeh"])


def trained_config(folder) -> ModelConfig:
    """The ModelConfig that trained weights record in ``folder/model.yaml``, with a relative ``base`` (and a
    relative ``depth`` that exists there) resolved against the folder: the one place that says which base model
    and which depth network a trained model uses."""
    folder = Path(folder)
    if not (folder / "model.yaml").is_file():
        raise FileNotFoundError(f"{folder}: no model.yaml: not a folder of trained MagicBokeh weights")
    cfg = ModelConfig.from_yaml(folder / "model.yaml")
    if cfg.base is not None and not Path(cfg.base).is_absolute():
        cfg.base = str(folder / cfg.base)
    if cfg.depth is not None and not Path(cfg.depth).is_absolute() and (folder / cfg.depth).exists():
        cfg.depth = str(folder / cfg.depth)
    return cfg


def load_trained(folder) -> MagicBokeh:
    """A MagicBokeh with the weights :meth:`MagicBokeh.save_weights` wrote (see :func:`trained_config`)."""
    folder = Path(folder)
    cfg = trained_config(folder)
    model = MagicBokeh(cfg)
    model.load_weights(folder)
    return model
