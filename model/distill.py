"""Degradation-aware depth: distil Depth Anything V2 so that degraded inputs give the depth clear ones give.

    python -m model.distill --config tiny --shards 'DIR/train-{000000..000002}.tar' --val 'DIR/train-000003.tar' \
        --out runs/depth

Teacher: the depth network on the HQ all-in-focus image (frozen). Student: the same initialisation on the LQ
image upsampled to the HQ size. Loss: MSE between the student's and the teacher's encoder features (the
backbone layers the DPT head taps) + λ·L1 between their normalised outputs. Evaluation against the exact
disparity our renderer wrote: AbsRel and δ1 (max(p/g, g/p) < 1.25) after a per-image least-squares scale and
shift (the network predicts relative disparity), on clear and on degraded inputs, before and after.
The tiny configuration's random teacher is first fitted to the synthetic ground truth (``teacher_fit_steps``),
standing in for the pretrained weights the real configuration loads.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.limits import check_seed
from manifests.lock import writer_lock
from manifests.outdir import OutputFolderError, claim
from manifests.storage import write_csv

from .config import ModelConfig, configs_or_exit, load_section, parse_run_args
from .data import ShardStream, StreamConfig, check_max_k, expand_urls, loader, val_batches
from .depthnet import DepthEstimator, load_depth_model, normalise
from .fit import fit
from .logs import get_logger
from .photos import PhotoSource, PhotoStream, check_online, check_run_inputs, photo_loader

log = get_logger(__name__)


@dataclass
class DistillConfig:
    steps: int = 2000
    batch_size: int = 8
    lr: float = 5e-6
    feature_weight: float = 1.0
    output_weight: float = 1.0
    teacher_fit_steps: int = 0  # tiny random configuration only (see module doc)
    teacher_fit_lr: float = 1e-3
    log_every: int = 50
    seed: int = 0
    # natural photos (teacher on the HQ crop, student on its online-degraded version), as the paper distils on
    # ~200k SA-1B photos; None: the shards' all-in-focus / LQ pairs. Evaluation always uses the shards' exact
    # disparity (--val).
    isr_data: list[PhotoSource] | None = None
    crop: int | None = None  # photo crop (default: model.resolution)
    degradation: str = "realesrgan_x4plus"
    hflip: bool = True
    device: str = "auto"

    def __post_init__(self):
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")
        check_seed(self.seed)
        check_online(self.crop, self.degradation)


def load_configs(path, overrides=()) -> tuple[ModelConfig, DistillConfig]:
    return load_section(path, overrides, "distill", DistillConfig)


def _01(t: torch.Tensor) -> torch.Tensor:
    return (t + 1) / 2


def aligned(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per image least-squares scale and shift of ``pred`` onto ``gt`` (both (B, 1, H, W))."""
    p, g = pred.flatten(1), gt.flatten(1)
    pm, gm = p.mean(1, keepdim=True), g.mean(1, keepdim=True)
    scale = ((p - pm) * (g - gm)).sum(1, keepdim=True) / ((p - pm) ** 2).sum(1, keepdim=True).clamp_min(1e-12)
    return (scale * (p - pm) + gm).view_as(pred)


def aligned_disparity_errors(
    pred: torch.Tensor, gt: torch.Tensor, min_gt: float = 0.05
) -> tuple[list[float], list[float]]:
    """AbsRel and δ1 per image measured in *disparity*, after least-squares alignment to the renderer's exact
    disparity, over pixels with ground-truth disparity above ``min_gt`` (distillation's own check; the depth
    benchmark's metric-depth figures are model.evaluation.depth.metric_depth_errors)."""
    p = aligned(pred, gt).clamp_min(1e-3)
    absrel, delta1 = [], []
    for pi, gi in zip(p, gt):
        valid = gi > min_gt
        if valid.sum() == 0:
            continue
        a, b = pi[valid], gi[valid]
        absrel.append(float(((a - b).abs() / b).mean()))
        delta1.append(float((torch.maximum(a / b, b / a) < 1.25).float().mean()))
    return absrel, delta1


