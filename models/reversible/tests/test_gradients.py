"""float64 gradient equality of memory-saving backprop against plain autograd."""
import pytest
import torch
from torch import nn

from models.reversible import AdditiveCoupling, ReversibleBlock, ReversibleError, ReversibleSequence

from .helpers import SPATIAL, body, coupling, pair, rel, sequence

TOL = 1e-10
KINDS = ["additive", "affine", "affine2x", "momentum"]


def run_step(net, x, direction, seed=123, loss_weight=None):
    """One forward (in a direction) and a loss, with fixed RNG so dropout draws the same masks for both nets."""
    torch.manual_seed(seed)
    y = net.inverse(x) if direction == "inverse" else net(x)
    w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y) if loss_weight is None else loss_weight
    return y, (y * w).sum() + y.square().mean()


def compare(saving, plain, make_input, direction="forward", steps=1):
    xs, ys, grads = [], [], []
    for net in (saving, plain):
        x = make_input()
        y, loss = run_step(net, x, direction)
        params = list(net.parameters())
        leaf = x if x.is_leaf else x.leaf
        g = torch.autograd.grad(loss, [leaf] + params)
        xs.append(x), ys.append(y), grads.append(g)
    assert rel(ys[0], ys[1]) <= TOL
    for ga, gb in zip(*grads):
        assert rel(ga, gb) <= TOL
    for ba, bb in zip(saving.buffers(), plain.buffers()):
        assert torch.equal(ba, bb), "running statistics differ from plain autograd"


def leaf_input(dims, channels, batch=3, seed=7):
    def make():
        g = torch.Generator().manual_seed(seed)
        return torch.randn((batch, channels) + SPATIAL[dims], generator=g, dtype=torch.float64, requires_grad=True)
    return make


def nonleaf_input(dims, channels, batch=3, seed=7):
    def make():
        leaf = leaf_input(dims, channels, batch, seed)()
        x = torch.relu(leaf * 1.5)  # ReLU saves its output: it must stay intact
        x.leaf = leaf
        return x
    return make


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_gradients_match_plain_autograd(kind, dims, direction):
    saving, plain = pair(kind, dims, 6, depth=3)
    compare(saving, plain, leaf_input(dims, 6), direction)


@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("kind", ["additive", "affine"])
def test_norm_and_dropout_and_running_stats(kind, norm, direction):
    saving, plain = pair(kind, 2, 6, depth=3, norm=norm, dropout=0.3)
    saving.train(), plain.train()
    compare(saving, plain, nonleaf_input(2, 6), direction)


@pytest.mark.parametrize("dims", [1, 3])
def test_dropout_and_batchnorm_other_dims(dims):
    saving, plain = pair("affine", dims, 5, depth=2, norm="batch", dropout=0.25)
    compare(saving, plain, nonleaf_input(dims, 5), "inverse")


def test_odd_channels_and_explicit_split():
    saving, plain = pair("additive", 2, 7, depth=3, split=2)
    compare(saving, plain, leaf_input(2, 7))
    saving, plain = pair("affine", 2, 7, depth=2)
    compare(saving, plain, leaf_input(2, 7), "inverse")


def test_several_calls_in_both_directions_summed():
    """The unpaired model's pattern: A->B, B->A, and the cycle back, losses summed, one backward."""
    results = []
    for net in pair("affine", 2, 6, depth=3, norm="instance", dropout=0.2):
        net.train()
        a = leaf_input(2, 6, seed=1)()
        b = leaf_input(2, 6, seed=2)()
        torch.manual_seed(9)
        fake_b = net(a)
        rec_a = net.inverse(fake_b)
        fake_a = net.inverse(b)
        rec_b = net(fake_a)
        idt = net(b)
        loss = (fake_b.square().mean() + (rec_a - a).abs().mean() + fake_a.sin().sum()
                + (rec_b - b).abs().mean() + (idt - b).abs().mean())
        grads = torch.autograd.grad(loss, [a, b] + list(net.parameters()))
        results.append((grads, [buf.clone() for buf in net.buffers()]))
    for ga, gb in zip(results[0][0], results[1][0]):
        assert rel(ga, gb) <= TOL
    for ba, bb in zip(results[0][1], results[1][1]):
        assert torch.equal(ba, bb)


def test_parameters_train_when_input_needs_no_grad():
    saving, plain = pair("additive", 2, 6, depth=2)
    for net in (saving, plain):
        x = leaf_input(2, 6)().detach()
        net(x).square().sum().backward()
    for pa, pb in zip(saving.parameters(), plain.parameters()):
        assert pa.grad is not None and rel(pa.grad, pb.grad) <= TOL


def test_autograd_grad_leaves_dot_grad_untouched():
    saving, _ = pair("additive", 2, 6, depth=2)
    x = leaf_input(2, 6)()
    grads = torch.autograd.grad(saving(x).sum(), list(saving.parameters()))
    assert all(g is not None for g in grads)
    assert all(p.grad is None for p in saving.parameters())
    assert x.grad is None


def test_retain_graph_accumulates_like_plain_autograd():
    outs = []
    for net in pair("affine", 2, 6, depth=2, norm="batch", dropout=0.3):
        x = leaf_input(2, 6)()
        torch.manual_seed(3)
        loss = net(x).square().sum()
        loss.backward(retain_graph=True)
        loss.backward()
        outs.append([x.grad] + [p.grad for p in net.parameters()])
    for ga, gb in zip(*outs):
        assert rel(ga, gb) <= TOL


