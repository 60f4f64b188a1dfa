"""Clips (datagen.clips): every frame is an exact render of the scene at that instant."""

import numpy as np
import pytest
from scipy import ndimage

from common.images import to_uint8
from datagen.assets import usable
from datagen.clips import ClipDraw, SequenceConfig, draw_clip, frame_layers, render_clip
from datagen.scenes import SceneConfig, build_layers, draw_scene, make_sample, resolve_focus


def _scene(assets, index=3, size=96):
    fgs, bgs = usable(assets, "foreground", "train"), usable(assets, "background", "train")
    spec = draw_scene(0, index, fgs, bgs, SceneConfig(bg_map_prob=0.0), size=size)
    return spec, {a.id: a for a in assets}


def _still(frames=4, mode="fixed"):
    n = 2
    return ClipDraw(frames, [(0.0, 0.0)] * n, [(0.0, 0.0)] * n, [1.0] * n, (0.0, 0.0), mode)


def test_a_still_clip_renders_the_image_recipes_bytes_in_every_frame(assets):
    spec, by_id = _scene(assets)
    image = make_sample(spec, by_id)
    frames = render_clip(spec, _still(), build_layers(spec, by_id), resolve_focus)
    for f in frames:
        assert np.array_equal(to_uint8(f["aif"]), image["aif"]) and np.array_equal(f["disp"], image["disp"])
        assert np.array_equal(to_uint8(f["bokeh"]), image["bokeh"])
        assert f["K"] == spec.K and f["focus_disparity"] == image["json"]["focus"]["disparity"]


def test_a_lateral_camera_move_shifts_a_layer_of_disparity_d_by_t_times_d(assets):
    """Parallax, exact and sub-pixel: a subject at disparity d moves t·k·d px by frame k; the background plane's
    disparity is the moved plane's, written exactly."""
    spec, by_id = _scene(assets)
    layers = build_layers(spec, by_id)
    clip = _still(6)
    clip.camera = (0.7, -0.3)
    for k in (1, 5):
        moved = frame_layers(spec, clip, k, layers)
        for i, fg in enumerate(spec.foregrounds):
            d = fg.disparity
            shift = (clip.camera[1] * k * d, clip.camera[0] * k * d)  # (rows, columns)
            pm0 = layers[i].alpha
            want = ndimage.shift(pm0, shift, order=1, mode="constant", cval=0.0)
            inner = (slice(8, -8), slice(8, -8))
            assert np.abs(moved[i].alpha[inner] - want[inner]).max() < 1e-4, (k, i)
            assert np.all(moved[i].disparity == np.float32(d))
        # a background point at x with disparity d(x) lands at x + τ·d(x)
        a, gx, gy = spec.bg_plane
        tx, ty = clip.camera[0] * k, clip.camera[1] * k
        x, y = 40.5, 50.5
        d = a + gx * x + gy * y
        xi, yi = x + tx * d, y + ty * d
        j, i = int(xi - 0.5), int(yi - 0.5)
        fx, fy = xi - 0.5 - j, yi - 0.5 - i
        D = moved[-1].disparity.astype(np.float64)
        bil = (D[i, j] * (1 - fx) + D[i, j + 1] * fx) * (1 - fy) + (D[i + 1, j] * (1 - fx) + D[i + 1, j + 1] * fx) * fy
        assert bil == pytest.approx(d, abs=1e-6)


def test_the_focus_schedule_is_followed(assets):
    spec, by_id = _scene(assets)
    layers = build_layers(spec, by_id)
    ramp = _still(5, "ramp")
    ramp.k_ratio = 1.5
    frames = render_clip(spec, ramp, layers, resolve_focus)
    assert [f["K"] for f in frames] == pytest.approx([min(spec.K * (1 + 0.5 * k / 4), 32) for k in range(5)])
    pull = _still(7, "pull")
    pull.pull_target = "background" if spec.focus_target != "background" else "fg0"
    pull.pull_start, pull.pull_frames, pull.eased = 1.0, 4.0, True
    frames = render_clip(spec, pull, layers, resolve_focus)
    d_a = resolve_focus(spec, layers)[2]
    other = spec.__class__(**{**spec.__dict__, "focus_target": pull.pull_target})
    d_b = resolve_focus(other, layers)[2]
    for k, f in enumerate(frames):
        w = min(max((k - 1) / 4, 0), 1)
        w = w * w * (3 - 2 * w)
        assert f["focus_disparity"] == pytest.approx(d_a + (d_b - d_a) * w, abs=1e-12)
    assert frames[0]["focus_disparity"] == d_a and frames[-1]["focus_disparity"] == pytest.approx(d_b)


