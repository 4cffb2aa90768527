"""The second audit's cases, tried as the library's users would (one test per case, both directions where a direction
applies): each matches plain autograd (``memory_saving=False``) in float64, or is refused with a ReversibleError
that says what to do instead.

Kinds: module hooks on a coupling or block; parametrize.cached(); randomness outside torch's global generator;
buffers changed between a forward and its backward; norm subclasses that read their running statistics in training;
first-call (data-dependent) initialisation and lazy modules; freezing or unfreezing between forward and backward;
functorch transforms and batched backward; replacing a coupling's F or G; reconstruction_error's side effects.
"""
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from models.reversible import (AdditiveCoupling, AffineCoupling, InvertibleUNet, ReversibleBlock, ReversibleError,
                               ReversibleSequence, graph_saved_bytes, is_recomputing, reconstruction_error)

from .helpers import assert_matches_plain, conv_body, make_input, rel

TOL = 1e-8
DIRECTIONS = ["forward", "inverse"]


def loss_of(y):
    return (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum() + y.square().mean()


def call(net, x, direction):
    return net.inverse(x) if direction == "inverse" else net(x)


# -- 1. hooks on a coupling (or any block) -----------------------------------------------------------------------------
def install(kind, module, log):
    """A module hook of ``kind`` on ``module``; what it sees (outside a recomputation) goes to ``log``."""
    if kind == "reads":
        module.register_forward_hook(lambda m, i, o: None if is_recomputing() else log.append(o.detach().clone()))
    elif kind == "changes_output":
        module.register_forward_hook(lambda m, i, o: o * 1.25 + 0.1 * o.tanh())
    elif kind == "changes_output_in_place":
        module.register_forward_hook(lambda m, i, o: o.mul_(1.25))
    elif kind == "changes_input":
        module.register_forward_pre_hook(lambda m, args: (args[0] * 0.75 + 0.1,))
    elif kind == "backward":
        def hook(m, grad_in, grad_out):
            log.append((grad_in[0].clone(), grad_out[0].clone()))
            return (grad_in[0] * 0.5,)
        module.register_full_backward_hook(hook)
    elif kind == "backward_pre":
        def pre(m, grad_out):
            log.append(grad_out[0].clone())
            return (grad_out[0] * 2.0,)
        module.register_full_backward_pre_hook(pre)
    else:
        raise ValueError(kind)


HOOKS = ["reads", "changes_output", "changes_output_in_place", "changes_input", "backward", "backward_pre"]


def assert_logs_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for s, t in zip(*((x, y) if isinstance(x, tuple) else ((x,), (y,)))):
            assert rel(s, t) <= TOL


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("hook", HOOKS)
def test_hooks_on_a_coupling(hook, direction):
    logs = {True: [], False: []}

    def make(ms):
        blocks = [AffineCoupling(conv_body(), conv_body()) for _ in range(3)]
        install(hook, blocks[1], logs[ms])
        return ReversibleSequence(blocks, memory_saving=ms).double(), ()
    assert_matches_plain(make, make_input(), direction)
    assert_logs_equal(logs[True], logs[False])
    if direction == "forward":
        assert logs[False] or hook.startswith("changes")  # the hook really ran (plain autograd's inverse skips it)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("hook", ["changes_output", "changes_input", "backward"])
def test_hooks_on_a_nested_sequence_and_inside_it(hook, direction):
    logs = {True: [], False: []}

    def make(ms):
        inner_coupling = AdditiveCoupling(conv_body(dropout=0.2), conv_body())
        inner = ReversibleSequence([AffineCoupling(conv_body(), conv_body()), inner_coupling], memory_saving=ms)
        install(hook, inner, logs[ms])
        install(hook, inner_coupling, logs[ms])  # a hooked coupling inside a block rebuilt by its inverse
        return ReversibleSequence([AffineCoupling(conv_body(), conv_body()), inner], memory_saving=ms).double(), ()
    assert_matches_plain(make, make_input(), direction)
    assert_logs_equal(logs[True], logs[False])


@pytest.mark.parametrize("hook", ["changes_output", "backward"])
def test_hooks_on_a_kept_input_block(hook):
    logs = {True: [], False: []}

    def make(ms):
        coupling = AffineCoupling(conv_body(dropout=0.2), conv_body())
        install(hook, coupling, logs[ms])
        return ReversibleBlock(coupling, keep_input=True, disable=not ms).double(), ()
    assert_matches_plain(make, make_input(), "forward")
    assert_logs_equal(logs[True], logs[False])


def test_hooks_in_an_iunet():
    def make(ms):
        unet = InvertibleUNet(4, [1, 1], dims=2, memory_saving=ms).double()
        couplings = [m for m in unet.modules() if isinstance(m, (AffineCoupling, AdditiveCoupling))]
        for c in couplings[::2]:
            install("changes_output", c, [])
        return unet, ()
    assert_matches_plain(make, make_input((2, 4, 8, 8)), "forward")


def hooked_saved_bytes(depth, hook):
    torch.manual_seed(0)
    blocks = [AdditiveCoupling(conv_body(4), conv_body(4)) for _ in range(depth)]
    for b in blocks:
        install(hook, b, [])
    net = ReversibleSequence(blocks).double()
    x = torch.randn(2, 8, 16, 16, dtype=torch.float64, requires_grad=True)
    return graph_saved_bytes(net(x), exclude=list(net.parameters()) + [x])


def test_read_only_hooks_keep_memory_flat_and_changing_hooks_keep_one_input():
    block = 2 * 8 * 16 * 16 * 8
    assert hooked_saved_bytes(10, "reads") == hooked_saved_bytes(2, "reads")
    assert hooked_saved_bytes(10, "backward") == hooked_saved_bytes(2, "backward")
    growth = (hooked_saved_bytes(10, "changes_output") - hooked_saved_bytes(2, "changes_output")) / 8
    assert growth == block  # each hooked block keeps its input, nothing else


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_global_module_hooks(direction):
    """Global hooks (profilers, module trackers) make every coupling hooked: still plain autograd's values, and
    read-only ones keep the memory flat."""
    seen = {True: [], False: []}
    mode = {"saving": True}

    def hook(module, args, output):
        if isinstance(module, AffineCoupling) and not is_recomputing():
            seen[mode["saving"]].append(float(output.detach().norm()))
    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        def make(ms):
            mode["saving"] = ms
            inner = ReversibleSequence([AffineCoupling(conv_body(dropout=0.2), conv_body())], memory_saving=ms)
            return ReversibleSequence([AffineCoupling(conv_body(), conv_body()), inner], memory_saving=ms).double(), ()
        assert_matches_plain(make, make_input(), direction)
        assert hooked_saved_bytes(10, "reads") == hooked_saved_bytes(2, "reads")
    finally:
        handle.remove()
    assert seen[True] == pytest.approx(seen[False], rel=TOL)
    assert len(seen[False]) == (2 if direction == "forward" else 0)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_hook_that_draws_random_numbers_only_in_the_forward(direction):
    """A logging hook on a coupling that samples activations (torch's RNG) but skips the recomputation: F and G's
    dropout after it still draws the forward's masks (each coupling call replays its own record)."""
    picked = {True: [], False: []}

    def make(ms):
        def pre_hook(module, args):
            if not is_recomputing():
                picked[ms].append(float(args[0].detach().flatten()[torch.randint(args[0].numel(), (1,))]))
        blocks = [AffineCoupling(conv_body(dropout=0.3), conv_body(dropout=0.3)) for _ in range(2)]
        blocks[1].register_forward_pre_hook(pre_hook)
        return ReversibleSequence(blocks, memory_saving=ms).double(), ()
    assert_matches_plain(make, make_input(), direction)
    assert picked[True] == picked[False]


def test_a_hook_that_modifies_the_input_in_place_is_refused():
    coupling = AdditiveCoupling(conv_body(), conv_body()).double()
    coupling.register_forward_pre_hook(lambda m, args: args[0].mul_(2.0))
    net = ReversibleSequence([AdditiveCoupling(conv_body(), conv_body()).double(), coupling])
    with pytest.raises(ReversibleError, match="modified its input in place"):
        net(make_input().requires_grad_(True))


# -- 2. torch.nn.utils.parametrize.cached() ----------------------------------------------------------------------------
class Symmetric(nn.Module):
    def forward(self, w):
        return (w + w.transpose(0, 1)) / 2


def parametrized_net(ms):
    torch.manual_seed(0)

    def body():
        conv = nn.Conv2d(2, 2, 1)
        parametrize.register_parametrization(conv, "weight", Symmetric())
        return nn.Sequential(conv, nn.Tanh(), conv)  # the parametrized weight is read twice per call
    return ReversibleSequence([AffineCoupling(body(), body()) for _ in range(2)], memory_saving=ms).double()


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_parametrize_cached_around_the_forward_is_refused(direction):
    x = make_input().requires_grad_(True)
    with parametrize.cached():
        loss_of(call(parametrized_net(False), x, direction)).backward()  # plain autograd trains
        with pytest.raises(ReversibleError, match=r"parametrize\.cached\(\).*memory_saving=False"):
            call(parametrized_net(True), x, direction)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_parametrize_cached_around_the_backward_only_matches(direction):
    results = []
    for ms in (True, False):
        net = parametrized_net(ms)
        x = make_input().requires_grad_(True)
        loss = loss_of(call(net, x, direction))
        with parametrize.cached():
            grads = torch.autograd.grad(loss, [x] + list(net.parameters()))
        results.append(grads)
    for a, b in zip(*results):
        assert rel(a, b) <= TOL


# -- 3. randomness from a private torch.Generator ----------------------------------------------------------------------
class Noise(nn.Module):
    """Multiplicative noise from a generator of its own (an attribute of the module)."""

    def __init__(self):
        super().__init__()
        self.generator = torch.Generator().manual_seed(3)

    def forward(self, x):
        return x * (1 + 0.5 * torch.randn(x.shape, generator=self.generator, dtype=x.dtype))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_private_generator_is_recorded_and_replayed(direction):
    noises = {}

    def make(ms):
        noises[ms] = [Noise() for _ in range(3)]
        inner = ReversibleSequence([AdditiveCoupling(nn.Sequential(conv_body(), noises[ms][0]), conv_body())],
                                   memory_saving=ms)
        blocks = [AffineCoupling(nn.Sequential(conv_body(), noises[ms][1]), conv_body()), inner,
                  AdditiveCoupling(conv_body(), nn.Sequential(noises[ms][2], conv_body()))]
        return ReversibleSequence(blocks, memory_saving=ms).double(), ()
    assert_matches_plain(make, make_input(), direction)
    for a, b in zip(noises[True], noises[False]):  # the recomputation did not advance the generators
        assert torch.equal(a.generator.get_state(), b.generator.get_state())


# -- 4. buffers changed between a forward and its backward -------------------------------------------------------------
class Conditioned(nn.Module):
    """FiLM-style conditioning by a buffer that the training loop sets before each call."""

    def __init__(self, multiply):
        super().__init__()
        self.multiply = multiply
        self.register_buffer("code", torch.zeros(1, 2, 1, 1, dtype=torch.float64))

    def forward(self, x):
        return x * self.code + x + self.code if self.multiply else x + self.code


def conditioned_net(ms, multiply, training):
    torch.manual_seed(0)
    cond = Conditioned(multiply).train(training)
    net = ReversibleSequence([AffineCoupling(nn.Sequential(conv_body(), cond), conv_body()),
                              AdditiveCoupling(conv_body(), conv_body())], memory_saving=ms).double()
    return net, cond


def two_conditioned_calls(ms, direction, change, multiply=False, training=True):
    net, cond = conditioned_net(ms, multiply, training)
    codes = [torch.full((1, 2, 1, 1), v, dtype=torch.float64) for v in (0.5, -0.25)]
    x = make_input().requires_grad_(True)
    cond.code.copy_(codes[0])
    y1 = call(net, x, direction)
    if change == "copy_":
        cond.code.copy_(codes[1])
    else:
        cond.code = codes[1]
    y2 = call(net, x * 0.5, direction)
    return torch.autograd.grad(loss_of(y1) + loss_of(y2), [x] + list(net.parameters()))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("change", ["copy_", "reassigned"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_buffer_changed_before_the_backward_is_refused(direction, change, training):
    two_conditioned_calls(False, direction, change, training=training)  # plain autograd (x + code) trains
    with pytest.raises(ReversibleError, match=r"buffer Conditioned\.code .*(modified in place|not the tensor)"):
        two_conditioned_calls(True, direction, change, training=training)


def test_a_buffer_changed_in_place_when_plain_autograd_refuses_too():
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        two_conditioned_calls(False, "forward", "copy_", multiply=True)
    with pytest.raises(ReversibleError, match="modified in place"):
        two_conditioned_calls(True, "forward", "copy_", multiply=True)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_buffer_changed_after_each_backward_matches(direction):
    results = []
    for ms in (True, False):
        net, cond = conditioned_net(ms, True, True)
        grads = []
        for v in (0.5, -0.25):
            cond.code.fill_(v)
            x = make_input().requires_grad_(True)
            grads += torch.autograd.grad(loss_of(call(net, x, direction)), [x] + list(net.parameters()))
        results.append(grads)
    for a, b in zip(*results):
        assert rel(a, b) <= TOL


# -- 5. a BatchNorm subclass that reads its running statistics in training mode ----------------------------------------
class BatchRenorm(nn.BatchNorm2d):
    """Batch renormalisation: the training output is corrected by the running statistics it then updates."""

    def forward(self, x):
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
        if self.training:
            with torch.no_grad():
                r = ((var + self.eps) / (self.running_var + self.eps)).sqrt().clamp(0.5, 2)
                d = ((mean - self.running_mean) / (self.running_var + self.eps).sqrt()).clamp(-1, 1)
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)
                self.num_batches_tracked.add_(1)
        else:
            mean, var, r, d = self.running_mean, self.running_var, 1, 0
        shape = (1, -1, 1, 1)
        y = (x - mean.view(shape)) / (var.view(shape) + self.eps).sqrt() * r.view(shape) + d.view(shape) \
            if self.training else (x - mean.view(shape)) / (var.view(shape) + self.eps).sqrt()
        return y * self.weight.view(shape) + self.bias.view(shape)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_norm_subclass_that_reads_its_running_statistics(direction):
    def make(ms):
        def body():
            bn = BatchRenorm(2)
            with torch.no_grad():
                bn.running_mean.normal_(0, 0.5)
                bn.running_var.uniform_(0.5, 1.5)
            return nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, bias=False), bn, nn.Tanh())
        shared = body()  # called twice per forward: each call must see the statistics it started from
        return ReversibleSequence([AffineCoupling(body(), shared), AdditiveCoupling(shared, body())],
                                  memory_saving=ms).double(), ()
    assert_matches_plain(make, make_input(), direction)


