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


def run(main, args):
    """``main(args)``, with Ctrl-C and operating-system errors (a full disk, a read-only folder) turned into one
    line and a non-zero exit. Other exceptions are bugs and keep their traceback."""
    try:
        return main(args)
    except KeyboardInterrupt:
        print(f"\n{INTERRUPTED}", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except OSError as e:  # also a Ray task's error whose cause is an OSError (Ray subclasses the cause's type)
        cause = e
        while getattr(cause, "cause", None) is not None and isinstance(cause.cause, OSError):
            cause = cause.cause
        if getattr(cause, "errno", None) is None:
            raise
        raise SystemExit(f"error: {describe_os_error(cause)}") from None
