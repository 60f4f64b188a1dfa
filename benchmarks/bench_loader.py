"""Training-loader throughput: samples per second of ONE loader worker (one core) at 512², for the three streams
model.train reads, so a user can size ``train.num_workers`` against a GPU step.

    python benchmarks/bench_loader.py [--samples 24] [--size 512] [--gpu-step 1.0] [--batch 4]

Streams: "shards" (a bokehgen sample decoded as stored: three PNGs, the disparity, the defocus map), "redegrade"
(the same plus a fresh Real-ESRGAN degradation of the stored all-in-focus image, ``train.redegrade``), "photos"
(a natural photo read, cropped, flipped and degraded online, ``train.isr_data``). The shards are 8 demo scenes built
here by the build's own shard function; the photos are scikit-image's (smaller ones upscaled to the crop). Prints
samples/s per worker and the workers per GPU that keep up with ``--gpu-step`` seconds per step of ``--batch``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=24, help="samples timed per stream (after 2 warm-up)")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--gpu-step", type=float, default=1.0, help="seconds per training step on the GPU")
    p.add_argument("--batch", type=int, default=4, help="per-GPU batch size")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # one loader worker = one core

    from PIL import Image
    from skimage import data as skdata

    from datagen.build import BuildConfig, build_shard, scan_assets
    from model.data import ShardStream, StreamConfig
    from model.photos import PhotoStream, parse_sources

    tmp = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    print(f"building 8 scenes at {args.size}² in {tmp} ...", file=sys.stderr)
    cfg = BuildConfig.load(None, [f"size={args.size}", f"min_asset_size={min(256, args.size)}", "val_fraction=0"])
    build_shard(cfg, scan_assets(cfg, progress=False), "train", 0, list(range(8)), str(tmp))
    photos = tmp / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket", "motorcycle"):
        img = skdata.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skdata, name)()
        Image.fromarray(img).save(photos / f"{name}.png")
    shard = str(tmp / "train-000000.tar")
    streams = {
        "shards": ShardStream([shard], StreamConfig(1, 8, 0, hflip=True), rank=0, world=1),
        "redegrade": ShardStream(
            [shard], StreamConfig(1, 8, 0, hflip=True, redegrade="realesrgan_x4plus"), rank=0, world=1
        ),
        "photos": PhotoStream(parse_sources([{"path": str(photos)}]), args.size, 1, seed=0, rank=0, world=1),
    }
    rates = {}
    for name, stream in streams.items():
        it = iter(stream)
        for _ in range(2):
            next(it)
        t0 = time.perf_counter()
        for _ in range(args.samples):
            next(it)
        rates[name] = args.samples / (time.perf_counter() - t0)
    need = args.batch / args.gpu_step
    print(f"loader throughput per worker (one core, {args.size}², {args.samples} samples each):")
    for name, rate in rates.items():
        print(
            f"  {name:9s} {rate:6.2f} samples/s  ({1000 / rate:6.1f} ms/sample, "
            f"{rate / rates['shards']:.2f}× the stored shards)  -> {math.ceil(need / rate)} workers per GPU "
            f"for batch {args.batch} every {args.gpu_step:g} s"
        )
    return rates


if __name__ == "__main__":
    main()
