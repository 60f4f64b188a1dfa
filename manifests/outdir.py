"""Who owns an output folder: the one rule every bokehgen command that writes a folder follows.

    store = claim("runs/tiny", "model.train", ["config.json", "train_log.csv", "checkpoints/**"],
                  inputs=["ds/train-000000.tar"])

The rule (ARCHITECTURE.md, "Output folders"):

- a folder belongs to a command only when it holds that command's marker file (``.bokehgen.json``, which names
  the command);
- a folder that does not exist, an empty one, or one that holds nothing but an earlier run's outputs (by name:
  its ``outputs`` patterns, and the ``signature`` file such a run always wrote) is the command's to use: the
  marker is written and the folder is then its own;
- anything else is refused, naming the foreign files (and a folder of another command, naming that command);
- no output may resolve to one of the command's inputs: the folder is not an input, does not lie inside one and
  does not hold one.

Works on a local path and on any ``pyarrow.fs`` URI (through :class:`manifests.Store`).
"""

from __future__ import annotations

import fnmatch
import json
import os

import pyarrow.fs as pafs

from common.errors import UserError

from .storage import PARTIAL, Store, is_uri

MARKER = ".bokehgen.json"
LOCK = ".bokehgen.lock"  # manifests.lock: the folder's one writer


class OutputFolderError(UserError, ValueError):
    """A folder that a command may not write into; the message is one line naming the folder and the reason."""


def _relative_files(store: Store) -> tuple[list[str], list[str]]:
    """(files, folders) under the store's root, as '/'-separated paths relative to it."""
    found = store.fs.get_file_info(pafs.FileSelector(store.root, recursive=True, allow_not_found=True))
    files, folders = [], []
    for info in found:
        rel = info.path[len(store.root) :].lstrip("/")
        (folders if info.type == pafs.FileType.Directory else files).append(rel)
    return sorted(files), sorted(folders)


def is_output(rel: str, patterns) -> bool:
    """Whether ``rel`` is one of the command's outputs: a pattern matches it whole ('train-*.tar', 'hq/*.png'), or
    a pattern ending in '/**' holds it ('checkpoints/**')."""
    name = rel.rsplit("/", 1)[-1]
    if fnmatch.fnmatch(name, PARTIAL):  # a temporary file of an interrupted write
        return True
    for pattern in patterns:
        if pattern.endswith("/**"):
            if rel.startswith(pattern[:-2]):
                return True
        elif fnmatch.fnmatchcase(rel, pattern):
            return True
    return False


def read_marker(store: Store) -> dict | None:
    """The folder's marker (None when it has none); a damaged one is an error naming it."""
    if not store.exists(MARKER):
        return None
    try:
        marker = json.loads(store.read_text(MARKER))
        if not isinstance(marker, dict) or not isinstance(marker.get("command"), str):
            raise ValueError("no 'command'")
    except (ValueError, UnicodeDecodeError) as e:
        raise OutputFolderError(
            f"{store.display()}/{MARKER}: not a bokehgen marker ({e}); move the folder aside "
            f"or choose another output folder"
        ) from None
    return marker


def foreign_files(store: Store, outputs, signature: str | None = None) -> list[str]:
    """What the folder holds that the command does not write (folders end in '/'), [] when it holds only its
    outputs (or nothing). ``signature``: the file an earlier run of the command always wrote first (build:
    dataset.json); without it, files that merely bear an output's name are the user's, and all are foreign."""
    files, folders = _relative_files(store)
    if signature is not None and signature not in files:
        outputs = ()
    foreign = [f for f in files if f not in (MARKER, LOCK) and not is_output(f, outputs)]
    for folder in folders:
        ours = is_output(folder + "/", outputs) or any(p.startswith(folder + "/") for p in outputs)
        if not ours and not any(f.startswith(folder + "/") for f in foreign):
            foreign.append(folder + "/")
    return sorted(foreign)


def _resolved(path) -> str:
    return str(path) if is_uri(path) else os.path.realpath(os.path.expanduser(str(path)))


def check_not_input(output, inputs, what: str = "--out") -> None:
    """Refuse an output (file or folder) that is one of ``inputs``, lies inside one, or holds one (symlinks
    resolved): a command must never write over what it reads."""
    out = _resolved(output)
    for item in inputs:
        if item is None:
            continue
        inp = _resolved(item)
        if out == inp:
            raise OutputFolderError(
                f"{what} {output}: is also an input ({item}); it would be overwritten: choose another output"
            )
        if out.startswith(inp.rstrip("/") + "/"):
            raise OutputFolderError(
                f"{what} {output}: lies inside the input {item}; the command would read its own "
                f"output back: choose an output outside it"
            )
        if inp.startswith(out.rstrip("/") + "/"):
            raise OutputFolderError(
                f"{what} {output}: holds the input {item}; choose an output folder that does not contain the inputs"
            )


def claim(
    folder, command: str, outputs, inputs=(), what: str = "--out", create: bool = True, signature: str | None = None
) -> Store:
    """Make sure ``command`` may write its ``outputs`` (patterns relative to the folder) into ``folder`` and mark
    it as the command's; returns its Store. Raises OutputFolderError (one line) otherwise; writes nothing then.
    ``signature``: see :func:`foreign_files` (a folder without a marker)."""
    store = Store.of(folder)
    where = store.display()
    store.check_reachable()  # object storage: unreachable, refused or no bucket, in one line within the bounds
    if store.is_file_or_missing_parent():
        raise OutputFolderError(f"{what} {where}: is a file (or lies under one), not a folder")
    check_not_input(store.location if store.local else folder, inputs, what)
    marker = read_marker(store)
    if marker is not None and marker["command"] != command:
        raise OutputFolderError(
            f"{what} {where}: holds the output of {marker['command']}, not of {command}; choose another folder"
        )
    if marker is None:
        foreign = foreign_files(store, outputs, signature)
        if foreign:
            shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
            raise OutputFolderError(
                f"{what} {where}: refused, the folder holds files that {command} did not write "
                f"({shown}); nothing was changed: choose an empty or new folder"
            )
        if create:
            store.makedirs()
            store.write_text(
                MARKER,
                json.dumps(
                    {
                        "command": command,
                        "note": f"this folder is written by bokehgen's {command}; other commands refuse it",
                    },
                    indent=1,
                )
                + "\n",
            )
    return store