# -- 6. first-call (data-dependent) initialisation and lazy modules ----------------------------------------------------
class ActNorm(nn.Module):
    """Glow's ActNorm: the first training call sets scale and shift from its batch (under no_grad)."""

    def __init__(self, channels, through_data=False):
        super().__init__()
        self.through_data = through_data
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    def forward(self, x):
        if not self.initialized:
            with torch.no_grad():
                mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)
                shift, log_scale = (self.shift.data, self.log_scale.data) if self.through_data else \
                    (self.shift, self.log_scale)
                shift.copy_(-mean)
                log_scale.copy_(-(std + 1e-6).log())
                self.initialized.fill_(1)
        return (x + self.shift) * self.log_scale.exp()


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("kind", ["actnorm", "actnorm_through_data", "lazy"])
def test_first_call_initialisation(kind, direction):
    nets = {}

    def first(c):
        if kind == "lazy":
            return nn.Sequential(nn.LazyConv2d(c, 3, padding=1, bias=False), nn.LazyBatchNorm2d(), nn.Tanh())
        return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), ActNorm(c, kind == "actnorm_through_data"), nn.Tanh())

    def make(ms):
        shared = first(2)
        inner = ReversibleSequence([AdditiveCoupling(first(2), conv_body())], memory_saving=ms)
        nets[ms] = ReversibleSequence([AffineCoupling(first(2), shared), inner, AdditiveCoupling(shared, first(2))],
                                      memory_saving=ms).double()
        return nets[ms], ()
    # .data hides the write from autograd and the engine: the recomputation initialises again, equal to rounding
    assert_matches_plain(make, make_input(), direction, tol=TOL if kind != "actnorm_through_data" else 1e-12)
    for a, b in zip(nets[True].parameters(), nets[False].parameters()):  # initialised once, to the same values
        assert rel(a, b) <= (0 if kind != "actnorm_through_data" else 1e-12)


