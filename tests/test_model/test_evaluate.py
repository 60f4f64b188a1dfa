"""model.evaluate: the four protocols on tiny fixtures in each layout, the metrics, the caches, the refusals."""

import csv
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from common.images import to_uint8
from model import evaluation as ev
from model import iqa
from model.conditioning import focus_at
from model.evaluation import protocols, strata
from renderer import Layer, render_bokeh

H, W = 128, 160
PHOTOS = {"astronaut": skdata.astronaut, "coffee": skdata.coffee, "chelsea": skdata.chelsea}


def photo(name):
    return np.asarray(Image.fromarray(PHOTOS[name]()).resize((W, H), Image.BICUBIC))


def scene_disparity(seed):
    """A receding plane with a nearer disk on it: a real occlusion edge."""
    yy, xx = np.mgrid[0:H, 0:W]
    disp = 0.2 + 0.2 * xx / W
    cy, cx = 50 + 10 * seed, 60 + 15 * seed
    disp[(yy - cy) ** 2 + (xx - cx) ** 2 < 30**2] = 0.8
    return disp.astype(np.float32), (cx, cy)


def run(argv):
    return ev.main(ev.parse_args(argv))


def rows_of(out):
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def pairs_set(tmp_path_factory):
    """pairs layout: 3 photos, targets made with our renderer from the photo and its disparity (K = 8, focus on
    the disk), so the ray tracer on the ground truth (classical-gt) reproduces them."""
    root = tmp_path_factory.mktemp("pairs")
    for sub in ("original", "bokeh", "disparity"):
        (root / sub).mkdir()
    focus = {}
    for i, name in enumerate(PHOTOS):
        rgb = photo(name)
        disp, (cx, cy) = scene_disparity(i)
        d_f = focus_at(disp, cx, cy)  # the benchmark's rule: the median disparity around the focus point
        bokeh = render_bokeh([Layer(rgb.astype(np.float32) / 255, np.ones((H, W), np.float32), disp)], 8.0, d_f)
        Image.fromarray(rgb).save(root / "original" / f"{name}.png")
        Image.fromarray(to_uint8(bokeh)).save(root / "bokeh" / f"{name}.png")
        np.save(root / "disparity" / f"{name}.npy", disp)
        focus[name] = {"x": cx, "y": cy, "K": 8}
    (root / "focus.json").write_text(json.dumps(focus))
    return root


def test_psnr_ssim_are_basicsr_and_scikit_image_figures():
    """Y-channel PSNR/SSIM equal BasicSR's calculate_psnr/ssim(test_y_channel=True) (the Real-ISR papers'
    code); RGB equals scikit-image's with the Wang et al. settings; crops remove the border."""
    from degradations.compat import install_torchvision_shim

    install_torchvision_shim()
    from basicsr.metrics import calculate_psnr, calculate_ssim

    a = photo("astronaut")
    rng = np.random.default_rng(0)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    for crop in (0, 4):
        p, s = iqa.psnr_ssim(b, a, "y", crop)
        assert p == pytest.approx(calculate_psnr(b[..., ::-1], a[..., ::-1], crop, test_y_channel=True), abs=1e-5)
        assert s == pytest.approx(calculate_ssim(b[..., ::-1], a[..., ::-1], crop, test_y_channel=True), abs=1e-6)
    p, s = iqa.psnr_ssim(b, a, "rgb")
    assert p == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
    assert s == pytest.approx(
        structural_similarity(
            a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        ),
        abs=1e-9,
    )
    assert iqa.psnr_ssim(a, a) == (float("inf"), pytest.approx(1.0))


