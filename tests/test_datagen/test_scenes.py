"""Random scenes: draws in range, JSON round trip rebuilds the same sample, focus behaves physically."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from datagen.assets import usable
from datagen.scenes import SceneConfig, SceneSpec, build_layers, draw_scene, make_sample, resolve_focus
from manifests import scene_schema, write_table


def _pools(rows):
    return usable(rows, "foreground", "train"), usable(rows, "background", "train"), {a.id: a for a in rows}


def test_draws_stay_in_their_ranges(assets):
    fgs, bgs, _ = _pools(assets)
    cfg = SceneConfig()
    for index in range(300):
        spec = draw_scene(7, index, fgs, bgs, cfg, size=128)
        a, gx, gy = spec.bg_plane
        corners = [a + gx * x + gy * y for x in (0.5, 127.5) for y in (0.5, 127.5)]
        assert 0.0 <= min(corners) and max(corners) <= 1.0
        for fg in spec.foregrounds:
            assert max(corners) < fg.disparity <= 1.0  # nearer than every background point
            assert cfg.fg_scale_range[0] <= fg.scale <= cfg.fg_scale_range[1]
        assert cfg.k_range[0] <= spec.K <= cfg.k_range[1]
        x0, y0, side = spec.bg_crop
        assert cfg.bg_crop_range[0] <= side <= cfg.bg_crop_range[1] and 0 <= x0 <= 1 and 0 <= y0 <= 1
        for fg in spec.foregrounds:  # inside the configured range, and the whole subject inside the frame
            assert all(cfg.fg_center_range[0] <= c <= cfg.fg_center_range[1] for c in fg.center)
            assert all(fg.scale / 2 <= c <= 1 - fg.scale / 2 for c in fg.center)
        assert spec.focus_target in ("fg0", "fg1", "background")
    targets = [draw_scene(7, i, fgs, bgs, cfg, size=128).focus_target for i in range(300)]
    assert min(targets.count(t) for t in ("fg0", "fg1", "background")) > 60


@pytest.mark.parametrize("frame", [(192, 128), (128, 192)])
def test_a_frame_of_any_aspect_keeps_every_draw_inside_it(assets, frame):
    """size [W, H]: subjects sized by the shorter side and wholly inside the frame, the background plane in [0, 1]
    at every corner, the photo cropped at the frame's aspect; every member W×H (the LQ at a quarter)."""
    fgs, bgs, by_id = _pools(assets)
    W, H = frame
    cfg = SceneConfig()
    assert draw_scene(7, 3, fgs, bgs, cfg, size=(128, 128)) == draw_scene(7, 3, fgs, bgs, cfg, size=128)
    for index in range(200):
        spec = draw_scene(7, index, fgs, bgs, cfg, size=frame)
        assert spec.frame == frame and (spec.size, spec.height) == frame
        a, gx, gy = spec.bg_plane
        corners = [a + gx * x + gy * y for x in (0.5, W - 0.5) for y in (0.5, H - 0.5)]
        assert 0.0 <= min(corners) and max(corners) <= 1.0
        bg = by_id[spec.background_id]  # the photo's crop at the frame's aspect lies inside the photo
        x0, y0, side = spec.bg_crop
        cw = side * min(bg.width, bg.height * W / H)
        assert x0 * bg.width + cw <= bg.width + 1e-6 and y0 * bg.height + cw * H / W <= bg.height + 1e-6
        for fg in spec.foregrounds:
            extent = fg.scale * min(W, H)  # the subject's longer side, px
            assert extent / 2 <= fg.center[0] * W <= W - extent / 2 + 1e-9
            assert extent / 2 <= fg.center[1] * H <= H - extent / 2 + 1e-9
    sample = make_sample(spec, by_id)
    assert sample["aif"].shape == sample["bokeh"].shape == (H, W, 3) and sample["disp"].shape == (H, W)
    assert sample["lq"].shape == (H // 4, W // 4, 3)
    again = SceneSpec.from_json(spec.to_json())
    assert again == spec and again.frame == frame


def test_spec_round_trip_rebuilds_a_byte_identical_sample(assets, tmp_path):
    fgs, bgs, by_id = _pools(assets)
    spec = draw_scene(3, 5, fgs, bgs, SceneConfig(), size=128)
    assert draw_scene(3, 5, fgs, bgs, SceneConfig(), size=128) == spec  # same (seed, index) ⇒ same draws
    again = SceneSpec.from_json(spec.to_json())
    assert again == spec
    write_table([spec.columns()], scene_schema(), tmp_path / "scenes.parquet")
    row = pq.read_table(tmp_path / "scenes.parquet").to_pylist()[0]
    assert row == spec.columns() and pq.read_schema(tmp_path / "scenes.parquet").equals(scene_schema())
    a, b = make_sample(spec, by_id), make_sample(again, by_id)
    for key in ("aif", "bokeh", "lq", "disp"):
        assert a[key].tobytes() == b[key].tobytes(), key
    assert a["json"] == b["json"]
    assert a["aif"].shape == (128, 128, 3) and a["lq"].shape == (32, 32, 3) and a["disp"].dtype == np.float32


def test_focus_on_a_foreground_keeps_it_sharp_and_blurs_the_background(assets):
    fgs, bgs, by_id = _pools(assets)
    cfg = SceneConfig(k_range=(24.0, 24.0))
    spec = next(s for s in (draw_scene(11, i, fgs, bgs, cfg, size=128) for i in range(100)) if s.focus_target == "fg0")
    sample = make_sample(spec, by_id)
    layers = build_layers(spec, by_id)
    target, _, d_f = resolve_focus(spec, layers)
    assert target == "fg0" and d_f == pytest.approx(spec.foregrounds[0].disparity)
    aif, bokeh = sample["aif"].astype(float), sample["bokeh"].astype(float)
    solid = layers[0].alpha >= 1.0
    front = (layers[1].alpha > 0) & (spec.foregrounds[1].disparity > spec.foregrounds[0].disparity)
    inner = solid & ~np.asarray(front)
    bg_only = (layers[0].alpha == 0) & (layers[1].alpha == 0)
    assert np.abs(bokeh[inner] - aif[inner]).mean() < 1.0  # the focused subject is unchanged

    def grad(im):
        return np.abs(np.diff(im, axis=1)).mean(axis=-1)

    mask = bg_only[:, 1:] & bg_only[:, :-1]
    assert grad(bokeh)[mask].mean() < 0.6 * grad(aif)[mask].mean()  # the background is blurred
