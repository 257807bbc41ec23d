"""Import directions of initlab, checked by parsing every file (docs/ARCHITECTURE.md draws them).

Every part of the package (a subpackage or a top-level module) has an explicit list of the
parts it may import (ALLOWED), and every allowed arrow points down the layers (LAYERS), so
the parts form no cycle. Bottom to top:

    0  errors, atomic                  no initlab imports
    1  specs                           the spec grammar
    2  registry                        the one registry mechanism
    3  activations                     the activation table every layer above reads
    3  initializers, data, results     schemes and init_; datasets; plain records and the store
    4  models, report                  model specs; HTML pages from a store alone
    5  probe                           statistics, watch, prediction, diagnosis
    6  train, integrations             the stacked trainer; watch adapters (imported by nothing)
    7  experiments                     configs, compare, presets, coord-check, sweeps
    8  cli                             click commands
    9  demo                            ``make demo``
    10 __main__, __init__              entry points (the root re-exports lazily, PEP 562)

``results`` and ``report`` hold plain records and never import torch, so a report can be
rebuilt from a results store anywhere; ``probe`` and ``train`` write those records, so they
import ``results``, never the other way round. Inside a part the module-level imports form
no cycle either. An import inside a function or class is allowed only with a comment that
says why (``# lazy: <why>``) on its line, or on the comment lines right above its block of
imports: the usual reasons are an optional library, keeping torch out of a part that loads
without it (the CLI, so that ``initlab --help`` stays fast), or a cycle inside a part.
Imports at module level below other code are ruff's E402, which the lint runs.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "initlab"

# Bottom first: a part may import only parts of lower layers.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "atomic", "runspec"),
    ("specs",),
    ("registry",),
    ("activations",),
    ("theory",),
    ("initializers", "data", "results"),
    ("models", "report", "init"),
    ("probe",),
    ("train", "integrations"),
    ("experiments",),
    ("cli",),
    ("demo",),
    ("__main__", "__init__"),
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}

# What each part imports from initlab: exactly the arrows the code has (an unused one fails
# test_every_allowed_arrow_is_used, so this table and docs/ARCHITECTURE.md stay the truth).
# "ROOT" (the package itself, `import initlab`) is allowed nowhere: its __init__ re-exports the
# whole library, so importing it from a part hides the arrows.
# fmt: off
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "atomic": set(),
    # the frozen run and stack specs: torch-free, at the bottom, consumed by train/results
    "runspec": set(),
    "specs": {"errors"},
    "registry": {"errors", "specs"},
    # the activation table: gains, tracing, models, the probe and the trainer read it
    "activations": {"errors", "specs", "registry"},
    # mean-field theory of signal propagation: pure float64 numerics (numpy, torch for f, f')
    "theory": {"errors", "activations"},
    "initializers": {"errors", "registry", "activations", "theory"},
    "data": {"errors", "atomic", "specs", "registry"},
    "results": {"errors", "atomic", "runspec"},
    "models": {"errors", "specs", "activations"},
    # initlab.init: tensor-level functions (like torch.nn.init) over the initializer registry
    "init": {"errors", "activations", "initializers"},
    "report": {"atomic", "results"},
    # report: Watch.plot / Watch.page draw a watch history (lazily, on request)
    "probe": {"errors", "activations", "initializers", "models", "results", "report", "theory"},
    "train": {"errors", "atomic", "runspec", "specs", "registry", "activations", "initializers", "data",
              "results", "models"},
    # watch adapters for TensorBoard, Lightning and the HF Trainer: nothing imports them
    "integrations": {"probe", "results"},
    "experiments": {
        "errors", "atomic", "runspec", "specs", "registry", "activations", "initializers", "data",
        "results", "models", "report", "probe", "train",
        "theory",
    },
    # thin commands: parse, call the library (experiments, or probe/report/... directly), print
    # (train: probe --device is checked by the one device check)
    "cli": {
        "errors", "specs", "initializers", "data", "results", "models", "report", "probe",
        "train", "experiments", "theory",
    },
    "demo": {"results", "report", "experiments", "cli"},
    "__main__": {"cli"},
    # the eager imports are errors only; the rest is imported on first use (_EXPORTS)
    "__init__": {"errors", "initializers", "init", "probe", "experiments"},
}
# fmt: on
NO_TORCH = ("results", "report")  # never import torch, not even inside a function
TORCH_MODULES = ("torch", "torchvision", "functorch", "safetensors.torch")
# parts that load without torch (checked by importing every module with torch blocked)
TORCH_FREE_AT_IMPORT = ("__init__", "errors", "atomic", "runspec", "specs", "registry", "results",
                        "report", "cli")  # fmt: skip
LAZY = re.compile(r"#\s*lazy:\s*\w")  # the comment that says why an import is not at the top

FILES = sorted(SRC.rglob("*.py"))


@dataclass(frozen=True)
class Import:
    line: int
    module: str  # absolute, relative imports resolved
    nested: bool  # inside a function or class body
    type_only: bool  # under `if TYPE_CHECKING:`


def _module_name(path: Path, root: Path = SRC) -> str:
    parts = ["initlab", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p) for p in FILES}


def _part(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _target(module: str) -> str | None:
    """The part an absolute module name belongs to (None outside initlab)."""
    parts = module.split(".")
    if parts[0] != "initlab":
        return None
    return parts[1] if len(parts) > 1 else "ROOT"


def _parse(source: str, module: str, is_package: bool, filename: str = "<src>") -> list[Import]:
    """Every import of a module's source: plain, from, relative, nested, TYPE_CHECKING, and
    ``importlib.import_module("...")`` with a literal name; ``from pkg import sub`` names the
    submodule when one exists (``from initlab import report`` is ``initlab.report``)."""
    tree = ast.parse(source, filename=filename)
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[Import] = []

    def visit(node: ast.AST, nested: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
            )
            typed = type_only or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            )
            if isinstance(child, ast.Import):
                found.extend(Import(child.lineno, a.name, nested, type_only) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                name = child.module or ""
                if child.level:
                    base = package[: len(package) - child.level + 1]
                    name = ".".join(base + ([child.module] if child.module else []))
                subs = [f"{name}.{a.name}" for a in child.names]
                if name.startswith("initlab") and any(s in MODULES for s in subs):
                    found.extend(Import(child.lineno, s, nested, type_only) for s in subs
                                 if s in MODULES)  # fmt: skip
                    if all(s in MODULES for s in subs):
                        continue
                found.append(Import(child.lineno, name, nested, type_only))
            elif (
                isinstance(child, ast.Call)
                and isinstance(child.func, (ast.Attribute, ast.Name))
                and getattr(child.func, "attr", getattr(child.func, "id", "")) == "import_module"
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and isinstance(child.args[0].value, str)
            ):
                found.append(Import(child.lineno, child.args[0].value, nested, type_only))
            visit(child, inner, typed)

    visit(tree, False, False)
    return found


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def _imports(path: Path) -> list[Import]:
    """The imports of one file of the package."""
    source = path.read_text(encoding="utf-8")
    found = _parse(source, _module_name(path), path.name == "__init__.py", str(path))
    if path == SRC / "__init__.py":  # the lazy re-exports: public name -> defining module
        exports = next(
            n.value for n in ast.parse(source).body
            if isinstance(n, (ast.Assign, ast.AnnAssign)) and isinstance(n.value, ast.Dict)
            and "_EXPORTS" in [getattr(t, "id", "") for t in _targets(n)]
        )  # fmt: skip
        found += [Import(v.lineno, v.value, True, False) for v in exports.values]
    return found


PART_OF = {_module_name(p): _part(p) for p in FILES}


def test_every_part_of_the_package_has_a_rule():
    parts = {_part(p) for p in FILES}
    assert parts == set(ALLOWED), (
        f"parts without a rule: {sorted(parts - set(ALLOWED))}, rules without a part: "
        f"{sorted(set(ALLOWED) - parts)}: update ALLOWED and LAYERS here and docs/ARCHITECTURE.md"
    )
    assert set(RANK) == set(ALLOWED)


def test_every_allowed_arrow_points_down_the_layers():
    """So the parts form no cycle: a part sits above everything it may import."""
    up = sorted(f"{a} -> {b}" for a, targets in ALLOWED.items() for b in targets
                if RANK[b] >= RANK[a])  # fmt: skip
    assert not up, f"arrows that do not point down the layers: {up}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_layers(path):
    part = _part(path)
    allowed = ALLOWED[part] | {part}
    bad = []
    for imp in _imports(path):
        target = _target(imp.module)
        if target is not None and target not in allowed:
            bad.append(f"line {imp.line}: {imp.module}")
        if part in NO_TORCH and imp.module.startswith(TORCH_MODULES):
            bad.append(f"line {imp.line}: {imp.module} (results/report must never import torch)")
    assert not bad, f"{path.relative_to(SRC)} imports against the layers: {bad}"


def test_every_allowed_arrow_is_used():
    used: dict[str, set[str]] = {part: set() for part in ALLOWED}
    for path in FILES:
        for imp in _imports(path):
            target = _target(imp.module)
            if target is not None and target != _part(path):
                used[_part(path)].add(target)
    stale = sorted(f"{a} -> {b}" for a in ALLOWED for b in ALLOWED[a] - used[a])
    assert not stale, f"allowed but no longer imported (drop them here and in the docs): {stale}"


def test_nothing_in_the_core_imports_the_integrations():
    importers = sorted(
        f"{path.relative_to(SRC)}:{imp.line}"
        for path in FILES
        if _part(path) != "integrations"
        for imp in _imports(path)
        if _target(imp.module) == "integrations"
    )
    assert not importers, f"initlab.integrations is imported from the core: {importers}"


def _module_graph(lazy: bool = False) -> dict[str, set[str]]:
    """module -> modules of the same part it imports when it is loaded (module level, not
    under TYPE_CHECKING; with ``lazy`` also inside functions). Importing ``a.b.c`` runs
    ``a.b`` first; that is not an arrow."""
    graph = {}
    for path in FILES:
        name = _module_name(path)
        graph[name] = {
            imp.module
            for imp in _imports(path)
            if (lazy or not imp.nested) and not imp.type_only and imp.module in MODULES
            and imp.module != name and PART_OF[imp.module] == PART_OF[name]
        }  # fmt: skip
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycle_inside_a_part():
    cycles = _cycles(_module_graph())
    assert not cycles, f"modules of one part that import each other in a circle: {cycles}"


# Lazy imports (inside a function) that close a cycle inside a part: the module-level graph is
# acyclic, but the two modules still depend on each other.
LAZY_CYCLE_ARROWS: set[tuple[str, str]] = set()  # none left


def test_lazy_imports_close_no_other_cycle_inside_a_part():
    graph = _module_graph(lazy=True)
    stale = sorted(a for a in LAZY_CYCLE_ARROWS if a[1] not in graph.get(a[0], ()))
    assert not stale, f"drop these from LAZY_CYCLE_ARROWS (and the docs): {stale}"
    for source, target in LAZY_CYCLE_ARROWS:
        graph[source].discard(target)
    cycles = _cycles(graph)
    assert not cycles, f"lazy imports that close a cycle inside a part: {cycles}"


def _unexplained_lazy_imports(source: str) -> list[int]:
    """Lines of imports inside a function or class without a ``# lazy: <why>`` comment on a
    line of their block of consecutive imports or on the comment lines right above it."""
    lines = source.splitlines()
    bad: set[int] = set()

    def check(body: list[ast.stmt]) -> None:
        runs, run = [], []
        for stmt in body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                run.append(stmt)
            elif run:
                runs, run = [*runs, run], []
        for block in [*runs, run] if run else runs:
            first = block[0].lineno - 1  # index of the block's first line
            while first > 0 and lines[first - 1].strip().startswith("#"):
                first -= 1
            if not any(LAZY.search(line) for line in lines[first : block[-1].end_lineno]):
                bad.update(stmt.lineno for stmt in block)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for inner in ast.walk(node):  # the def's body and every block nested in it
                for field in ("body", "orelse", "finalbody"):
                    body = getattr(inner, field, None)
                    if isinstance(body, list):
                        check(body)
    return sorted(bad)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_sit_at_module_top_unless_a_comment_says_why(path):
    bad = _unexplained_lazy_imports(path.read_text(encoding="utf-8"))
    assert not bad, (
        f"{path.relative_to(SRC)}: imports inside a function or class at lines {bad}: move them "
        "to the top of the module, or say why on the line: `# lazy: optional dependency`, "
        "`# lazy: keeps torch out of the CLI`, `# lazy: cycle, X imports this module`"
    )


def test_the_checkers_catch_violations(tmp_path):
    """The parser sees plain, from, relative, nested and TYPE_CHECKING imports; the cycle and
    the lazy-import checks fire."""
    fake = tmp_path / "report" / "_layering_probe.py"
    fake.parent.mkdir()
    fake.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from initlab.train.trainer import Member\n"
        "def f():\n    import torch\n    from ..train import trainer\n    from initlab import models\n"
        "    x = 1\n    from initlab import init_  # lazy: the root, on purpose\n"
    )  # fmt: skip
    got = _parse(fake.read_text(), _module_name(fake, tmp_path), False)
    assert [(i.module, i.nested, i.type_only) for i in got] == [
        ("typing", False, False),
        ("initlab.train.trainer", False, True),
        ("torch", True, False),
        ("initlab.train.trainer", True, False),
        ("initlab.models", True, False),
        ("initlab", True, False),
    ]
    assert [_target(i.module) for i in got[2:]] == [None, "train", "models", "ROOT"]
    assert _unexplained_lazy_imports(fake.read_text()) == [5, 6, 7]
    explained = "def f():\n    # lazy: optional dependency\n    import a\n\n    import b\n"
    assert _unexplained_lazy_imports(explained) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


_TORCH_FREE_SCRIPT = """
import importlib, importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
light, report = sys.argv[1].split(","), sys.argv[2].split(",")
for name in light:
    importlib.import_module(name)