def test_lazy_modules_run_their_first_call_on_plain_autograd_then_save_memory():
    torch.manual_seed(0)
    body = lambda: nn.Sequential(nn.LazyConv2d(4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1))
    net = ReversibleSequence([AdditiveCoupling(body(), body()) for _ in range(6)]).double()
    x = torch.randn(2, 8, 16, 16, dtype=torch.float64, requires_grad=True)
    first, second = (graph_saved_bytes(net(x), exclude=list(net.parameters()) + [x]) for _ in range(2))
    assert first > 6 * x.numel() * 8 >= 6 * second  # activations of every block, then only the output


# -- 7. freezing or unfreezing parameters between forward and backward -------------------------------------------------
def grads_after_a_late_change(build, change, direction):
    """``build(ms)`` -> (network, parameters frozen or unfrozen between its forward and its backward); the gradients
    of the memory-saving network must equal plain autograd's (those of the plain run are returned)."""
    results = []
    for ms in (True, False):
        torch.manual_seed(0)
        net, changed = build(ms)
        if change == "unfreeze":
            for p in changed:
                p.requires_grad_(False)
        x = make_input().requires_grad_(True)
        y = call(net, x, direction)
        for p in changed:  # e.g. freezing a discriminator late, after the generator's forward
            p.requires_grad_(change == "unfreeze")
        loss_of(y).backward()
        results.append([x.grad] + [p.grad for p in net.parameters()])
    for a, b in zip(*results):
        assert (a is None) == (b is None)
        if b is not None:
            assert rel(a, b) <= TOL
    return results[1]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("change", ["freeze", "unfreeze"])
