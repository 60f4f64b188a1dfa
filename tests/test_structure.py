"""The package graph flows one way (DESIGN.md): common at the bottom; manifests and renderer on it; degradations
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
