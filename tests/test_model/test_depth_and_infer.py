"""Depth Anything V2 wrapper, tiling, and the inference CLI end to end on a bundled photo."""

import re

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from model.depthnet import DepthEstimator, input_shape, load_depth_model
from model.infer import main, parse_args
from model.pipeline import render_classical, run_tiled


def run(argv):
    return main(parse_args(argv))


def test_depth_tiny_forward_range_and_sizes():
    est = DepthEstimator(load_depth_model("tiny"), input_size=70).eval()
    rgb = torch.rand(2, 3, 45, 80)
    with torch.no_grad():
        d = est(rgb)
    assert d.shape == (2, 1, 45, 80)
    for i in range(2):
        assert d[i].min() == 0 and d[i].max() == 1
    assert all(s % 14 == 0 for s in input_shape(45, 80, 70)) and input_shape(45, 80, 70)[0] == 70


def test_depth_small_matches_the_published_size():
    """Depth Anything V2 Small has 24.8M parameters: our config reproduces the architecture, not just the API."""
    n = sum(p.numel() for p in load_depth_model("small").parameters())
    assert abs(n / 1e6 - 24.8) < 0.1


def test_depth_weights_folder_round_trip(tmp_path):
    m = load_depth_model("tiny", seed=3)
    m.save_pretrained(tmp_path / "da")
    m2 = load_depth_model("tiny", weights=tmp_path / "da")
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    with pytest.raises(ValueError, match="nothing is downloaded"):
        load_depth_model("small", weights=tmp_path / "missing")


def test_tiles_blend_to_the_whole():
    """An identity model through overlapping tiles gives back the image exactly; a pointwise model too."""
    img = torch.rand(1, 3, 150, 230) * 2 - 1
    defocus = torch.rand(1, 1, 150, 230)
    out = run_tiled(lambda x, d, m: x, img, defocus, None, tile=64, overlap=16)
    assert out.shape == img.shape and torch.allclose(out, img, atol=1e-6)
    out = run_tiled(lambda x, d, m: x * (1 - d), img, defocus, None, tile=64, overlap=16)
    assert torch.allclose(out, img * (1 - defocus), atol=1e-6)
    small = torch.rand(1, 3, 30, 45) * 2 - 1  # smaller than a tile and not a multiple of 8: padded, cropped
    out = run_tiled(lambda x, d, m: x, small, torch.zeros(1, 1, 30, 45), None, tile=64)
    assert torch.allclose(out, small)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """scikit-image's Middlebury motorcycle (left view) at 1/4 size with its real disparity."""
    left, _, disp = data.stereo_motorcycle()
    left = np.asarray(Image.fromarray(left).resize((185, 125), Image.BILINEAR))
    disp = np.nan_to_num(disp, nan=0.0, posinf=0.0)
    disp = np.asarray(Image.fromarray(disp.astype(np.float32)).resize((185, 125), Image.NEAREST))
    folder = tmp_path_factory.mktemp("photo")
    Image.fromarray(left).save(folder / "moto.png")
    np.save(folder / "moto_disp.npy", disp)
    return folder


