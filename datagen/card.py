"""README.md of a built dataset folder: a dataset card with YAML front matter in the Hugging Face convention, so
``datasets.load_dataset(DIR)`` reads the folder as it is (its ``configs:`` name the shards of each split), and a
person learns what the data is, how it was made and how to read it."""

from __future__ import annotations

import collections
import dataclasses

import pyarrow as pa
import yaml

from manifests.schemas import clip_json_type, sample_json_type

SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)


def _quality(render: dict) -> dict:
    """The renderer Quality fields a build renders with (its ``render:`` section over the defaults)."""
    from renderer import Quality

    return dataclasses.asdict(Quality.from_dict({k: (float(v) if v == "inf" else v) for k, v in render.items()}))


def size_category(n: int) -> str:
    return next((label for limit, label in SIZE_CATEGORIES if n < limit), "n>100M")


def _hf_feature(t: pa.DataType) -> dict:
    """A pyarrow type as one entry of Hugging Face's ``dataset_info: features`` YAML (without its name)."""
    if pa.types.is_struct(t):
        return {"struct": [{"name": t.field(i).name, **_hf_feature(t.field(i).type)} for i in range(t.num_fields)]}
    if pa.types.is_list(t):
        inner = _hf_feature(t.value_type)
        return {"list": inner["dtype"] if set(inner) == {"dtype"} else inner.get("struct", inner)}
    return {
        "dtype": {
            pa.float64(): "float64",
            pa.float32(): "float32",
            pa.int64(): "int64",
            pa.bool_(): "bool",
            pa.string(): "string",
        }[t]
    }


def hf_clip_features(
    quality: dict, frames: int, flow: bool = False, camera: bool = False, lens: bool = False
) -> list[dict]:
    """The features of one clip as ``datasets`` reads a clip shard: per frame the three images and the disparity
    (and the flow to the next frame where the build wrote it), and the ``json`` member's struct
    (manifests.clip_json_type)."""
    members = []
    for k in range(frames):
        members += [{"name": f"{m}.{k:03d}.png", "dtype": "image"} for m in ("aif", "bokeh", "lq")]
        members.append({"name": f"disp.{k:03d}.npy", "list": {"list": "float32"}})
    if flow:
        members += [{"name": f"flow.{k:03d}.npy", "list": {"list": {"list": "float32"}}} for k in range(frames - 1)]
    members.append({"name": "json", **_hf_feature(clip_json_type(quality, camera, lens))})
    return members + [{"name": "__key__", "dtype": "string"}, {"name": "__url__", "dtype": "string"}]


def hf_features(quality: dict, camera: bool = False, lens: bool = False) -> list[dict]:
    """The features of one sample as ``datasets`` reads a shard (images decoded, ``disp.npy`` as rows of float32,
    the ``json`` member's full struct from manifests.sample_json_type), so that every sample loads with one schema
    even where the first samples leave a value undrawn (null)."""
    members = [{"name": m, "dtype": "image"} for m in ("aif.png", "bokeh.png", "lq.png")]
    members.append({"name": "disp.npy", "list": {"list": "float32"}})
    members.append({"name": "json", **_hf_feature(sample_json_type(quality, camera, lens))})
    return members + [{"name": "__key__", "dtype": "string"}, {"name": "__url__", "dtype": "string"}]


def _members(cfg: dict, frames: int) -> str:
    """The card's member table: a sample's, or a clip's (NNN = the frame)."""
    from datagen.scenes import frame_size

    w, h = frame_size(cfg["size"])
    size, depth = f"{w}×{h} (W×H)", cfg["bit_depth"]
    if not frames:
        return f"""| member | content |
|---|---|
| `aif.png` | all-in-focus image, {size} sRGB, {depth}-bit |
| `bokeh.png` | the ray-traced bokeh ground truth, same size and depth |
| `lq.png` | the degraded all-in-focus image at 1/4 size, 8-bit (the phone-camera input) |
| `disp.npy` | float32 disparity of the nearest visible surface (larger = nearer) |
| `json` | every parameter of the sample: scene, focus, render settings, degradation draws |"""
    flow = (
        "\n| `flow.NNN.npy` | float32 H×W×2 forward optical flow (x, y px) of the all-in-focus view, frame NNN to "
        "NNN + 1, exact |"
        if cfg.get("sequence", {}).get("flow")
        else ""
    )
    return f"""Each sample is a clip of {frames} frames (NNN = 000 … {frames - 1:03d}), every frame an exact render of
the moving scene at that instant.

| member | content |
|---|---|
| `aif.NNN.png` | all-in-focus frame, {size} sRGB, {depth}-bit |
| `bokeh.NNN.png` | the ray-traced bokeh frame, same size and depth |
| `lq.NNN.png` | the degraded frame at 1/4 size, 8-bit (one degradation per clip, fresh noise per frame) |
| `disp.NNN.npy` | float32 disparity of the nearest visible surface (larger = nearer) |{flow}
| `json` | the scene, the motion and focus schedule, and per frame K, focus disparity, target, subjects, noise seed |"""


