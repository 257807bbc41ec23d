"""The probe: what an initialization does to activations and gradients, with a diagnosis.

``probe(model, inputs)`` measures every layer in one call; ``watch(model, every=N)`` does it
during training; ``predict_stack`` gives the mean-field variance and its finite-width band;
``diagnose`` turns a record into one-line findings.

>>> import torch, initlab
>>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())
>>> _ = initlab.init_(model, "he_normal", generator=torch.Generator().manual_seed(0))
>>> report = initlab.probe(model, torch.randn(64, 8, generator=torch.Generator().manual_seed(1)))
>>> [(x.name, x.kind) for x in report.layers], report.findings
([('0', 'linear'), ('1', 'activation')], [])
"""

from initlab.models.factory import build_model, load_factory
from initlab.probe.diagnose import diagnose
from initlab.probe.experiment import histogram_experiment, histogram_grid
from initlab.probe.predict import Prediction, Step, gaussian_moments, predict_stack
from initlab.probe.probe import probe
from initlab.probe.probe_report import ProbeReport
from initlab.probe.residual_growth import VarianceGrowth, variance_growth
from initlab.probe.watch import watch

__all__ = [
    "VarianceGrowth",
    "Prediction",
    "ProbeReport",
    "Step",
    "build_model",
    "diagnose",
    "gaussian_moments",
    "histogram_experiment",
    "histogram_grid",
    "load_factory",
    "predict_stack",
    "probe",
    "variance_growth",
    "watch",
]


class _CallableModule(__import__("types").ModuleType):
    """``initlab.probe`` is both this package and the ``probe()`` function: once the package
    is imported Python binds ``initlab.probe`` to it, so calling it forwards to ``probe``.

    ``__wrapped__`` and ``__signature__`` make ``help(initlab.probe)`` and
    ``inspect.signature(initlab.probe)`` show the function's real parameters."""

    __wrapped__ = staticmethod(probe)
    __signature__ = __import__("inspect").signature(probe)

    def __call__(self, *args, **kwargs):
        return probe(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
