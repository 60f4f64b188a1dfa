"""Image-quality metrics for ``model.evaluate``: PSNR and SSIM computed here, the field's learned and statistical
metrics through pyiqa, strictly offline.

PSNR / SSIM (the Real-ISR papers' convention, as BasicSR's ``calculate_psnr/ssim(test_y_channel=True)``): 8-bit
images, the luma Y of ITU-R BT.601 YCbCr (``color="y"``, default) or the three RGB channels (``color="rgb"``),
``crop`` pixels removed at every border (default 0); SSIM with an 11×11 Gaussian window (σ = 1.5), K1 = 0.01,
K2 = 0.03, data range 255 (Wang et al. 2004), averaged over the channels. Computed with scikit-image.

pyiqa metrics (``lpips``, ``dists``, ``musiq``, ``maniqa``, ``clipiqa``, ``niqe``, ``fid``) never download: their
weights come from ``weights``, a torch hub folder such as ``~/.cache/torch/hub`` on a machine where pyiqa has
created these metrics once (it holds ``checkpoints/`` for torchvision's backbones, ``pyiqa/`` for pyiqa's own
files and ``clip/`` for CLIP). A file that is not there makes that metric *missing*, with the file named; the
others still run. ``weights="random"`` builds every network with random weights (a plumbing check: the numbers
mean nothing, and every report says so).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.metrics import psnr_from_mse

PYIQA_METRICS = ("lpips", "lpips_vgg", "dists", "musiq", "maniqa", "clipiqa", "niqe", "fid")
PYIQA_NAMES = {"lpips_vgg": "lpips-vgg"}  # ours -> pyiqa's, where they differ (lpips: pyiqa's alex backbone)
HERE_METRICS = ("psnr", "ssim", "ssim_u7")
ALL_METRICS = HERE_METRICS + PYIQA_METRICS
FULL_REFERENCE = {"psnr", "ssim", "ssim_u7", "lpips", "lpips_vgg", "dists"}
LOWER_BETTER = {"lpips", "lpips_vgg", "dists", "niqe", "fid"}
LABELS = {
    "psnr": "PSNR",
    "ssim": "SSIM",
    "ssim_u7": "SSIM-u7",
    "lpips": "LPIPS",
    "lpips_vgg": "LPIPS-vgg",
    "dists": "DISTS",
    "musiq": "MUSIQ",
    "maniqa": "MANIQA",
    "clipiqa": "CLIP-IQA",
    "niqe": "NIQE",
    "fid": "FID",
}


class MissingWeights(RuntimeError):
    """A metric would have to download a file; ``path`` is where it must be put instead."""

    def __init__(self, path: str, url: str = ""):
        super().__init__(path)
        self.path, self.url = path, url


# ------------------------------------------------------------------------------------------------ PSNR / SSIM
def luma(rgb_u8: np.ndarray) -> np.ndarray:
    """Y of BT.601 YCbCr in [16, 235] (float64), as BasicSR's ``rgb2ycbcr(y_only=True)``."""
    rgb = rgb_u8.astype(np.float64) / 255.0
    return 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def _planes(img_u8: np.ndarray, color: str, crop: int) -> np.ndarray:
    if img_u8.dtype != np.uint8 or img_u8.ndim != 3 or img_u8.shape[2] != 3:
        raise ValueError(f"H×W×3 uint8 expected, got {img_u8.dtype} {img_u8.shape}")
    if crop:
        img_u8 = img_u8[crop:-crop, crop:-crop]
    if color == "y":
        return luma(img_u8)[..., None]
    if color == "rgb":
        return img_u8.astype(np.float64)
    raise ValueError(f"color: 'y' or 'rgb', got {color!r}")


def psnr_ssim_maps(pred_u8: np.ndarray, ref_u8: np.ndarray, color: str = "y", crop: int = 0):
    """(squared-error map, SSIM map), both H×W (channel means) after the crop: the whole-image PSNR is
    10·log10(255² / mean(se)), SSIM the mean of the map (NaN within 5 px of the border, where the 11×11 window
    does not fit, as in skimage and BasicSR); restricted to a pixel set they give the stratified ones."""
    from skimage.metrics import structural_similarity

    if pred_u8.shape != ref_u8.shape:
        raise ValueError(
            f"prediction is {pred_u8.shape[1]}×{pred_u8.shape[0]}, target {ref_u8.shape[1]}×{ref_u8.shape[0]}"
        )
    a, b = _planes(pred_u8, color, crop), _planes(ref_u8, color, crop)
    se = ((a - b) ** 2).mean(axis=2)
    _, smap = structural_similarity(
        b, a, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True
    )
    smap = smap.mean(axis=2)
    pad = 5  # the window's half-width: SSIM is defined where the whole window is inside (skimage's and BasicSR's
    smap[:pad], smap[-pad:], smap[:, :pad], smap[:, -pad:] = np.nan, np.nan, np.nan, np.nan  # mean; NaN = outside)
    return se, smap


