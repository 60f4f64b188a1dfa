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
    assert any("pip install" in c and mount in c for c in cfg["setup_commands"])  # on head and workers alike
    gitignore = (REPO / ".gitignore").read_text().split()
    assert ".venv/" in gitignore and "bokeh_dataset/" in gitignore


def test_readme_cluster_section_uses_the_commands_that_work():
    readme = (REPO / "README.md").read_text()
    for command in ("ray up datagen/cluster.yaml", "ray submit datagen/cluster.yaml datagen/build.py -- --out",
                    "ray down datagen/cluster.yaml"):
        assert command in readme, command
        assert command in (REPO / "datagen" / "cluster.yaml").read_text()
