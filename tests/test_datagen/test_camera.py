"""Camera-true builds (the ``camera:`` section): scenes in metres, K from the target lens, the LQ from the phone's
own capture."""

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

from datagen.build import main, parse_args
from datagen.camera import RANGE_BOUNDS as CAMERA_RANGE_BOUNDS
from datagen.config import BuildConfig
from degradations import degrade
from renderer.lens import Camera

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
    "--workers",
    "1",
]


def _samples(folder):
    urls = sorted(str(p) for p in folder.glob("train-*.tar"))
    return list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))


def _png(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="module")
def camera_build(tmp_path_factory, local_ray):
    out = tmp_path_factory.mktemp("camera") / "cam"
    main(
        parse_args(
            ARGS
            + [
                "--out",
                str(out),
                "--set",
                "camera.target=fullframe_85mm_f1.4",
                "--set",
                "camera.input=phone_tele",
                "--set",
                "camera.input_zoom_range=[4, 5]",
            ]
        )
    )
    return out


def test_camera_samples_carry_the_lens_k_and_the_phones_own_blur(camera_build):
    out = camera_build
    rows = pq.read_table(out / "samples.parquet").to_pylist()
    assert len(rows) == 4 and all(r["cam_target_name"] == "fullframe_85mm_f1.4" for r in rows)
    deg = BuildConfig().degradation_config()
    lq_blurred = 0
    for sample in _samples(out):
        meta = json.loads(sample["json"])
        cam, render = meta["camera"], meta["render"]
        t = cam["target"]
        lens = Camera(t["focal_length_mm"], t["f_number"], t["sensor_width_mm"])
        # K is the lens formula applied to the recorded camera and distances, and d_f = z_near / z_f
        assert render["K"] == pytest.approx(lens.k_metric(cam["focus_distance_m"], 96) / cam["z_near_m"], rel=1e-9)
        assert render["focus_disparity"] == pytest.approx(cam["z_near_m"] / cam["focus_distance_m"], rel=1e-9)
        assert meta["scene"]["K"] == render["K"] and 0 < render["K"] <= 32
        i = cam["input"]
        assert i["name"] == "phone_tele" and 4 <= i["zoom"] <= 5
        phone = Camera(i["focal_length_mm"], i["f_number"], i["sensor_width_mm"], i["zoom"])
        assert cam["K_input"] == pytest.approx(phone.k_metric(cam["focus_distance_m"], 96) / cam["z_near_m"])
        assert 0 < cam["K_input"] < render["K"]  # the phone blurs, less than the large sensor
        # the LQ is not the degraded all-in-focus image: it carries the phone's blur
        from_aif, _ = degrade(_png(sample["aif.png"]), meta["scene"]["degradation_seed"], deg)
        lq_blurred += not np.array_equal(_png(sample["lq.png"]), from_aif)
    assert lq_blurred == 4
    row = rows[0]
    assert {"cam_focus_distance_m", "cam_z_near_m", "cam_input_zoom", "cam_target_f_number"} <= set(row)


def test_a_pinhole_input_gives_the_k_recipes_lq(assets):
    """A pinhole input camera: the LQ is exactly the K recipe's (the all-in-focus image degraded)."""
    from datagen.assets import usable
    from datagen.camera import CameraConfig, draw_camera
    from datagen.scenes import SceneConfig, draw_scene, make_sample

    fgs, bgs = usable(assets, "foreground", "train"), usable(assets, "background", "train")
    by_id = {a.id: a for a in assets}
    cfg = CameraConfig(target=["fullframe_50mm_f1.8", "ranges"], input="pinhole")
    deg = BuildConfig().degradation_config()
    for index in range(3):
        spec = draw_scene(0, index, fgs, bgs, SceneConfig(), size=96)
        sample = make_sample(spec, by_id, deg, camera=draw_camera(spec, cfg))
        meta = sample["json"]
        assert meta["camera"]["K_input"] == 0 and meta["camera"]["input"]["name"] == "pinhole"
        assert meta["camera"]["input"]["f_number"] is None  # no lens
        assert np.array_equal(sample["lq"], degrade(sample["aif"], spec.degradation_seed, deg)[0])


