"""The package's shape: every import points down the layers of ../shared/DESIGN.md, so there is no cycle.

    games <- core, players <- engine <- arena <- selfplay, eval <- interp <- experiments, bots <- cli

A module may import its own package and any lower layer, never a higher one or another package of its own
layer (selfplay and eval never import each other). Imports inside functions and under TYPE_CHECKING count.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import gamegpt

PACKAGE = Path(gamegpt.__file__).parent
LAYERS = {
    "__init__": 0, "errors": 0, "shared_data": 0, "atomic": 0, "resources": 0,
    "games": 1,
    "core": 2, "players": 2,
    "engine": 3,
    "arena": 4,
    "selfplay": 5, "eval": 5,
    "interp": 6,
    "experiments": 7, "bots": 7,
    "cli": 8,
}


def _area(module: str) -> str:
    """The top-level area of a dotted name inside the package (`gamegpt.eval.elo` → `eval`)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of the package in a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("gamegpt")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("gamegpt"):
            assert node.module is not None
            modules = [node.module] if node.module != "gamegpt" else [
                f"gamegpt.{a.name}" if a.name in LAYERS else "gamegpt" for a in node.names]
            found += [(node.lineno, module) for module in modules]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            raise AssertionError(f"{path}:{node.lineno}: relative import; write gamegpt.… in full")
    return found


def test_every_area_has_a_layer() -> None:
    areas = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert areas == set(LAYERS), f"give each top-level module a layer here: {sorted(areas ^ set(LAYERS))}"


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _area("gamegpt." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        for line, module in _imports(path):
            target = _area(module)
            if target != own and LAYERS[target] >= LAYERS[own]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {own} (layer {LAYERS[own]}) imports "
                             f"{module} (layer {LAYERS[target]})")
    assert not wrong, "imports that run up or across the layers:\n" + "\n".join(wrong)


def test_every_imported_name_exists() -> None:
    """Imports inside functions run only when the function does: check them all here, at once."""
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gamegpt"):
                assert node.module is not None
                module = importlib.import_module(node.module)
                for alias in node.names:
                    is_package = hasattr(module, "__path__")
                    if not hasattr(module, alias.name) and not (
                            is_package and importlib.util.find_spec(f"{node.module}.{alias.name}") is not None):
                        missing.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.module}.{alias.name}")
    assert not missing, "imports of names that do not exist:\n" + "\n".join(missing)


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text("def f():\n    from gamegpt.cli import main\n")
    assert _imports(source) == [(2, "gamegpt.cli")]
