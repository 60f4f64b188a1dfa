"""Samples per second per core of the full recipe (compose, render, degrade, encode, write) at 512×512:
a single-process loop vs datagen/build.py on Ray with 1 and 2 workers, side by side in one run, and the time split
by stage in the single-process loop.

    python benchmarks/datagen.py [--samples 8] [--size 512]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numba  # noqa: E402


def single_process(n: int, size: int, out: Path) -> tuple[float, dict]:
    from datagen.assets import scan, usable
    from datagen.demo_assets import make_demo_assets
    from datagen.images import to_uint8
    from datagen.scenes import SceneConfig, build_layers, draw_scene, resolve_focus
    from datagen.shards import encode_sample, write_shard
    from degradations import degrade
    from renderer import composite, render_bokeh, visible_disparity

    root = make_demo_assets()
    rows = scan([("generic", root / "fg"), ("backgrounds", root / "bg")], min_size=256, val_fraction=0.0,
                progress=False)
    fgs, bgs, by_id = usable(rows, "foreground", "train"), usable(rows, "background", "train"), {a.id: a for a in rows}
    stages = {"compose": 0.0, "render": 0.0, "degrade": 0.0, "encode": 0.0, "write": 0.0}
    written = []
    t_all = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        spec = draw_scene(0, i, fgs, bgs, SceneConfig(size=size))
        layers = build_layers(spec, by_id)
        target, xy, d_f = resolve_focus(spec, layers)
        stages["compose"] += time.perf_counter() - t
        t = time.perf_counter()
        aif = to_uint8(composite(layers))
        bokeh = render_bokeh(layers, spec.K, d_f, seed=spec.seed)
        disp = visible_disparity(layers)
        stages["render"] += time.perf_counter() - t
        t = time.perf_counter()
        lq, rec = degrade(aif, spec.degradation_seed)
        stages["degrade"] += time.perf_counter() - t
        t = time.perf_counter()
        members = encode_sample({"aif": aif, "bokeh": to_uint8(bokeh), "lq": lq, "disp": disp,
                                 "json": {"scene": spec.to_json(), "degradation": rec.columns()}})
        stages["encode"] += time.perf_counter() - t
        written.append((f"000000_{i:06d}", members))
    t = time.perf_counter()
    write_shard(out / "train-000000.tar", written)
    stages["write"] += time.perf_counter() - t
    return time.perf_counter() - t_all, stages


def ray_build(n: int, size: int, workers: int, out: Path) -> float:
    import ray

    from datagen.build import main, parse_args

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        t = time.perf_counter()
        main(parse_args(["--out", str(out), "--num-samples", str(n), "--samples-per-shard", str(max(1, n // 4)),
                         "--size", str(size), "--set", "val_samples=0"]))
        return time.perf_counter() - t
    finally:
        ray.shutdown()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=8, help="samples per configuration")
    p.add_argument("--size", type=int, default=512, help="output size")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bokehgen-bench-"))
    try:
        single_process(1, 128, tmp)  # compile / warm caches
        cores = numba.get_num_threads()
        t_single, stages = single_process(args.samples, args.size, tmp)
        rows = [("single process", cores, t_single)]
        for workers in (1, 2):
            rows.append((f"Ray, {workers} worker(s)", workers, ray_build(args.samples, args.size, workers,
                                                                        tmp / f"ray{workers}")))
        print(f"{args.samples} samples at {args.size}×{args.size} on {os.cpu_count()} CPUs")
        print(f"{'method':<22} {'cores':>5} {'s total':>8} {'samples/s':>10} {'per core':>9}")
        for name, c, t in rows:
            print(f"{name:<22} {c:>5} {t:>8.1f} {args.samples / t:>10.3f} {args.samples / t / c:>9.3f}")
        base = rows[0][2] * cores  # core-seconds of the single-process loop
        print(f"core-seconds relative to the single-process loop: Ray 1 worker {rows[1][2] * 1 / base:.2f}×, "
              f"Ray 2 workers {rows[2][2] * 2 / base:.2f}× (Ray timings include asset scan, manifests, preview, report)")
        total = sum(stages.values())
        print("single-process time by stage: " + ", ".join(f"{k} {v / total:.0%} ({v / args.samples:.2f} s/sample)"
                                                         for k, v in stages.items()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
