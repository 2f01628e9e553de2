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

Seeds in lockstep (`python -m mbpo train --seeds`, `mbpo/train.py`) stack G independent runs' networks as G *groups* of
consecutive members: member `g * E/G + i` is member i of run g. Each group is initialised from
its run's generator and drawn exactly as that run alone draws, `group_params` reads a group's
parameters in the one-run layout (a checkpoint of one run), and `Adam` keeps a step count per
group, so a group can be frozen (`step(active=...)`) while the others train.
"""

from __future__ import annotations

import math

import torch

ACTIVATIONS = ("relu", "swish")


# CPU elementwise kernels run over a contiguous tensor in chunks of two SIMD vectors (up to 2 x 16
# floats) and finish a remainder element by element, which can round differently (another tanh,
# an FMA or not). A seed's block of a batched tensor is computed exactly as its run alone computes
# it when the block is a whole number of chunks: callers pad per-seed rows to `LANES` (`padded`).
LANES = 32


def padded(rows: int) -> int:
    """`rows` rounded up to a multiple of `LANES`."""
    return -(-rows // LANES) * LANES


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
        generator: torch.Generator | list[torch.Generator],
    ) -> None:
        """`generator`: one, or one per group (G of them, G dividing `ensemble`): group g's
        members are drawn from generator g, in the order one run of E/G members draws them."""
        gens = generator if isinstance(generator, list) else [generator]
        if not gens or ensemble % len(gens):
            raise ValueError(f"{len(gens)} generators cannot split {ensemble} members into equal groups")
        self._allocate(ensemble, sizes, activation, device)
        per = ensemble // len(gens)
        for g, gen in enumerate(gens):
            members = slice(g * per, (g + 1) * per)
            for w, b, fan_in in zip(self.weights, self.biases, self.sizes[:-1]):
                # torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
                bound = 1.0 / math.sqrt(fan_in)
                w[members].uniform_(-bound, bound, generator=gen)
                b[members].uniform_(-bound, bound, generator=gen)

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

    def group_slices(self, groups: int) -> list[list[slice]]:
        """Where each of `groups` equal groups of members lies in the flat parameter tensor: per
        group, one slice per layer's weights and one per its biases (in the flat order)."""
        if groups < 1 or self.ensemble % groups:
            raise ValueError(f"{groups} groups do not split {self.ensemble} members equally")
        per, offset = self.ensemble // groups, 0
        out: list[list[slice]] = [[] for _ in range(groups)]
        for i, o in zip(self.sizes[:-1], self.sizes[1:]):
            for size in (i * o, o):  # the layer's weights, then its biases
                for g in range(groups):
                    start = offset + g * per * size
                    out[g].append(slice(start, start + per * size))
                offset += self.ensemble * size
        return out

    def group_params(self, flat: torch.Tensor, group: int, groups: int) -> torch.Tensor:
        """Group `group`'s part of `flat` (laid out like `params`) as the flat tensor of a network
        of its members alone (a copy)."""
        return torch.cat([flat[part] for part in self.group_slices(groups)[group]])

    def set_group_params(self, flat: torch.Tensor, group: int, groups: int, values: torch.Tensor) -> None:
        """Write a network's flat tensor `values` (the layout `group_params` returns) into group
        `group`'s part of `flat`."""
        parts = self.group_slices(groups)[group]
        if values.shape != (sum(p.stop - p.start for p in parts),):
            raise ValueError(f"{tuple(values.shape)} values do not fit a group of {self.ensemble // groups} members")
        offset = 0
        for part in parts:
            n = part.stop - part.start
            flat[part].copy_(values[offset : offset + n])
            offset += n

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

    `groups` (default: one group, the whole tensor) partitions the tensor into the parameters of
    independent runs (`BatchedMLP.group_slices`); each group has its own step count, and
    `step(active=...)` updates only the groups named, leaving the others' parameters, moments and
    step counts untouched. The kernel is elementwise, so a group's numbers do not depend on the
    other groups.
    """

    def __init__(
        self,
        params: torch.Tensor,
        grads: torch.Tensor,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: list[tuple[slice, float]] | None = None,
        groups: list[list[slice]] | None = None,
    ) -> None:
        self.params, self.grads, self.lr, self.betas, self.eps = params, grads, lr, betas, eps
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        groups = groups if groups is not None else [[slice(0, params.numel())]]
        # step counts live in tensors, as the fused kernel reads them there (no host sync on CUDA)
        self._steps = torch.zeros(len(groups), dtype=torch.float32, device=params.device)
        decays = self._group_slices(params.numel(), weight_decay or [])
        # per group: {decay: [slice, ...]}, the group's slices cut where the decay changes
        self._parts: list[dict[float, list[slice]]] = []
        for group in groups:
            by_decay: dict[float, list[slice]] = {}
            for part in group:
                for decay, covering in decays:
                    for c in covering:
                        lo, hi = max(part.start, c.start), min(part.stop, c.stop)
                        if lo < hi:
                            by_decay.setdefault(decay, []).append(slice(lo, hi))
            self._parts.append(by_decay)
        self._step_views = [self._steps[g] for g in range(len(groups))]
        self._all = tuple(range(len(groups)))
        self._kernels: dict[tuple[int, ...], list] = {}

    @property
    def groups(self) -> int:
        return len(self._parts)

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

    def _kernel_args(self, active: tuple[int, ...]) -> list:
        """Per decay, the views and step tensors of the `active` groups (built once per set)."""
        args = self._kernels.get(active)
        if args is None:
            lists: dict[float, tuple[list, list, list, list, list]] = {}
            for g in active:
                for decay, parts in self._parts[g].items():
                    views = lists.setdefault(decay, ([], [], [], [], []))
                    for part in parts:
                        for dst, t in zip(views, (self.params, self.grads, self.exp_avg, self.exp_avg_sq)):
                            dst.append(t[part])
                        views[4].append(self._step_views[g])
            args = self._kernels[active] = list(lists.items())
        return args

    def state_dict(self, group: int | None = None, slices: list[slice] | None = None) -> dict[str, torch.Tensor]:
        """The moments and step count; of one group only with `group` (its `slices`, in the
        layout of a one-group optimiser: what that run alone saves)."""
        if group is None:
            step = self._steps[0] if self.groups == 1 else self._steps
            return {"exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone(), "step": step.clone()}
        parts = slices if slices is not None else [slice(0, self.params.numel())]
        return {
            "exp_avg": torch.cat([self.exp_avg[p] for p in parts]),
            "exp_avg_sq": torch.cat([self.exp_avg_sq[p] for p in parts]),
            "step": self._steps[group].clone(),
        }

    def load_state_dict(
        self, state: dict[str, torch.Tensor], group: int | None = None, slices: list[slice] | None = None
    ) -> None:
        """Restore `state_dict`'s result (one group's, into `group`'s `slices`, with `group`)."""
        # copied into the existing tensors: the kernel's views point at them
        if group is None:
            self.exp_avg.copy_(state["exp_avg"])
            self.exp_avg_sq.copy_(state["exp_avg_sq"])
            self._steps.copy_(state["step"])
            return
        parts = slices if slices is not None else [slice(0, self.params.numel())]
        for name in ("exp_avg", "exp_avg_sq"):
            mine, values, offset = getattr(self, name), state[name], 0
            if values.shape != (sum(p.stop - p.start for p in parts),):
                raise ValueError(f"{name} of {tuple(values.shape)} does not fit this optimiser's group")
            for part in parts:
                mine[part].copy_(values[offset : offset + part.stop - part.start])
                offset += part.stop - part.start
        self._steps[group].copy_(state["step"])

    def step(self, active: tuple[int, ...] | None = None) -> None:
        """One Adam step from the current contents of `grads`, for every group or the `active` ones."""
        active = self._all if active is None else active
        if not active:
            return
        if active == self._all:
            self._steps += 1
        else:
            for g in active:
                self._step_views[g] += 1
        beta1, beta2 = self.betas
        for decay, (params, grads, exp_avg, exp_avg_sq, steps) in self._kernel_args(active):
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
