"""Adapters that send :func:`initlab.watch` statistics to the tools of a training loop.

Each adapter lives in its own module and imports its library only there, so ``import initlab``
never needs them: :mod:`~initlab.integrations.tensorboard` (a ``SummaryWriter``),
:mod:`~initlab.integrations.lightning` (a Lightning ``Callback``) and
:mod:`~initlab.integrations.hf` (a Hugging Face ``TrainerCallback``). All three log the same
numbers, :func:`~initlab.integrations.common.scalars` of each watch record, tagged
``initlab/<layer>/<stat>``. Nothing in initlab's core imports this package.
"""
