"""The command line of model.evaluate (the work is in the package model/evaluation/):

python -m model.evaluate --protocol {pairs,realsr,depth,synthetic} --data PATH --methods ... --out OUT
"""

from .evaluation.cli import cli, main, parse_args

__all__ = ["cli", "main", "parse_args"]

if __name__ == "__main__":
    cli()
