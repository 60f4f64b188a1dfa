"""Build a bokeh dataset on Ray: WebDataset shards of (all-in-focus, bokeh, LQ, disparity, json) with manifests.

    python datagen/build.py                       # demo dataset from the bundled assets, local Ray
    python datagen/build.py --config FILE --out DIR [--set key=value ...] [--address auto]

One Ray task per shard. A shard is written atomically and its manifest (``train-000000.parquet``) after it marks it
complete: a rerun skips complete shards and redoes the others; ``--overwrite`` starts over; a different config in the
same output directory is refused (its hash is in ``dataset.json``). Every sample's randomness comes from
(seed, sample index) only, so the bytes do not depend on the number of workers or the order of completion.
This file is the entry point ``ray submit`` copies to the head node: its steps are named functions, and the
work is in the installed ``datagen`` package (config.py, distributor.py, preflight.py, sources.py, shards.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path

from common import config
from common.errors import UserError
from common.jsonfile import dumps as json_dumps
from datagen.config import BuildConfig, parse_size
from datagen.distributor import cluster_size, connect_ray, node_id, pin_threads
from datagen.folder import (
    BUILD_COMMAND,
    BUILD_OUTPUTS,
    check_complete_shards,
    preview,
    read_meta,
    remove_dataset,
    versions,
    write_wids_indexes,
)
from datagen.preflight import check_cluster, check_this_node, sample_assets
from datagen.sources import AssetUnavailable
from manifests.lock import writer_lock
from manifests.outdir import OutputFolderError, check_not_input, claim, foreign_files


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
    return scan(sources, min_size=min(cfg.min_asset_size, *cfg.frame), val_fraction=cfg.val_fraction, progress=progress)


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


# A shard task's memory (measured: benchmarks/bench_datagen.py --sizes ... --k-min -1, the worst case of K at the
# top of its range): the worker process itself (~1 GiB: Python, numba, torch, cv2), and per sample the renderer's
# layers padded by the largest blur radius, ~145 B per layer per padded pixel (float64 texture, disparity, summed-area
# tables); a clip holds its frames' members besides (~40 B per pixel per frame). Declared with a 25 % margin.
TASK_BASE_BYTES = 1 << 30
LAYER_PADDED_PX_BYTES = 145
FRAME_PX_BYTES = 40


def task_memory(cfg: BuildConfig) -> int:
    """Bytes one shard task may hold at its peak, which its Ray task declares (``memory=``), so that a node never
    runs more tasks than its memory holds (the build's K top sets the padding: ``cfg.max_k()``)."""
    W, H = cfg.frame
    pad = 2 * (math.ceil(cfg.max_k()) + 2)
    layers = cfg.scene.num_foregrounds + 1
    per_sample = LAYER_PADDED_PX_BYTES * layers * (W + pad) * (H + pad)
    per_sample += FRAME_PX_BYTES * W * H * max(cfg.sequence.frames, 1)
    return int(TASK_BASE_BYTES + 1.25 * per_sample)


def build_shard(
    cfg: BuildConfig, rows: list, split: str, shard: int, indices: list[int], out: str, sample: list | None = None
) -> dict:
    """Render, degrade and write one shard and its manifest; returns counts and timings. ``sample``: the assets
    the pre-flight check reads (datagen.preflight), read again here on a node that has not yet checked them. A
    node that cannot read an asset raises AssetUnavailable (the build stops), not a failed sample."""
    import pyarrow as pa

    from datagen.assets import usable
    from datagen.camera import camera_columns, draw_camera
    from datagen.recipe import recipe_for
    from datagen.scenes import draw_scene
    from datagen.shards import member_columns, write_shard
    from manifests import Store
    from renderer import Highlights

    t0, started = time.perf_counter(), time.time()
    pin_threads()
    if sample:
        check_this_node(sample)
    fgs, bgs = usable(rows, "foreground", split), usable(rows, "background", split)
    by_id = {a.id: a for a in rows}
    deg = cfg.degradation_config()
    boost = Highlights(cfg.highlights.threshold, cfg.highlights.gain)
    recipe = recipe_for(cfg)
    written, records, failures = [], [], []
    for index in indices:
        key = f"{shard:06d}_{index:06d}"
        try:
            spec = draw_scene(cfg.seed, index, fgs, bgs, cfg.scene, size=cfg.frame, highlights_prob=cfg.highlights.prob)
            camera = draw_camera(spec, cfg.camera) if cfg.camera.enabled else None
            sample = recipe.make(spec, by_id, deg, boost, camera)
            members = recipe.encode(sample)
            focus = recipe.focus(sample)
        except AssetUnavailable:
            raise  # this node's storage, not this sample
        except Exception as e:  # one bad sample is recorded, not fatal (unless too many)
            failures.append({"key": key, "reason": f"{type(e).__name__}: {e}"})
            continue
        written.append((key, members))
        records.append(
            {
                "key": key,
                "shard": f"{split}-{shard:06d}.tar",
                "split": split,
                **spec.columns(),
                "focus_target_used": focus["target"],
                "focus_x": focus["xy"][0],
                "focus_y": focus["xy"][1],
                "focus_disparity": focus["disparity"],
                **(camera_columns(sample["json"]["camera"]) if camera is not None else {}),
                **recipe.columns(sample),
                **{f"deg_{k}": v for k, v in sample["json"]["degradation"].items()},
                **member_columns(members, recipe.members()),
            }
        )
    if len(failures) > cfg.max_failure_rate * len(indices):
        raise RuntimeError(f"{split}-{shard:06d}: {len(failures)} of {len(indices)} samples failed: {failures[:3]}")
    name = f"{split}-{shard:06d}"
    store = Store(out)
    size, sha256 = write_shard(store, f"{name}.tar", written)
    table = pa.Table.from_pylist(records, schema=recipe.schema())
    table = table.replace_schema_metadata(
        {"failures": json_dumps(failures, indent=None), "shard_bytes": str(size), "shard_sha256": sha256}
    )
    store.write_table(table, f"{name}.parquet")
    return {
        "shard": name,
        "samples": len(written),
        "failures": failures,
        "seconds": time.perf_counter() - t0,
        "started": started,
        "ended": time.time(),
        "node": node_id(),
        "pid": os.getpid(),
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="YAML BuildConfig")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (repeatable)",
    )
    p.add_argument(
        "--out",
        default="bokeh_dataset",
        help="output folder: a path (shared by all nodes on a cluster) or a pyarrow.fs URI (s3://, gs://, ...)",
    )
    p.add_argument(
        "--assets",
        action="extend",
        nargs="+",
        metavar="LAYOUT:PATH",
        help="asset folders (several, or the flag repeated), LAYOUT one of photomatte85, aim500, rwp636, "
        "am2k, p3m10k, pairs, generic, backgrounds; PATH a folder every node mounts at that path, or "
        "a pyarrow.fs URI (s3://bucket/fg, gs://..., hdfs://...)",
    )
    p.add_argument("--num-samples", type=int, help="training samples (config num_samples)")
    p.add_argument("--samples-per-shard", type=int, help="samples per shard (config samples_per_shard)")
    p.add_argument("--seed", type=int, help="run seed (config seed)")
    p.add_argument(
        "--size",
        type=_size_arg,
        help="output size in pixels: 512 (a square) or WxH (1536x1024), each side a multiple of 4 (config size)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="CPUs of a private local Ray instance (default: all); refused when joining a cluster, whose "
        "size the cluster decides",
    )
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster to run on: HEAD:6379, 'auto', or 'local' for a private instance on this machine. "
        "Default: RAY_ADDRESS, else the cluster this machine is part of (as `ray start` / `ray up` "
        "record it in Ray's temp dir, RAY_TMPDIR honoured), else a private local instance",
    )
    p.add_argument("--overwrite", action="store_true", help="delete what the output folder holds and start over")
    p.add_argument(
        "--task-memory",
        type=float,
        default=None,
        metavar="GIB",
        help="memory each shard task declares to Ray, GiB (default: estimated from the size and K, "
        "datagen.build.task_memory); a node runs only as many tasks as its memory holds",
    )
    return p.parse_args(argv)


