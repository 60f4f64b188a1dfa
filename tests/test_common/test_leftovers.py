"""A driver killed with kill -9 leaves part of its private Ray instance running; the next command stops it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_next_command_stops_what_a_killed_drivers_private_ray_left(tmp_path):
    import psutil

    env = dict(os.environ, BOKEHGEN_RUN_DIR=str(tmp_path), PYTHONPATH=str(REPO))
    driver = subprocess.Popen([sys.executable, "-c", "import time; from datagen.distributor import connect_ray; "
                               "connect_ray('local', 1); print('up', flush=True); time.sleep(600)"],
                              env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    while (line := driver.stdout.readline()) and line.strip() != "up":
        pass
    record = json.loads((tmp_path / f"bokehgen-ray-{os.getuid()}" / f"{driver.pid}.json").read_text())
    procs = [psutil.Process(pid) for pid, _, _ in record["processes"] if psutil.pid_exists(pid)]
    assert {"gcs_server", "raylet"} <= {p.name() for p in procs}
    os.kill(driver.pid, signal.SIGKILL)  # the driver alone, as a crash or an OOM killer would
    driver.wait()
    time.sleep(2.0)
    left = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left, "the test needs leftovers to clean up (Ray's agents outlive a killed driver)"
    rerun = subprocess.run([sys.executable, "-m", "manifests", "verify", str(tmp_path / "nothing")], env=env,
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert f"of a private Ray instance left by a killed run (driver pid {driver.pid}" in rerun.stderr, rerun.stderr
    time.sleep(0.5)
    remaining = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not remaining, [(p.pid, p.name()) for p in remaining]
    assert not list((tmp_path / f"bokehgen-ray-{os.getuid()}").glob("*.json"))
