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
    wrong = [f"{path.relative_to(REPO)}:{line} imports model.{name}"
             for path in sorted((REPO / "model").rglob("*.py"))
             for line, name in _model_imports(path, len(path.relative_to(REPO / "model").parts))
             if name in ENTRY_POINTS and name != path.stem]
    assert not wrong, "\n".join(wrong)


def test_the_leaf_check_sees_relative_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from .train import x\n    from . import infer\n    import model.evaluate\n")
    assert [n for _, n in _model_imports(module)] == ["train", "infer", "evaluate"]
    module.write_text("from ..train import x\nfrom .. import infer\nfrom .common import Item\n")
    assert [n for _, n in _model_imports(module, 2)] == ["train", "infer"]
