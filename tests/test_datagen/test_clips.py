"""Clips (datagen.clips): every frame is an exact render of the scene at that instant."""

import numpy as np
import pytest
from scipy import ndimage

from common.images import to_uint8
from datagen.assets import usable
from datagen.clips import ClipDraw, SequenceConfig, draw_clip, frame_layers, frame_state, render_clip
from datagen.scenes import SceneConfig, build_layers, draw_scene, make_sample, render_seed, resolve_focus
from manifests.schemas import clip_json_type
from renderer import Quality, TextureCache


def _scene(assets, index=3, size=96):
    fgs, bgs = usable(assets, "foreground", "train"), usable(assets, "background", "train")
    spec = draw_scene(0, index, fgs, bgs, SceneConfig(bg_map_prob=0.0), size=size)
    return spec, {a.id: a for a in assets}


def _same_fields(value, kind, where="json"):
    """``value`` (a clip's JSON) has exactly the fields of ``kind`` (its declared Arrow type), at every level: what
    the dataset card declares to Hugging Face datasets is what the clips hold."""
    import pyarrow as pa

    if pa.types.is_struct(kind):
        names = {kind.field(i).name for i in range(kind.num_fields)}
        assert set(value) == names, (where, sorted(set(value) ^ names))
        for name in names:
            if value[name] is not None:
                _same_fields(value[name], kind.field(name).type, f"{where}.{name}")
    elif pa.types.is_list(kind) and value:
        _same_fields(value[0], kind.value_type, f"{where}[0]")


def _still(frames=4, mode="fixed"):
    n = 2
    return ClipDraw(frames, [(0.0, 0.0)] * n, [(0.0, 0.0)] * n, [1.0] * n, (0.0, 0.0), mode)


def test_a_still_clip_renders_the_image_recipes_bytes_in_every_frame(assets):
    spec, by_id = _scene(assets)
    image = make_sample(spec, by_id)
    cache = TextureCache()
    frames = render_clip(spec, _still(), build_layers(spec, by_id), resolve_focus, textures=cache)
    # nothing moves: each layer is decoded once for the clip, and its summed-area table summed once
    assert (cache.misses, cache.hits, cache.tables_reused) == (3, 3 * 7, 3 * 3)
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
    """datagen/build.py with a sequence: section (camera-true, with flow): one sample = one clip (aif/bokeh/lq/disp
    per frame, flow between frames, json); the same bytes with 1 or 2 workers; manifests.verify finds nothing wrong;
    decode_clip gives T×H×W×C arrays; preview.gif plays the first clip; datasets reads it."""
    import json

    import pyarrow.parquet as pq
    import webdataset as wds
    from PIL import Image

    from datagen.build import main, parse_args
    from datagen.shards import decode_clip
    from manifests import verify

    args = [
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
        "--set",
        "scene.bg_map_prob=0",
        "--set",
        "sequence.frames=4",
        "--set",
        "sequence.focus_probs=[0, 1, 0]",
        "--set",
        "sequence.camera_shift_px=[0.5, 1]",
        "--set",
        "sequence.flow=true",
        "--set",
        "sequence.zoom=[1, 1.2]",
        "--set",
        "camera.target=fullframe_85mm_f1.4",
        "--set",
        "camera.input=phone_tele",
    ]
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
        assert clip["flow"].shape == (3, 96, 96, 2) and clip["flow"].dtype == np.float32
        assert clip["json"]["camera"]["K"] == clip["json"]["frames"][0]["K"] == rows[sample["__key__"]]["K"]
        frames = clip["json"]["frames"]
        assert [f["K"] for f in frames] == rows[sample["__key__"]]["frame_K"]
        assert [f["focus_disparity"] for f in frames] == rows[sample["__key__"]]["frame_focus_disparity"]
        assert [f["camera"]["focus_distance_m"] for f in frames] == rows[sample["__key__"]]["frame_focus_distance_m"]
        assert rows[sample["__key__"]]["frame_magnification"][0] == 1.0
    # a sample webdataset already decoded gives the same arrays (it once raised a TypeError)
    decoded = next(
        iter(wds.WebDataset(str(a / "train-000000.tar"), shardshuffle=False, empty_check=False).decode("rgb8"))
    )
    raw = next(iter(wds.WebDataset(str(a / "train-000000.tar"), shardshuffle=False, empty_check=False)))
    for name in ("aif", "bokeh", "lq", "disp", "flow"):
        np.testing.assert_array_equal(decode_clip(decoded)[name], decode_clip(raw)[name])
        assert len({f["noise_seed"] for f in frames}) == 4  # the noise is drawn afresh every frame
        assert json.loads(sample["json"])["clip"]["focus_mode"] in ("pull", "fixed")
    assert Image.open(a / "preview.gif").n_frames == 4
    card = (a / "README.md").read_text()
    assert "`flow.NNN.npy`" in card and "decode_clip(sample)" in card and "`aif.png`" not in card
    # the card declares the clip's features: Hugging Face datasets reads every clip with one schema
    import datasets

    ds = datasets.load_dataset(str(a), cache_dir=str(tmp_path / "hf"), split="train")
    assert len(ds) == 4 and ds[0]["aif.003.png"].size == (96, 96) and len(ds[0]["json"]["frames"]) == 4
    assert np.asarray(ds[0]["flow.002.npy"]).shape == (96, 96, 2)


