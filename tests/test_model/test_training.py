"""Training and depth distillation end to end on a small dataset built by datagen (CPU, minutes)."""

import csv
import json
import logging

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from common.errors import UserError
from model import distill as distill_mod
from model.train import TrainConfig, load_configs, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """256 samples at 96×96 in 8 shards: shards 0-6 train, shard 7 is held out for validation (~45 s)."""
    import ray

    from datagen.build import main, parse_args

    out = tmp_path_factory.mktemp("ds")
    main(
        parse_args(
            [
                "--out",
                str(out),
                "--size",
                "96",
                "--num-samples",
                "256",
                "--samples-per-shard",
                "32",
                "--workers",
                "2",
                "--set",
                "min_asset_size=96",
                "--set",
                "val_samples=0",
            ]
        )
    )
    ray.shutdown()
    return str(out / "train-{000000..000006}.tar"), str(out / "train-000007.tar")


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny_run(shards, tmp_path_factory):
    """The tiny recipe, shortened to the fewest steps its assertions need (every phase, two validations, three
    checkpoints of which two are kept), trained once for every test that reads a finished run. The recipe's
    quality (held-out PSNR against the identity after 300 steps) is measured by benchmarks/bench_training.py."""
    mcfg, tcfg = load_configs(
        "tiny",
        [
            "train.total_steps=9",
            "train.isr1_steps=3",
            "train.bokeh_steps=2",
            "train.isr_steps=1",
            "train.prior_vae_steps=4",
            "train.prior_fit_steps=4",
            "train.val_every=6",
            "train.ckpt_every=3",
            "train.log_every=3",
        ],
    )
    run = tmp_path_factory.mktemp("tiny") / "run"
    last = train(mcfg, tcfg, shards[0], run, val=shards[1])
    return run, tcfg, last


def test_a_tiny_run_writes_every_phase_validation_curves_and_checkpoints(tiny_run):
    run, tcfg, last = tiny_run
    rows = _csv(run / "train_log.csv")
    assert [r["phase"] for r in rows] == [tcfg.phase(s) for s in range(9)]
    assert {r["phase"] for r in rows} == {"isr1", "bokeh", "isr"}
    assert all(r["bad_samples"] == "0" for r in rows)  # damaged samples skipped so far (none in this build)
    val = _csv(run / "val.csv")
    assert [int(r["step"]) for r in val] == [6, 9] and all(int(r["n"]) == 32 for r in val)
    assert last == {k: (int(v) if k in ("step", "n") else float(v)) for k, v in val[-1].items()}
    assert "ssim_y_bokeh" in val[0]  # the evaluation's SSIM (BT.601 Y, Gaussian 11×11), named as such
    for f in (
        "curves.png",
        "val_examples_0000009.png",
        "weights/lora_bokeh.safetensors",
        "weights/controlnet.safetensors",
        "base/unet/config.json",
    ):
        assert (run / f).is_file(), f
    ckpts = sorted((run / "checkpoints").iterdir())
    assert [c.name for c in ckpts] == ["step-0000006", "step-0000009"]  # keep_checkpoints = 2
    assert not list((run / "checkpoints").glob("*.tmp"))


def test_training_steps_lower_the_loss(shards):
    """The bokeh phase's trainable parameters (ControlNet + bokeh LoRA) learn: steps of the trainer's own
    train_step on one fixed batch lower its loss."""
    import itertools

    from model.data import ShardStream, StreamConfig, expand_urls, loader
    from model.distributed import setup
    from model.network import MagicBokeh
    from model.train import build_model, train_step

    mcfg, tcfg = load_configs("tiny", ["train.lr_bokeh=1e-3", "train.batch_size=4"])
    ctx = setup("cpu")
    try:
        torch.manual_seed(0)
        model, _, optimizers = build_model(ctx, mcfg, tcfg, lambda a, b: (a - b).abs().mean((1, 2, 3)))
        assert isinstance(model, MagicBokeh)
        model.set_phase("bokeh")
        model.train()
        scfg = StreamConfig(4, 1, 0, mcfg.k_max, mcfg.focus_radius, 48)
        batch = next(iter(loader(ShardStream(expand_urls(shards[0]), scfg))))
        losses = [
            train_step(
                ctx,
                model,
                optimizers["bokeh"],
                itertools.repeat(batch),
                "bokeh",
                lambda a, b: (a - b).abs().mean((1, 2, 3)),
                tcfg,
            )[0]
            for _ in range(8)
        ]
    finally:
        ctx.close()
    assert losses[-1] < 0.9 * losses[0], losses  # measured: 0.333 -> 0.274 in 8 steps


