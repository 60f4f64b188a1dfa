"""The topology of datagen/cluster.yaml on one machine: a head node without CPUs and a worker node that shares
nothing with it but the output folder. The worker is started in its own mount namespace (``unshare -m``) where a
tmpfs hides the head's demo-asset cache and a local asset folder; the build script is copied alone and run with
plain ``python``, as ``ray submit`` does."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARGS = [
    "--size",
    "96",
    "--num-samples",
    "4",
    "--samples-per-shard",
    "1",
    "--set",
    "min_asset_size=96",
    "--set",
    "val_samples=0",
]

pytestmark = pytest.mark.slow


def _unshare_allowed() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nodes(env, address):
    code = (
        "import json, ray; ray.init(address=%r); print(json.dumps([[n['NodeID'], n['Resources'].get('CPU', 0)] "
        "for n in ray.nodes() if n['Alive']]))" % address
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else []


@pytest.fixture(scope="module")
def split_cluster(tmp_path_factory):
    if not _unshare_allowed():
        pytest.skip(
            "unshare -m is not permitted here (needs root or user namespaces): the worker node cannot be "
            "given its own mounts"
        )
    root = tmp_path_factory.mktemp("split")
    hidden = root / "head_only"  # what only the head sees: its demo cache and a local asset folder
    (hidden / "cache").mkdir(parents=True)
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONUNBUFFERED": "1",
        "BOKEHGEN_CACHE": str(hidden / "cache"),
    }
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    store = ["--object-store-memory", str(200 * 2**20)]
    subprocess.run(
        [
            "ray",
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=0",
            "--include-dashboard=false",
            "--disable-usage-stats",
            *store,
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    address = f"127.0.0.1:{port}"
    log = open(root / "worker.log", "wb")
    # the worker node: same BOKEHGEN_CACHE path, but in its mount namespace that path is an empty tmpfs
    start = f"mount -t tmpfs tmpfs '{hidden}' && exec ray start --address={address} --num-cpus=2 --block " + " ".join(
        store
    )
    worker = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", start], env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        for _ in range(90):
            if len(_nodes(env, address)) == 2:
                break
            time.sleep(1)
        else:
            pytest.fail(f"the worker node did not join: {(root / 'worker.log').read_text()[-2000:]}")
        yield {"env": env, "address": address, "hidden": hidden, "root": root}
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
        log.close()


def _submit(cluster, tmp_path, *args):
    """build.py copied alone into a fresh folder and run there with plain python, without RAY_ADDRESS."""
    home = tmp_path / "submit_home"
    home.mkdir(exist_ok=True)
    script = home / "build.py"
    shutil.copy(REPO / "datagen" / "build.py", script)
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=home, env=cluster["env"], capture_output=True, text=True, timeout=600
    )


def test_the_default_demo_build_runs_on_a_worker_that_cannot_see_the_heads_cache(split_cluster, tmp_path):
    out = tmp_path / "ds"
    res = _submit(split_cluster, tmp_path, "--out", str(out), *ARGS)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stdout.startswith("Ray: joined the cluster at") and "2 nodes, 2 CPUs" in res.stdout.splitlines()[0]
    cpu_nodes = {node for node, cpus in _nodes(split_cluster["env"], split_cluster["address"]) if cpus > 0}
    shards = json.loads((out / "build_log.json").read_text())[-1]["shards"]
    assert len(shards) == 4 and {s["node"] for s in shards} == cpu_nodes  # every shard on the worker
    assert "a sample read on each of the 1 nodes with CPUs" in res.stdout
    # the head's own copy was not what the worker read: its cache holds the demo assets, the worker's did not
    assert (split_cluster["hidden"] / "cache" / "demo_assets" / "DONE").is_file()
    rows = __import__("pyarrow.parquet", fromlist=["read_table"]).read_table(out / "assets.parquet").to_pylist()
    assert rows and all(r["uri"].startswith("demo://") for r in rows)


def test_a_local_folder_only_the_head_sees_is_refused_before_any_shard(split_cluster, tmp_path):
    from datagen.demo_assets import make_demo_assets

    local = split_cluster["hidden"] / "my_fg"
    shutil.copytree(make_demo_assets(tmp_path / "demo") / "fg", local)
    out = tmp_path / "ds"
    res = _submit(
        split_cluster,
        tmp_path,
        "--out",
        str(out),
        "--assets",
        f"generic:{local}",
        f"backgrounds:{tmp_path / 'demo' / 'bg'}",
        *ARGS,
    )
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("error: node ")
        and f"cannot read {local}: put the assets on storage every node mounts, or pass a URI" in last
    ), res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert not list(out.glob("train-*")) and not (out / "dataset.json").exists()


@pytest.fixture(scope="module")
def s3_assets(tmp_path_factory):
    """The demo assets uploaded to a local S3 (moto's server); yields (URI builder, pyarrow filesystem)."""
    from conftest import moto_s3

    from datagen.demo_assets import make_demo_assets

    demo = make_demo_assets(tmp_path_factory.mktemp("demo_src"))
    with moto_s3("assets") as (uri, fs):
        for sub in ("fg", "bg"):
            for p in sorted((demo / sub).iterdir()):
                with fs.open_output_stream(f"assets/{sub}/{p.name}") as f:
                    f.write(p.read_bytes())
        yield uri, fs


def test_assets_on_s3_are_read_by_every_node_and_a_changed_copy_is_caught(split_cluster, s3_assets, tmp_path):
    uri, fs = s3_assets
    out = tmp_path / "ds"
    res = _submit(
        split_cluster,
        tmp_path,
        "--out",
        str(out),
        "--assets",
        f"generic:{uri('fg')}",
        f"backgrounds:{uri('bg')}",
        *ARGS,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    import pyarrow.parquet as pq

    from datagen.assets import Asset, load_asset
    from datagen.sources import AssetUnavailable

    rows = [Asset(**r) for r in pq.read_table(out / "assets.parquet").to_pylist()]
    assert rows and all(r.uri.startswith("s3://testing:testing@assets/") for r in rows)
    assert json.loads((out / "dataset.json").read_text())["samples"] == 4
    # another copy served under the same name: the read a shard task makes refuses it, naming the file
    fg = next(r for r in rows if r.ok and r.kind == "foreground")
    load_asset(fg)
    key = fg.uri.split("@", 1)[1].split("?", 1)[0]
    with fs.open_output_stream(key) as f:
        f.write(b"\x89PNG changed" + b"\0" * 100)
    with pytest.raises(
        AssetUnavailable,
        match=r"not the file the scan read .* it changed during the build, or "
        r"this node holds another copy",
    ):
        load_asset(fg)
