"""Loss and accuracy of every member of a stack on a whole split, in memory-bounded chunks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from initlab.data.tensors import Split
from initlab.models.stacked import StackedModel

EVAL_BUDGET_FLOATS = 2**24  # ~64 MB of float32 for the widest activation of a chunk


def widest_activation(model: nn.Module, in_shape: tuple[int, ...]) -> int:
    """The largest number of values any module outputs for ONE example (a probe pass)."""
    widest = 1

    def hook(_module, _inputs, output):
        nonlocal widest
        if isinstance(output, torch.Tensor):
            widest = max(widest, output.numel())

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *in_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return widest


def eval_chunk_size(stack: StackedModel) -> int:
    """Examples per evaluation chunk so that K members' activations stay within budget."""
    per_example = widest_activation(stack.template, stack.in_shape) * stack.K
    return max(16, min(4096, EVAL_BUDGET_FLOATS // per_example))


@torch.no_grad()
def evaluate(
    stack: StackedModel, split: Split, *, chunk: int, device: torch.device
) -> torch.Tensor:
    """(2, K) float64: mean cross-entropy and accuracy of each member on ``split`` (eval mode)."""
    total_loss = torch.zeros(stack.K, dtype=torch.float64, device=device)
    correct = torch.zeros(stack.K, dtype=torch.float64, device=device)
    n = len(split)
    for start in range(0, n, chunk):
        rows = slice(start, min(n, start + chunk))
        x = split.features(rows).to(device).unsqueeze(0)  # one input group shared by all
        y = split.labels(rows).to(device)
        logits = stack(x, train=False)  # (K, c, classes)
        k, c, classes = logits.shape
        losses = F.cross_entropy(
            logits.reshape(k * c, classes), y.repeat(k), reduction="none"
        ).view(k, c)
        total_loss += losses.sum(1, dtype=torch.float64)
        correct += (logits.argmax(-1) == y).sum(1)
    return torch.stack([total_loss / n, correct / n])
