"""The house rules, checked on the source: the layers, the dependency rule, no cycles, small modules.

    server/            the MCP adapter: the only package that imports mcp.server
    tools/<family>.py  the tools (plain functions)
    tools/toolkit/     declaring, running and rendering a tool call
    tools/runtime.py   everything opened once per process
    tools/providers/   one folder per provider, the registry, routing (no MCP at all)
    tools/core/        settings, errors, storage, jobs, images (no MCP server, no providers)

Every import statement counts, also one inside a function: a lazy import still ties two modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "tools")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports (a `from package import module` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in out if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def _all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_import_cycle_anywhere() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            # A package's __init__ importing its own submodule is the package's public face, and a
            # submodule importing its package's __init__ is how Python loads it anyway: not a cycle.
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_dependency_rule() -> None:
    for name, path in _modules().items():
        imports = _all_imports(path)
        if name.startswith("tools"):
            assert not any(i == "server" or i.startswith("server.") for i in imports), f"{name} imports server"
            assert not any(i.startswith("mcp.server") for i in imports), f"{name} imports mcp.server"
        if name.startswith(("tools.providers", "tools.core")):
            assert not any(i == "mcp" or i.startswith(("mcp.", "mcp_types")) for i in imports), f"{name} imports MCP"
        if name.startswith("tools.core"):
            assert not any(i.startswith(("tools.providers", "tools.toolkit", "tools.runtime")) for i in imports), (
                f"{name} (core) imports a layer above it"
            )


def test_no_module_over_400_lines() -> None:
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split along a real seam): {long}"