def _size_arg(text: str):
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--size: ")) from None


def main(args: argparse.Namespace) -> dict:
    """The build, step by step: every check before anything is written or Ray starts, then Ray, the assets
    (scanned, and read on every node), the shards, and the folder's summary files."""
    cfg = load_config(args)
    try:
        lock = writer_lock(args.out, BUILD_COMMAND)  # one writer: held from before the first look at the folder
        lock.acquire()
    except OutputFolderError as e:
        raise SystemExit(f"error: {e}") from None
    try:
        store, old_meta = check_output(args, cfg)
        ray_info = connect_ray(args.address, args.workers)
        claim(store, BUILD_COMMAND, BUILD_OUTPUTS, signature="dataset.json")  # the first write: the folder's marker
        rows, sample, assets_hash = scan_and_check_assets(cfg, store, old_meta, args.overwrite)
        prepare_folder(store, cfg, rows, assets_hash, args.overwrite and bool(old_meta))
        todo, skipped_val = shards_to_build(cfg, store, rows)
        t0 = time.perf_counter()
        memory = int(args.task_memory * 2**30) if args.task_memory else None
        results = run_shards(cfg, rows, todo, store, sample, memory)
        return finish(store, cfg, rows, assets_hash, results, skipped_val, ray_info, t0)
    finally:
        lock.release()


