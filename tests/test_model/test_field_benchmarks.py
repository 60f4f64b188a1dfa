"""model.evaluate on the field's benchmarks: stand-in folders in each published layout (EXR included), written here,
read as downloaded; partial and broken layouts said in one line; the metric variants against their reference
implementations."""

import csv
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from model import evaluation as ev
from model.evaluation import benchmarks
from model.evaluation.benchmarks import VAL294_IDS, realbokeh_k

H, W = 64, 96


def photo(name="astronaut", size=(W, H)):
    return np.asarray(Image.fromarray(getattr(skdata, name)()).resize(size, Image.BICUBIC))


def run(argv):
    return ev.main(ev.parse_args(argv))


def score(protocol, data, out, methods="identity", metrics="psnr", extra=()):
    """model.evaluate's command line on one protocol: identity scored by PSNR unless told otherwise."""
    argv = ["--protocol", protocol, "--data", str(data), "--methods", methods, "--out", str(out), *extra]
    run(argv + (["--metrics", metrics] if metrics else []))


def rows_of(out):
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


def write_exr(path, array):
    import OpenEXR

    channels = {"RGB" if array.ndim == 3 else "Y": np.ascontiguousarray(array, dtype=np.float32)}
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels) as f:
        f.write(str(path))


@pytest.fixture(scope="module")
def blb(tmp_path_factory):
    """Two BLB scenes, 2 blur levels × 2 focus distances, in metres with a sky; the targets rendered by our ray
    tracer from the all-in-focus image and 1/depth (so classical-gt, on the ground truth, reproduces them), stored
    linear as BLB stores them."""
    from model.pipeline import render_classical

    root = tmp_path_factory.mktemp("blb")
    for k, name in enumerate(("astronaut", "coffee")):
        scene = root / f"scene{k}"
        scene.mkdir()
        aif = photo(name)
        yy, xx = np.mgrid[0:H, 0:W]
        depth = np.full((H, W), 4.0 + 2.0 * xx / W, np.float32)
        depth[(yy - 30) ** 2 + (xx - 40 - 10 * k) ** 2 < 18**2] = 1.5
        depth[:8] = benchmarks.BLB_SKY
        info = {"blur_parameters": [6.0, 12.0], "focus_distances": [1.5, 5.0], "resolution_x": W, "resolution_y": H}
        (scene / "info.json").write_text(json.dumps(info))
        write_exr(scene / "image.exr", (aif.astype(np.float32) / 255) ** 2.2)
        write_exr(scene / "depth.exr", depth)
        disp = benchmarks.blb_disparity(depth)
        s = max(float(disp.max()), 1 / 1.5, 1 / 5.0)
        for i, K in enumerate(info["blur_parameters"]):
            for j, z in enumerate(info["focus_distances"]):
                bokeh = render_classical(aif.astype(np.float32) / 255, (disp / s).astype(np.float32), K * s, 1 / z / s)
                write_exr(scene / f"bokeh_{i:02d}_{j:02d}.exr", np.clip(bokeh, 0, 1) ** 2.2)
    return root


