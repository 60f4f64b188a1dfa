"""End to end: the Quickstart's main command renders real photo + disparity into a folder."""

import json

import numpy as np
from PIL import Image

from renderer.demo import SETTINGS, main, parse_args


def test_demo_cli_writes_renders_and_contact_sheet(tmp_path):
    out = main(parse_args(["--out", str(tmp_path / "demo"), "--scale", "0.2"]))
    files = {p.name for p in out.iterdir()}
    assert {f"{name}.png" for name, *_ in SETTINGS} <= files
    assert {"all_in_focus.png", "disparity.png", "contact_sheet.png", "report.json"} <= files
    aif = np.asarray(Image.open(out / "all_in_focus.png"), np.float64)
    near = np.asarray(Image.open(out / "near_k16_circle.png"), np.float64)
    far = np.asarray(Image.open(out / "far_k16_circle.png"), np.float64)
    assert aif.shape == near.shape == (100, 148, 3)
    # Focus matters: each render differs from the all-in-focus photo, and the two focus settings differ.
    assert np.abs(near - aif).mean() > 1.0 and np.abs(far - near).mean() > 1.0
    report = json.loads((out / "report.json").read_text())
    assert len(report["renders"]) == len(SETTINGS)
