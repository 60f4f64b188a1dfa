"""The Ray build, end to end on a local Ray: deterministic bytes, resume, config guard, readable shards."""

import json

import numpy as np
import pytest

from common.errors import UserError
from datagen.build import main, parse_args
from datagen.shards import decode_disp

ARGS = [
    "--size",
    "96",
    "--num-samples",
    "4",
    "--samples-per-shard",
    "2",
    "--set",
    "min_asset_size=96",
    "--set",
    "val_samples=0",
]


def _bytes(folder):
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.glob("*"))
        if p.suffix in (".tar", ".parquet") and p.name != "assets.parquet"
    }


@pytest.mark.slow
def test_build_is_deterministic_resumable_and_guarded(tmp_path, local_ray):
    a, b = tmp_path / "a", tmp_path / "b"
    summary = main(parse_args(ARGS + ["--out", str(a)]))
    assert summary["samples"] == 4 and summary["shards"] == ["train-000000.tar", "train-000001.tar"]
    main(parse_args(ARGS + ["--out", str(b)]))
    first = _bytes(a)
    assert first == _bytes(b)  # same config and seed ⇒ the same bytes
    # a lost shard (and its manifest) is rebuilt identically; complete shards are skipped
    (a / "train-000001.tar").unlink()
    (a / "train-000001.parquet").unlink()
    (a / ".train-000001.tar.tmp-999").write_bytes(b"half a shard from a killed run")
    mtime = (a / "train-000000.tar").stat().st_mtime_ns
    main(parse_args(ARGS + ["--out", str(a)]))
    assert _bytes(a) == first and (a / "train-000000.tar").stat().st_mtime_ns == mtime
    assert not list(a.glob(".*.tmp-*"))
    # another config in the same folder is refused
    with pytest.raises(SystemExit, match="another config"):
        main(parse_args(ARGS[:-2] + ["--set", "val_samples=1", "--out", str(a)]))
    assert json.loads((a / "dataset.json").read_text())["complete"]
    # report and stats
    from manifests import stats

    st = stats(a)
    assert st["samples"] == 4 and st["splits"] == {"train": 4} and len(st["shards"]) == 2
    assert 0.0 <= st["columns"]["K"]["min"] <= st["columns"]["K"]["max"] <= 32.0
    page = (a / "report.html").read_text()
    assert page.count("data:image/png;base64") >= 10 and "train-000001.tar" in page
    # manifests.verify: intact, then a corrupted member is named
    from manifests import verify

    assert verify(a) == []
    data = bytearray((a / "train-000000.tar").read_bytes())
    data[4096] ^= 0xFF  # inside the first member's bytes (after its PAX and tar headers)
    (a / "train-000000.tar").write_bytes(bytes(data))
    problems = verify(a)
    assert problems and "train-000000.tar" in problems[0] and "checksum" in problems[0]
    # a resumed build checks every complete shard against its manifest: the altered one and one truncated
    # mid-member are rebuilt, not counted as done
    cut = (a / "train-000001.tar").read_bytes()
    (a / "train-000001.tar").write_bytes(cut[: len(cut) // 2])
    main(parse_args(ARGS + ["--out", str(a)]))
    assert _bytes(a) == first and verify(a) == [] and json.loads((a / "dataset.json").read_text())["complete"]
    # --overwrite on a build's own folder starts over (every file is the build's) and gives the same bytes
    (a / "preview.png").unlink()
    main(parse_args(ARGS + ["--out", str(a), "--overwrite"]))
    assert _bytes(a) == first and (a / "preview.png").exists()


@pytest.mark.slow
def test_shards_read_back_with_webdataset_at_full_precision(tmp_path, local_ray):
    import pyarrow.parquet as pq
    import webdataset as wds

    out = tmp_path / "ds"
    main(parse_args(ARGS + ["--out", str(out)]))
    samples = list(wds.WebDataset(sorted(str(p) for p in out.glob("*.tar")), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["000000_000000", "000000_000001", "000001_000002", "000001_000003"]
    manifest = pq.read_table(out / "samples.parquet").to_pylist()
    import hashlib

    for s, row in zip(samples, manifest):
        assert row["key"] == s["__key__"]
        assert hashlib.sha256(s["bokeh.png"]).hexdigest() == row["bokeh_png_sha256"]
        disp = decode_disp(s["disp.npy"])
        assert disp.dtype == np.float32 and disp.shape == (96, 96)
        meta = json.loads(s["json"])
        assert meta["scene"]["index"] == int(s["__key__"][-6:])
        assert len(np.unique(disp)) > 256  # not squashed to 8 bits
    # the two other readers yield the same samples, byte for byte
    import ray
    import wids

    ref = {s["__key__"]: {k: s[k] for k in ("aif.png", "bokeh.png", "lq.png", "disp.npy", "json")} for s in samples}
    w = wids.ShardListDataset(str(out / "train.wids.json"), transformations=[])
    got = {w[i]["__key__"]: {k[1:]: w[i][k].getvalue() for k in w[i] if k.startswith(".")} for i in range(len(w))}
    assert got == ref
    rows = ray.data.read_webdataset(sorted(str(p) for p in out.glob("*.tar")), decoder=None).take_all()
    got = {r["__key__"]: {k: r[k] for k in ref["000000_000000"]} for r in rows}
    assert got == ref


@pytest.mark.slow
def test_changed_asset_folder_is_refused_on_resume(tmp_path, local_ray):
    import shutil

    from datagen.demo_assets import make_demo_assets

    demo = make_demo_assets(tmp_path / "demo")
    fg, bg = tmp_path / "fg", tmp_path / "bg"
    shutil.copytree(demo / "fg", fg)
    shutil.copytree(demo / "bg", bg)
    args = ARGS + ["--assets", f"generic:{fg}", "--assets", f"backgrounds:{bg}", "--out", str(tmp_path / "ds")]
    main(parse_args(args))
    shutil.copy(demo / "bg" / "rocket.png", bg / "rocket_copy_flipped.png")
    from PIL import Image

    Image.open(bg / "rocket_copy_flipped.png").transpose(Image.FLIP_LEFT_RIGHT).save(bg / "rocket_copy_flipped.png")
    with pytest.raises(SystemExit, match="other assets"):
        main(parse_args(args))


@pytest.mark.slow
def test_driver_killed_mid_build_then_rerun_gives_the_same_bytes(tmp_path, local_ray):
    """The real CLI's driver killed (SIGKILL, the driver alone, as a crash or the OOM killer does) once some shards
    are complete: the rerun stops what the driver's private Ray left running (its agents outlive it), says so,
    finishes the rest and matches a clean build byte for byte."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import psutil

    repo = Path(__file__).resolve().parents[2]
    killed = tmp_path / "killed"
    args = [
        "--size",
        "96",
        "--num-samples",
        "6",
        "--samples-per-shard",
        "1",
        "--set",
        "min_asset_size=96",
        "--set",
        "val_samples=0",
    ]
    cmd = [
        sys.executable,
        str(repo / "datagen" / "build.py"),
        "--out",
        str(killed),
        "--address",
        "local",
        "--workers",
        "1",
    ] + args
    env = dict(os.environ, BOKEHGEN_RUN_DIR=str(tmp_path))  # where a private Ray's processes are recorded
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    t0 = time.time()
    while time.time() - t0 < 180 and len(list(killed.glob("train-*.parquet"))) < 2 and proc.poll() is None:
        time.sleep(0.2)
    record = json.loads((tmp_path / f"bokehgen-ray-{os.getuid()}" / f"{proc.pid}.json").read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(list(killed.glob("train-*.parquet"))) < 6, "the build must be interrupted midway"
    time.sleep(1.0)
    procs = [psutil.Process(pid) for pid, _, _ in record["processes"] if psutil.pid_exists(pid)]
    left = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left, "Ray's agents outlive a killed driver: the rerun has something to stop"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"of a private Ray instance left by a killed run (driver pid {proc.pid}" in rerun.stderr
    assert not [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    try:  # anything else of the killed run's process group (its workers) has ended too
        os.killpg(proc.pid, 0)
        group_left = [p.info for p in psutil.process_iter(["pid", "name"]) if os.getpgid(p.pid) == proc.pid]
    except (ProcessLookupError, psutil.Error, OSError):
        group_left = []
    assert not group_left, group_left
    clean = tmp_path / "clean"
    main(parse_args(args + ["--out", str(clean)]))
    assert _bytes(killed) == _bytes(clean)


@pytest.fixture(scope="module")
def s3_bucket():
    """A local S3 endpoint (moto's server) with one bucket; yields the bucket's pyarrow.fs URI builder."""
    from conftest import moto_s3

    with moto_s3("bokeh") as (uri, _):
        yield uri


@pytest.mark.slow
def test_build_to_object_storage_gives_the_same_bytes(tmp_path, local_ray, s3_bucket):
    """--out as a pyarrow.fs URI (S3 here): the same objects, byte for byte, as a build on a local disk; verify,
    stats and resume work on the URI."""
    from manifests import Store, stats, verify

    uri = s3_bucket("ds")
    summary = main(parse_args(ARGS + ["--out", uri]))
    local = tmp_path / "local"
    main(parse_args(ARGS + ["--out", str(local)]))
    remote = Store(uri)
    assert summary["shards"] == ["train-000000.tar", "train-000001.tar"]
    names = [n for n in remote.names() if n.endswith((".tar", ".parquet")) and n != "assets.parquet"]
    assert {n: remote.read_bytes(n) for n in names} == _bytes(local)
    assert {"report.html", "preview.png", "dataset.json", "train.wids.json"} <= set(remote.names())
    assert remote.names(".*") == [".bokehgen.json"]  # the marker, and no temporary objects left
    assert verify(uri) == [] and stats(uri)["samples"] == 4
    # a lost shard is rebuilt on the rerun, the same bytes
    first = remote.read_bytes("train-000001.tar")
    remote.delete("train-000001.tar")
    remote.delete("train-000001.parquet")
    main(parse_args(ARGS + ["--out", uri]))
    assert remote.read_bytes("train-000001.tar") == first and verify(uri) == []


def test_render_settings_are_checked_when_the_config_loads():
    from datagen.build import BuildConfig

    assert BuildConfig.load(None, ["render={cell_px: 8}"]).render == {"cell_px": 8}
    with pytest.raises(ValueError, match=r"render: .*cel_px.*known: .*cell_px"):
        BuildConfig.load(None, ["render={cel_px: 8}"])
    with pytest.raises(ValueError, match="edge_px"):
        BuildConfig.load(None, ["render={edge_px: -1}"])
    with pytest.raises(ValueError, match="png_compress_level"):
        BuildConfig.load(None, ["png_compress_level=12"])


def test_size_is_a_square_or_width_by_height():
    """size: an int is a square; [W, H] any aspect (--size WxH on the command line); [S, S] is the square S, with
    the square's hash (so its dataset is the same); a camera's sensor width maps to W."""
    from datagen.config import parse_size

    assert BuildConfig_load(["size=[1536, 1024]"]).frame == (1536, 1024)
    assert parse_size("1536x1024") == [1536, 1024] and parse_size("512") == 512 and parse_size("96×128") == [96, 128]
    with pytest.raises(ValueError, match="--size: an int"):
        parse_size("1536x")
    square = BuildConfig_load(["size=[512, 512]"])
    assert square.size == 512 and square.digest() == BuildConfig_load(["size=512"]).digest()
    args = parse_args(["--out", "x", "--size", "1536x1024"])
    assert args.size == [1536, 1024]
    cam = ["camera.target=fullframe_85mm_f1.4", "camera.input=pinhole"]
    wide, tall = BuildConfig_load(cam + ["size=[2048, 1364]"]), BuildConfig_load(cam + ["size=[1364, 2048]"])
    assert wide.max_k() == pytest.approx(tall.max_k() * 2048 / 1364)  # K ∝ pixels across the sensor's width


def test_bad_values_fail_before_anything_is_written_or_ray_starts(tmp_path, monkeypatch):
    """Each of these once passed the check and failed ~10 s later inside a Ray task, leaving a locked folder."""
    import datagen.build

    monkeypatch.setattr(datagen.build, "connect_ray", lambda *a: pytest.fail("Ray started before the checks"))
    out = tmp_path / "never"
    for flags, message in (
        (["--set", "seed=abc"], "seed: expected an integer, got 'abc'"),
        (["--set", "val_fraction=2"], r"val_fraction: in \[0, 1\), got 2.0"),
        (["--set", "k_range=[10,5]"], "k_range: \\[low, high\\] with 0 <= low <= high"),
        (["--set", "k_range=[0,600]"], "upper end 600 exceeds the renderer's largest blur radius 512 px"),
        (["--size", "96", "--set", "k_range=[0,400]"], "400 exceeds the renderer's largest blur radius at size 96"),
        (["--size", "100000"], "size: each side a multiple of 4 in"),
        (["--size", "1536x1022"], r"size: each side a multiple of 4 in .*got \[1536, 1022\]"),
        (["--set", "size=[512, 384, 3]"], r"size: an int \(a square\) or \[W, H\]"),
        (["--num-samples", "0"], "num_samples: at least 1"),
        (["--assets", "/data/fg"], "assets\\[0\\]: expected LAYOUT:PATH"),
        (["--set", "seed=-1"], "seed: expected an integer in \\[0, 2\\*\\*63\\)"),
    ):
        with pytest.raises(SystemExit, match=message):
            main(parse_args(["--out", str(out), *flags]))
    assert BuildConfig_load(["val_fraction=5e-2"]).val_fraction == 0.05  # YAML's string "5e-2" is a number
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: [1,\n")
    with pytest.raises(SystemExit, match="broken.yaml: invalid YAML"):
        main(parse_args(["--config", str(broken), "--out", str(out)]))
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(SystemExit, match="a_file: is a file"):
        main(parse_args(["--out", str(tmp_path / "a_file")]))
    assert not out.exists()


def BuildConfig_load(overrides):
    from datagen.build import BuildConfig

    return BuildConfig.load(None, overrides)


def test_overwrite_removes_only_what_a_build_wrote(tmp_path, monkeypatch):
    """--overwrite into a folder of someone's files is refused, naming them, before anything is deleted."""
    import datagen.build

    monkeypatch.setattr(datagen.build, "connect_ray", lambda *a: pytest.fail("Ray started before the checks"))
    home = tmp_path / "thesis"
    (home / "figures").mkdir(parents=True)
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(SystemExit, match=r"holds files that datagen.build did not write \(figures/, thesis.tex\)"):
        main(parse_args(["--out", str(home), "--overwrite"]))
    assert (home / "thesis.tex").read_text() == "years of work" and (home / "figures").is_dir()
    # a dataset folder with a stranger inside: refused too, and the dataset is left as it was
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "dataset.json").write_text(json.dumps({"config_hash": "x", "complete": True}))
    (ds / "train-000000.tar").write_bytes(b"old shard")
    (ds / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match=r"did not write \(notes.txt\)"):
        main(parse_args(["--out", str(ds), "--overwrite"]))
    assert sorted(p.name for p in ds.iterdir()) == ["dataset.json", "notes.txt", "train-000000.tar"]


@pytest.mark.slow
def test_built_folder_is_a_dataset_the_hubs_read(tmp_path, local_ray):
    """The folder's README.md card makes `datasets.load_dataset(DIR)` read the shards as they are; every JSON the
    build wrote is strict (a parser that refuses NaN/Infinity accepts it); a 16-bit build keeps 16 bits."""
    import datasets
    import numpy as np

    from common.images import decode_png

    out = tmp_path / "hub"
    # the default build's 16 samples (seed 0), smaller: their degradation draws mix null (not drawn) and numbers
    # within a key, which once broke the webdataset builder's schema inference on the first 5 samples
    main(
        parse_args(
            ARGS
            + [
                "--num-samples",
                "16",
                "--samples-per-shard",
                "8",
                "--out",
                str(out),
                "--set",
                "bit_depth=16",
                "--set",
                "license=cc0-1.0",
            ]
        )
    )
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: cc0-1.0\n") and "size_categories:\n- n<1K" in card
    assert "dataset_info:\n  features:\n" in card
    import webdataset as wds

    draws = [
        json.loads(s["json"])["degradation"]
        for s in wds.WebDataset(str(out / "train-{000000..000001}.tar"), shardshuffle=False)
    ]
    mixed = [k for k in draws[0] if all(d[k] is None for d in draws[:5]) and any(d[k] is not None for d in draws)]
    assert mixed, "the build no longer mixes null and numbers: the test lost its point"
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf_cache"))  # datasets caches by folder name
    assert ds["train"].num_rows == 16 and {"aif.png", "bokeh.png", "lq.png", "disp.npy", "json"} <= set(
        ds["train"].column_names
    )
    late = next(i for i, d in enumerate(draws) if d[mixed[0]] is not None)
    assert ds["train"][late]["json"]["degradation"][mixed[0]] == draws[late][mixed[0]]
    assert ds["train"][0]["json"]["degradation"][mixed[0]] is None

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))

    for path in [out / "dataset.json", out / "build_log.json", out / "train.wids.json"]:
        strict(path.read_text())
    import tarfile

    with tarfile.open(out / "train-000000.tar") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}
    for name, data in members.items():
        if name.endswith(".json"):
            strict(data.decode())
    aif = decode_png(next(v for k, v in members.items() if k.endswith("aif.png")))
    lq = decode_png(next(v for k, v in members.items() if k.endswith("lq.png")))
    assert aif.dtype == np.uint16 and lq.dtype == np.uint8
    assert len(np.unique(aif)) > 256  # more levels than 8 bits hold


@pytest.mark.slow
def test_yaml_with_scene_degradation_and_highlights_sections_builds(tmp_path, local_ray):
    """The scene distribution, the degradation and the highlights are configuration: a YAML with all three
    sections builds, and the manifest shows each setting took effect."""
    import pyarrow.parquet as pq

    cfg = tmp_path / "build.yaml"
    cfg.write_text("""
size: 96
min_asset_size: 96
num_samples: 6
samples_per_shard: 3
val_samples: 0
scene:
  k_range: [4, 8]
  num_foregrounds: 1
  focus_probs: [0.0, 1.0]
  bg_map_prob: 1.0
degradation: {preset: s3diff, jpeg_range: [60, 61]}
highlights: {prob: 1.0, gain: 6.0}
""")
    out = tmp_path / "sections"
    summary = main(parse_args(["--config", str(cfg), "--out", str(out)]))
    assert summary["samples"] == 6 and summary["config"]["scene"]["num_foregrounds"] == 1
    t = pq.read_table(out / "samples.parquet").to_pylist()
    assert all(4 <= r["K"] <= 8 and r["focus_target"] == "background" and r["highlights"] for r in t)
    assert all(60 <= r["deg_stage1_jpeg_quality"] <= 61 for r in t)
    assert not any(k.startswith("fg1_") for k in t[0])
    # the demo's motorcycle is the one background with a disparity map: every scene on it uses the map
    motorcycle = {a["id"] for a in pq.read_table(out / "assets.parquet").to_pylist() if a["disp_uri"]}
    assert {r["bg_model"] for r in t if r["background_id"] in motorcycle} <= {"map"}
    assert all(r["bg_model"] == "plane" for r in t if r["background_id"] not in motorcycle)
    html = (out / "report.html").read_text()
    assert "Configured vs realised" in html


def test_default_demo_build_draws_depth_mapped_backgrounds():
    """The bundled default (16 scenes, seed 0) puts some scenes on the motorcycle with its real disparity."""
    from datagen.assets import usable
    from datagen.build import BuildConfig, scan_assets
    from datagen.scenes import draw_scene

    cfg = BuildConfig()
    rows = scan_assets(cfg, progress=False)
    fgs, bgs = usable(rows, "foreground", "train"), usable(rows, "background", "train")
    assert any(b.disp_uri.endswith("motorcycle_disp.npy") for b in bgs)
    models = [draw_scene(cfg.seed, i, fgs, bgs, cfg.scene, size=cfg.size).bg_model for i in range(cfg.num_samples)]
    assert "map" in models and "plane" in models


def test_where_the_build_runs_is_decided_before_ray_starts(tmp_path, monkeypatch):
    """Ray's address file (RAY_TMPDIR honoured) makes the build join that cluster; a stale one (nothing answers)
    falls back to a private instance with a note; an unreachable explicit address is refused at once."""
    import socket

    import ray

    import datagen.distributor as build

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setattr(build, "cluster_size", lambda: "N nodes")
    monkeypatch.setattr(ray, "get_runtime_context", lambda: type("C", (), {"gcs_address": "x"})())
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    (tmp_path / "ray").mkdir()
    with socket.socket() as server:  # something that answers, standing in for a GCS
        server.bind(("127.0.0.1", 0))
        server.listen()
        live = f"127.0.0.1:{server.getsockname()[1]}"
        (tmp_path / "ray" / "ray_current_cluster").write_text(live)
        assert build.connect_ray(None, None)["mode"] == "cluster" and calls[-1]["address"] == live
        with pytest.raises(UserError, match="--workers 3: only sizes a private local instance"):
            build.connect_ray(None, 3)
        assert build.connect_ray("local", 3)["mode"] == "local" and calls[-1]["num_cpus"] == 3
    (tmp_path / "ray" / "ray_current_cluster").write_text(live)  # the server is gone: a stale file
    assert build.connect_ray(None, None)["mode"] == "local" and calls[-1]["address"] == "local"
    with pytest.raises(UserError, match=f"cannot reach the Ray cluster at {live}"):
        build.connect_ray(live, None)


def test_a_folder_of_the_users_files_is_refused_without_overwrite_and_left_as_it_was(tmp_path, monkeypatch):
    """Once a build without --overwrite wrote over README.md, report.html and train-000000.tar of any folder."""
    import datagen.build

    monkeypatch.setattr(datagen.build, "connect_ray", lambda *a: pytest.fail("Ray started before the checks"))
    home = tmp_path / "u"
    home.mkdir()
    (home / "README.md").write_text("mine")
    (home / "train-000000.tar").write_bytes(b"my own shard")
    with pytest.raises(
        SystemExit,
        match=r"u: refused, the folder holds files that datagen.build did not write "
        r"\(README.md, train-000000.tar\)",
    ):
        main(parse_args(ARGS + ["--out", str(home)]))
    assert (home / "README.md").read_text() == "mine" and sorted(p.name for p in home.iterdir()) == [
        "README.md",
        "train-000000.tar",
    ]
    # another command's folder, and an output inside an asset folder, are refused the same way
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".bokehgen.json").write_text('{"command": "model.train"}')
    with pytest.raises(SystemExit, match="holds the output of model.train, not of datagen.build"):
        main(parse_args(ARGS + ["--out", str(tmp_path / "run")]))
    (tmp_path / "bg").mkdir()
    with pytest.raises(SystemExit, match="lies inside the input"):
        main(parse_args(ARGS + ["--assets", f"backgrounds:{tmp_path / 'bg'}", "--out", str(tmp_path / "bg" / "ds")]))