def test_clip_configs_are_checked_at_load():
    from datagen.config import BuildConfig

    with pytest.raises(ValueError, match=r"zoom: \[low, high\] within \[0.5, 2.0\]"):
        BuildConfig.load(None, ["sequence.frames=8", "sequence.zoom=[1, 3]"])
    with pytest.raises(ValueError, match="pull_space: one of"):
        BuildConfig.load(None, ["sequence.frames=8", "sequence.pull_space=metres"])
    # a zoom magnifies the blur: the build's max_K counts it, and a camera range within the renderer's blur
    # limit unzoomed can exceed it zoomed
    cam = ["camera.target=fullframe_85mm_f1.4", "camera.input=pinhole", "camera.fg_distance_m=[0.8, 4]"]
    still = BuildConfig.load(None, cam + ["sequence.frames=8", "size=512"])
    zoomed = BuildConfig.load(None, cam + ["sequence.frames=8", "size=512", "sequence.zoom=[2, 2]"])
    assert 32 < still.max_k() and zoomed.max_k() == pytest.approx(2 * still.max_k(), rel=1e-3)
    BuildConfig.load(None, cam + ["sequence.frames=8", "size=4096"])
    with pytest.raises(ValueError, match=r"at 8192 px, above the renderer's largest blur radius 512 px"):
        BuildConfig.load(None, cam + ["sequence.frames=8", "size=4096", "sequence.zoom=[2, 2]"])
    on = BuildConfig.load(None, ["sequence.frames=8", "scene.bg_map_prob=0"])
    assert on.digest() != BuildConfig.load(None, ["scene.bg_map_prob=0"]).digest()  # clips count in the hash


@pytest.mark.parametrize("size", [96, (128, 96), (96, 128)])
def test_a_zoom_scales_every_layer_about_the_centre_and_k_with_it(assets, size):
    spec, by_id = _scene(assets, size=size)
    layers = build_layers(spec, by_id)
    W, H = spec.frame
    assert layers[0].shape == layers[-1].shape == (H, W)
    clip = _still(5)
    clip.zoom = 1.5
    m = 1.5 ** (2 / 4)
    assert clip.magnification(2) == pytest.approx(m) and clip.magnification(4) == pytest.approx(1.5)
    moved = frame_layers(spec, clip, 2, layers)
    cx, cy = W / 2, H / 2  # the output pixel centre p came from (p - c)/m + c (pixel centres at j + 0.5)
    for i in range(2):
        offset = ((cy - 0.5) * (1 - 1 / m), (cx - 0.5) * (1 - 1 / m))
        want = ndimage.affine_transform(layers[i].alpha, [1 / m, 1 / m], offset=offset, order=1)
        inner = (slice(10, -10), slice(10, -10))
        assert np.abs(moved[i].alpha[inner] - want[inner]).max() < 1e-4
    a, gx, gy = spec.bg_plane
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    plane = np.clip(a + gx * ((xs - cx) / m + cx) + gy * ((ys - cy) / m + cy), 0, 1)
    assert np.abs(moved[-1].disparity - plane).max() < 1e-6
    assert [clip.K(10.0, k) for k in range(5)] == pytest.approx([10 * 1.5 ** (k / 4) for k in range(5)])


