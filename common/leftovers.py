"""What a killed run leaves behind, found and stopped by the next run of any command.

A build that starts a private Ray instance (``--address local``, or no cluster found) records that instance's
processes (pid and start time: gcs_server, raylet, the dashboard and runtime-env agents, the first workers) in
``<temp dir>/bokehgen-ray-<uid>/<driver pid>.json`` (``BOKEHGEN_RUN_DIR`` instead of the temp dir), and removes
the record when it ends. A driver killed with ``kill -9`` cannot: Ray's agents then outlive it (re-parented to
init; the raylet's workers end with the raylet). Every command's runner (``common.cli.run``) first looks for
records whose driver is gone, stops what is left of them (terminate, then kill after 3 s; a pid is only touched
when its start time matches the record, so a reused pid is never hit), says so in one line, and deletes the
record.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def registry() -> Path:
    return Path(os.environ.get("BOKEHGEN_RUN_DIR") or tempfile.gettempdir()) / f"bokehgen-ray-{os.getuid()}"


def _record_path(pid: int) -> Path:
    return registry() / f"{pid}.json"


def record_private_ray(session_dir: str | None = None) -> Path | None:
    """After ``ray.init`` started a private instance: write the record of its processes (this process's
    descendants). Returns the record's path (None when psutil is missing)."""
    try:
        import psutil
    except ImportError:
        return None
    me = psutil.Process()
    procs = []
    for p in me.children(recursive=True):
        try:
            procs.append([p.pid, p.create_time(), p.name()])
        except psutil.Error:
            continue
    path = _record_path(me.pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{me.pid}")
    tmp.write_text(
        json.dumps({"driver": me.pid, "driver_created": me.create_time(), "session": session_dir, "processes": procs})
    )
    os.replace(tmp, path)
    return path


def forget_private_ray() -> None:
    """The run ended (Ray shut down): its record goes."""
    try:
        _record_path(os.getpid()).unlink()
    except OSError:
        pass


def _driver_alive(rec: dict) -> bool:
    import psutil

    try:
        return abs(psutil.Process(int(rec["driver"])).create_time() - float(rec["driver_created"])) < 1.0
    except (psutil.Error, KeyError, ValueError, TypeError):
        return False


def reap(quiet: bool = False) -> list[int]:
    """Stop what runs of killed drivers left (module doc); returns the pids stopped."""
    folder = registry()
    try:
        records = sorted(folder.glob("*.json"))
    except OSError:
        return []
    if not records:
        return []
    try:
        import psutil
    except ImportError:
        return []
    stopped = []
    for path in records:
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        if _driver_alive(rec):
            continue
        alive = []
        for pid, created, _name in rec.get("processes", []):
            try:
                p = psutil.Process(int(pid))
                if abs(p.create_time() - float(created)) < 1.0:
                    alive.append(p)
            except (psutil.Error, ValueError, TypeError):
                continue
        for p in alive:
            try:
                p.terminate()
            except psutil.Error:
                pass
        _, still = psutil.wait_procs(alive, timeout=3.0)
        for p in still:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(still, timeout=3.0)
        stopped += [p.pid for p in alive]
        if alive and not quiet:
            names = sorted({n for pid, _, n in rec.get("processes", []) if pid in {p.pid for p in alive}})
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(rec.get("driver_created", 0))))
            print(
                f"stopped {len(alive)} processes ({', '.join(names)}) of a private Ray instance left by a killed "
                f"run (driver pid {rec.get('driver')}, started {started})",
                file=sys.stderr,
                flush=True,
            )
        path.unlink(missing_ok=True)
    return stopped
