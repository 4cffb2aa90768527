"""Invertible resampling, orthogonal channel mixing and the invertible U-Net: exact inverses, float64 gradients
against plain autograd, orthogonality through training, memory, sizes and padding, 1D/2D/3D."""
import pytest
import torch

from models.reversible import (InvertibleDownsampling, InvertibleUNet, InvertibleUpsampling, OrthogonalChannelMixing,
                               ReversibleError, graph_saved_bytes)
from models.reversible.resampling import initial_matrix

SHAPES = {1: (2, 4, 24), 2: (2, 4, 16, 12), 3: (1, 4, 8, 8, 4)}


def perturbed(module, scale=0.05, seed=0):
    """Random values in every parameter (the couplings start as the identity and the resampling as its init, which
    would make the tests too easy)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


def max_rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


# -- resampling and mixing ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("init", ["haar", "squeeze", "pixel_shuffle"])
@pytest.mark.parametrize("method", ["exp", "cayley"])
def test_resampling_is_exactly_invertible(dims, init, method):
    down = perturbed(InvertibleDownsampling(3, 2, dims, init, method)).double()
    x = torch.randn((2, 3) + (6,) * dims, dtype=torch.float64)
    y = down(x)
    assert y.shape == (2, 3 * 2 ** dims) + (3,) * dims
    assert (down.inverse(y) - x).abs().max() <= 1e-12
    up = perturbed(InvertibleUpsampling(3, 2, dims, init, method), seed=1).double()
    assert (up.inverse(up(y)) - y).abs().max() <= 1e-12 and up(y).shape == x.shape
    assert abs(y.norm() - x.norm()) <= 1e-10 * x.norm()  # orthogonal: norms are kept


def test_resampling_inits_match_their_definitions():
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    ps = InvertibleDownsampling(3, 2, 2, "pixel_shuffle").double()
    assert torch.equal(ps(x), torch.pixel_unshuffle(x, 2))
    sq = InvertibleDownsampling(3, 2, 2, "squeeze").double()
    # squeeze: offset-major, so output channel k * C + c holds offset k of channel c
    unshuffled = torch.pixel_unshuffle(x, 2).reshape(2, 3, 4, 4, 3)
    assert torch.equal(sq(x), unshuffled.transpose(1, 2).reshape(2, 12, 4, 3))
    haar = InvertibleDownsampling(1, 2, 2, "haar").double()
    const = torch.full((1, 1, 4, 4), 3.0, dtype=torch.float64)
    out = haar(const)
    assert torch.allclose(out[:, 0], torch.full((1, 2, 2), 6.0, dtype=torch.float64))  # 2x2 mean * 2
    assert out[:, 1:].abs().max() <= 1e-12  # no detail in a constant image
    aniso = InvertibleDownsampling(2, (1, 2, 2), 3, "haar").double()
    v = torch.randn(1, 2, 3, 4, 6, dtype=torch.float64)
    assert aniso(v).shape == (1, 8, 3, 2, 3) and (aniso.inverse(aniso(v)) - v).abs().max() <= 1e-12
    for init in ("haar", "squeeze", "pixel_shuffle"):
        k = initial_matrix(init, 3, (2, 2, 2))
        assert (k @ k.T - torch.eye(24, dtype=torch.float64)).abs().max() <= 1e-12


def test_resampling_errors_are_clear():
    with pytest.raises(ReversibleError, match="not a multiple of the stride"):
        InvertibleDownsampling(2, 2, 2)(torch.randn(1, 2, 5, 4))
    with pytest.raises(ReversibleError, match="haar' needs stride 1 or 2"):
        InvertibleDownsampling(2, 3, 2, "haar")
    with pytest.raises(ReversibleError, match="init must be one of"):
        InvertibleDownsampling(2, 2, 2, "wavelet")
    with pytest.raises(ReversibleError, match="method must be one of"):
        InvertibleDownsampling(2, 2, 2, "haar", "svd")
    with pytest.raises(ReversibleError, match=r"expects input shaped \(N, 2"):
        InvertibleDownsampling(2, 2, 2)(torch.randn(1, 3, 4, 4))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_channel_mixing_is_orthogonal_and_invertible(dims):
    mix = OrthogonalChannelMixing(5, dims).double()
    x = torch.randn((2, 5) + (4,) * dims, dtype=torch.float64)
    y = mix(x)
    assert (mix.inverse(y) - x).abs().max() <= 1e-12
    assert (y - x).abs().max() > 0.1  # random init: it really mixes
    assert abs(y.norm() - x.norm()) <= 1e-10 * x.norm()


@pytest.mark.parametrize("method", ["exp", "cayley"])
def test_matrices_stay_orthogonal_after_optimizer_steps(method):
    torch.manual_seed(0)
    net = InvertibleUNet(4, [1, 1, 1], dims=2, channel_mixing=True, resampling_method=method).double()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    x = torch.randn(2, 4, 16, 16, dtype=torch.float64)
    target = torch.randn_like(x)
    for _ in range(10):
        opt.zero_grad()
        ((net(x) - target) ** 2).mean().backward()
        opt.step()
    mats = [m.kernel_matrix for m in net.modules() if hasattr(m, "kernel_matrix")]
    assert len(mats) == 4 + 6  # 2 downsamplings, 2 upsamplings, a mixing after each of the 6 couplings
    for m in mats:
        assert m.weight.abs().max() > 1e-3  # it moved
        k = m()
        assert (k @ k.T - torch.eye(k.shape[0], dtype=k.dtype)).norm() <= 1e-6


# -- the invertible U-Net -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("coupling", ["additive", "affine"])
def test_iunet_is_exactly_invertible(dims, coupling):
    torch.manual_seed(dims)
    net = perturbed(InvertibleUNet(4, [1, 2, 1], dims=dims, coupling=coupling, channel_mixing=True)).double()
    x = torch.randn(SHAPES[dims], dtype=torch.float64)
    y = net(x)
    assert y.shape == x.shape and (y - x).abs().max() > 0.1
    assert (net.inverse(y) - x).abs().max() <= 1e-10
    assert (net(net.inverse(x)) - x).abs().max() <= 1e-10


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_iunet_gradients_equal_plain_autograd(dims, direction):
    torch.manual_seed(10 + dims)
    kwargs = dict(architecture=[1, 1, 2], dims=dims, channel_mixing=True, coupling="affine")
    saving = perturbed(InvertibleUNet(4, memory_saving=True, **kwargs)).double()
    plain = InvertibleUNet(4, memory_saving=False, **kwargs).double()
    plain.load_state_dict(saving.state_dict())
    x = torch.randn(SHAPES[dims], dtype=torch.float64)
    w = torch.randn_like(x)
    grads = []
    for net in (saving, plain):
        xi = x.clone().requires_grad_(True)
        out = getattr(net, direction)(xi)
        (out * w).sum().backward()
        grads.append([xi.grad] + [p.grad for p in net.parameters()])
    assert all(g is not None for g in grads[0])
    for a, b in zip(*grads):
        assert max_rel(a, b) <= 1e-10


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_resampling_and_mixing_stay_exact_under_autocast(dtype):
    """An orthogonal kernel rounded to bfloat16/float16 is not undone by its transpose (about 1e-2 off): under
    autocast resampling and channel mixing run in float32, and the iUNet keeps only F/G's low-precision rounding."""
    x = torch.randn(2, 4, 16, 16)
    parts = [perturbed(InvertibleDownsampling(4, 2, 2), scale=0.3), perturbed(InvertibleUpsampling(1, 2, 2), 0.3),
             OrthogonalChannelMixing(4, 2)]
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
        for part in parts:
            assert part(x).dtype == torch.float32
            assert max_rel(part.inverse(part(x)), x) < 1e-6
        net = perturbed(InvertibleUNet(4, [2, 2, 2], dims=2, channel_mixing=True))
        y = net(x)
        assert y.dtype == torch.float32
        assert ((net.inverse(y) - x).norm() / x.norm()).item() < 1.2e-2


