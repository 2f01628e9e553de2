"""Batched MLPs with hand-written backward passes over one flat parameter buffer, and Adam.

Why not `torch.nn` + autograd: the networks here are small (Pendulum's SAC has one hidden
layer of 128), so an update is bound by per-operation overhead, not arithmetic. Keeping every
parameter of a network in one contiguous tensor makes Adam and Polyak averaging a handful of
operations regardless of depth, computing E networks (twin critics, model ensembles) as one
batched matmul divides the launches by E, and a hand-written backward skips the autograd graph
and every gradient nobody needs (e.g. critic weights when differentiating the actor loss).
The backward passes are checked against autograd in `tests/test_nets.py`.

Shapes: E networks, batch B. Inputs are `E x B x in_dim`, or `B x in_dim` shared by all members.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

ACTIVATIONS = ("relu", "swish")


@dataclass
class Cache:
    """What a forward pass keeps for its backward pass: the input of every layer and, for swish,
    every hidden pre-activation."""

    inputs: list[torch.Tensor]
    pre: list[torch.Tensor]


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
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.ensemble, self.sizes, self.activation = ensemble, list(sizes), activation
        shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        total = sum(ensemble * (i * o + o) for i, o in shapes)
        self.params = torch.empty(total, device=device)
        self.grads = torch.zeros(total, device=device)
        self.weights, self.biases = self._views(self.params, shapes)
        self.grad_weights, self.grad_biases = self._views(self.grads, shapes)
        for w, b, (fan_in, _) in zip(self.weights, self.biases, shapes):
            # torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
            bound = 1.0 / math.sqrt(fan_in)
            w.uniform_(-bound, bound, generator=generator)
            b.uniform_(-bound, bound, generator=generator)

    def _views(
        self, flat: torch.Tensor, shapes: list[tuple[int, int]]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        weights, biases, offset = [], [], 0
        e = self.ensemble
        for i, o in shapes:
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
        other.ensemble, other.sizes, other.activation = self.ensemble, self.sizes, self.activation
        shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        other.params = self.params.clone()
        other.grads = torch.zeros_like(self.grads)
        other.weights, other.biases = other._views(other.params, shapes)
        other.grad_weights, other.grad_biases = other._views(other.grads, shapes)
        return other

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        """x: `E x B x in` or `B x in` (shared by all members) -> `E x B x out`.

        Pass a fresh `Cache([], [])` to keep what `backward` needs.
        """
        if x.dim() == 2:
            x = x.expand(self.ensemble, *x.shape)
        last = self.num_layers - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            if cache is not None:
                cache.inputs.append(x)
            z = torch.baddbmm(b, x, w)
            if layer == last:
                return z
            if self.activation == "relu":
                x = z.relu_()
            else:
                if cache is not None:
                    cache.pre.append(z)
                x = torch.nn.functional.silu(z)
        raise AssertionError("unreachable")

    def backward(
        self,
        cache: Cache,
        grad_out: torch.Tensor,
        param_grads: bool = True,
        input_grad: bool = False,
    ) -> torch.Tensor | None:
        """Backpropagate `grad_out` (`E x B x out`, dLoss/dOutput) through the cached forward pass.

        With `param_grads`, writes dLoss/dParams into `grads` (overwriting, not accumulating).
        With `input_grad`, returns dLoss/dInput as `E x B x in`.
        """
        g = grad_out
        for layer in range(self.num_layers - 1, -1, -1):
            inp = cache.inputs[layer]
            if param_grads:
                torch.bmm(inp.transpose(1, 2), g, out=self.grad_weights[layer])
                torch.sum(g, dim=1, keepdim=True, out=self.grad_biases[layer])
            if layer == 0 and not input_grad:
                return None
            g = torch.bmm(g, self.weights[layer].transpose(1, 2))
            if layer == 0:
                return g
            if self.activation == "relu":
                # the layer's input is relu(z): positive exactly where z was
                g = torch.ops.aten.threshold_backward(g, inp, 0.0)
            else:
                g = torch.ops.aten.silu_backward(g, cache.pre[layer - 1])
        raise AssertionError("unreachable")


class Adam:
    """Adam (Kingma & Ba 2015) on one flat parameter tensor, numerically as `torch.optim.Adam`."""

    def __init__(
        self,
        params: torch.Tensor,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        self._denom = torch.empty_like(params)
        self.steps = 0

    def step(self, grads: torch.Tensor) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        self.exp_avg.lerp_(grads, 1.0 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grads, grads, value=1.0 - beta2)
        bias_correction1 = 1.0 - beta1**self.steps
        bias_correction2 = 1.0 - beta2**self.steps
        torch.sqrt(self.exp_avg_sq, out=self._denom)
        self._denom.div_(math.sqrt(bias_correction2)).add_(self.eps)
        self.params.addcdiv_(self.exp_avg, self._denom, value=-self.lr / bias_correction1)
