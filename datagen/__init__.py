"""Assets, scenes and the dataset build (issues 4 and 5). So far: asset scanning and image loading."""

from .assets import Asset, scan, usable
from .images import load_alpha, load_image

__all__ = ["Asset", "load_alpha", "load_image", "scan", "usable"]