def test_asset_folders_and_a_writable_out_are_checked_before_ray_starts(tmp_path, monkeypatch):
    import os

    import datagen.build

    monkeypatch.setattr(datagen.build, "connect_ray", lambda *a: pytest.fail("Ray started before the checks"))
    (tmp_path / "FILE").write_text("x")
    with pytest.raises(SystemExit, match=r"--assets generic:.*FILE: .*FILE: is a file; give the folder"):
        main(parse_args(ARGS + ["--assets", f"generic:{tmp_path / 'FILE'}", "--out", str(tmp_path / "o")]))
    with pytest.raises(SystemExit, match="--assets generic:.*: no such folder"):
        main(parse_args(ARGS + ["--assets", f"generic:{tmp_path / 'nope'}", "--out", str(tmp_path / "o")]))
    (tmp_path / "aim").mkdir()  # an empty aim500 folder: which subfolders were expected
    with pytest.raises(
        SystemExit,
        match=r"the aim500 layout expects the subfolders original/ \(images\) and "
        r"mask/ \(mattes\); missing: original/, mask/",
    ):
        main(parse_args(ARGS + ["--assets", f"aim500:{tmp_path / 'aim'}", "--out", str(tmp_path / "o")]))
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != str(ro))  # root writes anywhere: pretend
    if True:
        with pytest.raises(SystemExit, match="ds: cannot write there"):
            main(parse_args(ARGS + ["--out", str(ro / "ds")]))


