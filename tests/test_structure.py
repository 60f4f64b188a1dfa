"""The package graph flows one way (ARCHITECTURE.md): common at the bottom; manifests and renderer on it; degradations
above them; datagen above that; model on top. A lower package never imports a higher one, not even lazily inside
a function: every import statement of every module is checked."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEVEL = {"common": 0, "manifests": 1, "renderer": 1, "degradations": 2, "datagen": 3, "model": 4}


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def test_no_package_imports_a_higher_one():
    wrong = []
    for package, level in LEVEL.items():
        for path in sorted((REPO / package).rglob("*.py")):
            for line, name in _imports(path):
                if name in LEVEL and name != package and LEVEL[name] >= level:
                    wrong.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not wrong, "imports against the package graph:\n" + "\n".join(wrong)


def test_the_check_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from datagen.assets import Asset\n    import model.network\n")
    assert [n for _, n in _imports(module)] == ["datagen", "model"]


ENTRY_POINTS = {"train", "distill", "evaluate", "infer", "depth"}  # model's command-line modules


def _model_imports(path: Path, depth: int = 1) -> list[tuple[int, str]]:
    """(line, module of model/ imported) for every import statement of ``path``, relative or absolute; ``depth``:
    how many packages down from model/ the file lies (1 in model/, 2 in model/evaluation/)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level == depth and node.module:
                out.append((node.lineno, node.module.split(".")[0]))
            elif node.level == depth:
                out += [(node.lineno, alias.name) for alias in node.names]
            elif node.level == 0 and node.module and node.module.startswith("model."):
                out.append((node.lineno, node.module.split(".")[1]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("model.")]
    return out


def test_entry_points_are_leaves():
    """Nothing in model/ imports a command-line module (train, distill, evaluate, infer, the depth CLI): helpers
    live below them (distributed.py, pipeline.py, depthnet.py, figures.py), as BasicSR keeps dist_util."""
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports model.{name}"
        for path in sorted((REPO / "model").rglob("*.py"))
        for line, name in _model_imports(path, len(path.relative_to(REPO / "model").parts))
        if name in ENTRY_POINTS and name != path.stem
    ]
    assert not wrong, "\n".join(wrong)


def test_the_leaf_check_sees_relative_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from .train import x\n    from . import infer\n    import model.evaluate\n")
    assert [n for _, n in _model_imports(module)] == ["train", "infer", "evaluate"]
    module.write_text("from ..train import x\nfrom .. import infer\nfrom .common import Item\n")
    assert [n for _, n in _model_imports(module, 2)] == ["train", "infer"]


PACKAGES = ("common", "manifests", "renderer", "degradations", "datagen", "model")


def _cli_module(path: Path) -> bool:
    """A command-line module: it runs as a program (``__main__``) or defines the ``cli()`` entry point, or it is
    the runner that ends every command (common/cli.py)."""
    text = path.read_text()
    return (
        'if __name__ == "__main__"' in text
        or "\ndef cli(" in text
        or path.name == "__main__.py"
        or path.relative_to(REPO).as_posix() == "common/cli.py"
    )


def test_no_system_exit_below_the_command_line_modules():
    """Library code raises common.errors.UserError (one line); only a command-line module ends the program."""
    wrong = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if _cli_module(path):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Raise) and node.exc is not None:
                    call = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                    if isinstance(call, ast.Name) and call.id == "SystemExit":
                        wrong.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not wrong, "SystemExit raised outside a command-line module:\n" + "\n".join(wrong)


def test_no_private_name_is_imported_across_modules():
    """A name another module needs is public: no ``from X import _name`` between the project's modules (tests and
    benchmarks included)."""
    wrong = []
    for folder in (*PACKAGES, "tests", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if "data" in path.relative_to(REPO).parts[1:2]:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in PACKAGES):
                    private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                    if private:
                        wrong.append(f"{path.relative_to(REPO)}:{node.lineno} imports {private}")
    assert not wrong, "private names imported across modules:\n" + "\n".join(wrong)


def test_nothing_in_model_is_called_common():
    assert not [p for p in (REPO / "model").rglob("common*.py")]


def test_test_modules_have_unique_names():
    """The tests are not packages: pytest imports each module by its basename, so two test_x.py in different
    folders stop the whole collection ("import file mismatch")."""
    tests = Path(__file__).parent
    names = [p.name for p in tests.rglob("test_*.py") if "data" not in p.parts]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
