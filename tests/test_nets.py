"""BatchedMLP's hand-written backward against autograd; flat Adam against torch.optim.Adam."""

from __future__ import annotations

import pytest
import torch

from mbpo.nets import Adam, BatchedMLP, SlotOverwrittenError

import reference


@pytest.mark.parametrize("activation", ["relu", "swish"])
@pytest.mark.parametrize("shared_input", [True, False])
def test_backward_matches_autograd(activation, shared_input):
    gen = torch.Generator().manual_seed(0)
    net = BatchedMLP(3, [5, 7, 6, 4], activation, torch.device("cpu"), gen)
    x = torch.randn((9, 5) if shared_input else (3, 9, 5), generator=gen)
    upstream = torch.randn(3, 9, 4, generator=gen)

    out = net.forward(x, "train").clone()
    grad_in = net.backward("train", upstream, input_grad=True).clone()

    flat = net.params.clone().requires_grad_(True)
    xr = x.clone().requires_grad_(True)
    ref = reference.mlp(net, flat, xr)
    torch.testing.assert_close(out, ref.detach())
    g_flat, g_x = torch.autograd.grad((ref * upstream).sum(), (flat, xr))
    torch.testing.assert_close(net.grads, g_flat, atol=1e-5, rtol=1e-5)
    expected_in = grad_in.sum(0) if shared_input else grad_in
    torch.testing.assert_close(expected_in, g_x, atol=1e-5, rtol=1e-5)


def test_input_grad_without_param_grads_leaves_grads_untouched():
    gen = torch.Generator().manual_seed(1)
    net = BatchedMLP(2, [3, 8, 1], "relu", torch.device("cpu"), gen)
    net.grads.fill_(7.0)
    net.forward(torch.randn(4, 3, generator=gen), "train")
    g = net.backward("train", torch.ones(2, 4, 1), param_grads=False, input_grad=True)
    assert g.shape == (2, 4, 3)
    assert torch.all(net.grads == 7.0)


def test_copy_is_independent():
    net = BatchedMLP(2, [3, 4, 1], "relu", torch.device("cpu"), torch.Generator().manual_seed(0))
    twin = net.copy()
    torch.testing.assert_close(twin.params, net.params)
    net.params.add_(1.0)
    assert not torch.equal(twin.params, net.params)
    twin.weights[0].zero_()  # views must point into the copy's own buffer
    assert twin.params.abs().sum() > 0 and torch.all(twin.weights[0] == 0)


def test_init_is_torch_linear_bounds_and_seeded():
    a = BatchedMLP(1, [100, 50, 2], "relu", torch.device("cpu"), torch.Generator().manual_seed(3))
    b = BatchedMLP(1, [100, 50, 2], "relu", torch.device("cpu"), torch.Generator().manual_seed(3))
    assert torch.equal(a.params, b.params)
    assert a.weights[0].abs().max() <= 0.1 and a.weights[1].abs().max() <= 1 / 50**0.5


def test_adam_matches_torch_optim():
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(50, generator=gen)
    ref = p.clone().requires_grad_(True)
    grads = torch.zeros(50)
    ours = Adam(p, grads, lr=1e-2)
    theirs = torch.optim.Adam([ref], lr=1e-2)
    for _ in range(20):
        g = torch.randn(50, generator=gen)
        grads.copy_(g)
        ours.step()
        ref.grad = g.clone()
        theirs.step()
    torch.testing.assert_close(p, ref.detach(), atol=1e-6, rtol=1e-6)


def test_slots_are_independent_and_reused():
    gen = torch.Generator().manual_seed(2)
    net = BatchedMLP(2, [3, 8, 1], "swish", torch.device("cpu"), gen)
    xa, xb = torch.randn(4, 3, generator=gen), torch.randn(6, 3, generator=gen)
    a = net.forward(xa, "a")
    a_before = a.clone()
    net.forward(xb, "b")
    assert torch.equal(a, a_before)  # another slot leaves "a" alone
    again = net.forward(xa * 2, "a")
    assert again.data_ptr() == a.data_ptr()  # same batch size: the buffers are reused
    assert net.forward(xb, "a").shape == (2, 6, 1)  # a new batch size gets new buffers


def test_subset_computes_the_chosen_members():
    gen = torch.Generator().manual_seed(4)
    net = BatchedMLP(5, [3, 8, 2], "swish", torch.device("cpu"), gen)
    x = torch.randn(6, 3, generator=gen)
    full = net.forward(x, "all").clone()
    members = torch.tensor([3, 0])
    sub = net.subset(members)
    torch.testing.assert_close(sub.forward(x, "all"), full[members])
    buffer = sub.forward(x, "all").data_ptr()
    net.params.add_(1.0)
    again = net.subset(torch.tensor([1, 4]), into=sub)
    assert again is sub and sub.forward(x, "all").data_ptr() == buffer  # refilled, slots kept
    torch.testing.assert_close(sub.forward(x, "all"), net.forward(x, "all")[[1, 4]])


def test_adam_weight_decay_groups_match_torch_optim_param_groups():
    gen = torch.Generator().manual_seed(1)
    p = torch.randn(30, generator=gen)
    parts = [p[:10].clone(), p[10:20].clone(), p[20:].clone()]
    refs = [t.requires_grad_(True) for t in parts]
    theirs = torch.optim.Adam(
        [
            {"params": [refs[0]], "weight_decay": 0.1},
            {"params": [refs[1]], "weight_decay": 0.0},
            {"params": [refs[2]], "weight_decay": 0.3},
        ],
        lr=1e-2,
    )
    grads = torch.zeros(30)
    ours = Adam(p, grads, lr=1e-2, weight_decay=[(slice(20, 30), 0.3), (slice(0, 10), 0.1)])
    for _ in range(10):
        g = torch.randn(30, generator=gen)
        grads.copy_(g)
        ours.step()
        for ref, part in zip(refs, g.split(10)):
            ref.grad = part.clone()
        theirs.step()
    torch.testing.assert_close(p, torch.cat([r.detach() for r in refs]), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "swish"])
def test_backward_refuses_a_slot_overwritten_since_its_forward(activation):
    gen = torch.Generator().manual_seed(5)
    net = BatchedMLP(2, [3, 8, 8, 1], activation, torch.device("cpu"), gen)
    x = torch.randn(4, 3, generator=gen)
    upstream = torch.ones(2, 4, 1)
    out = net.forward(x, "a")
    out.mul_(2.0)  # the output is the caller's to reuse: backward does not read it
    net.backward("a", upstream)
    net.forward(x, "a")
    x.add_(1.0)  # the saved input changed: the weight gradient would be wrong
    with pytest.raises(SlotOverwrittenError, match="slot 'a'"):
        net.backward("a", upstream)
    net.forward(x, "a")
    net._slots["a"].out[0].zero_()  # a hidden activation changed
    with pytest.raises(SlotOverwrittenError):
        net.backward("a", upstream, param_grads=False, input_grad=True)
    net.forward(x, "a")
    net.forward(2 * x, "b")  # another slot leaves "a" intact
    net.backward("a", upstream)
