"""Batched MLPs with hand-written backward passes over one flat parameter buffer, and Adam.

Why not `torch.nn` + autograd: the networks here are small (Pendulum's SAC has one hidden
layer of 128), so an update is bound by per-operation overhead, not arithmetic. Keeping every
parameter of a network in one contiguous tensor makes Adam and Polyak averaging a handful of
operations regardless of depth, computing E networks (twin critics, model ensembles) as one
batched matmul divides the launches by E, and a hand-written backward skips the autograd graph
and every gradient nobody needs (e.g. critic weights when differentiating the actor loss).
The backward passes are checked against autograd in `tests/test_nets.py`.

Every call site names a *slot*: a set of preallocated activation and gradient buffers reused by
every call, so the hot loop allocates nothing (fresh large tensors cost page faults and cold
caches, about a fifth of an update at the paper's sizes). A slot's outputs are overwritten by
its next forward pass: use one slot per call site whose results must live at the same time.
Backward reads what forward saved (the input and the hidden activations); if any of it is
written in place in between (a caller reusing its input buffer, say), backward raises
`SlotOverwrittenError` instead of computing a wrong gradient (torch's version counters).

Shapes: E networks, batch B. Inputs are `E x B x in_dim`, or `B x in_dim` shared by all members.
"""

from __future__ import annotations

import math

import torch

ACTIVATIONS = ("relu", "swish")


class SlotOverwrittenError(RuntimeError):
    """What a slot's forward pass saved for backward was written in place before backward."""


class _Slot:
    """Preallocated buffers of one call site for one batch size: every layer's output (hidden
    outputs are what backward needs), swish pre-activations, and input gradients (allocated on
    the first backward pass, so forward-only slots such as 100k-row rollouts do not pay for them)."""

    def __init__(self, net: BatchedMLP, batch: int) -> None:
        e, device = net.ensemble, net.params.device
        self.batch = batch
        self.out = [torch.empty(e, batch, o, device=device) for o in net.sizes[1:]]
        self.pre = (
            [torch.empty(e, batch, o, device=device) for o in net.sizes[1:-1]] if net.activation == "swish" else []
        )
        self.grad_in: list[torch.Tensor] = []
        self.input: torch.Tensor | None = None
        self.versions: tuple[int, ...] = ()  # of what backward reads, as the last forward left it

    def saved_versions(self) -> tuple[int, ...]:
        """Version counters of the tensors backward reads (not the output: callers may reuse it)."""
        return (self.input._version, *(t._version for t in self.out[:-1]), *(t._version for t in self.pre))

    def input_grads(self, net: BatchedMLP) -> list[torch.Tensor]:
        if not self.grad_in:
            self.grad_in = [torch.empty(net.ensemble, self.batch, i, device=net.params.device) for i in net.sizes[:-1]]
        return self.grad_in


