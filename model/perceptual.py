"""LPIPS (the ``lpips`` package: its learned linear layers ship with it) with the backbone's ImageNet weights from
a local file, since nothing is downloaded. Without that file the backbone is random: say so, and use it only for
tests and smoke runs. Any module mapping two (B, 3, H, W) images in [-1, 1] to per-image distances can be
injected instead (``train(..., perceptual=...)``)."""

from __future__ import annotations

from pathlib import Path

import torch

NO_BACKBONE = (
    "NOTE: no LPIPS backbone weights (train.lpips_backbone): the perceptual loss uses a random {net} "
    "backbone; give the torchvision ImageNet state dict (e.g. vgg16-397923af.pth) for real training."
)


def load_backbone(metric, path) -> None:
    """Copy a torchvision VGG16/AlexNet state dict (``features.N.*``) into an lpips.LPIPS network's slices."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: LPIPS backbone weights not found (nothing is downloaded)")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    slices = {}
    for name, module in metric.net.named_children():
        if name.startswith("slice"):
            for idx in module._modules:
                slices[idx] = name
    loaded = 0
    target = metric.net.state_dict()
    for key, value in sd.items():
        parts = key.split(".")
        if parts[0] != "features" or parts[1] not in slices:
            continue
        tkey = f"{slices[parts[1]]}.{parts[1]}.{parts[2]}"
        if tkey not in target or target[tkey].shape != value.shape:
            raise ValueError(f"{path}: {key} {tuple(value.shape)} does not fit the LPIPS {type(metric.net).__name__}")
        target[tkey] = value
        loaded += 1
    if loaded == 0:
        raise ValueError(f"{path}: no 'features.N' weights of a torchvision backbone found")
    metric.net.load_state_dict(target)


def make_lpips(net: str = "vgg", backbone=None, verbose: bool = True) -> torch.nn.Module:
    import warnings

    import lpips

    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=False` for a random net
        warnings.simplefilter("ignore", UserWarning)
        metric = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    if backbone is not None:
        load_backbone(metric, backbone)
    elif verbose:
        print(NO_BACKBONE.format(net=net))
    metric.requires_grad_(False).eval()
    return metric