def test_iunet_stores_only_its_output():
    for arch in ([1, 1], [2, 2, 2], [4, 4, 4, 4]):
        net = InvertibleUNet(4, arch, dims=2)
        x = torch.randn(2, 4, 32, 32, requires_grad=True)
        y = net(x)
        assert graph_saved_bytes(y, exclude=list(net.parameters()) + [x]) == y.numel() * 4
    plain = InvertibleUNet(4, [2, 2, 2], dims=2, memory_saving=False)
    y = plain(x)
    assert graph_saved_bytes(y, exclude=list(plain.parameters()) + [x]) > 20 * y.numel() * 4


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_odd_sizes_are_padded_and_cropped_or_refused(dims):
    net = perturbed(InvertibleUNet(2, [1, 1, 1], dims=dims, lift_stride=2)).double()
    assert net.size_multiple == (8,) * dims
    odd = (1, 2) + (11, 13, 9)[:dims]
    x = torch.randn(odd, dtype=torch.float64, requires_grad=True)
    y = net(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()
    assert net.inverse(y.detach()).shape == x.shape
    tiny = torch.randn((1, 2) + (3,) * dims, dtype=torch.float64)  # smaller than the padding: replicate
    assert net(tiny).shape == tiny.shape
    strict = InvertibleUNet(2, [1, 1, 1], dims=dims, lift_stride=2, pad=False)
    with pytest.raises(ReversibleError, match=r"not a multiple of \(8"):
        strict(torch.randn(odd))
    valid = torch.randn((1, 2) + (16,) * dims, dtype=torch.float64)
    assert (net.inverse(net(valid)) - valid).abs().max() <= 1e-10


def test_lift_gives_few_channel_inputs_enough_channels():
    with pytest.raises(ReversibleError, match="lift_stride=2"):
        InvertibleUNet(1, [1, 1], dims=3)
    net = perturbed(InvertibleUNet(1, [1, 1], dims=3, lift_stride=2)).double()
    assert net.channels[0] == 8
    x = torch.randn(1, 1, 8, 8, 8, dtype=torch.float64)
    assert (net.inverse(net(x)) - x).abs().max() <= 1e-10


def test_layout_matches_the_iunets_example():
    lines = InvertibleUNet(7, [2, 3, 1, 3], dims=3).layout().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("7-7-(5/2)-") and lines[0].endswith("-(5/2)-7-7")
    assert "-16-16-16-(12/4)-" in lines[1] and "-(12/4)-16-16-16-" in lines[1]
    assert "-32-(24/8)-" in lines[2] and "-64-64-64--64-64-64-" in lines[3]
    assert len({len(line) for line in lines}) == 1
    two_d = InvertibleUNet(64, [2, 2, 2, 2], dims=2).layout().splitlines()
    assert two_d[0].startswith("64-64-(32/32)-") and "-512-512--512-512-" in two_d[3]


def test_bad_arguments_are_clear():
    with pytest.raises(ReversibleError, match="architecture"):
        InvertibleUNet(4, [])
    with pytest.raises(ReversibleError, match="coupling"):
        InvertibleUNet(4, [1], coupling="spline")
    with pytest.raises(ReversibleError, match="padding_mode"):
        InvertibleUNet(4, [1], padding_mode="circular")
    with pytest.raises(ReversibleError, match=r"expects \(N, C"):
        InvertibleUNet(4, [1, 1], dims=2)(torch.randn(4, 8, 8))