@pytest.mark.parametrize("keep_input", [False, True])
def test_requires_grad_changed_between_forward_and_backward(change, direction, keep_input):
    def build(ms):
        blocks = [AffineCoupling(conv_body(), conv_body()) for _ in range(2)]
        inner = ReversibleBlock(AdditiveCoupling(conv_body(), conv_body()), keep_input=keep_input,
                                keep_input_inverse=keep_input, disable=not ms)
        net = ReversibleSequence(blocks + [inner], memory_saving=ms).double()
        return net, list(blocks[0].F.parameters()) + list(inner.module.G[0].parameters())
    grads = grads_after_a_late_change(build, change, direction)
    assert sum(g is None for g in grads) == 6  # the changed parameters got no gradient


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("change", ["freeze", "unfreeze"])
@pytest.mark.parametrize("alone", [True, False])
def test_requires_grad_changed_on_a_parameter_shared_by_f_and_g(change, direction, alone):
    # One convolution serves F and G of a ReversibleBlock(keep_input=True) (and, in a sequence, F of the block
    # before it): its requires_grad of the forward is put back once for the recomputation (flipped once per
    # function, as it was, the block alone ended where the change left it and refused to differentiate)
    def build(ms):
        shared = nn.Conv2d(2, 2, 3, padding=1)
        inner = ReversibleBlock(AdditiveCoupling(nn.Sequential(shared, nn.Tanh()), nn.Sequential(conv_body(), shared)),
                                keep_input=True, keep_input_inverse=True, disable=not ms)
        first = AffineCoupling(nn.Sequential(conv_body(), shared), conv_body())
        net = inner if alone else ReversibleSequence([first, inner], memory_saving=ms)
        return net.double(), list(shared.parameters())
    grads = grads_after_a_late_change(build, change, direction)
    assert sum(g is None for g in grads) == 2  # the shared convolution's weight and bias got no gradient


