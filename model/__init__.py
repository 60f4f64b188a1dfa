"""The MagicBokeh model (diffusers + peft + transformers): single-step pruned SD U-Net, LoRA adapters, defocus
ControlNet, focus-aware mask attention, degradation-aware depth; inference (`python -m model.infer`)."""

import logging


class _NoKernelHubNotice(logging.Filter):
    """bitsandbytes (imported by peft and diffusers, never used here) warns on import, on CPUs with AVX512-BF16,
    that it could not fetch an optional 4-bit kernel from the Hugging Face hub. Exactly that notice is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to load CPU gemm_4bit_forward from kernels-community")


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_NoKernelHubNotice())

from .config import ModelConfig  # noqa: E402

__all__ = ["ModelConfig"]
