"""model.evaluate as a package, one module per concern (the command line is ``model/evaluate.py``):

- ``shared``: the command's outputs, protocols, methods; one benchmark image (``Item``); the cached LQ inputs;
- ``protocols``: the pairs, realsr and synthetic layouts, read one Item at a time;
- ``methods``: identity, classical, classical-gt, model, model-gt through ``model.pipeline``; cached predictions;
- ``strata``: scores per blur radius and in the occlusion band;
- ``depth``: the depth protocol;
- ``report``: results.csv, summary.md, examples.png;
- ``run``: the image loop;
- ``cli``: the arguments, checked before any work.
"""

from .cli import check_args, main, parse_args
from .depth import evaluate_depth, metric_depth_errors
from .run import evaluate
from .shared import BINS, Item

__all__ = ["BINS", "Item", "check_args", "evaluate", "evaluate_depth", "main", "metric_depth_errors", "parse_args"]
