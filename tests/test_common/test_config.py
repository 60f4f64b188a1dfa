"""The one checked config loader (common.config) that every config of the project goes through."""

from dataclasses import dataclass, field

import pytest

from common.config import from_dict, load, parse_overrides


@dataclass
class Inner:
    ratio: float = 0.5
    names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not 0 <= self.ratio <= 1:
            raise ValueError(f"ratio: in [0, 1], got {self.ratio}")


@dataclass
class Outer:
    count: int = 1
    rate: float = 1e-4
    flag: bool = False
    span: list[float] = field(default_factory=lambda: [0.0, 1.0])
    path: str | None = None
    inner: Inner = field(default_factory=Inner)


def test_values_are_coerced_as_a_user_means_them(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("rate: 5e-2\ncount: 3.0\nspan: [1, 2]\ninner: {ratio: 1}\n")  # YAML reads 5e-2 as a string
    out = load(Outer, cfg, ["inner.names=[a, b]", "path=/x"])
    assert out == Outer(count=3, rate=0.05, span=[1.0, 2.0], path="/x", inner=Inner(1.0, ["a", "b"]))
    assert isinstance(out.rate, float) and isinstance(out.count, int) and isinstance(out.span[0], float)


@pytest.mark.parametrize(
    "override, message",
    [
        ("count=abc", "count: expected an integer, got 'abc'"),
        ("count=2.5", "count: expected an integer, got 2.5"),
        ("count=true", "count: expected an integer, got True"),
        ("flag=1", "flag: expected true or false, got 1"),
        ("rate=[1]", r"rate: expected a number, got \[1\]"),
        ("span=[0, x]", r"span\[1\]: expected a number, got 'x'"),
        ("inner.ratio=2", "inner.ratio: in \\[0, 1\\], got 2.0"),
        ("inner.bogus=1", "unknown key 'inner.bogus'; known: names, ratio"),
        ("colour=red", "unknown key 'colour'; known: count, flag, inner, path, rate, span"),
        ("inner=3", "inner: expected a mapping, got 3"),
        ("novalue", "expected KEY=VALUE"),
    ],
)
def test_every_bad_value_is_a_value_error_naming_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        load(Outer, None, [override])


def test_file_problems_name_the_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("count: [1,\n")
    with pytest.raises(ValueError, match="broken.yaml: invalid YAML"):
        load(Outer, broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="list.yaml: expected a mapping"):
        load(Outer, listing)
    with pytest.raises(ValueError, match="missing.yaml: cannot read"):
        load(Outer, tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match=r"c.yaml: count: expected an integer"):
        (tmp_path / "c.yaml").write_text("count: many\n")
        load(Outer, tmp_path / "c.yaml")


def test_overrides_nest_and_do_not_touch_the_base():
    base = {"inner": {"ratio": 0.1}}
    out = parse_overrides(["inner.names=[x]", "count=2"], base)
    assert out == {"inner": {"ratio": 0.1, "names": ["x"]}, "count": 2} and base == {"inner": {"ratio": 0.1}}
    assert from_dict(Outer, out).inner.names == ["x"]


def test_the_project_configs_share_it():
    """Build, degradation, render quality and model configs all answer through the same loader."""
    from datagen.build import BuildConfig
    from degradations import DegradationConfig
    from model.config import ModelConfig
    from renderer import Quality

    for cls, key in (
        (BuildConfig, "seed"),
        (DegradationConfig, "scale"),
        (Quality, "min_samples"),
        (ModelConfig, "timestep"),
    ):
        with pytest.raises(ValueError, match=f"{key}: expected an integer, got 'abc'"):
            from_dict(cls, {key: "abc"}, "x")
