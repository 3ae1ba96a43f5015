"""The import rules of ARCHITECTURE.md, checked against every import of the package.

Every `import` and `from ... import` anywhere in a module (at the top, inside functions, under
`if TYPE_CHECKING`), and every `importlib.import_module("splitreason...")` and
`resources.files("splitreason...")` with a literal name, is an edge from the importing package to
the imported one. An edge is allowed when it stays inside one package or goes to a package on a
lower row of the layer table; packages on one row are independent of each other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "splitreason"
ROOT_MODULE = "splitreason"
# The one allowed upward edge: splitreason/__init__.py's module __getattr__ hands out the public
# Python API (`splitreason.load_run`) on first attribute access, never at import time, so the
# package root stays importable by every layer without pulling polars or the tables package.
PUBLIC_API = {(ROOT_MODULE, "tables")}


def package_names() -> set[str]:
    """The top-level subpackages and modules of splitreason (what the table must place)."""
    names = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    names |= {path.stem for path in PACKAGE.iterdir() if path.suffix == ".py" and path.stem != "__init__"}
    # Folders of modules without an __init__.py are namespace packages: they count as well.
    names |= {path.name for path in PACKAGE.iterdir()
              if path.is_dir() and path.name != "__pycache__" and any(path.glob("*.py"))}
    return names


def layer_table() -> dict[str, int]:
    """Package -> layer, from the first fenced block of ARCHITECTURE.md: a row is the layer's
    number, its packages, then `│` and a description."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = re.search(r"```\n(.*?)```", text, re.S)
    assert block, "ARCHITECTURE.md has no layer table (a fenced block)"
    layers: dict[str, int] = {}
    for line in block.group(1).splitlines():
        row = re.match(r"\s*(\d+)\s+([^│]*)│", line)
        if not row:
            continue
        for name in row.group(2).split():
            assert name not in layers, f"{name} stands twice in ARCHITECTURE.md's layer table"
            layers[name] = int(row.group(1))
    layers[ROOT_MODULE] = -1  # splitreason/__init__.py (version, tag strings) imports nothing: below every row
    return layers


def _owner(module: str) -> str | None:
    """The package of splitreason a dotted module name belongs to, or None outside splitreason."""
    parts = module.split(".")
    if parts[0] != ROOT_MODULE:
        return None
    return parts[1] if len(parts) > 1 else ROOT_MODULE


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported splitreason module) for every import in the file, wherever it stands."""
    relative = path.relative_to(ROOT).with_suffix("")
    here = list(relative.parts[:-1])  # the package a relative import starts from (for __init__ too)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == ROOT_MODULE:  # `from splitreason import x`: x may be a subpackage
                found += [(node.lineno, f"{module}.{alias.name}") if alias.name in package_names()
                          else (node.lineno, module) for alias in node.names]
            else:
                found.append((node.lineno, module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in {"import_module", "files"} and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return sorted({(line, module) for line, module in found if _owner(module) is not None})


def source_package(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1:
        return ROOT_MODULE if relative.stem == "__init__" else relative.stem
    return relative.parts[0]


def violations() -> list[str]:
    layers = layer_table()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = source_package(path)
        for line, module in imports_of(path):
            target = _owner(module)
            if target == source or target is None:
                continue
            if target not in layers or source not in layers:
                continue  # reported by the test below
            if (source, target) in PUBLIC_API:
                continue
            if layers[target] >= layers[source]:
                relation = "the same row" if layers[target] == layers[source] else "a layer above"
                found.append(f"{path.relative_to(ROOT)}:{line}: {source} (layer {layers[source]}) imports {module} "
                             f"({target}, {relation})")
    return found


def test_every_package_stands_in_the_layer_table_and_only_those():
    table = set(layer_table()) - {ROOT_MODULE}
    missing, unknown = sorted(package_names() - table), sorted(table - package_names())
    assert not missing, f"packages missing from ARCHITECTURE.md's layer table: {', '.join(missing)}"
    assert not unknown, f"ARCHITECTURE.md's layer table names what is no package: {', '.join(unknown)}"


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    # The walk must see what a top-level scan would miss; a checker that saw nothing would pass anything.
    sample = PACKAGE / "judges" / "factory.py"
    seen = {module for _, module in imports_of(sample)}
    tree = ast.parse(sample.read_text(encoding="utf-8"))
    nested = {node.module for function in ast.walk(tree) if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
              for node in ast.walk(function) if isinstance(node, ast.ImportFrom) and node.module}
    assert nested and nested <= seen
    assert sum(len(imports_of(path)) for path in PACKAGE.rglob("*.py")) > 300


def test_no_package_imports_a_package_above_it_or_beside_it():
    found = violations()
    assert not found, f"{len(found)} imports break ARCHITECTURE.md's layers:\n" + "\n".join(found)