# -- 8. functorch transforms and batched backward ----------------------------------------------------------------------
def small_net(ms):
    torch.manual_seed(0)
    return ReversibleSequence([AffineCoupling(conv_body(), conv_body()) for _ in range(2)], memory_saving=ms).double()


TRANSFORMS = {
    "func.grad": lambda f, x: torch.func.grad(lambda t: f(t).sum())(x),
    "func.vmap": lambda f, x: torch.func.vmap(f)(x.unsqueeze(1)),
    "func.jacrev": lambda f, x: torch.func.jacrev(f)(x),
    "func.jvp": lambda f, x: torch.func.jvp(f, (x,), (torch.ones_like(x),)),
    "jacobian(vectorize=True)": lambda f, x: torch.autograd.functional.jacobian(f, x, vectorize=True),
    "gradcheck(check_batched_grad=True)": lambda f, x: torch.autograd.gradcheck(
        f, (x.requires_grad_(True),), check_batched_grad=True),
    "grad(is_grads_batched=True)": lambda f, x: torch.autograd.grad(
        f(x.requires_grad_(True)), x, torch.randn((3,) + x.shape, dtype=x.dtype), is_grads_batched=True),
    "forward_ad": lambda f, x: forward_ad(f, x),
}


def forward_ad(f, x):
    with torch.autograd.forward_ad.dual_level():
        return torch.autograd.forward_ad.unpack_dual(f(torch.autograd.forward_ad.make_dual(x, torch.ones_like(x))))


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_functorch_transforms_are_refused(transform, direction):
    x = make_input((1, 4, 3, 3))
    plain, saving = small_net(False), small_net(True)
    TRANSFORMS[transform](lambda t: call(plain, t, direction), x.clone())  # plain autograd runs it
    with pytest.raises(Exception, match="functorch|batched|forward-mode") as info:
        TRANSFORMS[transform](lambda t: call(saving, t, direction), x.clone())
    error = info.value
    while not isinstance(error, ReversibleError) and error.__cause__ is not None:
        error = error.__cause__  # gradcheck wraps what the function raised
    assert isinstance(error, ReversibleError) or "ReversibleError" in str(info.value)
    assert "memory_saving=False" in str(info.value)


