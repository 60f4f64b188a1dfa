"""Alternating SR/bokeh training of MagicBokeh from bokehgen's shards.

    python -m model.train --config model/configs/tiny.yaml --shards 'DIR/train-{000000..000003}.tar' \
        --val 'DIR/val-*.tar' --out runs/tiny [--set train.total_steps=600]

Stage 1 ("isr1", ``isr1_steps``): VAE-encoder LoRA + SR LoRA on LQ -> HQ all-in-focus (defocus 0, M = 0). Then
phases alternate: "bokeh" (``bokeh_steps``: ControlNet + bokeh LoRA, LQ -> HQ bokeh, conditioned on the defocus
map with the focus mask, lr 5e-5) and "isr" (``isr_steps``: SR LoRA only, lr 5e-6). Loss: L2 + λ·LPIPS.
The run folder holds checkpoints (trained weights only + optimizer state), train_log.csv, val.csv, curves.png
and val_examples_*.png; rerunning the same command resumes from the last checkpoint.

The tiny configuration's U-Net and VAE are random: ``prior_fit_steps`` first fits them (all weights) on the same
data, as the stand-in for the pretrained Stable Diffusion weights the real configuration starts from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from manifests.lock import writer_lock
from manifests.outdir import OutputFolderError, claim
from manifests.storage import atomic_file

from .checkpoints import append_row, list_checkpoints, save_checkpoint, trim_csv  # noqa: F401
from .config import ModelConfig, configs_or_exit, parse_run_args
from .data import ShardStream, StreamConfig, check_max_k, data_max_k, expand_urls, loader
from .logs import get_logger
from .photos import PhotoStream, check_run_inputs, photo_loader
from .prior import fit_tiny_prior  # noqa: F401
from .train_config import TrainConfig, autocast, load_configs, to_device  # noqa: F401
from .validation import plot, psnr_rgb, ssim_y, validate  # noqa: F401

log = get_logger(__name__)


# ---------------------------------------------------------------- training
def resolve_depth(mcfg: ModelConfig, depth_weights=None) -> ModelConfig:
    """``--depth-weights`` (else ``model.depth``) as an absolute path to a local Depth Anything folder, checked
    (a ValueError naming it); the trained weights' model.yaml records it, so inference uses the same depth model by
    default (model.pipeline.depth_folder)."""
    from .depthnet import check_depth_folder

    folder = depth_weights or mcfg.depth
    if folder is None:
        return mcfg
    check_depth_folder(folder, "--depth-weights" if depth_weights else "model.depth")
    return dataclasses.replace(mcfg, depth=str(Path(folder).resolve()))


# what model.train writes into its run folder (manifests.outdir patterns)
TRAIN_OUTPUTS = (
    "config.json",
    "train_log.csv",
    "val.csv",
    "curves.png",
    "val_examples_*.png",
    "base/**",
    "base.tmp/**",
    "checkpoints/**",
    "weights/**",
)


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """'key: old -> new' for every value that differs between two nested config records."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "(absent)"), new.get(key, "(absent)")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return out


def _uses_photos(tcfg: TrainConfig, phase: str) -> bool:
    return tcfg.isr_data is not None and phase in ("isr1", "isr")


def train(
    mcfg: ModelConfig, tcfg: TrainConfig, shards, run, val=None, perceptual=None, stop_after: int | None = None
) -> dict:
    """Train (or resume) into ``run``; returns the last validation row (or {}). ``stop_after`` ends this call
    after that many steps (tests: a run interrupted and resumed). Under ``torchrun``/``accelerate launch``
    (``WORLD_SIZE`` > 1) every process runs this: data-parallel with DDP, rank 0 alone writes and logs
    (model/distributed.py, model/logs.py)."""
    from .distributed import setup

    ctx = setup(tcfg.device)
    try:
        return _train(ctx, mcfg, tcfg, shards, Path(run), val, perceptual, stop_after)
    finally:
        ctx.close()