def test_conflicting_and_duplicate_config_values_are_refused():
    from datagen.build import BuildConfig

    with pytest.raises(ValueError, match="k_range and scene.k_range are both given"):
        BuildConfig.load(None, ["k_range=[0,4]", "scene.k_range=[10,20]"])
    with pytest.raises(ValueError, match="license: .*empty string"):
        BuildConfig.load(None, ['license=""'])
    with pytest.raises(ValueError, match=r"^--set seed=abc: seed: expected an integer"):
        BuildConfig.load(None, ["seed=abc"])


def test_duplicate_yaml_keys_are_refused_naming_the_key_and_the_line(tmp_path):
    from datagen.build import BuildConfig

    cfg = tmp_path / "dup.yaml"
    cfg.write_text("seed: 1\nscene:\n  k_range: [0, 8]\n  k_range: [0, 16]\n")
    with pytest.raises(
        ValueError,
        match=r"dup.yaml: invalid YAML \(line 4, column 3\): duplicate key 'k_range' "
        r"\(first on line 3, again on line 4\)",
    ) as e:
        BuildConfig.load(cfg, [])
    assert "\n" not in str(e.value)


def test_a_full_disk_ends_the_build_in_one_line_and_the_rerun_resumes(tmp_path, local_ray, monkeypatch, capsys):
    """The disk filled up while the report was written (after every shard): one line naming the file, then the
    same command finishes the folder."""
    import errno

    from common.cli import run
    from manifests import Store

    real = Store.write_bytes

    def full(self, name, data):
        if name == "report.html":
            raise OSError(errno.ENOSPC, "No space left on device", self.path(name))
        return real(self, name, data)

    out = tmp_path / "ds"
    monkeypatch.setattr(Store, "write_bytes", full)
    with pytest.raises(SystemExit) as e:
        run(main, parse_args(ARGS + ["--out", str(out)]))
    assert str(e.value).startswith(f"error: {out}/report.html: No space left on device: the disk is full")
    assert "\n" not in str(e.value)
    monkeypatch.setattr(Store, "write_bytes", real)
    mtime = (out / "train-000000.tar").stat().st_mtime_ns
    summary = main(parse_args(ARGS + ["--out", str(out)]))
    assert summary["samples"] == 4 and (out / "report.html").is_file()
    assert (out / "train-000000.tar").stat().st_mtime_ns == mtime  # resumed: the shards were not built again


