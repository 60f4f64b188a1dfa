"""Fixtures of the datagen tests."""

import numpy as np
import pytest
from PIL import Image

from datagen.assets import scan


@pytest.fixture(scope="module")
def local_ray():
    """A private local Ray instance (2 CPUs) for the builds of one test module."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Two soft-matted foregrounds and one background photograph, scanned."""
    from skimage import data

    root = tmp_path_factory.mktemp("assets")
    (root / "fg").mkdir()
    (root / "bg").mkdir()
    ys, xs = np.mgrid[0:120, 0:100]
    matte = (np.clip((40 - np.hypot(ys - 60, xs - 50)) / 3, 0, 1) * 255).astype(np.uint8)
    for name in ["astronaut", "chelsea"]:
        img = getattr(data, name)()[:120, :100]
        Image.fromarray(np.dstack([img, matte])).save(root / "fg" / f"{name}.png")
    Image.fromarray(data.coffee()).save(root / "bg" / "coffee.png")
    rows = scan([("generic", root / "fg"), ("backgrounds", root / "bg")], min_size=64, val_fraction=0.0,
                progress=False)
    return rows