def ssim_uniform7(pred_u8: np.ndarray, ref_u8: np.ndarray, color: str = "y", crop: int = 0) -> float:
    """SSIM the other way the field computes it: scikit-image's defaults (a uniform 7×7 window, sample covariance),
    data range 255, averaged over the channels (``color``, ``crop`` as :func:`psnr_ssim_maps`)."""
    from skimage.metrics import structural_similarity

    a, b = _planes(pred_u8, color, crop), _planes(ref_u8, color, crop)
    return float(structural_similarity(b, a, channel_axis=2, data_range=255))


def psnr_from_se(se: np.ndarray) -> float:
    return psnr_from_mse(float(np.mean(se)) if se.size else float("nan"))


def psnr_ssim(pred_u8: np.ndarray, ref_u8: np.ndarray, color: str = "y", crop: int = 0) -> tuple[float, float]:
    se, smap = psnr_ssim_maps(pred_u8, ref_u8, color, crop)
    return psnr_from_se(se), float(np.nanmean(smap))


# ------------------------------------------------------------------------------------------------ pyiqa, offline
@contextlib.contextmanager
def _patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _arch_modules():
    import importlib
    import sys

    import pyiqa  # noqa: F401  (registers its archs)

    for name in (
        "lpips_arch",
        "dists_arch",
        "musiq_arch",
        "maniqa_arch",
        "clipiqa_arch",
        "niqe_arch",
        "fid_arch",
        "inception",
        "clip_model",
    ):
        importlib.import_module(f"pyiqa.archs.{name}")
    return [m for n, m in list(sys.modules.items()) if n.startswith("pyiqa.") and m is not None]


def _timm_without_download():
    """MANIQA asks timm for an ImageNet ViT and then loads its own checkpoint over every weight of it: the
    ImageNet download is never needed."""
    import timm

    create = timm.create_model

    def create_model(name, pretrained=False, **kw):
        return create(name, pretrained=False, **kw)

    return _patched(timm, "create_model", create_model)


@contextlib.contextmanager
def offline(folder: Path):
    """pyiqa, torchvision and CLIP read their files from ``folder`` (a torch hub folder); any download raises
    :class:`MissingWeights` naming the file that is needed."""
    import torch.hub
    from pyiqa.archs import clip_model
    from pyiqa.utils import download_util

    folder = Path(folder).resolve()

    def refuse(url, dst, *a, **k):
        raise MissingWeights(str(dst), url)

    original_clip_download = clip_model._download

    def clip_download(url, root):
        target = os.path.join(root, os.path.basename(url))
        if os.path.isfile(target):
            return original_clip_download(url, root)  # verifies the checksum; never downloads an existing file
        raise MissingWeights(target, url)

    old_dir = torch.hub.get_dir()
    torch.hub.set_dir(str(folder))
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_patched(download_util, "DEFAULT_CACHE_DIR", str(folder / "pyiqa")))
            stack.enter_context(_patched(download_util, "download_url_to_file", refuse))
            stack.enter_context(_patched(torch.hub, "download_url_to_file", refuse))
            stack.enter_context(_patched(clip_model, "_download", clip_download))
            stack.enter_context(_timm_without_download())
            yield
    finally:
        torch.hub.set_dir(old_dir)


def _random_torchvision_state(weights) -> dict:
    import torchvision

    for name in torchvision.models.list_models():
        if torchvision.models.get_model_weights(name) is type(weights):
            return torchvision.models.get_model(name, weights=None).state_dict()
    raise MissingWeights(f"torchvision {weights}")


def _random_clip(name: str, device="cpu", **kwargs):
    """A random CLIP of the architecture pyiqa asks for (ResNet-50 for CLIP-IQA), built by pyiqa's own CLIP code."""
    from pyiqa.archs import clip_model

    configs = {
        "RN50": dict(
            embed_dim=1024,
            image_resolution=224,
            vision_layers=(3, 4, 6, 3),
            vision_width=64,
            vision_patch_size=None,
            context_length=77,
            vocab_size=49408,
            transformer_width=512,
            transformer_heads=8,
            transformer_layers=12,
        )
    }
    if name not in configs:
        raise MissingWeights(f"random weights for CLIP {name} (only {list(configs)} has a random configuration)")
    return clip_model.build_model(clip_model.CLIP(**configs[name]).state_dict()).float().to(device).eval()


def _random_niqe_file(tmp: Path) -> str:
    """NIQE's pristine model: a mean and a covariance of its 36 natural-scene statistics (random here)."""
    from scipy.io import savemat

    path = tmp / "niqe_random.mat"
    if not path.exists():
        rng = np.random.default_rng(0)
        a = rng.normal(size=(36, 36))
        savemat(path, {"mu_prisparam": rng.normal(size=(1, 36)), "cov_prisparam": a @ a.T / 36 + np.eye(36)})
    return str(path)


