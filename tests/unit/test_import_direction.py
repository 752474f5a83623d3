"""Dependencies point one way: core <- protocol <- engine, alerts, agent <- server (kernels: beside protocol).

Read from the source with ``ast`` (nothing is imported, so it takes well under a second): every
``import``, ``from ... import``, relative import, lazy import inside a function, import under
``TYPE_CHECKING`` and ``importlib.import_module("...")`` with a literal name counts. A part may import
itself and the parts on lower layers, never a part on its own layer or above.

Inside a part, no two modules may import each other (directly or round a longer loop): such a loop
means one of them holds what both need, and it should move down.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# folder -> import name; the same mapping as setup.py
FOLDERS = {
    "core": "yaguar",
    "protocol": "yaguar.protocol",
    "kernels": "yaguar.kernels",
    "agent": "yaguar.agent",
    "engine": "yaguar.engine",
    "alerts": "yaguar.alerts",
    "server": "yaguar.server",
}
LAYER = {"core": 0, "protocol": 1, "kernels": 1, "agent": 2, "engine": 2, "alerts": 2, "server": 3}


@dataclass(frozen=True)
class Import:
    source: Path
    line: int
    importer: str  # module name
    target: str  # module (or module.attribute) name


def part_of(module: str) -> str | None:
    """The part a ``yaguar...`` module belongs to; None for a module outside Yaguar."""
    pieces = module.split(".")
    if pieces[0] != "yaguar":
        return None
    if len(pieces) > 1:
        for folder, name in FOLDERS.items():
            if folder != "core" and pieces[1] == name.split(".")[1]:
                return folder
    return "core"


def module_name(path: Path) -> str:
    folder = path.relative_to(ROOT).parts[0]
    rest = path.relative_to(ROOT / folder).with_suffix("").parts
    if rest[-1] == "__init__":
        rest = rest[:-1]
    return ".".join((FOLDERS[folder], *rest))


def sources() -> Iterator[Path]:
    for folder in FOLDERS:
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            # core/ is the package root: the other parts are folders beside it, not inside it
            if "__pycache__" not in path.parts:
                yield path


def imports_of(path: Path, text: str | None = None) -> Iterator[Import]:
    """The imports in the module at ``path`` (its source read from disk unless given as ``text``)."""
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    tree = ast.parse(path.read_text() if text is None else text, filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, importer, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                # ``from yaguar import kernels`` imports the part kernels, not the root
                yield Import(path, node.lineno, importer, f"{module}.{alias.name}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(path, node.lineno, importer, node.args[0].value)


def all_imports() -> list[Import]:
    return [found for path in sources() for found in imports_of(path)]


def upward(found: Import) -> bool:
    source, target = part_of(found.importer), part_of(found.target)
    if source is None or target is None or source == target:
        return False
    return LAYER[target] >= LAYER[source]


def test_every_part_imports_only_lower_layers() -> None:
    wrong = [
        f"{found.source.relative_to(ROOT)}:{found.line}: {part_of(found.importer)} imports "
        f"{found.target} ({part_of(found.target)}, layer {LAYER[part_of(found.target) or 'core']})"
        for found in all_imports()
        if upward(found)
    ]
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def known_modules() -> set[str]:
    return {module_name(path) for path in sources()}


def module_graph() -> dict[str, set[str]]:
    modules = known_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for found in all_imports():
        target = found.target
        # ``from pkg import name``: the module pkg.name when it exists, else pkg itself
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != found.importer and not found.importer.startswith(f"{target}."):
            graph[found.importer].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_two_modules_import_each_other() -> None:
    loops = cycles(module_graph())
    assert not loops, "modules that import each other:\n" + "\n".join(" <-> ".join(c) for c in loops)


@pytest.mark.parametrize(
    ("importer", "target", "is_upward"),
    [
        ("yaguar.alerts.outbox", "yaguar.server.context.StationContext", True),  # up
        ("yaguar.engine.analyser", "yaguar.alerts.models.Alert", True),  # sideways
        ("yaguar.storage.models", "yaguar.engine.taxonomy", True),  # core may import nothing
        ("yaguar.server.station", "yaguar.engine.analyser.Analyser", False),
        ("yaguar.engine.backends.opencl.runtime", "yaguar.kernels", False),
        ("yaguar.alerts.models", "yaguar.storage.base.Base", False),
        ("yaguar.engine.detector", "numpy", False),
    ],
)
def test_the_rule_itself(importer: str, target: str, is_upward: bool) -> None:
    assert upward(Import(ROOT, 1, importer, target)) is is_upward


def test_the_checks_see_relative_lazy_and_string_imports() -> None:
    probe = ROOT / "alerts" / "channels" / "probe.py"  # never written: only its name is used
    code = (
        "from ...server import context\n"
        "def later():\n    from yaguar.engine import analyser\n"
        "import importlib\nimportlib.import_module('yaguar.server.station')\n"
    )
    wrong = {found.target for found in imports_of(probe, code) if upward(found)}
    assert wrong == {"yaguar.server.context", "yaguar.engine.analyser", "yaguar.server.station"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
