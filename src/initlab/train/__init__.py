"""Training: the stacked multi-model trainer, optimizers, keyed randomness, checkpoints."""

from initlab.train.optim import canonical_optimizer, make_optimizer
from initlab.train.randomness import BatchOrder, derive_seed, dropout_generator, init_generator
from initlab.train.stack_spec import Member, stack_spec
from initlab.train.trainer import train_members, train_stack

__all__ = [
    "BatchOrder",
    "Member",
    "canonical_optimizer",
    "derive_seed",
    "dropout_generator",
    "init_generator",
    "make_optimizer",
    "stack_spec",
    "train_members",
    "train_stack",
]
