"""Typed configuration of the MagicBokeh model (which weights, which sizes), loadable from YAML with checked
overrides. ``base=None`` means the tiny random configuration of the same code (tests, CPU experiments)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from common import config
from common.errors import UserError
from common.limits import MAX_K

CONFIG_DIR = Path(__file__).parent / "configs"
DEPTH_SIZES = ("tiny", "small", "base", "large")


@dataclass
class ModelConfig:
    # local diffusers-format Stable Diffusion 2.1-base folder (unet/, vae/, scheduler/); None = tiny random model
    base: str | None = None
    # local Depth Anything V2 folder in transformers format; None = random weights of ``depth_size``
    depth: str | None = None
    depth_size: str = "tiny"
    depth_input: int = 518  # short side fed to the depth network, rounded to a multiple of 14
    resolution: int = 512  # tile size at inference (pixels of the HQ image)
    k_max: float = MAX_K  # the defocus map r = K·|d − d_f| is divided by this (the data's max_K)
    focus_radius: float = 1.0  # px: a pixel whose blur radius is at most this belongs to the in-focus region
    timestep: int = 999
    lora_rank_vae: int = 16
    lora_rank_sr: int = 16
    lora_rank_bokeh: int = 16
    seed: int = 0  # initialisation of the random (tiny) weights, LoRA and ControlNet

    def __post_init__(self):
        if self.depth_size not in DEPTH_SIZES:
            raise ValueError(f"depth_size: one of {DEPTH_SIZES}, got {self.depth_size!r}")
        if self.resolution % 8 or self.resolution < 64:
            raise ValueError(f"resolution: a multiple of 8 and >= 64, got {self.resolution}")
        if not 0 < self.timestep < 1000:
            raise ValueError(f"timestep: in (0, 1000), got {self.timestep}")
        if self.k_max <= 0:
            raise ValueError(f"k_max: must be > 0, got {self.k_max}")
        for name in ("lora_rank_vae", "lora_rank_sr", "lora_rank_bokeh"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "ModelConfig":
        return config.from_dict(cls, data, source, "model.")

    @classmethod
    def from_yaml(cls, path) -> "ModelConfig":
        """The ``model:`` section of a run config (or a file of model keys alone, as weights/model.yaml)."""
        path = config_path(path)
        data = config.read_yaml(path)
        return cls.from_dict(data["model"] if "model" in data else data, source=str(path))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = ("model", "train", "distill")


def config_path(path) -> Path:
    """A YAML file, or the name of a shipped config (``tiny``, ``sd21``)."""
    path = Path(path)
    if not path.is_file() and (CONFIG_DIR / f"{path}.yaml").is_file():
        path = CONFIG_DIR / f"{path}.yaml"
    return path


def load_section(path, overrides, section: str, cls):
    """(ModelConfig, ``cls``) from the ``model:`` and ``section:`` parts of a YAML config, with checked
    ``model.KEY=VALUE`` / ``section.KEY=VALUE`` overrides (common.config: types, ranges, unknown keys)."""
    path = config_path(path)
    data = config.read_yaml(path)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; expected {', '.join(SECTIONS)}")
    for item in overrides:
        if str(item).split("=", 1)[0].split(".", 1)[0] not in ("model", section):
            raise ValueError(f"override {item!r}: expected model.KEY=VALUE or {section}.KEY=VALUE")
    data = config.parse_overrides(overrides, {"model": data.get("model") or {}, section: data.get(section) or {}})
    try:
        return (
            config.from_dict(ModelConfig, data["model"], str(path), "model."),
            config.from_dict(cls, data[section], str(path), f"{section}."),
        )
    except ValueError as e:  # an error in a value that --set gave names --set, not the file
        raise ValueError(config.blame_override(str(e), str(path), overrides)) from None


def parse_run_args(argv, prog: str, doc: str, section: str, *, val_required: bool, out_help: str, depth: bool = False):
    """The command line shared by ``model.train`` and ``model.distill``."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny", help=f"YAML with model: and {section}: sections (or tiny / sd21)")
    p.add_argument("--shards", required=True, help="training shards: brace pattern, glob or comma list")
    p.add_argument("--val", required=val_required, help="validation shards")
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help=f"override one config value, e.g. model.k_max=32 or {section}.seed=1 (repeatable)",
    )
    if depth:  # model.train only
        p.add_argument(
            "--stop-after",
            type=int,
            help="end this call after N steps (a checkpoint is written); "
            "rerun the same command to continue, e.g. under a queue's "
            "time limit",
        )
        p.add_argument(
            "--depth-weights",
            help="the depth model inference will use (a transformers folder, e.g. "
            "model.distill's student/); recorded in weights/model.yaml",
        )
    return p.parse_args(argv)


def configs_or_exit(load, args):
    """``load(args.config, args.overrides)`` for a command line: a config error ends the program with its message
    (naming the file and key) before any work starts."""
    try:
        return load(args.config, args.overrides)
    except ValueError as e:
        raise UserError(str(e)) from None