def test_a_refocus_pair_has_an_input_focused_on_another_target(assets):
    """camera.input_focus: other: the target render is the same-focus build's, the input camera (a full-frame lens
    here, strongly defocused) focuses on another drawn target, recorded in the JSON, and the LQ is degraded from
    exactly that render; the draws before it are unchanged."""
    import dataclasses

    from common.images import to_uint8
    from datagen.assets import usable
    from datagen.camera import CameraConfig, draw_camera
    from datagen.scenes import SceneConfig, draw_scene, make_sample, render_seed
    from renderer import render_bokeh

    fgs, bgs = usable(assets, "foreground", "train"), usable(assets, "background", "train")
    by_id = {a.id: a for a in assets}
    deg = BuildConfig().degradation_config()
    base = dict(target="fullframe_85mm_f1.4", input="fullframe_50mm_f1.8", fg_distance_m=(3.0, 5.0))
    seen = set()
    for index in range(4):
        spec = draw_scene(0, index, fgs, bgs, SceneConfig(), size=96)
        same_spec, other_spec = dataclasses.replace(spec), dataclasses.replace(spec)
        same = make_sample(same_spec, by_id, deg, camera=draw_camera(same_spec, CameraConfig(**base)))
        cam = draw_camera(other_spec, CameraConfig(**base, input_focus="other"))
        other = make_sample(other_spec, by_id, deg, camera=cam)
        assert cam.input_focus[0] != spec.focus_target
        assert np.array_equal(same["bokeh"], other["bokeh"]) and np.array_equal(same["aif"], other["aif"])
        focus = other["json"]["camera"]["input_focus"]
        assert focus["target"] == cam.input_focus[0] or focus["target"] == "background"  # a subject off frame
        assert same["json"]["camera"]["input_focus"]["disparity"] == same["json"]["focus"]["disparity"]
        _, _, K_in = cam.lens_k(focus["disparity"], 96)
        assert other["json"]["camera"]["K_input"] == K_in > 0
        from datagen.scenes import build_layers

        source = render_bokeh(build_layers(other_spec, by_id), K_in, focus["disparity"], seed=render_seed(spec), **{})
        assert np.array_equal(other["lq"], degrade(to_uint8(source), spec.degradation_seed, deg)[0])
        seen.add(focus["disparity"] != other["json"]["focus"]["disparity"])
    assert True in seen  # focused elsewhere, not only by name
    with pytest.raises(ValueError, match="input_focus: 'other' needs an input camera with a lens"):
        BuildConfig.load(
            None, ["camera.target=fullframe_85mm_f1.4", "camera.input=pinhole", "camera.input_focus=other"]
        )
    with pytest.raises(ValueError, match="'other' is for images"):
        BuildConfig.load(None, ["camera.target=fullframe_85mm_f1.4", "camera.input_focus=other", "sequence.frames=4"])
    refocus = BuildConfig.load("datagen/configs/refocus.yaml", [])
    assert refocus.camera.input_focus == "other" and refocus.camera.input == "fullframe_50mm_f1.8"


def test_a_camera_range_past_the_models_k_builds_and_past_the_renderers_limit_is_refused_at_load():
    """K is limited by the renderer only (its largest blur radius, 512 px): a full-frame 85 mm f/1.4 focused at
    0.8 m gives K ≈ 47 at 512 px and ≈ 189 at 2048 px, and the build records that bound as its max_K (the trainer
    downscales such data onto its own k_max); at 8192 px it would be ≈ 755 px, refused."""
    near = ["camera.target=fullframe_85mm_f1.4", "camera.fg_distance_m=[0.8, 2]", "camera.bg_distance_m=[3, .inf]"]
    at512 = BuildConfig.load(None, near)
    at2048 = BuildConfig.load(None, near + ["size=2048"])
    assert 40 < at512.max_k() < 60 and at2048.max_k() == pytest.approx(4 * at512.max_k())
    assert BuildConfig.load(None, near[:1] + ["camera.fg_distance_m=[3, 4]"]).max_k() == 32.0  # at least MAX_K
    with pytest.raises(
        ValueError,
        match=r"fullframe_85mm_f1.4 focused at 0.8 m .* gives K = \d+\.\d at 8192 px, "
        r"above the renderer's largest blur radius 512 px",
    ):
        BuildConfig.load(None, near + ["size=8192"])
    with pytest.raises(ValueError, match="camera.target: 'leica' is not a camera preset; presets"):
        BuildConfig.load(None, ["camera.target=leica"])
    # off, the section leaves every K-range build's hash as it was (a resumed build keeps its folder); on, it counts
    import hashlib

    from common import config

    values = config.to_dict(BuildConfig())
    values.pop("camera")
    values.pop("sequence")  # clips, off, leave it alike
    values.pop("lens")  # and lens characters
    assert BuildConfig().digest() == hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
    assert BuildConfig.load(None, ["camera.target=phone_main"]).digest() != BuildConfig().digest()


