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

from common import config
from common.jsonfile import dumps as json_dumps
from common.limits import MAX_K, check_seed
from datagen.preflight import check_cluster, check_this_node, sample_assets
from datagen.scenes import HighlightsConfig, SceneConfig
from datagen.sources import AssetUnavailable
from degradations import DegradationConfig
from manifests.outdir import MARKER, OutputFolderError, check_not_input, claim, foreign_files, is_output

MAX_SIZE = 8192  # px: a 8192² sample already needs ~2 GB of float buffers in the renderer


@dataclass
class BuildConfig:
    """Everything that determines the dataset's bytes (its hash guards the output directory). Loaded and checked by
    ``common.config`` (types, ranges, unknown keys) before anything is written or Ray starts."""

    assets: list[str] = field(default_factory=list)  # ["layout:path", ...]; empty = bundled demo assets
    num_samples: int = 16  # training samples
    val_samples: int = 4  # built only from validation assets, when there are any
    samples_per_shard: int = 8
    seed: int = 0
    size: int = 512
    min_asset_size: int = 256
    val_fraction: float = 0.05
    max_failure_rate: float = 0.1  # a shard fails when more of its samples raise than this
    # the scene distribution (datagen.scenes.SceneConfig: K range, foregrounds, focus targets, background model)
    scene: SceneConfig = field(default_factory=SceneConfig)
    k_range: list[float] | None = None  # alias of scene.k_range (older configs)
    # the degradation: {preset: realesrgan_x4plus | s3diff, KEY: VALUE ...} (degradations.DegradationConfig keys)
    degradation: dict = field(default_factory=dict)
    highlights: HighlightsConfig = field(default_factory=HighlightsConfig)  # bright bokeh balls, per sample
    bit_depth: int = 8  # 8, or 16: the all-in-focus and bokeh PNGs in 16 bits (the LQ stays 8-bit)
    license: str = "other"  # the dataset card's license (an SPDX id or "other": yours to state for your assets)
    # renderer.Quality fields for the bokeh render ({} = the renderer's defaults); the default trades ~5 dB
    # (~65 dB mean against a converged reference, above 8-bit storage's ~59 dB) for ~2.5x speed: see README
    render: dict = field(default_factory=lambda: {"cell_px": 10.0, "edge_px": math.inf, "strip_min_px": 1.0})
    png_compress_level: int = 3  # zlib level of the PNG members (6 is ~3x slower for ~5% smaller files)

    def __post_init__(self):
        from datagen.assets import LAYOUTS
        from renderer import Quality

        for i, item in enumerate(self.assets):
            layout, sep, path = item.partition(":")
            if not sep or layout not in LAYOUTS or not path:
                raise ValueError(f"assets[{i}]: expected LAYOUT:PATH with LAYOUT one of {', '.join(sorted(LAYOUTS))}, "
                                 f"got {item!r}")
        check_seed(self.seed)
        if self.num_samples < 1:
            raise ValueError(f"num_samples: at least 1 (a build that produces nothing is not a dataset), "
                             f"got {self.num_samples}")
        if self.val_samples < 0:
            raise ValueError(f"val_samples: >= 0, got {self.val_samples}")
        if self.samples_per_shard < 1:
            raise ValueError(f"samples_per_shard: >= 1, got {self.samples_per_shard}")
        if self.size % 4 or not 96 <= self.size <= MAX_SIZE:
            raise ValueError(f"size: a multiple of 4 in [96, {MAX_SIZE}] (96: the degradation's smallest input), "
                             f"got {self.size}")
        if self.min_asset_size < 1:
            raise ValueError(f"min_asset_size: >= 1, got {self.min_asset_size}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction: in [0, 1), got {self.val_fraction}")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError(f"max_failure_rate: in [0, 1], got {self.max_failure_rate}")
        if self.k_range is not None:  # the alias: checked as scene.k_range, then folded into it (one hash)
            self.scene = config.from_dict(SceneConfig, {**config.to_dict(self.scene), "k_range": self.k_range}, "")
            self.k_range = None
        deg = self.degradation_config()
        if self.size % deg.scale or self.size < deg.scale * max(deg.kernel_range):
            raise ValueError(f"size: {self.size} must be a multiple of the degradation's scale {deg.scale} and at "
                             f"least {deg.scale * max(deg.kernel_range)} (scale × largest kernel)")
        if not self.license.strip():
            raise ValueError("license: an SPDX id (e.g. cc-by-4.0) or 'other', got an empty string")
        if self.bit_depth not in (8, 16):
            raise ValueError(f"bit_depth: 8 or 16, got {self.bit_depth}")
        Quality.from_dict(self.render, "render")
        if not 0 <= self.png_compress_level <= 9:
            raise ValueError(f"png_compress_level: 0..9, got {self.png_compress_level}")

    def degradation_config(self) -> DegradationConfig:
        """The ``degradation:`` section as a checked DegradationConfig: its ``preset`` (default realesrgan_x4plus)
        with the section's other keys over it."""
        values = dict(self.degradation)
        preset = values.pop("preset", "realesrgan_x4plus")
        if not isinstance(preset, str):
            raise ValueError(f"degradation.preset: a preset name, got {preset!r}")
        try:
            base = DegradationConfig.preset(preset)
        except ValueError as e:
            raise ValueError(f"degradation.preset: {e}") from None
        return config.from_dict(DegradationConfig, {**config.to_dict(base), **values}, "", "degradation.")

    @classmethod
    def load(cls, path: Path | None, overrides: list[str]) -> "BuildConfig":
        """The YAML file ``path`` (optional) with ``key=value`` overrides, every value checked."""
        where = str(path) if path else "build config"
        data = config.parse_overrides(overrides, config.read_yaml(path) if path is not None else {})
        if "k_range" in data and isinstance(data.get("scene"), dict) and "k_range" in data["scene"]:
            raise ValueError(f"{where}: k_range and scene.k_range are both given; k_range is the older name of "
                             f"scene.k_range: give only scene.k_range")
        return config.load(cls, path, overrides, where=where)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(config.to_dict(self), sort_keys=True).encode()).hexdigest()[:16]


