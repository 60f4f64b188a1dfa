"""The files of a dataset folder besides the shards: what a build writes (its names, for manifests.outdir and
--overwrite), dataset.json, the check of complete shards on a resume, the wids indexes and the preview sheet."""

from __future__ import annotations

import json
import sys

from common.errors import UserError
from common.limits import MAX_K
from manifests.outdir import MARKER, is_output

# files a build writes, by name (manifests.outdir patterns): --overwrite removes these and nothing else
BUILD_COMMAND = "datagen.build"
BUILD_OUTPUTS = (
    "dataset.json",
    "assets.parquet",
    "samples.parquet",
    "build_log.json",
    "preview.png",
    "preview.gif",
    "report.html",
    "README.md",
    "train.wids.json",
    "val.wids.json",
    "train-[0-9][0-9][0-9][0-9][0-9][0-9].tar",
    "val-[0-9][0-9][0-9][0-9][0-9][0-9].tar",
    "train-[0-9][0-9][0-9][0-9][0-9][0-9].parquet",
    "val-[0-9][0-9][0-9][0-9][0-9][0-9].parquet",
)


def read_meta(store) -> dict:
    """The folder's dataset.json ({} when there is none); a damaged one is an error naming it."""
    if not store.exists("dataset.json"):
        return {}
    try:
        meta = json.loads(store.read_text("dataset.json"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(
            f"{store.display()}/dataset.json: not a readable dataset description ({e}); move the "
            f"folder aside or choose another --out"
        ) from None
    if not isinstance(meta, dict) or "config_hash" not in meta:
        raise UserError(f"{store.display()}/dataset.json: not written by a bokehgen build (no config_hash)")
    return meta


def remove_dataset(store) -> list[str]:
    """Delete the files of a build (after :func:`manifests.outdir.foreign_files` found nothing else); dataset.json
    goes last, so an interrupted removal still leaves a folder that --overwrite accepts. The marker stays."""
    names = sorted(
        (n for n, is_dir in store.entries() if not is_dir and n != MARKER and is_output(n, BUILD_OUTPUTS)),
        key=lambda n: n == "dataset.json",
    )
    for name in names:
        store.delete(name)
    return names


def check_complete_shards(store) -> list[str]:
    """Check every shard whose manifest marks it complete against that manifest (size and sha256 of the tar);
    delete the manifest (and the tar) of a damaged or missing one, so the build redoes it. Returns the problems."""
    from manifests import SHARD_MANIFESTS, shard_problem

    problems = []
    for manifest in store.names(SHARD_MANIFESTS):
        problem = shard_problem(store, manifest.removesuffix(".parquet") + ".tar")
        if problem:
            problems.append(problem)
            store.delete(manifest)
            if store.exists(manifest.removesuffix(".parquet") + ".tar"):
                store.delete(manifest.removesuffix(".parquet") + ".tar")
    return problems


def write_wids_indexes(store) -> list[str]:
    """``{split}.wids.json``: the shard list with sample counts, for ``wids.ShardListDataset`` (random access)."""
    written = []
    for split in ("train", "val"):
        manifests = store.names(f"{split}-[0-9][0-9][0-9][0-9][0-9][0-9].parquet")
        if not manifests:
            continue
        shardlist = [
            {"url": m.removesuffix(".parquet") + ".tar", "nsamples": store.read_metadata(m).num_rows} for m in manifests
        ]
        index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": split, "shardlist": shardlist}
        store.write_text(f"{split}.wids.json", json.dumps(index, indent=1))
        written.append(f"{split}.wids.json")
    return written


def preview(store, count: int = 4, max_k: float = MAX_K) -> bytes | None:
    """Contact sheet (PNG bytes) of the first ``count`` samples of the first training shard (the defocus map over
    [0, ``max_k``], the build's max_K); for clips, strips of
    frames (datagen.clips.clip_preview), and the first clip's frames as ``preview.gif`` (written here)."""
    from webdataset.tariterators import group_by_keys, tar_file_expander

    from datagen.preview import contact_sheet_png
    from datagen.shards import decode_sample

    if not store.exists("train-000000.tar"):
        return None
    samples = []
    with store.open_input("train-000000.tar") as f:
        for s in group_by_keys(tar_file_expander([{"stream": f, "url": "train-000000.tar"}])):
            if "aif.000.png" in s:  # a clip: a strip of frames per clip, and the first clip as preview.gif
                from datagen.clips import clip_preview
                from datagen.shards import decode_clip

                clip = decode_clip(s)
                samples.append(
                    {
                        **{k: [_to8(x) for x in clip[k]] for k in ("aif", "bokeh")},
                        "json": clip["json"],
                        **({"flow": clip["flow"]} if "flow" in clip else {}),
                    }
                )
                if len(samples) == count:
                    break
                continue
            d = decode_sample(s)
            samples.append({**{k: _to8(d[k]) for k in ("aif", "bokeh", "lq")}, "disp": d["disp"], "json": d["json"]})
            if len(samples) == count:
                break
    if samples and "frames" in samples[0]["json"]:
        png, gif = clip_preview(samples)
        store.write_bytes("preview.gif", gif)
        return png
    return contact_sheet_png(samples, max_k) if samples else None


def _to8(rgb):
    import numpy as np

    return rgb if rgb.dtype == np.uint8 else (rgb.astype(np.float64) / 257.0).round().astype(np.uint8)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("bokehgen", "numpy", "numba", "torch", "basicsr", "ray", "webdataset", "pyarrow", "pillow"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    out["python"] = sys.version.split()[0]
    return out