def test_clip_draws_are_deterministic_and_in_range(assets):
    spec, _ = _scene(assets)
    cfg = SequenceConfig(frames=16, focus_probs=[0.0, 1.0, 0.0])
    a = draw_clip(spec, cfg, ["fg0", "fg1", "background"])
    assert a == draw_clip(spec, cfg, ["fg0", "fg1", "background"])
    assert a.focus_mode == "pull" and a.pull_target != spec.focus_target
    assert 0 <= a.pull_start and a.pull_start + a.pull_frames <= 15 + 1e-9
    assert all(0.8 <= r <= 1.25 for r in a.depth_ratio) and np.hypot(*a.camera) <= 1.0
    with pytest.raises(ValueError, match="frames: 0 \\(off\\) or 2..64"):
        SequenceConfig(frames=65)


def test_a_moving_subject_keeps_its_order_in_depth_and_scales_with_disparity(assets):
    spec, by_id = _scene(assets)
    layers = build_layers(spec, by_id)
    clip = _still(9)
    clip.velocity = [(1.5, 0.5), (-1.0, 0.0)]
    clip.depth_ratio = [1.2, 0.5]  # the second would pass behind the background: held at the margin
    last = frame_layers(spec, clip, 8, layers, margin=0.05)
    bg_max = float(last[-1].disparity.max())
    for i, fg in enumerate(spec.foregrounds):
        d = float(last[i].disparity[0, 0])
        assert bg_max + 0.05 - 1e-6 <= d <= 1.0
        # the subject's area scales by (d/d0)²
        ratio = last[i].alpha.sum() / layers[i].alpha.sum()
        assert ratio == pytest.approx((d / fg.disparity) ** 2, rel=0.05), (i, ratio, d, fg.disparity)


def test_a_clip_build_is_deterministic_readable_verified_and_previewed(tmp_path, local_ray):
    """datagen/build.py with a sequence: section: one sample = one clip (aif/bokeh/lq/disp per frame + json); the
    same bytes with 1 or 2 workers; manifests.verify finds nothing wrong; decode_clip gives T×H×W×C arrays;
    preview.gif plays the first clip."""
    import json

    import pyarrow.parquet as pq
    import webdataset as wds
    from PIL import Image

    from datagen.build import main, parse_args
    from datagen.shards import decode_clip
    from manifests import verify

    args = ["--size", "96", "--num-samples", "4", "--samples-per-shard", "2", "--set", "min_asset_size=96",
            "--set", "val_samples=0", "--set", "scene.bg_map_prob=0", "--set", "sequence.frames=4",
            "--set", "sequence.focus_probs=[0, 1, 0]", "--set", "sequence.camera_shift_px=[0.5, 1]"]
    a, b = tmp_path / "a", tmp_path / "b"
    main(parse_args(args + ["--out", str(a), "--workers", "1"]))
    main(parse_args(args + ["--out", str(b), "--workers", "2"]))
    for name in ("train-000000.tar", "train-000001.tar", "samples.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert verify(a) == []
    rows = {r["key"]: r for r in pq.read_table(a / "samples.parquet").to_pylist()}
    assert len(rows) == 4 and all(r["frames"] == 4 for r in rows.values())
    for sample in wds.WebDataset(str(a / "train-000000.tar"), shardshuffle=False, empty_check=False):
        clip = decode_clip(sample)
        assert clip["aif"].shape == (4, 96, 96, 3) and clip["lq"].shape == (4, 24, 24, 3)
        assert clip["disp"].shape == (4, 96, 96) and clip["disp"].dtype == np.float32
        frames = clip["json"]["frames"]
        assert [f["K"] for f in frames] == rows[sample["__key__"]]["frame_K"]
        assert [f["focus_disparity"] for f in frames] == rows[sample["__key__"]]["frame_focus_disparity"]
        assert len({f["noise_seed"] for f in frames}) == 4  # the noise is drawn afresh every frame
        assert json.loads(sample["json"])["clip"]["focus_mode"] in ("pull", "fixed")
    assert Image.open(a / "preview.gif").n_frames == 4
    # the card declares the clip's features: Hugging Face datasets reads every clip with one schema
    import datasets

    ds = datasets.load_dataset(str(a), cache_dir=str(tmp_path / "hf"), split="train")
    assert len(ds) == 4 and ds[0]["aif.003.png"].size == (96, 96) and len(ds[0]["json"]["frames"]) == 4


def test_clip_configs_are_checked_at_load():
    from datagen.config import BuildConfig

    with pytest.raises(ValueError, match="scene.bg_map_prob: clips move plane backgrounds only"):
        BuildConfig.load(None, ["sequence.frames=8"])
    with pytest.raises(ValueError, match="sequence and camera"):
        BuildConfig.load(None, ["sequence.frames=8", "scene.bg_map_prob=0", "camera.target=phone_main"])
    on = BuildConfig.load(None, ["sequence.frames=8", "scene.bg_map_prob=0"])
    assert on.digest() != BuildConfig.load(None, ["scene.bg_map_prob=0"]).digest()  # clips count in the hash
