"""Property-based tests: random small networks built from a vocabulary of pieces.

Supported pieces (convolutions, linear maps, norms in training and eval mode, dropout, spectral norm in both APIs,
parameters broadcast onto the input, expanded (stride-0) outputs, parameter hooks, modules shared between F, G and
blocks, frozen parts, nested sequences, kept-input blocks, channel mixing; first-call initialisation (ActNorm) and
lazy modules, a norm subclass that reads its running statistics, noise from a private torch.Generator) and uses
(module hooks on couplings that read, change the output or input, or hook the backward; F or G replaced after
construction; parameters frozen or unfrozen between forward and backward) must give plain autograd's outputs,
gradients, buffers and hook calls in float64, in both directions and both in one graph. Unsupported uses (closures
over outside tensors, unregistered modules, torch.func.functional_call with substituted parameters or buffers,
second-order gradients, a conditioning buffer changed before the backward, parametrize.cached() around the forward,
functorch transforms) must be refused with a ReversibleError, where plain autograd runs them.

Budget: about 20 seconds on 2 CPU cores (max_examples below).
"""
from datetime import timedelta

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from models.reversible import (AdditiveCoupling, AffineCoupling, CustomCoupling, OrthogonalChannelMixing,
                               ReversibleBlock, ReversibleError, ReversibleSequence, is_recomputing)

from .helpers import Direction, rel

C, H, W = 4, 4, 5  # channels (halves of 2), height, width
HALF = C // 2
TOL = 1e-8
BUDGET = dict(deadline=timedelta(seconds=10), suppress_health_check=[HealthCheck.too_slow], print_blob=True)

PIECES = ["conv3", "conv1", "linear", "batchnorm", "instancenorm", "groupnorm", "dropout", "dropout2d", "tanh",
          "leaky", "spectral_norm", "parametrized_spectral_norm", "bias_like_x", "bias_per_channel", "expand",
          "shared", "actnorm", "lazy_conv", "batch_renorm", "noise"]
MODAL = {"batchnorm", "instancenorm", "dropout", "dropout2d", "spectral_norm", "parametrized_spectral_norm",
         "actnorm", "batch_renorm"}
KINDS = ["additive", "affine", "momentum"]
MODULE_HOOKS = [None, "reads", "changes_output", "changes_input", "backward"]


# -- the recipe of a network, drawn by hypothesis -------------------------------------------------------------------
piece = st.tuples(st.sampled_from(PIECES), st.booleans(), st.booleans(), st.booleans(), st.integers(0, 7))
#                  kind                   training      frozen        hooked        which shared module
body = st.lists(piece, min_size=1, max_size=4)
coupling = st.tuples(st.just("coupling"), st.sampled_from(KINDS), body, body,
                     st.sampled_from(MODULE_HOOKS), st.sampled_from([None, None, "F", "G"]), body)
#                    module hook on the coupling      F or G replaced after construction, by this body


def block_strategy(depth):
    options = [coupling, st.tuples(st.just("mixing")), st.tuples(st.just("keep_input"), coupling)]
    if depth > 0:
        options.append(st.tuples(st.just("nested"), st.booleans(),
                                 st.lists(block_strategy(depth - 1), min_size=1, max_size=2)))
    return st.one_of(*options)


recipe = st.lists(block_strategy(1), min_size=1, max_size=3)


