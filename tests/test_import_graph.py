"""smol_tools depends one way: no import cycles, counting function-local imports too (they only
hide a cycle until the function runs), and every function-local import says why it is local.

The graph is read from the source with `ast`, without importing anything. An import of
`a.b.c` also runs the `__init__` of `a` and `a.b` first, so those count as edges (except the
importer's own packages, which are already initialising when it runs).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smol_tools"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The package module an import of `name` loads (`a.b.func` -> `a.b`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@cache
def _imports(module: str) -> list[tuple[ast.Import | ast.ImportFrom, list[str], bool]]:
    """Each import statement of `module`: the package modules it loads, and whether it sits in a function."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    in_function = {id(node) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for node in ast.walk(fn)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        targets = [t for t in (_resolve(n) for n in names if n.split(".")[0] == "smol_tools") if t]
        found.append((node, targets, id(node) in in_function))
    return found


@cache
def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for _, targets, _ in _imports(module):
            for target in targets:
                parts = target.split(".")
                for k in range(1, len(parts) + 1):
                    step = ".".join(parts[:k])  # the target and the package __init__s above it
                    if step in MODULES and step != module and not module.startswith(step + "."):
                        graph[module].add(step)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _a_path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One concrete loop inside a cycle, for the failure message."""
    members = set(component)
    start = component[0]
    trail, node = [start], start
    while True:
        node = sorted(graph[node] & members)[0]
        if node in trail:
            return " -> ".join(trail[trail.index(node):] + [node])
        trail.append(node)


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 50  # the walk found the package
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_a_path(graph, c) for c in found)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_walk_sees_function_local_and_relative_imports():
    graph = import_graph()
    # cli.py imports each subcommand inside its function; the walk must still see it.
    assert "smol_tools.llamacpp.server" in graph["smol_tools.cli"]
    assert "smol_tools.llamacpp.build" in graph["smol_tools.llamacpp.server"]
    assert "smol_tools.events" in graph["smol_tools.app.transcript"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_function_local_imports_say_why(module):
    """Local only for an optional dependency or start-up time, with a comment saying which:
    on the import's lines or the line above it."""
    lines = MODULES[module].read_text(encoding="utf-8").splitlines()
    silent = []
    for node, _, local in _imports(module):
        if not local:
            continue
        above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
        own = lines[node.lineno - 1: node.end_lineno]
        if not (above.startswith("#") or any("#" in line for line in own)):
            silent.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not silent, (f"{module}: function-local imports need a reason (optional dependency or start-up time) "
                        "in a comment, or belong at the top:\n  " + "\n  ".join(silent))


# DESIGN.md's one-way flow: what each layer must never reach, directly or through others.
# (templates -> chat_format -> backends -> toolcalls -> agent -> app; the wings pipeline, eval
# and llamacpp below the app; events.py and llamacpp/ stand on nothing in the package but the
# GGUF header reader, itself a leaf.)
NEVER_REACHES = {
    "smol_tools.events": ["smol_tools"],
    "smol_tools.gguf_header": ["smol_tools"],
    "smol_tools.llamacpp": ["smol_tools"],
    "smol_tools.toolcalls": ["smol_tools.backends", "smol_tools.agent", "smol_tools.app", "smol_tools.tools",
                             "smol_tools.eval", "smol_tools.pipeline"],
    "smol_tools.backends": ["smol_tools.agent", "smol_tools.chat_session", "smol_tools.app", "smol_tools.tools",
                            "smol_tools.eval", "smol_tools.pipeline"],
    "smol_tools.agent": ["smol_tools.app", "smol_tools.eval", "smol_tools.pipeline"],
    "smol_tools.tools": ["smol_tools.agent", "smol_tools.backends", "smol_tools.app"],
    "smol_tools.eval": ["smol_tools.pipeline", "smol_tools.app"],
}


# Exceptions to the above, each a leaf that stands on nothing in the package (checked above too).
MAY_REACH = {"smol_tools.llamacpp": ("smol_tools.gguf_header",)}


def _inside(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


@pytest.mark.parametrize("layer", sorted(NEVER_REACHES))
def test_layers_depend_one_way(layer):
    graph = import_graph()
    reached: dict[str, str] = {}  # module -> the layer module it was reached from
    todo = [m for m in graph if _inside(m, layer)]
    for start in todo:
        reached.setdefault(start, start)
    while todo:
        module = todo.pop()
        for target in graph[module]:
            if target not in reached:
                reached[target] = reached[module]
                todo.append(target)
    allowed = MAY_REACH.get(layer, ())
    wrong = sorted(f"{reached[m]} reaches {m}" for m in reached
                   if not _inside(m, layer) and m not in allowed
                   and any(_inside(m, banned) for banned in NEVER_REACHES[layer]))
    assert not wrong, f"{layer} must not depend on these:\n  " + "\n  ".join(wrong)
