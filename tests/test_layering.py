"""The import layering of the packages (README "Architecture"), checked on the source.

Every ``import`` and ``from ... import`` in every module of the project's packages is
read with :mod:`ast` -- at module level *and* inside functions, so a function-level
import cannot dodge the rule -- and mapped to the layer of the module it names:

    simulator  <-  evolution  <-  learning  <-  risk
    manager.settings  <-  manager.store  <-  migrations
    all of the above  <-  manager  <-  web  <-  api

A layer may import only the layers listed for it in :data:`ALLOWED`; nothing
imports ``api``; and the layer graph has no cycle. Third-party and standard
library imports are not layers and are ignored.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGES = ("simulator", "evolution", "learning", "risk", "manager", "migrations", "web", "api")

ALLOWED: dict[str, set[str]] = {
    "simulator": set(),
    "evolution": {"simulator"},
    "learning": {"simulator", "evolution"},
    "risk": {"simulator", "evolution", "learning"},
    "manager.settings": set(),
    "manager.store": {"simulator", "manager.settings"},
    "migrations": {"manager.store", "manager.settings"},
    "manager": {"simulator", "evolution", "learning", "risk", "manager.settings", "manager.store", "migrations"},
    "web": {"simulator", "evolution", "learning", "risk", "manager.settings", "manager.store", "migrations",
            "manager"},
    "api": {"simulator", "evolution", "learning", "risk", "manager.settings", "manager.store", "migrations",
            "manager", "web"},
}


def layer_of(module: str) -> str | None:
    """The layer a dotted module name belongs to, or None (not one of ours)."""
    top = module.split(".")[0]
    if top not in PACKAGES:
        return None
    if top == "manager":
        for sub in ("manager.settings", "manager.store"):
            if module == sub or module.startswith(sub + "."):
                return sub
    return top


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            # ``from manager import store`` imports the submodule manager.store
            found += [(node.lineno, f"{mod}.{alias.name}") for alias in node.names
                      if layer_of(f"{mod}.{alias.name}") not in (None, layer_of(mod))]
    return found


def source_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py"))


def layer_edges() -> dict[tuple[str, str], list[str]]:
    """(importing layer, imported layer) -> the ``file:line module`` places."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in source_files():
        src = layer_of(module_name(path))
        for line, mod in imports_of(path):
            dst = layer_of(mod)
            if dst is None or dst == src:
                continue
            edges.setdefault((src, dst), []).append(f"{path.relative_to(ROOT)}:{line} {mod}")
    return edges


def test_every_package_module_is_read():
    files = source_files()
    assert len(files) > 50
    assert {layer_of(module_name(p)) for p in files} >= {"simulator", "evolution", "learning", "manager",
                                                         "manager.store", "migrations", "web", "api"}


def test_imports_follow_the_layers():
    bad = [f"{src} may not import {dst}: " + "; ".join(places)
           for (src, dst), places in sorted(layer_edges().items()) if dst not in ALLOWED[src]]
    assert not bad, "\n".join(bad)


def test_nothing_imports_api():
    bad = [places for (src, dst), places in layer_edges().items() if dst == "api"]
    assert not bad, bad


def test_the_layer_graph_has_no_cycle():
    graph: dict[str, set[str]] = {}
    for src, dst in layer_edges():
        graph.setdefault(src, set()).add(dst)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle between layers: " + " -> ".join(path + [node, nxt]))
            if not state.get(nxt):
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])


@pytest.mark.parametrize("source, target, allowed", [
    ("simulator/x.py", "manager.runner", False),
    ("web/x.py", "api.deps", False),
    ("manager/store/x.py", "migrations", False),
    ("migrations/x.py", "manager.store.sqlite", True),
    ("migrations/x.py", "manager.runner", False),
    ("manager/x.py", "migrations", True),
    ("api/x.py", "web.routes", True),
])
def test_the_rule_itself(source, target, allowed):
    """The checker can fail: known-bad edges are refused, known-good ones allowed."""
    src = layer_of(module_name(ROOT / source))
    assert (layer_of(target) in ALLOWED[src]) is allowed
