"""Build a bokeh dataset on Ray: WebDataset shards of (all-in-focus, bokeh, LQ, disparity, json) with manifests.

    python datagen/build.py                       # demo dataset from the bundled assets, local Ray
    python datagen/build.py --config FILE --out DIR [--set key=value ...] [--address auto]

One Ray task per shard. A shard is written atomically and its manifest (``train-000000.parquet``) after it marks it
complete: a rerun skips complete shards and redoes the others; ``--overwrite`` starts over; a different config in the
same output directory is refused (its hash is in ``dataset.json``). Every sample's randomness comes from
(seed, sample index) only, so the bytes do not depend on the number of workers or the order of completion.
This file is a thin entry point for ``ray submit``: the work is in the installed ``datagen`` package.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class BuildConfig:
    """Everything that determines the dataset's bytes (its hash guards the output directory)."""

    assets: list = field(default_factory=list)  # ["layout:path", ...]; empty = bundled demo assets
    num_samples: int = 16  # training samples
    val_samples: int = 4  # built only from validation assets, when there are any
    samples_per_shard: int = 8
    seed: int = 0
    size: int = 512
    min_asset_size: int = 256
    val_fraction: float = 0.05
    max_failure_rate: float = 0.1  # a shard fails when more of its samples raise than this
    k_range: list = field(default_factory=lambda: [0.0, 32.0])
    # renderer.Quality fields for the bokeh render ({} = the renderer's defaults); the default trades ~5 dB
    # (~65 dB mean against a converged reference, above 8-bit storage's ~59 dB) for ~2.5x speed: see README
    render: dict = field(default_factory=lambda: {"cell_px": 10.0, "edge_px": math.inf, "strip_min_px": 1.0})
    png_compress_level: int = 3  # zlib level of the PNG members (6 is ~3x slower for ~5% smaller files)

    @classmethod
    def load(cls, path: Path | None, overrides: list[str]) -> "BuildConfig":
        values = {}
        if path is not None:
            values = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(values, dict):
                raise ValueError(f"{path}: expected a mapping of options")
        known = {f.name for f in dataclasses.fields(cls)}
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r}: expected key=value")
            values[key] = yaml.safe_load(raw)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path or 'overrides'}: unknown key(s) {unknown}; known: {sorted(known)}")
        cfg = cls(**values)
        if cfg.size % 4 or cfg.size < 96:
            raise ValueError(f"size: a multiple of 4, at least 96 (the degradation's smallest input), got {cfg.size}")
        from renderer import Quality

        if not isinstance(cfg.render, dict):
            raise ValueError(f"render: expected a mapping of renderer quality options, got {cfg.render!r}")
        try:
            Quality.from_dict(cfg.render, "render")
        except TypeError as e:
            raise ValueError(str(e)) from None
        if not 0 <= cfg.png_compress_level <= 9:
            raise ValueError(f"png_compress_level: 0..9, got {cfg.png_compress_level}")
        if cfg.samples_per_shard < 1 or cfg.num_samples < 0 or cfg.val_samples < 0:
            raise ValueError("num_samples, val_samples >= 0 and samples_per_shard >= 1 required")
        return cfg

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def plan(cfg: BuildConfig) -> list[tuple[str, int, list[int]]]:
    """(split, shard index, sample indices) for every shard; validation indices continue after training's."""
    shards = []
    for split, start, count in (("train", 0, cfg.num_samples), ("val", cfg.num_samples, cfg.val_samples)):
        for s, first in enumerate(range(start, start + count, cfg.samples_per_shard)):
            shards.append((split, s, list(range(first, min(first + cfg.samples_per_shard, start + count)))))
    return shards


