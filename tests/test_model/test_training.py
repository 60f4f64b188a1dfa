"""Training and depth distillation end to end on a small dataset built by datagen (CPU, minutes)."""

import csv

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model import distill as distill_mod
from model.train import TrainConfig, load_configs, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """256 samples at 96×96 in 8 shards: shards 0-6 train, shard 7 is held out for validation (~45 s)."""
    import ray

    from datagen.build import main, parse_args

    out = tmp_path_factory.mktemp("ds")
    main(parse_args(["--out", str(out), "--size", "96", "--num-samples", "256", "--samples-per-shard", "32", "--workers", "2",
          "--set", "min_asset_size=96", "--set", "val_samples=0"]))
    ray.shutdown()
    return str(out / "train-{000000..000006}.tar"), str(out / "train-000007.tar")


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_tiny_training_learns_bokeh(shards, tmp_path):
    mcfg, tcfg = load_configs("tiny")
    run = tmp_path / "run"
    last = train(mcfg, tcfg, shards[0], run, val=shards[1], log=lambda *a: None)
    rows = _csv(run / "train_log.csv")
    assert len(rows) == tcfg.total_steps and {r["phase"] for r in rows} == {"isr1", "bokeh", "isr"}
    bokeh = [float(r["l2"]) for r in rows if r["phase"] == "bokeh"]
    # the bokeh loss falls (measured: mean L2 of the first 40 bokeh steps 0.0607, of the last 40 0.0565; batches are
    # random crops, so the per-step loss is noisy and the held-out PSNR below is the sharper measure)
    assert np.mean(bokeh[-40:]) < 0.95 * np.mean(bokeh[:40])
    val = _csv(run / "val.csv")
    assert [int(r["step"]) for r in val] == [100, 200, 300] and all(int(r["n"]) == 32 for r in val)
    # on held-out samples the bokeh output beats the identity baseline (LQ upsampled) and keeps improving.
    # Measured here: 18.52 / 18.80 / 18.94 dB at steps 100 / 200 / 300 vs identity 18.58 dB.
    assert last["psnr_bokeh"] > last["psnr_bokeh_identity"] + 0.2, last
    assert float(val[-1]["psnr_bokeh"]) > float(val[0]["psnr_bokeh"]), val
    for f in ("curves.png", "val_examples_0000300.png", "weights/lora_bokeh.safetensors",
              "weights/controlnet.safetensors", "base/unet/config.json"):
        assert (run / f).is_file(), f
    ckpts = sorted((run / "checkpoints").iterdir())
    assert [c.name for c in ckpts] == ["step-0000200", "step-0000300"]  # keep_checkpoints = 2
    assert not list((run / "checkpoints").glob("*.tmp"))


def test_resumed_run_continues_exactly(shards, tmp_path):
    mcfg, tcfg = load_configs("tiny", ["train.total_steps=10", "train.isr1_steps=3", "train.bokeh_steps=3",
                                       "train.isr_steps=1", "train.prior_fit_steps=4", "train.prior_vae_steps=4", "train.ckpt_every=4",
                                       "train.log_every=5", "train.batch_size=2"])
    quiet = lambda *a: None  # noqa: E731
    perceptual = lambda a, b: (a - b).abs().mean((1, 2, 3))  # noqa: E731  (an injected perceptual distance)
    train(mcfg, tcfg, shards[0], tmp_path / "straight", perceptual=perceptual, log=quiet)
    train(mcfg, tcfg, shards[0], tmp_path / "resumed", perceptual=perceptual, log=quiet, stop_after=6)
    assert not (tmp_path / "resumed" / "weights").exists()
    train(mcfg, tcfg, shards[0], tmp_path / "resumed", perceptual=perceptual, log=quiet)
    for f in ("lora_vae", "lora_sr", "lora_bokeh", "controlnet"):
        a = load_file(str(tmp_path / "straight" / "weights" / f"{f}.safetensors"))
        b = load_file(str(tmp_path / "resumed" / "weights" / f"{f}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
    assert _csv(tmp_path / "straight" / "train_log.csv") == _csv(tmp_path / "resumed" / "train_log.csv")
    with pytest.raises(ValueError, match="different configuration"):
        train(mcfg, TrainConfig(total_steps=11), shards[0], tmp_path / "resumed", perceptual=perceptual, log=quiet)


def test_distillation_lowers_the_students_error_on_degraded_inputs(shards, tmp_path):
    mcfg, dcfg = distill_mod.load_configs("tiny")
    res = distill_mod.distill(mcfg, dcfg, shards[0], shards[1], tmp_path / "depth", log=lambda *a: None)
    before, after = res["before"], res["after"]
    # before distillation the student is the teacher; degradation costs it accuracy. Measured here (held-out AbsRel),
    # on the demo data with depth-mapped backgrounds: teacher clear 0.441, degraded 0.505; student on degraded after
    # 150 steps 0.493 (δ1 0.3928 -> 0.3931). (Before the motorcycle background joined the demo set: 0.478, 0.506,
    # 0.474, δ1 0.360 -> 0.405: the tiny random teacher gains less on scenes with real background depth.)
    assert before["absrel_student_degraded"] == before["absrel_teacher_degraded"]
    assert before["absrel_teacher_degraded"] > before["absrel_teacher_clear"]
    assert after["absrel_student_degraded"] < before["absrel_student_degraded"] - 0.01
    assert after["delta1_student_degraded"] >= before["delta1_student_degraded"] - 0.005
    assert (tmp_path / "depth" / "depth_eval.csv").is_file() and (tmp_path / "depth" / "student").is_dir()


def test_config_errors_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown key 'train.learning_rate'"):
        load_configs("tiny", ["train.learning_rate=1"])
    with pytest.raises(ValueError, match="expected model.KEY"):
        load_configs("tiny", ["lr=1"])
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")
    assert load_configs("tiny", ["train.lr_bokeh=2e-4"])[1].lr_bokeh == 2e-4  # YAML reads 2e-4 as a string
    with pytest.raises(ValueError, match="train.lr_bokeh: expected a number, got 'fast'"):
        load_configs("tiny", ["train.lr_bokeh=fast"])


def test_bf16_with_gradient_checkpointing_trains(shards, tmp_path):
    """The GPU recipe's switches run the same loop (here on the CPU): finite losses, weights written."""
    mcfg, tcfg = load_configs("tiny", ["train.total_steps=4", "train.isr1_steps=1", "train.bokeh_steps=2",
                                       "train.isr_steps=1", "train.prior_fit_steps=2", "train.prior_vae_steps=2",
                                       "train.batch_size=2", "train.precision=bf16", "train.gradient_checkpointing=true",
                                       "train.device=cpu"])
    perceptual = lambda a, b: (a - b).abs().mean((1, 2, 3))  # noqa: E731
    train(mcfg, tcfg, shards[0], tmp_path / "bf16", perceptual=perceptual, log=lambda *a: None)
    rows = _csv(tmp_path / "bf16" / "train_log.csv")
    assert [r["phase"] for r in rows] == ["isr1", "bokeh", "bokeh", "isr"]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert (tmp_path / "bf16" / "weights" / "controlnet.safetensors").is_file()