def test_infer_cli_untrained_says_so_and_writes_the_image(photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert run(["--image", str(photo / "moto.png"), "--out", str(out), "--focus", "90,60", "--K", "12"])["out"] == out
    text = capsys.readouterr().out
    assert "UNTRAINED" in text and "random weights" in text and "time: depth" in text
    assert Image.open(out).size == (185, 125)
    disp = np.asarray(Image.open(tmp_path / "out_disparity.png"))
    assert disp.dtype == np.uint16 and disp.shape == (125, 185)


def test_infer_cli_with_saved_weights(photo, tmp_path, capsys):
    from model.config import ModelConfig
    from model.network import MagicBokeh

    MagicBokeh(ModelConfig.from_yaml("tiny")).save_weights(tmp_path / "w")
    out = tmp_path / "w_out.png"
    run(
        [
            "--image",
            str(photo / "moto.png"),
            "--out",
            str(out),
            "--focus-disparity",
            "0.5",
            "--K",
            "8",
            "--weights",
            str(tmp_path / "w"),
            "--disparity",
            str(photo / "moto_disp.npy"),
            "--upscale",
            "2",
        ]
    )
    text = capsys.readouterr().out
    assert "UNTRAINED" not in text and "(370×250)" in text
    assert Image.open(out).size == (370, 250)


def test_infer_cli_classical_keeps_the_focused_surface_sharp(photo, tmp_path):
    from model.infer import render

    out = tmp_path / "c.png"
    res = render(photo / "moto.png", out, K=16, focus=(90, 60), classical=True, disparity=photo / "moto_disp.npy")
    assert res["out"] == out
    with pytest.raises(ValueError, match="--focus 900,60: outside"):
        render(photo / "moto.png", out, K=16, focus=(900, 60), classical=True)
    src = np.asarray(Image.open(photo / "moto.png"), np.float32)
    res = np.asarray(Image.open(out), np.float32)
    disp = np.load(photo / "moto_disp.npy")
    disp = (disp - disp.min()) / (disp.max() - disp.min())
    d_f = float(np.median(disp[56:65, 86:95]))
    r = 16 * np.abs(disp - d_f)
    sharp, blurred = r < 0.05, r > 4
    assert sharp.sum() > 50 and blurred.sum() > 1000
    err = np.abs(res - src).mean(axis=2)
    assert err[sharp].mean() < 0.5 * err[blurred].mean()  # in focus stays, out of focus changes


def test_infer_cli_checks_every_argument_before_any_work(photo, tmp_path, capsys, monkeypatch):
    """Bad arguments are refused by parse_args, naming the argument, before the depth network or the model load."""
    import model.infer as infer_module

    monkeypatch.setattr(infer_module, "load_estimator", lambda *a, **k: pytest.fail("depth ran before the check"))
    moto, out = str(photo / "moto.png"), str(tmp_path / "o.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    cases = [
        (["--image", str(bad), "--out", out, "--focus-disparity", "0.5", "--K", "4"], "bad.png: not a readable"),
        (["--image", moto, "--out", out, "--focus", "500,10", "--K", "4"], "--focus 500,10: outside the 185×125"),
        (["--image", moto, "--out", out, "--focus", "-5,10", "--K", "4"], "--focus -5,10: outside"),
        (["--image", moto, "--out", out, "--focus=-5,10", "--K", "4"], "--focus -5,10: outside"),
        (["--image", moto, "--out", out, "--focus", "left,top", "--K", "4"], "--focus: X,Y in whole pixels"),
        (
            ["--image", moto, "--out", str(tmp_path / "o.pgx"), "--focus", "9,9", "--K", "4"],
            "unknown image extension '.pgx'",
        ),
        (["--image", moto, "--out", out, "--focus-disparity", "0.5", "--K", "600"], "--K: in \\[0, 512\\]"),
        (["--image", moto, "--out", out, "--focus-disparity", "1.5", "--K", "4"], "--focus-disparity: in"),
        (
            ["--image", moto, "--out", out, "--focus", "9,9", "--K", "4", "--weights", str(tmp_path / "none")],
            "--weights .*none: no such folder",
        ),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit):
            run(argv)
        err = capsys.readouterr().err
        assert re.search(message, err), (argv, err)
    assert not (tmp_path / "o.png").exists()


def test_infer_composites_an_rgba_input_and_says_so(photo, tmp_path, capsys):
    rgb = np.asarray(Image.open(photo / "moto.png"))
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, :90] = 255
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rgba.png")
    out = tmp_path / "o.png"
    run(
        [
            "--image",
            str(tmp_path / "rgba.png"),
            "--out",
            str(out),
            "--focus-disparity",
            "0.5",
            "--K",
            "0",
            "--classical",
            "--disparity",
            str(photo / "moto_disp.npy"),
        ]
    )
    assert "alpha channel: composited on white" in capsys.readouterr().out
    res = np.asarray(Image.open(out))
    assert (res[:, 100:] == 255).all() and np.abs(res[:, :80].astype(int) - rgb[:, :80]).max() <= 1


def test_classical_in_bands_equals_the_whole_image(photo):
    """--classical renders in bands (with a progress bar); each band reads the rows its rays reach, so the result
    is the whole image's up to the aperture sampling pattern, which shifts with the pixel's row (52 dB here)."""
    rgb = np.asarray(Image.open(photo / "moto.png"), np.float32) / 255
    disp = np.load(photo / "moto_disp.npy")
    disp = ((disp - disp.min()) / (disp.max() - disp.min())).astype(np.float32)
    whole = render_classical(rgb, disp, 12.0, 0.6, band=10_000)
    bands = render_classical(rgb, disp, 12.0, 0.6, band=32)
    mse = float(np.mean((whole - bands) ** 2))
    assert 10 * np.log10(1 / mse) > 45 and np.abs(whole - bands).mean() < 2e-3


def _depth_folders(tmp_path):
    """(a tiny Depth Anything weights folder, a folder of two photos)."""
    folder = tmp_path / "weights"
    load_depth_model("tiny").save_pretrained(folder)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("coffee", "chelsea"):
        Image.fromarray(getattr(data, name)()[:96, :128]).save(photos / f"{name}.jpg")
    return folder, photos


