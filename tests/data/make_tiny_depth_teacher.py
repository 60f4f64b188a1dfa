"""Fit the tiny random Depth Anything V2 to the synthetic ground truth once and keep it, for the distillation test.

model.distill first fits the tiny configuration's random teacher (``distill.teacher_fit_steps``: 1200 steps, ~100 s
on 2 cores) so that it stands in for pretrained weights. tests/test_model/test_training.py starts its distillation
from this fitted teacher instead (``model.depth`` = this folder), so the suite does not pay the fit. This script is
how the folder was made, with model.distill's own functions, on the shards the test builds (256 samples at 96²,
shards 0-6):

    python tests/data/make_tiny_depth_teacher.py [--shards DIR]   # DIR: an existing build of those shards

Writes tests/data/tiny_depth_teacher/ (config.json, model.safetensors).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", help="folder of the test's build (built here when left out)")
    args = p.parse_args()

    from model.data import ShardStream, StreamConfig, expand_urls, loader
    from model.depthnet import DepthEstimator, load_depth_model
    from model.distill import fit_teacher, load_configs

    folder = args.shards
    if folder is None:
        from datagen.build import main as build, parse_args

        folder = tempfile.mkdtemp()
        build(parse_args(["--out", folder, "--size", "96", "--num-samples", "256", "--samples-per-shard", "32",
                          "--workers", "2", "--set", "min_asset_size=96", "--set", "val_samples=0"]))
    mcfg, dcfg = load_configs("tiny")
    torch.manual_seed(dcfg.seed)
    scfg = StreamConfig(dcfg.batch_size, 64, dcfg.seed, mcfg.k_max, mcfg.focus_radius)
    teacher = DepthEstimator(load_depth_model(mcfg.depth_size, None, mcfg.seed), mcfg.depth_input)
    urls = expand_urls(str(Path(folder) / "train-{000000..000006}.tar"))
    fit_teacher(teacher, iter(loader(ShardStream(urls, scfg, rank=0, world=1))), dcfg.teacher_fit_steps,
                dcfg.teacher_fit_lr)
    teacher.model.save_pretrained(HERE / "tiny_depth_teacher")
    print(f"wrote {HERE / 'tiny_depth_teacher'} ({dcfg.teacher_fit_steps} fit steps)")


if __name__ == "__main__":
    main()
