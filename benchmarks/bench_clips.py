"""What a clip frame costs against an image of the image recipe, side by side in one run on one core: the same
drawn scenes (plane backgrounds) rendered as one image (build_layers + pinhole view + render_bokeh, the image
recipe's work before degradation) and as a 16-frame clip with subject motion, a camera move and a focus pull
(datagen.clips.render_clip: each frame moves the layers, composites the pinhole view and renders).

    python benchmarks/bench_clips.py [--scenes 3] [--frames 16] [--size 512]

Nothing is shared between frames yet (each frame builds its own summed-area tables); the per-frame overhead over
an image render is the layers' affine resampling.
"""

from __future__ import annotations

import argparse
import time

import numba


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
    from renderer import pinhole_view, render_bokeh

    cfg = BuildConfig.load(None, [f"size={args.size}"])
    rows = scan_assets(cfg, progress=False)
    fgs, bgs = usable(rows, "foreground", "train"), usable(rows, "background", "train")
    by_id = {a.id: a for a in rows}
    scene = dataclasses.replace(cfg.scene, bg_map_prob=0.0)
    seq = SequenceConfig(frames=args.frames, focus_probs=[0.0, 1.0, 0.0])
    numba.set_num_threads(1)
    warm = draw_scene(cfg.seed, 0, fgs, bgs, scene, size=args.size)  # compile, read the assets once
    render_bokeh(build_layers(warm, by_id), warm.K, 0.5, **cfg.render)
    image_s, frame_s = [], []
    for i in range(args.scenes):
        spec = draw_scene(cfg.seed, i, fgs, bgs, scene, size=args.size)
        t0 = time.perf_counter()
        layers = build_layers(spec, by_id)
        d_f = resolve_focus(spec, layers)[2]
        pinhole_view(layers)
        render_bokeh(layers, spec.K, d_f, seed=render_seed(spec), **cfg.render)
        image_s.append(time.perf_counter() - t0)
        clip = draw_clip(spec, seq, [f"fg{k}" for k in range(len(spec.foregrounds))] + ["background"])
        t0 = time.perf_counter()
        render_clip(spec, clip, build_layers(spec, by_id), resolve_focus, **cfg.render)
        frame_s.append((time.perf_counter() - t0) / args.frames)
        print(f"scene {i}: K {spec.K:.1f}, image {image_s[-1]:.3f} s, clip frame {frame_s[-1]:.3f} s "
              f"({clip.focus_mode}, camera {clip.camera[0]:+.2f},{clip.camera[1]:+.2f} px/frame)", flush=True)
    a, b = sum(image_s) / len(image_s), sum(frame_s) / len(frame_s)
    print(f"mean over {args.scenes} scenes at {args.size}², 1 core: image {a:.3f} s, clip frame {b:.3f} s "
          f"({b / a:.2f}x an image per frame; a {args.frames}-frame clip ≈ {args.frames * b / a:.1f} images)")


if __name__ == "__main__":
    main()