def test_depth_cli_gives_a_folder_of_photos_real_depth(tmp_path):
    """`python -m model.depth --images DIR --weights FOLDER` writes NAME_disp.npy beside each photo (a bad file is
    skipped with its name), and the scan then pairs every photo with its map."""
    from datagen.assets import scan
    from model import depth as depth_cli

    folder, photos = _depth_folders(tmp_path)
    (photos / "broken.png").write_bytes(b"not a png")
    res = depth_cli.main(depth_cli.parse_args(["--images", str(photos), "--weights", str(folder)]))
    assert len(res["written"]) == 2 and len(res["failed"]) == 1 and "broken.png" in res["failed"][0]
    disp = np.load(photos / "coffee_disp.npy")
    assert disp.shape == (96, 128) and disp.dtype == np.float32 and 0 <= disp.min() < disp.max() <= 1
    rows = {r.uri.rsplit("/", 1)[-1]: r for r in scan([("backgrounds", photos)], min_size=32, progress=False)}
    assert rows["coffee.jpg"].ok and rows["coffee.jpg"].disp_uri.endswith("coffee_disp.npy")
    again = depth_cli.main(depth_cli.parse_args(["--images", str(photos), "--weights", str(folder)]))
    assert len(again["kept"]) == 2 and not again["written"]  # a rerun keeps what is there


def test_infer_never_writes_over_its_inputs(photo, tmp_path, capsys):
    """`--image p.png --out p.png` once replaced the photo; `--disparity q_disparity.png --out q.png` the disparity
    (written beside the output). Both are refused by the argument check, before any work."""
    import shutil

    p = tmp_path / "p.png"
    shutil.copy(photo / "moto.png", p)
    before = p.read_bytes()
    with pytest.raises(SystemExit):
        run(["--image", str(p), "--out", str(p), "--focus-disparity", "0.5", "--K", "4", "--classical"])
    assert "--out " + str(p) + ": is also an input" in capsys.readouterr().err
    disp = np.load(photo / "moto_disp.npy")
    q_disp = tmp_path / "q_disparity.png"
    Image.fromarray((disp / disp.max() * 65535).astype(np.uint16)).save(q_disp)
    q_before = q_disp.read_bytes()
    with pytest.raises(SystemExit):
        run(
            [
                "--image",
                str(p),
                "--out",
                str(tmp_path / "q.png"),
                "--disparity",
                str(q_disp),
                "--focus-disparity",
                "0.5",
                "--K",
                "4",
                "--classical",
            ]
        )
    assert f"its disparity {q_disp}: is also an input" in capsys.readouterr().err
    assert p.read_bytes() == before and q_disp.read_bytes() == q_before and not (tmp_path / "q.png").exists()


def test_infer_names_the_file_for_a_folder_without_a_model_and_a_bad_disparity(photo, tmp_path, capsys):
    moto = str(photo / "moto.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        run(
            [
                "--image",
                moto,
                "--out",
                str(tmp_path / "o.png"),
                "--focus-disparity",
                "0.5",
                "--K",
                "4",
                "--weights",
                str(tmp_path / "empty"),
            ]
        )
    assert f"--weights {tmp_path / 'empty'}: holds no model" in capsys.readouterr().err
    np.save(tmp_path / "small.npy", np.zeros((10, 10), np.float32))
    nan = np.load(photo / "moto_disp.npy").astype(np.float32)
    nan[5, 5] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    for bad, message in (
        ("small.npy", "small.npy: disparity is 10×10, the image 185×125"),
        ("nan.npy", "nan.npy: disparity map has NaN"),
    ):
        with pytest.raises(SystemExit, match=message) as e:
            run(
                [
                    "--image",
                    moto,
                    "--out",
                    str(tmp_path / "o.png"),
                    "--focus-disparity",
                    "0.5",
                    "--K",
                    "4",
                    "--classical",
                    "--disparity",
                    str(tmp_path / bad),
                ]
            )
        assert str(e.value).startswith("error: ") and "\n" not in str(e.value)