@contextlib.contextmanager
def random_weights(tmp: Path):
    """Every network pyiqa builds gets random weights (a plumbing check); nothing is downloaded."""
    import torchvision
    from pyiqa.archs import clipiqa_arch
    from pyiqa.utils import download_util

    def no_pretrained(net, *a, **k):
        return None

    def url_file(url, *a, **k):
        if url.endswith(".mat"):
            return _random_niqe_file(tmp)
        raise MissingWeights(f"random weights for {os.path.basename(url)}", url)

    with contextlib.ExitStack() as stack:
        for module in _arch_modules():
            if hasattr(module, "load_pretrained_network"):
                stack.enter_context(_patched(module, "load_pretrained_network", no_pretrained))
            if hasattr(module, "load_file_from_url") and module is not download_util:
                stack.enter_context(_patched(module, "load_file_from_url", url_file))
        stack.enter_context(
            _patched(
                torchvision.models._api.WeightsEnum,
                "get_state_dict",
                lambda self, *a, **k: _random_torchvision_state(self),
            )
        )
        stack.enter_context(_patched(clipiqa_arch, "load", _random_clip))
        stack.enter_context(
            _patched(
                download_util,
                "download_url_to_file",
                lambda url, dst, *a, **k: (_ for _ in ()).throw(MissingWeights(dst, url)),
            )
        )
        stack.enter_context(_timm_without_download())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            yield


@dataclass
class PyiqaMetrics:
    """The pyiqa metrics that could be built from ``weights`` (a folder, ``"random"``, or None: none built);
    ``missing`` maps every other requested metric to the reason (the file it needs)."""

    names: tuple
    weights: str | None
    device: str = "cpu"
    metrics: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)

    def __post_init__(self):
        unknown = [n for n in self.names if n not in PYIQA_METRICS]
        if unknown:
            raise ValueError(f"--metrics: unknown {unknown}; pyiqa metrics here are {list(PYIQA_METRICS)}")
        if not self.names:
            return
        if self.weights is None:
            self.missing = {n: "no --metric-weights folder given (nothing is downloaded)" for n in self.names}
            return
        import pyiqa

        self._tmp = tempfile.TemporaryDirectory(prefix="bokehgen-iqa-")
        if self.weights == "random":
            ctx = lambda: random_weights(Path(self._tmp.name))  # noqa: E731
        else:
            if not Path(self.weights).is_dir():
                raise ValueError(f"--metric-weights {self.weights}: no such folder")
            ctx = lambda: offline(Path(self.weights))  # noqa: E731
        self._ctx = ctx
        for name in self.names:
            try:
                # random weights: MANIQA scores 1 random crop instead of its 20 (its numbers mean nothing anyway)
                options = {"test_sample": 1} if self.random and name == "maniqa" else {}
                with ctx(), contextlib.redirect_stdout(io.StringIO()):  # pyiqa prints "Downloading"/"Loading"
                    self.metrics[name] = pyiqa.create_metric(
                        PYIQA_NAMES.get(name, name), device=torch.device(self.device), **options
                    )
            except MissingWeights as e:
                self.missing[name] = f"needs {e.path}" + (f" (from {e.url})" if e.url else "")
            except Exception as e:  # a broken file: that metric is missing, the others run
                self.missing[name] = f"could not be built: {type(e).__name__}: {e}"

    @property
    def random(self) -> bool:
        return self.weights == "random"

    def score(self, pred_u8: np.ndarray, ref_u8: np.ndarray) -> dict:
        """Per-image scores of every built metric except FID (a set metric: :meth:`fid`)."""
        out = {}
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float().div(255)  # noqa: E731
        x, y = t(pred_u8).to(self.device), t(ref_u8).to(self.device)
        for name, metric in self.metrics.items():
            if name == "fid":
                continue
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)  # MANIQA and MUSIQ crop at random: the same crops for every method
                value = metric(x, y) if name in FULL_REFERENCE else metric(x)
            out[name] = float(value.flatten()[0])
        return out

    def fid(self, pred_dir: Path, ref_dir: Path) -> float | None:
        metric = self.metrics.get("fid")
        if metric is None:
            return None
        with torch.no_grad(), self._ctx():
            return float(metric(str(pred_dir), str(ref_dir), verbose=False))

    def describe(self) -> str:
        if not self.names:
            return "no pyiqa metric requested"
        built = ", ".join(LABELS[n] for n in self.metrics) or "none"
        text = f"pyiqa {_pyiqa_version()}: {built}"
        if self.random:
            text += " — RANDOM WEIGHTS (a plumbing check: these numbers mean nothing)"
        elif self.weights:
            text += f" (weights from {self.weights})"
        return text


def _pyiqa_version() -> str:
    try:
        from importlib.metadata import version

        return version("pyiqa")
    except Exception:
        return "?"
