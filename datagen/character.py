"""Lens character in the ground truth (the ``lens:`` section): named characters, each drawn per sample with its
parameters recorded (the sample JSON's ``lens``, the ``lens_*`` manifest columns), rendered by the renderer's
per-ray terms (renderer.Character: per-channel focus; renderer.Aperture: the cat-eye and its swirl axis).

Characters (a name, the terms it sets, their drawn ranges, and where the form comes from):

- ``ideal``: the thin lens's uniform disk.
- ``apochromat``: LoCA corrected to a residual: loca = (+a, 0, −a), a ~ U(0, 0.004) (an apochromat brings three
  wavelengths to one focus: Smith, *Modern Optical Engineering*, 4th ed., §2.11).
- ``fringing``: strong LoCA, a ~ U(0.02, 0.05): purple and green fringes on out-of-focus edges (same source).
- ``swirly``: mechanical vignetting, cateye ~ U(0.3, 0.7) with tangential cat-eyes circling the centre (Kingslake
  & Johnson, *Lens Design Fundamentals*, 2nd ed., on vignetting).
- ``radial_eyes``: the same cat-eyes with their long axes pointing at the centre (swirl "radial").

Spherical aberration (soap-bubble and smooth discs) and onion rings need per-ray terms the renderer does not have
yet; they are not offered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# name -> (LoCA amplitude range, cat-eye range, swirl axis)
CHARACTERS = {
    "ideal": ((0.0, 0.0), (0.0, 0.0), "tangential"),
    "apochromat": ((0.0, 0.004), (0.0, 0.0), "tangential"),
    "fringing": ((0.02, 0.05), (0.0, 0.0), "tangential"),
    "swirly": ((0.0, 0.0), (0.3, 0.7), "tangential"),
    "radial_eyes": ((0.0, 0.0), (0.3, 0.7), "radial"),
}


@dataclass
class LensConfig:
    """Which lens characters a build draws (off while ``characters`` is empty: the ideal thin lens, as before)."""

    characters: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)  # one per character (alike when empty)

    def __post_init__(self):
        for name in self.characters:
            if name not in CHARACTERS:
                raise ValueError(
                    f"characters: {name!r} is not a lens character; characters: {', '.join(CHARACTERS)} (spherical "
                    "aberration and onion rings are not in the renderer yet)"
                )
        if self.weights and (
            len(self.weights) != len(self.characters) or min(self.weights) < 0 or sum(self.weights) <= 0
        ):
            raise ValueError(
                f"weights: {len(self.characters)} non-negative weights (one per character), got {self.weights}"
            )

    @property
    def enabled(self) -> bool:
        return bool(self.characters)


def draw_character(spec, cfg: LensConfig) -> dict:
    """One sample's character and its parameters (the sample JSON's ``lens``), from a generator of its own
    (seed, index, 4): every other draw is the same with or without characters."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, spec.index, 4]))
    probs = np.asarray(cfg.weights or [1.0] * len(cfg.characters), np.float64)
    name = cfg.characters[int(rng.choice(len(cfg.characters), p=probs / probs.sum()))]
    (a_lo, a_hi), (c_lo, c_hi), swirl = CHARACTERS[name]
    a, cateye = float(rng.uniform(a_lo, a_hi)), float(rng.uniform(c_lo, c_hi))
    return {"character": name, "loca": [a, 0.0, -a], "cateye": cateye, "swirl": swirl}


def render_terms(lens: dict | None) -> dict:
    """render_bokeh's ``aperture`` and ``character`` for a drawn character ({} for none)."""
    if lens is None:
        return {}
    from renderer import Aperture, Character

    return {
        "aperture": Aperture(cateye=lens["cateye"], swirl=lens["swirl"]),
        "character": Character(loca=tuple(lens["loca"])),
    }


def lens_columns(lens: dict) -> dict:
    """The sample JSON's ``lens`` as samples.parquet columns (lens_*)."""
    r, g, b = lens["loca"]
    return {
        "lens_character": lens["character"],
        "lens_loca_r": r,
        "lens_loca_g": g,
        "lens_loca_b": b,
        "lens_cateye": lens["cateye"],
        "lens_swirl": lens["swirl"],
    }


def character_sheet(path, size: int = 192, K: float = 40.0) -> None:
    """A PNG: one column per character (its drawn range's middle), a field of small highlights in front of the focus
    (top row) and behind it (bottom row), so fringes, cat-eyes and their swirl can be seen side by side."""
    from PIL import Image, ImageDraw

    from common.images import to_uint8
    from renderer import Layer, render_bokeh

    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    alpha = np.zeros((size, size), np.float32)
    for gy in (0.15, 0.5, 0.85):
        for gx in (0.15, 0.5, 0.85):
            alpha = np.maximum(alpha, np.clip(2.5 - np.hypot(xx - gx * size, yy - gy * size), 0, 1))
    rows = []
    for d_point, d_bg, d_f in ((0.6, 0.3, 0.3), (0.05, 0.0, 0.3)):
        points = Layer(np.ones((size, size, 3), np.float32), alpha, np.full((size, size), d_point, np.float32))
        bg = Layer(
            np.full((size, size, 3), 0.003, np.float32),
            np.ones((size, size), np.float32),
            np.full((size, size), d_bg, np.float32),
        )
        cells = []
        for name, ((a_lo, a_hi), (c_lo, c_hi), swirl) in CHARACTERS.items():
            lens = {
                "character": name,
                "loca": [(a_lo + a_hi) / 2, 0.0, -(a_lo + a_hi) / 2],
                "cateye": (c_lo + c_hi) / 2,
                "swirl": swirl,
            }
            img = render_bokeh([points, bg], K, d_f, gamma=1.0, **render_terms(lens))
            cells.append(to_uint8(np.clip(img * 18.0, 0, 1) ** (1 / 2.2)))
        rows.append(np.concatenate(cells, axis=1))
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(CHARACTERS):
        draw.text((i * size + 4, 4), name, fill=(255, 255, 255))
    draw.text((4, size + 4), "behind the focus", fill=(255, 255, 255))
    draw.text((4, 18), "in front", fill=(255, 255, 255))
    sheet.save(path)


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description="the lens characters side by side (a PNG)")
    p.add_argument("--out", default="lens_characters.png")
    character_sheet(p.parse_args().out)
