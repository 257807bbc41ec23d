"""Training: the stacked multi-model trainer, optimizers, keyed randomness, checkpoints."""

from initlab.train.optim import canonical_optimizer, make_optimizer
from initlab.train.randomness import BatchOrder, derive_seed, dropout_generator, init_generator
from initlab.train.trainer import Member, train_stack

__all__ = [
    "BatchOrder",
    "Member",
    "canonical_optimizer",
    "derive_seed",
    "dropout_generator",
    "init_generator",
    "make_optimizer",
    "train_stack",
]