def test_depth_cli_never_replaces_a_users_map_and_refuses_a_non_depth_folder(tmp_path, capsys):
    """model.depth once wrote NAME_disp.npy beside the user's NAME_disp.png; the .npy wins at scan time."""
    from model import depth as depth_cli

    folder, photos = _depth_folders(tmp_path)
    Image.fromarray(np.full((96, 128), 40000, np.uint16)).save(photos / "coffee_disp.png")  # the user's depth
    np.save(photos / "chelsea_disp.npy", np.ones((96, 128), np.float32))  # the user's too, in .npy
    argv = ["--images", str(photos), "--weights", str(folder)]
    res = depth_cli.main(depth_cli.parse_args(argv + ["--overwrite"]))
    assert not res["written"] and len(res["kept"]) == 2 and not (photos / "coffee_disp.npy").exists()
    assert np.array_equal(np.load(photos / "chelsea_disp.npy"), np.ones((96, 128), np.float32))
    # its own maps it may replace with --overwrite
    (photos / "chelsea_disp.npy").unlink()
    assert depth_cli.main(depth_cli.parse_args(argv))["written"] == [str(photos / "chelsea_disp.npy")]
    assert depth_cli.main(depth_cli.parse_args(argv + ["--overwrite"]))["written"] == [str(photos / "chelsea_disp.npy")]
    # a folder that is not a depth model, and a folder where nothing can be written: non-zero exits
    (tmp_path / "notdepth").mkdir()
    (tmp_path / "notdepth" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(SystemExit):
        depth_cli.parse_args(["--images", str(photos), "--weights", str(tmp_path / "notdepth")])
    assert "config.json describes a 'bert' model, not a Depth Anything" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png")
    with pytest.raises(SystemExit, match="no disparity map written"):
        depth_cli.main(depth_cli.parse_args(["--images", str(broken), "--weights", str(folder)]))


def test_infer_with_a_camera_renders_the_lens_blur_of_metric_depth(tmp_path, capsys):
    """--lens 85 --f-number 1.4 --focus-distance 1.5 --depth D.npy: K and d_f follow the lens formula, the subject at
    the focus distance stays sharp and the wall behind blurs by the predicted radius; the same with --focus X,Y;
    without metric depth the camera form is refused and says why; the photo's EXIF camera is printed."""
    from skimage import data as skdata

    from renderer.lens import Camera

    rgb = skdata.astronaut()[::4, ::4]  # 128×128
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0110] = "Test Camera"
    exif.get_ifd(0x8769).update({0x920A: 85.0, 0x829D: 1.4, 0xA405: 85})
    img.save(tmp_path / "p.jpg", exif=exif, quality=95)
    z = np.full((128, 128), 6.0, np.float32)
    z[40:90, 40:90] = 1.5  # a subject at 1.5 m before a wall at 6 m
    np.save(tmp_path / "z.npy", z)
    out = tmp_path / "b.png"
    cam = ["--lens", "85", "--f-number", "1.4", "--depth", str(tmp_path / "z.npy"), "--classical"]
    run(["--image", str(tmp_path / "p.jpg"), "--out", str(out), "--focus-distance", "1.5", *cam])
    text = capsys.readouterr().out
    K, d_f = Camera(85.0, 1.4, 36.0).render_params(1.5, 1.5, 128)
    assert f"K = {K:.2f}, d_f = {d_f:.4f}" in text and "taken with Test Camera, 85 mm (85 mm equivalent), f/1.4" in text
    r_wall = Camera(85.0, 1.4, 36.0).blur_radius_px(6.0, 1.5, 128)
    assert 2 < r_wall < 8
    src, res = np.asarray(img, np.float32), np.asarray(Image.open(out), np.float32)
    err = np.abs(res - src).mean(axis=2)
    assert err[48:82, 48:82].mean() < 0.25 * err[:25, :25].mean()  # in focus stays, the wall blurs
    run(["--image", str(tmp_path / "p.jpg"), "--out", str(tmp_path / "f.png"), "--focus", "64,64", *cam])
    assert f"K = {K:.2f}, d_f = {d_f:.4f}" in capsys.readouterr().out  # --focus at the subject: the same focus
    with pytest.raises(SystemExit):
        run(
            [
                "--image",
                str(tmp_path / "p.jpg"),
                "--out",
                str(out),
                "--lens",
                "85",
                "--f-number",
                "1.4",
                "--focus-distance",
                "1.5",
            ]
        )
    assert "needs metric depth: --depth FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(["--image", str(tmp_path / "p.jpg"), "--out", str(out), "--K", "8", "--focus", "1,1", *cam])
    assert "--K: not with the camera form" in capsys.readouterr().err