assert "matplotlib" not in sys.modules, "the CLI loads matplotlib before a command runs"
for name in report:
    importlib.import_module(name)
"""


def test_the_torch_free_parts_load_without_torch():
    """The root, the base modules, results, report and the CLI load without torch; the CLI
    also without matplotlib (its commands import what they need: ``initlab --help`` is fast)."""
    names = sorted(m for m in MODULES if PART_OF[m] in TORCH_FREE_AT_IMPORT)
    report = [m for m in names if PART_OF[m] == "report"]
    light = [m for m in names if m not in report]
    proc = subprocess.run(
        [sys.executable, "-c", _TORCH_FREE_SCRIPT, ",".join(light), ",".join(report)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


_NO_TORCH_SCRIPT = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
from initlab.results.store import Store
from initlab.report.render import render_report
from initlab.results.records import RunRecord, MetricSeries
from initlab.runspec import RunSpec
with Store.open(sys.argv[1]) as s:
    cfg = RunSpec("digits", "mlp:8", "relu", "he_normal", 0, "sgd", 0.1, 8, 3)
    s.put_run(RunRecord(cfg, test_accuracy=0.5, metrics={"train_loss": MetricSeries("train_loss", [1, 2, 3], [2.0, 1.5, 1.0])}))
print(render_report(sys.argv[1]))
"""


def test_report_builds_with_torch_blocked(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TORCH_SCRIPT, str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "report.html").is_file()