def test_the_synthetic_evaluation_scores_by_the_target_f_number(camera_build, tmp_path):
    from model.evaluation import evaluate
    from model.evaluation import parse_args as eval_args

    args = eval_args(
        [
            "--protocol",
            "synthetic",
            "--data",
            str(camera_build / "train-*.tar"),
            "--methods",
            "identity",
            "--metrics",
            "psnr,ssim",
            "--out",
            str(tmp_path / "eval"),
        ]
    )
    summary = evaluate(args)["summary"]
    assert "PSNR (dB) by the target camera's f-number (images in brackets):" in summary
    assert "| f/1.4 and faster (4) |" in summary  # every sample: 85 mm f/1.4


@pytest.mark.parametrize(
    "name,least,greatest,least_allowed", [(name, *bounds) for name, bounds in CAMERA_RANGE_BOUNDS.items()]
)
@pytest.mark.parametrize("enabled", [True, False])
def test_every_camera_range_is_bounded_whether_the_section_is_on_or_off(name, least, greatest, least_allowed, enabled):
    """`f_number_range: [0, -1]` passed while the section was off, and `input_zoom_range: [300, 300]` made an LQ
    blurred far past the model's maximum K."""
    from datagen.config import BuildConfig

    on = ["camera.target=fullframe_50mm_f1.8", "camera.fg_distance_m=[3, 4]"] if enabled else []
    if not enabled:  # the bounds themselves are values (with the section off, no lens limits them further)
        lo = least if least_allowed else least + 0.01
        hi = 5.0 if name == "fg_distance_m" else greatest  # (the background lies beyond, from 6 m)
        assert list(BuildConfig.load(None, [f"camera.{name}=[{lo}, {hi}]"]).camera.__dict__[name]) == [lo, hi]
    for bad in (
        [least - 1, greatest] if least_allowed else [least, greatest],
        [least + 0.01, greatest * 2],
        [greatest, least + 0.01],
    ):
        with pytest.raises(
            ValueError,
            match=rf"--set camera.{name}=.*: camera.{name}: \[low, high\] with low <= "
            rf"high, both in",
        ):
            BuildConfig.load(None, on + [f"camera.{name}=[{bad[0]}, {bad[1]}]"])


def test_camera_presets_name_their_key_and_the_input_blur_is_checked_like_k():
    from datagen.config import BuildConfig

    with pytest.raises(
        ValueError,
        match=r"^--set camera.target=nikon_z_58mm: camera.target: 'nikon_z_58mm' is not "
        r"a camera preset",
    ):
        BuildConfig.load(None, ["camera.target=nikon_z_58mm"])
    with pytest.raises(ValueError, match=r"^--set camera.input=gopro: camera.input: 'gopro' is not a camera preset"):
        BuildConfig.load(None, ["camera.input=gopro"])  # the section is off: checked all the same
    zoomed = ["camera.target=fullframe_85mm_f1.4", "camera.fg_distance_m=[3, 4]", "camera.input_zoom_range=[1, 60]"]
    BuildConfig.load(None, zoomed)  # K_input ≈ 35 at 512 px: within the renderer's limit
    with pytest.raises(ValueError, match=r"camera.input_zoom_range: phone_tele at 60× zoom .* K_input = 535"):
        BuildConfig.load(None, zoomed + ["size=2048", "camera.fg_distance_m=[0.8, 4]"])


def test_flow_needs_frames_and_clip_motion_stays_within_the_frame():
    from datagen.config import BuildConfig

    with pytest.raises(ValueError, match=r"sequence.flow: true needs clips"):
        BuildConfig.load(None, ["sequence.flow=true"])
    for key, value in (("speed_px", "[0, 80]"), ("accel_px", "[0, 30]"), ("camera_shift_px", "[0, 80]")):
        with pytest.raises(ValueError, match=rf"sequence.{key}: .* more than the 512 px frame"):
            BuildConfig.load(None, ["sequence.frames=8", f"sequence.{key}={value}"])
    assert BuildConfig.load(None, ["sequence.frames=8", "sequence.flow=true"]).sequence.flow
