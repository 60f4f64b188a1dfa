"""Example grids written during training and distillation (images a person looks at)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def _img(t: torch.Tensor) -> np.ndarray:
    t = t.detach().float()
    if t.shape[0] == 1:
        t = t.repeat(3, 1, 1) * 2 - 1
    return ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def example_grid(rows: list[list[torch.Tensor]], path: Path) -> None:

    grid = np.concatenate([np.concatenate([_img(t) for t in row], axis=1) for row in rows], axis=0)
    from manifests.storage import save_image

    save_image(path, grid)