def _train(ctx, mcfg: ModelConfig, tcfg: TrainConfig, shards, run: Path, val, perceptual, stop_after) -> dict:
    urls = expand_urls(shards)
    val_urls = expand_urls(val) if val else None
    scale = check_max_k(urls, mcfg.k_max)
    photos = _photo_source(mcfg, tcfg)
    torch.manual_seed(tcfg.seed)
    # data built past the model's k_max is downscaled as it is read; the mapping is recorded with the config
    data = {"max_K": data_max_k(urls), "scale": scale} if scale != 1.0 else None
    _own_run_folder(ctx, run, mcfg, tcfg, [*urls, *(val_urls or [])], data)
    mcfg = _prior(ctx, mcfg, tcfg, urls, run)
    model, perceptual, optimizers = build_model(ctx, mcfg, tcfg, perceptual)
    start = _resume(ctx, run, model, optimizers)
    streams = _streams(mcfg, tcfg, urls, photos, start)
    end = tcfg.total_steps if stop_after is None else min(tcfg.total_steps, start + stop_after)
    global_batch = tcfg.batch_size * tcfg.grad_accum * ctx.world
    log.info(
        f"batch: {tcfg.batch_size} per process × {tcfg.grad_accum} accumulated × {ctx.world} processes = "
        f"{global_batch} per step; device {ctx.device}"
    )
    last_val = {}
    t_start = time.perf_counter()
    net = None
    for step in range(start, end):
        phase = tcfg.phase(step)
        if model.phase != phase or net is None:
            model.set_phase(phase)
            net = None  # a new DDP wrapper for the new set of trained parameters (the old one is released first)
            net = ctx.wrap(model)
        opt = optimizers[phase]
        stream = streams["photos" if _uses_photos(tcfg, phase) else "shards"]
        losses = train_step(ctx, net, opt, stream, phase, perceptual, tcfg)
        done = step + 1
        rate = (time.perf_counter() - t_start) / (done - start)
        _log_step(ctx, run, tcfg, done, phase, losses, opt, global_batch, rate, end)
        if val_urls and (done % tcfg.val_every == 0 or done == tcfg.total_steps):
            last_val = _validate(ctx, model, val_urls, mcfg, tcfg, done, run) or last_val
        if done % tcfg.ckpt_every == 0 or done == end:
            if ctx.main:
                save_checkpoint(run, done, model, optimizers, tcfg.keep_checkpoints)
            ctx.barrier()
    net = None
    _finish(ctx, run, model, end == tcfg.total_steps)
    return last_val


# ---------------------------------------------------------------- the steps of a run
def _photo_source(mcfg: ModelConfig, tcfg: TrainConfig):
    """The Real-ISR phases' natural photos as a function of the batches already served, or None (the shards'
    all-in-focus images instead); listed and checked before any work."""
    if tcfg.isr_data is None:
        log.info(
            "NOTE: no train.isr_data: the Real-ISR phases (isr1, isr) learn from the shards' all-in-focus "
            "images. The paper's recipe uses natural photos (LSDIR + 10k FFHQ faces) degraded online: set "
            "train.isr_data."
        )
        return None
    crop = tcfg.crop or mcfg.resolution

    def photos(skip: int) -> PhotoStream:
        return PhotoStream(tcfg.isr_data, crop, tcfg.batch_size, tcfg.seed, tcfg.degradation, tcfg.hflip, skip)

    log.info(f"Real-ISR phases: natural photos degraded online: {photos(0).describe()}")
    return photos


def _own_run_folder(ctx, run: Path, mcfg: ModelConfig, tcfg: TrainConfig, inputs: list, data=None) -> None:
    """Rank 0 claims the run folder (manifests.outdir) and records the configuration (and ``data``: how the data
    is mapped onto the model's k_max, when it is downscaled); a folder holding a run of another configuration is
    refused naming the differences. Every rank checks it runs the recorded one."""
    record = {"model": mcfg.to_dict(), "train": dataclasses.asdict(tcfg), **({"data": data} if data else {})}
    cfg_file = run / "config.json"
    if ctx.main:
        claim(run, "model.train", TRAIN_OUTPUTS, inputs=inputs, signature="config.json")
        if cfg_file.is_file():
            differ = config_differences(json.loads(cfg_file.read_text()), json.loads(json.dumps(record)))
            if differ:
                raise OutputFolderError(
                    f"--out {run}: holds a run of another configuration ({'; '.join(differ[:6])}"
                    f"{' ...' if len(differ) > 6 else ''}); use another --out, or the same config"
                )
        with atomic_file(cfg_file, "w") as f:
            f.write(json.dumps(record, indent=2))
    ctx.barrier()
    if ctx.distributed and json.loads(cfg_file.read_text()) != json.loads(json.dumps(record)):
        raise ValueError(f"{run}: rank {ctx.rank} has another configuration than rank 0 ({cfg_file})")


def _prior(ctx, mcfg: ModelConfig, tcfg: TrainConfig, urls, run: Path) -> ModelConfig:
    """The tiny configuration's stand-in for pretrained weights, fitted once by rank 0 into run/base; the model
    config then points there."""
    if not (tcfg.prior_fit_steps or tcfg.prior_vae_steps):
        return mcfg
    t0 = time.perf_counter()
    if ctx.main:
        fit_tiny_prior(mcfg, tcfg, urls, run / "base")
    ctx.barrier()  # the other ranks load what rank 0 fitted
    log.info(f"prior ready in {run / 'base'} ({time.perf_counter() - t0:.1f} s)")
    return dataclasses.replace(mcfg, base=str((run / "base").resolve()))