def _clip_reading() -> str:
    return """Clips decode to arrays of frames with bokehgen's reader:

```python
from datagen.shards import decode_clip
for sample in wds.WebDataset(sorted(glob.glob("DIR/train-*.tar")), shardshuffle=False):
    clip = decode_clip(sample)  # "aif", "bokeh", "lq": T×H×W×3; "disp": T×H×W; "flow": (T-1)×H×W×2; "json"
```
"""


def dataset_card(summary: dict, counts: dict[str, int], assets: list, license: str) -> str:
    """The card's text. ``summary``: what dataset.json holds; ``counts``: samples per split ("train", "val");
    ``assets``: the scanned asset rows (datagen.assets.Asset)."""
    splits = [
        {"split": "train" if split == "train" else "validation", "path": f"{split}-*.tar"}
        for split in ("train", "val")
        if counts.get(split)
    ]
    front = {
        "license": license,
        "task_categories": ["image-to-image"],
        "tags": ["bokeh", "depth-of-field", "super-resolution", "synthetic", "webdataset"],
        "size_categories": [size_category(sum(counts.values()))],
        "pretty_name": "bokehgen synthetic bokeh dataset",
        "configs": [{"config_name": "default", "data_files": splits}],
    }
    cfg = summary["config"]
    quality, camera = _quality(cfg.get("render", {})), bool(cfg.get("camera", {}).get("target"))
    frames = cfg.get("sequence", {}).get("frames")
    lens = bool(cfg.get("lens", {}).get("characters"))
    if frames:  # clips: members aif.NNN.png, ...
        features = hf_clip_features(quality, frames, bool(cfg["sequence"].get("flow")), camera, lens)
        front["tags"].append("video")
    else:
        features = hf_features(quality, camera, lens)
    front["dataset_info"] = {"features": features}
    sources = collections.Counter((a.kind, a.source) for a in assets if a.ok)
    skipped = sum(1 for a in assets if not a.ok)
    source_lines = "\n".join(f"| {kind} | `{source}` | {n} |" for (kind, source), n in sorted(sources.items()))
    versions = ", ".join(f"{k} {v}" for k, v in sorted(summary.get("versions", {}).items()) if v)
    return f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# bokehgen synthetic bokeh dataset

Physically rendered training triplets for bokeh rendering and real-world super-resolution, made with
bokehgen after the data recipe of MagicBokeh: matted foregrounds over a
background photograph, each layer on its own disparity plane (the background a tilted plane, or its own disparity
map), rendered by a thin-lens ray tracer (a point at disparity d images as a disk of radius K·|d − d_f| px), the
all-in-focus image degraded by the Real-ESRGAN second-order pipeline into the low-quality input.

{_members(cfg, frames)}

## Counts

| split | samples |
|---|---|
{chr(10).join(f"| {split} | {n} |" for split, n in counts.items())}

## How it was generated

Config hash `{summary["config_hash"]}`, asset listing hash `{summary["assets_hash"]}`, maximum blur strength
K = {summary.get("max_K")}; {versions}. The full config (also in `dataset.json`; rerun with
`python datagen/build.py --config CONFIG.yaml` to get the same bytes):

```yaml
{yaml.safe_dump(cfg, sort_keys=True).strip()}
```

Every sample's parameters and member checksums are in `samples.parquet`; the assets in `assets.parquet`
({skipped} skipped, with reasons); timings in `build_log.json`; distributions in `report.html`.

## Asset sources

| kind | layout | usable files |
|---|---|---|
{source_lines}

The license above is the build's `license:` setting; the terms of the source photographs and mattes apply to the
images made from them.

## Reading it

```python
import glob, webdataset as wds, wids, ray, datasets
from datagen.shards import decode_disp
ds = wds.WebDataset(sorted(glob.glob("DIR/train-*.tar")), shardshuffle=False).decode("rgb8")  # 8-bit arrays
ds = wids.ShardListDataset("DIR/train.wids.json")                          # random access, raw bytes
rows = ray.data.read_webdataset(sorted(glob.glob("DIR/train-*.tar")), decoder=None)
hf = datasets.load_dataset("DIR")                                           # this card's configs
```

`disp.npy` holds raw `.npy` bytes where a reader keeps bytes: `decode_disp(data)` turns them into the array.
{_clip_reading() if frames else ""}
A 16-bit build's PNGs read at full depth with `cv2.imread(path, cv2.IMREAD_UNCHANGED)` (BGR order) or
`common.images.decode_png`.
"""