def test_blb_is_read_as_downloaded_and_our_renderer_on_its_ground_truth_scores_high(blb, tmp_path, capsys):
    """Every target of every scene, grouped by blur level; classical-gt (the ray tracer on the ground-truth depth)
    far above identity: the sanity line of a path-traced benchmark."""
    out = tmp_path / "eval"
    score("blb", blb, out, methods="identity,classical-gt", metrics="psnr,ssim")
    rows = rows_of(out)
    assert len(rows) == 16 and {r["group"] for r in rows} == {"level 1", "level 2"}
    psnr = {m: np.mean([float(r["psnr"]) for r in rows if r["method"] == m]) for m in ("identity", "classical-gt")}
    assert psnr["classical-gt"] > 45 and psnr["classical-gt"] > psnr["identity"] + 15, psnr
    summary = (out / "summary.md").read_text()
    assert "PSNR / SSIM by group" in summary and "| level 1 (4) | level 2 (4) |" in summary
    assert "RGB" in summary  # the field's benchmarks are scored on RGB, not luma
    page = (out / "report.html").read_text()
    assert "<table>" in page and "level 2 (4)" in page and 'src="examples.png"' in page
    # a target missing: one line saying what and the first of it; the rest is scored and marked partial
    (blb / "scene1" / "bokeh_01_00.exr").rename(tmp_path / "moved.exr")
    try:
        score("blb", blb, tmp_path / "partial")
    finally:
        (tmp_path / "moved.exr").rename(blb / "scene1" / "bokeh_01_00.exr")
    assert "1 of 8 missing, first scene1/bokeh_01_00.exr" in capsys.readouterr().err
    assert len(rows_of(tmp_path / "partial")) == 7


def test_each_protocol_refuses_a_folder_without_its_layout_in_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for protocol, message in (
        ("blb", "no BLB scenes"),
        ("ebb_val294", "no original/ folder"),
        ("ebb400", "no in/ and gt/ folders"),
        ("ebb400_lq", "no in/ and gt/ folders"),
        ("realbokeh", "no metadata/\\*.json"),
        ("realbokeh_bin", "no metadata/\\*.json"),
    ):
        with pytest.raises(ValueError, match=message) as e:
            score(protocol, empty, tmp_path / protocol, metrics=None)
        assert "\n" not in str(e.value)
    bad = tmp_path / "bad_exr" / "s"
    bad.mkdir(parents=True)
    (bad / "info.json").write_text(json.dumps({"blur_parameters": [4], "focus_distances": [2]}))
    (bad / "image.exr").write_bytes(b"not an exr")
    with pytest.raises(ValueError, match="no image could be evaluated .*image.exr: not a readable OpenEXR file"):
        score("blb", bad.parent, tmp_path / "b", metrics=None)


def test_val294_is_ids_4400_to_4693_and_a_partial_folder_says_what_is_missing(tmp_path, capsys):
    assert len(VAL294_IDS) == 294 and VAL294_IDS[0] == 4400 and VAL294_IDS[-1] == 4693
    for sub in ("original", "bokeh"):
        (tmp_path / "ebb" / sub).mkdir(parents=True)
    for i, name in zip((4400, 4401, 4693, 4694), ("astronaut", "coffee", "chelsea", "astronaut")):
        Image.fromarray(photo(name)).save(tmp_path / "ebb" / "original" / f"{i}.jpg")
        Image.fromarray(photo(name)[::-1].copy()).save(tmp_path / "ebb" / "bokeh" / f"{i}.jpg")
    out = tmp_path / "eval"
    score("ebb_val294", tmp_path / "ebb", out)
    assert "EBB! Val294 4400–4693: 291 of 294 missing, first 4402" in capsys.readouterr().err
    assert sorted(r["image"] for r in rows_of(out)) == ["4400", "4401", "4693"]  # 4694 is not Val294


@pytest.fixture(scope="module")
def ebb400(tmp_path_factory):
    root = tmp_path_factory.mktemp("ebb400") / "validation"
    for sub in ("in", "gt", "disp"):
        (root / sub).mkdir(parents=True)
    for k, name in enumerate(("astronaut", "coffee")):
        Image.fromarray(photo(name, (98, 66))).save(root / "in" / f"{k}.jpg")
        Image.fromarray(photo(name, (98, 66))).save(root / "gt" / f"{k}.jpg")
        np.save(root / "disp" / f"{k}.npy", np.tile(np.linspace(0, 1, 98, dtype=np.float32), (66, 1)))
    return root.parent


