"""The third audit's cases (a MemCNN/RevLib user's walkthrough): modules of the user's own that update and read a
buffer in eval mode, and modules that write their parameters in place on every call. Each matches plain autograd
(``memory_saving=False``) in float64, both directions, or is refused with a ReversibleError."""
import pytest
import torch
from torch import nn

from models.reversible import AdditiveCoupling, InvertibleUNet, Recompute, ReversibleError, ReversibleSequence

from .helpers import assert_matches_plain, conv_body, make_input

DIRECTIONS = ["forward", "inverse"]


class Counter(nn.Module):
    """Counts its calls in a buffer and reads the count, in either mode (it used to be recomputed from the count its
    forward left in eval mode: gradients off by half, the count advanced twice)."""

    def __init__(self):
        super().__init__()
        self.body = conv_body()
        self.register_buffer("calls", torch.zeros((), dtype=torch.float64))

    def forward(self, x):
        self.calls += 1
        return self.body(x) / self.calls


class Writer(nn.Module):
    """Writes its weight in place on each call: ``scale`` 0.5 changes it every call; ``clip`` leaves it as it was
    after the first."""

    def __init__(self, kind):
        super().__init__()
        self.conv, self.kind = nn.Conv2d(2, 2, 3, padding=1), kind

    def forward(self, x):
        with torch.no_grad():
            self.conv.weight.mul_(0.5) if self.kind == "scale" else self.conv.weight.clamp_(-0.1, 0.1)
        return self.conv(x)


def core_of(f, memory_saving, train=True):
    net = ReversibleSequence([AdditiveCoupling(f, conv_body()), AdditiveCoupling(conv_body(), conv_body())],
                             memory_saving=memory_saving).double()
    return net.train(train)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_buffer_updated_and_read_in_either_mode(direction, train):
    assert_matches_plain(lambda ms: (core_of(Counter(), ms, train), []), make_input(), direction)


@pytest.mark.parametrize("train", [True, False])
def test_a_recomputed_module_that_updates_a_buffer_in_either_mode(train):
    def make(memory_saving):
        return Recompute(Counter(), enabled=memory_saving).double().train(train), []
    assert_matches_plain(make, make_input((2, 2, 5, 5)), "forward")


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_parameter_written_again_to_the_same_values_matches(direction):
    assert_matches_plain(lambda ms: (core_of(Writer("clip"), ms), []), make_input(), direction)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_parameter_written_on_every_call_is_refused(direction):
    torch.manual_seed(0)
    net = core_of(Writer("scale"), True)
    x = make_input().requires_grad_(True)
    y = net.inverse(x) if direction == "inverse" else net(x)
    with pytest.raises(ReversibleError, match=r"Conv2d.weight is written in place on every call"):
        y.square().sum().backward()
    # the same under Recompute (a module that need not be invertible)
    wrapped = Recompute(Writer("scale")).double()
    with pytest.raises(ReversibleError, match=r"written in place on every call"):
        wrapped(make_input((2, 2, 5, 5)).requires_grad_(True)).sum().backward()


def test_a_reentrant_checkpoint_inside_f_is_refused_with_what_to_do():
    """torch.utils.checkpoint(use_reentrant=True) cannot run under the torch.autograd.grad the engine differentiates
    each recomputed call with: said as the library's refusal (torch's own message spoke of a .grad() never called);
    use_reentrant=False matches plain autograd."""
    from torch.utils.checkpoint import checkpoint

    class Checkpointed(nn.Module):
        def __init__(self, reentrant):
            super().__init__()
            self.body, self.reentrant = conv_body(), reentrant

        def forward(self, x):
            return checkpoint(self.body, x, use_reentrant=self.reentrant)

    net = core_of(Checkpointed(True), True)
    with pytest.raises(ReversibleError, match=r"use_reentrant=True\) inside it cannot run .* pass use_reentrant=False"):
        net(make_input().requires_grad_(True)).sum().backward()
    assert_matches_plain(lambda ms: (core_of(Checkpointed(False), ms), []), make_input(), "forward")


def test_the_unets_resampling_error_names_its_argument():
    with pytest.raises(ReversibleError, match=r"InvertibleUNet: resampling_init="):
        InvertibleUNet(4, [1, 1], stride=3)
