"""manifests.lock: one writer per output folder, a dead writer's lock taken over and said so."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from manifests.lock import LOCK, FolderLock, FolderLocked

REPO = Path(__file__).resolve().parents[2]


def test_a_second_writer_is_refused_naming_the_holder_and_a_refused_run_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with FolderLock(out, "datagen.build") as held:
        with pytest.raises(FolderLocked) as err:
            FolderLock(out, "model.train").acquire()
        line = str(err.value)
        assert f"datagen.build on {held.me['host']}, pid {os.getpid()}, since" in line and "\n" not in line
    assert not out.exists(), "a run that wrote nothing leaves no folder (nor lock) behind"
    out.mkdir()
    (out / "train-000000.tar").write_bytes(b"x")
    with FolderLock(out, "datagen.build"):
        assert (out / LOCK).is_file()
    assert sorted(p.name for p in out.iterdir()) == ["train-000000.tar"]  # released: the lock file is gone
    with FolderLock(out, "datagen.build") as again:
        assert again.took_over is None  # a released lock is no takeover


def test_the_lock_of_a_killed_writer_is_taken_over_and_logged(tmp_path, capsys):
    out = tmp_path / "out"
    code = (
        f"import os; from manifests.lock import FolderLock; FolderLock({str(out)!r}, 'datagen.build').acquire(); "
        f"open({str(out / 'x')!r}, 'w').close(); os._exit(9)"
    )  # dies holding the lock (kill -9 alike)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), check=False)
    dead = json.loads((out / LOCK).read_text())
    with FolderLock(out, "datagen.build") as lock:
        assert lock.took_over["pid"] == dead["pid"]
    assert (
        f"took over the lock of a run that ended without releasing it (datagen.build on {dead['host']}, pid "
        f"{dead['pid']}" in capsys.readouterr().err
    )


def test_object_storage_lock_refuses_a_live_holder_and_takes_over_a_stale_one(monkeypatch, capsys):
    from conftest import moto_s3

    import manifests.lock as lock_mod
    from manifests import Store

    monkeypatch.setattr(lock_mod, "RENEW_S", 0.2)
    with moto_s3("locks") as (uri, _):
        out = uri("run")
        with FolderLock(out, "model.train") as held:
            with pytest.raises(FolderLocked, match=r"another run writes this folder \(model.train on"):
                FolderLock(out, "model.train").acquire()
            first = json.loads(Store(out).read_text(LOCK))["renewed"]
            import time

            time.sleep(0.6)
            assert json.loads(Store(out).read_text(LOCK))["renewed"] > first  # renewed while held
        assert not Store(out).exists(LOCK) and held.took_over is None
        stale = {
            "command": "model.train",
            "host": "elsewhere",
            "pid": 1,
            "started": "then",
            "token": "t",
            "renewed": 0.0,
        }
        Store(out).write_text(LOCK, json.dumps(stale))
        with FolderLock(out, "model.train") as lock:
            assert lock.took_over["host"] == "elsewhere"
        assert "has not renewed it for more than 600 s (model.train on elsewhere, pid 1" in capsys.readouterr().err


def test_releasing_while_a_renewal_is_writing_leaves_no_lock_behind(monkeypatch):
    """The renewal thread may be mid-write when the run ends: release waits for it, then deletes, so the finished
    run does not leave a lock that the next run must wait out (it did, now and then, on a busy machine)."""
    import threading
    import time

    from conftest import moto_s3

    import manifests.lock as lock_mod
    from manifests import Store

    monkeypatch.setattr(lock_mod, "RENEW_S", 0.05)
    with moto_s3("locks") as (uri, _):
        out = uri("slow")
        lock = FolderLock(out, "model.train")
        lock.acquire()
        writing = threading.Event()
        write = lock.store.write_text

        def slow_write(name, text):  # a renewal that takes a while to land
            writing.set()
            time.sleep(0.5)
            write(name, text)

        monkeypatch.setattr(lock.store, "write_text", slow_write)
        assert writing.wait(5.0)
        lock.release()
        time.sleep(0.7)  # long enough for a write still in flight to land
        assert not Store(out).exists(LOCK)
