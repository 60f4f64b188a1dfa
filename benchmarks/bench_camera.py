"""What camera-true sampling costs per sample against the K-range recipe, side by side in one run on one core:
the same drawn scenes made by datagen.scenes.make_sample with the default build config, and with
datagen/configs/camera.yaml's cameras (a full-frame 85 mm f/1.4 target, a phone telephoto at 3-5x zoom as the
input, whose own render is one more render per sample).

    python benchmarks/bench_camera.py [--samples 8] [--size 512]
"""

from __future__ import annotations

import argparse
import copy
import time

import numba


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args(argv)

    from datagen.assets import usable
    from datagen.build import BuildConfig, scan_assets
    from datagen.camera import draw_camera
    from datagen.scenes import draw_scene, make_sample

    recipe = BuildConfig.load(None, [f"size={args.size}"])
    camera = BuildConfig.load("datagen/configs/camera.yaml", [f"size={args.size}"])
    rows = scan_assets(recipe, progress=False)
    fgs, bgs = usable(rows, "foreground", "train"), usable(rows, "background", "train")
    by_id = {a.id: a for a in rows}
    deg = recipe.degradation_config()
    numba.set_num_threads(1)
    spec = draw_scene(recipe.seed, 0, fgs, bgs, recipe.scene, size=args.size)
    make_sample(spec, by_id, deg, **recipe.render)  # compile
    times = {"K recipe": [], "camera": []}
    k_input = []
    for i in range(args.samples):
        spec = draw_scene(recipe.seed, i, fgs, bgs, recipe.scene, size=args.size)
        for name, cfg in (("K recipe", recipe), ("camera", camera)):
            s = copy.deepcopy(spec)
            cam = draw_camera(s, cfg.camera) if cfg.camera.enabled else None
            t0 = time.perf_counter()
            sample = make_sample(s, by_id, deg, camera=cam, **cfg.render)
            times[name].append(time.perf_counter() - t0)
            if cam is not None:
                k_input.append(sample["json"]["camera"]["K_input"])
    base, cam = sum(times["K recipe"]) / args.samples, sum(times["camera"]) / args.samples
    print(
        f"{args.samples} samples at {args.size}², 1 core: K recipe {base:.3f} s/sample, camera-true {cam:.3f} "
        f"s/sample ({cam / base:.2f}x; the input camera's render adds one render, K_input mean "
        f"{sum(k_input) / len(k_input):.2f} px)"
    )


if __name__ == "__main__":
    main()
