"""initlab: neural-network weight initialization for PyTorch.

>>> import torch, initlab
>>> model = torch.nn.Sequential(torch.nn.Linear(20, 10), torch.nn.Tanh(), torch.nn.Linear(10, 2))
>>> report = initlab.init_(model, "auto", generator=torch.Generator().manual_seed(0))
>>> report.row("0.weight").activation
'tanh'

The public names below are imported on first use (PEP 562), so ``import initlab.results``
or rebuilding a report never loads torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from initlab.errors import ConfigError, DataError, InitlabError, InitSpecError

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Initializer": "initlab.initializers.registry",
    "LayerContext": "initlab.initializers.registry",
    "get": "initlab.initializers.registry",
    "names": "initlab.initializers.registry",
    "register": "initlab.initializers.registry",
    "init_": "initlab.initializers.apply",
    "InitReport": "initlab.initializers.init_report",
    "InitRow": "initlab.initializers.init_report",
    "LSUV": "initlab.initializers.lsuv",
    "pretrain_dbn": "initlab.initializers.dbn",
    "compare": "initlab.experiments.compare",
    "Comparison": "initlab.experiments.compare",
    "CompareConfig": "initlab.experiments.config",
    "run_preset": "initlab.experiments.presets",
    "watch": "initlab.probe.watch",
    "ProbeReport": "initlab.probe.probe_report",
    "histogram_experiment": "initlab.probe.experiment",
    "predict_stack": "initlab.probe.predict",
    "diagnose": "initlab.probe.diagnose",
}

__all__ = [
    "CompareConfig",
    "Comparison",
    "ConfigError",
    "DataError",
    "InitReport",
    "InitRow",
    "InitSpecError",
    "Initializer",
    "InitlabError",
    "LSUV",
    "LayerContext",
    "compare",
    "get",
    "init_",
    "names",
    "ProbeReport",
    "diagnose",
    "histogram_experiment",
    "predict_stack",
    "pretrain_dbn",
    "probe",
    "register",
    "run_preset",
    "watch",
]


def __getattr__(name: str) -> Any:
    if name == "probe":  # the subpackage, callable as probe(model, inputs, ...)
        return importlib.import_module("initlab.probe")
    if name == "init":  # tensor-level initializers: initlab.init.xavier_uniform_(w, ...)
        return importlib.import_module("initlab.init")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'initlab' has no attribute {name!r}")
    # the initializers package registers every scheme on import
    importlib.import_module("initlab.initializers")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | {"probe", "init"})


if TYPE_CHECKING:  # for type checkers and IDEs: the eager imports
    from initlab.experiments.compare import Comparison, compare
    from initlab.experiments.config import CompareConfig
    from initlab.experiments.presets import run_preset
    from initlab.initializers.apply import init_
    from initlab.initializers.dbn import pretrain_dbn
    from initlab.initializers.init_report import InitReport, InitRow
    from initlab.initializers.lsuv import LSUV
    from initlab.initializers.registry import Initializer, LayerContext, get, names, register
