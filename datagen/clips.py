"""Bokeh video clips: a moving layered scene rendered exactly in every frame (the core of the ``sequence:`` recipe).

A clip is one drawn scene (datagen.scenes.draw_scene) plus its motion, drawn from a generator of its own
(seed, index, 4), so the image recipe's draws are untouched:

- subjects: each foreground moves in 2-D (velocity v and acceleration a in px per frame, directions uniform) and in
  depth, its disparity going linearly from d0 to d1 = d0·ρ (kept nearer than the background by the scene's margin
  and at most 1); a subject at disparity d is scaled by d/d0 about its centre, image size being ∝ 1/z;
- the camera: a lateral move of τ = t·k px (at disparity 1) by frame k shifts every surface of disparity d by τ·d
  px (parallax: the background barely moves, near subjects most). A tilted-plane background d = a + g·x maps
  affinely, x' = x + τ·d(x); a depth-mapped background is traced back exactly at every pixel (the nearest part of
  its surface that lands there: near parts slide over far ones); then an optional slow zoom scales everything;
- focus: fixed on the drawn target (which moves with it), a pull to a second target over a drawn span of frames
  (linear or eased in disparity), or a ramp of K by a drawn ratio.

Each frame is a render of the scene at that instant (no warping of rendered images): the layers are placed, then
moved by exact sub-pixel affine resampling of their premultiplied textures (cv2.warpAffine, bilinear), a frame
with no motion skipping it, so a still clip renders the image recipe's bytes in every frame. datagen/build.py
writes one clip per sample when ``sequence.frames`` is set (make_clip, encode_clip, decode_clip in shards.py).
"""

from __future__ import annotations

import json
import math

import numpy as np

from datagen.character import render_terms
from datagen.flow import background_flow, flow_image, forward_flow, visible_layer
from datagen.motion import (  # noqa: F401 - the motion's names, importable from here as before
    FOCUS_MODES,
    IDENTITY,
    PULL_SPACES,
    ClipDraw,
    SequenceConfig,
    background_map,
    draw_clip,
    focus_disparity,
    frame_layers,
    frame_state,
    subject_motion,
    zoom_map,
)
from renderer import Layer, TextureCache, pinhole_view, render_bokeh


def render_clip(
    spec,
    clip: ClipDraw,
    layers: list[Layer],
    resolve,
    margin: float = 0.0,
    flow: bool = False,
    textures: TextureCache | None = None,
    camera=None,
    lens: dict | None = None,
    **render_options,
):
    """Every frame's (aif linear-light composite, disparity, bokeh, K, d_f, target, and with ``flow`` the forward
    flow to the next frame, none for the last); ``layers``: frame 0's. The bokeh uses the sample's render seed in
    every frame (datagen.scenes.render_seed), as the image does. One renderer.TextureCache (``textures``, or a
    new one) serves the whole clip: a layer that does not move (a locked camera's background) is decoded and summed
    once, not once per frame; each frame's render reuses its pinhole view's textures (without highlights); and
    where K and the focus stay (a fixed focus, no ramp, no zoom) only the pixels within reach of a moving layer
    are traced again, bit-identically (the cache counts all three). ``camera`` (datagen.camera.CameraDraw): K
    follows the target lens focused at each frame's focus distance z_f = z_near/d_f (times the ramp and the zoom),
    and each frame gets "input": the input camera's own render (None for a pinhole) and "camera": z_f, K_input and
    the target's f-number."""
    from datagen.scenes import render_seed

    cache = textures if textures is not None else TextureCache()
    frames, maps, fronts, bg_flows = [], [], [], []
    for k in range(clip.frames):
        fl, frame_maps, depths = frame_state(spec, clip, k, layers, margin)
        target, xy, d_f = focus_disparity(spec, clip, k, fl, resolve)
        aif, disp = pinhole_view(fl, textures=cache)
        K, cam = clip.K(spec.K, k), None
        if camera is not None:
            K, cam = _camera_frame(camera, clip, k, d_f, spec.size)
            cam["input"] = (
                None
                if cam["K_input"] == 0
                else render_bokeh(fl, cam["K_input"], d_f, seed=render_seed(spec), textures=cache, **render_options)
            )
        bokeh = render_bokeh(fl, K, d_f, seed=render_seed(spec), textures=cache, **render_terms(lens), **render_options)
        subjects = []
        for i, fg in enumerate(spec.foregrounds):
            c = frame_maps[i] @ np.array([fg.center[0] * spec.size, fg.center[1] * spec.height, 1.0])
            subjects.append({"name": f"fg{i}", "disparity": depths[i], "center_px": [float(c[0]), float(c[1])]})
        frames.append(
            {
                "aif": aif,
                "disp": disp,
                "bokeh": bokeh,
                "K": K,
                "focus_disparity": d_f,
                "target": target,
                "xy": list(xy),
                "subjects": subjects,
                "background_max_disparity": float(fl[-1].disparity.max()),
                "lens": cam,
            }
        )
        if flow:
            maps.append(frame_maps)
            fronts.append(visible_layer(fl))
            bg_flows.append(background_flow(clip, k, fl[-1].disparity) if k < clip.frames - 1 else None)
    for k in range(clip.frames - 1 if flow else 0):
        frames[k]["flow"] = forward_flow(fronts[k], maps[k], maps[k + 1], {len(layers) - 1: bg_flows[k]})
    return frames


