"""Real-ESRGAN second-order degradations on basicsr: ``degrade(hq, seed) -> (lq, record)``."""

from .config import DegradationConfig
from .pipeline import DegradationRecord, KernelDraw, StageDraw, apply, degrade, draw

__all__ = ["DegradationConfig", "DegradationRecord", "KernelDraw", "StageDraw", "apply", "degrade", "draw"]
