"""The MagicBokeh model (diffusers + peft + transformers): single-step pruned SD U-Net, LoRA adapters, defocus
ControlNet, focus-aware mask attention, degradation-aware depth; inference (`python -m model.infer`)."""

from .config import ModelConfig

__all__ = ["ModelConfig"]
