"""datagen/cluster.yaml is a config `ray up` accepts, syncs the checkout without its heavy local files, and installs
the package on every node; the README's cluster commands are the ones it documents."""

import json
import os
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]


def test_cluster_yaml_is_valid_for_ray_up():
    import ray.autoscaler

    schema = json.loads((Path(os.path.dirname(ray.autoscaler.__file__)) / "ray-schema.json").read_text())
    cfg = yaml.safe_load((REPO / "datagen" / "cluster.yaml").read_text())
    jsonschema.validate(cfg, schema)  # Ray's own schema, as `ray up` checks it
    assert ".gitignore" in cfg["rsync_filter"]
    assert {"**/.venv", "**/.git", "**/bokeh_dataset"} <= set(cfg["rsync_exclude"])
    mount = next(iter(cfg["file_mounts"]))
    for nodes in ("head_setup_commands", "worker_setup_commands"):  # on head and workers alike
        assert any(c.startswith("python -m pip install") and mount in c for c in cfg[nodes]), nodes
    # one Python: the one `ray submit` runs build.py with (plain `python`) is the one the package goes into
    assert not any(
        "python3" in c
        for k in ("setup_commands", "head_setup_commands", "worker_setup_commands")
        for c in cfg.get(k) or []
    )
    text = (REPO / "datagen" / "cluster.yaml").read_text()
    assert "Assets: the same" in text and "Numba" not in text
    gitignore = (REPO / ".gitignore").read_text().split()
    assert ".venv/" in gitignore and "bokeh_dataset/" in gitignore


def test_readme_cluster_section_uses_the_commands_that_work():
    readme = (REPO / "README.md").read_text()
    for command in (
        "ray up datagen/cluster.yaml",
        "ray submit datagen/cluster.yaml datagen/build.py -- --out",
        "ray down datagen/cluster.yaml",
    ):
        assert command in readme, command
        assert command in (REPO / "datagen" / "cluster.yaml").read_text()