def test_ebb400_and_ebb400_lq_read_the_released_pairs(ebb400, tmp_path):
    out = tmp_path / "ebb400"
    score("ebb400", ebb400, out, methods="identity,classical-gt", extra=["--K", "4"])
    rows = rows_of(out)
    assert len(rows) == 4 and all("error" not in r or not r["error"] for r in rows)
    assert Image.open(out / "predictions" / "identity" / "0.png").size == (96, 64)  # cropped to a multiple of 4
    lq = tmp_path / "ebb400_lq"
    score("ebb400_lq", ebb400, lq)
    manifest = json.loads((lq / "lq" / "manifest.json").read_text())
    assert Image.open(lq / "lq" / "0.png").size == (128, 128)  # the 512² input degraded ×4
    assert Image.open(lq / "predictions" / "identity" / "0.png").size == (512, 512)
    assert manifest["seed"] == ev.shared.EVAL_SEED and "seed" in (lq / "summary.md").read_text()


def test_realbokeh_scores_every_target_by_f_number_and_bin_scores_one_per_scene(tmp_path):
    split = tmp_path / "RealBokeh" / "test"
    for sub in ("in", "gt", "metadata"):
        (split / sub).mkdir(parents=True)
    for k, name in enumerate(("astronaut", "coffee")):
        Image.fromarray(photo(name)).save(split / "in" / f"{k}_f22.JPG")
        (split / "gt" / str(k)).mkdir()
        targets = []
        for f in (2.0, 8.0):
            rel = f"gt/{k}/{k}_f{f:g}.JPG"
            Image.fromarray(photo(name)).save(split / rel)
            targets.append(rel)
        meta = {"id": k, "source_image": f"in/{k}_f22.JPG", "target_images": targets, "target_avs": [2.0, 8.0]}
        (split / "metadata" / f"{k}.json").write_text(json.dumps(meta))
    out = tmp_path / "all"
    score("realbokeh", split.parent, out, extra=["--K", "16"])
    rows = rows_of(out)
    assert len(rows) == 4 and {r["group"] for r in rows} == {"f/2", "f/8"}
    assert {float(r["f_number"]) for r in rows} == {2.0, 8.0}
    score("realbokeh_bin", split, tmp_path / "bin")
    assert sorted(r["image"] for r in rows_of(tmp_path / "bin")) == ["0_f2", "1_f2"]


def test_k_from_the_f_number_on_realbokeh_metadata():
    """K scales with the aperture's diameter f/N: K at f/2 is --K; f/8 a quarter of it; f/20 a tenth."""
    assert realbokeh_k(2.0, 16.0) == 16.0
    assert realbokeh_k(8.0, 16.0) == 4.0
    assert realbokeh_k(20.0, 16.0) == pytest.approx(1.6)
    with pytest.raises(ValueError, match="f-number: > 0"):
        realbokeh_k(0.0, 16.0)


def _pairs(n=3, shape=(64, 80, 3)):
    rng = np.random.default_rng(0)
    for k in range(n):
        a = np.asarray(Image.fromarray(photo(("astronaut", "coffee", "chelsea")[k % 3], shape[1::-1])))
        b = np.clip(a.astype(int) + rng.integers(-30 * (k + 1), 30 * (k + 1), a.shape), 0, 255).astype(np.uint8)
        yield a, b


