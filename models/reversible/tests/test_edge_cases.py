"""The cases an audit against plain autograd found (one test per case, both directions where a direction applies):
each either matches plain autograd in float64 or is refused with a ReversibleError that says what to do instead."""
import pytest
import torch
from torch import nn

from models.reversible import (AdditiveCoupling, AffineCoupling, InvertibleUNet, ReversibleBlock, ReversibleError,
                               ReversibleSequence, is_recomputing)

from .helpers import Direction, assert_matches_plain, conv_body, make_input, rel

TOL = 1e-8  # the bar; most of these match to ~1e-14
COUPLINGS = {"additive": AdditiveCoupling, "affine": AffineCoupling}
DIRECTIONS = ["forward", "inverse"]


# -- F(x) = x + b, b shaped like x: autograd returns one tensor as the gradient of both ---------------------------
class AddParameter(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.b = nn.Parameter(torch.randn(shape, dtype=torch.float64))

    def forward(self, x):
        return x + self.b


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("kind", ["additive", "affine"])
def test_parameter_added_to_the_half_gets_its_own_gradient(kind, direction):
    def make(ms):
        blocks = [COUPLINGS[kind](AddParameter((1, 2, 5, 5)), AddParameter((1, 2, 5, 5))) for _ in range(3)]
        return ReversibleSequence(blocks, memory_saving=ms), ()
    assert_matches_plain(make, make_input((1, 4, 5, 5)), direction)


# -- F returns a stride-0 (expanded) tensor -------------------------------------------------------------------------
class GlobalSum(nn.Module):
    """A global sum broadcast back: the output, and the gradient of the input, are expanded (stride 0)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.05], dtype=torch.float64))

    def forward(self, x):
        return (x.sum() * self.w).expand_as(x)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("kind", ["additive", "affine"])
def test_expanded_stride_zero_outputs(kind, direction):
    def make(ms):
        blocks = [COUPLINGS[kind](GlobalSum(), conv_body().double()),
                  COUPLINGS[kind](conv_body().double(), GlobalSum())]
        return ReversibleSequence(blocks, memory_saving=ms), ()
    out = GlobalSum()(torch.ones(1, 2, 3, 3, dtype=torch.float64))
    assert 0 in out.stride()
    assert_matches_plain(make, make_input(), direction)


# -- hooks on parameters --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_parameter_hooks_run_once(direction):
    calls = {True: 0, False: 0}

    def make(ms):
        shared = conv_body().double()  # a parameter used by several blocks: its hook still runs once per backward
        net = ReversibleSequence([AffineCoupling(shared, conv_body().double()) for _ in range(3)], memory_saving=ms)

        def halve(g):
            calls[ms] += 1
            return g * 0.5
        for p in net.parameters():
            p.register_hook(halve)
        return net, ()
    assert_matches_plain(make, make_input(), direction)
    assert calls[True] == calls[False] == 4 + 3 * 4  # shared F's 4 tensors once each, each G's 4 tensors once


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_parameter_hooks_with_backward_and_dot_grad(direction):
    """The same through loss.backward(): .grad holds the hooked gradient once, as with plain autograd."""
    grads = []
    for ms in (True, False):
        torch.manual_seed(0)
        net = ReversibleSequence([AdditiveCoupling(conv_body(), conv_body()) for _ in range(2)],
                                 memory_saving=ms).double()
        for p in net.parameters():
            p.register_hook(lambda g: g * 0.5)
        x = make_input().requires_grad_(True)
        y = net.inverse(x) if direction == "inverse" else net(x)
        y.square().sum().backward()
        grads.append([x.grad] + [p.grad for p in net.parameters()])
    for a, b in zip(*grads):
        assert rel(a, b) <= TOL


# -- dropout in nested sequences and iUNet levels -------------------------------------------------------------------
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_dropout_inside_a_nested_sequence(direction):
    def make(ms):
        inner = ReversibleSequence([AdditiveCoupling(conv_body(dropout=0.3), conv_body(dropout=0.3)),
                                    AffineCoupling(conv_body(dropout=0.3), conv_body())], memory_saving=ms)
        shared = AdditiveCoupling(conv_body(dropout=0.2), conv_body())
        deeper = ReversibleSequence([shared, ReversibleSequence([shared, inner], memory_saving=ms)],
                                    memory_saving=ms)  # a coupling used twice inside one nested block
        return ReversibleSequence([AffineCoupling(conv_body(), conv_body(dropout=0.3)), deeper, inner],
                                  memory_saving=ms).double(), ()
    assert_matches_plain(make, make_input(), direction)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("coupling", ["additive", "affine"])
def test_dropout_in_iunet_levels(coupling, direction):
    def block_fn(cin, cout, level):
        return nn.Sequential(nn.Conv2d(cin, 4, 3, padding=1), nn.Dropout(0.3), nn.LeakyReLU(0.2),
                             nn.Conv2d(4, cout, 3, padding=1))

    def make(ms):
        return InvertibleUNet(4, [1, 1, 2], dims=2, coupling=coupling, block_fn=block_fn, channel_mixing=True,
                              memory_saving=ms).double(), ()
    assert_matches_plain(make, make_input((2, 4, 8, 8)), direction)


# -- spectral normalization -----------------------------------------------------------------------------------------
SPECTRAL_NORMS = {"spectral_norm": torch.nn.utils.spectral_norm,
                  "parametrizations.spectral_norm": torch.nn.utils.parametrizations.spectral_norm}


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("api", sorted(SPECTRAL_NORMS))
def test_spectral_norm(api, direction):
    sn = SPECTRAL_NORMS[api]

    def body():
        return nn.Sequential(sn(nn.Conv2d(2, 2, 3, padding=1)), nn.Tanh(), sn(nn.Conv2d(2, 2, 3, padding=1)))

    def make(ms):
        shared = body()  # updated once per use: every use must be recomputed from the state it started from
        blocks = [AffineCoupling(body(), shared), AdditiveCoupling(shared, body()), AffineCoupling(body(), body())]
        return ReversibleSequence(blocks, memory_saving=ms).double(), ()
    assert_matches_plain(make, make_input(), direction)


@pytest.mark.parametrize("api", sorted(SPECTRAL_NORMS))
def test_spectral_norm_several_calls_before_one_backward(api):
    """The unpaired pattern (A->B, B->A, cycles) with spectral norm: four updates of u/v before the backward."""
    sn = SPECTRAL_NORMS[api]
    results = []
    for ms in (True, False):
        torch.manual_seed(0)
        body = lambda: nn.Sequential(sn(nn.Conv2d(2, 2, 3, padding=1)), nn.Tanh(), nn.Conv2d(2, 2, 3, padding=1))
        net = ReversibleSequence([AffineCoupling(body(), body()) for _ in range(2)], memory_saving=ms).double()
        a, b = make_input(seed=1).requires_grad_(True), make_input(seed=2).requires_grad_(True)
        fake_b = net(a)
        fake_a = net.inverse(b)
        loss = fake_b.square().sum() + (net.inverse(fake_b) - a).abs().sum() + fake_a.sin().sum() \
            + (net(fake_a) - b).abs().sum()
        results.append((torch.autograd.grad(loss, [a, b] + list(net.parameters())), list(net.buffers())))
    for x, y in zip(results[0][0], results[1][0]):
        assert rel(x, y) <= TOL
    for x, y in zip(results[0][1], results[1][1]):
        assert rel(x, y) <= TOL if y.is_floating_point() else torch.equal(x, y)


def test_spectral_norm_costs_only_its_vectors():
    """What is kept per spectral-normalized convolution is its u/v state, not activations."""
    from models.reversible import graph_saved_bytes

    def saved(depth):
        torch.manual_seed(0)
        body = lambda: nn.Sequential(torch.nn.utils.parametrizations.spectral_norm(nn.Conv2d(4, 4, 3, padding=1)),
                                     nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        net = ReversibleSequence([AdditiveCoupling(body(), body()) for _ in range(depth)]).double()
        x = torch.randn(2, 8, 16, 16, dtype=torch.float64, requires_grad=True)
        return graph_saved_bytes(net(x), exclude=list(net.parameters()) + [x])
    per_block = (saved(10) - saved(2)) / 8
    vectors = 2 * (4 + 4 * 9) * 8  # u (4) and v (36) of two convolutions, float64
    assert 0 < per_block <= vectors
    assert per_block < 0.02 * 2 * 8 * 16 * 16 * 8  # far less than a block output


# -- refused: outside tensors that require grad ---------------------------------------------------------------------
class Conditioned(nn.Module):
    """F that multiplies by a tensor it does not own (a conditioning code)."""

    def __init__(self, code):
        super().__init__()
        self.body = conv_body().double()
        self.__dict__["code"] = code  # not a parameter or buffer of F

    def forward(self, x):
        return self.body(x) * self.code


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_closure_over_an_outside_tensor_is_refused(direction):
    code = torch.randn(1, 2, 1, 1, dtype=torch.float64, requires_grad=True)
    x = make_input().requires_grad_(True)
    plain = ReversibleSequence([AdditiveCoupling(Conditioned(code), conv_body().double())], memory_saving=False)
    y = plain.inverse(x) if direction == "inverse" else plain(x)
    assert torch.autograd.grad(y.sum(), code)[0].abs().sum() > 0  # plain autograd gives it a gradient
    saving = ReversibleSequence([AdditiveCoupling(Conditioned(code), conv_body().double())])
    y = saving.inverse(x) if direction == "inverse" else saving(x)
    with pytest.raises(ReversibleError, match=r"F of block 0 .* uses a tensor that requires grad .* nn\.Parameter"):
        y.sum().backward()
    assert code.grad is None and all(p.grad is None for p in saving.parameters())


def test_f_using_a_parameter_of_g_is_refused():
    g = conv_body().double()
    saving = ReversibleSequence([AdditiveCoupling(lambda t: g(t) * 0.5, g)])  # F calls G's module
    y = saving(make_input().requires_grad_(True))
    with pytest.raises(ReversibleError, match="a parameter of the block that is not registered in this function"):
        y.sum().backward()


# -- refused: torch.func.functional_call ----------------------------------------------------------------------------
def functional_net(ms):
    torch.manual_seed(0)
    body = lambda: nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Tanh())
    return ReversibleSequence([AdditiveCoupling(body(), body()) for _ in range(2)], memory_saving=ms).double()


def test_functional_call_with_substituted_tensors_is_refused_in_forward():
    net = functional_net(True)
    new = {n: p.detach() * 1.1 for n, p in net.named_parameters()}  # plain tensors
    with pytest.raises(ReversibleError, match="functional_call with substituted parameters"):
        torch.func.functional_call(net, new, (make_input().requires_grad_(True),))
    # plain autograd supports it (the reference)
    out = torch.func.functional_call(functional_net(False), new, (make_input().requires_grad_(True),))
    assert out.requires_grad


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_functional_call_with_substituted_parameters_is_refused_in_backward(direction):
    module = Direction(functional_net(True), direction)
    new = {n: nn.Parameter(p.detach() * 1.1) for n, p in module.named_parameters()}
    y = torch.func.functional_call(module, new, (make_input().requires_grad_(True),))
    with pytest.raises(ReversibleError, match=r"parameter Conv2d\.weight is not the tensor the forward used "
                                              r"\(torch\.func\.functional_call"):
        y.sum().backward()
    assert all(p.grad is None for p in new.values())


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_functional_call_with_substituted_buffers_is_refused_in_backward(direction):
    module = Direction(functional_net(True), direction).eval()
    buffers = {n: b + 0.5 if b.is_floating_point() else b for n, b in module.named_buffers()}
    x = make_input().requires_grad_(True)
    y = torch.func.functional_call(module, buffers, (x,))
    with pytest.raises(ReversibleError, match=r"buffer BatchNorm2d\.running_mean is not the tensor the forward used"):
        y.sum().backward()
    # plain autograd gives the gradients of the network with the substituted buffers
    plain = Direction(functional_net(False), direction).eval()
    grad, = torch.autograd.grad(torch.func.functional_call(plain, buffers, (x,)).sum(), x)
    assert rel(grad, torch.autograd.grad(plain(x).sum(), x)[0]) > 1e-3


# -- refused: second-order gradients --------------------------------------------------------------------------------
def second_order_net(ms, keep_input=False):
    torch.manual_seed(0)
    if keep_input:
        return ReversibleBlock(AffineCoupling(conv_body(), conv_body()), keep_input=True, keep_input_inverse=True,
                               disable=not ms).double()
    return ReversibleSequence([AffineCoupling(conv_body(), conv_body()) for _ in range(2)], memory_saving=ms).double()


@pytest.mark.parametrize("keep_input", [False, True])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_second_order_gradients_are_refused(direction, keep_input):
    x = make_input()

    def f(net):
        return lambda t: (net.inverse(t) if direction == "inverse" else net(t)).square().sum()
    v = torch.ones_like(x)
    _, hvp = torch.autograd.functional.hvp(f(second_order_net(False, keep_input)), x, v)
    assert hvp.abs().sum() > 0
    with pytest.raises(ReversibleError, match="second-order gradients .* memory_saving=False"):
        torch.autograd.functional.hvp(f(second_order_net(True, keep_input)), x, v)
    # a gradient penalty: grad with create_graph=True, then backward through it
    net = second_order_net(True, keep_input)
    xi = x.clone().requires_grad_(True)
    y = net.inverse(xi) if direction == "inverse" else net(xi)
    with pytest.raises(ReversibleError, match="second-order gradients"):
        torch.autograd.grad(y.sum(), xi, create_graph=True)
    assert all(p.grad is None for p in net.parameters())


# -- torch.compile of a whole core ----------------------------------------------------------------------------------
def rng_of_its_own_backend(graphs):
    """A torch.compile backend that, like Inductor, draws the randomness of compiled code differently from eager
    code (a seed from the global generator): if the engine's forward were compiled, its recomputation (eager,
    replaying the global generator) would draw other dropout masks."""
    def backend(gm, example_inputs):
        graphs.append(gm)

        def run(*args):
            seed = int(torch.randint(0, 2 ** 31 - 1, (1,)))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return gm(*args)
        return run
    return backend


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_torch_compile_of_a_whole_core_runs_the_engine_eagerly(direction):
    torch._dynamo.reset()
    graphs = []

    def make(ms):
        body = lambda: nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Dropout(0.3), nn.Tanh(),
                                     nn.Conv2d(2, 2, 3, padding=1))
        net = ReversibleSequence([AffineCoupling(body(), body()) for _ in range(2)], memory_saving=ms).double()
        module = Direction(net, direction)  # compiles the call in that direction
        return (torch.compile(module, backend=rng_of_its_own_backend(graphs)) if ms else module), ()
    try:
        assert_matches_plain(make, make_input(), "forward")
    finally:
        torch._dynamo.reset()
    ops = [n.target for gm in graphs for n in gm.graph.nodes if n.op == "call_function"]
    assert not any("dropout" in str(op) or "conv" in str(op) for op in ops)  # F and G were not traced


def test_f_and_g_may_be_compiled_on_their_own():
    torch._dynamo.reset()
    graphs = []
    backend = rng_of_its_own_backend(graphs)

    def make(ms):
        body = lambda: torch.compile(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.Dropout(0.3), nn.Tanh()),
                                     backend=backend)
        return ReversibleSequence([AdditiveCoupling(body(), body()) for _ in range(2)], memory_saving=ms).double(), ()
    try:
        assert_matches_plain(make, make_input(), "forward")  # the compiled code draws the same masks when replayed
    finally:
        torch._dynamo.reset()
    assert graphs  # F and G really ran compiled


# -- forward hooks of F and G run again during recomputation (documented) -------------------------------------------
@pytest.mark.parametrize("keep_input", [False, True])
def test_forward_hooks_of_f_run_again_in_backward_and_can_tell(keep_input):
    calls = []
    torch.manual_seed(0)
    f = conv_body().double()
    f.register_forward_hook(lambda m, inp, out: calls.append(is_recomputing()))
    coupling = AdditiveCoupling(f, conv_body().double())
    net = ReversibleBlock(coupling, keep_input=True) if keep_input else ReversibleSequence([coupling])
    y = net(make_input().requires_grad_(True))
    assert calls == [False] and not is_recomputing()
    y.sum().backward()
    assert calls == [False, True]  # the recomputation in backward runs the hook again, and says so
    with torch.no_grad():
        net(make_input())
    plain = ReversibleSequence([coupling], memory_saving=False)
    plain(make_input().requires_grad_(True)).sum().backward()
    assert calls == [False, True, False, False]  # inference and plain autograd: one call each


# -- parameters changed between forward and backward ----------------------------------------------------------------
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_parameters_modified_before_backward_are_refused_like_plain_autograd(direction):
    for ms in (False, True):
        torch.manual_seed(0)
        net = ReversibleSequence([AffineCoupling(conv_body(), conv_body()) for _ in range(2)],
                                 memory_saving=ms).double()
        x = make_input().requires_grad_(True)
        y = net.inverse(x) if direction == "inverse" else net(x)
        with torch.no_grad():
            net[0].F[0].weight.add_(0.1)  # e.g. an optimizer step between forward and backward
        error = ReversibleError if ms else RuntimeError
        with pytest.raises(error, match="modified (by an inplace operation|in place between the forward)"):
            y.square().sum().backward()


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_eval_between_forward_and_backward_keeps_the_forward_mode(direction):
    """model.eval() (e.g. to render a sample) between forward and backward: plain autograd's graph was built in
    training mode, and the recomputation runs in the forward's mode too."""
    results = []
    for ms in (True, False):
        torch.manual_seed(0)
        body = lambda: nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, bias=False), nn.BatchNorm2d(2), nn.Dropout(0.3),
                                     nn.Tanh())
        inner = ReversibleSequence([AffineCoupling(body(), body())], memory_saving=ms)
        net = ReversibleSequence([AffineCoupling(body(), body()), inner], memory_saving=ms).double()
        x = make_input().requires_grad_(True)
        torch.manual_seed(1)
        y = net.inverse(x) if direction == "inverse" else net(x)
        net.eval()
        grads = torch.autograd.grad(y.square().sum(), [x] + list(net.parameters()))
        assert not any(m.training for m in net.modules())
        results.append((grads, [b.clone() for b in net.buffers()]))
    for a, b in zip(results[0][0], results[1][0]):
        assert rel(a, b) <= TOL
    for a, b in zip(results[0][1], results[1][1]):
        assert rel(a, b) <= TOL if b.is_floating_point() else torch.equal(a, b)


