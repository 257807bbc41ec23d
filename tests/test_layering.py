"""Import directions follow the data flow of ARCHITECTURE.md, checked by parsing every file.

specs -> initializers -> models -> probe -> train -> results -> report / experiments -> cli.
``results`` and ``report`` hold plain records and never import torch, so a report can be
rebuilt from a results store anywhere. ``probe`` and ``train`` write those plain records, so
they may import ``results`` (the records and the store), never the other way round.
``integrations`` (adapters of watch for TensorBoard, Lightning, the HF Trainer) sits beside
the package: it may import probe and below, and nothing in initlab imports it, so that the
optional libraries it needs are never pulled in by initlab itself.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "initlab"
BASE = {"errors", "specs", "registry", "atomic"}
EVERYTHING = {
    "errors", "specs", "registry", "atomic", "initializers", "data", "models", "probe", "train",
    "results", "report", "experiments", "cli", "demo", "ROOT",
}  # fmt: skip
# What each part of the package may import from initlab ("ROOT" = the top-level package,
# whose __init__ re-exports the whole library, so importing it from a layer hides a cycle).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "atomic": set(),
    "specs": {"errors"},
    "registry": {"errors", "specs"},
    "initializers": BASE,
    "data": BASE,
    "models": BASE | {"initializers"},
    "probe": BASE | {"initializers", "models", "results"},
    # not in EVERYTHING: no other part may import it
    "integrations": BASE | {"initializers", "models", "probe", "results"},
    "train": BASE | {"initializers", "models", "probe", "data", "results"},
    "results": BASE,
    "report": BASE | {"results"},
    "experiments": EVERYTHING - {"cli", "demo"},
    "cli": EVERYTHING - {"demo"},
    "demo": EVERYTHING,
    "__main__": {"cli"},
    "__init__": EVERYTHING - {"cli", "demo"},
}
NO_TORCH = ("results", "report")
TORCH_MODULES = ("torch", "torchvision", "functorch", "safetensors.torch")


def _part(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ["initlab", *path.relative_to(SRC).parent.parts]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from initlab import report` imports the subpackage, not only the root.
            if module == "initlab":
                found += [(node.lineno, f"initlab.{a.name}") for a in node.names]
    return found


def _target(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "initlab":
        return None
    return parts[1] if len(parts) > 1 else "ROOT"


FILES = sorted(SRC.rglob("*.py"))


def test_every_part_of_the_package_has_a_rule():
    unknown = sorted({_part(p) for p in FILES} - set(ALLOWED))
    assert not unknown, f"add {unknown} to ALLOWED here and to ARCHITECTURE.md"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_data_flow(path):
    part = _part(path)
    allowed = ALLOWED.get(part, set()) | {part}
    bad = []
    for line, module in _imports(path):
        target = _target(module)
        if target is not None and target not in allowed:
            bad.append(f"line {line}: {module}")
        if part in NO_TORCH and module.startswith(TORCH_MODULES):
            bad.append(f"line {line}: {module} (results/report must never import torch)")
    assert not bad, f"{path.relative_to(SRC)} imports against the data flow: {bad}"


def test_nothing_in_the_core_imports_the_integrations():
    importers = sorted(
        f"{path.relative_to(SRC)}:{line}"
        for path in FILES
        if _part(path) != "integrations"
        for line, module in _imports(path)
        if _target(module) == "integrations"
    )
    assert not importers, f"initlab.integrations is imported from the core: {importers}"


def test_the_checker_catches_violations(tmp_path):
    """The parser sees plain, from, relative and function-level imports."""
    fake = SRC / "report" / "_layering_probe_do_not_commit.py"
    src = "def f():\n    import torch\n    from ..train import trainer\n    from initlab import models\n"
    fake.write_text(src)
    try:
        got = [m for _, m in _imports(fake)]
    finally:
        fake.unlink()
    assert got == ["torch", "initlab.train", "initlab", "initlab.models"]


_NO_TORCH_SCRIPT = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
from initlab.results.store import Store
from initlab.report.render import render_report
from initlab.results.records import RunConfig, RunRecord, MetricSeries
with Store.open(sys.argv[1]) as s:
    cfg = RunConfig("digits", "mlp:8", "relu", "he_normal", 0, "sgd", 0.1, 8, 3)
    s.put_run(RunRecord(cfg, test_accuracy=0.5, metrics={"train_loss": MetricSeries("train_loss", [1, 2, 3], [2.0, 1.5, 1.0])}))
print(render_report(sys.argv[1]))
"""


def test_report_builds_with_torch_blocked(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TORCH_SCRIPT, str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "report.html").is_file()
