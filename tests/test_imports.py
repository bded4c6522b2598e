"""No import cycles inside rlgen, lazy (function-level) imports included.

The graph is read from the source with ``ast``, without importing the modules: each module of the
package is a node, and each ``import``/``from ... import`` naming another rlgen module, wherever it
stands in the file (module level, in a function, relative), is an edge. ``from package import name``
points at ``package.name`` when that is a module, else at the package. A package's ``__init__`` that
runs when one of its modules is imported is not an edge: only the import statements themselves are.
Nor is a module named by a string and imported with importlib, as rlgen.rl.reward_config names the
wrappers that import it; the last test checks that those names exist.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import rlgen

PACKAGE_DIR = Path(rlgen.__file__).parent


def module_names(root: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package is its ``__init__.py``)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package (``None``: not ours)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``module`` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" for alias in node.names if alias.name != "*"] or [source]
        else:
            continue
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


def import_graph(root: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_graph_is_read():
    graph = import_graph()
    assert "rlgen.rl.reward_config" in graph["rlgen.rl.gail"]  # module level
    assert "rlgen.gen.models.gan_layers" in graph["rlgen.gen.base"]  # in a function
    assert graph["rlgen.gen.models"] >= {"rlgen.gen.models.dcgan", "rlgen.gen.models.improved_gan"}  # from pkg import mod
    assert "rlgen.errors" not in graph["rlgen.errors"]


def test_finds_a_planted_cycle(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import c\n")  # lazy and relative
    (package / "c.py").write_text("import pkg.a\n")
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (package / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(package)) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in rlgen: " + " -> ".join(cycle)


def test_the_wrappers_named_by_their_tables_exist():
    # rlgen.rl.reward_config names the learned-reward wrappers by "module:name" instead of importing
    # them (they import it), so no import checks these names: every one must resolve.
    from rlgen.rl.reward_config import named

    path = PACKAGE_DIR / "rl" / "reward_config.py"
    names = {node.value for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and re.fullmatch(r"rlgen(\.\w+)+:\w+", node.value)}
    assert len(names) >= 5, names
    for name in sorted(names):
        assert callable(named(name)), name
