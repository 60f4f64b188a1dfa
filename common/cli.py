"""How every bokehgen command ends: its result, or one line on standard error, never a traceback for what a user
causes or meets (Ctrl-C, a full disk, a folder that cannot be written).

    def cli() -> None:
        run(main, parse_args())

Every command resumes or repeats safely (its outputs are written atomically), so both messages say that the same
command can simply be run again.
"""

from __future__ import annotations

import errno
import sys

from .errors import UserError, one_line

INTERRUPTED = "interrupted; the same command resumes"


def describe_os_error(e: OSError) -> str:
    """One line for an OSError: the path, what happened, and what to do."""
    path = e.filename or ""
    if getattr(e, "filename2", None):
        path = f"{path} -> {e.filename2}"
    what = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{path}: {what}: the disk is full; free space and run the same command again (it resumes)"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{path}: {what}: that location cannot be written; choose another output"
    return f"{path}: {what}" if path else what


def _storage_blocked() -> bool:
    storage = sys.modules.get("manifests.storage")
    return storage is not None and any(not done.is_set() for done in storage.ABANDONED)


def _exit_now_if_storage_blocked(code) -> None:
    """A storage call still blocked in a helper thread (manifests.storage.ABANDONED) would hold the process at
    exit, where the storage client shuts down and waits for it: end the process at once instead, output
    flushed (every output is written atomically, so nothing is left half-written)."""
    import os

    if _storage_blocked():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)


def run(main, args):
    """``main(args)``, with a :class:`~common.errors.UserError`, Ctrl-C and operating-system errors (a full disk, a
    read-only folder) turned into one line and a non-zero exit. Other exceptions are bugs and keep their
    traceback. First, what a killed run left behind is stopped (common.leftovers), and said so."""
    from . import leftovers

    leftovers.reap()
    try:
        return main(args)
    except UserError as e:
        if _storage_blocked():
            print(f"error: {one_line(e)}", file=sys.stderr, flush=True)
            _exit_now_if_storage_blocked(1)
        raise SystemExit(f"error: {one_line(e)}") from None
    except KeyboardInterrupt:
        print(f"\n{INTERRUPTED}", file=sys.stderr, flush=True)
        _exit_now_if_storage_blocked(130)
        raise SystemExit(130) from None
    except OSError as e:  # also a Ray task's error whose cause is an OSError (Ray subclasses the cause's type)
        cause = e
        while getattr(cause, "cause", None) is not None and isinstance(cause.cause, OSError):
            cause = cause.cause
        if getattr(cause, "errno", None) is None:
            raise
        raise SystemExit(f"error: {describe_os_error(cause)}") from None