@torch.no_grad()
def evaluate(student: DepthEstimator, teacher: DepthEstimator, urls, scfg: StreamConfig) -> dict:
    """Held-out AbsRel and δ1 of teacher and student on clear and degraded inputs, and ``gap``: the mean absolute
    difference between the student's output on the degraded input and the teacher's on the clear one, each
    normalised as the distillation's output term compares them (before training: the teacher's own gap)."""
    acc = {k: [] for k in ("teacher_clear", "teacher_degraded", "student_clear", "student_degraded")}
    d1 = {k: [] for k in acc}
    gap = []
    dev = next(student.parameters()).device
    for b in val_batches(urls, scfg):
        clear, degraded = _01(b["aif"]).to(dev), _01(b["lq"]).to(dev)
        pred = {}
        for name, net, x in (
            ("teacher_clear", teacher, clear),
            ("teacher_degraded", teacher, degraded),
            ("student_clear", student, clear),
            ("student_degraded", student, degraded),
        ):
            pred[name] = net(x).float().cpu()
            a, d = aligned_disparity_errors(pred[name], b["disp"])
            acc[name] += a
            d1[name] += d
        diff = normalise(pred["student_degraded"][:, None]) - normalise(pred["teacher_clear"][:, None])
        gap += diff.abs().flatten(1).mean(1).tolist()
    out = {"gap": round(float(np.mean(gap)), 6)}
    for k in acc:
        out[f"absrel_{k}"] = round(float(np.mean(acc[k])), 5)
        out[f"delta1_{k}"] = round(float(np.mean(d1[k])), 5)
    return out


def _features(out, layers) -> list[torch.Tensor]:
    return [out.hidden_states[i] for i in layers]


def fit_teacher(teacher: DepthEstimator, data, steps: int, lr: float) -> None:
    """Supervised fit (L1) on the synthetic ground truth (tiny configuration's stand-in for pretrained weights)."""
    teacher.train()
    fit(teacher.parameters(), lambda b: F.l1_loss(teacher(_01(b["aif"])), b["disp"]), data, steps, lr, "teacher fit")
    teacher.eval()


class _Raw(torch.nn.Module):
    """The student's raw outputs through ``forward`` (so DistributedDataParallel sees the call)."""

    def __init__(self, estimator: DepthEstimator, layers):
        super().__init__()
        self.estimator, self.layers = estimator, layers

    def forward(self, rgb):
        out = self.estimator.raw(rgb, output_hidden_states=True)
        return [out.hidden_states[i] for i in self.layers], out.predicted_depth


def distill(mcfg: ModelConfig, dcfg: DistillConfig, shards, val, out) -> dict:
    """Distil (see module doc); under ``torchrun``/``accelerate launch`` data-parallel, rank 0 writing."""
    from .distributed import setup

    ctx = setup(dcfg.device)
    try:
        return _distill(ctx, mcfg, dcfg, shards, val, out)
    finally:
        ctx.close()


# what model.distill writes into its folder (manifests.outdir patterns)
DISTILL_OUTPUTS = ("depth_eval.csv", "depth_examples.png", "student/**")


def _distill(ctx, mcfg: ModelConfig, dcfg: DistillConfig, shards, val, out) -> dict:
    """The run, step by step as model.train's: own the folder, the data stream, the teacher (fitted when tiny),
    the student's baseline, then the steps, each logged, and the finish (evaluation, weights, examples)."""
    out = Path(out)
    torch.manual_seed(dcfg.seed)
    urls, val_urls = expand_urls(shards), expand_urls(val)
    _own_folder(ctx, out, urls, val_urls)
    check_max_k(urls, mcfg.k_max)
    scfg = StreamConfig(dcfg.batch_size, 64, dcfg.seed, mcfg.k_max, mcfg.focus_radius)
    data = _stream(ctx, mcfg, dcfg, urls, scfg)
    teacher = _teacher(ctx, mcfg, dcfg, urls, scfg)
    student = copy.deepcopy(teacher).requires_grad_(True)
    layers = list(teacher.model.config.backbone_config.out_indices)
    before = _baseline(ctx, student, teacher, val_urls, scfg)
    opt = torch.optim.AdamW(student.parameters(), lr=dcfg.lr)
    student.train()
    # Dinov2's mask token and the layers after the last tapped one take no part in the loss
    net = ctx.wrap(_Raw(student, layers), find_unused_parameters=True)
    t0 = time.perf_counter()
    for step in range(dcfg.steps):
        losses = distill_step(ctx, net, teacher, opt, next(data), layers, dcfg)
        _log_step(ctx, dcfg, step + 1, losses, t0)
    net = None
    return _finish(ctx, out, student, teacher, val_urls, scfg, before)