# -- 9. replacing a coupling's F or G after construction ---------------------------------------------------------------
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_replacing_f_or_g(direction):
    calls = {True: 0, False: 0}

    def make(ms):
        blocks = [AffineCoupling(conv_body(), conv_body()), AdditiveCoupling(conv_body(), lambda t: t.sin())]
        old = blocks[0].F
        old.register_forward_hook(lambda *a: calls.__setitem__(ms, calls[ms] + 1))
        blocks[0].F = conv_body(dropout=0.2)  # a module replaces a module
        blocks[1].G = lambda t: torch.tanh(t) * 0.5  # a function replaces a function
        net = ReversibleSequence(blocks, memory_saving=ms).double()
        assert not any(p is q for p in net.parameters() for q in old.parameters())
        return net, ()
    assert_matches_plain(make, make_input(), direction)
    assert calls == {True: 0, False: 0}  # the old F never ran


def test_replacing_f_changes_what_plain_autograd_computes():
    torch.manual_seed(0)
    coupling = AdditiveCoupling(conv_body(), conv_body()).double()
    x = make_input()
    before = coupling(x)
    coupling.F = conv_body().double()
    assert rel(coupling(x), before) > 1e-3
    assert rel(coupling.inverse(coupling(x)), x) < 1e-12


# -- 10. reconstruction_error leaves the model as it found it ----------------------------------------------------------
def test_reconstruction_error_leaves_state_as_it_found_it():
    torch.manual_seed(0)

    def body():
        return nn.Sequential(torch.nn.utils.parametrizations.spectral_norm(nn.Conv2d(2, 2, 3, padding=1)),
                             nn.BatchNorm2d(2), nn.Dropout(0.2), Noise(), nn.Tanh())
    net = ReversibleSequence([AffineCoupling(body(), body()) for _ in range(2)]).double().train()
    x = make_input()
    buffers = [b.clone() for b in net.buffers()]
    rng = torch.get_rng_state()
    generators = [m.generator.get_state() for m in net.modules() if isinstance(m, Noise)]
    for inverse in (False, True):
        assert reconstruction_error(net, x, inverse=inverse) >= 0
    assert all(torch.equal(a, b) for a, b in zip(buffers, net.buffers()))  # statistics, num_batches_tracked, u/v
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(a, m.generator.get_state())
               for a, m in zip(generators, [m for m in net.modules() if isinstance(m, Noise)]))
    assert net.training and all(m.training for m in net.modules())