def plan(cfg: BuildConfig) -> list[tuple[str, int, list[int]]]:
    """(split, shard index, sample indices) for every shard; validation indices continue after training's."""
    shards = []
    for split, start, count in (("train", 0, cfg.num_samples), ("val", cfg.num_samples, cfg.val_samples)):
        for s, first in enumerate(range(start, start + count, cfg.samples_per_shard)):
            shards.append((split, s, list(range(first, min(first + cfg.samples_per_shard, start + count)))))
    return shards


def asset_sources(cfg: BuildConfig) -> list[tuple[str, str]]:
    """(layout, location) of every asset folder: the config's, or the bundled demo assets (``demo://``: generated
    on any node that lacks them, checked against the scan's hashes: datagen.sources)."""
    from datagen.sources import DEMO

    if not cfg.assets:
        return [("generic", f"{DEMO}fg"), ("backgrounds", f"{DEMO}bg")]
    return [tuple(s.split(":", 1)) for s in cfg.assets]


def scan_assets(cfg: BuildConfig, progress: bool = True) -> list:
    """The config's asset rows: its ``assets`` sources (the bundled demo assets when empty), scanned with its
    minimum size (at most the output size) and validation fraction."""
    from datagen.assets import scan

    sources = asset_sources(cfg)
    return scan(sources, min_size=min(cfg.min_asset_size, cfg.size), val_fraction=cfg.val_fraction,
                progress=progress)


def _writable(folder: Path) -> bool:
    """Whether ``folder`` (or, when it does not exist yet, its nearest existing parent) can be written."""
    for p in (folder, *folder.parents):
        if p.exists():
            return os.access(p, os.W_OK | os.X_OK)
    return False


def check_asset_folders(cfg: BuildConfig) -> None:
    """Every ``--assets`` source is an existing folder in its layout (checked before Ray starts): one line naming
    it otherwise."""
    from datagen.assets import check_layout

    for item in cfg.assets:
        layout, _, path = item.partition(":")
        try:
            check_layout(layout, path)
        except ValueError as e:
            raise SystemExit(f"error: --assets {item}: {e}") from None