def _own_folder(ctx, out: Path, urls: list, val_urls: list) -> None:
    if ctx.main:
        claim(out, "model.distill", DISTILL_OUTPUTS, inputs=[*urls, *val_urls], signature="depth_eval.csv")


def _stream(ctx, mcfg: ModelConfig, dcfg: DistillConfig, urls: list, scfg: StreamConfig):
    """The batches the student learns from: natural photos degraded online (distill.isr_data), else the shards'
    all-in-focus / LQ pairs."""
    if dcfg.isr_data is not None:
        stream = PhotoStream(
            dcfg.isr_data, dcfg.crop or mcfg.resolution, dcfg.batch_size, dcfg.seed, dcfg.degradation, dcfg.hflip
        )
        log.info(f"distilling on natural photos degraded online: {stream.describe()}")
        return iter(photo_loader(stream))
    log.info(
        "NOTE: no distill.isr_data: distilling on the shards' all-in-focus / LQ pairs (the paper uses ~200k "
        "natural photos, an SA-1B subset, degraded online)"
    )
    # after the batches the tiny teacher's fit reads (below), as one process would continue its stream
    skip = -(-dcfg.teacher_fit_steps // ctx.world)
    return iter(loader(ShardStream(urls, dataclasses.replace(scfg, hflip=dcfg.hflip), skip_batches=skip)))


def _teacher(ctx, mcfg: ModelConfig, dcfg: DistillConfig, urls: list, scfg: StreamConfig) -> DepthEstimator:
    """The frozen teacher on the device, the same on every rank (a tiny one fitted on the shards first)."""
    teacher = DepthEstimator(load_depth_model(mcfg.depth_size, mcfg.depth, mcfg.seed), mcfg.depth_input)
    log.info(
        f"teacher: {mcfg.depth or f'random {mcfg.depth_size} Depth Anything V2'}; "
        f"{ctx.world} process(es), batch {dcfg.batch_size * ctx.world} per step"
    )
    if dcfg.teacher_fit_steps:
        if mcfg.depth is not None:
            raise ValueError("teacher_fit_steps is for a random (tiny) depth network only")
        # the same fit on every rank: the first teacher_fit_steps batches of the stream
        fit_data = iter(loader(ShardStream(urls, scfg, rank=0, world=1)))
        fit_teacher(teacher, fit_data, dcfg.teacher_fit_steps, dcfg.teacher_fit_lr)
    teacher.eval().requires_grad_(False).to(ctx.device)
    ctx.broadcast_module(teacher)
    return teacher


def _baseline(ctx, student, teacher, val_urls: list, scfg: StreamConfig) -> dict:
    before = evaluate(student, teacher, val_urls, scfg) if ctx.main else {}
    if ctx.main:
        log.info(
            f"before: student AbsRel degraded {before['absrel_student_degraded']:.4f}, clear "
            f"{before['absrel_student_clear']:.4f}"
        )
    ctx.barrier()
    return before


def distill_step(ctx, net, teacher, opt, batch: dict, layers: list, dcfg: DistillConfig) -> tuple:
    """One optimizer step: the student on LQ matches the teacher on the all-in-focus image (tapped features and
    the normalised output); returns (feature loss, output loss) as tensors."""
    aif, lq = batch["aif"].to(ctx.device), batch["lq"].to(ctx.device)
    with torch.no_grad():
        t_out = teacher.raw(_01(aif), output_hidden_states=True)
    s_feats, s_depth = net(_01(lq))
    feat = sum(F.mse_loss(s, t) for s, t in zip(s_feats, _features(t_out, layers))) / len(layers)
    outl = F.l1_loss(normalise(s_depth[:, None]), normalise(t_out.predicted_depth[:, None]))
    loss = dcfg.feature_weight * feat + dcfg.output_weight * outl
    opt.zero_grad()
    loss.backward()
    opt.step()
    return feat, outl


def _log_step(ctx, dcfg: DistillConfig, done: int, losses: tuple, t0: float) -> None:
    if done % dcfg.log_every == 0 or done == dcfg.steps:
        f_v, o_v = ctx.mean([v.item() for v in losses])
        log.info(
            f"distill {done}/{dcfg.steps}: features {f_v:.4f}, output {o_v:.4f} "
            f"({(time.perf_counter() - t0) / done:.2f} s/step)"
        )


def _finish(ctx, out: Path, student, teacher, val_urls: list, scfg: StreamConfig, before: dict) -> dict:
    """The student checked in sync across ranks; rank 0 evaluates it, writes depth_eval.csv, the student's weights
    and the examples."""
    student.eval()
    digest = ctx.check_in_sync(student)
    if ctx.distributed:
        log.info(f"all {ctx.world} processes hold identical student weights (sha256 {digest[:16]})")
    result = {"before": before, "after": {}}
    if ctx.main:
        student.cpu()
        teacher.cpu()
        after = evaluate(student, teacher, val_urls, scfg)
        rows = [{"when": "before", **before}, {"when": "after", **after}]
        write_csv(out / "depth_eval.csv", rows)
        student.model.save_pretrained(out / "student")
        _examples(teacher, student, val_urls, scfg, out / "depth_examples.png")
        log.info(
            f"after: gap to the teacher on clear inputs {before['gap']:.4f} -> {after['gap']:.4f}; "
            f"student AbsRel degraded {after['absrel_student_degraded']:.4f} (teacher on degraded "
            f"{after['absrel_teacher_degraded']:.4f}, teacher on clear {after['absrel_teacher_clear']:.4f}); "
            f"student -> {out / 'student'} (use: python -m model.train --depth-weights {out / 'student'} ..., or "
            f"model.infer --depth-weights), table -> {out / 'depth_eval.csv'}"
        )
        result["after"] = after
    ctx.barrier()
    return result


@torch.no_grad()
def _examples(teacher, student, urls, scfg, path: Path, n: int = 4) -> None:
    from .figures import example_grid

    rows = []
    for b in val_batches(urls, scfg):
        clear, degraded = _01(b["aif"]), _01(b["lq"])
        t_c, t_d, s_d = teacher(clear), teacher(degraded), student(degraded)
        for i in range(len(b["key"])):
            if len(rows) < n:
                rows.append([b["aif"][i], b["lq"][i], b["disp"][i], t_c[i], t_d[i], s_d[i]])
    example_grid(rows, path)  # columns: HQ, LQ, ground truth, teacher(HQ), teacher(LQ), student(LQ)


def parse_args(argv=None):
    return parse_run_args(
        argv,
        "python -m model.distill",
        __doc__,
        "distill",
        val_required=True,
        out_help="output folder (student weights, depth_eval.csv, depth_examples.png)",
    )


def main(args) -> dict:
    """Run ``python -m model.distill`` with parsed arguments (the configs are checked before any work starts)."""
    mcfg, dcfg = configs_or_exit(load_configs, args)
    check_run_inputs((args.shards, args.val), dcfg.isr_data, "distill.isr_data")
    try:
        with writer_lock(args.out, "model.distill"):
            return distill(mcfg, dcfg, args.shards, args.val, args.out)
    except OutputFolderError as e:
        raise SystemExit(f"error: {e}") from None


def cli() -> None:
    from common.cli import run

    run(main, parse_args())


if __name__ == "__main__":
    cli()
