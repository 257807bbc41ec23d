"""The initializer library: registry, formula schemes, fans, gains, tracing and ``init_``."""

from initlab.initializers import (  # noqa: F401  (registers)
    critical,  # noqa: F401  (registers critical, delta_orthogonal)
    dbn,
    embedding,
    lsuv,
    residual,
    schemes,
    simple,
    torch_default,
)
from initlab.initializers.apply import init_
from initlab.initializers.dbn import pretrain_dbn
from initlab.initializers.init_report import InitReport, InitRow
from initlab.initializers.lsuv import LSUV
from initlab.initializers.registry import (
    Initializer,
    LayerContext,
    ModelProcedure,
    TensorScheme,
    get,
    names,
    register,
)

__all__ = [
    "Initializer",
    "InitReport",
    "InitRow",
    "LSUV",
    "LayerContext",
    "ModelProcedure",
    "TensorScheme",
    "get",
    "init_",
    "names",
    "pretrain_dbn",
    "register",
]
