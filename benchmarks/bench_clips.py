"""What a clip frame costs against an image of the image recipe, and what sharing work across a clip's frames
saves, side by side in one run on one core. The same drawn scenes (plane backgrounds) are rendered

- as one image (build_layers + pinhole view + render_bokeh: the image recipe's work before degradation);
- as a 16-frame clip by datagen.clips.render_clip (one renderer.TextureCache for the clip: a layer that does not
  move is decoded and summed once, each frame's pinhole view and render share textures, and where K and the focus
  stay only the pixels within reach of a moving layer are traced again): with a focus pull and the camera moving
  (subjects, camera move) or locked (subjects moving, the background static), and a locked shot with a fixed
  focus;
- the same clips with nothing shared (each frame's pinhole view and render prepare every layer afresh, as before
  the cache), the baseline of the saving.

    python benchmarks/bench_clips.py [--scenes 3] [--frames 16] [--size 512]
"""

from __future__ import annotations

import argparse
import time

import numba


def unshared(spec, clip, layers, resolve, **render_options) -> None:
    """render_clip's frames with nothing shared between calls (the baseline)."""
    from datagen.clips import focus_disparity, frame_state
    from datagen.scenes import render_seed
    from renderer import pinhole_view, render_bokeh

    for k in range(clip.frames):
        fl = frame_state(spec, clip, k, layers)[0]
        d_f = focus_disparity(spec, clip, k, fl, resolve)[2]
        pinhole_view(fl)
        render_bokeh(fl, clip.K(spec.K, k), d_f, seed=render_seed(spec), **render_options)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", type=int, default=3)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args(argv)

    import dataclasses

    from datagen.assets import usable
    from datagen.build import BuildConfig, scan_assets
    from datagen.clips import SequenceConfig, draw_clip, render_clip
    from datagen.scenes import build_layers, draw_scene, render_seed, resolve_focus
    from renderer import TextureCache, pinhole_view, render_bokeh

    cfg = BuildConfig.load(None, [f"size={args.size}"])
    rows = scan_assets(cfg, progress=False)
    fgs, bgs = usable(rows, "foreground", "train"), usable(rows, "background", "train")
    by_id = {a.id: a for a in rows}
    scene = dataclasses.replace(cfg.scene, bg_map_prob=0.0)
    numba.set_num_threads(1)
    warm = draw_scene(cfg.seed, 0, fgs, bgs, scene, size=args.size)  # compile, read the assets once
    render_bokeh(build_layers(warm, by_id), warm.K, 0.5, **cfg.render)
    cases = (
        ("moving, pull", 0.0, [0.0, 1.0, 0.0]),
        ("locked, pull", 1.0, [0.0, 1.0, 0.0]),
        ("locked, fixed focus", 1.0, [1.0, 0.0, 0.0]),
    )
    cols = {"image": [], **{name: [] for name, _, _ in cases}, **{f"{name} unshared": [] for name, _, _ in cases}}
    for i in range(args.scenes):
        spec = draw_scene(cfg.seed, i, fgs, bgs, scene, size=args.size)
        t0 = time.perf_counter()
        layers = build_layers(spec, by_id)
        d_f = resolve_focus(spec, layers)[2]
        pinhole_view(layers)
        render_bokeh(layers, spec.K, d_f, seed=render_seed(spec), **cfg.render)
        cols["image"].append(time.perf_counter() - t0)
        targets = [f"fg{k}" for k in range(len(spec.foregrounds))] + ["background"]
        line = f"scene {i}: K {spec.K:.1f}, image {cols['image'][-1]:.3f} s"
        for name, still, focus in cases:
            seq = SequenceConfig(frames=args.frames, focus_probs=focus, still_camera_prob=still)
            clip = draw_clip(spec, seq, targets)
            cache = TextureCache()
            t0 = time.perf_counter()
            render_clip(spec, clip, build_layers(spec, by_id), resolve_focus, textures=cache, **cfg.render)
            cols[name].append((time.perf_counter() - t0) / args.frames)
            t0 = time.perf_counter()
            unshared(spec, clip, build_layers(spec, by_id), resolve_focus, **cfg.render)
            cols[f"{name} unshared"].append((time.perf_counter() - t0) / args.frames)
            line += (
                f"\n  {name}: frame {cols[name][-1]:.3f} s (unshared {cols[name + ' unshared'][-1]:.3f} s; "
                f"reused {cache.hits} textures, {cache.tables_reused} tables, "
                f"{100 * cache.pixels_reused / (args.frames * args.size**2):.0f} % of the pixels)"
            )
        print(line, flush=True)
    mean = {k: sum(v) / len(v) for k, v in cols.items()}
    a = mean["image"]
    print(f"mean over {args.scenes} scenes at {args.size}², {args.frames} frames, 1 core: image {a:.3f} s")
    for name, _, _ in cases:
        s, u = mean[name], mean[f"{name} unshared"]
        print(
            f"  {name}: frame {s:.3f} s = {s / a:.2f}x an image ({args.frames}-frame clip ≈ "
            f"{args.frames * s / a:.1f} images); unshared {u:.3f} s; sharing saves {100 * (1 - s / u):.1f} %"
        )


if __name__ == "__main__":
    main()
