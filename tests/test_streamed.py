"""Streamed sections (models/streamed.py): a generator's widest layers computed in slabs in training give plain
autograd's outputs and gradients (float64), for the encoders and decoders the RevGAN models build (1D/2D/3D, instance
norm or none, both stems), for other widening and narrowing layers, with one-row slabs, and refuse a parameter
changed in place before backward."""
import pytest
import torch
from torch import nn

from models import streamed
from models.networks import decoder, encoder, get_norm_layer


@pytest.fixture(autouse=True)
def stream_every_size(monkeypatch):
    monkeypatch.setattr(streamed, "MIN_BYTES", 0)  # the small maps of these tests are streamed too


def grads_of(fn, x, params, g=None):
    x = x.detach().requires_grad_(x.requires_grad)
    y = fn(x)
    g = torch.randn_like(y, generator=torch.Generator().manual_seed(5)) if g is None else g
    leaves = ([x] if x.requires_grad else []) + [p for p in params if p.requires_grad]
    return y, torch.autograd.grad(y, leaves, g)


def assert_same(seq, x, sections):
    kinds = [k for k, _ in streamed.segments(seq)]
    assert kinds.count("section") == sections, kinds
    params = list(seq.parameters())
    y0, g0 = grads_of(seq, x, params)
    y1, g1 = grads_of(lambda t: streamed.run_streamed(seq, t), x, params)
    assert y1.shape == y0.shape
    torch.testing.assert_close(y1, y0, rtol=1e-10, atol=1e-12)
    assert len(g0) == len(g1)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10 * (1 + a.abs().max().item()))


CASES = [  # dims, norm, n_downsampling, stem, ngf, spatial size, sections in (encoder, decoder)
    (2, "instance", 2, "conv7", 4, (20, 23), (1, 1)),
    (2, "instance", 1, "conv7", 4, (17, 13), (1, 1)),
    (2, "none", 2, "conv7", 4, (12, 16), (1, 1)),
    (3, "none", 1, "conv7", 4, (11, 10, 9), (1, 1)),
    (3, "instance", 2, "conv7", 4, (12, 8, 8), (1, 1)),
    (2, "instance", 2, "unshuffle", 8, (16, 20), (1, 1)),
    (2, "batch", 2, "conv7", 4, (16, 16), (0, 0)),  # running statistics: plain recomputation
    (1, "instance", 2, "conv7", 4, (40,), (0, 0)),  # 1D: a stride-2 halving does not narrow twice the channels
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}d-{c[1]}-nd{c[2]}-{c[3]}")
@pytest.mark.parametrize("slabs", [streamed.SLABS, 1000])
def test_encoder_and_decoder_match_plain_autograd(case, slabs, monkeypatch):
    monkeypatch.setattr(streamed, "SLABS", slabs)  # 1000: slabs of one row
    dims, norm, nd, stem, ngf, size, sections = case
    torch.manual_seed(0)
    nl = get_norm_layer(norm, dims)
    enc = encoder(3, ngf=ngf, norm_layer=nl, n_downsampling=nd, dims=dims, stem=stem).double()
    dec = decoder(3, ngf=ngf, norm_layer=nl, n_downsampling=nd, dims=dims, tanh=True, stem=stem).double()
    x = torch.randn((2, 3) + size, dtype=torch.float64) * 0.5 + 0.3
    assert_same(enc, x.requires_grad_(), sections[0])
    assert_same(enc, x.detach(), sections[0])  # an input without gradient (real images)
    h = enc(x).detach().requires_grad_()
    assert_same(dec, h, sections[1])


