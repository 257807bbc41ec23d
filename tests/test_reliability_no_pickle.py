"""No pickle is ever loaded: checkpoints are safetensors, run folders hold no code.

A static scan of the package source (by AST, so comments and docstrings do not count) and a
behavioural check: a hostile pickle where a checkpoint should be is refused without running.
"""

from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import pytest

import initlab
from initlab.errors import DataError
from initlab.train.checkpoint import load_checkpoint

SRC = Path(initlab.__file__).resolve().parent
# Modules whose import alone means unpickling (or code loading) is possible.
BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve",
                  "marshal", "pickletools"}  # fmt: skip
# Calls that unpickle unless told not to: name -> (keyword, the only value allowed)
GUARDED_CALLS = {"torch.load": ("weights_only", True), "np.load": ("allow_pickle", False),
                 "numpy.load": ("allow_pickle", False)}  # fmt: skip
BANNED_CALLS = {"pandas.read_pickle", "pd.read_pickle", "torch.jit.load", "torch.package"}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _problems(path: Path) -> list[str]:
    """What in ``path`` could load a pickle, one 'FILE:LINE what' string per finding."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = lambda node: f"{path.name}:{node.lineno}"  # noqa: E731
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{where(node)} imports {a.name}" for a in node.names
                      if a.name.split(".")[0] in BANNED_MODULES]  # fmt: skip
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in BANNED_MODULES:
                found.append(f"{where(node)} imports from {module}")
            if module == "torch" and any(a.name == "load" for a in node.names):
                found.append(f"{where(node)} imports torch.load by name (unchecked calls)")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in BANNED_CALLS:
                found.append(f"{where(node)} calls {name}")
            if name in GUARDED_CALLS:
                key, allowed = GUARDED_CALLS[name]
                given = {k.arg: k.value for k in node.keywords}
                value = given.get(key)
                if not (isinstance(value, ast.Constant) and value.value is allowed):
                    found.append(f"{where(node)} calls {name} without {key}={allowed}")
    return found


def test_no_module_loads_pickles():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20  # the scan really sees the package
    problems = [p for f in files for p in _problems(f)]
    assert not problems, "\n".join(problems)


def test_the_scan_catches_what_it_should(tmp_path):
    text = ("import pickle\nimport torch\nfrom joblib import load\n"
            "torch.load('x')\ntorch.load('x', weights_only=False)\n"
            "torch.load('x', weights_only=True)\nnp.load('y', allow_pickle=True)\n")  # fmt: skip
    probe = tmp_path / "probe.py"
    probe.write_text(text)
    problems = _problems(probe)
    assert [p.split(" ", 1)[1] for p in problems] == [
        "imports pickle", "imports from joblib", "calls torch.load without weights_only=True",
        "calls torch.load without weights_only=True", "calls np.load without allow_pickle=False",
    ]  # fmt: skip


class _Hostile:
    """Unpickling this writes a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


@pytest.mark.parametrize("name", ["stack-0.safetensors", "model.pt"])
def test_a_pickle_in_place_of_a_checkpoint_is_refused_unopened(tmp_path, name):
    marker = tmp_path / "marker"
    path = tmp_path / "checkpoints" / name
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(_Hostile(marker)))
    with pytest.raises(DataError, match="not a readable initlab checkpoint") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    assert not marker.exists()
    assert os.listdir(tmp_path) == ["checkpoints"]
