"""What the tiny recipe learns: the full tiny configuration (model/configs/tiny.yaml: the prior fit, then 300
alternating steps) on a small default build, and its held-out bokeh PSNR against the identity (the LQ upsampled)
at every validation.

    python benchmarks/bench_training.py [--out benchmarks/out/training] [--samples 256] [--size 96]

The build is 256 scenes at 96² in 8 shards; the last shard is held out. Prints one line per validation and the
run folder (curves.png, val_examples_*.png). About 3 minutes on 2 cores. The test suite trains a 9-step run that
checks the machinery; this script measures the quality claim the README quotes.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="benchmarks/out/training", help="folder for the build and the run")
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--size", type=int, default=96)
    args = p.parse_args(argv)

    import ray

    from datagen.build import main as build
    from datagen.build import parse_args as build_args
    from model.train import load_configs, train

    out = Path(args.out)
    ds, run = out / "ds", out / "run"
    shards = args.samples // 32
    if not (ds / "dataset.json").is_file():
        build(
            build_args(
                [
                    "--out",
                    str(ds),
                    "--size",
                    str(args.size),
                    "--num-samples",
                    str(args.samples),
                    "--samples-per-shard",
                    "32",
                    "--set",
                    f"min_asset_size={args.size}",
                    "--set",
                    "val_samples=0",
                ]
            )
        )
        ray.shutdown()
    mcfg, tcfg = load_configs("tiny")
    t0 = time.perf_counter()
    train(
        mcfg,
        tcfg,
        str(ds / f"train-{{000000..{shards - 2:06d}}}.tar"),
        run,
        val=str(ds / f"train-{shards - 1:06d}.tar"),
    )
    with open(run / "val.csv") as f:
        rows = list(csv.DictReader(f))
    print(
        f"\ntiny recipe, {tcfg.total_steps} steps on {args.samples - 32} scenes at {args.size}² "
        f"({time.perf_counter() - t0:.0f} s); held-out bokeh PSNR (dB):"
    )
    for r in rows:
        gain = float(r["psnr_rgb_bokeh"]) - float(r["psnr_rgb_bokeh_identity"])
        print(
            f"  step {int(r['step']):>4}: model {float(r['psnr_rgb_bokeh']):.2f}, identity "
            f"{float(r['psnr_rgb_bokeh_identity']):.2f} ({gain:+.2f}); SSIM-Y {float(r['ssim_y_bokeh']):.4f}"
        )
    print(f"run: {run} (curves.png, val_examples_*.png)")


if __name__ == "__main__":
    main()