def _photos(folder):
    from PIL import Image
    from skimage import data as skdata

    folder.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(skdata, name)()).save(folder / f"{name}.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return folder


def _launch(args, nproc, tmp_path, name):
    """``torchrun --nproc_per_node nproc -m ARGS`` (plain ``python -m`` for one process); output in a log file."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    launcher = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(nproc),
            "--master_port",
            str(29500 + os.getpid() % 1000),
        ]
        if nproc > 1
        else [sys.executable]
    )
    log = tmp_path / f"{name}.log"
    with open(log, "w") as f:
        proc = subprocess.run(launcher + ["-m", *args], stdout=f, stderr=subprocess.STDOUT, env=env, timeout=600)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    return text


def test_the_recipe_under_torchrun_matches_one_process(shards, tmp_path):
    """Depth distillation and training on natural photos under ``torchrun --nproc_per_node 2`` (gloo): the two
    ranks end identical; 2 processes × batch 1 × 2 accumulated steps, stopped after a checkpoint and resumed, end
    with the weights of one process with batch 4; only rank 0 writes; the trained weights name the distilled depth
    model and model.infer uses it."""
    photos = _photos(tmp_path / "photos")
    isr = f"distill.isr_data=[{{path: {photos}}}]"
    log = _launch(
        [
            "model.distill",
            "--config",
            "tiny",
            "--shards",
            shards[0],
            "--val",
            shards[1],
            "--out",
            str(tmp_path / "depth"),
            "--set",
            "distill.steps=2",
            "--set",
            "distill.teacher_fit_steps=2",
            "--set",
            "distill.batch_size=2",
            "--set",
            "distill.log_every=1",
            "--set",
            isr,
        ],
        2,
        tmp_path,
        "distill",
    )
    assert "all 2 processes hold identical student weights" in log and "corrupt.jpg" in log
    student = tmp_path / "depth" / "student"
    assert (student / "config.json").is_file()

    common = ["--config", "tiny", "--shards", shards[0], "--depth-weights", str(student)]
    sets = [
        "train.total_steps=6",
        "train.isr1_steps=2",
        "train.bokeh_steps=2",
        "train.isr_steps=1",
        "train.prior_vae_steps=0",
        "train.prior_fit_steps=0",
        "train.ckpt_every=3",
        "train.log_every=1",
        f"train.isr_data=[{{path: {photos}}}]",
        "train.redegrade=true",
    ]
    mcfg, tcfg = load_configs("tiny", sets + ["train.batch_size=4"])
    from model.train import resolve_depth

    train(resolve_depth(mcfg, student), tcfg, shards[0], tmp_path / "one")  # plain, in-process
    ddp = (
        common
        + ["--out", str(tmp_path / "two")]
        + [a for s in sets + ["train.batch_size=1", "train.grad_accum=2"] for a in ("--set", s)]
    )
    first = _launch(["model.train", *ddp, "--stop-after", "3"], 2, tmp_path, "two_a")
    assert "1 per process × 2 accumulated × 2 processes = 4 per step" in first
    assert not (tmp_path / "two" / "weights").exists() and (tmp_path / "two" / "checkpoints" / "step-0000003").is_dir()
    second = _launch(["model.train", *ddp], 2, tmp_path, "two_b")
    assert "resuming from" in second and "all 2 processes hold identical weights" in second
    for f in ("lora_vae", "lora_sr", "lora_bokeh", "controlnet"):
        a = load_file(str(tmp_path / "one" / "weights" / f"{f}.safetensors"))
        b = load_file(str(tmp_path / "two" / "weights" / f"{f}.safetensors"))
        assert a.keys() == b.keys(), f
        close = sum(int(torch.isclose(a[k], b[k], atol=1e-4).sum()) for k in a) / sum(a[k].numel() for k in a)
        # Adam divides each step by the gradient's running RMS: where a gradient is ~0 (the ControlNet's
        # zero-initialised convolutions), the float-order difference between one batch of 4 and 2 × 2 accumulated
        # over gloo can flip a step of size lr; the 3 bokeh steps at lr 2e-4 bound that by 2·3·lr = 1.2e-3 (measured
        # 4.2e-4 at most, 99.9 % of its weights within 1e-4, on this round's renders). All else agrees to 1e-4.
        flip = 2 * 3 * 2e-4 if f == "controlnet" else 1e-4
        assert close >= 0.99 and all(torch.allclose(a[k], b[k], atol=flip) for k in a), (f, close)
    rows = _csv(tmp_path / "two" / "train_log.csv")  # rank 0 alone appends: each step once
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6] and {r["global_batch"] for r in rows} == {"4"}
    assert [r["phase"] for r in rows] == [r["phase"] for r in _csv(tmp_path / "one" / "train_log.csv")]
    # the distilled student is the depth model the trained weights name, and inference uses it
    import yaml

    recorded = yaml.safe_load((tmp_path / "two" / "weights" / "model.yaml").read_text())["model"]["depth"]
    assert recorded == str(student.resolve())
    from PIL import Image
    from skimage import data as skdata

    from model.infer import main as infer_main
    from model.infer import parse_args as infer_args

    Image.fromarray(skdata.coffee()[::4, ::4]).save(tmp_path / "in.png")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        infer_main(
            infer_args(
                [
                    "--image",
                    str(tmp_path / "in.png"),
                    "--out",
                    str(tmp_path / "b.png"),
                    "--focus",
                    "40,40",
                    "--K",
                    "8",
                    "--weights",
                    str(tmp_path / "two" / "weights"),
                ]
            )
        )
    assert f"depth: {student.resolve()} (the model config)" in out.getvalue()


def test_distillation_moves_the_student_on_degraded_inputs_toward_the_teacher_on_clear_ones(shards, tmp_path):
    """What distillation optimises: the student on the LQ image imitates the teacher on the clear one. On held-out
    samples the gap between the two falls (0.0825 -> 0.0771), and the student's AbsRel on degraded inputs moves
    toward the teacher's on clear inputs. The teacher is the tiny network fitted by model.distill's own 1200-step
    fit, kept in tests/data/tiny_depth_teacher (tests/data/make_tiny_depth_teacher.py; it gives the AbsRel the
    in-test fit gave, 0.509 clear and 0.494 degraded), so the test does not spend ~100 s fitting it; the fit runs
    in the torchrun test. Whether that teacher does better on clear or on degraded inputs depends on the library
    versions that fitted it (earlier releases gave 0.478 and 0.494), so neither direction is asserted."""
    import re
    from pathlib import Path

    teacher = Path(__file__).resolve().parents[1] / "data" / "tiny_depth_teacher"
    mcfg, dcfg = distill_mod.load_configs(
        "tiny", ["distill.log_every=10", f"model.depth={teacher}", "distill.teacher_fit_steps=0"]
    )
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("model").addHandler(handler)
    try:
        res = distill_mod.distill(mcfg, dcfg, shards[0], shards[1], tmp_path / "depth")
    finally:
        logging.getLogger("model").removeHandler(handler)
    before, after = res["before"], res["after"]
    assert before["absrel_student_degraded"] == before["absrel_teacher_degraded"]  # the student starts as the teacher
    losses = [
        float(m.group(1)) + float(m.group(2))
        for m in (re.search(r"features ([0-9.]+), output ([0-9.]+)", line) for line in lines)
        if m
    ]
    assert len(losses) >= 5 and np.isfinite(losses).all(), losses
    # on held-out samples, what the output term minimises falls (the training batches' losses vary 2.3-3.6 from
    # batch to batch: too noisy to compare a few of them), and the AbsRel moves toward the goal
    assert after["gap"] < 0.97 * before["gap"], (before["gap"], after["gap"])
    goal = before["absrel_teacher_clear"]
    assert abs(after["absrel_student_degraded"] - goal) < 0.5 * abs(before["absrel_student_degraded"] - goal)


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
    with pytest.raises(ValueError, match="^--set train.lr_bokeh=fast: train.lr_bokeh: expected a number, got 'fast'"):
        load_configs("tiny", ["train.lr_bokeh=fast"])  # names --set, not tiny.yaml (which holds a good value)


def test_bf16_with_gradient_checkpointing_trains(shards, tmp_path):
    """The GPU recipe's switches run the same loop (here on the CPU): finite losses, weights written."""
    mcfg, tcfg = load_configs(
        "tiny",
        [
            "train.total_steps=4",
            "train.isr1_steps=1",
            "train.bokeh_steps=2",
            "train.isr_steps=1",
            "train.prior_fit_steps=2",
            "train.prior_vae_steps=2",
            "train.batch_size=2",
            "train.precision=bf16",
            "train.gradient_checkpointing=true",
            "train.device=cpu",
        ],
    )
    perceptual = lambda a, b: (a - b).abs().mean((1, 2, 3))  # noqa: E731
    train(mcfg, tcfg, shards[0], tmp_path / "bf16", perceptual=perceptual)
    rows = _csv(tmp_path / "bf16" / "train_log.csv")
    assert [r["phase"] for r in rows] == ["isr1", "bokeh", "bokeh", "isr"]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert (tmp_path / "bf16" / "weights" / "controlnet.safetensors").is_file()


def test_a_run_folder_that_is_not_this_runs_is_refused_before_any_work(shards, tmp_path, monkeypatch):
    """model.train once wrote weights/model.yaml and curves.png over a user's, appended to their train_log.csv,
    then crashed at the end (KeyError 'phase') on every rerun; another config was refused with a traceback."""
    import dataclasses

    import model.network
    from model.train import main, parse_args

    monkeypatch.setattr(model.network.MagicBokeh, "__init__", lambda *a, **k: pytest.fail("model built"))
    train_shards, val_shards = shards
    user = tmp_path / "user"
    (user / "weights").mkdir(parents=True)
    (user / "weights" / "model.yaml").write_text("mine")
    (user / "train_log.csv").write_text("epoch,acc\n1,0.5\n")
    (user / "curves.png").write_bytes(b"my plot")
    argv = ["--config", "tiny", "--shards", train_shards, "--val", val_shards]
    with pytest.raises(
        SystemExit,
        match=r"user: refused, the folder holds files that model.train did not write "
        r"\(curves.png, train_log.csv, weights/model.yaml\)",
    ):
        main(parse_args(argv + ["--out", str(user)]))
    assert (user / "train_log.csv").read_text() == "epoch,acc\n1,0.5\n" and not (user / ".bokehgen.json").exists()
    # a run of another config: one line naming the keys that differ
    mcfg, tcfg = load_configs("tiny")
    other = tmp_path / "other"
    other.mkdir()
    (other / ".bokehgen.json").write_text('{"command": "model.train"}')
    (other / "config.json").write_text(
        json.dumps(
            {"model": mcfg.to_dict(), "train": dataclasses.asdict(dataclasses.replace(tcfg, seed=7, lr_bokeh=1e-3))}
        )
    )
    with pytest.raises(
        SystemExit,
        match=r"holds a run of another configuration \(train.lr_bokeh: 0.001 there, "
        r".* now; train.seed: 7 there, 0 now\)",
    ):
        main(parse_args(argv + ["--out", str(other)]))
    # shards that do not exist (a brace range past the last shard) are named before anything is built
    missing = train_shards.replace("000006}", "000009}")
    with pytest.raises(UserError, match=r"train-000008.tar: no such shard file \(2 of the 10"):
        main(parse_args(["--config", "tiny", "--shards", missing, "--out", str(tmp_path / "x")]))
    assert not (tmp_path / "x").exists()
