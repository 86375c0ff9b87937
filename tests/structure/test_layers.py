"""The package's shape, checked on its source: the rooms stack as docs/ARCHITECTURE.md draws
them, no import cycle between modules, and no module touches another's private names."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from conftest import ROOT

# each room (the folder clonebench.<room> maps to) and the rooms it may import
ROOMS = {
    "core": set(),
    "store": {"core"},
    "instruments": {"core", "store"},
    "curate": {"core", "store", "instruments"},
    "model": {"core", "store", "instruments"},
    "evaluate": {"core", "store", "instruments", "model"},
    "serve": {"core", "store", "instruments", "model"},
    "reports": {"core", "store", "instruments", "curate", "evaluate"},
    "review": {"core", "store", "instruments", "curate"},
    "testing": {"core", "store", "instruments", "curate"},
}
COMMANDS = "clonebench"   # the command room stands on all of them; nothing imports it


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the installed package."""
    out = {}
    for room in [*ROOMS, COMMANDS]:
        base = ROOT / room
        for path in sorted(base.rglob("*.py")):
            parts = [room, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(["clonebench", *parts]) if room != COMMANDS else ".".join(parts)
            out[name] = path
    return out


MODULES = _modules()


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else COMMANDS


def _run_time_nodes(tree: ast.AST):
    """Every node, except what sits under `if TYPE_CHECKING:` (imported only by type checkers)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        yield node
        yield from _run_time_nodes(node)


def _imports(module: str, tree: ast.Module) -> set[str]:
    """The clonebench modules `module` imports anywhere in it (names resolved to modules where
    they are one): an import deferred into a function is an import all the same."""
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in _run_time_nodes(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {m for m in found if m in MODULES}


def _trees() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def test_each_room_imports_only_the_rooms_below_it():
    wrong = []
    for module, tree in _trees().items():
        room = _room(module)
        for target in _imports(module, tree):
            other = _room(target)
            if other == room:
                continue
            if other == COMMANDS or (room != COMMANDS and other not in ROOMS[room]):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layering (docs/ARCHITECTURE.md):\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    graph = {m: _imports(m, tree) for m, tree in _trees().items()}
    graph = {m: {t for t in targets if t != m and not m.startswith(t + ".")} for m, targets in graph.items()}
    state: dict[str, int] = defaultdict(int)   # 0 new, 1 on the path, 2 done
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state[t] == 1:
                cycles.append(" -> ".join(path[path.index(t):] + [m, t]) if t in path else f"{m} -> {t}")
            elif state[t] == 0:
                visit(t, path + [m])
        state[m] = 2

    for m in sorted(graph):
        if state[m] == 0:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def _defined_private_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_no_module_reaches_into_another_modules_private_names():
    """`x._name` is read only in the module that defines `_name`, and no `_name` is imported."""
    third_party = {"whisper._MODELS", "whisper._ALIGNMENT_HEADS"}   # openai-whisper keeps these tables private
    wrong = []
    for module, tree in _trees().items():
        own = _defined_private_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("clonebench")):
                wrong += [f"{module}:{node.lineno} imports {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
            elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                  and node.attr not in own and ast.unparse(node) not in third_party
                  and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                wrong.append(f"{module}:{node.lineno} reads {ast.unparse(node)}")
    assert not wrong, "private names used outside their module:\n" + "\n".join(sorted(wrong))


def test_package_data_is_found_outside_the_checkout(tmp_path):
    """Templates, stylesheets and built-in eval sets load by the package's own name: run from
    another folder, where the checkout's top-level rooms are not importable, they still load.
    (They were once looked up as `reports` and `evaluate`, which only worked from the checkout.)"""
    import subprocess
    import sys

    code = ("from clonebench.reports.html import environment, render\n"
            "environment().get_template('speaker.html.j2')\n"
            "from clonebench.evaluate.items import builtin_set\n"
            "assert len(builtin_set('en')) > 10\n"
            "import importlib.util; assert importlib.util.find_spec('reports') is None\n")
    page = tmp_path / "page.html"
    code += f"render('base.html.j2', {str(page)!r}, title='t')\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1:]
