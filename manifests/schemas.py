"""Parquet schemas of bokehgen. Every table the project writes is declared here."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

# The members of every sample in a shard (ARCHITECTURE.md, "Samples"), in the order the manifests list them.
MEMBERS = ("aif.png", "bokeh.png", "lq.png", "disp.npy", "json")


def member_names(frames: int = 0, flow: bool = False) -> list[str] | tuple[str, ...]:
    """A sample's members (:data:`MEMBERS`), or with ``frames`` a clip's (:func:`clip_member_names`)."""
    return clip_member_names(frames, flow) if frames else MEMBERS


def clip_member_names(frames: int, flow: bool = False) -> list[str]:
    """A clip sample's members: aif.NNN.png, bokeh.NNN.png, lq.NNN.png, disp.NNN.npy for each frame, with ``flow``
    flow.NNN.npy for each frame but the last, and json."""
    names = [
        f"{m}.{k:03d}.{ext}"
        for k in range(frames)
        for m, ext in (("aif", "png"), ("bokeh", "png"), ("lq", "png"), ("disp", "npy"))
    ]
    return names + ([f"flow.{k:03d}.npy" for k in range(frames - 1)] if flow else []) + ["json"]


S, I, F, B = pa.string(), pa.int64(), pa.float64(), pa.bool_()


def _schema(columns) -> pa.Schema:
    return pa.schema([pa.field(name, kind) for name, kind in columns])


def assets_schema() -> pa.Schema:
    """assets.parquet: one row per foreground/background file found, skipped ones included (ok = False). The rows
    are ``datagen.assets.Asset``s (tests/test_manifests checks that the two agree)."""
    return _schema(
        [
            ("id", S),
            ("uri", S),
            ("alpha_uri", S),
            ("kind", S),
            ("source", S),
            ("width", I),
            ("height", I),
            ("has_alpha", B),
            ("sha256", S),
            ("split", S),
            ("ok", B),
            ("reason", S),
            ("disp_uri", S),
        ]
    )


def _kernel(prefix: str) -> list:
    return [(f"{prefix}_type", S), (f"{prefix}_size", I)] + [
        (f"{prefix}_{k}", F) for k in ("sigma_x", "sigma_y", "theta", "beta", "omega_c")
    ]


def _stage(prefix: str) -> list:
    return [
        (f"{prefix}_resize", S),
        (f"{prefix}_resize_scale", F),
        (f"{prefix}_resize_interp", S),
        (f"{prefix}_noise", S),
        (f"{prefix}_noise_sigma", F),
        (f"{prefix}_noise_scale", F),
        (f"{prefix}_noise_gray", B),
        (f"{prefix}_jpeg_quality", F),
    ]


def scene_schema(num_foregrounds: int = 2) -> pa.Schema:
    """Columns of one scene (datagen.SceneSpec.columns()): fg0_* .. fg{N-1}_* for its N foregrounds (the build
    config's scene.num_foregrounds, 2 by default), tuples split into _0, _1, …"""
    f = [
        pa.field(n, t)
        for n, t in (("seed", pa.int64()), ("index", pa.int64()), ("size", pa.int64()), ("background_id", pa.string()))
    ]
    f += [pa.field(f"bg_crop_{i}", pa.float64()) for i in range(3)] + [pa.field("bg_flip", pa.bool_())]
    f += [pa.field(f"bg_plane_{i}", pa.float64()) for i in range(3)]
    for k in range(num_foregrounds):
        f += [
            pa.field(f"fg{k}_asset_id", pa.string()),
            pa.field(f"fg{k}_disparity", pa.float64()),
            pa.field(f"fg{k}_scale", pa.float64()),
            pa.field(f"fg{k}_center_0", pa.float64()),
            pa.field(f"fg{k}_center_1", pa.float64()),
            pa.field(f"fg{k}_flip", pa.bool_()),
        ]
    f += [
        pa.field("K", pa.float64()),
        pa.field("focus_target", pa.string()),
        pa.field("focus_u_0", pa.float64()),
        pa.field("focus_u_1", pa.float64()),
        pa.field("degradation_seed", pa.int64()),
    ]
    f += [
        pa.field("bg_model", pa.string()),
        pa.field("bg_map_range_0", pa.float64()),
        pa.field("bg_map_range_1", pa.float64()),
        pa.field("highlights", pa.bool_()),
        pa.field("height", pa.int64()),
    ]
    return pa.schema(f)


def degradation_schema() -> pa.Schema:
    """Columns of one degradation record (``degradations.DegradationRecord.columns()``; tests/test_manifests checks
    that the two agree)."""
    return _schema(
        [("seed", I), ("noise_seed", I), ("usm", B)]
        + _kernel("kernel1")
        + _stage("stage1")
        + [("blur2", B)]
        + _kernel("kernel2")
        + _stage("stage2")
        + [("final_sinc", B)]
        + _kernel("final_kernel")
        + [("final_order", S), ("final_interp", S)]
    )


def _struct(columns) -> pa.DataType:
    return pa.struct([pa.field(name, kind) for name, kind in columns])


# a camera's record (datagen.camera.CameraDraw.record): in the sample JSON's ``camera`` and as cam_* columns
LENS = [("name", S), ("focal_length_mm", F), ("f_number", F), ("sensor_width_mm", F)]


def camera_schema() -> pa.Schema:
    """The camera-true build's columns (datagen.camera.camera_columns): the target and input cameras, the focus
    distance, the scene's nearest distance and the input's K."""
    return _schema(
        [(f"cam_target_{n}", t) for n, t in LENS]
        + [(f"cam_input_{n}", t) for n, t in LENS]
        + [("cam_input_zoom", F), ("cam_focus_distance_m", F), ("cam_z_near_m", F), ("cam_K_input", F)]
        + [("cam_input_focus_target", S), ("cam_input_focus_disparity", F), ("cam_input_focus_distance_m", F)]
    )


def sample_json_type(quality: dict, camera: bool = False, lens: bool = False) -> pa.DataType:
    """The full struct of a sample's ``json`` member (datagen.scenes.make_sample), for readers that need it declared
    (the dataset card's ``dataset_info: features``). ``quality``: the renderer Quality fields the build renders with
    (``dataclasses.asdict``): their values decide their JSON types, an infinite float being the string "inf".
    A value that was not drawn is null in its declared type (e.g. a Gaussian kernel's beta)."""

    def kind(v):
        if isinstance(v, bool):
            return B
        if isinstance(v, int):
            return I
        if isinstance(v, float):
            return S if v != v or v in (float("inf"), float("-inf")) else F
        return S

    floats = pa.list_(F)
    scene = _struct(
        [
            ("seed", I),
            ("index", I),
            ("size", I),
            ("background_id", S),
            ("bg_crop", floats),
            ("bg_flip", B),
            ("bg_plane", floats),
            (
                "foregrounds",
                pa.list_(_struct([("asset_id", S), ("disparity", F), ("scale", F), ("center", floats), ("flip", B)])),
            ),
            ("K", F),
            ("focus_target", S),
            ("focus_u", floats),
            ("degradation_seed", I),
            ("bg_model", S),
            ("bg_map_range", floats),
            ("highlights", B),
            ("height", I),
        ]
    )
    render = _struct(
        [
            ("K", F),
            ("focus_disparity", F),
            ("gamma", F),
            (
                "aperture",
                _struct(
                    [("blades", I), ("rotation_deg", F), ("roundness", F), ("cateye", F), ("falloff", B), ("swirl", S)]
                ),
            ),
            ("quality", _struct([(k, kind(v)) for k, v in quality.items()])),
            ("mean_spp", F),
            ("highlights", _struct([("threshold", F), ("gain", F), ("clipped_fraction", F)])),
        ]
    )
    fields = [
        ("scene", scene),
        ("degradation", pa.struct(list(degradation_schema()))),
        ("focus", _struct([("target", S), ("xy", floats), ("disparity", F)])),
        ("render", render),
        ("background", _struct([("model", S), ("uri", S)])),
        ("bit_depth", I),
        ("defocus", S),
    ]
    if camera:  # datagen.camera.CameraDraw.record
        fields.append(
            (
                "camera",
                _struct(
                    [
                        ("target", _struct(LENS)),
                        ("input", _struct(LENS + [("zoom", F)])),
                        ("focus_distance_m", F),
                        ("z_near_m", F),
                        ("K_input", F),
                        ("K", F),
                        (
                            "input_focus",
                            _struct([("target", S), ("xy", floats), ("disparity", F), ("distance_m", F)]),
                        ),
                    ]
                ),
            )
        )
    if lens:  # datagen.character.draw_character
        fields.append(("lens", _struct([("character", S), ("loca", floats), ("cateye", F), ("swirl", S)])))
    return _struct(fields)


def clip_json_type(quality: dict, camera: bool = False, lens: bool = False) -> pa.DataType:
    """The full struct of a clip's ``json`` member (datagen.clips.make_clip), as :func:`sample_json_type` for a
    sample's; ``camera``: a camera-true clip's; ``lens``: one with a lens character."""
    base = sample_json_type(quality, camera, lens)
    scene, degradation = base.field("scene").type, base.field("degradation").type
    floats = pa.list_(F)
    quality_type = base.field("render").type.field("quality").type
    clip = _struct(
        [
            ("accel", pa.list_(floats)),
            ("camera", floats),
            ("depth_ratio", floats),
            ("eased", B),
            ("focus_mode", S),
            ("frames", I),
            ("k_ratio", F),
            ("pull_frames", F),
            ("pull_space", S),
            ("pull_start", F),
            ("pull_target", S),
            ("still", B),
            ("velocity", pa.list_(floats)),
            ("zoom", F),
        ]
    )
    subject = _struct([("center_px", floats), ("disparity", F), ("name", S)])
    frame_camera = [("camera", _struct([("K_input", F), ("f_number", F), ("focus_distance_m", F)]))] if camera else []
    frame = _struct(
        [("K", F), ("background_max_disparity", F)]
        + frame_camera
        + [
            ("focus_disparity", F),
            ("frame", I),
            ("magnification", F),
            ("noise_seed", I),
            ("subjects", pa.list_(subject)),
            ("target", S),
            ("xy", floats),
        ]
    )
    cam = [("camera", base.field("camera").type)] if camera else []
    character = [("lens", base.field("lens").type)] if lens else []
    return _struct(
        [("bit_depth", I)]
        + cam
        + [
            ("clip", clip),
            ("defocus", S),
            ("degradation", degradation),
            ("frames", pa.list_(frame)),
        ]
        + character
        + [
            ("render", _struct([("quality", quality_type)])),
            ("scene", scene),
        ]
    )


LENS_COLUMNS = [
    ("lens_character", S),
    ("lens_loca_r", F),
    ("lens_loca_g", F),
    ("lens_loca_b", F),
    ("lens_cateye", F),
    ("lens_swirl", S),
]


def samples_schema(
    num_foregrounds: int = 2, camera: bool = False, frames: int = 0, flow: bool = False, lens: bool = False
) -> pa.Schema:
    """samples.parquet (and each shard's manifest): key, shard, split, every scene parameter, the focus point used,
    every degradation draw (deg_*), sha256 and size of every member."""
    base = [pa.field("key", pa.string()), pa.field("shard", pa.string()), pa.field("split", pa.string())]
    focus = [
        pa.field("focus_target_used", pa.string()),
        pa.field("focus_x", pa.float64()),
        pa.field("focus_y", pa.float64()),
        pa.field("focus_disparity", pa.float64()),
    ]
    deg = [pa.field(f"deg_{f.name}", f.type) for f in degradation_schema()]
    members = [
        pa.field(f"{m.replace('.', '_')}_{s}", t)
        for m in member_names(frames, flow)
        for s, t in (("sha256", pa.string()), ("bytes", pa.int64()))
    ]
    cams = list(camera_schema()) if camera else []
    clips = (
        [pa.field("frames", pa.int64())]
        + [pa.field(f"frame_{name}", pa.list_(F)) for name in ("K", "focus_disparity", "magnification")]
        if frames
        else []
    )
    if frames and camera:
        clips += [pa.field("frame_focus_distance_m", pa.list_(F)), pa.field("frame_K_input", pa.list_(F))]
    lenses = list(_schema(LENS_COLUMNS)) if lens else []
    return pa.schema(base + list(scene_schema(num_foregrounds)) + focus + cams + lenses + clips + deg + members)


def pairs_schema() -> pa.Schema:
    """degradations.cli output: one row per HQ/LQ pair, then every degradation draw."""
    base = [
        pa.field("name", pa.string()),
        pa.field("source", pa.string()),
        pa.field("source_sha256", pa.string()),
        pa.field("hq", pa.string()),
        pa.field("lq", pa.string()),
        pa.field("hq_height", pa.int64()),
        pa.field("hq_width", pa.int64()),
        pa.field("index", pa.int64()),
    ]
    return pa.schema(base + list(degradation_schema()))


def skipped_schema() -> pa.Schema:
    return pa.schema([pa.field("source", pa.string()), pa.field("reason", pa.string())])


def checked_table(rows: list[dict], schema: pa.Schema, source="rows") -> pa.Table:
    """Rows (dicts keyed by the schema's column names) as a table of ``schema``; a missing column is an error
    naming ``source``."""
    missing = [name for name in schema.names if rows and name not in rows[0]]
    if missing:
        raise ValueError(f"{source}: rows lack column(s) {missing}")
    return pa.Table.from_pylist(rows, schema=schema)


def write_table(rows: list[dict], schema: pa.Schema, path) -> None:
    """Write rows to the Parquet file ``path``, checked against the schema, through the one atomic write
    (:meth:`manifests.storage.Store.write_table`)."""
    from .storage import Store

    path = Path(path)
    Store(path.parent).write_table(checked_table(rows, schema, path), path.name)