@pytest.mark.slow
def test_ctrl_c_says_the_same_command_resumes_and_it_does(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "datagen" / "build.py"
    argv = [sys.executable, str(script), "--out", str(tmp_path / "ds"), "--workers", "2", *ARGS, "--num-samples", "8"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    while "shards," not in seen:  # the first shard is done: interrupt mid-build
        c = proc.stdout.read(1)
        assert c, "the build ended before it showed progress"
        seen += c
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.rstrip().endswith("interrupted; the same command resumes"), err
    assert "Traceback" not in err
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "wrote 8 samples in 4 shards" in done.stdout, done.stderr[-2000:]


@pytest.mark.slow
def test_two_builds_started_together_into_one_folder_one_writes_the_other_is_refused(tmp_path):
    """Seeds 1 and 2 into the same --out at once: exactly one builds (exit 0), the other is refused in one line
    naming the holder; the folder is the winner's build, whole, and verify passes."""
    import subprocess
    import sys
    from pathlib import Path

    from manifests import verify

    script = Path(__file__).parents[2] / "datagen" / "build.py"
    out = tmp_path / "ds"
    procs = {
        seed: subprocess.Popen(
            [
                sys.executable,
                str(script),
                "--out",
                str(out),
                "--address",
                "local",
                "--workers",
                "1",
                *ARGS,
                "--seed",
                str(seed),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    }
    done = {seed: (p.wait(timeout=600), *p.communicate()) for seed, p in procs.items()}
    winners = [s for s, (rc, _, _) in done.items() if rc == 0]
    assert len(winners) == 1, {s: (rc, err[-600:]) for s, (rc, _, err) in done.items()}
    loser = 3 - winners[0]
    rc, _, err = done[loser]
    assert rc != 0 and "Traceback" not in err, err
    assert "another run writes this folder (datagen.build on" in err.strip().splitlines()[-1], err
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["complete"] and meta["config"]["seed"] == winners[0]
    assert verify(out) == []


@pytest.mark.slow
def test_assets_changed_mid_build_end_it_in_one_line_without_ray_stack_dumps(tmp_path):
    """Every asset rewritten once the scan is done: the build ends with the one line naming the changed file, and
    the other shards' errors are not dumped after it (Ray printed an "Unhandled error" stack per shard)."""
    import subprocess
    import sys
    from pathlib import Path

    from datagen.demo_assets import make_demo_assets

    src = make_demo_assets(tmp_path / "assets")
    cmd = [
        sys.executable,
        str(Path(__file__).parents[2] / "datagen" / "build.py"),
        "--out",
        str(tmp_path / "ds"),
        "--address",
        "local",
        "--workers",
        "2",
        *ARGS,
        "--num-samples",
        "16",
        "--assets",
        f"generic:{src / 'fg'}",
        f"backgrounds:{src / 'bg'}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("assets:"):  # scanned: now every file changes under the build
            for f in sorted(src.rglob("*.png")) + sorted(src.rglob("*.npy")):
                f.write_bytes(f.read_bytes() + b"changed")
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: node ") and "not the file the scan read" in last
    assert "changed during the build" in last
    assert "put the assets on storage every node mounts" not in last  # not a node without the files
    assert "Unhandled error" not in err and "Traceback" not in err, err[-3000:]