class BatchedMLP:
    """E independent MLPs of the same shape, evaluated as one batched operation.

    Layer l has weights `E x in_l x out_l` and biases `E x 1 x out_l`, all views into the flat
    tensor `params`; `grads` has the same layout. Hidden layers use `activation`, the output is
    linear.
    """

    def __init__(
        self,
        ensemble: int,
        sizes: list[int],
        activation: str,
        device: torch.device,
        generator: torch.Generator,
    ) -> None:
        self._allocate(ensemble, sizes, activation, device)
        for w, b, fan_in in zip(self.weights, self.biases, self.sizes[:-1]):
            # torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
            bound = 1.0 / math.sqrt(fan_in)
            w.uniform_(-bound, bound, generator=generator)
            b.uniform_(-bound, bound, generator=generator)

    def _allocate(self, ensemble: int, sizes: list[int], activation: str, device: torch.device) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.ensemble, self.sizes, self.activation = ensemble, list(sizes), activation
        shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        total = sum(ensemble * (i * o + o) for i, o in shapes)
        self.params = torch.empty(total, device=device)
        self.grads = torch.zeros(total, device=device)
        self.weights, self.biases = self.views(self.params)
        self.grad_weights, self.grad_biases = self.views(self.grads)
        self._slots: dict[str, _Slot] = {}

    def weight_slices(self) -> list[slice]:
        """Where each layer's weights lie in the flat parameter tensor."""
        slices, offset = [], 0
        for i, o in zip(self.sizes[:-1], self.sizes[1:]):
            slices.append(slice(offset, offset + self.ensemble * i * o))
            offset += self.ensemble * (i * o + o)
        return slices

    def views(self, flat: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-layer weight (`E x in x out`) and bias (`E x 1 x out`) views of a flat tensor laid
        out like `params`."""
        weights, biases, offset = [], [], 0
        e = self.ensemble
        for i, o in zip(self.sizes[:-1], self.sizes[1:]):
            weights.append(flat[offset : offset + e * i * o].view(e, i, o))
            offset += e * i * o
            biases.append(flat[offset : offset + e * o].view(e, 1, o))
            offset += e * o
        return weights, biases

    @property
    def num_layers(self) -> int:
        return len(self.weights)

    def copy(self) -> BatchedMLP:
        """An independent network with the same parameters (e.g. a target network)."""
        other = object.__new__(BatchedMLP)
        other._allocate(self.ensemble, self.sizes, self.activation, self.params.device)
        other.params.copy_(self.params)
        return other

    def subset(self, members: torch.Tensor, into: BatchedMLP | None = None) -> BatchedMLP:
        """A network of the chosen members only (`members`: K indices), parameters copied;
        `into` (a K-member network of the same shape) is refilled instead of allocating one,
        which keeps its slot buffers."""
        other = into
        if other is None or other.ensemble != len(members):
            other = object.__new__(BatchedMLP)
            other._allocate(len(members), self.sizes, self.activation, self.params.device)
        for mine, theirs in ((self.weights, other.weights), (self.biases, other.biases)):
            for src, dst in zip(mine, theirs):
                torch.index_select(src, 0, members, out=dst)
        return other

    def _slot(self, name: str, batch: int) -> _Slot:
        slot = self._slots.get(name)
        if slot is None or slot.batch != batch:
            slot = self._slots[name] = _Slot(self, batch)
        return slot

    def forward(self, x: torch.Tensor, slot: str) -> torch.Tensor:
        """x: `E x B x in` or `B x in` (shared by all members) -> `E x B x out`.

        The result is a buffer of `slot`, valid until that slot's next forward pass.
        """
        if x.dim() == 2:
            x = x.expand(self.ensemble, *x.shape)
        ws = self._slot(slot, x.shape[1])
        ws.input = x
        last = self.num_layers - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            out = ws.out[layer]
            if layer == last:
                result = torch.baddbmm(b, x, w, out=out)
                ws.versions = ws.saved_versions()
                return result
            if self.activation == "relu":
                x = torch.baddbmm(b, x, w, out=out).relu_()
            else:
                pre = torch.baddbmm(b, x, w, out=ws.pre[layer])
                x = torch.ops.aten.silu.out(pre, out=out)
        raise AssertionError("unreachable")

    def backward(
        self,
        slot: str,
        grad_out: torch.Tensor,
        param_grads: bool = True,
        input_grad: bool = False,
        rows: slice = slice(None),
    ) -> torch.Tensor | None:
        """Backpropagate `grad_out` (`E x R x out`, dLoss/dOutput) through `slot`'s last forward,
        restricted to its batch rows `rows` (R of them; all by default).

        With `param_grads`, writes dLoss/dParams into `grads` (overwriting, not accumulating).
        With `input_grad`, returns dLoss/dInput as `E x R x in` (a buffer of the slot).
        """
        ws = self._slots[slot]
        if ws.saved_versions() != ws.versions:
            raise SlotOverwrittenError(
                f"slot {slot!r}: its input or activations were written in place after its forward pass, "
                "so backward would compute a wrong gradient; give the other use its own slot or a fresh input"
            )
        grad_in = ws.input_grads(self)
        g = grad_out
        n = grad_out.shape[1]
        for layer in range(self.num_layers - 1, -1, -1):
            inp = (ws.input if layer == 0 else ws.out[layer - 1])[:, rows]
            if param_grads:
                torch.bmm(inp.transpose(1, 2), g, out=self.grad_weights[layer])
                torch.sum(g, dim=1, keepdim=True, out=self.grad_biases[layer])
            if layer == 0 and not input_grad:
                return None
            g = torch.bmm(g, self.weights[layer].transpose(1, 2), out=grad_in[layer][:, :n])
            if layer == 0:
                return g
            if self.activation == "relu":
                # the layer's input is relu(z): positive exactly where z was
                torch.ops.aten.threshold_backward.grad_input(g, inp, 0.0, grad_input=g)
            else:
                torch.ops.aten.silu_backward.grad_input(g, ws.pre[layer - 1], grad_input=g)
        raise AssertionError("unreachable")


class Adam:
    """Adam (Kingma & Ba 2015) on one flat parameter tensor, numerically as `torch.optim.Adam`.

    `grads` is the flat gradient buffer the owner fills before each `step` (fixed, so every view
    the kernel needs is built once). One fused kernel per step (the one
    `torch.optim.Adam(fused=True)` uses, on CPU and CUDA) instead of six passes over the
    parameters. `weight_decay` optionally maps slices of the flat tensor to L2 coefficients
    (`grad += decay * param`, torch.optim.Adam's `weight_decay`), applied inside the same kernel;
    slices not named get none.
    """

    def __init__(
        self,
        params: torch.Tensor,
        grads: torch.Tensor,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: list[tuple[slice, float]] | None = None,
    ) -> None:
        self.params, self.grads, self.lr, self.betas, self.eps = params, grads, lr, betas, eps
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        # the step count lives in a tensor, as the fused kernel reads it there (no host sync on CUDA)
        self._step = torch.zeros((), dtype=torch.float32, device=params.device)
        self._groups = [
            (
                decay,
                [[t[p] for p in parts] for t in (params, grads, self.exp_avg, self.exp_avg_sq)],
                [self._step] * len(parts),
            )
            for decay, parts in self._group_slices(params.numel(), weight_decay or [])
        ]

    @staticmethod
    def _group_slices(total: int, decays: list[tuple[slice, float]]) -> list[tuple[float, list[slice]]]:
        """Cover [0, total) with the given slices plus zero-decay gaps, grouped by decay."""
        by_decay: dict[float, list[slice]] = {}
        cursor = 0
        for part, decay in sorted(decays, key=lambda item: item[0].start):
            if part.start > cursor:
                by_decay.setdefault(0.0, []).append(slice(cursor, part.start))
            by_decay.setdefault(float(decay), []).append(part)
            cursor = part.stop
        if cursor < total:
            by_decay.setdefault(0.0, []).append(slice(cursor, total))
        return list(by_decay.items())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone(), "step": self._step.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        # copied into the existing tensors: the kernel's views point at them
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self._step.copy_(state["step"])

    def step(self) -> None:
        """One Adam step from the current contents of `grads`."""
        self._step += 1
        beta1, beta2 = self.betas
        for decay, (params, grads, exp_avg, exp_avg_sq), steps in self._groups:
            torch._fused_adam_(
                params,
                grads,
                exp_avg,
                exp_avg_sq,
                [],
                steps,
                lr=self.lr,
                beta1=beta1,
                beta2=beta2,
                weight_decay=decay,
                eps=self.eps,
                amsgrad=False,
                maximize=False,
            )
