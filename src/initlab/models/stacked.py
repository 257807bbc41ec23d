"""K models of one architecture as ONE set of tensors with a leading K axis.

>>> import torch
>>> from initlab.models.specs import build
>>> models = [build("mlp:100x2", activation="relu", in_shape=(4,), n_classes=3) for _ in range(5)]
>>> stack = StackedModel(models, in_shape=(4,))
>>> stack.params["1.weight"].shape, stack.mode
(torch.Size([5, 100, 4]), 'batched')
>>> stack(torch.zeros(1, 8, 4)).shape  # (groups, batch, *in_shape) -> (K, batch, classes)
torch.Size([5, 8, 3])

Three ways to run the stack, picked once when it is built:

* ``batched``: ``nn.Sequential`` models of Linear / Conv2d / BatchNorm / Dropout / pooling /
  Flatten / elementwise activations (every ``mlp:`` and ``cnn:`` spec) run as batched
  kernels (:mod:`initlab.models.stacked_ops`): the first layer is one matmul shared by all
  members of an input group, the others ``baddbmm`` or grouped convolutions.
* ``vmap``: other models (user factories) run through ``torch.func.functional_call`` under
  ``torch.func.vmap`` over the stacked parameters, when a trial forward pass traces.
* ``loop``: models vmap cannot trace (in-place buffer updates, random layers such as
  dropout, data-dependent control flow) run as stacks of one: one ``functional_call`` per
  member on views of the stacked tensors. Random layers then draw from the global RNG
  inside ``torch.random.fork_rng``, seeded from the member's own generator, so the global
  state is left as it was and a lone rerun reproduces the masks.

Parameter and buffer names are the plain model's ``state_dict`` names, so slice ``k`` loads
straight back into a plain model (:meth:`StackedModel.member_state`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, vmap

from initlab.models.stacked_ops import Flow, Unstackable, compile_ops, to_stacked


class StackedModel:
    """K same-shaped models stacked on a leading axis; calling it runs all K at once."""

    def __init__(self, models: list[nn.Module], *, in_shape: tuple[int, ...]):
        if not models:
            raise ValueError("StackedModel needs at least one model")
        self.K = len(models)
        self.template = copy.deepcopy(models[0])
        self.in_shape = tuple(in_shape)
        self.params = _stack_named([dict(m.named_parameters()) for m in models], grad=True)
        self.buffers = _stack_named([dict(m.named_buffers()) for m in models], grad=False)
        self.has_dropout = any(
            isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
            for m in self.template.modules()
        )
        self.unstackable_reason = ""
        try:
            self._ops = compile_ops(self.template)
            self.mode = "batched"
        except Unstackable as e:
            self._ops = []
            self.unstackable_reason = str(e)
            self.mode = "vmap" if self._vmap_traces() else "loop"

    # -- forward ---------------------------------------------------------------------------
    def __call__(
        self,
        x: torch.Tensor,
        *,
        train: bool = True,
        generators: list[torch.Generator] | None = None,
    ) -> torch.Tensor:
        """Logits (K, B, n_classes) for inputs ``x`` of shape (G, B, *in_shape).

        G input groups with K % G == 0: member k reads group k // (K // G). ``generators``
        (one per member) drive dropout masks in training.
        """
        if x.shape[0] < 1 or self.K % x.shape[0]:
            raise ValueError(f"{x.shape[0]} input groups do not divide {self.K} members")
        if train and self.has_dropout and generators is None:
            raise ValueError("training a model with dropout needs one generator per member")
        if self.mode == "batched":
            return self._run_ops(x, train, generators, frozenset())[0]
        per_member = x.repeat_interleave(self.K // x.shape[0], dim=0)
        self.template.train(train)
        if self.mode == "vmap":
            call = vmap(self._call_one, in_dims=(0, 0, 0), randomness="error")
            return call(self.params, self.buffers, per_member)
        outs = []
        for k in range(self.K):
            state = self.member_views(k)
            if train and self.has_dropout:
                seed = int(torch.randint(2**62, (1,), generator=generators[k]))
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    outs.append(self._call_one(*state, per_member[k]))
            else:
                outs.append(self._call_one(*state, per_member[k]))
        return torch.stack(outs)

    def forward_capturing(
        self,
        x: torch.Tensor,
        positions: frozenset[int],
        *,
        train: bool = True,
        generators: list[torch.Generator] | None = None,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, str]]]:
        """Logits and the outputs of the activations at 0-based ``positions``, each as
        ``(tensor, layout)`` (layout ``stacked`` (K, B, ...) or ``channels`` (B, K*C, ...)).
        Only the batched mode can capture."""
        if self.mode != "batched":
            raise ValueError(f"cannot capture activations in {self.mode} mode")
        return self._run_ops(x, train, generators, positions)

    def _run_ops(self, x, train, generators, positions):
        flow = Flow(x, "shared", self.K, self.params, self.buffers, train, generators,
                    capture=positions)  # fmt: skip
        for op in self._ops:
            op(flow)
        to_stacked(flow)
        return flow.x, flow.captured

    def _call_one(self, params, buffers, x):
        return functional_call(self.template, (params, buffers), (x,))

    def _vmap_traces(self) -> bool:
        """Does a trial forward pass (train and eval, on clones) run under vmap?"""
        params = {n: p.detach().clone() for n, p in self.params.items()}
        buffers = {n: b.clone() for n, b in self.buffers.items()}
        x = torch.zeros(self.K, 2, *self.in_shape)
        try:
            for mode in (True, False):
                self.template.train(mode)
                vmap(self._call_one, in_dims=(0, 0, 0), randomness="error")(params, buffers, x)
        except Exception:  # any failure to trace means: run members one by one
            return False
        return True

    # -- members ---------------------------------------------------------------------------
    def member_views(self, k: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Views of member ``k``'s parameters and buffers (gradients flow to the stack)."""
        return (
            {n: p[k] for n, p in self.params.items()},
            {n: b[k] for n, b in self.buffers.items()},
        )

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """A detached copy of member ``k`` as a plain ``state_dict``."""
        params, buffers = self.member_views(k)
        return {n: t.detach().clone() for n, t in {**params, **buffers}.items()}

    def member_model(self, k: int) -> nn.Module:
        """Member ``k`` as a plain model (a copy of the template holding its weights)."""
        model = copy.deepcopy(self.template)
        model.load_state_dict(self.member_state(k))
        return model

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every stacked tensor by a prefixed name (``param.`` / ``buffer.``), for checkpoints."""
        out = {f"param.{n}": p.detach() for n, p in self.params.items()}
        out.update({f"buffer.{n}": b for n, b in self.buffers.items()})
        return out

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Copy tensors written by :meth:`tensors` back in place (shapes must match)."""
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(tensors[f"param.{n}"])
            for n, b in self.buffers.items():
                b.copy_(tensors[f"buffer.{n}"])

    def to(self, device: str | torch.device) -> StackedModel:
        """Move every stacked tensor to ``device`` (in place on this object); returns self."""
        self.params = {
            n: p.detach().to(device).requires_grad_(p.requires_grad) for n, p in self.params.items()
        }
        self.buffers = {n: b.to(device) for n, b in self.buffers.items()}
        self.template.to(device)
        return self


def _stack_named(dicts: list[dict[str, torch.Tensor]], *, grad: bool) -> dict[str, torch.Tensor]:
    names = list(dicts[0])
    for i, d in enumerate(dicts[1:], start=1):
        if list(d) != names or any(d[n].shape != dicts[0][n].shape for n in names):
            raise ValueError(f"model {i} does not have the same parameters as model 0")
    out = {}
    for n in names:
        t = torch.stack([d[n].detach() for d in dicts]).contiguous()
        out[n] = t.requires_grad_(grad and dicts[0][n].requires_grad)
    return out
