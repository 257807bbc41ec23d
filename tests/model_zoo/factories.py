"""Model factories for tests of ``package.module:function`` arch specs."""

from __future__ import annotations

import torch
from torch import nn


def tiny(in_shape, n_classes, width=8):
    """An nn.Sequential: the stacked trainer runs it with batched kernels."""
    fan_in = 1
    for d in in_shape:
        fan_in *= d
    return nn.Sequential(
        nn.Flatten(), nn.Linear(fan_in, width), nn.Tanh(), nn.Linear(width, n_classes)
    )


class Residual(nn.Module):
    """Not a Sequential (a skip connection): runs under vmap."""

    def __init__(self, fan_in, n_classes, width):
        super().__init__()
        self.inp = nn.Linear(fan_in, width)
        self.mid = nn.Linear(width, width)
        self.out = nn.Linear(width, n_classes)

    def forward(self, x):
        h = torch.relu(self.inp(x.flatten(-len(self.shape))))
        return self.out(h + torch.relu(self.mid(h)))


def residual(in_shape, n_classes, width=8):
    model = Residual(int(torch.tensor(in_shape).prod()), n_classes, width)
    model.shape = tuple(in_shape)
    return model


class NoisyResidual(Residual):
    """Dropout in a custom forward: vmap refuses random ops, so it runs member by member."""

    def __init__(self, *args):
        super().__init__(*args)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        h = torch.relu(self.inp(x.flatten(-len(self.shape))))
        return self.out(self.drop(h) + torch.relu(self.mid(h)))


def noisy(in_shape, n_classes, width=8):
    model = NoisyResidual(int(torch.tensor(in_shape).prod()), n_classes, width)
    model.shape = tuple(in_shape)
    return model


def not_a_model(in_shape, n_classes):
    return "a string"


def tiny_gpt2(n_layer=2, n_embd=32, n_head=4, vocab=100, positions=64):
    """A Hugging Face GPT-2 built from a config (nothing downloaded), dropout off, so that the
    CLI (which feeds it token ids) gives the same numbers on every run."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        n_layer=n_layer, n_embd=n_embd, n_head=n_head, vocab_size=vocab, n_positions=positions,
        bos_token_id=0, eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):  # HF draws its init from the global generator
        torch.manual_seed(0)
        return GPT2LMHeadModel(config)
