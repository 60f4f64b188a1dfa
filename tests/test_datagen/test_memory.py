"""A build's Ray tasks declare their memory, so a node runs only as many as its memory holds."""

import json

import pytest

from common.errors import UserError
from datagen.build import BuildConfig, main, parse_args, task_memory


def test_a_node_runs_only_as_many_shard_tasks_as_its_memory_holds(tmp_path):
    """A one-node cluster with 2 CPUs whose memory holds one task: the shards run one at a time; a task that no
    node can hold is refused in one line, before it would wait forever."""
    import ray

    flags = ["--size", "96", "--num-samples", "4", "--samples-per-shard", "1"]
    flags += ["--set", "min_asset_size=96", "--set", "val_samples=0"]
    cfg = BuildConfig.load(None, ["size=96", "min_asset_size=96", "val_samples=0"])
    one = task_memory(cfg)
    assert task_memory(BuildConfig.load(None, ["size=[2048, 1364]", "scene.k_range=[0, 128]"])) > 2 * one
    ray.init(address="local", num_cpus=2, _memory=int(1.5 * one), include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(UserError, match=r"declares 2.0 GiB .*more than any node offers Ray's tasks"):
            main(parse_args(["--out", str(tmp_path / "big"), *flags, "--task-memory", "2"]))
        main(parse_args(["--out", str(tmp_path / "ds"), *flags]))
    finally:
        ray.shutdown()
    shards = json.loads((tmp_path / "ds" / "build_log.json").read_text())[-1]["shards"]
    spans = sorted((s["started"], s["ended"]) for s in shards)
    assert len(spans) == 4
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), spans