def _camera_frame(camera, clip: ClipDraw, k: int, d_f: float, size: int) -> tuple[float, dict]:
    """K and the lens record of frame k of a camera-true clip focused at disparity d_f."""
    z_f, K_lens, K_input = camera.lens_k(d_f, size)
    K = clip.K(K_lens, k)
    K_input = clip.K(K_input, k, ramp=False) if K_input else 0.0
    # the f-number that gives this K (a ramp is an iris pull; K's clip at 32 shows as a larger f-number)
    f_number = camera.target.f_number * K_lens * clip.magnification(k) / K if K > 0 else math.inf
    return K, {"focus_distance_m": z_f, "K_input": K_input, "f_number": f_number}


def make_clip(
    spec,
    assets: dict,
    clip: ClipDraw,
    degradation=None,
    highlights=None,
    bit_depth: int = 8,
    margin: float = 0.0,
    flow: bool = False,
    camera=None,
    lens: dict | None = None,
    **render_options,
) -> dict:
    """Every member of one clip sample (README "Clips"): per frame aif, bokeh (uint8, or uint16 with
    ``bit_depth=16``), lq (uint8) and disp (float32), and one json with the scene, the motion, the degradation
    (drawn once per clip: kernels, resizes, JPEG qualities) and per frame K, d_f, the focus target and point, the
    subjects' disparities and centres, the zoom's magnification and the noise seed (the noise is drawn afresh each
    frame; frame 0's is the image recipe's); with ``flow``, flow (float32 H×W×2) for every frame but the last.
    ``camera`` (datagen.camera.CameraDraw, as for datagen.scenes.make_sample): K from the target lens at each
    frame's focus distance, each LQ degraded from the input camera's own frame, the JSON's ``camera`` (frame 0's, as
    an image's) and per frame ``camera`` (focus distance, K_input, the target's f-number). ``lens``
    (datagen.character.draw_character): every frame's bokeh rendered with that character, the JSON's ``lens``."""
    import dataclasses

    from common.images import to_uint8, to_uint16
    from datagen.scenes import build_layers, resolve_focus
    from degradations import DegradationConfig
    from degradations.pipeline import degrade_with, draw
    from renderer import Quality

    cfg = degradation or DegradationConfig()
    rec = draw(spec.degradation_seed, cfg)
    boost = highlights if spec.highlights else None
    frames = render_clip(
        spec,
        clip,
        build_layers(spec, assets),
        resolve_focus,
        margin,
        flow,
        highlights=boost,
        camera=camera,
        lens=lens,
        **render_options,
    )
    if camera is not None:
        spec.K = frames[0]["K"]  # the lens's K at frame 0, as make_sample sets it
    out = {"aif": [], "bokeh": [], "lq": [], "disp": []}
    if flow:
        out["flow"] = [f["flow"] for f in frames[:-1]]
    meta_frames = []
    for k, f in enumerate(frames):
        aif8 = to_uint8(f["aif"])
        noise = (
            rec.noise_seed
            if k == 0
            else int(np.random.SeedSequence([rec.noise_seed, k]).generate_state(1, np.uint64)[0] % 2**62)
        )
        frame_lens = f["lens"]  # the camera's record of this frame (None without a camera)
        source = aif8 if frame_lens is None or frame_lens["input"] is None else to_uint8(frame_lens["input"])
        out["lq"].append(degrade_with(source, dataclasses.replace(rec, noise_seed=noise), cfg))
        out["aif"].append(to_uint16(f["aif"]) if bit_depth == 16 else aif8)
        out["bokeh"].append(to_uint16(f["bokeh"]) if bit_depth == 16 else to_uint8(f["bokeh"]))
        out["disp"].append(f["disp"])
        meta_frames.append(
            {
                "frame": k,
                "K": f["K"],
                "focus_disparity": f["focus_disparity"],
                "target": f["target"],
                "xy": f["xy"],
                "noise_seed": noise,
                "subjects": f["subjects"],
                "magnification": clip.magnification(k),
                "background_max_disparity": f["background_max_disparity"],
                **({"camera": {n: v for n, v in frame_lens.items() if n != "input"}} if frame_lens else {}),
            }
        )
    out["json"] = {
        "scene": json.loads(spec.to_json()),
        "clip": dataclasses.asdict(clip),
        "frames": meta_frames,
        "degradation": rec.columns(),
        "bit_depth": bit_depth,
        "render": {"quality": dataclasses.asdict(Quality.from_dict(render_options))},
        "defocus": "per frame: r = K * |disp - focus_disparity| (pixels)",
    }
    if lens is not None:
        out["json"]["lens"] = lens
    if camera is not None:
        first, f0 = meta_frames[0]["camera"], meta_frames[0]
        # a clip's input focuses with its target: frame 0's focus, as an image's record has it
        focus = camera.focus_record(f0["target"], f0["xy"], f0["focus_disparity"])
        out["json"]["camera"] = camera.record(first["focus_distance_m"], frames[0]["K"], first["K_input"], focus)
    return out