def test_other_widening_and_narrowing_layers():
    """Zero-padded, strided and transposed widening layers of other kernels; a narrowing conv with zero padding and
    stride 1 or a reflection pad; frozen parameters."""
    torch.manual_seed(1)
    seqs = [
        nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.InstanceNorm2d(6), nn.ReLU(True),
                      nn.Conv2d(6, 2, 5, padding=2)),
        nn.Sequential(nn.ConvTranspose2d(6, 5, 4, stride=2, padding=1), nn.InstanceNorm2d(5), nn.ReLU(),
                      nn.ReflectionPad2d((1, 2, 2, 1)), nn.Conv2d(5, 3, (4, 4)), nn.Tanh()),
        nn.Sequential(nn.ReflectionPad3d(1), nn.Conv3d(1, 5, 3), nn.ReLU(True), nn.Conv3d(5, 4, 3, stride=2, padding=1),
                      nn.ReLU(True)),
        nn.Sequential(nn.Conv1d(2, 8, 5, stride=1, padding=2), nn.InstanceNorm1d(8), nn.ReLU(),
                      nn.Conv1d(8, 4, 3, stride=3, padding=1)),
    ]
    inputs = [torch.randn(2, 2, 9, 7), torch.randn(1, 6, 5, 6), torch.randn(2, 1, 7, 6, 5), torch.randn(3, 2, 31)]
    for seq, x in zip(seqs, inputs):
        seq = seq.double()
        assert_same(seq, x.double().requires_grad_(), 1)
    seqs[0][0].weight.requires_grad_(False)
    assert_same(seqs[0], inputs[0].double().requires_grad_(), 1)


def test_layers_that_are_not_sections_are_left_alone():
    """An affine instance norm, a LeakyReLU, a dilated convolution or a layer that does not widen: plain
    recomputation."""
    for seq in (nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.InstanceNorm2d(6, affine=True), nn.ReLU(),
                              nn.Conv2d(6, 2, 3, padding=1)),
                nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(6, 2, 3, padding=1)),
                nn.Sequential(nn.Conv2d(2, 6, 3, padding=2, dilation=2), nn.ReLU(), nn.Conv2d(6, 2, 3, padding=1)),
                nn.Sequential(nn.Conv2d(6, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))):
        assert [k for k, _ in streamed.segments(seq)] == ["layers"]
        assert_same(seq.double(), torch.randn(1, seq[0].in_channels, 8, 8, dtype=torch.float64).requires_grad_(), 0)


def test_small_wide_maps_are_recomputed_whole(monkeypatch):
    """Below MIN_BYTES a section runs as its plain layers (inside the part's recomputation), at or above it in slabs;
    the same gradients either way."""
    calls = []
    monkeypatch.setattr(streamed._Streamed, "apply", lambda *a, _f=streamed._Streamed.apply: calls.append(1) or _f(*a))
    seq = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 2, 3, stride=2, padding=1)).double()
    x = torch.randn(1, 2, 16, 16, dtype=torch.float64, requires_grad=True)
    wide = 6 * 16 * 16 * 8
    for limit, streams in ((wide + 1, False), (wide, True)):
        monkeypatch.setattr(streamed, "MIN_BYTES", limit)
        calls.clear()
        assert_same(seq, x, 1)
        assert bool(calls) == streams


def test_a_parameter_changed_in_place_before_backward_is_refused():
    seq = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 2, 3, stride=2, padding=1))
    y = streamed.run_streamed(seq, torch.randn(1, 2, 8, 8, requires_grad=True))
    with torch.no_grad():
        seq[0].weight.add_(1.0)
    with pytest.raises(Exception, match="modified in place|modified by an inplace operation"):
        y.sum().backward()


def test_the_revgan_generators_stream_their_widest_layers():
    """The four RevGAN models' default generators have a section in every encoder and decoder (so --memory low
    uses them), and the wide map is what a slab saves: a paired_revgan step at 256² (ngf 16) keeps under 30 MiB of
    activations (measured here: 22.5 MiB, 38.7 MiB without the sections)."""
    from models.config import GeneratorConfig
    from models.networks import define_G
    from tests.test_memory_modes import measure
    for dims in (2, 3):
        g = define_G(3 if dims == 2 else 1, 3 if dims == 2 else 1,
                     GeneratorConfig(netG="revgan", dims=dims, norm="instance" if dims == 2 else "none"))
        for part in (g.enc_A, g.enc_B, g.dec_A, g.dec_B):
            assert [k for k, _ in streamed.segments(part)].count("section") == 1
    peak = measure("paired_revgan", 256, [])
    assert peak < 30 * 2 ** 20, peak / 2 ** 20
