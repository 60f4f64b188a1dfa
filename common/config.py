"""One checked loader for every dataclass config of the project (build, scene, degradation, render quality,
highlights, model, train, distill).

    cfg = load(BuildConfig, "build.yaml", ["seed=3", "scene.k_range=[0, 16]"])

A YAML file (a mapping) plus ``key=value`` / ``section.key=value`` overrides, each value parsed as YAML. Every value
is coerced to its field's annotated type the way a user means it (YAML reads ``5e-2`` as a string: it becomes the
float 0.05; an ``int`` field takes ``3`` or ``3.0`` but not ``3.5``; a ``bool`` is never a number), nested dataclass
sections are checked the same way, and an unknown key is refused with the known ones listed. Every error is a
``ValueError`` that names the file (or "override") and the dotted key. Range checks stay in each class's
``__post_init__``, which raise ``ValueError`` naming their key too.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path

import yaml

__all__ = ["check", "from_dict", "load", "parse_overrides", "read_yaml", "to_dict"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (YAML itself keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {seen[key] + 1}, again on line "
                    f"{key_node.start_mark.line + 1}): give each key once",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path) -> dict:
    """A YAML file that holds a mapping (an empty file is ``{}``); any problem is a ValueError naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read config file ({e})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:  # one line: the line, the column and the problem
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise ValueError(f"{path}: invalid YAML{at}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of options, got {type(data).__name__}")
    return data


def parse_overrides(items, base: dict | None = None) -> dict:
    """``["a=1", "sec.b=[1, 2]"]`` applied onto a copy of ``base`` (nested dicts for dotted keys)."""
    out = _deep_copy(base or {})
    for item in items:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected KEY=VALUE (e.g. seed=3 or scene.k_range=[0,16])")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ValueError(f"override {item!r}: invalid YAML value: {e}") from None
        *parents, leaf = key.split(".")
        node = out
        for i, name in enumerate(parents):
            child = node.get(name)
            if child is None:
                child = node[name] = {}
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {'.'.join(parents[: i + 1])} is not a section")
            node = child
        node[leaf] = value
    return out


def load(cls, path=None, overrides=(), *, where: str | None = None):
    """``cls`` from an optional YAML file plus overrides, every value checked (see the module docstring)."""
    data = read_yaml(path) if path is not None else {}
    data = parse_overrides(overrides, data)
    where = where or (str(path) if path is not None else "config")
    try:
        return from_dict(cls, data, where)
    except ValueError as e:
        raise ValueError(blame_override(str(e), where, overrides)) from None


def blame_override(message: str, where: str, overrides) -> str:
    """An error about a key that an override set names that ``--set KEY=VALUE``, not the file it came from."""
    rest = message[len(where) + 2 :] if message.startswith(f"{where}: ") else message
    for item in reversed(list(overrides)):
        key = str(item).partition("=")[0].strip()
        if key and (
            rest.startswith(f"{key}:")
            or rest.startswith(f"unknown key '{key}'")
            or rest.startswith(f"{key}.")
            or f"'{key}'" in rest.split(";")[0]
        ):
            return f"--set {item}: {rest}"
    return message


def from_dict(cls, data, where: str = "config", prefix: str = ""):
    """``cls(**data)`` with every key known and every value coerced to its field's type; nested dataclass fields
    take a mapping (or an instance)."""
    if isinstance(data, cls):
        data = to_dict(data)
    if not isinstance(data, dict):
        raise ValueError(_at(where, f"{prefix.rstrip('.') or cls.__name__}: expected a mapping, got {data!r}"))
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        raise ValueError(_at(where, f"unknown key {_names(prefix, unknown)}; known: {', '.join(sorted(fields))}"))
    hints = typing.get_type_hints(cls)
    values = {}
    for name, raw in data.items():
        values[name] = _coerce(raw, hints[name], where, prefix + name)
    try:
        return cls(**values)
    except ValueError as e:  # a range check of __post_init__, which names its key
        raise ValueError(_at(where, f"{prefix}{e}")) from None
    except TypeError as e:  # a required field is missing
        raise ValueError(_at(where, f"{prefix.rstrip('.') or cls.__name__}: {e}")) from None


def check(obj, where: str = "config"):
    """Re-check a constructed config (e.g. after ``dataclasses.replace``) through the same coercion."""
    return from_dict(type(obj), to_dict(obj), where)


def to_dict(obj) -> dict:
    """A config as plain data (nested sections as dicts), e.g. for hashing or writing JSON."""
    return dataclasses.asdict(obj)


# ---------------------------------------------------------------------------------------------------------------
# coercion
# ---------------------------------------------------------------------------------------------------------------


def _at(where: str, message: str) -> str:
    return f"{where}: {message}" if where else message


def _names(prefix: str, names) -> str:
    return ", ".join(repr(prefix + n) for n in names)


def _fail(where, key, expected, value):
    raise ValueError(_at(where, f"{key}: expected {expected}, got {value!r}"))


def _coerce(value, hint, where: str, key: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(value, option, where, key)
            except ValueError as e:
                errors.append(str(e))
        if len(options) == 1:
            raise ValueError(errors[0])
        _fail(where, key, " or ".join(_describe(a) for a in args), value)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, {} if value is None else value, where, key + ".")
    if hint is bool:
        if isinstance(value, bool):
            return value
        _fail(where, key, "true or false", value)
    if hint is int:
        if isinstance(value, str):
            try:
                value = float(value.strip()) if any(c in value.lower() for c in ".e") else int(value.strip())
            except ValueError:
                _fail(where, key, "an integer", value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(where, key, "an integer", value)
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            _fail(where, key, "an integer", value)
        return int(value)
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                _fail(where, key, "a number", value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(where, key, "a number", value)
        if math.isnan(value):
            _fail(where, key, "a number", value)
        return float(value)
    if hint is str:
        if isinstance(value, str):
            return value
        _fail(where, key, "a string", value)
    if hint in (list, tuple) or origin in (list, tuple):
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            _fail(where, key, "a list", value)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                _fail(where, key, f"a list of {len(args)} values", value)
            return tuple(_coerce(v, a, where, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else typing.Any
        coerced = [_coerce(v, item, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(coerced) if (hint is tuple or origin is tuple) else coerced
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            _fail(where, key, "a mapping", value)
        if args:
            return {k: _coerce(v, args[1], where, f"{key}.{k}") for k, v in value.items()}
        return dict(value)
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        _fail(where, key, hint.__name__, value)
    return value


def _describe(hint) -> str:
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def _deep_copy(d: dict) -> dict:
    return {k: _deep_copy(v) if isinstance(v, dict) else (list(v) if isinstance(v, list) else v) for k, v in d.items()}
