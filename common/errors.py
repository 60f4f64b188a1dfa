"""The project's one error type for what a user causes or meets (a bad value, an unreachable bucket, a folder
another run writes): library code raises :class:`UserError` with one line that names the thing and the problem,
and every command's runner (``common.cli.run``) prints it as ``error: LINE`` and exits non-zero, without a
traceback. Anything else that escapes is a bug and keeps its traceback."""


class UserError(Exception):
    """One line for the user: what (a file, a URI, a key) and what is wrong with it."""