def build_shard(cfg: BuildConfig, rows: list, split: str, shard: int, indices: list[int], out: str,
                sample: list | None = None) -> dict:
    """Render, degrade and write one shard and its manifest; returns counts and timings. ``sample``: the assets
    the pre-flight check reads (datagen.preflight), read again here on a node that has not yet checked them. A
    node that cannot read an asset raises AssetUnavailable (the build stops), not a failed sample."""
    import pyarrow as pa

    from datagen.assets import usable
    from datagen.scenes import draw_scene, make_sample
    from datagen.shards import encode_sample, member_columns, write_shard
    from manifests import Store, samples_schema
    from renderer import Highlights

    t0 = time.perf_counter()
    _pin_threads()
    if sample:
        check_this_node(sample)
    fgs, bgs = usable(rows, "foreground", split), usable(rows, "background", split)
    by_id = {a.id: a for a in rows}
    deg = cfg.degradation_config()
    boost = Highlights(cfg.highlights.threshold, cfg.highlights.gain)
    written, records, failures = [], [], []
    for index in indices:
        key = f"{shard:06d}_{index:06d}"
        try:
            spec = draw_scene(cfg.seed, index, fgs, bgs, cfg.scene, size=cfg.size,
                              highlights_prob=cfg.highlights.prob)
            sample = make_sample(spec, by_id, deg, boost, cfg.bit_depth, **cfg.render)
            members = encode_sample(sample, cfg.png_compress_level)
        except AssetUnavailable:
            raise  # this node's storage, not this sample
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
    size, sha256 = write_shard(store, f"{name}.tar", written)
    table = pa.Table.from_pylist(records, schema=samples_schema(cfg.scene.num_foregrounds))
    table = table.replace_schema_metadata({"failures": json_dumps(failures, indent=None), "shard_bytes": str(size),
                                           "shard_sha256": sha256})
    store.write_table(table, f"{name}.parquet")
    return {"shard": name, "samples": len(written), "failures": failures, "seconds": time.perf_counter() - t0,
            "node": _node_id(), "pid": os.getpid()}


def connect_ray(address: str | None, workers: int | None) -> dict:
    """Start or join Ray and say which, with the cluster's size; returns what build_log.json records.

    ``address``: None = Ray's own discovery (``RAY_ADDRESS``, else the cluster this machine is part of, from the
    address file ``ray start`` writes in Ray's temp dir), else a private local instance; "local" = always a private
    instance; "auto" or HOST:PORT = that cluster (an error when none runs). ``workers`` sizes a private instance
    only: a cluster's size is the cluster's, so it is refused when joining one.
    """
    import ray

    if ray.is_initialized():  # the caller set Ray up (tests, notebooks)
        return {"mode": "caller", "address": ray.get_runtime_context().gcs_address}
    found, source = _discover_cluster(address)
    if found is not None and found != "auto" and "://" not in found and not _answers(found):
        if source.startswith("this machine"):  # a stale address file: the cluster that wrote it is gone
            print(f"Ray: {source.split('from ')[-1]} names {found}, but nothing answers there (a stopped "
                  f"cluster?); starting a private instance", flush=True)
            found, source = None, ""
        else:
            raise SystemExit(f"cannot reach the Ray cluster at {found} ({source}): nothing answers on that port; "
                             f"start it (ray start / ray up), or pass --address local for a private instance")
    if found is None:
        if workers is not None and workers < 1:
            raise SystemExit(f"--workers: at least 1, got {workers}")
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
        print(f"Ray: private local instance, {cluster_size()} (no running cluster found; --address HEAD:6379 or "
              f"RAY_ADDRESS joins one)", flush=True)
        return {"mode": "local", "address": ray.get_runtime_context().gcs_address}
    if workers is not None:
        raise SystemExit(f"--workers {workers}: only sizes a private local instance, but this build joins the Ray "
                         f"cluster at {found} ({source}), whose nodes decide the CPUs; drop --workers, or pass "
                         f"--address local for a private instance")
    try:
        ray.init(address=found, include_dashboard=False, log_to_driver=False)
    except ConnectionError as e:
        raise SystemExit(f"cannot reach the Ray cluster at {found} ({source}): {e}; start it (ray start / ray up), "
                         f"or pass --address local for a private instance") from None
    gcs = ray.get_runtime_context().gcs_address
    print(f"Ray: joined the cluster at {gcs} ({source}): {cluster_size()}", flush=True)
    return {"mode": "cluster", "address": gcs, "source": source}


def _discover_cluster(address: str | None) -> tuple[str | None, str]:
    """(address to join or None for a private instance, how it was found), the way ``ray.init()`` resolves it."""
    if address == "local":
        return None, "--address local"
    if address:
        return address, "--address"
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
    address_file = _ray_address_file()
    try:
        found = Path(address_file).read_text().strip()
    except OSError:
        return None, ""
    return (found or None), f"this machine's Ray cluster, from {address_file}"


