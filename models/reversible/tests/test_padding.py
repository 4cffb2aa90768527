"""run_padded: any input size through a network that needs multiples, output cropped back to the input's size."""
import pytest
import torch
import torch.nn.functional as nnf

from models.reversible import ReversibleError, run_padded
from models.reversible.padding import padding_for


@pytest.mark.parametrize("dims,spatial,multiple", [(1, (13,), 4), (2, (7, 10), 4), (2, (5, 9), (2, 8)),
                                                   (3, (5, 6, 7), 4)])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_identity_comes_back_exactly_and_the_function_sees_multiples(dims, spatial, multiple, mode):
    x = torch.randn((2, 3) + spatial, dtype=torch.float64)
    seen = []

    def fn(t):
        seen.append(tuple(t.shape[2:]))
        return t * 1.0
    y = run_padded(fn, x, multiple, mode)
    per_axis = (multiple,) * dims if isinstance(multiple, int) else multiple
    assert all(s % m == 0 and s >= n for s, m, n in zip(seen[0], per_axis, spatial))
    assert torch.equal(y, x)


def test_padding_is_centred_and_uses_the_mode():
    x = torch.arange(5.0).view(1, 1, 5)
    seen = []
    run_padded(lambda t: seen.append(t) or t, x, 8, "reflect")  # 3 extra: 1 before, 2 after
    assert seen[0].flatten().tolist() == [1.0, 0, 1, 2, 3, 4, 3, 2]
    seen.clear()
    run_padded(lambda t: seen.append(t) or t, torch.ones(1, 1, 2), 8, "reflect")  # too small to reflect: replicate
    assert seen[0].flatten().tolist() == [1.0] * 8


def test_multiples_pass_through_untouched():
    x = torch.randn(1, 2, 8, 12)
    assert run_padded(lambda t: t, x, 4) is x
    assert padding_for((8, 12), 4) == [0, 0] and padding_for((9, 12), (4, 5)) == [3, 3]


def test_output_channels_may_change_and_gradients_reach_the_input():
    conv = torch.nn.Conv2d(3, 5, 3, padding=1, padding_mode="reflect").double()
    x = torch.randn(1, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    y = run_padded(conv, x, 4, "reflect")
    assert y.shape == (1, 5, 6, 7)
    # the same as the convolution on the explicitly padded input, cropped
    ref = conv(nnf.pad(x, [0, 1, 1, 1], mode="reflect"))[:, :, 1:7, 0:7]
    assert torch.allclose(y, ref, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: run_padded(conv, t, 4, "reflect"), (x,))


def test_errors():
    x = torch.randn(1, 1, 5, 5)
    with pytest.raises(ReversibleError, match="padding mode"):
        run_padded(lambda t: t, x, 4, "circular-ish")
    with pytest.raises(ReversibleError, match="size-preserving"):
        run_padded(lambda t: t[:, :, ::2], x, 4)
    with pytest.raises(ReversibleError, match="a multiple per spatial axis"):
        run_padded(lambda t: t, x, (4, 4, 4))