def build_model(ctx, mcfg: ModelConfig, tcfg: TrainConfig, perceptual):
    """The model on the device, the perceptual loss (LPIPS unless given) and one AdamW per phase."""
    from .network import MagicBokeh

    model = MagicBokeh(mcfg).to(ctx.device)
    if tcfg.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    if perceptual is None:
        from .perceptual import make_lpips

        perceptual = make_lpips(tcfg.lpips_net, tcfg.lpips_backbone, verbose=ctx.main)
    if isinstance(perceptual, torch.nn.Module):
        perceptual.requires_grad_(False).to(ctx.device)
    optimizers = {}
    for phase, lr in {"isr1": tcfg.lr_isr1, "bokeh": tcfg.lr_bokeh, "isr": tcfg.lr_isr}.items():
        model.set_phase(phase)
        optimizers[phase] = torch.optim.AdamW(model.trainable_parameters(), lr=lr, weight_decay=tcfg.weight_decay)
    model.set_phase(None)
    return model, perceptual, optimizers


def _resume(ctx, run: Path, model, optimizers: dict) -> int:
    """The step of the last checkpoint (0 without one), its weights, optimizer states and RNG restored; log rows
    written after it dropped."""
    start = 0
    ckpts = list_checkpoints(run)
    if ckpts:
        state = json.loads((ckpts[-1] / "state.json").read_text())
        start = state["step"]
        model.load_weights(ckpts[-1])
        for k, sd in torch.load(ckpts[-1] / "optimizers.pt", weights_only=True).items():
            optimizers[k].load_state_dict(sd)
        torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
        if ctx.main:
            for name in ("train_log.csv", "val.csv"):
                trim_csv(run / name, start)
        log.info(f"resuming from {ckpts[-1]} (step {start})")
    ctx.barrier()  # every rank has read the checkpoint before rank 0 may write the next one
    model.set_phase(None)
    model.train()
    return start


def _streams(mcfg: ModelConfig, tcfg: TrainConfig, urls, photos, start: int) -> dict:
    """The shard stream and the photo stream (when the Real-ISR phases read photos), each past the batches it has
    served in the ``start`` steps already taken (grad_accum per step of the phases that read it)."""
    served = {"photos": 0, "shards": 0}
    for step in range(start):
        served["photos" if _uses_photos(tcfg, tcfg.phase(step)) else "shards"] += tcfg.grad_accum
    scfg = StreamConfig(
        tcfg.batch_size,
        tcfg.shuffle_buffer,
        tcfg.seed,
        mcfg.k_max,
        mcfg.focus_radius,
        tcfg.crop,
        hflip=tcfg.hflip,
        redegrade=tcfg.degradation if tcfg.redegrade else None,
        max_bad_fraction=tcfg.max_bad_fraction,
    )
    streams = {
        "shards": _counting_bad(iter(loader(ShardStream(urls, scfg, served["shards"]), num_workers=tcfg.num_workers)))
    }
    if photos is not None:
        streams["photos"] = iter(photo_loader(photos(served["photos"]), tcfg.num_workers))
    return streams


#: damaged samples the shard stream's readers skipped so far in this process: DataLoader worker id -> count
BAD_SAMPLES: dict[int, int] = {}


def _counting_bad(batches):
    """The shard stream's batches, their ``bad_samples`` (reader, count so far) noted in BAD_SAMPLES."""
    BAD_SAMPLES.clear()
    for b in batches:
        reader, bad = (int(v) for v in b.pop("bad_samples", torch.tensor([0, 0])))
        BAD_SAMPLES[reader] = bad
        yield b


def train_step(ctx, net, opt, stream, phase: str, perceptual, tcfg: TrainConfig) -> list[float]:
    """One optimizer step of ``phase`` over grad_accum micro-batches (gradients synchronised on the last only);
    returns [loss, L2, LPIPS], averaged over the micro-batches and the processes."""
    opt.zero_grad(set_to_none=True)
    sums = [0.0, 0.0, 0.0]
    for micro in range(tcfg.grad_accum):
        b = to_device(next(stream), ctx.device)
        sync = micro == tcfg.grad_accum - 1 or not ctx.distributed
        with contextlib.nullcontext() if sync else net.no_sync(), autocast(ctx.device, tcfg.precision):
            if phase == "bokeh":
                pred, target = net(b["lq"], b["defocus"], b["mask"]), b["bokeh"]
            else:
                pred, target = net(b["lq"]), b["aif"]
            lp = perceptual(pred, target).mean().float()
            l2 = F.mse_loss(pred.float(), target)
            loss = l2 + tcfg.lpips_weight * lp
            (loss / tcfg.grad_accum).backward()
        sums = [a + v.item() / tcfg.grad_accum for a, v in zip(sums, (loss, l2, lp))]
    if tcfg.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], tcfg.max_grad_norm)
    opt.step()
    return ctx.mean(sums)


