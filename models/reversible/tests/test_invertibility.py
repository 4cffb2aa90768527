"""Invertibility: inverse(forward(x)) = x and forward(inverse(y)) = y, in float64 and float32."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from models.reversible import ReversibleSequence, is_invertible, reconstruction_error

from .helpers import SPATIAL, coupling, sequence

KINDS = ["additive", "affine", "affine2x", "momentum"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_float64_exact(kind, dims):
    net = sequence(kind, dims, 6, depth=4, memory_saving=True, norm="batch")
    assert is_invertible(net, (2, 6) + SPATIAL[dims], rtol=1e-10)
    x = torch.randn((2, 6) + SPATIAL[dims], dtype=torch.float64)
    assert reconstruction_error(net, x) <= 1e-10
    assert reconstruction_error(net, x, inverse=True) <= 1e-10


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("depth", [1, 4, 8])
def test_float32_up_to_depth_8(kind, depth):
    net = sequence(kind, 2, 8, depth=depth, memory_saving=True, dtype=torch.float32, norm="instance")
    x = torch.randn(2, 8, 16, 16)
    assert reconstruction_error(net, x) <= 1e-4
    assert reconstruction_error(net, x, inverse=True) <= 1e-4


def test_train_mode_with_batchnorm_is_invertible_and_check_restores_state():
    net = sequence("affine", 2, 6, depth=3, memory_saving=True, norm="batch", dropout=0.0)
    net.train()
    before = [b.clone() for b in net.buffers()]
    assert is_invertible(net, (4, 6, 5, 5), eval_mode=False)
    assert net.training
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))


class NotInvertible(nn.Module):
    def forward(self, x):
        return x * 2

    def inverse(self, y):
        return y / 2 + 1e-3


def test_is_invertible_detects_a_wrong_inverse():
    assert not is_invertible(NotInvertible(), (2, 4, 3, 3), dtype=torch.float64)
    broken = ReversibleSequence([coupling("additive", 2, 4).double(), NotInvertible()])
    assert not is_invertible(broken, (2, 4, 3, 3))


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(KINDS), dims=st.integers(1, 3), depth=st.integers(1, 6),
       batch=st.integers(1, 3), channels=st.integers(2, 9), size=st.integers(1, 5), data=st.data())
def test_property_invertible_any_shape(kind, dims, depth, batch, channels, size, data):
    split = data.draw(st.one_of(st.none(), st.integers(1, channels - 1)))
    spatial = tuple(data.draw(st.integers(1, size)) for _ in range(dims))
    torch.manual_seed(data.draw(st.integers(0, 1000)))
    net = ReversibleSequence([coupling(kind, dims, channels, split=split) for _ in range(depth)]).double()
    shape = (batch, channels) + spatial
    assert is_invertible(net, shape, rtol=1e-10)
    # memory-saving training forward computes the same function as plain evaluation
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        ref = net(x)
    y = net(x)
    assert y.grad_fn is not None
    assert torch.allclose(y, ref, rtol=0, atol=1e-12)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
