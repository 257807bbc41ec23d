"""A Lightning ``Callback`` that runs :func:`initlab.watch` over the LightningModule during fit.

Every ``every`` training steps it records probe statistics (validation and sanity-check
forwards, under ``eval()`` and ``no_grad``, are not steps), sends the scalars of
:mod:`initlab.integrations.common` to every logger of the trainer at the record's step
(``initlab/<layer>/act_std``...), and keeps the plain history in ``callback.history``::

    from lightning.pytorch import Trainer
    from initlab.integrations.lightning import WatchCallback

    cb = WatchCallback(every=50)
    Trainer(callbacks=[cb], max_steps=1000).fit(module, loader)
    cb.history.series("net.0", "std")

A step is a call of the LightningModule itself (``self(x)`` in ``training_step``); a
``training_step`` that calls a submodule instead (``self.net(x)``) needs
``WatchCallback(module="net")``.
"""

from __future__ import annotations

import warnings
from typing import Any

from initlab.integrations.common import WatchSession, scalars
from initlab.probe.hooks import Ranges
from initlab.results.probe_records import ProbeRecord, WatchHistory

try:
    import lightning.pytorch as pl
except ImportError as e:  # pragma: no cover - exercised with the library hidden
    raise ImportError(
        "initlab.integrations.lightning needs Lightning: pip install 'initlab[lightning]'"
    ) from e

__all__ = ["WatchCallback"]


class WatchCallback(pl.Callback):
    """Watch the LightningModule (or its submodule ``module``) every ``every`` steps of fit.

    ``log=False`` keeps the records in :attr:`history` without sending them to the loggers.
    Logged straight to ``trainer.loggers`` (not through ``pl_module.log``), so that every
    sampled step is written whatever ``log_every_n_steps`` is.

    >>> cb = WatchCallback(every=10, module="net")
    >>> cb.every, cb.history is None
    (10, True)
    """

    def __init__(
        self,
        every: int = 1,
        *,
        module: str | None = None,
        bins: int = 30,
        ranges: Ranges = None,
        log: bool = True,
        prefix: str = "initlab",
    ) -> None:
        self.every, self.module, self.log, self.prefix = every, module, log, prefix
        self.session = WatchSession(every, bins=bins, ranges=ranges)
        self._warned = False

    @property
    def history(self) -> WatchHistory | None:
        """The records of the last (or current) fit; None before the first."""
        return self.session.history

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Hook the LightningModule, or its submodule ``module``."""
        target = pl_module if self.module is None else pl_module.get_submodule(self.module)
        self.session.start(target)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        """Log the step's records; warn once if the watched module was not called in the step."""
        # the backward and the optimizer step are done: this step's record is complete
        self._send(trainer, self.session.new_records())
        watched = self.session.watch
        if watched is not None and watched.forwards == 0 and not self._warned:
            self._warned = True
            warnings.warn(
                "initlab WatchCallback saw no call of the watched module during a training "
                "step: call self(x) in training_step, or pass WatchCallback(module='net') to "
                "watch the submodule training_step calls.",
                stacklevel=2,
            )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Remove the hooks and log the records not logged yet."""
        self._send(trainer, self.session.close())

    def on_exception(self, trainer: pl.Trainer, pl_module: Any, exception: BaseException) -> None:
        """Remove the hooks when fit raises (the half-done step is not recorded)."""
        self.session.close(exception)  # hooks off the model whatever happened

    def _send(self, trainer: pl.Trainer, records: list[ProbeRecord]) -> None:
        if not self.log:
            return
        for record in records:
            metrics = scalars(record, self.prefix)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=record.step)
