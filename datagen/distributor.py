"""Where a build runs: Ray discovery and connection (a private instance, or the cluster this machine is part of),
the cluster's size for the progress line, and the threads a shard task may use. Like img2dataset's
distributor.py, apart from the per-shard work (datagen/build.py's build_shard)."""

from __future__ import annotations

import os
from pathlib import Path

from common.errors import UserError


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
            print(
                f"Ray: {source.split('from ')[-1]} names {found}, but nothing answers there (a stopped "
                f"cluster?); starting a private instance",
                flush=True,
            )
            found, source = None, ""
        else:
            raise UserError(
                f"cannot reach the Ray cluster at {found} ({source}): nothing answers on that port; "
                f"start it (ray start / ray up), or pass --address local for a private instance"
            )
    if found is None:
        if workers is not None and workers < 1:
            raise UserError(f"--workers: at least 1, got {workers}")
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
        _record_private_instance()
        print(
            f"Ray: private local instance, {cluster_size()} (no running cluster found; --address HEAD:6379 or "
            f"RAY_ADDRESS joins one)",
            flush=True,
        )
        return {"mode": "local", "address": ray.get_runtime_context().gcs_address}
    if workers is not None:
        raise UserError(
            f"--workers {workers}: only sizes a private local instance, but this build joins the Ray "
            f"cluster at {found} ({source}), whose nodes decide the CPUs; drop --workers, or pass "
            f"--address local for a private instance"
        )
    try:
        ray.init(address=found, include_dashboard=False, log_to_driver=False)
    except ConnectionError as e:
        raise UserError(
            f"cannot reach the Ray cluster at {found} ({source}): {e}; start it (ray start / ray up), "
            f"or pass --address local for a private instance"
        ) from None
    gcs = ray.get_runtime_context().gcs_address
    print(f"Ray: joined the cluster at {gcs} ({source}): {cluster_size()}", flush=True)
    return {"mode": "cluster", "address": gcs, "source": source}


def _record_private_instance() -> None:
    """A private instance's processes, recorded so that a killed driver's leftovers are stopped by the next run
    (common.leftovers); the record goes when Ray shuts down (atexit runs after Ray's own)."""
    import atexit

    import ray

    from common import leftovers

    try:
        session = ray._private.worker._global_node.get_session_dir_path()  # information only
    except Exception:  # noqa: BLE001 - a private attribute that may move
        session = None
    leftovers.record_private_ray(session)
    atexit.register(leftovers.forget_private_ray)


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


def node_id() -> str | None:
    """The Ray node this runs on (recorded per shard in build_log.json), None outside Ray."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:
        return None


def pin_threads() -> None:
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