def test_module_backward_hooks_of_f_run_once_with_plain_values():
    seen = {True: [], False: []}
    for ms in (True, False):
        torch.manual_seed(0)
        f = conv_body().double()
        f.register_full_backward_hook(lambda m, gin, gout, ms=ms: seen[ms].append((gin[0].clone(), gout[0].clone())))
        net = ReversibleSequence([AdditiveCoupling(f, conv_body().double()) for _ in range(1)], memory_saving=ms)
        net(make_input().requires_grad_(True)).square().sum().backward()
    assert len(seen[True]) == len(seen[False]) == 1
    for a, b in zip(seen[True][0], seen[False][0]):
        assert rel(a, b) <= TOL


def replica(module):
    """What nn.parallel.replicate (nn.DataParallel) makes of a module for one device, without GPUs: parameters become
    non-leaf copies held as plain attributes."""
    copy = module._replicate_for_data_parallel()
    for name, p in module._parameters.items():
        setattr(copy, name, p * 1.0)
    for name, child in module._modules.items():
        copy._modules[name] = replica(child)
    return copy


def test_data_parallel_replicas_are_refused():
    torch.manual_seed(0)
    net = ReversibleSequence([AdditiveCoupling(conv_body(), conv_body()) for _ in range(2)]).double()
    plain = replica(ReversibleSequence(list(net.blocks), memory_saving=False))
    x = make_input().requires_grad_(True)
    grads = torch.autograd.grad(plain(x).sum(), list(net.parameters()))  # plain autograd reaches the originals
    assert all(g.abs().sum() > 0 for g in grads)
    with pytest.raises(ReversibleError, match="DataParallel replica.*DistributedDataParallel"):
        replica(net)(x)
