"""Shared fixtures: tiny generated scenes and the path-traced references."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


from common.metrics import psnr  # noqa: E402,F401 - the tests' PSNR is the project's one


def textured(h: int, w: int, seed: int) -> np.ndarray:
    """H×W×3 float32 in [0, 1]: smooth colour gradients plus sharp random blobs (edges at many scales)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.4 * np.sin(6 * xs + c + 3 * ys * c) for c in range(3)], axis=-1)
    for _ in range(12):
        cy, cx, r = rng.random() * h, rng.random() * w, 2 + rng.random() * h / 6
        mask = (np.mgrid[0:h, 0:w][0] - cy) ** 2 + (np.mgrid[0:h, 0:w][1] - cx) ** 2 < r * r
        img[mask] = rng.random(3)
    return img.astype(np.float32)


def disk_alpha(h: int, w: int, cy: float, cx: float, r: float, soft: float = 1.5) -> np.ndarray:
    """H×W float32 alpha of a disk with a soft (linear ramp) edge."""
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    dist = np.hypot(ys - cy, xs - cx)
    return np.clip((r - dist) / soft + 0.5, 0.0, 1.0).astype(np.float32)


@pytest.fixture(scope="session")
def oracle_scenes():
    """name -> (layers, K, focus_disparity, reference linear H×W×3, index entry)."""
    from renderer import Layer

    index = {e["name"]: e for e in json.loads((DATA / "oracle" / "index.json").read_text())}
    scenes = {}
    for name, entry in index.items():
        z = np.load(DATA / "oracle" / f"{name}.npz")
        layers = [
            Layer(
                z["rgb"][i] / np.float32(255), z["alpha"][i] / np.float32(255), z["disparity"][i], name=f"{name}[{i}]"
            )
            for i in range(z["rgb"].shape[0])
        ]
        ref = np.load(DATA / "oracle" / f"{name}.ref.npy")
        scenes[name] = (layers, float(z["K"]), float(z["focus_disparity"]), ref, entry)
    return scenes


@contextmanager
def moto_s3(bucket: str):
    """A local S3 endpoint (moto's server) holding one empty bucket; yields (URI of a prefix in it, its pyarrow
    filesystem). Stopped on exit."""
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        query = f"endpoint_override=http://{host}:{port}&scheme=http&region=us-east-1"
        fs, _ = pafs.FileSystem.from_uri(f"s3://testing:testing@{bucket}?{query}&allow_bucket_creation=true")
        fs.create_dir(bucket)
        yield (lambda prefix: f"s3://testing:testing@{bucket}/{prefix}?{query}"), fs
    finally:
        server.stop()


# ---- datagen builds
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
    from PIL import Image
    from skimage import data

    from datagen.assets import scan

    root = tmp_path_factory.mktemp("assets")
    (root / "fg").mkdir()
    (root / "bg").mkdir()
    ys, xs = np.mgrid[0:120, 0:100]
    matte = (np.clip((40 - np.hypot(ys - 60, xs - 50)) / 3, 0, 1) * 255).astype(np.uint8)
    for name in ["astronaut", "chelsea"]:
        img = getattr(data, name)()[:120, :100]
        Image.fromarray(np.dstack([img, matte])).save(root / "fg" / f"{name}.png")
    Image.fromarray(data.coffee()).save(root / "bg" / "coffee.png")
    rows = scan([("generic", root / "fg"), ("backgrounds", root / "bg")], min_size=64, val_fraction=0.0, progress=False)
    return rows