def _answers(address: str, timeout: float = 3.0) -> bool:
    """Whether something accepts TCP connections at HOST:PORT (a Ray GCS does), so that a stale address does not
    leave the build waiting on Ray's own minute-long reconnect timeouts."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _ray_address_file() -> str:
    """<Ray's temp dir>/ray_current_cluster: where ``ray start`` records the cluster's address (RAY_TMPDIR honoured).
    Ray keeps the function that names it private and has moved it between releases."""
    for module in ("ray._common.utils", "ray._private.utils"):
        try:
            return __import__(module, fromlist=["get_ray_address_file"]).get_ray_address_file(None)
        except (ImportError, AttributeError):
            continue
    import tempfile

    tmp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or tempfile.gettempdir()
    return os.path.join(tmp, "ray", "ray_current_cluster")


def cluster_size() -> str:
    """'N nodes, C CPUs (B busy)' of the Ray instance this process is connected to."""
    import ray

    try:
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        total, free = ray.cluster_resources().get("CPU", 0), ray.available_resources().get("CPU", 0)
    except Exception as e:  # the size is information; a failing query must not stop a build
        return f"cluster size unknown ({type(e).__name__})"
    return f"{nodes} node{'s' if nodes != 1 else ''}, {total:g} CPUs ({total - free:g} busy)"


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
    p.add_argument("--assets", action="extend", nargs="+", metavar="LAYOUT:PATH",
                   help="asset folders (several, or the flag repeated), LAYOUT one of photomatte85, aim500, rwp636, "
                        "am2k, p3m10k, pairs, generic, backgrounds; PATH a folder every node mounts at that path, or "
                        "a pyarrow.fs URI (s3://bucket/fg, gs://..., hdfs://...)")
    p.add_argument("--num-samples", type=int, help="training samples (config num_samples)")
    p.add_argument("--samples-per-shard", type=int, help="samples per shard (config samples_per_shard)")
    p.add_argument("--seed", type=int, help="run seed (config seed)")
    p.add_argument("--size", type=int, help="output size in pixels, a multiple of 4 (config size)")
    p.add_argument("--workers", type=int, default=None,
                   help="CPUs of a private local Ray instance (default: all); refused when joining a cluster, whose "
                        "size the cluster decides")
    p.add_argument("--address", default=None,
                   help="Ray cluster to run on: HEAD:6379, 'auto', or 'local' for a private instance on this machine. "
                        "Default: RAY_ADDRESS, else the cluster this machine is part of (as `ray start` / `ray up` "
                        "record it in Ray's temp dir, RAY_TMPDIR honoured), else a private local instance")
    p.add_argument("--overwrite", action="store_true", help="delete what the output folder holds and start over")
    return p.parse_args(argv)


def main(args: argparse.Namespace) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc
    import ray

    from datagen.assets import usable
    from datagen.card import dataset_card
    from datagen.report import write_report
    from manifests import SHARD_MANIFESTS, Store, assets_schema, checked_table

    flags = {"assets": args.assets, "num_samples": args.num_samples, "samples_per_shard": args.samples_per_shard,
             "seed": args.seed, "size": args.size}
    try:
        cfg = BuildConfig.load(args.config, args.overrides + [f"{k}={json.dumps(v)}" for k, v in flags.items()
                                                              if v is not None])
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    # everything below is checked before anything is written or Ray starts
    store = Store(args.out)
    where = store.display()
    try:  # the owner of the folder and the inputs: checked before anything is written
        check_not_input(args.out, [p.split(":", 1)[1] for p in cfg.assets], "--out")
        claim(store, BUILD_COMMAND, BUILD_OUTPUTS, create=False, signature="dataset.json")
    except OutputFolderError as e:
        raise SystemExit(f"error: {e}") from None
    check_asset_folders(cfg)
    old_meta = _read_meta(store)
    if old_meta and not args.overwrite and old_meta.get("config_hash") != cfg.digest():
        raise SystemExit(f"{where}: holds a dataset of another config (hash {old_meta.get('config_hash')} vs "
                         f"{cfg.digest()}); use another --out or --overwrite")
    if args.overwrite:
        foreign = foreign_files(store, BUILD_OUTPUTS)
        if foreign:
            raise SystemExit(f"--overwrite {where}: refused, the folder holds files a bokehgen build did not write: "
                             f"{', '.join(foreign[:10])}{' ...' if len(foreign) > 10 else ''}; --overwrite only "
                             f"replaces what a build wrote")
    if store.local and not _writable(Path(store.root)):
        raise SystemExit(f"error: --out {where}: cannot write there (permission denied or a read-only file system)")
    ray_info = connect_ray(args.address, args.workers)
    claim(store, BUILD_COMMAND, BUILD_OUTPUTS, signature="dataset.json")  # the first write: the folder's marker
    rows = scan_assets(cfg)
    for kind in ("foreground", "background"):
        if not usable(rows, kind, "train"):
            raise SystemExit(f"no usable {kind} assets for training among {len(rows)} scanned "
                             f"({sum(not a.ok for a in rows)} skipped); see the reasons with --assets ... and "
                             f"datagen.assets.scan")
    sample = sample_assets(asset_sources(cfg), rows)
    checked = check_cluster(sample)  # every node that may run a shard reads a sample of every asset folder
    print(f"assets: {len(rows)} scanned; a sample read on each of the {checked} nodes with CPUs, hashes checked",
          flush=True)
    # the assets decide the bytes as much as the config: a resumed build must see the same ones
    listing = json.dumps(sorted((a.id, a.kind, a.split, a.ok) for a in rows))
    assets_hash = hashlib.sha256(listing.encode()).hexdigest()[:16]
    if not args.overwrite and old_meta.get("assets_hash", assets_hash) != assets_hash:
        raise SystemExit(f"{where}: was built from other assets (hash {old_meta['assets_hash']} vs {assets_hash}); "
                         f"use another --out or --overwrite")
    if args.overwrite and old_meta:
        removed = remove_dataset(store)
        print(f"--overwrite: removed {len(removed)} files of the previous build from {where}", flush=True)
        old_meta = {}
    store.clean_partial()  # half-written files of an interrupted run
    for problem in check_complete_shards(store):  # a shard damaged on disk is rebuilt, not trusted
        print(f"rebuilding: {problem}", flush=True)
    store.write_table(checked_table([dataclasses.asdict(a) for a in rows], assets_schema(), "assets.parquet"),
                      "assets.parquet")
    started = {"config": config.to_dict(cfg), "config_hash": cfg.digest(), "assets_hash": assets_hash,
               "max_K": MAX_K, "complete": False}
    store.write_text("dataset.json", json_dumps(started))
    complete = set(store.names(SHARD_MANIFESTS))
    todo = [s for s in plan(cfg) if f"{s[0]}-{s[1]:06d}.parquet" not in complete]
    has_val = bool(usable(rows, "foreground", "val")) and bool(usable(rows, "background", "val"))
    skipped_val = [s for s in todo if s[0] == "val" and not has_val]
    todo = [s for s in todo if s not in skipped_val]
    task = ray.remote(max_retries=3, retry_exceptions=False)(build_shard)
    rows_ref = ray.put(rows)
    pending = [task.remote(cfg, rows_ref, split, shard, idx, store.location, sample) for split, shard, idx in todo]
    results, t0 = [], time.perf_counter()
    total = sum(len(s[2]) for s in todo)
    size, size_at = cluster_size(), time.monotonic()
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=10.0)
        try:
            results += ray.get(done)
        except ray.exceptions.RayTaskError as e:  # a node that cannot read the assets stops the build: one line
            if isinstance(e.cause, AssetUnavailable):
                raise SystemExit(f"\nerror: {e.cause}") from None
            raise
        if time.monotonic() - size_at > 5.0:  # the cluster may grow (autoscaler) or lose nodes
            size, size_at = cluster_size(), time.monotonic()
        n = sum(r["samples"] for r in results)
        rate = n / max(time.perf_counter() - t0, 1e-9)
        print(f"\r{len(results)}/{len(todo)} shards, {n}/{total} samples, {rate:.2f} samples/s, "
              f"ETA {(total - n) / rate if rate else 0:.0f} s | {size}", end="", flush=True)
    print()
    tables = [store.read_table(name) for name in store.names(SHARD_MANIFESTS)]
    merged = pa.concat_tables(tables) if tables else None
    if merged is None or merged.num_rows == 0:
        failed = [f for r in results for f in r["failures"]][:5]
        raise SystemExit(f"{where}: the build produced no samples (first failures: {failed}); dataset.json stays "
                         f"complete: false")
    store.write_table(merged.replace_schema_metadata(None), "samples.parquet")
    write_wids_indexes(store)
    skipped_assets = [{"uri": a.uri, "reason": a.reason} for a in rows if not a.ok]
    summary = {"config": config.to_dict(cfg), "config_hash": cfg.digest(), "assets_hash": assets_hash,
               "max_K": MAX_K, "complete": True,
               "samples": merged.num_rows,
               "shards": store.names("*.tar"), "skipped_assets": skipped_assets,
               "val_skipped": "no validation assets" if skipped_val else "",
               "versions": _versions()}
    store.write_text("dataset.json", json_dumps(summary))
    counts = {split: merged.filter(pc.equal(merged["split"], split)).num_rows for split in ("train", "val")}
    store.write_text("README.md", dataset_card(summary, {k: v for k, v in counts.items() if v}, rows, cfg.license))
    # timings: the one output that is not deterministic
    log = json.loads(store.read_text("build_log.json")) if store.exists("build_log.json") else []
    started_at = time.gmtime(time.time() - (time.perf_counter() - t0))
    log.append({"ray": ray_info, "started": time.strftime("%Y-%m-%dT%H:%M:%S", started_at),
                "seconds": time.perf_counter() - t0, "shards": results})
    store.write_text("build_log.json", json_dumps(log, sort_keys=False))
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


# files a build writes, by name (manifests.outdir patterns): --overwrite removes these and nothing else
BUILD_COMMAND = "datagen.build"
BUILD_OUTPUTS = ("dataset.json", "assets.parquet", "samples.parquet", "build_log.json", "preview.png", "report.html",
                 "README.md", "train.wids.json", "val.wids.json",
                 "train-[0-9][0-9][0-9][0-9][0-9][0-9].tar", "val-[0-9][0-9][0-9][0-9][0-9][0-9].tar",
                 "train-[0-9][0-9][0-9][0-9][0-9][0-9].parquet", "val-[0-9][0-9][0-9][0-9][0-9][0-9].parquet")


def _read_meta(store) -> dict:
    """The folder's dataset.json ({} when there is none); a damaged one is an error naming it."""
    if not store.exists("dataset.json"):
        return {}
    try:
        meta = json.loads(store.read_text("dataset.json"))
    except (ValueError, UnicodeDecodeError) as e:
        raise SystemExit(f"{store.display()}/dataset.json: not a readable dataset description ({e}); move the "
                         f"folder aside or choose another --out") from None
    if not isinstance(meta, dict) or "config_hash" not in meta:
        raise SystemExit(f"{store.display()}/dataset.json: not written by a bokehgen build (no config_hash)")
    return meta