def scan_assets(cfg: BuildConfig, progress: bool = True) -> list:
    """The config's asset rows: its ``assets`` sources (the bundled demo assets when empty), scanned with its
    minimum size (at most the output size) and validation fraction."""
    from datagen.assets import scan
    from datagen.demo_assets import make_demo_assets

    sources = [tuple(s.split(":", 1)) for s in cfg.assets]
    if not sources:
        root = make_demo_assets()
        sources = [("generic", root / "fg"), ("backgrounds", root / "bg")]
    return scan(sources, min_size=min(cfg.min_asset_size, cfg.size), val_fraction=cfg.val_fraction,
                progress=progress)


def build_shard(cfg: BuildConfig, rows: list, split: str, shard: int, indices: list[int], out: str) -> dict:
    """Render, degrade and write one shard and its manifest; returns counts and timings."""
    import pyarrow as pa

    from datagen.assets import usable
    from datagen.scenes import SceneConfig, draw_scene, make_sample
    from datagen.shards import encode_sample, member_columns, write_shard
    from manifests import Store, samples_schema

    t0 = time.perf_counter()
    _pin_threads()
    fgs, bgs = usable(rows, "foreground", split), usable(rows, "background", split)
    by_id = {a.id: a for a in rows}
    scfg = SceneConfig(size=cfg.size, k_range=tuple(cfg.k_range))
    written, records, failures = [], [], []
    for index in indices:
        key = f"{shard:06d}_{index:06d}"
        try:
            spec = draw_scene(cfg.seed, index, fgs, bgs, scfg)
            sample = make_sample(spec, by_id, **cfg.render)
            members = encode_sample(sample, cfg.png_compress_level)
        except Exception as e:  # one bad sample is recorded, not fatal (unless too many)
            failures.append({"key": key, "reason": f"{type(e).__name__}: {e}"})
            continue
        written.append((key, members))
        focus = sample["json"]["focus"]
        records.append({"key": key, "shard": f"{split}-{shard:06d}.tar", "split": split, **spec.columns(),
                        "focus_target_used": focus["target"], "focus_x": focus["xy"][0], "focus_y": focus["xy"][1],
                        "focus_disparity": focus["disparity"],
                        **{f"deg_{k}": v for k, v in sample["json"]["degradation"].items()},
                        **member_columns(members)})
    if len(failures) > cfg.max_failure_rate * len(indices):
        raise RuntimeError(f"{split}-{shard:06d}: {len(failures)} of {len(indices)} samples failed: {failures[:3]}")
    name = f"{split}-{shard:06d}"
    store = Store(out)
    write_shard(store, f"{name}.tar", written)
    table = pa.Table.from_pylist(records, schema=samples_schema())
    table = table.replace_schema_metadata({"failures": json.dumps(failures)})
    store.write_table(table, f"{name}.parquet")
    return {"shard": name, "samples": len(written), "failures": failures, "seconds": time.perf_counter() - t0,
            "node": _node_id(), "pid": os.getpid()}