@pytest.mark.parametrize("size", [96, (128, 96)])
def test_the_flow_carries_each_frame_onto_the_next(assets, size):
    """flow.NNN: the pinhole view's exact forward flow. A subject moving at v with a camera move τ flows by
    v + τ·d; the background by τ times its disparity at the pixel; a zoom by (m_k+1/m_k − 1)·(p − c); and the next
    frame's all-in-focus image sampled where the flow points is this frame's."""
    spec, by_id = _scene(assets, size=size)
    W, H = spec.frame
    layers = build_layers(spec, by_id)
    clip = _still(3)
    clip.velocity = [(3.5, 1.5), (-1.0, 0.25)]
    clip.camera = (0.6, -0.4)
    frames = render_clip(spec, clip, layers, resolve_focus, flow=True)
    assert "flow" not in frames[-1]
    fl, _, _ = frame_state(spec, clip, 1, layers)
    flow = frames[1]["flow"]
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    solid = [(layer.alpha >= 0.5) for layer in fl]
    bg_only = ~(solid[0] | solid[1])
    tau = np.array(clip.camera)
    assert np.abs(flow[bg_only] - tau * fl[-1].disparity[bg_only][:, None]).max() < 1e-5
    for i in range(2):
        front = solid[i] & ~(solid[1 - i] & (fl[1 - i].disparity > fl[i].disparity))
        assert front.sum() > 20
        want = np.array(clip.velocity[i]) + tau * spec.foregrounds[i].disparity
        assert np.abs(flow[front] - want).max() < 1e-5
    # a zoom: every surface flows away from the centre in proportion to its distance from it
    zoom = _still(3)
    zoom.zoom = 1.5
    flow = render_clip(spec, zoom, layers, resolve_focus, flow=True)[0]["flow"]
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    r = zoom.magnification(1) / zoom.magnification(0) - 1
    assert np.abs(flow - r * np.stack([xs - W / 2, ys - H / 2], axis=-1)).max() < 1e-4
    # brightness constancy, with whole-pixel motion (no resampling between the frames): frame 0's image at p is
    # frame 1's at p + flow, away from the frame's edge and the subjects' outlines (where surfaces appear)
    whole = _still(2)
    whole.velocity = [(3.0, 1.0), (-2.0, 2.0)]
    frames = render_clip(spec, whole, layers, resolve_focus, flow=True)
    flow, nxt = frames[0]["flow"], frames[1]["aif"]
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    warped = np.stack(
        [ndimage.map_coordinates(nxt[..., ch], [ys + flow[..., 1], xs + flow[..., 0]], order=1) for ch in range(3)],
        axis=-1,
    )
    keep = np.zeros((H, W), bool)
    keep[8:-8, 8:-8] = True
    keep &= np.logical_or.reduce([ndimage.binary_erosion(layer.alpha >= 0.5, iterations=3) for layer in layers[:2]])
    err, no_flow = (np.abs(x - frames[0]["aif"])[keep].mean() for x in (warped, nxt))
    assert keep.sum() > 200 and err < 1e-3 and no_flow > 0.02, (err, no_flow)


def test_a_depth_mapped_background_moves_with_exact_parallax_and_occlusion(assets):
    """A depth map under a camera move: each part of the surface moves by τ·d, a near part slides over the far part
    beside it (the nearest surface along each traced ray wins), and the flow follows: τ times the disparity seen."""
    import dataclasses

    from datagen.scenes import Layer

    spec, by_id = _scene(assets)
    spec = dataclasses.replace(spec, bg_model="map")
    layers = build_layers(dataclasses.replace(spec, bg_model="plane"), by_id)
    n = spec.size
    disp = np.full((n, n), 0.2, np.float32)
    disp[:, :48] = 0.6  # the left half near, the right half far; the step between texel centres 47.5 and 48.5
    rgb = np.ascontiguousarray(layers[-1].rgb)
    layers[-1] = Layer(rgb, np.ones((n, n), np.float32), disp, name="background")
    clip = _still(3)
    clip.camera = (3.0, 0.0)
    moved = frame_layers(spec, clip, 1, layers)[-1]
    got = moved.disparity
    assert np.all(got[:, 10:45] == np.float32(0.6)) and np.all(got[:, 60:-10] == np.float32(0.2))
    # the near surface ends at texel centre 47.5 (then ramps to the far one by 48.5): it now ends at 49.3, over
    # pixel 48.5, which was far at frame 0; the far surface from 48.5 on now starts at 49.1, behind it
    assert np.all(disp[:, 48] == np.float32(0.2)) and np.all(got[:, 48] == np.float32(0.6))
    assert np.all(got[:, 49] == np.float32(0.2))
    # colour moved by τ·d: 1.8 px on the near side, 0.6 px on the far side (bilinear, as subjects are read)
    near = ndimage.shift(rgb, (0, 1.8, 0), order=1, mode="nearest")
    far = ndimage.shift(rgb, (0, 0.6, 0), order=1, mode="nearest")
    assert np.abs(moved.rgb[:, 10:45] - near[:, 10:45]).max() < 1e-4
    assert np.abs(moved.rgb[:, 60:-10] - far[:, 60:-10]).max() < 1e-4
    # the draws no longer hold a depth-mapped background's camera still
    cfg = SequenceConfig(frames=4, camera_shift_px=(0.5, 1.0))
    assert np.hypot(*draw_clip(spec, cfg, ["fg0", "fg1", "background"]).camera) >= 0.5
    # its flow: τ times the disparity seen, wherever the background shows
    frames = render_clip(spec, clip, layers, resolve_focus, flow=True)
    fl = frame_layers(spec, clip, 1, layers)
    bg_only = ~((fl[0].alpha >= 0.5) | (fl[1].alpha >= 0.5))
    flow = frames[1]["flow"]
    assert np.abs(flow[bg_only] - np.array([3.0, 0.0]) * fl[-1].disparity[bg_only][:, None]).max() < 1e-5


