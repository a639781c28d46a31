"""How the installed packages are put together: they import each other without circles
(every import counts, the ones inside a function and under ``TYPE_CHECKING`` too, since a
circle hidden by a late import is still two modules that each need the other), and only the
store (``vitbn_sweep/store/``) makes the paths of a sweep directory's files."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

from tests.conftest import REPO
from vitbn_sweep import store

PACKAGES = ("vitbn_sweep", "analysis", "hydra_plugins")


def _modules() -> dict[str, Path]:
    """Every module of the installed packages by its dotted name (a package by its own)."""
    found = {}
    for top in PACKAGES:
        for path in (REPO / top).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project's modules that ``path`` imports anywhere in its text."""

    def known(name: str) -> str | None:  # ``a.b.c`` -> the longest prefix that is a module
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return {m for m in map(known, names) if m is not None}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: _imports(path, modules) - {name}
        for name, path in modules.items()
        if "__pycache__" not in path.parts
    }


def test_the_import_graph_is_read_whole() -> None:
    graph = import_graph()
    assert {"vitbn_sweep.store", "analysis.resolve", "analysis.render"} <= set(graph)
    assert "vitbn_sweep.store" in graph["vitbn_sweep.store.status"]  # a package counts
    assert "analysis.render" in graph["analysis.figures"]  # from-imports count


def test_no_import_circles() -> None:
    try:
        order = list(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as exc:
        circle = " -> ".join(reversed(exc.args[1]))
        raise AssertionError(f"an import circle: {circle}") from None
    assert len(order) == len(import_graph())


SWEEP_FILES = {  # the store's layout: its names, and the names as written
    name: getattr(store, name)
    for name in dir(store)
    if name.endswith("_FILE")
    or name in ("HYDRA_CONFIG", "HYDRA_DIR", "JOB_LOG", "WANDB_UNREACHABLE")
}


def _paths_made(path: Path) -> list[str]:
    """``<line>: <name>`` for each ``something / <a file of the sweep directory>`` in ``path``."""
    values = {str(v) for v in SWEEP_FILES.values()}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = node.right
            name = getattr(right, "id", None) or getattr(right, "attr", None)
            value = right.value if isinstance(right, ast.Constant) else None
            if name in SWEEP_FILES or value in values:
                found.append(f"{node.lineno}: {name or value}")
    return found


def test_the_sweep_directory_files_are_the_stores_alone() -> None:
    assert {"RESULT_FILE", "METRICS_FILE", "CLAIM_FILE", "MULTIRUN_FILE"} <= set(SWEEP_FILES)
    assert _paths_made(REPO / "vitbn_sweep/store/status.py")  # the scan sees the store's own
    outside = {
        str(path.relative_to(REPO)): made
        for path in _modules().values()
        if "store" not in path.relative_to(REPO).parts[:2] and (made := _paths_made(path))
    }
    assert outside == {}, f"ask vitbn_sweep.store instead: {outside}"
