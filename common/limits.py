"""Numbers several packages must agree on, defined once."""

import operator

#: The largest blur strength K (pixels of blur radius per unit of disparity difference) of the data recipe: the
#: paper draws K in [0, 32]. ``dataset.json`` carries it (``max_K``), and the model normalises its defocus map by it.
MAX_K = 32.0

#: Seeds are stored in Parquet as int64: 0 <= seed < 2**63.
SEED_LIMIT = 2**63


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int in [0, 2**63), else a ValueError naming ``name``."""
    try:
        if isinstance(seed, bool):
            raise TypeError
        seed = operator.index(seed)
    except TypeError:
        raise ValueError(f"{name}: expected an integer in [0, 2**63), got {seed!r}") from None
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{name}: expected an integer in [0, 2**63), got {seed}")
    return seed
