"""A plain, sequential replay of a recorded degradation with basicsr, exactly as Real-ESRGAN's training code writes
it (kernels zero-padded to 21×21, the final pulse kernel convolved too, the stage-1 "keep" resize called with scale
1). Slower than :func:`degradations.pipeline.apply`; the tests and benchmarks/bench_degradations.py compare the two."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .compat import basicsr_modules
from .pipeline import DegradationRecord, add_noise, build_kernel, jpeger


def reference_apply(hq: torch.Tensor, rec: DegradationRecord, scale: int) -> torch.Tensor:
    _, ipu, _ = basicsr_modules()
    jpeg = jpeger()
    k1 = torch.from_numpy(build_kernel(rec.kernel1, pad_to=21))[None]
    k2 = torch.from_numpy(build_kernel(rec.kernel2, pad_to=21))[None]
    sinc = torch.from_numpy(build_kernel(rec.final_kernel, pad_to=21))[None]
    ori_h, ori_w = hq.shape[2:]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(rec.noise_seed)
        gt = ipu.USMSharp()(hq) if rec.usm else hq
        out = ipu.filter2D(gt, k1)
        out = F.interpolate(out, scale_factor=rec.stage1.resize_scale, mode=rec.stage1.resize_interp)
        out = add_noise(out, rec.stage1)
        out = torch.clamp(out, 0, 1)
        out = jpeg(out, quality=out.new_tensor([rec.stage1.jpeg_quality]))
        if rec.blur2:
            out = ipu.filter2D(out, k2)
        out = F.interpolate(
            out,
            size=(int(ori_h / scale * rec.stage2.resize_scale), int(ori_w / scale * rec.stage2.resize_scale)),
            mode=rec.stage2.resize_interp,
        )
        out = add_noise(out, rec.stage2)
        if rec.final_order == "resize_sinc_jpeg":
            out = F.interpolate(out, size=(ori_h // scale, ori_w // scale), mode=rec.final_interp)
            out = ipu.filter2D(out, sinc)
            out = torch.clamp(out, 0, 1)
            out = jpeg(out, quality=out.new_tensor([rec.stage2.jpeg_quality]))
        else:
            out = torch.clamp(out, 0, 1)
            out = jpeg(out, quality=out.new_tensor([rec.stage2.jpeg_quality]))
            out = F.interpolate(out, size=(ori_h // scale, ori_w // scale), mode=rec.final_interp)
            out = ipu.filter2D(out, sinc)
        return torch.clamp((out * 255.0).round(), 0, 255) / 255.0