def _node_id() -> str | None:
    """The Ray node this runs on (recorded per shard in build_log.json), None outside Ray."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:
        return None


def _pin_threads() -> None:
    """Inside a Ray task, let numba, torch and OpenCV use the CPUs Ray assigned to it (1 by default), not every
    core (Ray itself sets OMP_NUM_THREADS for numpy's BLAS)."""
    try:
        import ray

        if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
            return
        cpus = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)) or 1
    except Exception:
        return
    import cv2
    import numba
    import torch

    numba.set_num_threads(min(cpus, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(cpus)
    cv2.setNumThreads(cpus)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="YAML BuildConfig")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value (repeatable)")
    p.add_argument("--out", default="bokeh_dataset",
                   help="output folder: a path (shared by all nodes on a cluster) or a pyarrow.fs URI "
                        "(s3://, gs://, ...)")
    p.add_argument("--assets", action="append", metavar="LAYOUT:PATH",
                   help="asset folder (repeatable): photomatte85, aim500, rwp636, pairs, generic or backgrounds")
    p.add_argument("--num-samples", type=int, help="training samples (config num_samples)")
    p.add_argument("--samples-per-shard", type=int, help="samples per shard (config samples_per_shard)")
    p.add_argument("--seed", type=int, help="run seed (config seed)")
    p.add_argument("--size", type=int, help="output size in pixels, a multiple of 4 (config size)")
    p.add_argument("--workers", type=int, default=None, help="CPUs for a local Ray instance (default: all)")
    p.add_argument("--address", default=None,
                   help="join an existing Ray cluster (auto, or HEAD:6379); default: RAY_ADDRESS, else a new local "
                        "instance")
    p.add_argument("--overwrite", action="store_true", help="delete what the output folder holds and start over")
    return p.parse_args(argv)


def main(args: argparse.Namespace) -> dict:
    import pyarrow as pa
    import ray

    from datagen.assets import usable
    from datagen.report import write_report
    from manifests import SHARD_MANIFESTS, Store, assets_schema, checked_table

    flags = {"assets": args.assets, "num_samples": args.num_samples, "samples_per_shard": args.samples_per_shard,
             "seed": args.seed, "size": args.size}
    cfg = BuildConfig.load(args.config, args.overrides + [f"{k}={json.dumps(v)}" for k, v in flags.items()
                                                          if v is not None])
    store = Store(args.out)
    where = store.display()
    if args.overwrite:
        store.clear()
    store.makedirs()
    store.clean_partial()  # half-written files of an interrupted run
    old_meta = json.loads(store.read_text("dataset.json")) if store.exists("dataset.json") else {}
    if old_meta and old_meta.get("config_hash") != cfg.digest():
        raise SystemExit(f"{where}: holds a dataset of another config (hash {old_meta.get('config_hash')} vs "
                         f"{cfg.digest()}); use another --out or --overwrite")
    rows = scan_assets(cfg)
    store.write_table(checked_table([dataclasses.asdict(a) for a in rows], assets_schema(), "assets.parquet"),
                      "assets.parquet")
    # the assets decide the bytes as much as the config: a resumed build must see the same ones
    listing = json.dumps(sorted((a.id, a.kind, a.split, a.ok) for a in rows))
    assets_hash = hashlib.sha256(listing.encode()).hexdigest()[:16]
    if old_meta.get("assets_hash", assets_hash) != assets_hash:
        raise SystemExit(f"{where}: was built from other assets (hash {old_meta['assets_hash']} vs {assets_hash}); "
                         f"use another --out or --overwrite")
    started = {"config": dataclasses.asdict(cfg), "config_hash": cfg.digest(), "assets_hash": assets_hash,
               "complete": False}
    store.write_text("dataset.json", json.dumps(started, indent=2, sort_keys=True))
    complete = set(store.names(SHARD_MANIFESTS))
    todo = [s for s in plan(cfg) if f"{s[0]}-{s[1]:06d}.parquet" not in complete]
    has_val = bool(usable(rows, "foreground", "val")) and bool(usable(rows, "background", "val"))
    skipped_val = [s for s in todo if s[0] == "val" and not has_val]
    todo = [s for s in todo if s not in skipped_val]
    if not ray.is_initialized():
        # --address (or RAY_ADDRESS, set inside `ray job submit`) joins a cluster; otherwise a new local instance,
        # even when a cluster started with `ray start` runs on this machine
        joining = bool(args.address or os.environ.get("RAY_ADDRESS"))
        ray.init(address=args.address if joining else "local", num_cpus=None if joining else args.workers,
                 include_dashboard=False, log_to_driver=False)
    task = ray.remote(max_retries=3, retry_exceptions=False)(build_shard)
    rows_ref = ray.put(rows)
    pending = [task.remote(cfg, rows_ref, split, shard, idx, store.location) for split, shard, idx in todo]
    results, t0 = [], time.perf_counter()
    total = sum(len(s[2]) for s in todo)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        results.append(ray.get(done[0]))
        n = sum(r["samples"] for r in results)
        rate = n / max(time.perf_counter() - t0, 1e-9)
        print(f"\r{len(results)}/{len(todo)} shards, {n}/{total} samples, {rate:.2f} samples/s, "
              f"ETA {(total - n) / rate if rate else 0:.0f} s", end="", flush=True)
    print()
    tables = [store.read_table(name) for name in store.names(SHARD_MANIFESTS)]
    merged = pa.concat_tables(tables) if tables else None
    if merged is not None:
        store.write_table(merged.replace_schema_metadata(None), "samples.parquet")
    write_wids_indexes(store)
    skipped_assets = [{"uri": a.uri, "reason": a.reason} for a in rows if not a.ok]
    summary = {"config": dataclasses.asdict(cfg), "config_hash": cfg.digest(), "assets_hash": assets_hash,
               "complete": True,
               "samples": 0 if merged is None else merged.num_rows,
               "shards": store.names("*.tar"), "skipped_assets": skipped_assets,
               "val_skipped": "no validation assets" if skipped_val else "",
               "versions": _versions()}
    store.write_text("dataset.json", json.dumps(summary, indent=2, sort_keys=True))
    # timings: the one output that is not deterministic
    log = json.loads(store.read_text("build_log.json")) if store.exists("build_log.json") else []
    log.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - (time.perf_counter() - t0))),
                "seconds": time.perf_counter() - t0, "shards": results})
    store.write_text("build_log.json", json.dumps(log, indent=2))
    sheet = preview(store)
    if sheet:
        store.write_bytes("preview.png", sheet)
    write_report(store, sheet)
    print(f"wrote {summary['samples']} samples in {len(summary['shards'])} shards to {where}")
    if sheet:
        last = len(summary["shards"]) - 1
        print(f"look at them: {where}/preview.png (rows: LQ, all-in-focus, disparity, defocus map, bokeh) and "
              f"{where}/report.html; read them with webdataset.WebDataset('{where}/train-{{000000..{last:06d}}}.tar')")
    return summary


