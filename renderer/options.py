"""The renderer's options: the aperture's shape (:class:`Aperture`), the sampler's quality (:class:`Quality`),
highlights (:class:`Highlights`), and the blur limits render_bokeh enforces (MAX_COC_PX, MAX_RADIUS_OVER_SIZE)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common import config

# ----------------------------------------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Aperture:
    """Shape of the lens aperture, in units of the circle of confusion r = K·|d − d_f|.

    blades: 0 for a circle of radius r; N ≥ 3 for a regular N-gon inscribed in that circle (vertices at r).
    rotation_deg: rotation of the polygon, degrees.
    roundness: 0 = straight blades … 1 = circle (boundary radius blended linearly).
    cateye: mechanical vignetting in [0, 1]: the exit pupil, a disk of radius r shifted toward the frame centre
        by 2·cateye·r·v (v = the pixel's offset from the centre over the half diagonal), clips the aperture into
        a cat's eye toward the corners. Light that it blocks is lost (natural light falloff toward the corners),
        unless ``falloff=False``.
    swirl: the cat-eyes' orientation across the field. "tangential" (default): the pupil shifts toward the centre,
        so each cat-eye's long axis is tangential and they circle the frame centre, the swirl of mechanical
        vignetting (Kingslake & Johnson, *Lens Design Fundamentals*, 2nd ed., 2010, on vignetting); "radial": the
        pupil shifts across the radius, so each long axis points at the centre. A parametric lens character: the
        same clipping of a unit disk by a shifted unit disk, its shift direction turned by 90°.
    """

    blades: int = 0
    rotation_deg: float = 0.0
    roundness: float = 0.0
    cateye: float = 0.0
    falloff: bool = True
    swirl: str = "tangential"

    def __post_init__(self):
        if self.blades != 0 and self.blades < 3:
            raise ValueError(f"blades: 0 (circle) or at least 3, got {self.blades}")
        if not 0.0 <= self.roundness <= 1.0:
            raise ValueError(f"roundness: must lie in [0, 1], got {self.roundness}")
        if not 0.0 <= self.cateye <= 1.0:
            raise ValueError(f"cateye: must lie in [0, 1], got {self.cateye}")
        if self.swirl not in ("tangential", "radial"):
            raise ValueError(f"swirl: 'tangential' or 'radial', got {self.swirl!r}")


@dataclass(frozen=True)
class Character:
    """Lens character beyond the ideal thin lens, as per-ray terms of its mapping (each 0: the ideal lens, and
    :func:`render_bokeh` renders bit-identically to a render without it).

    loca: longitudinal chromatic aberration, the (R, G, B) focus shifts in disparity: each channel is the thin
        lens focused at d_f + loca[c], so a point at d images in channel c as a disk of radius
        K·|d − d_f − loca[c]| (the paraxial focal shift with wavelength of an uncorrected lens: Smith, *Modern
        Optical Engineering*, 4th ed., 2008, §2.11 on chromatic aberration). (+a, 0, −a) with a > 0: red focuses
        nearer and blue farther, the purple/green fringes of out-of-focus edges; an apochromat brings the three
        together (0). Exact occlusion is kept: every channel is a full trace. Cost: three renders.
    """

    loca: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        if len(self.loca) != 3 or not all(np.isfinite(v) and abs(v) <= 0.5 for v in self.loca):
            raise ValueError(f"loca: three focus shifts (R, G, B) in [-0.5, 0.5] disparity, got {self.loca}")

    @property
    def ideal(self) -> bool:
        return not any(self.loca)


def as_character(character) -> Character | None:
    if character is None or isinstance(character, Character):
        return character
    if isinstance(character, dict):
        return config.from_dict(Character, character, "character")
    raise ValueError(f"character: expected None, a Character or a dict, got {character!r}")


APERTURES = {
    "circle": Aperture(),
    "hexagon": Aperture(blades=6),
    "polygon": Aperture(blades=6),
    "cateye": Aperture(cateye=0.5),
}


def as_aperture(aperture) -> Aperture:
    if isinstance(aperture, Aperture):
        return aperture
    if isinstance(aperture, str) and aperture in APERTURES:
        return APERTURES[aperture]
    if isinstance(aperture, dict):
        return config.from_dict(Aperture, aperture, "aperture")
    raise ValueError(f"aperture: expected one of {sorted(APERTURES)}, an Aperture or a dict, got {aperture!r}")


MAX_RADIUS_OVER_SIZE = 4  # render_bokeh refuses a largest blur radius above this many times the image size
MAX_COC_PX = 512  # the largest blur radius (px) render_bokeh supports, whatever the image size: the layers are
# padded by it, so a 2048² render at this limit holds ~2 GB of padded textures and tables


def max_blur_radius(size: int) -> float:
    """The largest blur radius (px) render_bokeh takes on a frame whose long side is ``size`` px: MAX_COC_PX, or
    MAX_RADIUS_OVER_SIZE × size (at least 64 px) for small frames. A scene's K (radius per unit of disparity) is
    limited by it, since |d − d_f| ≤ 1."""
    return float(min(MAX_COC_PX, max(MAX_RADIUS_OVER_SIZE * size, 64)))


@dataclass(frozen=True)
class Quality:
    """Sampling knobs of :func:`render_bokeh`. The defaults are production quality: ≥ 60 dB against a converged
    reference on planar three-layer scenes from K = 32 to 256 and ≥ 62 dB on depth maps that occlude themselves
    (tests/test_renderer/test_sampler.py, test_depth_maps.py; benchmarks/bench_scaling.py), and 64–67 dB against
    the path-traced references in tests/data/oracle.

    cell_px: side, in pixels, of the patch of the most blurred layer that one aperture cell stands for; a pixel
        whose largest circle of confusion has radius r gets N = ⌈π·min(r, flat_px)² / cell_px²⌉ cells, each read
        box-filtered (a box read is the exact mean of a fronto-parallel layer over the cell's footprint, at any
        size). Smaller is slower and closer to the exact aperture integral. Pixels that see a general (RGBD) layer
        use cells 1.6× smaller: its footprint departs from the square a cell reads.
    min_samples / max_samples: bounds on N for blurred pixels (a pixel where every layer that reaches it is in
        focus takes 1 ray).
    flat_px: the blur radius from which cells grow with the disk: beyond it N stays that of a disk of radius
        flat_px, and the leaves of occlusion edges widen as √(r / flat_px) (an edge misplaced by δ px in a disk of
        radius r moves the pixel by ~δ/r), so a pixel's rays stop growing with its blur.
    refine: a cell whose rays its reads cannot stand for is traced as refine × refine sub-cells, again while the
        cause persists (1 = never): cut by the aperture's edge (where its footprint exceeds edge_px); straddling
        an occlusion edge between layers (to leaves of cell_px / refine px, widened beyond flat_px); on a steep
        tilted plane (its blur varies across the footprint by over 0.5 px and 5 % of itself); on a curved smooth
        depth map (its blur varies by over 0.5 px); or, on a depth map that may occlude itself, seeing two of its
        surfaces (to fold_cell).
    fold_cell: the side, as a fraction of the aperture's radius, down to which a cell is refined where a depth map
        may occlude itself (footprints of fold_cell·r px, at least 0.25 px): a part of the map in front of where the
        cell's centre ray met it may meet some of the cell's rays (found conservatively from N-buffers of the map,
        kernels.nearer_surface), or its blurred read spans a step of the map. Such leaves are binary (one surface
        each); their error, ~(fold_cell)^1.5 of the contrast per pixel, does not depend on the blur.
    edge_px: cells cut by the aperture's edge are split only at pixels where a cell's footprint on the most
        blurred layer exceeds this many pixels (0 = always, ``inf`` = never). An unsplit edge cell still reads
        a box with the centroid and second moments of its part inside the aperture.
    strips: a pixel whose every ray meets one surface (one layer within reach, constant disparity or a plane
        whose footprint departs from a disk by under 0.25 px, a round aperture without cat-eye, r ≥ strip_min_px)
        takes the aperture integral in closed form: the mean over the disk of radius √(r² + 1/3) (the disk
        convolved with the texel's box, by its second moment), read in texel rows from the summed-area table.
        A general (RGBD) layer qualifies where its disparity keeps the disk that round over the pixel's window, or
        where it cannot fold and its footprint's rim lies within 0.25 px of a circle: that circle, shifted by the
        surface's slope, is read with the matching first-order weight.
        Below ~2 px the disk's exact shape matters more than that approximation gets right.
    prefilter: each cell reads the box-filtered layer over its footprint (True) or a bilinear point (False).
    pattern: "adaptive" (the above) or "grid" (one fixed grid_n × grid_n grid of point rays inside the disk,
        shared by all pixels: the fixed-pattern approach of MPIB's generator, kept for comparison).
    grid_n: grid size for pattern="grid".
    """

    cell_px: float = 6.0
    min_samples: int = 8
    max_samples: int = 1024
    refine: int = 2
    edge_px: float = 0.0
    strips: bool = True
    strip_min_px: float = 2.0
    prefilter: bool = True
    pattern: str = "adaptive"
    grid_n: int = 51
    flat_px: float = 16.0
    fold_cell: float = 0.05

    def __post_init__(self):
        if not self.cell_px > 0:
            raise ValueError(f"cell_px: must be > 0, got {self.cell_px}")
        if not 1 <= self.min_samples <= self.max_samples:
            raise ValueError(f"need 1 <= min_samples <= max_samples, got {self.min_samples}, {self.max_samples}")
        if self.pattern not in ("adaptive", "grid"):
            raise ValueError(f"pattern: 'adaptive' or 'grid', got {self.pattern!r}")
        if self.refine < 1:
            raise ValueError(f"refine: must be >= 1, got {self.refine}")
        if self.grid_n < 1:
            raise ValueError(f"grid_n: must be >= 1, got {self.grid_n}")
        if not self.strip_min_px >= 0:
            raise ValueError(f"strip_min_px: must be >= 0, got {self.strip_min_px}")
        if not self.flat_px > 0:
            raise ValueError(f"flat_px: must be > 0, got {self.flat_px}")
        if not 0 < self.fold_cell <= 1:
            raise ValueError(f"fold_cell: must lie in (0, 1], got {self.fold_cell}")
        if not self.edge_px >= 0:
            raise ValueError(f"edge_px: must be >= 0 (inf = never split), got {self.edge_px}")

    @classmethod
    def from_dict(cls, options: dict, where: str = "quality") -> "Quality":
        """A Quality from a mapping of its fields, through the project's checked config loader: an unknown key or
        a value of the wrong type raises ValueError naming ``where``, the key and the known fields."""
        return config.from_dict(cls, options, where)


@dataclass(frozen=True)
class Highlights:
    """Inverse tone mapping of clipped highlights, so that bokeh balls of light sources stay bright.

    A pixel whose brightest encoded channel m exceeds ``threshold`` is taken to be clipped; its linear colour is
    multiplied by 1 + (gain − 1)·smoothstep((m − threshold) / (1 − threshold)), i.e. up to ``gain``× at m = 1.
    After the aperture integral the linear image is clipped at 1, as a sensor saturates.
    """

    threshold: float = 0.9
    gain: float = 4.0

    def __post_init__(self):
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold: must lie in [0, 1), got {self.threshold}")
        if not self.gain >= 1.0:
            raise ValueError(f"gain: must be >= 1, got {self.gain}")

    def boost(self, encoded: np.ndarray) -> np.ndarray:
        """H×W gain factors from H×W×3 encoded colour in [0, 1]."""
        t = np.clip((encoded.max(axis=-1).astype(np.float64) - self.threshold) / (1.0 - self.threshold), 0.0, 1.0)
        return 1.0 + (self.gain - 1.0) * t * t * (3.0 - 2.0 * t)