def _log_step(
    ctx, run: Path, tcfg: TrainConfig, done: int, phase: str, losses, opt, global_batch: int, rate: float, end: int
) -> None:
    """A row of train_log.csv (rank 0) and, every log_every steps, a progress line with the ETA."""
    loss_v, l2_v, lp_v = losses
    bad = round(ctx.mean([float(sum(BAD_SAMPLES.values()))])[0] * ctx.world)  # skipped by every process's readers
    if ctx.main:
        append_row(
            run / "train_log.csv",
            {
                "step": done,
                "phase": phase,
                "loss": f"{loss_v:.6f}",
                "l2": f"{l2_v:.6f}",
                "lpips": f"{lp_v:.6f}",
                "lr": opt.param_groups[0]["lr"],
                "global_batch": global_batch,
                "bad_samples": bad,
            },
        )
    if done % tcfg.log_every == 0 or done == end:
        log.info(
            f"step {done}/{tcfg.total_steps} [{phase}] loss {loss_v:.4f} (L2 {l2_v:.4f}, LPIPS {lp_v:.4f}) "
            f"batch {global_batch} ({ctx.world} × {tcfg.batch_size} × {tcfg.grad_accum})  {rate:.2f} s/step, "
            f"ETA {rate * (tcfg.total_steps - done) / 60:.1f} min"
            + (f"; {bad} damaged samples skipped so far" if bad else "")
        )


def _validate(ctx, model, val_urls, mcfg: ModelConfig, tcfg: TrainConfig, done: int, run: Path) -> dict:
    """Rank 0 validates, appends to val.csv and redraws curves.png; returns the row ({} on other ranks)."""
    row = {}
    if ctx.main:
        row = validate(model, val_urls, mcfg, tcfg, done, run)
        append_row(run / "val.csv", row)
        log.info(
            f"val @ {done}: bokeh PSNR (RGB) {row['psnr_rgb_bokeh']:.2f} dB (identity "
            f"{row['psnr_rgb_bokeh_identity']:.2f}), all-in-focus {row['psnr_rgb_aif']:.2f} dB "
            f"(identity {row['psnr_rgb_aif_identity']:.2f})"
        )
        plot(run)
    ctx.barrier()
    return row


def _finish(ctx, run: Path, model, complete: bool) -> None:
    """Every rank holds the same weights (checked); when the run is complete rank 0 writes run/weights."""
    digest = ctx.check_in_sync(model)
    if ctx.distributed:
        log.info(f"all {ctx.world} processes hold identical weights (sha256 {digest[:16]})")
    if complete and ctx.main:
        final = run / "weights"
        shutil.rmtree(final, ignore_errors=True)
        model.save_weights(final)
        plot(run)
        log.info(
            f"done: {run / 'weights'} (use: python -m model.infer --weights {final} ...); curves: {run / 'curves.png'}"
        )
    ctx.barrier()


def parse_args(argv=None):
    return parse_run_args(
        argv,
        "python -m model.train",
        __doc__,
        "train",
        val_required=False,
        out_help="run folder (rerun the same command to resume)",
        depth=True,
    )


def main(args) -> dict:
    """Run ``python -m model.train`` with parsed arguments (the configs are checked before any work starts)."""
    mcfg, tcfg = configs_or_exit(load_configs, args)
    try:
        mcfg = resolve_depth(mcfg, getattr(args, "depth_weights", None))
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    if args.stop_after is not None and args.stop_after < 1:
        raise SystemExit(f"error: --stop-after: at least 1, got {args.stop_after}")
    check_run_inputs((args.shards, args.val), tcfg.isr_data, "train.isr_data")
    try:
        with writer_lock(args.out, "model.train"):
            return train(mcfg, tcfg, args.shards, args.out, args.val, stop_after=args.stop_after)
    except OutputFolderError as e:
        raise SystemExit(f"error: {e}") from None


def cli() -> None:
    from common.cli import run

    run(main, parse_args())


if __name__ == "__main__":
    cli()
