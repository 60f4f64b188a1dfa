"""The Real-ESRGAN second-order degradation: draw every random choice into a record, then apply it with basicsr.

Order of operations (Real-ESRGAN ``realesrgan_model.py: feed_data``, kernels from ``realesrgan_dataset.py``):

    [USM sharpen GT, optional] → blur(kernel1) → resize(up/down/keep, area/bilinear/bicubic) → Gaussian or Poisson
    noise → JPEG → [blur(kernel2), p = second_blur_prob] → resize to (H/scale·s2, W/scale·s2) → noise → JPEG/final:
    with p = 0.5 [resize to H/scale × W/scale + sinc → JPEG], else [JPEG → resize + sinc] → round to 8 bits.

Randomness is a value: :func:`draw` takes every decision from a ``numpy.random.Generator`` seeded by the sample's
seed, with basicsr's distributions (``random_mixed_kernels``, ``random_bivariate_*``, the sinc cutoffs of
``realesrgan_dataset.py``, the noise and JPEG ranges of ``feed_data``), and writes them into a
:class:`DegradationRecord`. :func:`apply` then calls basicsr's deterministic builders and operators with those
values. The only randomness left inside basicsr is the noise field (``torch.randn`` / ``torch.poisson`` on torch's
global generator): it is drawn under ``torch.random.fork_rng`` seeded with the record's ``noise_seed``, so the
caller's generator state is restored and nothing leaks between samples. Python's ``random`` and NumPy's global
generator are never used.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from common.limits import check_seed

from .compat import basicsr_modules
from .config import DegradationConfig

NAN = float("nan")
INTERP_MODES = ("area", "bilinear", "bicubic")
RESIZE_KINDS = ("up", "down", "keep")


@dataclass
class KernelDraw:
    """One blur kernel: type ("iso" … "plateau_aniso" or "sinc"), odd size, Gaussian parameters or sinc cutoff."""

    type: str
    size: int
    sigma_x: float = NAN
    sigma_y: float = NAN
    theta: float = NAN
    beta: float = NAN
    omega_c: float = NAN


@dataclass
class StageDraw:
    """Resize, noise and JPEG of one degradation stage."""

    resize: str  # up / down / keep
    resize_scale: float
    resize_interp: str
    noise: str  # gaussian / poisson
    noise_sigma: float  # Gaussian sigma (of 255), NaN for Poisson
    noise_scale: float  # Poisson scale, NaN for Gaussian
    noise_gray: bool
    jpeg_quality: float  # stage 2: the quality of the final JPEG


@dataclass
class DegradationRecord:
    """Every random draw of one degradation; :meth:`columns` flattens it into manifest columns."""

    seed: int
    noise_seed: int
    usm: bool
    kernel1: KernelDraw
    stage1: StageDraw
    blur2: bool
    kernel2: KernelDraw
    stage2: StageDraw
    final_sinc: bool
    final_kernel: KernelDraw
    final_order: str  # "resize_sinc_jpeg" or "jpeg_resize_sinc"
    final_interp: str

    def columns(self) -> dict:
        """Flat {column: scalar} with prefixes kernel1_, stage1_, kernel2_, stage2_, final_kernel_."""
        flat = {}
        for key, value in asdict(self).items():
            if isinstance(value, dict):
                flat.update({f"{key}_{k}": v for k, v in value.items()})
            else:
                flat[key] = value
        return flat


# ----------------------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------------------


def _uniform(rng: np.random.Generator, lo_hi) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _draw_kernel(rng, cfg_kernels, probs, sinc_prob, sigma, betag, betap, kernel_range) -> KernelDraw:
    """realesrgan_dataset.py: size from kernel_range; sinc with sinc_prob (cutoff U(π/3, π) below size 13, else
    U(π/5, π)); otherwise basicsr.random_mixed_kernels with rotation U(−π, π)."""
    size = int(rng.choice(kernel_range))
    if rng.uniform() < sinc_prob:
        omega = _uniform(rng, (math.pi / 3, math.pi)) if size < 13 else _uniform(rng, (math.pi / 5, math.pi))
        return KernelDraw("sinc", size, omega_c=omega)
    ktype = str(cfg_kernels[int(rng.choice(len(cfg_kernels), p=np.asarray(probs) / np.sum(probs)))])
    sx = _uniform(rng, sigma)
    if ktype.endswith("aniso"):
        sy = _uniform(rng, sigma)
        theta = _uniform(rng, (-math.pi, math.pi))
    else:
        sy, theta = sx, 0.0
    beta = NAN
    if ktype.startswith("generalized") or ktype.startswith("plateau"):
        rng_beta = betag if ktype.startswith("generalized") else betap
        beta = _uniform(rng, (rng_beta[0], 1.0)) if rng.uniform() < 0.5 else _uniform(rng, (1.0, rng_beta[1]))
    return KernelDraw(ktype, size, sx, sy, theta, beta)


def _draw_stage(rng, resize_prob, resize_range, gauss_prob, noise_range, poisson_range, gray_prob, jpeg_range):
    kind = RESIZE_KINDS[int(rng.choice(3, p=np.asarray(resize_prob) / np.sum(resize_prob)))]
    if kind == "up":
        scale = _uniform(rng, (1.0, resize_range[1]))
    elif kind == "down":
        scale = _uniform(rng, (resize_range[0], 1.0))
    else:
        scale = 1.0
    interp = INTERP_MODES[int(rng.integers(3))]
    if rng.uniform() < gauss_prob:
        noise, sigma, pscale = "gaussian", _uniform(rng, noise_range), NAN
    else:
        noise, sigma, pscale = "poisson", NAN, _uniform(rng, poisson_range)
    gray = bool(rng.uniform() < gray_prob)
    return StageDraw(kind, scale, interp, noise, sigma, pscale, gray, _uniform(rng, jpeg_range))


def draw(seed: int, cfg: DegradationConfig) -> DegradationRecord:
    """All random choices of one degradation from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    k1 = _draw_kernel(
        rng,
        cfg.kernel_list,
        cfg.kernel_prob,
        cfg.sinc_prob,
        cfg.blur_sigma,
        cfg.betag_range,
        cfg.betap_range,
        cfg.kernel_range,
    )
    k2 = _draw_kernel(
        rng,
        cfg.kernel_list2,
        cfg.kernel_prob2,
        cfg.sinc_prob2,
        cfg.blur_sigma2,
        cfg.betag_range2,
        cfg.betap_range2,
        cfg.kernel_range,
    )
    if rng.uniform() < cfg.final_sinc_prob:
        size = int(rng.choice(cfg.kernel_range))
        final = KernelDraw("sinc", size, omega_c=_uniform(rng, (math.pi / 3, math.pi)))
    else:
        final = KernelDraw("pulse", 21)
    s1 = _draw_stage(
        rng,
        cfg.resize_prob,
        cfg.resize_range,
        cfg.gaussian_noise_prob,
        cfg.noise_range,
        cfg.poisson_scale_range,
        cfg.gray_noise_prob,
        cfg.jpeg_range,
    )
    blur2 = bool(rng.uniform() < cfg.second_blur_prob)
    s2 = _draw_stage(
        rng,
        cfg.resize_prob2,
        cfg.resize_range2,
        cfg.gaussian_noise_prob2,
        cfg.noise_range2,
        cfg.poisson_scale_range2,
        cfg.gray_noise_prob2,
        cfg.jpeg_range2,
    )
    order = "resize_sinc_jpeg" if rng.uniform() < 0.5 else "jpeg_resize_sinc"
    final_interp = INTERP_MODES[int(rng.integers(3))]
    noise_seed = int(rng.integers(2**62))
    return DegradationRecord(
        int(seed),
        noise_seed,
        bool(cfg.use_usm),
        k1,
        s1,
        blur2,
        k2,
        s2,
        final.type == "sinc",
        final,
        order,
        final_interp,
    )


