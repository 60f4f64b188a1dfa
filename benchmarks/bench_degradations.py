"""Degradation speed: ms per 512×512 sample, ours vs a plain replay of the same basicsr calls, on one core.

    python benchmarks/bench_degradations.py [--samples 30] [--usm]

"ours" is degradations.pipeline.apply with the default exact blur backend ("torch": bit-identical to the plain
replay) and with blur_backend="opencv"; "plain" is degradations.reference.reference_apply, Real-ESRGAN's sequence
as written (21×21 zero-padded kernels, the identity pulse convolved, scale-1 resizes). Both replay the same drawn
records, so they do the same work on the same random draws. Also prints how many outputs are bit-identical.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from degradations import DegradationConfig, draw
from degradations.pipeline import apply, to_tensor
from degradations.reference import reference_apply


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=30, help="number of seeds")
    p.add_argument("--usm", action="store_true", help="also sharpen the GT (basicsr's torch USMSharp)")
    return p.parse_args(argv)


def main(args):
    from skimage import data

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    hq = cv2.resize(data.astronaut(), (512, 512), interpolation=cv2.INTER_AREA)
    cfg = DegradationConfig(use_usm=args.usm)
    x = to_tensor(hq, cfg)
    records = [draw(s, cfg) for s in range(args.samples)]
    apply(x, records[0], cfg.scale)  # warm up (DiffJPEG tables, imports)
    times = {"ours (torch blur, exact)": [], "ours (opencv blur)": [], "plain basicsr sequence": []}
    identical = {"ours (torch blur, exact)": 0, "ours (opencv blur)": 0}
    for rec in records:
        t = time.perf_counter()
        ref = reference_apply(x, rec, cfg.scale)
        times["plain basicsr sequence"].append(time.perf_counter() - t)
        for name, backend in (("ours (torch blur, exact)", "torch"), ("ours (opencv blur)", "opencv")):
            t = time.perf_counter()
            out = apply(x, rec, cfg.scale, backend)
            times[name].append(time.perf_counter() - t)
            identical[name] += int(torch.equal(out, ref))
    plain = np.mean(times["plain basicsr sequence"])
    print(f"512×512 → 128×128, {args.samples} samples, 1 thread, USM {'on' if args.usm else 'off'}")
    print(f"{'method':<26} {'ms/sample':>10} {'vs plain':>9} {'bit-identical':>14}")
    for name, ts in times.items():
        same = f"{identical[name]}/{args.samples}" if name in identical else "(reference)"
        print(f"{name:<26} {1000 * np.mean(ts):>10.1f} {plain / np.mean(ts):>8.2f}x {same:>14}")


if __name__ == "__main__":
    main(parse_args())