def test_pairs_protocol_scores_side_by_side_and_reuses_its_caches(pairs_set, tmp_path):
    out = tmp_path / "eval"
    other = tmp_path / "published"  # another method's outputs: here, the targets themselves
    other.mkdir()
    for p in (pairs_set / "bokeh").iterdir():
        Image.open(p).save(other / p.name)
    argv = [
        "--protocol",
        "pairs",
        "--data",
        str(pairs_set),
        "--methods",
        "identity,classical,classical-gt",
        "--predictions",
        f"published={other}",
        "--metrics",
        "psnr,ssim",
        "--out",
        str(out),
    ]
    first = run(argv)
    rows = rows_of(out)
    assert len(rows) == 3 * 4 and {r["method"] for r in rows} == {"identity", "classical", "classical-gt", "published"}
    score = lambda m, k="psnr": np.mean([float(r[k]) for r in rows if r["method"] == m])  # noqa: E731
    assert score("classical-gt") > 60  # the same ray tracer on the same image and disparity as the targets
    assert score("published") == float("inf")
    assert score("identity") < 35 and score("identity", "ssim") < score("classical-gt", "ssim")
    # stratified metrics: every pixel in exactly one blur-radius bin; the disk edge makes an occlusion band
    for r in rows:
        assert sum(int(r[f"px@{b[0]}"]) for b in ev.BINS) == H * W
        assert 0 < int(r["px@occlusion"]) < H * W
    summary = (out / "summary.md").read_text()
    table = [line for line in summary.splitlines() if line.startswith("| method")][0]
    assert table.index("PSNR") < table.index("SSIM") < table.index("s / image (median)")
    assert "occlusion" in summary and "PSNR missing" not in summary
    sheet = Image.open(out / "examples.png")
    assert sheet.width == 256 * 6 and sheet.height > 3 * 200  # input, 4 methods, target; 3 rows
    # the LQ set: ×4 smaller, seeded per image name, recorded in a manifest
    manifest = json.loads((out / "lq" / "manifest.json").read_text())
    assert set(manifest["images"]) == set(PHOTOS)
    assert Image.open(out / "lq" / "coffee.png").size == (W // 4, H // 4)
    lq_bytes = (out / "lq" / "coffee.png").read_bytes()
    assert first["lq_made"] == 3
    # a rerun reuses the LQ set and the predictions; a fresh folder makes byte-identical LQ
    again = run(argv)
    assert again["lq_made"] == 0 and again["lq_reused"] == 3
    assert again["predictions_reused"] == {"identity": 3, "classical": 3, "classical-gt": 3}
    assert rows_of(out) == rows
    fresh = run(argv[:-1] + [str(tmp_path / "fresh"), "--limit", "1", "--methods", "identity"])
    assert len(fresh["rows"]) == 2 and (tmp_path / "fresh" / "lq" / "astronaut.png").is_file()
    assert (tmp_path / "fresh" / "lq" / "astronaut.png").read_bytes() == (out / "lq" / "astronaut.png").read_bytes()
    assert lq_bytes == (out / "lq" / "coffee.png").read_bytes()


def test_pairs_focus_mask_and_bad_images_are_skipped_with_the_reason(pairs_set, tmp_path):
    import shutil

    root = tmp_path / "set"
    shutil.copytree(pairs_set, root)
    focus = json.loads((root / "focus.json").read_text())
    del focus["coffee"]["x"], focus["coffee"]["y"]  # the focal region as a mask instead
    disp, _ = scene_disparity(1)
    (root / "focus").mkdir()
    Image.fromarray(((disp > 0.7) * 255).astype(np.uint8)).save(root / "focus" / "coffee.png")
    (root / "focus.json").write_text(json.dumps(focus))
    (root / "original" / "chelsea.png").write_bytes(b"not a png")
    result = run(
        [
            "--protocol",
            "pairs",
            "--data",
            str(root),
            "--methods",
            "classical-gt",
            "--metrics",
            "psnr",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert [s[0] for s in result["skipped"]] == ["chelsea"] and "chelsea.png" in result["skipped"][0][1]
    by_image = {r["image"]: r for r in result["rows"]}
    assert by_image["coffee"]["psnr"] > 60  # the mask gives the same focus disparity as the point did
    assert "1 images skipped" in (tmp_path / "o" / "summary.md").read_text()


def test_realsr_layouts_and_k0(tmp_path):
    """RealSR's NAME_LR4/NAME_HR naming and LR/ + HR/ folders; at K = 0 classical is the upsampled input."""
    root = tmp_path / "RealSR" / "Canon" / "Test" / "4"
    root.mkdir(parents=True)
    for name in ("astronaut", "coffee"):
        hr = photo(name)
        Image.fromarray(hr).save(root / f"Canon_{name}_HR.png")
        Image.fromarray(hr).resize((W // 4, H // 4), Image.BICUBIC).save(root / f"Canon_{name}_LR4.png")
    assert [n for n, _, _ in protocols.realsr_pairs(tmp_path / "RealSR")] == ["Canon_astronaut", "Canon_coffee"]
    result = run(
        [
            "--protocol",
            "realsr",
            "--data",
            str(tmp_path / "RealSR"),
            "--methods",
            "identity,classical",
            "--metrics",
            "psnr,ssim",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    by = {(r["image"], r["method"]): r for r in result["rows"]}
    for name in ("Canon_astronaut", "Canon_coffee"):
        assert by[(name, "classical")]["psnr"] == by[(name, "identity")]["psnr"] > 20
        assert "px@r<=1" not in by[(name, "identity")]  # no ground-truth disparity: no strata
    split = tmp_path / "split"
    (split / "LR").mkdir(parents=True)
    (split / "HR").mkdir()
    for p in root.iterdir():
        kind = "LR" if "_LR4" in p.name else "HR"
        (split / kind / p.name.replace("_LR4", "").replace("_HR", "")).write_bytes(p.read_bytes())
    assert [n for n, _, _ in protocols.realsr_pairs(split)] == ["Canon_astronaut", "Canon_coffee"]


def test_depth_protocol_degrade_clear_average(tmp_path):
    """Middlebury's motorcycle (scikit-image) with its true disparity: the ground truth as a prediction scores
    AbsRel 0 and δ1 1 on the clear image; the summary has Degrade / Clear / Average."""
    left, _, disp = skdata.stereo_motorcycle()
    left, disp = left[::4, ::4][:124, :168], disp[::4, ::4][:124, :168]  # small and a multiple of 4
    valid = np.isfinite(disp) & (disp > 0)
    depth = np.where(valid, 100.0 / np.where(valid, disp, 1), 0).astype(np.float32)
    root = tmp_path / "nyu"
    for sub in ("rgb", "depth", "pred/clear", "pred/degraded"):
        (root / sub).mkdir(parents=True)
    for name, store in (("a", "npy"), ("b", "png")):
        Image.fromarray(left).save(root / "rgb" / f"{name}.png")
        if store == "npy":
            np.save(root / "depth" / f"{name}.npy", depth)
        else:
            Image.fromarray((depth * 1000).round().astype(np.uint16)).save(root / "depth" / f"{name}.png")
        gt_disp = np.where(valid, disp, 0).astype(np.float32) / np.nanmax(disp[valid])
        np.save(root / "pred" / "clear" / f"{name}.npy", gt_disp)
        np.save(root / "pred" / "degraded" / f"{name}.npy", np.fliplr(gt_disp).copy())
    result = run(
        [
            "--protocol",
            "depth",
            "--data",
            str(root),
            "--methods",
            "model",
            "--predictions",
            f"oracle={root / 'pred'}",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    oracle = [r for r in result["rows"] if r["method"] == "oracle"]
    assert len(oracle) == 2
    for r in oracle:
        assert r["absrel_clear"] < 1e-3 and r["delta1_clear"] == 1.0
        assert r["absrel_degraded"] > 0.05  # the flipped map is wrong
    model = [r for r in result["rows"] if r["method"] == "model"]
    assert all(0 <= r["delta1_degraded"] <= 1 and r["absrel_clear"] > 0 for r in model)
    summary = (tmp_path / "o" / "summary.md").read_text()
    assert "AbsRel ↓ Degrade | Clear | Average" in summary and "RANDOM tiny depth" in summary
    with pytest.raises(SystemExit):
        ev.parse_args(["--protocol", "depth", "--data", str(root), "--methods", "classical", "--out", "x"])


def test_occlusion_band_is_empty_on_a_single_layer_scene_and_strata_cover_the_image():
    yy, xx = np.mgrid[0:96, 0:128]
    plane = (0.2 + 0.3 * xx / 128).astype(np.float32)
    r = 32 * np.abs(plane - 0.3)
    assert not strata.occlusion_band(r).any()
    step = plane.copy()
    step[:, 64:] = 0.9
    band = strata.occlusion_band(32 * np.abs(step - 0.3))
    # the near side blurs by 32·0.6 ≈ 19 px: the band reaches that far from the step on both sides
    assert band[:, 64 - 19 : 64 + 19].all() and not band[:, : 64 - 21].any()
    item = ev.Item(
        "x", np.zeros((24, 32, 3), np.uint8), np.zeros((96, 128, 3), np.uint8), 32.0, disp=plane, focus_disparity=0.3
    )
    se, smap = iqa.psnr_ssim_maps(np.zeros((96, 128, 3), np.uint8), np.full((96, 128, 3), 9, np.uint8))
    s = strata.strata(item, se, smap)
    assert sum(s[f"px@{b[0]}"] for b in ev.BINS) == 96 * 128 and s["px@occlusion"] == 0


@pytest.fixture(scope="module")
def synthetic_shards(tmp_path_factory):
    """Two val shards of the demo assets at 128², written by the build's own shard function (no Ray): 3 scenes
    with two foregrounds, 2 with none (a single layer)."""
    from datagen.build import BuildConfig, build_shard, scan_assets

    out = tmp_path_factory.mktemp("syn")
    for shard, (fg, indices) in enumerate(((2, [0, 1, 2]), (0, [3, 4]))):
        cfg = BuildConfig.load(
            None,
            ["size=128", "min_asset_size=128", f"scene.num_foregrounds={fg}", "scene.bg_map_prob=0", "val_fraction=0"],
        )
        rows = scan_assets(cfg, progress=False)
        build_shard(cfg, rows, "train", shard, indices, str(out))
    return out, cfg


def test_synthetic_protocol_with_the_model_and_exact_strata(synthetic_shards, tmp_path):
    from model.config import ModelConfig
    from model.network import MagicBokeh

    out, _ = synthetic_shards
    weights = MagicBokeh(ModelConfig.from_yaml("tiny")).save_weights(tmp_path / "w")
    result = run(
        [
            "--protocol",
            "synthetic",
            "--data",
            str(out / "train-{000000..000001}.tar"),
            "--methods",
            "identity,classical,classical-gt,model,model-gt",
            "--weights",
            str(weights),
            "--metrics",
            "psnr,ssim",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    rows = result["rows"]
    assert len(rows) == 5 * 5 and not any("error" in r for r in rows)
    single = {f"000001_{i:06d}" for i in (3, 4)}
    for r in rows:
        assert sum(r[f"px@{b[0]}"] for b in ev.BINS) == 128 * 128
        if r["image"] in single:
            assert r["px@occlusion"] == 0
    assert any(r["px@occlusion"] > 0 for r in rows if r["image"] not in single)
    gt = {r["image"]: r["psnr"] for r in rows if r["method"] == "classical-gt"}
    ident = {r["image"]: r["psnr"] for r in rows if r["method"] == "identity"}
    assert all(gt[k] > 40 for k in single)  # a single layer: the same ray tracer, the same image
    assert np.mean(list(gt.values())) > np.mean(list(ident.values()))
    summary = (tmp_path / "o" / "summary.md").read_text()
    assert "PSNR (dB) by blur radius" in summary and "| model |" in summary
    with pytest.raises(SystemExit):  # a folder that is not a build
        ev.parse_args(["--protocol", "synthetic", "--data", str(tmp_path), "--methods", "model", "--out", "x"])


def test_missing_metric_weights_are_reported_not_fatal(pairs_set, tmp_path):
    hub = tmp_path / "hub"
    hub.mkdir()
    result = run(
        [
            "--protocol",
            "pairs",
            "--data",
            str(pairs_set),
            "--methods",
            "identity",
            "--metrics",
            "psnr,lpips,niqe",
            "--metric-weights",
            str(hub),
            "--limit",
            "1",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert "alexnet" in result["missing"]["lpips"] and "niqe_modelparameters.mat" in result["missing"]["niqe"]
    assert result["rows"][0]["psnr"] > 10
    summary = (tmp_path / "o" / "summary.md").read_text()
    assert "LPIPS missing" in summary and str(hub) in summary
    assert not any(hub.rglob("*.pth"))  # nothing downloaded


@pytest.mark.slow
def test_every_pyiqa_metric_runs_with_random_weights_and_says_so(pairs_set, tmp_path):
    """The plumbing of LPIPS, DISTS, MUSIQ, MANIQA, CLIP-IQA, NIQE and FID, on random networks (~60 s; FID's 2048²
    matrix square root alone takes ~25 s on 2 cores)."""
    result = run(
        [
            "--protocol",
            "pairs",
            "--data",
            str(pairs_set),
            "--methods",
            "identity",
            "--metric-weights",
            "random",
            "--limit",
            "2",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert result["missing"] == {} and len(result["rows"]) == 2
    for r in result["rows"]:
        for name in ("lpips", "dists", "musiq", "maniqa", "clipiqa", "niqe"):
            assert np.isfinite(r[name]), (name, r)
    assert set(result["fid"]) == {"identity"} and np.isfinite(result["fid"]["identity"])
    summary = (tmp_path / "o" / "summary.md").read_text()
    assert "RANDOM WEIGHTS" in summary
    header = [line for line in summary.splitlines() if line.startswith("| method")][0]
    assert header.index("LPIPS") < header.index("MUSIQ") < header.index("NIQE") < header.index("FID")


def test_arguments_are_checked_before_any_work(pairs_set, tmp_path, capsys):
    base = ["--protocol", "pairs", "--data", str(pairs_set), "--out", str(tmp_path / "o")]
    cases = [
        (["--methods", "identity,magic"], "not available"),
        (["--methods", "model"], "needs --weights"),
        (["--predictions", "x"], "NAME=DIR"),
        (["--predictions", f"identity={tmp_path}"], "already used"),
        (["--metrics", "psnr,fidelity"], "unknown"),
        (["--K", "600"], "--K: in [0, 512]"),
        (["--limit", "0"], "--limit"),
        (["--weights", str(tmp_path)], "no model.yaml"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit):
            ev.parse_args(base + extra)
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_synthetic_data_may_be_a_build_folder_read_through_its_val_shards(synthetic_shards, tmp_path):
    import shutil

    out, _ = synthetic_shards
    build = tmp_path / "build"
    build.mkdir()
    shutil.copy(out / "train-000001.tar", build / "val-000000.tar")
    shutil.copy(out / "train-000000.tar", build / "train-000000.tar")  # not evaluated: training data
    (build / "dataset.json").write_text("{}")
    result = run(
        [
            "--protocol",
            "synthetic",
            "--data",
            str(build),
            "--methods",
            "identity",
            "--metrics",
            "psnr",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert sorted(r["image"] for r in result["rows"]) == ["000001_000003", "000001_000004"]


def test_an_out_folder_of_the_users_files_is_refused(pairs_set, tmp_path, capsys):
    """model.evaluate once wrote over a user's summary.md in --out."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "summary.md").write_text("my thesis summary")
    argv = ["--protocol", "pairs", "--data", str(pairs_set), "--methods", "identity", "--metrics", "psnr"]
    with pytest.raises(SystemExit):
        run(argv + ["--out", str(out)])
    assert (
        "mine: refused, the folder holds files that model.evaluate did not write (summary.md)"
        in capsys.readouterr().err
    )
    assert (out / "summary.md").read_text() == "my thesis summary"
    with pytest.raises(SystemExit):
        run(argv + ["--out", str(pairs_set / "eval")])
    assert "lies inside the input" in capsys.readouterr().err


def test_realsr_pair_that_is_not_4x_is_skipped_with_the_reason(tmp_path):
    """HR 70×50 against LR 16×16 was scored by stretching."""
    (tmp_path / "LR").mkdir()
    (tmp_path / "HR").mkdir()
    Image.fromarray(photo("astronaut")[:16, :16]).save(tmp_path / "LR" / "a.png")
    Image.fromarray(photo("astronaut")[:50, :70]).save(tmp_path / "HR" / "a.png")
    Image.fromarray(photo("coffee")[:16, :16]).save(tmp_path / "LR" / "b.png")
    Image.fromarray(photo("coffee")[:66, :67]).save(tmp_path / "HR" / "b.png")  # 4× plus the documented crop
    got = {x[0] if isinstance(x, tuple) else x.name: x for x in protocols.realsr_items(tmp_path)}
    assert isinstance(got["a"], tuple) and "70×50 is not 4× its LR a.png (16×16 -> 64×64" in got["a"][1]
    assert got["b"].target.shape == (64, 64, 3)


def test_failed_predictions_are_in_the_visible_summary_and_a_method_with_none_fails_the_run(pairs_set, tmp_path):
    """Missing predictions were once only in an HTML comment of summary.md, and the run exited 0."""
    some, none = tmp_path / "some", tmp_path / "none"
    some.mkdir()
    none.mkdir()
    Image.open(pairs_set / "bokeh" / "coffee.png").save(some / "coffee.png")
    argv = ["--protocol", "pairs", "--data", str(pairs_set), "--methods", "identity", "--metrics", "psnr"]
    run(argv + ["--predictions", f"partial={some}", "--out", str(tmp_path / "a")])
    summary = (tmp_path / "a" / "summary.md").read_text()
    assert "<!--" not in summary and "- **partial: 2 of 3 images failed** (its means are over the other 1)" in summary
    with pytest.raises(ValueError, match="empty: no image scored"):
        run(argv + ["--predictions", f"empty={none}", "--out", str(tmp_path / "b")])
    assert "- **empty: 3 of 3 images failed**" in (tmp_path / "b" / "summary.md").read_text()