# ----------------------------------------------------------------------------------------------------------
# Applying
# ----------------------------------------------------------------------------------------------------------


def build_kernel(k: KernelDraw, pad_to: int = 0) -> np.ndarray:
    """The k.size × k.size kernel (zero-padded to pad_to × pad_to when given) from basicsr's builders."""
    deg, _, _ = basicsr_modules()
    if k.type == "pulse":
        kernel = np.zeros((k.size, k.size), np.float32)
        kernel[k.size // 2, k.size // 2] = 1.0
    elif k.type == "sinc":
        kernel = deg.circular_lowpass_kernel(k.omega_c, k.size, pad_to=False)
    elif k.type in ("iso", "aniso"):
        kernel = deg.bivariate_Gaussian(k.size, k.sigma_x, k.sigma_y, k.theta, isotropic=k.type == "iso")
    elif k.type.startswith("generalized"):
        kernel = deg.bivariate_generalized_Gaussian(
            k.size, k.sigma_x, k.sigma_y, k.theta, k.beta, isotropic=k.type.endswith("_iso")
        )
    else:
        kernel = deg.bivariate_plateau(k.size, k.sigma_x, k.sigma_y, k.theta, k.beta, isotropic=k.type.endswith("_iso"))
    if pad_to and pad_to > k.size:
        p = (pad_to - k.size) // 2
        kernel = np.pad(kernel, ((p, p), (p, p)))
    return np.asarray(kernel, dtype=np.float32)


def add_noise(out: torch.Tensor, st: StageDraw) -> torch.Tensor:
    deg, _, _ = basicsr_modules()
    gray = 1.0 if st.noise_gray else 0.0
    if st.noise == "gaussian":
        return deg.add_gaussian_noise_pt(out, sigma=st.noise_sigma, gray_noise=gray, clip=True, rounds=False)
    return deg.add_poisson_noise_pt(out, scale=st.noise_scale, gray_noise=gray, clip=True, rounds=False)


_JPEG = {}


def jpeger():
    """One basicsr DiffJPEG (its DCT tables are built once per process)."""
    if "jpeg" not in _JPEG:
        _, _, diffjpeg = basicsr_modules()
        _JPEG["jpeg"] = diffjpeg.DiffJPEG(differentiable=False)
    return _JPEG["jpeg"]


def _jpeg(out: torch.Tensor, quality: float) -> torch.Tensor:
    return jpeger()(torch.clamp(out, 0, 1), quality=out.new_tensor([quality]))


def _blur(out: torch.Tensor, k: KernelDraw, backend: str) -> torch.Tensor:
    """basicsr.filter2D (reflect padding, correlation) with the kernel at its own size: the zero taps of
    Real-ESRGAN's 21×21 padding only add exact zeros, so "torch" is bit-identical to the reference.

    backend "opencv" computes the same filter with cv2.filter2D (BORDER_REFLECT_101 = torch's "reflect"; a DFT for
    large kernels), about 3× faster on CPU but equal only up to float32 rounding, which the 8-bit rounding before
    Poisson noise and JPEG quantisation occasionally amplify (tests/test_degradations measures how often)."""
    kernel = build_kernel(k)
    if backend == "opencv":
        img = out[0].permute(1, 2, 0).numpy()
        res = cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
        return torch.from_numpy(np.ascontiguousarray(res.transpose(2, 0, 1)))[None]
    # basicsr.filter2D's own padding and correlation, with the channels as groups of one depthwise conv instead of a
    # batch of single-channel images: oneDNN's depthwise kernel sums the taps in the same order (bit-identical
    # output, tested) at about twice the speed
    size = kernel.shape[-1]
    channels = out.shape[1]
    padded = F.pad(out, (size // 2,) * 4, mode="reflect")
    weight = torch.from_numpy(kernel).view(1, 1, size, size).expand(channels, 1, size, size).contiguous()
    return F.conv2d(padded, weight, groups=channels)


@contextmanager
def _flush_denormals():
    """Treat float32 denormals as zero while degrading. A Gaussian kernel's far taps (e^(-r²/2σ²) down to 1e-40)
    are denormal, and CPUs handle those ~100× slower: without this a third of the samples spend 0.5 s in one blur.
    Their products are below the rounding unit of every sum they join, so the 8-bit LQ stays bit-identical to the
    plain sequence (tested over many seeds; only denormal intermediates differ)."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def apply(hq: torch.Tensor, rec: DegradationRecord, scale: int, blur_backend: str = "torch") -> torch.Tensor:
    """Apply a recorded degradation to hq (1×3×H×W float32 RGB in [0, 1]); returns LQ 1×3×(H/s)×(W/s) in [0, 1]
    on the 8-bit grid."""
    _, ipu, _ = basicsr_modules()
    ori_h, ori_w = hq.shape[2:]
    with torch.random.fork_rng(devices=[]), torch.no_grad(), _flush_denormals():
        torch.manual_seed(rec.noise_seed)
        out = ipu.USMSharp()(hq) if rec.usm else hq
        # ---- first degradation ----
        out = _blur(out, rec.kernel1, blur_backend)
        if rec.stage1.resize != "keep":
            out = F.interpolate(out, scale_factor=rec.stage1.resize_scale, mode=rec.stage1.resize_interp)
        out = add_noise(out, rec.stage1)
        out = _jpeg(out, rec.stage1.jpeg_quality)
        # ---- second degradation ----
        if rec.blur2:
            out = _blur(out, rec.kernel2, blur_backend)
        size2 = (int(ori_h / scale * rec.stage2.resize_scale), int(ori_w / scale * rec.stage2.resize_scale))
        out = F.interpolate(out, size=size2, mode=rec.stage2.resize_interp)
        out = add_noise(out, rec.stage2)
        # ---- final: resize to 1/scale with sinc, and JPEG, in either order ----
        final = (ori_h // scale, ori_w // scale)
        if rec.final_order == "resize_sinc_jpeg":
            out = F.interpolate(out, size=final, mode=rec.final_interp)
            if rec.final_sinc:  # the pulse kernel is the identity: skipping it is exact
                out = _blur(out, rec.final_kernel, blur_backend)
            out = _jpeg(out, rec.stage2.jpeg_quality)
        else:
            out = _jpeg(out, rec.stage2.jpeg_quality)
            out = F.interpolate(out, size=final, mode=rec.final_interp)
            if rec.final_sinc:
                out = _blur(out, rec.final_kernel, blur_backend)
        return torch.clamp((out * 255.0).round(), 0, 255) / 255.0


# ----------------------------------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------------------------------


def to_tensor(hq: np.ndarray, cfg: DegradationConfig, name: str = "hq") -> torch.Tensor:
    """Check an H×W×3 RGB image (uint8, or float in [0, 1]) and return it as 1×3×H×W float32."""
    arr = np.asarray(hq)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"{name}: expected an H×W×3 RGB image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        img = arr.astype(np.float32) / 255.0
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: {int((~np.isfinite(arr)).sum())} non-finite value(s) (NaN or inf)")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{name}: float images must lie in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
        img = arr.astype(np.float32)
    else:
        raise TypeError(f"{name}: expected uint8 or float in [0, 1], got dtype {arr.dtype}")
    h, w = img.shape[:2]
    smallest = cfg.min_side
    if min(h, w) < smallest:
        raise ValueError(f"{name}: image {h}×{w} is smaller than {smallest} px (scale × largest kernel) on a side")
    if h % cfg.scale or w % cfg.scale:
        raise ValueError(f"{name}: size {h}×{w} is not divisible by the scale {cfg.scale}")
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


def degrade(hq: np.ndarray, seed: int, cfg: DegradationConfig | None = None) -> tuple[np.ndarray, DegradationRecord]:
    """Degrade an HQ image the Real-ESRGAN way.

    Args:
        hq: H×W×3 sRGB RGB, uint8 or float32 in [0, 1]; H and W divisible by the scale, at least
            scale × the largest kernel size (84 px for the defaults).
        seed: the sample's seed, an integer in [0, 2**63) (manifests store it as int64); the same seed gives a
            bit-identical LQ.
        cfg: the configuration (default: Real-ESRGAN x4plus).

    Returns:
        (lq, record): lq is (H/scale)×(W/scale)×3 uint8 sRGB; record holds every random draw.
    """
    cfg = cfg or DegradationConfig()
    seed = check_seed(seed)
    tensor = to_tensor(hq, cfg)
    rec = draw(seed, cfg)
    return _apply_u8(tensor, rec, cfg), rec


def degrade_with(hq: np.ndarray, rec: DegradationRecord, cfg: DegradationConfig | None = None) -> np.ndarray:
    """Degrade an HQ image with the draws of ``rec`` (a record :func:`draw` made, possibly with another
    ``noise_seed``): the LQ as :func:`degrade` returns it. Clips draw once and degrade each frame with it."""
    cfg = cfg or DegradationConfig()
    return _apply_u8(to_tensor(hq, cfg), rec, cfg)


def _apply_u8(tensor: torch.Tensor, rec: DegradationRecord, cfg: DegradationConfig) -> np.ndarray:
    lq = apply(tensor, rec, cfg.scale, cfg.blur_backend)
    return (lq[0].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