def load_config(args: argparse.Namespace) -> BuildConfig:
    """The config file with --set overrides and the command line's own flags over it, every value checked."""
    flags = {
        "assets": args.assets,
        "num_samples": args.num_samples,
        "samples_per_shard": args.samples_per_shard,
        "seed": args.seed,
        "size": args.size,
    }
    try:
        return BuildConfig.load(
            args.config, args.overrides + [f"{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
        )
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None


def check_output(args: argparse.Namespace, cfg: BuildConfig):
    """(Store, its dataset.json or {}) once the folder is found to be the build's to write (manifests.outdir), the
    asset folders exist, the config matches a build already there and the folder can be written. Writes nothing."""
    from manifests import Store

    store = Store(args.out)
    where = store.display()
    try:
        check_not_input(args.out, [p.split(":", 1)[1] for p in cfg.assets], "--out")
        claim(store, BUILD_COMMAND, BUILD_OUTPUTS, create=False, signature="dataset.json")
    except OutputFolderError as e:
        raise SystemExit(f"error: {e}") from None
    check_asset_folders(cfg)
    old_meta = read_meta(store)
    if old_meta and not args.overwrite and old_meta.get("config_hash") != cfg.digest():
        raise SystemExit(
            f"{where}: holds a dataset of another config (hash {old_meta.get('config_hash')} vs "
            f"{cfg.digest()}); use another --out or --overwrite"
        )
    if args.overwrite:
        foreign = foreign_files(store, BUILD_OUTPUTS)
        if foreign:
            raise SystemExit(
                f"--overwrite {where}: refused, the folder holds files a bokehgen build did not write: "
                f"{', '.join(foreign[:10])}{' ...' if len(foreign) > 10 else ''}; --overwrite only "
                f"replaces what a build wrote"
            )
    if store.local and not _writable(Path(store.root)):
        raise SystemExit(f"error: --out {where}: cannot write there (permission denied or a read-only file system)")
    return store, old_meta


def scan_and_check_assets(cfg: BuildConfig, store, old_meta: dict, overwrite: bool):
    """(asset rows, the sample every node reads, the asset-listing hash): the scan, usable assets of both kinds,
    the pre-flight read on every node with CPUs (datagen.preflight), and the same assets as a build already
    in the folder (unless --overwrite)."""
    from datagen.assets import usable

    rows = scan_assets(cfg)
    for kind in ("foreground", "background"):
        if not usable(rows, kind, "train"):
            raise SystemExit(
                f"no usable {kind} assets for training among {len(rows)} scanned "
                f"({sum(not a.ok for a in rows)} skipped); see the reasons with --assets ... and "
                f"datagen.assets.scan"
            )
    sample = sample_assets(asset_sources(cfg), rows)
    checked = check_cluster(sample)
    print(
        f"assets: {len(rows)} scanned; a sample read on each of the {checked} nodes with CPUs, hashes checked",
        flush=True,
    )
    # the assets decide the bytes as much as the config: a resumed build must see the same ones
    listing = json.dumps(sorted((a.id, a.kind, a.split, a.ok) for a in rows))
    assets_hash = hashlib.sha256(listing.encode()).hexdigest()[:16]
    if not overwrite and old_meta.get("assets_hash", assets_hash) != assets_hash:
        raise SystemExit(
            f"{store.display()}: was built from other assets (hash {old_meta['assets_hash']} vs "
            f"{assets_hash}); use another --out or --overwrite"
        )
    return rows, sample, assets_hash


def prepare_folder(store, cfg: BuildConfig, rows: list, assets_hash: str, start_over: bool) -> None:
    """--overwrite's removal, an interrupted run's partial files and damaged shards cleared, assets.parquet and
    dataset.json (complete: false) written."""
    from manifests import assets_schema, checked_table

    if start_over:
        removed = remove_dataset(store)
        print(f"--overwrite: removed {len(removed)} files of the previous build from {store.display()}", flush=True)
    store.clean_partial()  # half-written files of an interrupted run
    for problem in check_complete_shards(store):  # a shard damaged on disk is rebuilt, not trusted
        print(f"rebuilding: {problem}", flush=True)
    store.write_table(
        checked_table([dataclasses.asdict(a) for a in rows], assets_schema(), "assets.parquet"), "assets.parquet"
    )
    started = {
        "config": config.to_dict(cfg),
        "config_hash": cfg.digest(),
        "assets_hash": assets_hash,
        "max_K": cfg.max_k(),
        "complete": False,
    }
    store.write_text("dataset.json", json_dumps(started))


def shards_to_build(cfg: BuildConfig, store, rows: list):
    """(shards not yet complete, validation shards skipped for want of validation assets)."""
    from datagen.assets import usable
    from manifests import SHARD_MANIFESTS

    complete = set(store.names(SHARD_MANIFESTS))
    todo = [s for s in plan(cfg) if f"{s[0]}-{s[1]:06d}.parquet" not in complete]
    has_val = bool(usable(rows, "foreground", "val")) and bool(usable(rows, "background", "val"))
    skipped_val = [s for s in todo if s[0] == "val" and not has_val]
    return [s for s in todo if s not in skipped_val], skipped_val


def run_shards(cfg: BuildConfig, rows: list, todo: list, store, sample, memory: int | None = None) -> list[dict]:
    """One Ray task per shard, each declaring ``memory`` bytes (default :func:`task_memory`), with a progress line
    (shards, samples, rate, ETA, the cluster's size); a node that cannot read the assets stops the build with one
    line, and so does a cluster none of whose nodes has the memory one task declares."""
    import ray

    memory = memory or task_memory(cfg)
    check_memory(memory, cfg)
    task = ray.remote(max_retries=3, retry_exceptions=False, memory=memory)(build_shard)
    rows_ref = ray.put(rows)
    pending = [task.remote(cfg, rows_ref, split, shard, idx, store.location, sample) for split, shard, idx in todo]
    results, t0 = [], time.perf_counter()
    total = sum(len(s[2]) for s in todo)
    size, size_at = cluster_size(), time.monotonic()
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=10.0)
        try:
            results += ray.get(done)
        except BaseException as e:  # the build has failed (or was interrupted): the other shards are dropped
            _drop(pending)
            if isinstance(e, ray.exceptions.RayTaskError) and isinstance(e.cause, AssetUnavailable):
                raise SystemExit(f"\nerror: {e.cause}") from None
            raise
        if time.monotonic() - size_at > 5.0:  # the cluster may grow (autoscaler) or lose nodes
            size, size_at = cluster_size(), time.monotonic()
        n = sum(r["samples"] for r in results)
        rate = n / max(time.perf_counter() - t0, 1e-9)
        print(
            f"\r{len(results)}/{len(todo)} shards, {n}/{total} samples, {rate:.2f} samples/s, "
            f"ETA {(total - n) / rate if rate else 0:.0f} s | {size}",
            end="",
            flush=True,
        )
    print()
    return results


