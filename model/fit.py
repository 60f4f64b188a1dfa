"""The one plain fitting loop (no phases, no data parallelism) of the tiny prior's VAE and U-Net and of the depth
teacher: Adam on a loss of one batch at a time, with its progress logged five times."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch

from .logs import get_logger

log = get_logger(__name__)


def fit(
    parameters: Iterable[torch.nn.Parameter],
    loss_of: Callable[[dict], torch.Tensor],
    batches: Iterator,
    steps: int,
    lr: float,
    what: str,
) -> float:
    """``steps`` Adam steps at ``lr`` on ``loss_of(next(batches))``; logs "what step k/steps  L2 x" at each fifth.
    Returns the last loss."""
    opt = torch.optim.Adam(list(parameters), lr=lr)
    value = float("nan")
    for step in range(steps):
        loss = loss_of(next(batches))
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = loss.item()
        if (step + 1) % max(1, steps // 5) == 0:
            log.info(f"{what} step {step + 1}/{steps}  loss {value:.4f}")
    return value