# -- building blocks ------------------------------------------------------------------------------------------------
class AddParameter(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.b = nn.Parameter(torch.randn(shape) * 0.5)

    def forward(self, x):
        return x + self.b


class Expand(nn.Module):
    """A global statistic broadcast back: a stride-0 output (and, when it comes first, a stride-0 input gradient).
    Smooth and away from 0, so that no later kink (LeakyReLU at 0) or normalization of a constant (variance 0) turns
    rounding into a different gradient; expands come last in a body for the same reason."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.7]))

    def forward(self, x):
        return (x.square().mean(dim=(1, 2, 3), keepdim=True).add(1).sqrt() * self.w).expand_as(x)


class ActNorm(nn.Module):
    """Glow's ActNorm: its first call sets shift and scale from the batch (under no_grad), then uses them."""

    def __init__(self):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(1, HALF, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, HALF, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x):
        if not self.initialized:
            with torch.no_grad():
                self.shift.copy_(-x.mean(dim=(0, 2, 3), keepdim=True))
                self.log_scale.copy_(-x.std(dim=(0, 2, 3), keepdim=True).add(0.5).log())
                self.initialized.fill_(True)
        return (x + self.shift) * self.log_scale.exp()


class BatchRenorm(nn.BatchNorm2d):
    """A norm subclass whose training output reads the running statistics it updates."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        with torch.no_grad():
            r = ((var.flatten() + 1) / (self.running_var + 1)).sqrt().view_as(var)
            d = (mean.flatten() - self.running_mean).tanh().view_as(mean)
            self.running_mean.lerp_(mean.flatten(), 0.1)
            self.running_var.lerp_(var.flatten(), 0.1)
        y = (x - mean) / (var + 1).sqrt() * r + d
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class Noise(nn.Module):
    """Multiplicative noise from a torch.Generator of its own."""

    def __init__(self, seed):
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, x):
        return x * (1 + 0.3 * torch.rand(x.shape, generator=self.generator, dtype=x.dtype))


class Conditioned(nn.Module):
    """Unsupported: multiplies by a tensor that requires grad but is not its parameter."""

    def __init__(self, code):
        super().__init__()
        self.__dict__["code"] = code

    def forward(self, x):
        return x * self.code


class Unregistered(nn.Module):
    """Unsupported: calls a module it does not register (its parameters are not the function's)."""

    def __init__(self):
        super().__init__()
        self.__dict__["conv"] = nn.Conv2d(HALF, HALF, 1)

    def forward(self, x):
        return self.conv(x)


def make_piece(kind, which=0):
    if kind == "actnorm":
        return ActNorm()
    if kind == "lazy_conv":
        return nn.LazyConv2d(HALF, 3, padding=1)
    if kind == "batch_renorm":
        return BatchRenorm(HALF)
    if kind == "noise":
        return Noise(which)
    if kind == "conv3":
        return nn.Conv2d(HALF, HALF, 3, padding=1)
    if kind == "conv1":
        return nn.Conv2d(HALF, HALF, 1)
    if kind == "linear":
        return nn.Linear(W, W)
    if kind == "batchnorm":
        return nn.BatchNorm2d(HALF)
    if kind == "instancenorm":
        return nn.InstanceNorm2d(HALF, affine=True, track_running_stats=True)
    if kind == "groupnorm":
        return nn.GroupNorm(1, HALF)
    if kind == "dropout":
        return nn.Dropout(0.3)
    if kind == "dropout2d":
        return nn.Dropout2d(0.3)
    if kind == "tanh":
        return nn.Tanh()
    if kind == "leaky":
        return nn.LeakyReLU(0.2)
    if kind == "spectral_norm":
        return torch.nn.utils.spectral_norm(nn.Conv2d(HALF, HALF, 3, padding=1))
    if kind == "parametrized_spectral_norm":
        return torch.nn.utils.parametrizations.spectral_norm(nn.Conv2d(HALF, HALF, 3, padding=1))
    if kind == "bias_like_x":
        return AddParameter((1, HALF, H, W))
    if kind == "bias_per_channel":
        return AddParameter((1, HALF, 1, 1))
    if kind == "expand":
        return Expand()
    raise ValueError(kind)


class Builder:
    """Builds a recipe, the same way for the memory-saving network and its plain twin (same seed, same order)."""

    def __init__(self, memory_saving, hooks):
        self.memory_saving, self.hooks, self.pool = memory_saving, hooks, []
        self.module_hooks = []  # what module hooks on couplings saw, outside recomputations

    def piece(self, spec):
        kind, training, frozen, hooked, which = spec
        if kind == "shared" and self.pool:
            return self.pool[which % len(self.pool)]
        module = make_piece("conv1" if kind == "shared" else kind, which)
        if "spectral_norm" in kind:  # converge u/v first: random ones in eval mode would scale W by up to 1e9
            with torch.no_grad():
                for _ in range(10):
                    module(torch.zeros(1, HALF, H, W))
        for name, b in module.named_buffers():
            if name.startswith("running_mean"):
                b.normal_(0, 0.5)
            elif name.startswith("running_var"):
                b.uniform_(0.5, 1.5)
        if kind in MODAL:
            module.train(training)
        lazy = kind == "lazy_conv"  # torch allows neither on a parameter that has not materialised
        if frozen and not lazy:
            module.requires_grad_(False)
        if hooked and not lazy:
            for p in module.parameters():
                if p.requires_grad:
                    p.register_hook(self.hook)
        if any(True for _ in module.parameters()):
            self.pool.append(module)
        return module

    def hook(self, g):
        self.hooks.append(g.shape)
        return g * 0.5

    def body(self, specs):
        specs = [s for s in specs if s[0] != "expand"] + [s for s in specs if s[0] == "expand"]
        return nn.Sequential(*[self.piece(s) for s in specs])

    def coupling(self, spec):
        _, kind, f, g, hook, replaced, replacement = spec
        F, G = self.body(f), self.body(g)
        if kind == "additive":
            block = AdditiveCoupling(F, G)
        elif kind == "affine":
            block = AffineCoupling(F, G)
        else:
            block = CustomCoupling(F, G, merge=lambda o, h: o * 0.8 + h * 0.2,
                                   unmerge=lambda y, h: (y - h * 0.2) / 0.8)
        if replaced:
            setattr(block, replaced, self.body(replacement))
        if hook:
            self.module_hook(hook, block)
        return block

    def module_hook(self, hook, block):
        log = self.module_hooks
        if hook == "reads":
            block.register_forward_hook(lambda m, i, o: None if is_recomputing() else log.append(float(o.detach().norm())))
        elif hook == "changes_output":
            block.register_forward_hook(lambda m, i, o: o * 0.75 + 0.1 * o.sin())
        elif hook == "changes_input":
            block.register_forward_pre_hook(lambda m, args: (args[0].tanh() * 2,))
        else:
            def backward(m, grad_in, grad_out):
                log.extend(float(g.detach().norm()) for g in grad_in + grad_out if g is not None)
                return tuple(None if g is None else g * 0.5 for g in grad_in)
            block.register_full_backward_hook(backward)

    def block(self, spec):
        if spec[0] == "coupling":
            return self.coupling(spec)
        if spec[0] == "mixing":
            return OrthogonalChannelMixing(C, dims=2)
        if spec[0] == "keep_input":
            return ReversibleBlock(self.coupling(spec[1]), keep_input=True, keep_input_inverse=True,
                                   disable=not self.memory_saving)
        _, inner_saving, blocks = spec
        return ReversibleSequence([self.block(b) for b in blocks], memory_saving=self.memory_saving and inner_saving)

    def network(self, specs, seed):
        torch.manual_seed(seed)
        dtype = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return ReversibleSequence([self.block(b) for b in specs], memory_saving=self.memory_saving)
        finally:
            torch.set_default_dtype(dtype)


def inputs(batch, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, C, H, W, generator=g, dtype=torch.float64) for _ in range(2)]


def run(net, xs, pattern, seed):
    """Forward, inverse, or both in one graph (with the input reused), and a loss that weighs every output."""
    a, b = (x.clone().requires_grad_(True) for x in xs)
    torch.manual_seed(seed)
    outs = []
    if pattern in ("forward", "both"):
        outs.append(net(a))
    if pattern in ("inverse", "both"):
        outs.append(net.inverse(b))
    loss = sum((y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum() + y.square().mean()
               for y in outs)
    if pattern == "both":
        loss = loss + (a * b).sum()
    return outs, loss, [a, b]


# -- supported: equal to plain autograd -----------------------------------------------------------------------------
@settings(max_examples=150, **BUDGET)
@given(specs=recipe, pattern=st.sampled_from(["forward", "inverse", "both"]), batch=st.integers(1, 3),
       seed=st.integers(0, 2 ** 16), flip_modes=st.booleans(), toggled=st.lists(st.integers(0, 99), max_size=3))
def test_random_networks_match_plain_autograd(specs, pattern, batch, seed, flip_modes, toggled):
    xs = inputs(batch, seed)
    results = []
    for memory_saving in (True, False):
        hooks = []
        builder = Builder(memory_saving, hooks)
        net = builder.network(specs, seed)
        outs, loss, leaves = run(net, xs, pattern, seed + 1)
        initialised = [p.detach().clone() for p in net.parameters()]  # by their first calls, in the forward
        if flip_modes:  # every module switches mode between forward and backward (model.eval() before backward)
            for m in net.modules():
                m.training = not m.training
        every = list(net.parameters())
        for j in toggled if every else ():  # frozen or unfrozen between forward and backward (late requires_grad_)
            every[j % len(every)].requires_grad_(not every[j % len(every)].requires_grad)
        params = [p for p in every if p.requires_grad]
        grads = torch.autograd.grad(loss, leaves + params, allow_unused=True)
        assert all(torch.equal(a, b) for a, b in zip(initialised, net.parameters()))  # backward initialised none again
        results.append((outs, grads, [b.clone() for b in net.buffers()], sorted(hooks),
                        sorted(builder.module_hooks), [p.detach().clone() for p in every]))
    (outs_s, grads_s, bufs_s, hooks_s, mods_s, params_s), (outs_p, grads_p, bufs_p, hooks_p, mods_p, params_p) = results
    for ys, yp in zip(outs_s, outs_p):
        assert rel(ys, yp) <= TOL
    assert len(grads_s) == len(grads_p)
    # gradients that are zero in theory (a bias before a training-mode norm) hold rounding noise: each gradient is
    # judged relative to its own norm, but never to less than 1e-4 of the largest
    floor = 1e-4 * max(float(g.norm()) for g in grads_p if g is not None)
    for gs, gp in zip(grads_s, grads_p):
        assert (gs is None) == (gp is None)
        if gp is not None:
            assert float((gs - gp).norm()) <= TOL * max(float(gp.norm()), floor)
    for bs, bp in zip(bufs_s, bufs_p):  # no_grad and grad-mode kernels may round differently: up to rounding
        assert rel(bs, bp) <= TOL if bp.is_floating_point() else torch.equal(bs, bp)
    for ps, pp in zip(params_s, params_p):  # initialised by their first call to the same values, up to rounding:
        assert rel(ps, pp) <= TOL  # the memory-saving forward runs without grad, whose kernels may round differently
    assert hooks_s == hooks_p  # each parameter hook ran as often as with plain autograd
    assert len(mods_s) == len(mods_p)  # module hooks on couplings ran as often, and saw the same values
    assert all(abs(a - b) <= TOL * max(abs(b), 1.0) for a, b in zip(mods_s, mods_p))


# -- unsupported: refused --------------------------------------------------------------------------------------------
UNSUPPORTED = ["closure", "unregistered_module", "functional_call_tensors", "functional_call_parameters",
               "functional_call_buffers", "create_graph", "hvp", "buffer_changed", "parametrize_cached",
               "functorch_grad"]


class CodeBuffer(nn.Module):
    """Adds a conditioning code held in a buffer (which the unsupported use changes before the backward)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("code", torch.full((1, HALF, 1, 1), 0.5))

    def forward(self, x):
        return x + self.code


class Symmetric(nn.Module):
    def forward(self, w):
        return (w + w.transpose(0, 1)) / 2


def parametrized():
    conv = nn.Conv2d(HALF, HALF, 1)
    torch.nn.utils.parametrize.register_parametrization(conv, "weight", Symmetric())
    return conv


EXTRA_PIECES = {"unregistered_module": Unregistered, "buffer_changed": CodeBuffer,
                "parametrize_cached": parametrized}


def with_extra(specs, where):
    """``specs`` with the coupling that holds the unsupported piece (``Extra``) inserted at block ``where``."""
    return specs[:where] + [("extra",)] + specs[where:]


class Extra(Builder):
    def __init__(self, memory_saving, hooks, make_extra):
        super().__init__(memory_saving, hooks)
        self.make_extra = make_extra

    def block(self, spec):
        if spec[0] == "extra":
            F = nn.Sequential(nn.Conv2d(HALF, HALF, 3, padding=1), self.make_extra(), nn.Tanh())
            return AffineCoupling(F, nn.Sequential(nn.BatchNorm2d(HALF).eval(), nn.Conv2d(HALF, HALF, 1)))
        return super().block(spec)


def attempt(case, net, xs, pattern, seed):
    """Runs the unsupported use on ``net`` through to the gradients."""
    a = xs[0].clone().requires_grad_(True)
    direction = "inverse" if pattern == "inverse" else "forward"
    call = (lambda t: net.inverse(t)) if direction == "inverse" else net
    torch.manual_seed(seed)
    if case.startswith("functional_call"):
        if case == "functional_call_tensors":
            new = {n: p.detach() * 1.01 for n, p in net.named_parameters()}
        elif case == "functional_call_parameters":
            new = {n: nn.Parameter(p.detach() * 1.01) for n, p in net.named_parameters()}
        else:
            new = {n: b + 0.25 for n, b in net.named_buffers() if "running_mean" in n}
        module = Direction(net, direction)
        y = torch.func.functional_call(module, {"net." + n: v for n, v in new.items()}, (a,))
        return torch.autograd.grad(y.square().sum(), a)
    if case == "create_graph":
        g, = torch.autograd.grad(call(a).square().sum(), a, create_graph=True)
        return torch.autograd.grad(g.square().sum(), a)
    if case == "hvp":
        return torch.autograd.functional.hvp(lambda t: call(t).square().sum(), xs[0], torch.ones_like(xs[0]))
    if case == "functorch_grad":
        return torch.func.grad(lambda t: call(t).square().sum())(xs[0])
    params = [a] + [p for p in net.parameters() if p.requires_grad]
    if case == "buffer_changed":  # two calls, the code changed in place between them, one backward
        y = call(a)
        for m in net.modules():
            if isinstance(m, CodeBuffer):
                m.code.copy_(-m.code)
        return torch.autograd.grad(y.square().sum() + call(a * 0.5).square().sum(), params)
    if case == "parametrize_cached":
        with torch.nn.utils.parametrize.cached():
            return torch.autograd.grad(call(a).square().sum(), params)
    return torch.autograd.grad(call(a).square().sum(), params)


@settings(max_examples=80, **BUDGET)
@given(specs=st.lists(block_strategy(1), min_size=0, max_size=2), case=st.sampled_from(UNSUPPORTED),
       where=st.integers(0, 2), pattern=st.sampled_from(["forward", "inverse"]), seed=st.integers(0, 2 ** 16))
def test_unsupported_uses_are_refused(specs, case, where, pattern, seed):
    code = torch.randn(1, HALF, 1, 1, dtype=torch.float64, requires_grad=True)
    make_extra = EXTRA_PIECES.get(case, lambda: Conditioned(code) if case == "closure" else nn.Identity())
    specs = with_extra([] if case == "functorch_grad" else specs, min(where, len(specs)))
    xs = inputs(2, seed)
    nets = [Extra(ms, [], make_extra).network(specs, seed) for ms in (False, True)]
    for net in nets:  # lazy modules materialise and ActNorms initialise in a first call (no graph)
        torch.manual_seed(seed)
        with torch.no_grad():
            net(xs[1])
    plain, saving = nets
    attempt(case, plain, xs, pattern, seed)  # plain autograd runs it
    with pytest.raises(ReversibleError, match="memory_saving=False"):
        attempt(case, saving, xs, pattern, seed)
    assert all(p.grad is None for p in saving.parameters()) and code.grad is None