def remove_dataset(store) -> list[str]:
    """Delete the files of a build (after :func:`manifests.outdir.foreign_files` found nothing else); dataset.json
    goes last, so an interrupted removal still leaves a folder that --overwrite accepts. The marker stays."""
    names = sorted((n for n, is_dir in store.entries() if not is_dir and n != MARKER and is_output(n, BUILD_OUTPUTS)),
                   key=lambda n: n == "dataset.json")
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
        shardlist = [{"url": m.removesuffix(".parquet") + ".tar", "nsamples": store.read_metadata(m).num_rows}
                     for m in manifests]
        index = {"__kind__": "wids-shard-index-v1", "wids_version": 1, "name": split, "shardlist": shardlist}
        store.write_text(f"{split}.wids.json", json.dumps(index, indent=1))
        written.append(f"{split}.wids.json")
    return written


def preview(store, count: int = 4) -> bytes | None:
    """Contact sheet (PNG bytes) of the first ``count`` samples of the first training shard."""
    from webdataset.tariterators import group_by_keys, tar_file_expander

    from common.images import decode_png
    from datagen.preview import contact_sheet_png
    from datagen.shards import decode_disp

    if not store.exists("train-000000.tar"):
        return None
    samples = []
    with store.open_input("train-000000.tar") as f:
        for s in group_by_keys(tar_file_expander([{"stream": f, "url": "train-000000.tar"}])):
            png = {k: _to8(decode_png(s[f"{k}.png"], f"train-000000.tar: {k}.png")) for k in ("aif", "bokeh", "lq")}
            samples.append({**png, "disp": decode_disp(s["disp.npy"]), "json": json.loads(s["json"])})
            if len(samples) == count:
                break
    return contact_sheet_png(samples)


def _to8(rgb):
    import numpy as np

    return rgb if rgb.dtype == np.uint8 else (rgb.astype(np.float64) / 257.0).round().astype(np.uint8)


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
    from common.cli import run

    run(main, parse_args())


if __name__ == "__main__":
    cli()
