"""Shared builders for the reversible library's tests."""
import torch
from torch import nn

from models.reversible import AdditiveCoupling, AffineCoupling, CustomCoupling, ReversibleSequence

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
BATCHNORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
INSTANCENORM = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
DROPOUT = {1: nn.Dropout, 2: nn.Dropout2d, 3: nn.Dropout3d}
SPATIAL = {1: (10,), 2: (6, 5), 3: (4, 3, 5)}
BETA = 0.8


def body(dims, cin, cout, norm=None, dropout=0.0):
    """conv-norm-ReLU-[dropout]-conv mapping cin -> cout channels at the same spatial size.
    Convolutions directly before a norm have no bias: its exact gradient is zero, so a relative comparison of
    it would compare rounding noise."""
    layers = [CONV[dims](cin, cout, 3, padding=1, bias=norm is None)]
    if norm == "batch":
        layers.append(BATCHNORM[dims](cout))
    elif norm == "instance":
        layers.append(INSTANCENORM[dims](cout, affine=True, track_running_stats=True))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(CONV[dims](cout, cout, 3, padding=1))
    return nn.Sequential(*layers)


def coupling(kind, dims, channels, norm=None, dropout=0.0, split=None):
    c1 = channels // 2 if split is None else split
    c2 = channels - c1
    factor = 2 if kind == "affine2x" else 1
    F = body(dims, c2, factor * c1, norm, dropout)
    G = body(dims, c1, factor * c2, norm, dropout)
    if kind == "additive":
        return AdditiveCoupling(F, G, split=split)
    if kind in ("affine", "affine2x"):
        return AffineCoupling(F, G, split=split)
    if kind == "momentum":
        return CustomCoupling(F, G, merge=lambda o, h: o * BETA + h * (1 - BETA),
                              unmerge=lambda y, h: (y - h * (1 - BETA)) / BETA, split=split)
    raise ValueError(kind)


def sequence(kind, dims, channels, depth, memory_saving, seed=0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    return ReversibleSequence([coupling(kind, dims, channels, **kw) for _ in range(depth)],
                              memory_saving=memory_saving).to(dtype)


def pair(kind, dims, channels, depth, seed=0, dtype=torch.float64, **kw):
    """The same network twice: memory-saving and the plain-autograd reference."""
    return (sequence(kind, dims, channels, depth, True, seed, dtype, **kw),
            sequence(kind, dims, channels, depth, False, seed, dtype, **kw))


def rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / b.norm()) if b.norm() > 0 else float((a - b).norm())


class Direction(nn.Module):
    """``net`` or ``net.inverse`` as a module, for torch.func.functional_call."""

    def __init__(self, net, direction):
        super().__init__()
        self.net, self.direction = net, direction

    def forward(self, x):
        return self.net.inverse(x) if self.direction == "inverse" else self.net(x)


def conv_body(c=2, dropout=0.0):
    layers = [nn.Conv2d(c, c, 3, padding=1), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Conv2d(c, c, 3, padding=1))


def make_input(shape=(2, 4, 5, 5), seed=7):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64)


def grads_of(make, x, direction, seed=0):
    """Output, gradients (input, parameters, the extra tensors ``make`` returns) and buffers of the memory-saving
    and the plain network."""
    results = []
    for memory_saving in (True, False):
        torch.manual_seed(seed)
        net, more = make(memory_saving)
        xi = x.clone().requires_grad_(True)
        torch.manual_seed(123)
        y = net.inverse(xi) if direction == "inverse" else net(xi)
        w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
        loss = (y * w).sum() + y.square().mean()
        results.append((y.detach(), torch.autograd.grad(loss, [xi] + list(net.parameters()) + list(more)),
                        [b.clone() for b in net.buffers()]))
    return results


def assert_matches_plain(make, x, direction, tol=1e-8):
    (ys, gs, bs), (yp, gp, bp) = grads_of(make, x, direction)
    assert rel(ys, yp) <= tol
    assert len(gs) == len(gp)
    for a, b in zip(gs, gp):
        assert rel(a, b) <= tol
    for a, b in zip(bs, bp):  # running statistics and spectral-norm vectors end as plain autograd leaves them
        assert rel(a, b) <= tol if b.is_floating_point() else torch.equal(a, b)
