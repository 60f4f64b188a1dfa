"""Samples per second per core of the full recipe (compose, render, degrade, encode, write) at any size (512×512 by
default): a single-process loop on one core vs datagen/build.py on Ray with 1 and 2 workers (1 CPU each), side by
side in one run, and the time split by stage in the single-process loop.

    python benchmarks/bench_datagen.py [--samples 16] [--size 512 | --size 1536x1024] [--repeat 2]

The scene's K range grows with the frame (K up to 32 px per 512 px of its long side, as the 512² recipe's K 32,
at most the renderer's 512; --k-max sets it). ``--sizes 512 1536x1024 2048x1364 4096`` instead runs the
single-process recipe at each size in a fresh process, side by side: seconds per sample by stage, the cost in
core-hours per 10k samples, and the peak memory of one sample (the process's peak resident set over what it held
before the sample, and the peak itself), the figures the build's Ray tasks declare (datagen.build.task_memory).

Ray's wall time includes what a build does once (asset scan, starting worker processes, merging manifests, the
preview and report.html); "in tasks" sums the shard tasks' own time from build_log.json, the steady-state cost.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

# One thread for numpy's BLAS in this process too, as Ray sets for its 1-CPU workers (before numpy loads).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numba


def k_top(size) -> float:
    """The benchmark's K range top at ``size``: 32 px per 512 px of the long side, at most the renderer's limit."""
    from datagen.scenes import frame_size
    from renderer.options import max_blur_radius

    long = max(frame_size(size))
    return min(32.0 * long / 512, max_blur_radius(long))


def single_process(n: int, size, out: Path, k_max: float | None = None, k_min: float = 0.0) -> tuple[float, dict]:
    from common.images import to_uint8
    from datagen.assets import usable
    from datagen.build import BuildConfig, scan_assets
    from datagen.scenes import build_layers, draw_scene, resolve_focus
    from datagen.shards import encode_sample, write_shard
    from degradations import degrade
    from manifests import Store
    from renderer import pinhole_view, render_bokeh

    top = k_max or k_top(size)
    cfg = BuildConfig(size=size, k_range=[top if k_min < 0 else k_min, top])  # the Ray builds' assets and splits
    rows = scan_assets(cfg, progress=False)
    fgs, bgs, by_id = usable(rows, "foreground", "train"), usable(rows, "background", "train"), {a.id: a for a in rows}
    stages = {"compose": 0.0, "render": 0.0, "degrade": 0.0, "encode": 0.0, "write": 0.0}
    written, per_sample = [], []
    t_all = time.perf_counter()
    for i in range(n):
        t_sample = t = time.perf_counter()
        spec = draw_scene(0, i, fgs, bgs, cfg.scene, size=cfg.frame)
        layers = build_layers(spec, by_id)
        target, xy, d_f = resolve_focus(spec, layers)
        stages["compose"] += time.perf_counter() - t
        t = time.perf_counter()
        aif, disp = pinhole_view(layers)
        aif = to_uint8(aif)
        bokeh = render_bokeh(layers, spec.K, d_f, seed=spec.seed, **cfg.render)
        stages["render"] += time.perf_counter() - t
        t = time.perf_counter()
        lq, rec = degrade(aif, spec.degradation_seed)
        stages["degrade"] += time.perf_counter() - t
        t = time.perf_counter()
        members = encode_sample(
            {
                "aif": aif,
                "bokeh": to_uint8(bokeh),
                "lq": lq,
                "disp": disp,
                "json": {"scene": spec.to_json(), "degradation": rec.columns()},
            },
            cfg.png_compress_level,
        )
        stages["encode"] += time.perf_counter() - t
        written.append((f"000000_{i:06d}", members))
        per_sample.append(time.perf_counter() - t_sample)
    t = time.perf_counter()
    write_shard(Store(out), "train-000000.tar", written)
    stages["write"] += time.perf_counter() - t
    return time.perf_counter() - t_all, stages, per_sample


def spp(n: int) -> int:
    return max(1, n // 8)


def ray_build(n: int, size, workers: int, out: Path, k_max: float | None = None) -> tuple[float, list[dict]]:
    """(wall seconds of the build, the shard tasks' records from build_log.json)."""
    import json

    import ray

    from datagen.build import main, parse_args

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        t = time.perf_counter()
        main(
            parse_args(
                [
                    "--out",
                    str(out),
                    "--num-samples",
                    str(n),
                    "--samples-per-shard",
                    str(spp(n)),
                    "--size",
                    "x".join(map(str, size)) if isinstance(size, list) else str(size),
                    "--set",
                    "val_samples=0",
                    "--set",
                    f"scene.k_range=[0, {k_max or k_top(size)}]",
                ]
            )
        )
        wall = time.perf_counter() - t
    finally:
        ray.shutdown()
    return wall, json.loads((out / "build_log.json").read_text())[-1]["shards"]


def steady_overhead(shards: list[dict], per_sample: list[float], spp: int) -> float:
    """Task time over the single loop's time for the same samples, leaving out each worker process's first shard
    (imports and numba cache loads, once per process)."""
    seen, task, loop = set(), 0.0, 0.0
    for s in sorted(shards, key=lambda s: int(s["shard"][-6:])):
        if s["pid"] in seen:
            first = int(s["shard"][-6:]) * spp
            task += s["seconds"]
            loop += sum(per_sample[first : first + s["samples"]])
        seen.add(s["pid"])
    return task / loop - 1 if loop else float("nan")


def _rss_mib() -> float:
    """This process's resident set now, MiB (Linux /proc)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one_size(size, n: int, k_max: float | None, k_min: float = 0.0) -> dict:
    """The single-process recipe at one size, in this (fresh) process: seconds per sample by stage and the peak
    memory of the samples over what the process held before them."""
    import resource

    import cv2
    import torch

    numba.set_num_threads(1)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bokehgen-bench-"))
    try:
        single_process(1, 128, tmp)  # compile / warm caches
        before = _rss_mib()
        wall, stages, _ = single_process(n, size, tmp, k_max, k_min)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"wall": wall, "stages": stages, "before_mib": before, "peak_mib": peak}


def sizes_table(sizes: list, n: int, k_max: float | None, k_min: float = 0.0) -> None:
    """:func:`one_size` at each size in a fresh process (so each peak is its own), side by side."""
    import json
    import subprocess
    import sys

    from datagen.scenes import frame_size

    rows = []
    for size in sizes:
        text = size if isinstance(size, int) else "x".join(map(str, size))
        cmd = [sys.executable, __file__, "--one", str(text), "--samples", str(n)]
        if k_max:
            cmd += ["--k-max", str(k_max)]
        cmd += ["--k-min", str(k_min)]
        print(f"{text}: {n} sample(s) ...", file=sys.stderr, flush=True)
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append((size, json.loads(out.strip().splitlines()[-1])))
    ks = "at K top" if k_min < 0 else f"drawn in [{k_min:g}, K top]"
    print(f"the recipe at each size, single process, 1 core, {n} sample(s) each, K {ks}:")
    names = list(rows[0][1]["stages"])
    print(
        f"{'size':>10} {'K top':>6} {'s/sample':>9} "
        + " ".join(f"{k:>8}" for k in names)
        + f" {'µs/px':>6} {'core-h/10k':>10} {'peak MiB':>9} {'over base':>9}"
    )
    for size, r in rows:
        W, H = frame_size(size)
        per = r["wall"] / n
        print(
            f"{f'{W}x{H}':>10} {k_max or k_top(size):>6.0f} {per:>9.2f} "
            + " ".join(f"{r['stages'][k] / n:>8.2f}" for k in names)
            + f" {per / (W * H) * 1e6:>6.2f} {per * 1e4 / 3600:>10.1f} {r['peak_mib']:>9.0f} "
            f"{r['peak_mib'] - r['before_mib']:>9.0f}"
        )


def main(argv=None):
    from datagen.config import parse_size
    from datagen.scenes import frame_size

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=16, help="samples per configuration")
    p.add_argument("--size", type=parse_size, default=512, help="output size: 512 or WxH")
    p.add_argument("--k-max", type=float, default=None, help="top of the K range (default: 32 px per 512 px)")
    p.add_argument("--k-min", type=float, default=0.0, help="bottom of the K range; -1: K at the top (the worst case)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each configuration, in rotation (best counts)")
    p.add_argument("--sizes", type=parse_size, nargs="+", help="the single-process recipe at each size instead")
    p.add_argument("--one", type=parse_size, help=argparse.SUPPRESS)  # --sizes' worker: one size, JSON out
    args = p.parse_args(argv)
    if args.one is not None:
        import json

        print(json.dumps(one_size(args.one, args.samples, args.k_max, args.k_min)))
        return
    if args.sizes:
        sizes_table(args.sizes, args.samples, args.k_max, args.k_min)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bokehgen-bench-"))
    try:
        import cv2
        import torch

        numba.set_num_threads(1)  # one core, like a Ray task with its 1 CPU (datagen.build.pin_threads)
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        single_process(1, 128, tmp)  # compile / warm caches
        # the three configurations in rotation, the best of --repeat runs each: this VM's speed drifts by ±10 %
        best = {}
        for _ in range(args.repeat):
            run = single_process(args.samples, args.size, tmp, args.k_max)
            if "single" not in best or run[0] < best["single"][0]:
                best["single"] = run
            for workers in (1, 2):
                shutil.rmtree(tmp / f"ray{workers}", ignore_errors=True)
                run = ray_build(args.samples, args.size, workers, tmp / f"ray{workers}", args.k_max)
                if workers not in best or run[0] < best[workers][0]:
                    best[workers] = run
        t_single, stages, per_sample = best["single"]
        rows = [("single process", 1, t_single, t_single)]
        steady = []
        for workers in (1, 2):
            wall, shards = best[workers]
            rows.append((f"Ray, {workers} worker(s)", workers, wall, sum(s["seconds"] for s in shards)))
            steady.append(steady_overhead(shards, per_sample, spp(args.samples)))
        n = args.samples
        print(
            f"{n} samples at {'x'.join(map(str, frame_size(args.size)))}, "
            f"K in [0, {args.k_max or k_top(args.size):g}], "
            f"{os.cpu_count()} CPUs, 1 thread per process/worker, "
            f"best of {args.repeat} run(s) each"
        )
        print(
            f"{'method':<20} {'cores':>5} {'wall s':>7} {'samples/s/core':>15} {'in tasks s':>11} "
            f"{'per core (tasks)':>17}"
        )
        for name, c, wall, busy in rows:
            print(f"{name:<20} {c:>5} {wall:>7.1f} {n / wall / c:>15.3f} {busy:>11.1f} {n / busy:>17.3f}")
        (_, _, w1, b1), (_, _, w2, _) = rows[1], rows[2]
        print(
            f"Ray overhead vs the single-process loop: {w1 / t_single - 1:+.1%} wall (1 worker), "
            f"{b1 / t_single - 1:+.1%} inside tasks; scaling 1 -> 2 workers: {w1 / (2 * w2):.0%} efficiency (wall)"
        )
        print(
            f"steady state (each worker's first shard left out), task time vs the loop on the same samples: "
            f"{steady[0]:+.1%} (1 worker), {steady[1]:+.1%} (2 workers)"
        )
        total = sum(stages.values())
        print(
            "single-process time by stage: "
            + ", ".join(f"{k} {v / total:.0%} ({v / n:.2f} s/sample)" for k, v in stages.items())
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
