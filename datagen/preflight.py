"""Before any shard runs: every node that may run one reads a sample of the assets, hashes checked.

A build whose asset folder exists only on the head (or a local folder that some worker does not mount) would
otherwise fail in every shard task, one node at a time. :func:`check_cluster` runs one small task pinned to each
alive node with CPUs; a node that joins later checks the same sample in its first shard task
(:func:`check_this_node`, called by ``build_shard``).
"""

from __future__ import annotations

from common.errors import UserError

from .sources import AssetUnavailable, Folder, check_node, shown

SAMPLE_PER_FOLDER = 8  # assets read per folder and node: a few seconds at most, and a missing mount shows at once


def sample_assets(sources: list[tuple[str, str]], rows: list) -> list[tuple[str, list]]:
    """(folder as the user gave it, up to SAMPLE_PER_FOLDER of its usable assets spread over its listing)."""
    out = []
    for _, location in sources:
        folder = Folder(location)
        prefix = folder.prefix()
        mine = [a for a in rows if a.ok and shown(a.uri).startswith(prefix)]
        if mine:
            step = max(1, len(mine) // SAMPLE_PER_FOLDER)
            out.append((folder.display(), mine[::step][:SAMPLE_PER_FOLDER]))
    return out


def check_cluster(sample: list[tuple[str, list]], timeout: float = 600.0) -> int:
    """Run :func:`datagen.sources.check_node` on every alive Ray node with CPUs; returns the number of nodes
    checked. Raises UserError with the first problem (one line naming the node and the folder)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
    task = ray.remote(num_cpus=0, max_retries=1)(check_node)
    refs = [
        task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(sample)
        for n in nodes
    ]
    for problem in ray.get(refs, timeout=timeout):
        if problem:
            raise UserError(problem)
    return len(nodes)


_CHECKED: set = set()  # the samples this worker process has read (one node per process)


def check_this_node(sample: list[tuple[str, list]]) -> None:
    """In a shard task: the pre-flight check of this node, once per worker process (a node that joined after the
    build started is checked before its first shard). Raises AssetUnavailable with the one-line problem."""
    key = tuple((folder, tuple(a.sha256 for a in assets)) for folder, assets in sample)
    if key in _CHECKED:
        return
    problem = check_node(sample)
    if problem:
        raise AssetUnavailable(problem)
    _CHECKED.add(key)
