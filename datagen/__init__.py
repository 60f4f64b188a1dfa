"""Assets, scenes and the dataset build: asset scanning, random scenes, one sample per scene."""

from common.images import load_alpha, load_image

from .assets import Asset, scan, usable
from .scenes import SceneConfig, SceneSpec, build_layers, draw_scene, make_sample

__all__ = [
    "Asset",
    "SceneConfig",
    "SceneSpec",
    "build_layers",
    "draw_scene",
    "load_alpha",
    "load_image",
    "make_sample",
    "scan",
    "usable",
]