def check_memory(memory: int, cfg: BuildConfig) -> None:
    """A UserError when no live node offers ``memory`` bytes to Ray's tasks (the build would wait forever)."""
    import ray

    offered = [n.get("Resources", {}).get("memory", 0) for n in ray.nodes() if n.get("Alive")]
    if offered and max(offered) < memory:
        raise UserError(
            f"a shard task at size {cfg.size_text} with K up to {cfg.max_k():g} declares {memory / 2**30:.1f} GiB "
            f"(datagen.build.task_memory), more than any node offers Ray's tasks (the largest: "
            f"{max(offered) / 2**30:.1f} GiB): use nodes with more memory, a smaller size or K, or --task-memory GIB "
            f"to declare less at your own risk"
        )


def _drop(pending: list) -> None:
    """Once the build has failed, its one-line error is the last word: the shards still running are cancelled,
    and the errors they raise on the way out are neither waited for nor printed (Ray prints an object's error
    as "Unhandled error" with its stack when nobody got it)."""
    import ray

    os.environ["RAY_IGNORE_UNHANDLED_ERRORS"] = "1"  # read by Ray's handler each time it reports one
    for ref in pending:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 - already finished, or the cluster is going away
            pass


def finish(
    store, cfg: BuildConfig, rows: list, assets_hash: str, results: list, skipped_val: list, ray_info: dict, t0: float
) -> dict:
    """samples.parquet, the wids indexes, dataset.json (complete: true), the dataset card, build_log.json, the
    preview and the report; returns the summary."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from datagen.card import dataset_card
    from datagen.report import write_report
    from manifests import SHARD_MANIFESTS

    where = store.display()
    tables = [store.read_table(name) for name in store.names(SHARD_MANIFESTS)]
    merged = pa.concat_tables(tables) if tables else None
    if merged is None or merged.num_rows == 0:
        failed = [f for r in results for f in r["failures"]][:5]
        raise SystemExit(
            f"{where}: the build produced no samples (first failures: {failed}); dataset.json stays complete: false"
        )
    store.write_table(merged.replace_schema_metadata(None), "samples.parquet")
    write_wids_indexes(store)
    skipped_assets = [{"uri": a.uri, "reason": a.reason} for a in rows if not a.ok]
    summary = {
        "config": config.to_dict(cfg),
        "config_hash": cfg.digest(),
        "assets_hash": assets_hash,
        "max_K": cfg.max_k(),
        "complete": True,
        "samples": merged.num_rows,
        "shards": store.names("*.tar"),
        "skipped_assets": skipped_assets,
        "val_skipped": "no validation assets" if skipped_val else "",
        "versions": versions(),
    }
    store.write_text("dataset.json", json_dumps(summary))
    counts = {split: merged.filter(pc.equal(merged["split"], split)).num_rows for split in ("train", "val")}
    store.write_text("README.md", dataset_card(summary, {k: v for k, v in counts.items() if v}, rows, cfg.license))
    # timings: the one output that is not deterministic
    log = json.loads(store.read_text("build_log.json")) if store.exists("build_log.json") else []
    started_at = time.gmtime(time.time() - (time.perf_counter() - t0))
    log.append(
        {
            "ray": ray_info,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", started_at),
            "seconds": time.perf_counter() - t0,
            "shards": results,
        }
    )
    store.write_text("build_log.json", json_dumps(log, sort_keys=False))
    sheet = preview(store, max_k=cfg.max_k())
    if sheet:
        store.write_bytes("preview.png", sheet)
    write_report(store, sheet)
    print(f"wrote {summary['samples']} samples in {len(summary['shards'])} shards to {where}")
    if sheet:
        last = len(summary["shards"]) - 1
        from datagen.recipe import recipe_for

        recipe = recipe_for(cfg)
        print(
            f"look at them: {where}/preview.png ({recipe.preview_rows}) and {where}/report.html; read them with "
            f"webdataset.WebDataset('{where}/train-{{000000..{last:06d}}}.tar'){recipe.reader}"
        )
    return summary


def cli() -> None:
    from common.cli import run

    run(main, parse_args())


if __name__ == "__main__":
    cli()
