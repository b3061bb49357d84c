"""The library is layered: its import graph has no cycle, and low-level modules never import high-level ones.

The graph is read from the source with ``ast`` (nothing is imported), so it sees every import a module can
run: at module level, inside functions (the lazy imports), in ``try`` blocks; only imports under
``if TYPE_CHECKING:`` are left out, because they never run.

Edges (``A -> B``: running A can start running B):

* ``import tvrlib.x.y`` and ``from tvrlib.x import y`` where ``y`` is a submodule: ``A -> tvrlib.x.y``;
  ``from tvrlib.x import NAME`` where ``NAME`` is not a submodule: ``A -> tvrlib.x`` (its ``__init__``);
  relative imports are resolved against A's package (``from . import y``, ``from ..z import NAME``);
* importing ``tvrlib.x.y`` also runs the ``__init__`` of every package on the way (``tvrlib.x``) that is
  not already a package of A itself: ``A -> tvrlib.x``. A package's own ``__init__`` is running (or has
  run) when one of its children runs, so a child importing a sibling (``from .base import Video``) adds
  no edge to its ``__init__``, and an ``__init__`` that re-exports its children is not in a cycle with
  them; a child importing a *name* from its package's ``__init__`` (``from . import NAME``) is an edge,
  and a real cycle when that ``__init__`` imports the child.
* ``importlib.import_module("tvrlib.x")`` with a constant name: ``A -> tvrlib.x``.

Module names: ``tvrlib.heads`` is the package's ``__init__.py``, ``tvrlib.heads.xpool`` a module.
"""

from __future__ import annotations

import ast
from collections import defaultdict, deque
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "tvrlib"

# low-level modules: what everything else is built on
LOW = ("errors", "paths", "atomic", "optim", "video", "encoders", "cache", "registry")
# high-level modules: runs, notebooks, results (a prefix: "training" also covers training_* and training/)
HIGH = ("session", "training", "evaluation", "reporting", "notebook", "explore")
# low-level modules must not train or fetch models for a run either (encoders loads, pretrain/models train)
FORBIDDEN_FOR_LOW = HIGH + ("pretrain", "models")


# --------------------------------------------------------------------------------------------- the graph
def module_files(package_dir: Path) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file of the package (``__init__`` -> the package)."""
    root = package_dir.parent
    out = {}
    for f in sorted(package_dir.rglob("*.py")):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:`` bodies."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            t = node.test
            name = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    skip.update(id(n) for n in ast.walk(stmt))
    return skip


def _packages_of(name: str) -> list[str]:
    """``"a.b.c"`` -> ``["a", "a.b"]``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _nearest_module(name: str, modules) -> str | None:
    """``name`` if it is one of ``modules``, else its closest enclosing package that is; None if not ours."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports_of(mod: str, path: Path, modules: dict[str, Path], package_dir: Path) -> dict[str, list[str]]:
    """``{imported module: ["file:line", ...]}`` for one module."""
    own_package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    own_chain = set(_packages_of(mod)) | {mod}
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _type_checking_only(tree)
    out: dict[str, list[str]] = defaultdict(list)

    def add(target: str | None, node: ast.AST) -> None:
        if target is None or target == mod:
            return
        where = f"{path.relative_to(package_dir.parent)}:{node.lineno}"
        out[target].append(where)
        for pkg in _packages_of(target):  # the __init__ files that run on the way to target
            if pkg in modules and pkg not in own_chain:
                out[pkg].append(where + f" (package of {target})")

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_nearest_module(alias.name, modules), node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own_package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if _nearest_module(base, modules) is None:
                continue  # not ours (torch, numpy, ...)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in modules else _nearest_module(base, modules), node)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "import_module")
            )
        ):
            add(_nearest_module(node.args[0].value, modules), node)
    return dict(out)


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, dict[str, list[str]]]:
    """``{importer: {imported: ["file:line", ...]}}`` over the package's own modules."""
    modules = module_files(package_dir)
    return {mod: _imports_of(mod, path, modules, package_dir) for mod, path in modules.items()}


# --------------------------------------------------------------------------------------------- cycles
def strongly_connected(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, {})))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return sorted(out)


