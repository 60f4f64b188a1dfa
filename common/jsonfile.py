"""Strict JSON out of the project: no ``Infinity``/``NaN`` tokens, which ``json.dumps`` writes by default but strict
parsers (JavaScript's ``JSON.parse``, Go, Rust's serde_json) refuse. NaN (a value not drawn, e.g. the beta of a
Gaussian kernel) is written as ``null``, so a column stays numeric for readers that infer types (Arrow, Hugging Face
``datasets``); an infinite float as the string ``"inf"`` or ``"-inf"``, which ``float()`` and the config loader
read back."""

from __future__ import annotations

import json
import math

import numpy as np


def finite(obj):
    """``obj`` with NaN as None, ±inf as "inf"/"-inf", numpy scalars and arrays as Python values."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def dumps(obj, *, indent: int | None = 2, sort_keys: bool = True) -> str:
    """Strict JSON text of ``obj`` (see the module docstring)."""
    return json.dumps(finite(obj), indent=indent, sort_keys=sort_keys, allow_nan=False)
