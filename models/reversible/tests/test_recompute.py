"""recompute / Recompute: non-invertible modules whose graph keeps only their input. Against plain autograd in
float64: gradients of the input and every parameter, norm running statistics, the random state after backward,
several calls per step; refusals; and that the graph really keeps only the input."""
import copy

import pytest
import torch
from torch import nn

from models.reversible import Recompute, ReversibleError, graph_saved_bytes, is_recomputing, recompute
from models.reversible.tests.helpers import BATCHNORM, CONV, INSTANCENORM, SPATIAL, rel


def net(dims, norm="batch", dropout=0.3, channels=3, width=6):
    """A non-invertible network (channels change, norm, dropout): an encoder-like stack."""
    layers = [CONV[dims](channels, width, 3, padding=1, bias=False)]
    layers.append(BATCHNORM[dims](width) if norm == "batch" else
                  INSTANCENORM[dims](width, affine=True, track_running_stats=True))
    layers += [nn.LeakyReLU(0.2), nn.Dropout(dropout), CONV[dims](width, 2, 3, padding=1)]
    return nn.Sequential(*layers).double()


def step(module, x, use_recompute, calls=2, seed=7):
    """``calls`` calls (a fresh input each, like the passes of a training step) and one backward; returns the input
    gradients, the parameter gradients, the buffers and the global random state after it."""
    torch.manual_seed(seed)
    xs = [(x * (k + 1)).detach().requires_grad_() for k in range(calls)]
    outs = [recompute(module, xi) if use_recompute else module(xi) for xi in xs]
    sum((o ** 2).sum() * (k + 1) for k, o in enumerate(outs)).backward()
    return ([xi.grad for xi in xs], [p.grad.clone() for p in module.parameters()],
            [b.clone() for b in module.buffers()], torch.get_rng_state())


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_recompute_matches_plain_autograd(dims, norm):
    torch.manual_seed(0)
    a = net(dims, norm)
    b = copy.deepcopy(a)
    x = torch.randn((2, 3) + SPATIAL[dims], dtype=torch.float64)
    got, ref = step(a, x, True), step(b, x, False)
    for g, r in zip(got[0] + got[1], ref[0] + ref[1]):
        assert rel(g, r) <= 1e-12
    for g, r in zip(got[2], ref[2]):  # running mean/var, num_batches_tracked: as one plain call per pass leaves them
        assert torch.equal(g, r)
    assert torch.equal(got[3], ref[3])  # the random state after backward is plain autograd's


def test_the_graph_keeps_only_the_input():
    torch.manual_seed(0)
    m = nn.Sequential(*[nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()) for _ in range(8)]).double()
    x = torch.randn(1, 16, 32, 32, dtype=torch.float64, requires_grad=True)
    params = list(m.parameters())
    plain = graph_saved_bytes(m(x), exclude=params)
    kept = graph_saved_bytes(recompute(m, x), exclude=params)
    one = x.numel() * x.element_size()
    assert plain >= 8 * one and kept <= 2 * one  # the input and the output, not 16 activations


def test_hooks_run_again_and_know_it():
    m = net(2)
    seen = []
    m[0].register_forward_hook(lambda mod, i, o: seen.append(is_recomputing()))
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    recompute(m, x).sum().backward()
    assert seen == [False, True]


def test_plain_call_without_a_graph_and_when_disabled():
    m = net(2)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    with torch.no_grad():
        y = recompute(m, x)
    assert y.grad_fn is None
    wrapped = Recompute(m, enabled=False)
    z = wrapped(x.requires_grad_())
    assert graph_saved_bytes(z, exclude=list(m.parameters())) > 2 * x.numel() * x.element_size()
    assert list(wrapped.state_dict()) == ["module." + k for k in m.state_dict()]


def test_autocast_matches_plain():
    torch.manual_seed(0)
    a = net(2, dropout=0.0).float()
    b = copy.deepcopy(a)
    x = torch.randn(2, 3, 8, 8)
    grads = []
    for module, use in ((a, True), (b, False)):
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = recompute(module, xi) if use else module(xi)
        y.float().square().sum().backward()
        grads.append([xi.grad] + [p.grad for p in module.parameters()])
    for g, r in zip(*grads):
        assert torch.equal(g, r)


def test_refusals():
    m = net(2)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    y = recompute(m, x)
    with pytest.raises(ReversibleError, match="memory_saving=False|second-order|create_graph"):
        torch.autograd.grad(y.sum(), x, create_graph=True)
    y = recompute(m, x)
    with torch.no_grad():
        m[0].weight.add_(1.0)  # an optimizer step before backward
    with pytest.raises((ReversibleError, RuntimeError), match="in place|modified"):
        y.sum().backward()
    with pytest.raises(ReversibleError, match="tensor"):
        recompute(m, [x])