def shortest_path(graph, src: str, dst: str, within: set[str] | None = None) -> list[str] | None:
    """A shortest import path ``src -> ... -> dst`` (breadth first), optionally inside ``within``."""
    prev = {src: None}
    queue = deque([src])
    while queue:
        v = queue.popleft()
        for w in sorted(graph.get(v, {})):
            if within is not None and w not in within:
                continue
            if w == dst:
                path = [w, v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return path[::-1]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return None


def describe_path(graph, path: list[str]) -> str:
    return "\n".join(f"    {a} -> {b}   ({graph[a][b][0]})" for a, b in zip(path, path[1:]))


def describe_cycles(graph) -> str:
    lines = []
    for comp in strongly_connected(graph):
        members = set(comp)
        cycle = shortest_path(graph, comp[0], comp[0], within=members)
        lines.append(f"  cycle among {len(comp)} modules: {', '.join(comp)}\n  e.g.:\n" + describe_path(graph, cycle))
    return "\n".join(lines)


def _layer_of(module: str, prefixes: tuple[str, ...]) -> bool:
    first = module.split(".")[1] if "." in module else ""
    return any(first == p or first.startswith(p) for p in prefixes)


# --------------------------------------------------------------------------------------------- the tests
def test_the_library_has_no_import_cycle():
    graph = import_graph()
    report = describe_cycles(graph)
    if report:
        print("import cycles in tvrlib:\n" + report)
    assert not report, "tvrlib has import cycles (A -> B: running A can run B):\n" + report


def test_low_level_modules_never_import_high_level_ones():
    graph = import_graph()
    low = [f"tvrlib.{m}" for m in LOW if f"tvrlib.{m}" in graph]
    assert "tvrlib.encoders" in low and "tvrlib.cache" in low
    problems = []
    for src in low:
        for dst in sorted(graph):
            if _layer_of(dst, FORBIDDEN_FOR_LOW):
                path = shortest_path(graph, src, dst)
                if path:
                    problems.append(f"  {src} reaches {dst}:\n" + describe_path(graph, path))
    assert not problems, "low-level modules import high-level ones (directly or through others):\n" + "\n".join(
        problems
    )


def test_the_graph_sees_the_imports_it_should():
    """Guards the parser: a few edges that exist in tvrlib, and a few that must not."""
    graph = import_graph()
    assert "tvrlib.encoders" in graph["tvrlib.pretrain"]  # module level, relative
    assert "tvrlib.pretrain" in graph["tvrlib.models"]  # function level
    assert "tvrlib.datasets.files" in graph["tvrlib.datasets.msrvtt"]
    assert "tvrlib.datasets.builtin" in graph["tvrlib.datasets"]  # from . import builtin
    assert "tvrlib.datasets" not in graph["tvrlib.datasets.msrvtt"]  # a child's sibling import
    assert "tvrlib.pretrain" not in graph["tvrlib.encoders"]
    assert not {"tvrlib.datasets.msrvtt", "tvrlib.datasets.files"} & set(graph["tvrlib.datasets.registry"])


def test_graph_rules_on_a_small_package(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from .a import A\n",
        "a.py": "A = 1\ndef f():\n    from .sub import helper\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\nimport pkg.a\n",
        "c.py": "from . import a, B_NAME\nimport importlib\nimportlib.import_module('pkg.b')\n",
        "sub/__init__.py": "from . import helper\nfrom .. import c\n",
        "sub/helper.py": "from .other import X\nfrom ..a import A\nfrom .. import NAME\n",
        "sub/other.py": "X = 1\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    g = import_graph(pkg)
    assert set(g["pkg"]) == {"pkg.a"}
    assert set(g["pkg.a"]) == {"pkg.sub.helper", "pkg.sub"}  # function-level import runs sub/__init__ too
    assert set(g["pkg.b"]) == {"pkg.a"}  # the TYPE_CHECKING import is left out
    assert set(g["pkg.c"]) == {"pkg.a", "pkg", "pkg.b"}  # a submodule, a name of pkg/__init__, import_module
    assert set(g["pkg.sub"]) == {"pkg.sub.helper", "pkg.c"}
    assert set(g["pkg.sub.helper"]) == {"pkg.sub.other", "pkg.a", "pkg"}  # no edge to its own pkg.sub
    cycles = strongly_connected(g)
    # pkg -> a -> sub -> c -> pkg, c -> b -> a, sub -> helper -> pkg: one component; sub.other is outside it
    assert cycles == [["pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.helper"]]
    report = describe_cycles(g)  # the members, then one shortest cycle with the lines that make it
    assert "cycle among 6 modules: pkg, pkg.a, pkg.b, pkg.c, pkg.sub, pkg.sub.helper" in report
    assert "pkg.sub.helper -> pkg   (pkg/sub/helper.py:3)" in report