def write_wids_indexes(store) -> list[str]:
    """``{split}.wids.json``: the shard list with sample counts, for ``wids.ShardListDataset`` (random access)."""
    written = []
    for split in ("train", "val"):
        manifests = store.names(f"{split}-[0-9][0-9][0-9][0-9][0-9][0-9].parquet")
        if not manifests:
            continue
        shardlist = [{"url": m.removesuffix(".parquet") + ".tar", "nsamples": store.read_metadata(m).num_rows}
                     for m in manifests]
        index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": split, "shardlist": shardlist}
        store.write_text(f"{split}.wids.json", json.dumps(index, indent=1))
        written.append(f"{split}.wids.json")
    return written


def preview(store, count: int = 4) -> bytes | None:
    """Contact sheet (PNG bytes) of the first ``count`` samples of the first training shard."""
    import io

    import numpy as np
    from PIL import Image
    from webdataset.tariterators import group_by_keys, tar_file_expander

    from datagen.preview import contact_sheet_png
    from datagen.shards import decode_disp

    if not store.exists("train-000000.tar"):
        return None
    samples = []
    with store.open_input("train-000000.tar") as f:
        for s in group_by_keys(tar_file_expander([{"stream": f, "url": "train-000000.tar"}])):
            png = {k: np.asarray(Image.open(io.BytesIO(s[f"{k}.png"])).convert("RGB")) for k in ("aif", "bokeh", "lq")}
            samples.append({**png, "disp": decode_disp(s["disp.npy"]), "json": json.loads(s["json"])})
            if len(samples) == count:
                break
    return contact_sheet_png(samples)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("bokehgen", "numpy", "numba", "torch", "basicsr", "ray", "webdataset", "pyarrow", "pillow"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    out["python"] = sys.version.split()[0]
    return out


def cli() -> None:
    main(parse_args())


if __name__ == "__main__":
    cli()
