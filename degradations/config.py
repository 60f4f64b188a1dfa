"""Typed configuration of the second-order degradation, loadable from YAML with checked overrides."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from common import config

CONFIG_DIR = Path(__file__).parent / "configs"
KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


# the values each [low, high] range may hold: (least, greatest, whether the least itself is allowed)
RANGE_BOUNDS = {
    "blur_sigma": (0.0, 20.0, False),
    "blur_sigma2": (0.0, 20.0, False),  # Gaussian σ in px
    "betag_range": (0.0, 10.0, False),
    "betag_range2": (0.0, 10.0, False),  # generalized Gaussian shape
    "betap_range": (0.0, 10.0, False),
    "betap_range2": (0.0, 10.0, False),  # plateau shape
    "resize_range": (0.0, 4.0, False),
    "resize_range2": (0.0, 4.0, False),  # resize factor
    "noise_range": (0.0, 255.0, True),
    "noise_range2": (0.0, 255.0, True),  # Gaussian σ on the 0..255 scale
    "poisson_scale_range": (0.0, 10.0, True),
    "poisson_scale_range2": (0.0, 10.0, True),
    "jpeg_range": (1.0, 100.0, True),
    "jpeg_range2": (1.0, 100.0, True),  # JPEG quality
}


def _six(values=(0.45, 0.25, 0.12, 0.03, 0.12, 0.03)):
    return field(default_factory=lambda: list(values))


@dataclass
class DegradationConfig:
    """Every value of the Real-ESRGAN second-order degradation (defaults: train_realesrgan_x4plus.yml)."""

    scale: int = 4
    use_usm: bool = False  # Real-ESRGAN sharpens the GT before stage 1; off by default (OSEDiff): our GT is the target
    kernel_range: list[int] = field(default_factory=lambda: [7, 9, 11, 13, 15, 17, 19, 21])
    # ---- first degradation ----
    kernel_list: list[str] = field(default_factory=lambda: list(KERNEL_TYPES))
    kernel_prob: list[float] = _six()
    sinc_prob: float = 0.1
    blur_sigma: list[float] = field(default_factory=lambda: [0.2, 3.0])
    betag_range: list[float] = field(default_factory=lambda: [0.5, 4.0])
    betap_range: list[float] = field(default_factory=lambda: [1.0, 2.0])
    resize_prob: list[float] = field(default_factory=lambda: [0.2, 0.7, 0.1])  # up, down, keep
    resize_range: list[float] = field(default_factory=lambda: [0.15, 1.5])
    gaussian_noise_prob: float = 0.5
    noise_range: list[float] = field(default_factory=lambda: [1.0, 30.0])
    poisson_scale_range: list[float] = field(default_factory=lambda: [0.05, 3.0])
    gray_noise_prob: float = 0.4
    jpeg_range: list[float] = field(default_factory=lambda: [30.0, 95.0])
    # ---- second degradation ----
    second_blur_prob: float = 0.8
    kernel_list2: list[str] = field(default_factory=lambda: list(KERNEL_TYPES))
    kernel_prob2: list[float] = _six()
    sinc_prob2: float = 0.1
    blur_sigma2: list[float] = field(default_factory=lambda: [0.2, 1.5])
    betag_range2: list[float] = field(default_factory=lambda: [0.5, 4.0])
    betap_range2: list[float] = field(default_factory=lambda: [1.0, 2.0])
    resize_prob2: list[float] = field(default_factory=lambda: [0.3, 0.4, 0.3])
    resize_range2: list[float] = field(default_factory=lambda: [0.3, 1.2])
    gaussian_noise_prob2: float = 0.5
    noise_range2: list[float] = field(default_factory=lambda: [1.0, 25.0])
    poisson_scale_range2: list[float] = field(default_factory=lambda: [0.05, 2.5])
    gray_noise_prob2: float = 0.4
    jpeg_range2: list[float] = field(default_factory=lambda: [30.0, 95.0])
    final_sinc_prob: float = 0.8
    # "torch": basicsr.filter2D, bit-identical to Real-ESRGAN's code; "opencv": cv2.filter2D, ~3× faster, equal up to
    # float rounding (see degradations/pipeline.py::_blur)
    blur_backend: str = "torch"

    def __post_init__(self):
        if self.blur_backend not in ("torch", "opencv"):
            raise ValueError(f"blur_backend: 'torch' or 'opencv', got {self.blur_backend!r}")
        if self.scale < 1:
            raise ValueError(f"scale: must be >= 1, got {self.scale}")
        if not self.kernel_range or any(k % 2 == 0 or not 3 <= k <= 21 for k in self.kernel_range):
            raise ValueError(f"kernel_range: odd sizes in [3, 21], got {self.kernel_range}")
        for names, probs in (("kernel_list", "kernel_prob"), ("kernel_list2", "kernel_prob2")):
            kl, kp = getattr(self, names), getattr(self, probs)
            unknown = sorted(set(kl) - set(KERNEL_TYPES))
            if unknown:
                raise ValueError(f"{names}: unknown kernel type(s) {unknown}; known: {list(KERNEL_TYPES)}")
            if len(kl) != len(kp) or abs(sum(kp) - 1.0) > 1e-6:
                raise ValueError(f"{probs}: {len(kp)} probabilities summing to 1 expected for {names}, got {kp}")
        for name in ("resize_prob", "resize_prob2"):
            p = getattr(self, name)
            if len(p) != 3 or abs(sum(p) - 1.0) > 1e-6:
                raise ValueError(f"{name}: 3 probabilities (up, down, keep) summing to 1, got {p}")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_prob") or f.name.endswith("_prob2"):
                if isinstance(v, float) and not 0.0 <= v <= 1.0:
                    raise ValueError(f"{f.name}: a probability in [0, 1], got {v}")
            if "range" in f.name or "sigma" in f.name:
                if f.name != "kernel_range" and (len(v) != 2 or v[0] > v[1]):
                    raise ValueError(f"{f.name}: [low, high] with low <= high, got {v}")
        for name, (least, greatest, closed) in RANGE_BOUNDS.items():
            lo, hi = getattr(self, name)
            if not ((least <= lo) if closed else (least < lo)) or not hi <= greatest:
                raise ValueError(
                    f"{name}: both ends in {'[' if closed else '('}{least:g}, {greatest:g}], got {[lo, hi]}"
                )
        for name in ("betag_range", "betap_range", "betag_range2", "betap_range2"):
            lo, hi = getattr(self, name)
            if not lo <= 1.0 <= hi:
                raise ValueError(
                    f"{name}: basicsr draws beta below or above 1, so the range must contain 1, got {[lo, hi]}"
                )

    @property
    def min_side(self) -> int:
        """The smallest image side the degradation takes: scale × the largest blur kernel."""
        return self.scale * max(self.kernel_range)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "DegradationConfig":
        """Checked by the project's one config loader (common.config): types, ranges, unknown keys."""
        return config.from_dict(cls, values, source)

    @classmethod
    def from_yaml(cls, path) -> "DegradationConfig":
        return config.load(cls, path)

    @classmethod
    def preset(cls, name: str) -> "DegradationConfig":
        """A shipped config: "realesrgan_x4plus" (default) or "s3diff"."""
        path = CONFIG_DIR / f"{name}.yaml"
        if not path.exists():
            raise ValueError(f"unknown preset {name!r}; shipped: {sorted(p.stem for p in CONFIG_DIR.glob('*.yaml'))}")
        return cls.from_yaml(path)

    def override(self, assignments: list[str]) -> "DegradationConfig":
        """Apply ``key=value`` strings (values parsed as YAML), checked like a config file."""
        return config.from_dict(
            DegradationConfig, config.parse_overrides(assignments, config.to_dict(self)), "override"
        )
