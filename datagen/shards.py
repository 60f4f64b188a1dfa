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


def decode_clip(sample: dict) -> dict:
    """A clip sample as WebDataset yields it (member name -> bytes) -> {"aif", "bokeh", "lq": T×H×W×3 (uint8, or
    uint16 for 16-bit builds), "disp": T×H×W float32, "json": dict}, and "flow": (T-1)×H×W×2 float32 (x, y) px
    where the build wrote it (sequence.flow)."""
    import json

    from common.images import decode_png

    meta = json.loads(sample["json"])
    T = len(meta["frames"])
    key = sample.get("__key__", "clip")
    out = {"json": meta}
    for name in ("aif", "bokeh", "lq"):
        out[name] = np.stack([decode_png(sample[f"{name}.{k:03d}.png"], f"{key}: {name}.{k:03d}.png")
                              for k in range(T)])
    out["disp"] = np.stack([decode_disp(sample[f"disp.{k:03d}.npy"]) for k in range(T)])
    if "flow.000.npy" in sample:
        out["flow"] = np.stack([decode_disp(sample[f"flow.{k:03d}.npy"]) for k in range(T - 1)])
    return out


def decode_disp(data: bytes) -> np.ndarray:
    """The ``disp.npy`` member (or a clip's ``flow.NNN.npy``) back to its float32 array (full precision)."""
    return np.load(io.BytesIO(data), allow_pickle=False)


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
