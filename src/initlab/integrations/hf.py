"""A Hugging Face ``TrainerCallback`` that runs :func:`initlab.watch` during ``Trainer.train``.

Every ``every`` training steps it records probe statistics of the model (evaluation
forwards, under ``eval()`` and ``no_grad``, are not steps) and logs the scalars of
:mod:`initlab.integrations.common` (``initlab/<layer>/act_std``...) through the Trainer's
``log``, so that they reach ``state.log_history`` and every ``report_to`` integration
(TensorBoard, W&B...); the plain history stays in ``callback.history``::

    from transformers import Trainer
    from initlab.integrations.hf import watch_trainer

    trainer = Trainer(model=model, args=args, train_dataset=data)
    cb = watch_trainer(trainer, every=50)
    trainer.train()
    cb.history.series("transformer.h.0", "std")

A callback only sees the Trainer's state, not the Trainer: without ``trainer=`` (a plain
``Trainer(callbacks=[WatchCallback()])``) the scalars go into ``state.log_history`` only.
"""

from __future__ import annotations

from typing import Any

from initlab.integrations.common import WatchSession, scalars
from initlab.probe.hooks import Ranges
from initlab.results.probe_records import ProbeRecord, WatchHistory

try:
    from transformers import TrainerCallback
except ImportError as e:  # pragma: no cover - exercised with the library hidden
    raise ImportError(
        "initlab.integrations.hf needs transformers: pip install 'initlab[hf]'"
    ) from e

__all__ = ["WatchCallback", "watch_trainer"]


class WatchCallback(TrainerCallback):
    """Watch the Trainer's model every ``every`` training steps; log through ``trainer``.

    The hooks come off at the end of ``train()``; if training raises, call :meth:`close`.

    >>> cb = WatchCallback(every=10)
    >>> cb.every, cb.history is None
    (10, True)
    """

    def __init__(
        self,
        every: int = 1,
        *,
        trainer: Any = None,
        bins: int = 30,
        ranges: Ranges = None,
        prefix: str = "initlab",
    ) -> None:
        self.every, self.trainer, self.prefix = every, trainer, prefix
        self.session = WatchSession(every, bins=bins, ranges=ranges)

    @property
    def history(self) -> WatchHistory | None:
        """The records of the last (or current) ``train()``; None before the first."""
        return self.session.history

    def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:
        """Hook the Trainer's model."""
        self.session.start(model)

    def on_step_end(self, args, state, control, **kwargs) -> None:
        """Log the records of the step that has just ended."""
        # the backward and the optimizer step are done: this step's record is complete
        self._send(state, self.session.new_records())

    def on_train_end(self, args, state, control, **kwargs) -> None:
        """Remove the hooks and log the records not logged yet."""
        self._send(state, self.session.close())

    def close(self) -> None:
        """Remove the hooks now (after a ``train()`` that raised)."""
        self.session.abort()

    def _send(self, state, records: list[ProbeRecord]) -> None:
        for record in records:
            logs = scalars(record, self.prefix)
            if self.trainer is not None:
                self.trainer.log(dict(logs))  # Trainer.log adds epoch and step to its copy
            else:
                state.log_history.append({**logs, "step": state.global_step})


def watch_trainer(trainer: Any, every: int = 1, **options: Any) -> WatchCallback:
    """Add a :class:`WatchCallback` that logs through ``trainer`` and return it; options as
    for the callback (``bins``, ``ranges``, ``prefix``)."""
    callback = WatchCallback(every, trainer=trainer, **options)
    trainer.add_callback(callback)
    return callback
