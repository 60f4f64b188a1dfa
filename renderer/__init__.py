"""Layered thin-lens ray tracer: the HQ bokeh ground truth of bokehgen (ARCHITECTURE.md, "Renderer contract")."""

from .layers import Layer, from_linear, to_linear
from .render import (
    Aperture,
    Character,
    Highlights,
    Quality,
    TextureCache,
    composite,
    defocus_map,
    pinhole_view,
    render_bokeh,
    visible_disparity,
)

__all__ = [
    "Aperture",
    "Character",
    "Highlights",
    "Layer",
    "Quality",
    "TextureCache",
    "composite",
    "defocus_map",
    "from_linear",
    "pinhole_view",
    "render_bokeh",
    "to_linear",
    "visible_disparity",
]
