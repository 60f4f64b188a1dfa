"""The project's one error type for what a user causes or meets (a bad value, an unreachable bucket, a folder
another run writes): library code raises :class:`UserError` with one line that names the thing and the problem,
and every command's runner (``common.cli.run``) prints it as ``error: LINE`` and exits non-zero, without a
traceback. Anything else that escapes is a bug and keeps its traceback."""


class UserError(Exception):
    """One line for the user: what (a file, a URI, a key) and what is wrong with it."""


def one_line(e: BaseException) -> str:
    """The message of ``e`` as one line. An error re-raised from a DataLoader worker carries the worker's
    traceback in its message ("Caught X in DataLoader worker process 0. Original Traceback ... X: LINE"): its
    own last line is the message."""
    text = str(e)
    if "Original Traceback" in text:
        last = [ln for ln in text.strip().splitlines() if ln.strip()][-1]
        head, sep, rest = last.partition(": ")
        text = rest if sep and " " not in head else last
    return " ".join(text.split())