def test_a_camera_true_clip_follows_the_lens_at_every_frames_focus_distance(assets):
    """sequence + camera: K = K_m(z_f)/z_near at each frame's focus distance z_f = z_near/d_f; a pull in distance
    moves z_f linearly; the LQ is degraded from the input camera's own frame."""
    import dataclasses

    from datagen.camera import CameraConfig, draw_camera
    from datagen.clips import make_clip

    spec, by_id = _scene(assets)
    camera = draw_camera(
        spec,
        CameraConfig(
            target="fullframe_85mm_f1.4", input="phone_tele", fg_distance_m=(2.0, 3.0), bg_distance_m=(8.0, 20.0)
        ),
    )
    clip = _still(3, "pull")
    clip.pull_target = "background" if spec.focus_target != "background" else "fg0"
    clip.pull_start, clip.pull_frames, clip.pull_space = 0.0, 2.0, "distance"
    out = make_clip(spec, by_id, clip, camera=camera)
    frames = out["json"]["frames"]
    z = [f["camera"]["focus_distance_m"] for f in frames]
    assert z[1] == pytest.approx((z[0] + z[2]) / 2)  # linear in metres, halfway at frame 1
    for f in frames:
        zf = f["camera"]["focus_distance_m"]
        assert zf == pytest.approx(camera.z_near_m / f["focus_disparity"])
        assert f["K"] == pytest.approx(camera.target.k_metric(zf, 96) / camera.z_near_m)
        K_input = camera.input.k_metric(zf, 96) / camera.z_near_m
        assert f["camera"]["K_input"] == pytest.approx(K_input) and K_input > 0
        assert f["camera"]["f_number"] == pytest.approx(1.4)
    assert out["json"]["camera"]["K"] == frames[0]["K"] and out["json"]["scene"]["K"] == frames[0]["K"]
    quality = dataclasses.asdict(Quality())
    _same_fields(out["json"], clip_json_type(quality, camera=True))
    _same_fields(make_clip(spec, by_id, _still(2))["json"], clip_json_type(quality))
    pinhole = make_clip(spec, by_id, clip, camera=dataclasses.replace(camera, input=None))
    for k in range(3):
        assert np.array_equal(pinhole["bokeh"][k], out["bokeh"][k])
        assert not np.array_equal(pinhole["lq"][k], out["lq"][k])  # the phone's own blur, before degrading


def test_a_locked_shot_with_a_fixed_focus_traces_only_around_its_moving_subjects():
    """One TextureCache per clip: with K and the focus fixed and the camera locked, a frame traces only the pixels
    within reach of a moving subject and copies the rest from the frame before; every frame equals a full render
    of it bit for bit (the bundled demo scene 1, whose photos and mattes are real)."""
    import dataclasses

    from datagen.build import BuildConfig, scan_assets
    from renderer import render_bokeh

    cfg = BuildConfig.load(None, ["size=192"])
    rows = scan_assets(cfg, progress=False)
    fgs, bgs = usable(rows, "foreground", "train"), usable(rows, "background", "train")
    spec = draw_scene(0, 1, fgs, bgs, dataclasses.replace(cfg.scene, bg_map_prob=0.0), size=192)
    layers = build_layers(spec, {a.id: a for a in rows})
    clip = ClipDraw(3, [(2.0, 1.0), (-1.5, 0.5)], [(0.0, 0.0)] * 2, [1.0, 1.0], (0.0, 0.0), "fixed")
    cache = TextureCache()
    frames = render_clip(spec, clip, layers, resolve_focus, textures=cache, **cfg.render)
    assert cache.pixels_reused > 0.25 * 2 * 192 * 192
    for k in (1, 2):
        fl = frame_layers(spec, clip, k, layers)
        full = render_bokeh(fl, spec.K, frames[k]["focus_disparity"], seed=render_seed(spec), **cfg.render)
        assert np.array_equal(frames[k]["bokeh"], full)


def test_decode_clip_says_what_it_expects():
    """decode_clip on an image sample once raised KeyError: 'frames'."""
    import json

    from datagen.shards import decode_clip

    image = {"__key__": "000000_000001", "json": json.dumps({"render": {"K": 3}}).encode(), "aif.png": b""}
    with pytest.raises(ValueError, match=r"^decode_clip: 000000_000001: an image sample .* not a clip"):
        decode_clip(image)
    with pytest.raises(ValueError, match=r"^decode_clip: k: missing member aif.001.png \(2 frames\)"):
        decode_clip({"__key__": "k", "json": {"frames": [{}, {}]}, "aif.000.png": np.zeros((4, 4, 3), np.uint8)})
    with pytest.raises(ValueError, match=r"^decode_clip: k: no json member"):
        decode_clip({"__key__": "k"})
