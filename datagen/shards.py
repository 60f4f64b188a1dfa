"""Deterministic WebDataset shards: encoding, atomic writing, and the per-shard manifest that marks completion.

A shard is written under a temporary name and moved into place (``manifests.storage.Store.open_atomic``: fsync and
rename on a disk, one server-side copy on object storage); its manifest (``NAME.parquet``), written after the shard,
marks it complete. Tar metadata is fixed (mtime 0, owner "bokehgen", mode 0444) and members are
encoded deterministically, so the same samples give the same bytes on any machine.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from webdataset import TarWriter

from common.images import encode_png
from common.jsonfile import dumps as json_dumps
from manifests.schemas import MEMBERS


def encode_sample(sample: dict, png_compress_level: int = 3) -> dict[str, bytes]:
    """Sample arrays -> member bytes: PNGs (sRGB, 8-bit, or 16-bit for uint16 arrays; zlib at
    ``png_compress_level``), disparity as float32 .npy, sorted strict JSON."""
    out = {}
    for name in ("aif", "bokeh", "lq"):
        out[f"{name}.png"] = encode_png(sample[name], png_compress_level)
    out["disp.npy"] = encode_npy(sample["disp"])
    out["json"] = json_dumps(sample["json"], indent=None).encode()
    return out


def encode_npy(array) -> bytes:
    """A float32 .npy member (``disp.npy``, a clip's ``flow.NNN.npy``); :func:`decode_disp` reads it back."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def encode_clip(clip: dict, png_compress_level: int = 3) -> dict[str, bytes]:
    """A clip (datagen.clips.make_clip) -> member bytes, encoded as :func:`encode_sample` encodes a sample's."""
    out = {}
    for k in range(len(clip["aif"])):
        for name in ("aif", "bokeh", "lq"):
            out[f"{name}.{k:03d}.png"] = encode_png(clip[name][k], png_compress_level)
        out[f"disp.{k:03d}.npy"] = encode_npy(clip["disp"][k])
    for k, flow in enumerate(clip.get("flow", [])):
        out[f"flow.{k:03d}.npy"] = encode_npy(flow)
    out["json"] = json_dumps(clip["json"], indent=None).encode()
    return out


def decode_sample(sample: dict) -> dict:
    """An image sample as WebDataset yields it (member name -> bytes, or already decoded by ``.decode()``) ->
    {"aif", "bokeh", "lq": H×W×3 uint8 (uint16 for a 16-bit build's aif and bokeh), "disp": H×W float32, "json":
    dict}: the inverse of :func:`encode_sample`. A ValueError names the sample and its shard when a member is
    missing or cannot be decoded, and says so when the sample is a clip (:func:`decode_clip` reads those)."""
    import json

    from common.images import decode_png

    key = sample.get("__key__", "the sample")
    where = f"sample {key} ({sample['__url__']})" if "__url__" in sample else f"sample {key}"
    if any(k.startswith("aif.") and k[4:7].isdigit() for k in sample):
        raise ValueError(f"{where}: a clip (aif.000.png, ...), not an image sample: read it with decode_clip")
    missing = [m for m in MEMBERS if m not in sample]
    if missing:
        raise ValueError(f"{where}: missing members {missing}")
    out = {}
    for name in ("aif", "bokeh", "lq"):
        value = sample[f"{name}.png"]
        out[name] = (
            decode_png(bytes(value), f"{where}: {name}.png")
            if isinstance(value, (bytes, bytearray))
            else _as_stored(np.asarray(value), name)
        )
    disp = sample["disp.npy"]
    out["disp"] = decode_disp(bytes(disp)) if isinstance(disp, (bytes, bytearray)) else np.asarray(disp, np.float32)
    meta = sample["json"]
    out["json"] = meta if isinstance(meta, dict) else json.loads(meta)
    return out


def decode_clip(sample: dict) -> dict:
    """A clip sample as WebDataset yields it (member name -> bytes) -> {"aif", "bokeh", "lq": T×H×W×3 (uint8, or
    uint16 for 16-bit builds), "disp": T×H×W float32, "json": dict}, and "flow": (T-1)×H×W×2 float32 (x, y) px
    where the build wrote it (sequence.flow). Also takes a sample that WebDataset already decoded (``.decode()``:
    arrays and a dict); a ValueError names the sample when it is not a clip (an image sample) or lacks members."""
    import json

    from common.images import decode_png

    key = sample.get("__key__", "the sample")
    if "json" not in sample:
        raise ValueError(
            f"decode_clip: {key}: no json member; expected a clip sample as WebDataset yields it "
            f"(member name -> bytes, or decoded)"
        )
    meta = sample["json"] if isinstance(sample["json"], dict) else json.loads(sample["json"])
    if "frames" not in meta:
        raise ValueError(
            f"decode_clip: {key}: an image sample (aif.png, bokeh.png, ...), not a clip: decode it "
            f"with webdataset's .decode() or model.data.to_tensors"
        )
    T = len(meta["frames"])

    def member(name: str, k: int, decode):
        m = f"{name}.{k:03d}.{'npy' if name in ('disp', 'flow') else 'png'}"
        if m not in sample:
            raise ValueError(f"decode_clip: {key}: missing member {m} ({T} frames)")
        value = sample[m]
        if isinstance(value, (bytes, bytearray, memoryview)):
            return decode(bytes(value), f"{key}: {m}")
        return _as_stored(np.asarray(value), name)  # already decoded (webdataset's .decode())

    out = {"json": meta}
    for name in ("aif", "bokeh", "lq"):
        out[name] = np.stack([member(name, k, decode_png) for k in range(T)])
    out["disp"] = np.stack([member("disp", k, lambda b, _: decode_disp(b)) for k in range(T)])
    if "flow.000.npy" in sample:
        out["flow"] = np.stack([member("flow", k, lambda b, _: decode_disp(b)) for k in range(T - 1)])
    return out


def clip_frames(sample: dict):
    """A clip sample as WebDataset yields it (member name -> bytes) -> its frames as image samples, one per frame,
    in order: key ``{clip key}_f{k:03d}``, members ``aif.png``, ``bokeh.png``, ``lq.png``, ``disp.npy`` (the frame's
    own bytes, never re-encoded) and a ``json`` laid out as an image's where it can be: the frame's ``render`` (K,
    focus_disparity) and ``focus`` (target, xy, disparity), the clip's scene, degradation and bit depth, and
    ``frame`` (the frame's record, with the clip's key). An image sample passes through unchanged. Flow is a
    pair's, not a frame's: it is left out. A ValueError names the clip when its JSON or a frame's member is missing."""
    import json

    if not any(k.startswith("aif.") and k[4:7].isdigit() for k in sample):
        yield sample
        return
    key = sample.get("__key__", "the sample")
    where = f"clip {key} ({sample['__url__']})" if "__url__" in sample else f"clip {key}"
    if "json" not in sample:
        raise ValueError(f"{where}: missing member json")
    meta = sample["json"] if isinstance(sample["json"], dict) else json.loads(sample["json"])
    frames = meta.get("frames")
    if not frames:
        raise ValueError(f"{where}: its json lists no frames")
    for k, frame in enumerate(frames):
        out = {n: sample[n] for n in ("__url__", "__local_path__") if n in sample}
        out["__key__"] = f"{key}_f{k:03d}"
        for name, ext in (("aif", "png"), ("bokeh", "png"), ("lq", "png"), ("disp", "npy")):
            member = f"{name}.{k:03d}.{ext}"
            if member not in sample:
                raise ValueError(f"{where}: missing member {member} ({len(frames)} frames)")
            out[f"{name}.{ext}"] = sample[member]
        out["json"] = {
            "scene": meta.get("scene"),
            "degradation": meta.get("degradation"),
            "bit_depth": meta.get("bit_depth", 8),
            "render": {"K": frame["K"], "focus_disparity": frame["focus_disparity"], **meta.get("render", {})},
            "focus": {"target": frame["target"], "xy": frame["xy"], "disparity": frame["focus_disparity"]},
            "frame": {**frame, "clip": key},
            "defocus": "r = K * |disp - focus_disparity| (pixels)",
        }
        if "camera" in frame:
            out["json"]["camera"] = frame["camera"]
        yield out


def _as_stored(a: np.ndarray, name: str) -> np.ndarray:
    """An already-decoded member as decode_clip returns it: images as uint8 (webdataset's "rgb8") or uint16 are
    kept; float images in [0, 1] ("rgb", "torchrgb": C×H×W) are brought back to H×W×3 uint8; arrays stay."""
    if name in ("disp", "flow"):
        return np.asarray(a, np.float32)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:  # torch layout
        a = np.moveaxis(a, 0, -1)
    if a.dtype.kind == "f":
        a = np.clip(np.round(a * 255), 0, 255).astype(np.uint8)
    return a


def decode_disp(data: bytes) -> np.ndarray:
    """The ``disp.npy`` member (or a clip's ``flow.NNN.npy``) back to its float32 array (full precision)."""
    return np.load(io.BytesIO(data), allow_pickle=False).astype(np.float32, copy=False)


class _Digesting:
    """A write-only file that passes bytes on and keeps their count and sha256 (the shard's manifest records them,
    so a resumed build can tell a damaged shard)."""

    def __init__(self, f):
        self.f, self.sha256, self.size = f, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def write_shard(store, name: str, samples: list[tuple[str, dict[str, bytes]]]) -> tuple[int, str]:
    """Write (key, members) pairs to the shard ``name`` of ``store`` (a ``manifests.storage.Store``) atomically;
    returns the tar's size in bytes and its sha256."""
    with store.open_atomic(name) as f:
        out = _Digesting(f)
        writer = TarWriter(out, user="bokehgen", group="bokehgen", mode=0o444, encoder=False, mtime=0.0)
        for key, members in samples:
            writer.write({"__key__": key, **members})
        writer.close()
    return out.size, out.sha256.hexdigest()


def member_columns(members: dict[str, bytes], names=MEMBERS) -> dict:
    """sha256 and size of every member (``names``: a sample's, or a clip's clip_member_names), as manifest columns."""
    cols = {}
    for name in names:
        col = name.replace(".", "_")
        cols[f"{col}_sha256"] = hashlib.sha256(members[name]).hexdigest()
        cols[f"{col}_bytes"] = len(members[name])
    return cols
