"""common.images disparity reading and common.cli's one-line endings."""

import errno

import numpy as np
import pytest
from PIL import Image

from common.cli import INTERRUPTED, run
from common.images import read_disparity


def test_a_colour_disparity_png_is_refused_unless_its_channels_are_equal(tmp_path):
    """A colour-mapped depth picture was read by its red channel."""
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (32, 1))
    jet = np.stack([ramp, 255 - ramp, np.full_like(ramp, 90)], axis=-1)
    Image.fromarray(jet).save(tmp_path / "jet_disp.png")
    with pytest.raises(ValueError, match="jet_disp.png: a colour image \\(RGB\\), not a disparity map"):
        read_disparity(tmp_path / "jet_disp.png")
    Image.fromarray(np.stack([ramp] * 3, axis=-1)).save(tmp_path / "grey_as_rgb_disp.png")
    assert np.allclose(read_disparity(tmp_path / "grey_as_rgb_disp.png"), ramp / 255.0)


def test_a_colour_disparity_map_is_a_skipped_row_with_the_reason(tmp_path):
    from datagen.assets import scan

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(tmp_path / "hill.png")
    jet = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(jet).save(tmp_path / "hill_disp.png")
    (row,) = scan([("backgrounds", tmp_path)], min_size=64, progress=False)
    assert not row.ok and "hill_disp.png: a colour image" in row.reason


def test_ctrl_c_and_a_full_disk_end_in_one_line(capsys):
    def interrupted(_):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as e:
        run(interrupted, None)
    assert e.value.code == 130 and capsys.readouterr().err.strip() == INTERRUPTED

    def full(_):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/ds/train-000003.tar")

    with pytest.raises(
        SystemExit,
        match=r"^error: /data/ds/train-000003.tar: No space left on device: the disk is "
        r"full; free space and run the same command again \(it resumes\)$",
    ):
        run(full, None)

    def bug(_):
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        run(bug, None)
