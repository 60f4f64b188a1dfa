"""datagen/build.py on a real multi-node Ray cluster on this machine (``ray start --head`` plus worker nodes started
with ``ray start --address``): the script run as ``ray submit`` runs it, a worker node killed mid-build, and
``ray job submit``. Every Ray process here is a
subprocess; the test process never joins this cluster."""

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
BUILD = REPO / "datagen" / "build.py"
ARGS = [
    "--size",
    "96",
    "--num-samples",
    "8",
    "--samples-per-shard",
    "1",
    "--set",
    "min_asset_size=96",
    "--set",
    "val_samples=0",
]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bytes(folder):
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.glob("*"))
        if p.suffix in (".tar", ".parquet") and p.name != "assets.parquet"
    }


def _start_worker_node(cluster, log) -> subprocess.Popen:
    """``ray start --address`` with 2 CPUs in its own process group (so it can be killed as a node); returns once the
    cluster counts it."""
    alive = len(cluster["workers"]) - sum(w.poll() is not None for w in cluster["workers"]) + 1  # head + live workers
    worker = subprocess.Popen(
        ["ray", "start", f"--address={cluster['address']}", "--num-cpus=2", "--block", *cluster["store"]],
        env=cluster["env"],
        start_new_session=True,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    cluster["workers"].append(worker)
    check = f"import ray; ray.init(address='{cluster['address']}'); print(len([n for n in ray.nodes() if n['Alive']]))"
    for _ in range(60):
        out = subprocess.run(
            [sys.executable, "-c", check], env=cluster["env"], capture_output=True, text=True, timeout=60
        )
        if out.stdout.strip() == str(alive + 1):
            return worker
        time.sleep(1)
    pytest.fail(f"the worker node did not join: {out.stderr[-2000:]}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node without CPUs (it runs the driver and, with its dashboard, the job API) and a worker node with
    2 CPUs in its own process group, all with one generated auth token (Ray >= 2.59 requires one for a cluster
    started with ``ray start``)."""
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONUNBUFFERED": "1",
    }
    port, dash = _free_port(), _free_port()
    store = ["--object-store-memory", str(200 * 2**20)]
    subprocess.run(
        [
            "ray",
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=0",
            "--include-dashboard=true",
            f"--dashboard-port={dash}",
            "--disable-usage-stats",
            *store,
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = open(tmp_path_factory.mktemp("ray") / "workers.log", "wb")
    cluster = {
        "address": f"127.0.0.1:{port}",
        "dashboard": f"http://127.0.0.1:{dash}",
        "env": env,
        "store": store,
        "workers": [],
        "log": log,
    }
    try:
        _start_worker_node(cluster, log)
        yield cluster
    finally:
        for worker in cluster["workers"]:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
        log.close()


def test_worker_node_killed_mid_build_gives_the_same_bytes(cluster, tmp_path):
    """The only worker node dies (SIGKILL: raylet, workers, `ray start`) with some shards done; a replacement node
    joins and the build finishes there, byte-identical to a clean local build."""
    out = tmp_path / "two_nodes"
    proc = subprocess.Popen(
        [sys.executable, str(BUILD), "--out", str(out), "--address", cluster["address"], *ARGS],
        env=cluster["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    t0 = time.time()
    while time.time() - t0 < 240 and len(list(out.glob("train-*.parquet"))) < 2 and proc.poll() is None:
        time.sleep(0.1)
    doomed = cluster["workers"][-1]
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    done_at_kill = len(list(out.glob("train-*.parquet")))
    assert 2 <= done_at_kill < 8, "the node must die mid-build"
    _start_worker_node(cluster, cluster["log"])
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log.decode()[-3000:]
    # shards came from both nodes: the killed one before, the replacement after (build_log.json records the node)
    nodes = {s["node"] for s in json.loads((out / "build_log.json").read_text())[0]["shards"]}
    assert len(nodes) == 2, nodes
    clean = tmp_path / "clean"
    assert (
        subprocess.run(
            [sys.executable, str(BUILD), "--out", str(clean), "--address", "local", "--workers", "1", *ARGS],
            capture_output=True,
            timeout=300,
        ).returncode
        == 0
    )
    assert _bytes(out) == _bytes(clean)


def test_ray_job_submit(cluster, tmp_path):
    out = tmp_path / "job"
    res = subprocess.run(
        [
            "ray",
            "job",
            "submit",
            "--address",
            cluster["dashboard"],
            "--",
            sys.executable,
            str(BUILD),
            "--out",
            str(out),
            *ARGS[:3],
            "2",
            *ARGS[4:],
        ],
        env=cluster["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "succeeded" in res.stdout and "wrote 2 samples" in res.stdout
    assert json.loads((out / "dataset.json").read_text())["complete"]


def _cluster_node_ids(cluster) -> set[str]:
    check = "import ray; ray.init(address='%s'); print(' '.join(n['NodeID'] for n in ray.nodes()))" % cluster["address"]
    out = subprocess.run([sys.executable, "-c", check], env=cluster["env"], capture_output=True, text=True, timeout=120)
    return set(out.stdout.split())


def test_script_run_as_ray_submit_runs_it_joins_the_cluster(cluster, tmp_path):
    """`ray submit cluster.yaml datagen/build.py -- ARGS` copies build.py alone to the head node and runs
    `python ~/build.py ARGS` there, with no RAY_ADDRESS: the build must find the cluster this machine is part of
    (Ray's address file, written by `ray start`) and run every shard on its nodes, not start a private Ray."""
    home = tmp_path / "head_home"
    home.mkdir()
    script = home / "build.py"
    shutil.copy(BUILD, script)
    env = {k: v for k, v in cluster["env"].items() if k != "RAY_ADDRESS"}
    out = tmp_path / "submitted"
    res = subprocess.run(
        [sys.executable, str(script), "--out", str(out), *ARGS[:3], "4", *ARGS[4:]],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    first = res.stdout.splitlines()[0]
    assert first.startswith("Ray: joined the cluster at") and "ray_current_cluster" in first, first
    assert "2 nodes, 2 CPUs" in first, first  # head without CPUs + the worker node
    ran_on = {s["node"] for s in json.loads((out / "build_log.json").read_text())[-1]["shards"]}
    assert len(json.loads((out / "build_log.json").read_text())[-1]["shards"]) == 4
    assert ran_on <= _cluster_node_ids(cluster) and ran_on, ran_on
    # sizing a private instance makes no sense on a cluster: refused before anything is written
    refused = tmp_path / "refused"
    res = subprocess.run(
        [sys.executable, str(script), "--out", str(refused), "--workers", "4", *ARGS],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode != 0 and "--workers 4: only sizes a private local instance" in res.stderr, res.stderr
    assert not refused.exists()
