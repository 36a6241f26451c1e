"""Architecture rules (DESIGN §2, §8): imports only downward, `hwbench` never imports `al`, small modules.

The import graph is built from the source with `ast` (every `import` / `from ... import`, at module
level and inside functions), so a lazy import that closes a circle is caught as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hwbench", "al")
MAX_LINES = 400
# Modules allowed over MAX_LINES, each with its reason. Remove an entry once its module is split.
OVERSIZE_ALLOWED = {
    "hwbench/ondevice.py": "self-contained on-device scorer: one file copied to the device (Python 3.6+)",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """Modules of `known` that `path` (module `name`) imports anywhere in its body."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the module pkg.sub when it is one, else a name of pkg
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import al.x.y` of a non-module attribute: its nearest module
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    known = set(files)
    return {name: imported_modules(path, name, known) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (iterative DFS, white/grey/black)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def test_graph_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from p import b\n    from .c import x\n")
    known = {"p", "p.a", "p.b", "p.c"}
    global ROOT
    old, ROOT = ROOT, tmp_path
    try:
        assert imported_modules(pkg / "a.py", "p.a", known) == {"p.b", "p.c"}
    finally:
        ROOT = old
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_hwbench_never_imports_al():
    bad = sorted(f"{m} imports {t}" for m, ts in import_graph().items() if m.split(".")[0] == "hwbench"
                 for t in ts if t.split(".")[0] == "al")
    assert not bad, bad
    # also names that do not resolve to a module file (e.g. `import al`)
    for path in (ROOT / "hwbench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            assert not any(m == "al" or m.startswith("al.") for m in mods), f"{path} imports al"


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_module_over_the_size_limit(pkg):
    over = {}
    for path in sorted((ROOT / pkg).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES and rel not in OVERSIZE_ALLOWED:
            over[rel] = n
    assert not over, f"modules over {MAX_LINES} lines (split them): {over}"
