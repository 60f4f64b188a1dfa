"""Progress messages of the model's commands, through :mod:`logging`, as diffusers' training scripts log through
accelerate's ``get_logger(main_process_only=True)``: one line per message on stdout, flushed as it is written
(so that a log file or a launcher's pipe sees it at once), from the main process only (rank 0 under ``torchrun``;
a record with ``extra={"all_ranks": True}`` is written by every process).

Applications that configure logging themselves can remove the handler: ``logging.getLogger("model").handlers``.
"""

from __future__ import annotations

import logging
import os
import sys


class MainProcessOnly(logging.Filter):
    """Lets a record through on rank 0 (``RANK``, as torchrun and accelerate set it; 0 when unset)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "all_ranks", False) or int(os.environ.get("RANK", "0")) == 0


def get_logger(name: str) -> logging.Logger:
    """The logger ``name`` (under ``model``): INFO and above to stdout, rank 0 only, message text only."""
    root = logging.getLogger("model")
    if not any(getattr(h, "_bokehgen", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)  # StreamHandler flushes after every record
        handler._bokehgen = True
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(MainProcessOnly())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
    if name != "model" and not name.startswith("model."):  # "__main__" under python -m model.train
        name = "model." + name.strip("_")
    return logging.getLogger(name)