def test_second_backward_without_retain_graph_is_a_clear_error():
    saving, _ = pair("additive", 2, 6, depth=2)
    loss = saving(leaf_input(2, 6)()).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_caller_tensors_are_not_altered():
    saving, _ = pair("affine", 2, 6, depth=3)
    x = nonleaf_input(2, 6)()
    before = x.detach().clone()
    y = saving(x)
    loss = y.sum() + (x * 2).sum()  # x reused after the forward, as cycle/identity losses do
    loss.backward()
    assert torch.equal(x.detach(), before)
    assert x.leaf.grad is not None and torch.isfinite(x.leaf.grad).all()


def test_no_grad_and_eval_run_plain_forward():
    saving, plain = pair("affine", 3, 4, depth=2, norm="batch")
    saving.eval(), plain.eval()
    x = leaf_input(3, 4)()
    with torch.no_grad():
        y = saving(x)
    assert y.grad_fn is None and not y.requires_grad
    assert rel(y, plain(x).detach()) <= TOL


def test_reversible_block_keep_input_toggle():
    x_make = nonleaf_input(2, 6)
    ref = None
    for keep in (False, True, None):
        torch.manual_seed(0)
        module = coupling("affine", 2, 6, norm="batch", dropout=0.2).double()
        block = ReversibleBlock(module, keep_input=bool(keep), keep_input_inverse=bool(keep), disable=keep is None)
        x = x_make()
        torch.manual_seed(4)
        loss = block(x).square().sum() + block.inverse(x).sin().sum()
        grads = torch.autograd.grad(loss, [x.leaf] + list(block.parameters()))
        state = [b.clone() for b in block.buffers()]
        if ref is None:
            ref = (grads, state)
            continue
        for ga, gb in zip(grads, ref[0]):
            assert rel(ga, gb) <= TOL
        for ba, bb in zip(state, ref[1]):
            assert torch.equal(ba, bb)


class Scale(nn.Module):
    """A generic invertible module (not a coupling): a learnable per-channel scale."""

    def __init__(self, channels):
        super().__init__()
        self.log_s = nn.Parameter(torch.linspace(-0.5, 0.5, channels))

    def _s(self, x):
        return self.log_s.exp().view((1, -1) + (1,) * (x.dim() - 2))

    def forward(self, x):
        return x * self._s(x)

    def inverse(self, y):
        return y / self._s(y)


def test_generic_invertible_modules_in_a_sequence():
    def make(ms):
        torch.manual_seed(0)
        blocks = [coupling("additive", 2, 6), Scale(6), coupling("affine", 2, 6, split=2), Scale(6)]
        return ReversibleSequence(blocks, memory_saving=ms).double()
    for direction in ("forward", "inverse"):
        compare(make(True), make(False), leaf_input(2, 6), direction)


def test_autocast_bf16_cpu_recomputes_under_forward_state():
    torch.manual_seed(0)
    saving = sequence("additive", 2, 8, 4, True, dtype=torch.float32)
    plain = sequence("additive", 2, 8, 4, False, dtype=torch.float32)
    x = torch.randn(2, 8, 8, 8, requires_grad=True)
    grads = []
    for net in (saving, plain):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = net(x)
        grads.append(torch.autograd.grad(y.float().square().sum(), [x] + list(net.parameters())))
    # bf16 inside F/G: the memory-saving gradients agree with plain autograd to bf16 accuracy.
    for ga, gb in zip(*grads):
        assert torch.isfinite(ga).all()
        assert rel(ga.float(), gb.float()) < 5e-2


@pytest.mark.parametrize("kind", ["additive", "affine"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_keeps_a_float32_stream_that_the_inverse_undoes(kind, dtype):
    """F and G in low precision, the stream between blocks in float32: forward-then-inverse rebuilds the input far
    better than a low-precision stream would (exactly, here, for additive couplings; affine ones keep the low
    precision's rounding of F/G on rebuilt inputs), in both directions."""
    torch.manual_seed(0)
    net = sequence(kind, 2, 8, 6, True, dtype=torch.float32)
    x = torch.randn(2, 8, 8, 8).to(dtype)
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
        y = net(x)
        assert y.dtype == torch.float32
        errors = [rel(net.inverse(y), x.float()), rel(net(net.inverse(x)), x.float())]
    with torch.no_grad():  # the same blocks with a low-precision stream
        low = x
        for block in net.blocks:
            low = block.to(dtype)(low)
        for block in reversed(net.blocks):
            low = block.inverse(low)
        low_error = rel(low.float(), x.float())
    assert low_error > 5e-4
    for error in errors:
        assert error < low_error / 5
        if kind == "additive":
            assert error < 1e-6


def test_clear_errors_for_unusable_shapes():
    with pytest.raises(ReversibleError, match="at least 2 channels"):
        AdditiveCoupling(body(2, 1, 1), body(2, 1, 1))(torch.randn(1, 1, 4, 4))
    bad = AdditiveCoupling(nn.Conv2d(2, 2, 3, stride=2, padding=1), body(2, 2, 2))
    with pytest.raises(ReversibleError, match=r"F must map its input half .* returned \(1, 2, 2, 2\)"):
        bad(torch.randn(1, 4, 4, 4))
    with pytest.raises(ReversibleError, match="G must map"):
        AdditiveCoupling(body(2, 2, 2), body(2, 2, 3))(torch.randn(1, 4, 4, 4))
    with pytest.raises(ReversibleError, match="has no inverse"):
        ReversibleSequence([nn.Conv2d(2, 2, 1)])
    seq = ReversibleSequence([AdditiveCoupling(body(2, 2, 2), body(2, 2, 2))])
    with pytest.raises(ReversibleError, match=r"shaped \(N, C, \.\.\.\)"):
        seq(torch.randn(4, requires_grad=True))


def test_output_modified_in_place_is_a_clear_error():
    saving, _ = pair("additive", 2, 6, depth=2)
    y = saving(leaf_input(2, 6)())
    loss = y.sum()
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()
