"""check_gradients: memory-saving against plain gradients on a user's batch, in one call, without side effects."""
import pytest
import torch
from torch import nn

from models.reversible import (AffineCoupling, CustomCoupling, GradientReport, ReversibleError, ReversibleSequence,
                               check_gradients)

from .helpers import sequence


def amplifying(dtype, depth=4):
    """Couplings with an unbounded scale exp(8 h): each block can amplify by e^8, so rebuilt inputs lose precision."""
    torch.manual_seed(0)
    body = lambda: nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Tanh(), nn.Conv2d(2, 2, 3, padding=1))
    return ReversibleSequence([CustomCoupling(body(), body(), merge=lambda o, h: o * torch.exp(8 * h) + h,
                                              unmerge=lambda y, h: (y - h) / torch.exp(8 * h))
                               for _ in range(depth)]).to(dtype)


def batch(dtype=torch.float64, shape=(2, 4, 5, 5)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=dtype)


@pytest.mark.parametrize("inverse", [False, True])
def test_a_sound_core_passes_and_is_left_as_it_was(inverse):
    net = sequence("affine", 2, 6, 3, True, norm="batch", dropout=0.3)
    net.train()
    x = batch(shape=(3, 6, 5, 5))
    buffers = [b.clone() for b in net.buffers()]
    rng = torch.get_rng_state()
    report = check_gradients(net, x, inverse=inverse)
    assert isinstance(report, GradientReport) and report.ok
    assert report.max_error <= 1e-8 and report.rtol == 1e-8
    assert len(report.parameter_errors) == len(list(net.parameters()))
    assert "match plain autograd" in str(report)
    assert all(torch.equal(a, b) for a, b in zip(buffers, net.buffers()))
    assert torch.equal(rng, torch.get_rng_state())
    assert net.training and net.memory_saving
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_strongly_amplifying_core_is_reported(dtype):
    net = amplifying(dtype)
    with pytest.raises(ReversibleError, match=r"DIFFER plain autograd(.|\n)*amplifies strongly"):
        check_gradients(net, batch(dtype))
    report = check_gradients(net, batch(dtype), raise_on_mismatch=False)
    assert not report.ok and report.max_error > 10 * report.rtol
    assert report.worst(1)[0][1] == report.max_error
    assert net.memory_saving  # switched back on
    # the same depth with AffineCoupling's bounded scale is fine
    torch.manual_seed(0)
    body = lambda: nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Tanh(), nn.Conv2d(2, 2, 3, padding=1))
    bounded = ReversibleSequence([AffineCoupling(body(), body()) for _ in range(4)]).to(dtype)
    assert check_gradients(bounded, batch(dtype)).ok


def test_a_model_around_cores_and_a_custom_loss():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 6, 1)
            self.core = sequence("additive", 2, 6, 2, True, dropout=0.2)
            self.head = nn.Conv2d(6, 1, 1)

        def forward(self, x):
            return self.head(self.core(self.stem(x)))
    model = Model().double()
    report = check_gradients(model, batch(shape=(2, 3, 5, 5)), loss_fn=lambda y: y.square().mean())
    assert report.ok and report.cores == ["core"]
    assert "stem.weight" in report.parameter_errors and "head.weight" in report.parameter_errors


def test_nothing_to_compare_is_an_error():
    with pytest.raises(ReversibleError, match="no memory-saving ReversibleSequence"):
        check_gradients(sequence("additive", 2, 6, 2, False), batch(shape=(2, 6, 5, 5)))
