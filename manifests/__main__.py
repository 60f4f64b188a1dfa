"""``python -m manifests verify DIR_OR_URI`` (each problem, then a summary line; exit 0 when intact, else 1) and
``python -m manifests stats DIR_OR_URI`` (the dataset's summary as JSON): the library functions
:func:`manifests.verify` and :func:`manifests.stats` on the command line, under the common runner."""

from __future__ import annotations

import argparse
import json

from common.cli import run

from . import Store, stats, verify


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m manifests", description=__doc__.split(":")[0])
    p.add_argument("action", choices=["verify", "stats"])
    p.add_argument("folder", help="a build's output folder: a local path or a pyarrow.fs URI")
    return p.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    if args.action == "stats":
        print(json.dumps(stats(args.folder), indent=1, default=str))
        return 0
    problems = verify(args.folder)
    for line in problems:
        print(line)
    print(f"{Store(args.folder).display()}: {'intact' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(run(main, parse_args()))