def test_lpips_alex_vgg_and_dists_agree_with_their_reference_implementations():
    """pyiqa's LPIPS (alex, vgg) and DISTS as model.evaluate calls them (its input range, channel order and
    argument order) against the lpips package and the authors' DISTS_pytorch, with the same (random: nothing is
    downloaded) weights loaded into both, on a few image pairs."""
    import lpips
    import torch
    import torchvision
    from DISTS_pytorch import DISTS_pt

    from model import iqa

    ours = iqa.PyiqaMetrics(("lpips", "lpips_vgg", "dists"), "random")
    assert not ours.missing
    refs = {}
    for name, net in (("lpips", "alex"), ("lpips_vgg", "vgg")):
        refs[name] = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
    vgg16 = torchvision.models.vgg16
    torchvision.models.vgg16 = lambda pretrained=False, **k: vgg16(weights=None)  # its constructor downloads
    try:
        refs["dists"] = DISTS_pt.DISTS(load_weights=False)
    finally:
        torchvision.models.vgg16 = vgg16
    for name, ref in refs.items():
        ref.load_state_dict(ours.metrics[name].net.state_dict(), strict=True)
        ref.eval()
    scores = []
    for a, b in _pairs():
        got = ours.score(a, b)
        t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255  # noqa: E731
        with torch.no_grad():
            want = {
                "lpips": float(refs["lpips"](t(a) * 2 - 1, t(b) * 2 - 1)),
                "lpips_vgg": float(refs["lpips_vgg"](t(a) * 2 - 1, t(b) * 2 - 1)),
                "dists": float(refs["dists"](t(b), t(a))),
            }
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=1e-5, abs=1e-7), name
        scores.append(got)
    assert len({round(s["dists"], 9) for s in scores}) == 3  # three pairs, three numbers


def test_ssim_two_ways_and_psnr_on_rgb_after_a_clip():
    """SSIM: Gaussian 11/1.5 (test_evaluate holds it to BasicSR's) and uniform 7 (scikit-image's default) are
    different numbers, each its reference's; PSNR on RGB [0, 255] is BasicSR's and scikit-image's."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from degradations.compat import install_torchvision_shim
    from model import iqa

    install_torchvision_shim()
    from basicsr.metrics import calculate_psnr

    for a, b in _pairs():
        psnr, ssim = iqa.psnr_ssim(a, b, "rgb")
        assert psnr == pytest.approx(calculate_psnr(a, b, crop_border=0, input_order="HWC"), abs=1e-9)
        assert psnr == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), abs=1e-9)
        u7 = iqa.ssim_uniform7(a, b, "rgb")
        assert u7 == pytest.approx(structural_similarity(b, a, channel_axis=2, data_range=255), abs=1e-12)
        assert abs(u7 - ssim) > 1e-4


def test_the_oracles_recover_k_and_focus_from_the_target_and_are_reported_apart(tmp_path):
    """--k-search ssim finds the K that made the target (on a grid that holds it) and --focus-from gt-edges the
    plane where the target is sharp; rows that used them say so and sit in their own table."""
    from model.pipeline import render_classical

    root = tmp_path / "ebb400" / "validation"
    for sub in ("in", "gt", "disp"):
        (root / sub).mkdir(parents=True)
    yy, xx = np.mgrid[0:H, 0:W]
    disp = (0.1 + 0.2 * xx / W).astype(np.float32)
    disp[(yy - 32) ** 2 + (xx - 48) ** 2 < 22**2] = 0.8  # a near subject on a receding background, focused on
    img = photo("astronaut")
    target = render_classical(img.astype(np.float32) / 255, disp, 12.0, 0.8)
    Image.fromarray(img).save(root / "in" / "0.png")
    Image.fromarray((np.clip(target, 0, 1) * 255).round().astype(np.uint8)).save(root / "gt" / "0.png")
    np.save(root / "disp" / "0.npy", disp)
    out = tmp_path / "eval"
    score(
        "ebb400",
        root.parent,
        out,
        methods="identity,classical-gt",
        metrics="psnr,ssim",
        extra=["--k-search", "ssim", "--focus-from", "gt-edges"],
    )
    rows = {r["method"]: r for r in rows_of(out)}
    assert float(rows["classical-gt"]["K_oracle"]) == 12.0 and float(rows["classical-gt"]["psnr"]) > 40
    assert rows["classical-gt"]["oracles"] == "K by ssim, focus from gt-edges" and rows["identity"]["oracles"] == ""
    summary = (out / "summary.md").read_text()
    plain, helped = summary.split("With oracles")
    assert "| identity |" in plain and "classical-gt" not in plain.split("| method |")[1]
    assert "| classical-gt | K by ssim, focus from gt-edges |" in helped
