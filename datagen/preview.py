"""Contact sheet of samples: one row each — LQ (upsampled), all-in-focus, disparity, defocus map, bokeh."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image

from common.limits import MAX_K


def contact_sheet(samples: list[dict], path, max_k: float = MAX_K) -> Path:
    """Write :func:`contact_sheet_png` to ``path``; returns the path."""
    path = Path(path)
    path.write_bytes(contact_sheet_png(samples, max_k))
    return path


CELL_PX = 512  # the sheet's cells are at most this many px on their long side (a megapixel build stays viewable)


def contact_sheet_png(samples: list[dict], max_k: float = MAX_K) -> bytes:
    """A PNG with one row per sample (dicts as make_sample returns them): LQ (upsampled), all-in-focus, disparity,
    defocus map, bokeh; each cell the frame's aspect, larger frames shown at CELL_PX on their long side.

    Disparity is colour-mapped with turbo over [0, 1]; the defocus map r = K·|d − d_f| with magma over [0, max_k]
    px, so rows are comparable.
    """
    turbo, magma = matplotlib.colormaps["turbo"], matplotlib.colormaps["magma"]
    rows = []
    for s in samples:
        h, w = s["aif"].shape[:2]
        lq = cv2.resize(s["lq"], (w, h), interpolation=cv2.INTER_CUBIC)
        disp = (turbo(np.clip(s["disp"], 0, 1))[..., :3] * 255).astype(np.uint8)
        focus = s["json"]["focus"]["disparity"]
        K = s["json"]["render"]["K"]
        r = np.clip(K * np.abs(s["disp"] - focus) / max_k, 0, 1)
        defocus = (magma(r)[..., :3] * 255).astype(np.uint8)
        cells = [lq, s["aif"], disp, defocus, s["bokeh"]]
        if max(h, w) > CELL_PX:
            size = (round(w * CELL_PX / max(h, w)), round(h * CELL_PX / max(h, w)))
            cells = [cv2.resize(c, size, interpolation=cv2.INTER_AREA) for c in cells]
        rows.append(np.concatenate(cells, axis=1))
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(rows, axis=0)).save(buf, format="PNG", compress_level=1)  # big; fast to write
    return buf.getvalue()
