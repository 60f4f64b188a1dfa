"""A run's checkpoints (trained weights and optimizer state, the last ``keep`` kept) and its CSV logs
(appended row by row; trimmed to a checkpoint's step on resume, atomically)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import torch

from manifests.storage import atomic_file

from .logs import get_logger

log = get_logger(__name__)


# ---------------------------------------------------------------- checkpoints
def list_checkpoints(run: Path) -> list[Path]:
    return sorted(p for p in (run / "checkpoints").glob("step-*") if (p / "state.json").is_file())


def save_checkpoint(run: Path, step: int, model, optimizers: dict, keep: int) -> Path:
    final = run / "checkpoints" / f"step-{step:07d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_weights(tmp)
    torch.save({k: o.state_dict() for k, o in optimizers.items()}, tmp / "optimizers.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "torch_rng": torch.get_rng_state().tolist()}))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(run)[:-keep]:
        shutil.rmtree(old)
    return final


def trim_csv(path: Path, step: int) -> None:
    """Drop log rows after ``step`` (written after the checkpoint a resumed run starts from)."""
    if not path.is_file():
        return
    with open(path) as f:
        rows = list(csv.reader(f))
    keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
    with atomic_file(path, "w") as f:
        csv.writer(f).writerows(keep)


def append_row(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)