def clip_preview(samples: list[dict], width: int = 128, max_frames: int = 8) -> tuple[bytes, bytes]:
    """(PNG, GIF) of decoded clips (datagen.shards.decode_clip): the PNG holds one strip per clip (up to
    ``max_frames`` frames of its bokeh, above the same frames all in focus, above their flow where the clip has it:
    direction as hue, speed as brightness, full at the clip's fastest; black under the last frame, which has none);
    the GIF plays the first clip's frames, all in focus beside the bokeh, so the focus pull and the motion can be
    watched."""
    import io

    from PIL import Image, ImageDraw

    def cells(frames):  # width px wide, the frame's aspect kept
        h, w = frames[0].shape[:2]
        size = (width, max(1, round(width * h / w)))
        return [np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames]

    rows = []
    for c in samples:
        T = len(c["bokeh"])
        pick = sorted(set(np.linspace(0, T - 1, min(T, max_frames)).round().astype(int).tolist()))
        rows.append(np.concatenate(cells([c["bokeh"][k] for k in pick]), axis=1))
        rows.append(np.concatenate(cells([c["aif"][k] for k in pick]), axis=1))
        if "flow" in c:
            # the last frame has no flow (black)
            top = float(np.hypot(c["flow"][..., 0], c["flow"][..., 1]).max())
            rows.append(
                np.concatenate(
                    cells([flow_image(c["flow"][k], top) if k < T - 1 else np.zeros_like(c["aif"][k]) for k in pick]),
                    axis=1,
                )
            )
    w = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0))) for r in rows]
    png = io.BytesIO()
    Image.fromarray(np.concatenate(rows, axis=0)).save(png, format="PNG", compress_level=1)
    first = samples[0]
    gif_frames = []
    for k, (a, b) in enumerate(zip(cells(first["aif"]), cells(first["bokeh"]))):
        im = Image.fromarray(np.concatenate([a, b], axis=1))
        meta = first["json"]["frames"][k]
        ImageDraw.Draw(im).text(
            (2, 2), f"{k} K {meta['K']:.1f} d_f {meta['focus_disparity']:.2f}", fill=(255, 255, 255)
        )
        gif_frames.append(im)
    gif = io.BytesIO()
    gif_frames[0].save(gif, format="GIF", save_all=True, append_images=gif_frames[1:], duration=120, loop=0)
    return png.getvalue(), gif.getvalue()


def clip_columns(meta: dict) -> dict:
    """A clip's samples.parquet columns: its frame count and, per frame (list columns), K, d_f and the zoom's
    magnification, and for a camera-true clip the focus distance (m) and the input camera's K."""
    frames = meta["frames"]
    cols = {
        "frames": len(frames),
        "frame_K": [f["K"] for f in frames],
        "frame_focus_disparity": [f["focus_disparity"] for f in frames],
        "frame_magnification": [f["magnification"] for f in frames],
    }
    if "camera" in frames[0]:
        cols["frame_focus_distance_m"] = [f["camera"]["focus_distance_m"] for f in frames]
        cols["frame_K_input"] = [f["camera"]["K_input"] for f in frames]
    return cols
