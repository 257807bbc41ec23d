"""initlab: neural-network weight initialization for PyTorch.

>>> import torch, initlab
>>> model = torch.nn.Sequential(torch.nn.Linear(20, 10), torch.nn.Tanh(), torch.nn.Linear(10, 2))
>>> report = initlab.init_(model, "auto", generator=torch.Generator().manual_seed(0))
"""

from initlab.errors import ConfigError, DataError, InitlabError, InitSpecError
from initlab.initializers import (
    Initializer,
    InitReport,
    InitRow,
    LayerContext,
    get,
    init_,
    names,
    register,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "InitReport",
    "InitRow",
    "InitSpecError",
    "Initializer",
    "InitlabError",
    "LayerContext",
    "get",
    "init_",
    "names",
    "register",
]
