"""One writer per output folder: a build, a training, a distillation, an evaluation or a degradations run holds
the folder's lock (``.bokehgen.lock``) from before its first check of the folder until it ends.

    with FolderLock(args.out, "datagen.build"):
        ...                                   # check the folder, then write it

- The lock file names its holder: command, host, pid, start time; it is deleted when the run ends. A second
  writer is refused with one line naming the holder (:class:`FolderLocked`).
- On a local disk (and NFS) the lock is ``flock`` on that file: the kernel releases it when its process ends, so
  a killed run (kill -9, a lost node) leaves no lock to clear. The next run takes it and logs the takeover of
  the dead run's lock (its file, left behind, still names it).
- On object storage, which has no locks, the holder writes the file, reads it back to see that it won, and
  renews it every :data:`RENEW_S` seconds. A lock whose holder is dead (same host, no such pid) or that was not
  renewed for :data:`STALE_AFTER_S` seconds is taken over, and the takeover is logged. Two runs that start within
  the same second on two hosts can both win (best effort: the store offers no conditional write here).
- The folder is created to hold the lock; a run that made the folder and wrote nothing into it removes it again,
  so a refused run leaves everything as it was.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
import threading
import time
import uuid

from .outdir import LOCK, OutputFolderError
from .storage import Store

#: object storage: a lock not renewed for this long belongs to a dead run (whatever its host)
STALE_AFTER_S = 600.0
#: object storage: how often the holder renews its lock
RENEW_S = 60.0


class FolderLocked(OutputFolderError):
    """Another run writes the folder: one line naming it."""


def _pid_alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


def _holder_line(h: dict) -> str:
    return f"{h.get('command', '?')} on {h.get('host', '?')}, pid {h.get('pid', '?')}, since {h.get('started', '?')}"


class FolderLock:
    """The lock of ``folder`` (a path, a URI or a Store) for ``command``; a context manager."""

    def __init__(self, folder, command: str, what: str = "--out"):
        self.store = Store.of(folder)
        self.command = command
        self.what = what
        self.me = {
            "command": command,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "token": uuid.uuid4().hex,
        }
        self._fd = None
        self._created = False
        self._stop = threading.Event()
        self._renewer = None
        self.took_over: dict | None = None  # the dead holder whose lock this run took, if any

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _refuse(self, holder: dict):
        raise FolderLocked(
            f"{self.what} {self.store.display()}: another run writes this folder "
            f"({_holder_line(holder)}); wait for it to end, or choose another folder"
        )

    def _log_takeover(self, holder: dict, why: str) -> None:
        self.took_over = holder
        print(
            f"{self.store.display()}: took over the lock of a run that {why} ({_holder_line(holder)})",
            file=sys.stderr,
            flush=True,
        )

    def acquire(self) -> None:
        self.store.check_reachable()  # object storage: unreachable, refused, no bucket: one line, first
        if self.store.is_file_or_missing_parent():
            raise OutputFolderError(f"{self.what} {self.store.display()}: is a file (or lies under one), not a folder")
        self._created = not self.store.entries()
        if self.store.local and self._created:  # the folder (or its nearest existing parent) must take a file
            from pathlib import Path

            near = next((p for p in (Path(self.store.root), *Path(self.store.root).parents) if p.exists()), None)
            if near is None or not os.access(near, os.W_OK | os.X_OK):
                raise OutputFolderError(
                    f"{self.what} {self.store.display()}: cannot write there (permission denied "
                    f"or a read-only file system)"
                )
        self.store.makedirs()
        if self.store.local:
            self._acquire_local()
        else:
            self._acquire_remote()

    def _acquire_local(self) -> None:
        import fcntl

        path = self.store.path(LOCK)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read(fd)
                os.close(fd)
                self._cleanup_created()
                self._refuse(holder)
            try:  # the file may have been released (deleted) between our open and our flock: lock the new one
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = self._read(fd)
        if previous:  # a clean release deletes the file: what is left names a run that died holding it
            self._log_takeover(previous, "ended without releasing it")
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(self.me, indent=1) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd

    @staticmethod
    def _read(fd) -> dict:
        try:
            data = os.pread(fd, 1 << 16, 0)
            holder = json.loads(data) if data.strip() else {}
            return holder if isinstance(holder, dict) else {}
        except (OSError, ValueError):
            return {}

    def _read_remote(self) -> dict:
        try:
            holder = json.loads(self.store.read_text(LOCK))
            return holder if isinstance(holder, dict) else {}
        except FileNotFoundError:
            return {}
        except ValueError:
            return {"command": "?", "damaged": True}

    def _stale(self, holder: dict) -> str | None:
        if not holder or holder.get("released") or holder.get("damaged"):
            return None if not holder.get("damaged") else "left a damaged lock"
        if holder.get("host") == socket.gethostname() and not _pid_alive(holder.get("pid")):
            return "is no longer running"
        if time.time() - float(holder.get("renewed", 0)) > STALE_AFTER_S:
            return f"has not renewed it for more than {STALE_AFTER_S:g} s"
        return None

    def _acquire_remote(self) -> None:
        holder = self._read_remote()
        if holder and not holder.get("released"):
            why = self._stale(holder)
            if why is None:
                self._cleanup_created()
                self._refuse(holder)
            self._log_takeover(holder, why)
        self.me["renewed"] = time.time()
        self.store.write_text(LOCK, json.dumps(self.me, indent=1) + "\n")
        time.sleep(0.5)  # a writer racing this one wrote by now: whoever reads its own token back won
        back = self._read_remote()
        if back.get("token") != self.me["token"]:
            self._refuse(back)
        self._renewer = threading.Thread(target=self._renew, name="bokehgen lock renewal", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_S):
            self.me["renewed"] = time.time()
            try:
                self.store.write_text(LOCK, json.dumps(self.me, indent=1) + "\n")
            except Exception as e:  # noqa: BLE001 - a renewal failing once is retried at the next beat
                print(f"{self.store.display()}: could not renew the folder lock: {e}", file=sys.stderr, flush=True)

    def _cleanup_created(self) -> None:
        """Remove the folder this run created, when it is empty (a lock file in it is another run's: kept)."""
        if not self._created or not self.store.local:
            return
        try:
            os.rmdir(self.store.root)
        except OSError:
            pass

    def release(self) -> None:
        """The lock file goes (deleted while still held, so no other run can lock the deleted file), and with it
        a folder this run created and left empty."""
        if self._fd is not None:
            import fcntl

            try:
                os.remove(self.store.path(LOCK))
            except FileNotFoundError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            self._cleanup_created()
        elif self._renewer is not None:
            self._stop.set()
            # a renewal already writing would put the lock back after the delete: let it finish first
            self._renewer.join(timeout=60.0)
            try:
                if self._read_remote().get("token") == self.me["token"]:
                    self.store.delete(LOCK)
            except OSError:
                pass
            self._renewer = None


def writer_lock(folder, command: str, what: str = "--out"):
    """The folder's lock for this process, or a no-op in a data-parallel run's ranks other than 0 (``RANK``
    set by torchrun or mp.spawn's launcher), whose rank 0 holds it for them."""
    if os.environ.get("RANK", "0") not in ("", "0"):
        return _NoLock()
    return FolderLock(folder, command, what)


class _NoLock:
    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass

    def __enter__(self) -> "_NoLock":
        return self

    def __exit__(self, *exc) -> None:
        pass