def test_the_camera_form_takes_a_metric_depth_network_and_refuses_a_relative_one(tmp_path, capsys):
    """Depth Anything V2's metric checkpoints (config depth_estimation_type: metric) give metres: the camera form
    uses them without --depth. A relative network (disparity up to scale and shift) is refused, saying why."""
    from skimage import data as skdata
    from transformers import DepthAnythingForDepthEstimation

    from model.depthnet import depth_config, depth_kind

    Image.fromarray(skdata.astronaut()[::4, ::4]).save(tmp_path / "p.png")
    metric, relative = tmp_path / "metric", tmp_path / "relative"
    cfg = depth_config("tiny")
    cfg.depth_estimation_type, cfg.max_depth = "metric", 20
    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(cfg).save_pretrained(metric)
    DepthAnythingForDepthEstimation(depth_config("tiny")).save_pretrained(relative)
    assert depth_kind(metric) == "metric" and depth_kind(relative) == "relative"
    cam = ["--image", str(tmp_path / "p.png"), "--lens", "50", "--f-number", "2", "--focus", "64,64", "--classical"]
    run([*cam, "--out", str(tmp_path / "m.png"), "--depth-weights", str(metric)])
    text = capsys.readouterr().out
    assert f"depth: metric network {metric}" in text and "camera: 50 mm f/2 on a 36 mm sensor" in text
    assert Image.open(tmp_path / "m.png").size == (128, 128)
    with pytest.raises(SystemExit):
        run([*cam, "--out", str(tmp_path / "r.png"), "--depth-weights", str(relative)])
    assert f"the depth network {relative} gives relative depth" in capsys.readouterr().err


def test_the_camera_form_is_checked_whole_before_any_network_loads(tmp_path, capsys, monkeypatch):
    """--focus-distance 0.05 (a K far above the model's) once loaded the network first and failed 10 s later;
    --sensor inf rendered K = 0 without a word; negative metres read as unknown, and --focus on one focused at the
    far plane."""
    import model.infer as infer_mod

    def no_network(*a, **k):
        raise AssertionError("a network was loaded before the arguments were checked")

    monkeypatch.setattr(infer_mod, "load_model", no_network)
    monkeypatch.setattr(infer_mod, "load_estimator", no_network)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "p.png")
    z = np.full((64, 64), 4.0, np.float32)
    np.save(tmp_path / "z.npy", z)
    z[:8, :8] = -2.0
    np.save(tmp_path / "neg.npy", z)
    z[:8, :8] = 0.0
    np.save(tmp_path / "hole.npy", z)
    base = ["--image", str(tmp_path / "p.png"), "--out", str(tmp_path / "o.png"), "--lens", "85", "--f-number", "1.4"]
    cases = {
        ("--focus-distance", "0.05", "--depth", str(tmp_path / "z.npy")): r"focus distance 0.05 m is not beyond",
        ("--focus-distance", "0.09", "--depth", str(tmp_path / "z.npy")): r"K = \d+\.\d at 64 px, above the renderer",
        (
            "--focus-distance",
            "2",
            "--sensor",
            "inf",
            "--depth",
            str(tmp_path / "z.npy"),
        ): r"--sensor: a sensor width in mm, finite and > 0, got 'inf'",
        (
            "--focus-distance",
            "2",
            "--depth",
            str(tmp_path / "neg.npy"),
        ): r"neg.npy: 64 pixels of negative depth \(down to -2 m\)",
        ("--focus", "2,2", "--depth", str(tmp_path / "hole.npy")): r"--focus 2,2: .* holds no valid depth there",
    }
    for extra, message in cases.items():
        with pytest.raises(SystemExit):
            infer_mod.parse_args(base + list(extra))
        err = capsys.readouterr().err
        assert re.search(message, err), (extra, err)


def test_a_k_past_the_models_k_max_is_rendered_with_the_trainers_mapping():
    """K above k_max: the image and its disparity downscaled by k_max / K, rendered at the K that scale gives, and
    brought back to the input's size (the mapping model.data reads data built past k_max with)."""
    import cv2

    from model.config import ModelConfig
    from model.network import MagicBokeh
    from model.pipeline import render_model

    model = MagicBokeh(ModelConfig.from_yaml("tiny")).eval()
    rng = np.random.default_rng(0)
    rgb = rng.random((64, 48, 3)).astype(np.float32)
    disp = rng.random((64, 48)).astype(np.float32)
    K = 2 * model.cfg.k_max
    out = render_model(model, rgb, disp, K, 0.5)
    assert out.shape == rgb.shape and 0 <= out.min() and out.max() <= 1
    small = render_model(
        model,
        cv2.resize(rgb, (24, 32), interpolation=cv2.INTER_AREA),
        cv2.resize(disp, (24, 32), interpolation=cv2.INTER_AREA),
        model.cfg.k_max,
        0.5,
    )
    assert np.allclose(out, cv2.resize(small, (48, 64), interpolation=cv2.INTER_CUBIC).clip(0, 1), atol=1e-6)
