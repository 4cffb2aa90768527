"""Dimension-generic building blocks (``dims`` = 1, 2 or 3 picks conv, norm, padding), generator and discriminator
factories, the GAN losses with a real WGAN-GP gradient penalty, learning-rate schedulers and initialization."""
import contextlib
import functools
import weakref

import torch
from torch import nn
from torch.nn import init

from models.config import DiscriminatorConfig, GeneratorConfig
from models.lean import run_lean
from models import streamed
from models.streamed import run_streamed
from models.reversible import (AdditiveCoupling, AffineCoupling, InvertibleUNet, ReversibleSequence,
                               reconstruction_error, recompute, run_padded)
from util.errors import UserError


# ------------------------------------------------------------------------------------------------------------------
# layers picked by dims
def conv(dims):
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]


def conv_transpose(dims):
    return {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]


def reflection_pad(dims):
    return {1: nn.ReflectionPad1d, 2: nn.ReflectionPad2d, 3: nn.ReflectionPad3d}[dims]


def get_norm_layer(norm_type, dims):
    """A constructor ``norm(channels)``; ``none`` gives Identity."""
    if norm_type == "batch":
        return functools.partial({1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims],
                                 affine=True, track_running_stats=True)
    if norm_type == "syncbatch":
        return functools.partial(nn.SyncBatchNorm, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial({1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[dims],
                                 affine=False, track_running_stats=False)
    if norm_type == "none":
        return lambda channels: nn.Identity()
    raise UserError(f"unknown --norm {norm_type!r}; valid: batch, syncbatch, instance, none")


def _uses_bias(norm_layer):
    """Convolutions before BatchNorm need no bias (it is removed by the mean subtraction)."""
    func = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return func not in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


# ------------------------------------------------------------------------------------------------------------------
# initialization
def init_weights(net, init_type, init_gain):
    def init_func(m):
        name = m.__class__.__name__
        if hasattr(m, "weight") and m.weight is not None and ("Conv" in name or "Linear" in name):
            if init_type == "normal":
                init.normal_(m.weight, 0.0, init_gain)
            elif init_type == "xavier":
                init.xavier_normal_(m.weight, gain=init_gain)
            elif init_type == "kaiming":
                init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif init_type == "orthogonal":
                init.orthogonal_(m.weight, gain=init_gain)
            else:
                raise UserError(f"unknown --init_type {init_type!r}")
            if getattr(m, "bias", None) is not None:
                init.constant_(m.bias, 0.0)
        elif "BatchNorm" in name and getattr(m, "weight", None) is not None:
            init.normal_(m.weight, 1.0, init_gain)
            init.constant_(m.bias, 0.0)
    net.apply(init_func)
    return net


# ------------------------------------------------------------------------------------------------------------------
# memory: networks that recompute their activations in backward (--memory low)
SMALL_PART_BYTES = 4 * 2 ** 20  # a part whose layers' outputs total less keeps them (--memory low)
# A reversible core whose pass's layer outputs total less keeps them too (--memory low): 4 parts' worth, since the
# core is the generator's deepest part. On 64x64 tiles (--ngf 32, --n_downsampling 1, 6 blocks: 6.4 MiB a pass)
# recomputing it cost a quarter of unpaired_revgan's step on 2 CPU cores; from 128x128 (--ngf 64, 9 blocks: 37 MiB)
# it recomputes (docs/benchmarks.md, "A small core keeps its activations").
SMALL_CORE_BYTES_PER_PART = 4


class Recomputing:
    """A network whose parts outside a reversible core can run with recomputation (models.reversible.recompute:
    the graph keeps each part's input, backward runs the part again; same gradients, running statistics and random
    state as storing its activations). ``recompute`` is set by the model from --memory; off by default.

    A part whose activations are small keeps them: recomputing it would save less than SMALL_PART_BYTES and cost
    a forward pass. Which parts are small is measured on each part's first recomputed call for an input shape (the
    bytes of its layers' outputs, counted by forward hooks; a part with a streamed section is never small), so the
    first step always recomputes and a large part is never run whole on plain autograd."""
    recompute = False

    def run_part(self, part, x):
        """``part(x)``, recomputed in backward when this network recomputes (and not inside ``plain_autograd``) and
        the part is not small, its widest layers in slabs (models.streamed); without gradients, through
        models.lean (no full-resolution copies)."""
        if not torch.is_grad_enabled():
            return run_lean(part, x)
        if not self.recompute or _plain:
            return part(x)
        if streamed.compiled(part):  # (--compile: not measured)
            return run_streamed(part, x)
        sizes = _SMALL_PARTS.setdefault(part, {})
        key = _input_key(x)
        if key not in sizes:
            with _OutputBytes(part) as counted:
                y = run_streamed(part, x)
            sizes[key] = counted.small()
            return y
        return part(x) if sizes[key] else run_streamed(part, x)


def _core_is_small(core, run, x):
    """Whether a pass of ``core`` on ``x`` stores under SMALL_CORE_BYTES_PER_PART parts' worth of layer outputs,
    counted on a dry pass without gradients in eval mode: it draws no random numbers and updates no running
    statistics, so training continues as if it had not run."""
    modes = [(m, m.training) for m in core.modules()]
    core.eval()
    try:
        with torch.no_grad(), _OutputBytes(core) as counted:
            run(x)
    finally:
        for m, training in modes:
            m.train(training)
    return counted.small(SMALL_CORE_BYTES_PER_PART)


_SMALL_PARTS = weakref.WeakKeyDictionary()  # part or core -> {(shape, dtype, device): small}


def _input_key(x):
    """What a part's or core's measurement holds for: its input's shape, dtype and device."""
    return tuple(x.shape), x.dtype, x.device


class _OutputBytes:
    """Counts the bytes of the outputs of ``part``'s leaf modules (each new storage once) while open, and whether a
    section of it was streamed (models.streamed: its layers run outside their modules, so they are not counted)."""

    def __init__(self, part):
        self.part, self.bytes = part, 0

    def _hook(self, module, inputs, output):
        """Counts an output that is new memory: not its input's storage (an in-place ReLU, an identity, a view).
        (Not by the addresses seen so far: where a pass frees its outputs as it goes, as a recomputed part or a
        memory-saving core does, later outputs reuse their addresses.)"""
        if not torch.is_tensor(output):
            return
        ptr = output.untyped_storage().data_ptr()
        if not any(torch.is_tensor(i) and i.untyped_storage().data_ptr() == ptr for i in inputs):
            self.bytes += output.untyped_storage().nbytes()

    def __enter__(self):
        self.streamed_before = streamed.STREAMED_SECTIONS
        self.handles = [m.register_forward_hook(self._hook) for m in self.part.modules() if not list(m.children())]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.streamed = streamed.STREAMED_SECTIONS != self.streamed_before

    def small(self, parts=1):
        return not self.streamed and self.bytes < parts * SMALL_PART_BYTES


_plain = False


@contextlib.contextmanager
def plain_autograd():
    """Within it networks store their activations (second-order gradients, e.g. the WGAN-GP penalty, need them)."""
    global _plain
    before, _plain = _plain, True
    try:
        yield
    finally:
        _plain = before


# ------------------------------------------------------------------------------------------------------------------
# generators
class ResnetBlock(nn.Module):
    def __init__(self, dim, *, norm_layer, use_dropout, use_bias, dims):
        super().__init__()
        self.conv_block = residual_body(dim, dim, norm_layer=norm_layer, use_dropout=use_dropout, use_bias=use_bias,
                                        dims=dims)

    def forward(self, x):
        return x + self.conv_block(x)


def residual_body(cin, cout, *, norm_layer, use_dropout, use_bias, dims):
    """pad-conv-norm-ReLU-[dropout]-pad-conv-norm: the body of a ResNet block, and F/G of a coupling."""
    layers = [reflection_pad(dims)(1), conv(dims)(cin, cout, 3, bias=use_bias), norm_layer(cout), nn.ReLU(True)]
    if use_dropout:
        layers.append(nn.Dropout(0.5))
    layers += [reflection_pad(dims)(1), conv(dims)(cout, cout, 3, bias=use_bias), norm_layer(cout)]
    return nn.Sequential(*layers)


class PixelUnshuffle(nn.Module):
    """Each 2x2 (2x2x2 in 3D, 2 in 1D) block of pixels moved into channels, for any dims (``inverse``: back; torch's
    nn.PixelUnshuffle/PixelShuffle order in 2D). No parameters; exactly invertible."""

    def __init__(self, dims, inverse=False):
        super().__init__()
        self.dims, self.inverse = dims, inverse

    def forward(self, x):
        d, (n, c), spatial = self.dims, x.shape[:2], x.shape[2:]
        if not self.inverse:
            x = x.reshape(n, c, *[v for s in spatial for v in (s // 2, 2)])
            x = x.permute([0, 1] + [3 + 2 * i for i in range(d)] + [2 + 2 * i for i in range(d)])
            return x.reshape(n, c * 2 ** d, *[s // 2 for s in spatial])
        x = x.reshape(n, c // 2 ** d, *([2] * d), *spatial)
        x = x.permute([0, 1] + [v for i in range(d) for v in (2 + d + i, 2 + i)])
        return x.reshape(n, c // 2 ** d, *[s * 2 for s in spatial])


def encoder(input_nc, *, ngf, norm_layer, n_downsampling, dims, stem, stem_padding="zeros"):
    """``n_downsampling`` halvings of the resolution, ngf -> ngf * 2**n_downsampling channels. ``stem`` conv7: a 7x7
    convolution at full resolution to ngf channels, then stride-2 convolutions (CycleGAN's, the original RevGAN's);
    unshuffle: the pixels of each 2x2 block moved into channels (no parameters), a 3x3 convolution to 2 ngf channels
    at half resolution (``stem_padding`` zeros or reflect), then the other stride-2 convolutions: no feature map at
    full resolution. (With reflect padding and no further stride-2 convolution, whose zero padding breaks it, a
    uniform image stays exactly constant through the core, and instance norm amplifies its gradient by 1/sqrt(eps)
    at every layer.)"""
    use_bias = _uses_bias(norm_layer)
    if stem == "unshuffle":
        if n_downsampling < 1:
            raise UserError("--stem unshuffle halves the resolution first: it needs --n_downsampling 1 or more "
                            "(or use --stem conv7)")
        cin = input_nc * 2 ** dims
        entry = [reflection_pad(dims)(1), conv(dims)(cin, ngf * 2, 3, bias=use_bias)] if stem_padding == "reflect" \
            else [conv(dims)(cin, ngf * 2, 3, padding=1, bias=use_bias)]
        layers = [PixelUnshuffle(dims), *entry, norm_layer(ngf * 2), nn.ReLU(True)]
        first = 1
    else:
        layers = [reflection_pad(dims)(3), conv(dims)(input_nc, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU(True)]
        first = 0
    for i in range(first, n_downsampling):
        mult = 2 ** i
        layers += [conv(dims)(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                   norm_layer(ngf * mult * 2), nn.ReLU(True)]
    return nn.Sequential(*layers)


def decoder(output_nc, *, ngf, norm_layer, n_downsampling, dims, tanh, stem):
    """The encoder's mirror: stride-2 transposed convolutions, then (conv7) a 7x7 convolution at full resolution to
    output_nc, or (unshuffle) a 3x3 convolution at half resolution to output_nc * 2**dims channels moved back into
    pixels; and a tanh."""
    use_bias = _uses_bias(norm_layer)
    layers = []
    last = 1 if stem == "unshuffle" else 0
    for i in range(n_downsampling - last):
        mult = 2 ** (n_downsampling - i)
        layers += [conv_transpose(dims)(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                        bias=use_bias),
                   norm_layer(ngf * mult // 2), nn.ReLU(True)]
    if stem == "unshuffle":
        layers += [reflection_pad(dims)(1), conv(dims)(ngf * 2, output_nc * 2 ** dims, 3), PixelUnshuffle(dims, True)]
    else:
        layers += [reflection_pad(dims)(3), conv(dims)(ngf, output_nc, 7)]
    if tanh:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


RESIDUAL_EPS = 1e-3  # inputs at exactly -1 or 1 (e.g. a flat background) enter the residual path from +-(1 - eps)
GATE_RATE = 300.0  # the residual's gain is 1 + GATE_RATE * theta: Adam moves theta by about its learning rate per
# step, so the gain by about 0.06 per step at lr 2e-4 (it can close within tens of steps; a plain gain would need
# 5000). 300 measured better than 100 on the cross-domain and near-identity unpaired tasks (docs/benchmarks.md)
GATE_MAX_LR = 2e-4  # in the paired models theta's learning rate is --lr, at most this: at a higher --lr the gain
# would move faster than the rate was chosen for (at --lr 5e-4 the cap gained paired_revgan3d 0.44 dB one way
# and 0.19 dB with both directions on thick -> thin slices, two seeds). The unpaired models (with --residual) keep
# --lr: their gain must keep pace with the network to leave the identity (tests/test_unpaired_defaults.py, at --lr
# 0.002, stays at its input with the cap). docs/benchmarks.md


def optimizer_groups(nets, lr, gain_lr_cap):
    """Adam's parameter groups for the parameters of ``nets``: all at ``lr``, but the residual gains, in a second
    group at ``min(lr, gain_lr_cap)`` that records its cap as ``lr_cap`` (the schedules scale both groups alike)."""
    rest, gains = [], []
    for net in nets:
        for name, p in net.named_parameters():
            (gains if name.rsplit(".", 1)[-1] == "residual_gain" else rest).append(p)
    groups = [{"params": rest, "lr": lr}]
    if gains:
        groups.append({"params": gains, "lr": min(lr, gain_lr_cap), "lr_cap": gain_lr_cap})
    return groups


class Generator(Recomputing, nn.Module):
    """What every generator offers the models: ``forward(x, direction)``, the size multiple its stride-2 layers need
    (inputs of other sizes are reflection-padded up to it and the output cropped back, so outputs always have the
    input's size; CycleGAN resizes --preprocess none images to a multiple of 4 instead), the parts --compile
    compiles, and the reconstruction error of a reversible core (None without one).

    One-directional generators (ResNet, U-Net) accept only ``direction="AtoB"``.

    With ``residual`` (and as many input as output channels) the output starts from the input: the network's last
    layer gives a correction h, and the output is ``tanh(atanh(x) + h)`` (``x + h`` without the output tanh), so a
    network whose correction is 0 returns its input (inputs beyond +-(1 - 1e-3) enter as +-(1 - 1e-3)), and outputs
    stay in (-1, 1). Measured better than ``x + h`` with no tanh (docs/benchmarks.md, residual ablation).

    With ``residual_gate`` the input path has a learned gain g per direction and output channel, starting at 1:
    ``tanh(g * atanh(x) + h)``. g moves fast (GATE_RATE), so that when the target domain looks different from
    the input, training can close the input path instead of resting at the identity, where the cycle loss is zero
    (docs/benchmarks.md, "Quality ablation: the identity as a resting point")."""
    size_multiple = 1
    bidirectional = False
    residual = False
    tanh = True

    def set_residual(self, residual, gate, input_nc, output_nc):
        """The global residual where it applies (as many input as output channels), with its gain per direction and
        output channel if ``gate``."""
        self.residual = residual and input_nc == output_nc
        if self.residual and gate:
            self.residual_gain = nn.Parameter(torch.zeros(2 if self.bidirectional else 1, output_nc))

    def add_residual_switch(self):
        """Buffers that record whether the residual's input path is open (1) or closed (0) and whether training has
        decided it (--residual_auto, models.cycle.CycleModel.decide_residual): closed, the output is ``tanh(h)``, the
        generator's without the residual. They start open and undecided; checkpoints keep them."""
        self.register_buffer("residual_open", torch.ones(()))
        self.register_buffer("residual_decided", torch.zeros(()))

    def output(self, x, h, direction="AtoB"):
        """The generator's output for input ``x`` from its last layer's ``h``."""
        if not self.residual:
            return h
        wide = torch.promote_types(h.dtype, torch.float32)  # (half precision: in float32)
        base = x.to(wide)
        if self.tanh:
            base = torch.atanh(base.clamp(-1 + RESIDUAL_EPS, 1 - RESIDUAL_EPS))
        switch = getattr(self, "residual_open", None)
        if switch is not None:
            base = base * switch.to(wide)
        gain = getattr(self, "residual_gain", None)
        if gain is not None:
            g = 1 + GATE_RATE * gain[0 if direction == "AtoB" else 1].to(wide)
            base = base * g.view(1, -1, *([1] * (x.dim() - 2)))
        out = base + h.to(wide)
        return (torch.tanh(out) if self.tanh else out).to(h.dtype)

    def _any_size(self, fn, x):
        return run_padded(fn, x, self.size_multiple, "reflect")

    def _check_direction(self, direction):
        if direction != "AtoB" and not self.bidirectional:
            raise ValueError(f"{type(self).__name__} translates A to B only (got direction {direction!r})")

    def compile_parts(self):
        """The modules --compile compiles in place: the whole generator unless it has a reversible core."""
        return [self]

    def roundtrip_error(self, x):
        """``||h - core^-1(core(h))|| / ||h||`` of the reversible core on the core input of ``x``; None without a
        core."""
        return None


class ResnetGenerator(Generator):
    """Encoder, ``n_blocks`` ResNet blocks, decoder (Johnson et al.; CycleGAN's resnet_6blocks/resnet_9blocks)."""

    def __init__(self, input_nc, output_nc, *, ngf, norm_layer, use_dropout, n_blocks, n_downsampling, dims, tanh,
                 residual, residual_gate, stem, stem_padding):
        super().__init__()
        self.size_multiple = 2 ** n_downsampling
        self.tanh = tanh
        self.set_residual(residual, residual_gate, input_nc, output_nc)
        core_nc = ngf * 2 ** n_downsampling
        blocks = [ResnetBlock(core_nc, norm_layer=norm_layer, use_dropout=use_dropout, use_bias=_uses_bias(norm_layer),
                              dims=dims) for _ in range(n_blocks)]
        sides = dict(ngf=ngf, norm_layer=norm_layer, n_downsampling=n_downsampling, dims=dims, stem=stem)
        self.model = nn.Sequential(encoder(input_nc, stem_padding=stem_padding, **sides), *blocks,
                                   decoder(output_nc, tanh=tanh and not self.residual, **sides))

    def forward(self, x, direction="AtoB"):
        self._check_direction(direction)
        return self._any_size(lambda a: self.output(a, self.run_part(self.model, a)), x)


class UnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False, *,
                 norm_layer, dims, use_dropout=False, tanh=False):
        super().__init__()
        self.outermost = outermost
        use_bias = _uses_bias(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = conv(dims)(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        downnorm, upnorm = norm_layer(inner_nc), norm_layer(outer_nc)
        up_cls = conv_transpose(dims)
        if outermost:
            up = [uprelu, up_cls(inner_nc * 2, outer_nc, 4, stride=2, padding=1)] + ([nn.Tanh()] if tanh else [])
            model = [downconv, submodule] + up
        elif innermost:
            model = [downrelu, downconv, uprelu, up_cls(inner_nc, outer_nc, 4, stride=2, padding=1, bias=use_bias),
                     upnorm]
        else:
            up = [uprelu, up_cls(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=use_bias), upnorm]
            model = [downrelu, downconv, downnorm, submodule] + up + ([nn.Dropout(0.5)] if use_dropout else [])
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(Generator):
    """U-Net with ``num_downs`` stride-2 levels (unet_128: 7, unet_256: 8)."""

    def __init__(self, input_nc, output_nc, *, num_downs, ngf, norm_layer, use_dropout, dims, tanh, residual,
                 residual_gate):
        super().__init__()
        self.size_multiple = 2 ** num_downs
        self.tanh = tanh
        self.set_residual(residual, residual_gate, input_nc, output_nc)
        kw = dict(norm_layer=norm_layer, dims=dims)
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, **kw)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **kw)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, **kw)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, **kw)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, **kw)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             tanh=tanh and not self.residual, **kw)

    def forward(self, x, direction="AtoB"):
        self._check_direction(direction)
        return self._any_size(lambda a: self.output(a, self.model(a)), x)


class RevGANGenerator(Generator):
    """Two encoders and two decoders around one reversible core:
    A->B = dec_B(core(enc_A(a))), B->A = dec_A(core.inverse(enc_B(b))).

    The core is a ReversibleSequence of ``n_blocks`` couplings whose F and G are ResNet-block bodies at half the
    core's channels; with ``use_naive`` the same core runs on plain autograd (stores activations)."""
    bidirectional = True

    def __init__(self, input_nc, output_nc, *, ngf, norm_layer, use_dropout, n_blocks, n_downsampling, coupling,
                 use_naive, dims, tanh, residual, residual_gate, stem, stem_padding):
        super().__init__()
        self.size_multiple = 2 ** n_downsampling
        self.tanh = tanh
        self.set_residual(residual, residual_gate, input_nc, output_nc)
        core_nc = ngf * 2 ** n_downsampling
        if core_nc % 2:
            raise UserError(f"--netG revgan splits its core's {core_nc} channels (--ngf x 2^--n_downsampling) into two "
                            f"halves: use an even --ngf or --n_downsampling of 1 or more")
        half = core_nc // 2
        use_bias = _uses_bias(norm_layer)
        coupling_cls = {"additive": AdditiveCoupling, "affine": AffineCoupling}[coupling]

        def body():
            return residual_body(half, half, norm_layer=norm_layer, use_dropout=use_dropout, use_bias=use_bias,
                                 dims=dims)
        sides = dict(ngf=ngf, norm_layer=norm_layer, n_downsampling=n_downsampling, dims=dims, stem=stem)
        self.enc_A = encoder(input_nc, stem_padding=stem_padding, **sides)
        self.enc_B = encoder(output_nc, stem_padding=stem_padding, **sides)
        self.core = ReversibleSequence([coupling_cls(body(), body()) for _ in range(n_blocks)],
                                       memory_saving=not use_naive)
        self.dec_A = decoder(input_nc, tanh=tanh and not self.residual, **sides)
        self.dec_B = decoder(output_nc, tanh=tanh and not self.residual, **sides)

    def forward(self, x, direction="AtoB"):
        enc, core, dec = (self.enc_A, self.core, self.dec_B) if direction == "AtoB" else \
            (self.enc_B, self.core.inverse, self.dec_A)
        return self._any_size(lambda a: self.output(
            a, self.run_part(dec, self.run_core(core, self.run_part(enc, a))), direction), x)

    def run_core(self, run, x):
        """``run(x)``, a pass of the reversible core (``self.core`` or its inverse): memory-saving as built, but
        under recomputation (--memory low) a core whose layer outputs total under SMALL_CORE_BYTES_PER_PART parts'
        worth keeps them (plain autograd: the same gradients, a forward pass less). Measured once per input shape by
        a dry pass (``_core_is_small``), so that every training pass of a core runs the same way, whether a run
        starts from scratch or resumes (the two ways round differently)."""
        core = self.core
        if not (torch.is_grad_enabled() and self.recompute and core.memory_saving) or _plain:
            return run(x)
        sizes = _SMALL_PARTS.setdefault(core, {})
        key = _input_key(x)
        if key not in sizes:
            sizes[key] = _core_is_small(core, run, x)
        if not sizes[key]:
            return run(x)
        core.memory_saving = False
        try:
            return run(x)
        finally:
            core.memory_saving = True

    def compile_parts(self):
        """What --compile compiles: the encoders and decoders (the reversible core stays eager)."""
        return [self.enc_A, self.enc_B, self.dec_A, self.dec_B]

    def btoa_only_parts(self):
        """The networks only B -> A runs (what a paired model without --two_way never trains)."""
        return [self.enc_B, self.dec_A]

    def roundtrip_error(self, x):
        errors = []

        def measure(padded):  # on x padded as forward pads it (the unshuffle stem needs even sizes)
            errors.append(reconstruction_error(self.core, self.enc_A(padded)))
            return padded
        self._any_size(measure, x)
        return errors[0]


def parse_architecture(text):
    """"2,2,2,2" -> [2, 2, 2, 2] (coupling blocks per level of --netG iunet); raises ValueError when malformed."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or not all(p.isdigit() for p in parts) or not any(int(p) for p in parts):
        raise ValueError(f"--iunet_architecture must be comma-separated block counts per level, like 2,2,2,2 "
                         f"(got {text!r})")
    return [int(p) for p in parts]


class IUNetGenerator(Generator):
    """``--netG iunet``: a fully invertible U-Net (models/reversible/iunet.py) as the whole generator.

    With as many channels in A as in B, A->B = U(a) and B->A = U^-1(b): B->A is the exact inverse of A->B on sizes
    that are a multiple of ``unet.size_multiple`` (other sizes are padded and cropped, which is not invertible), and
    there is no output tanh (a bijection of all values cannot end in one; saved images are clipped to [-1, 1]).
    The input is first lifted by an invertible 2x downsampling so that 1- or 3-channel images reach the couplings
    with 4-24 channels. With different channel counts, a 3x3 conv stem per domain maps its channels to the
    iUNet's and a 3x3 conv head (tanh unless --no_output_tanh) maps back: then only the iUNet between them is
    invertible, and the cycle loss trains the stems and heads to agree."""

    def __init__(self, input_nc, output_nc, *, ngf, architecture, dims, use_naive, coupling, tanh):
        super().__init__()
        self.exact = input_nc == output_nc
        channels = input_nc if self.exact else 2 ** dims * max(input_nc, output_nc)
        self.unet = InvertibleUNet(channels, list(architecture), dims, coupling=coupling, hidden=ngf,
                                   memory_saving=not use_naive, lift_stride=2 if self.exact else None)
        self.size_multiple = 1  # the iUNet pads other sizes itself
        if not self.exact:
            def head(cin, cout, squash):
                layers = [reflection_pad(dims)(1), conv(dims)(cin, cout, 3)]
                return nn.Sequential(*layers, nn.Tanh()) if squash else nn.Sequential(*layers)
            self.stem_A, self.stem_B = head(input_nc, channels, False), head(output_nc, channels, False)
            self.head_A, self.head_B = head(channels, input_nc, tanh), head(channels, output_nc, tanh)

    def forward(self, x, direction="AtoB"):
        if self.exact:
            return self.unet(x) if direction == "AtoB" else self.unet.inverse(x)
        if direction == "AtoB":
            return self.head_B(self.unet(self.stem_A(x)))
        return self.head_A(self.unet.inverse(self.stem_B(x)))

    def compile_parts(self):
        """What --compile compiles: the stems and heads, if any (the invertible U-Net stays eager)."""
        return [] if self.exact else [self.stem_A, self.stem_B, self.head_A, self.head_B]

    def btoa_only_parts(self):
        """The networks only B -> A runs (what a paired model without --two_way never trains)."""
        return [] if self.exact else [self.stem_B, self.head_A]

    def roundtrip_error(self, x):
        return reconstruction_error(self.unet, x if self.exact else self.stem_A(x))


def define_G(input_nc, output_nc, config: GeneratorConfig) -> Generator:
    """The generator ``config`` describes, from ``input_nc`` channels (domain A) to ``output_nc`` (domain B),
    initialized."""
    c = config
    norm_layer = get_norm_layer(c.norm, c.dims)
    common = dict(ngf=c.ngf, dims=c.dims, tanh=c.tanh)
    if c.netG in ("resnet_9blocks", "resnet_6blocks"):
        net = ResnetGenerator(input_nc, output_nc, norm_layer=norm_layer, use_dropout=c.dropout, n_blocks=c.depth(),
                              n_downsampling=c.n_downsampling, residual=c.residual, residual_gate=c.residual_gate,
                              stem=c.stem, stem_padding=c.stem_padding, **common)
    elif c.netG in ("unet_128", "unet_256"):
        net = UnetGenerator(input_nc, output_nc, num_downs=7 if c.netG == "unet_128" else 8, norm_layer=norm_layer,
                            use_dropout=c.dropout, residual=c.residual, residual_gate=c.residual_gate, **common)
    elif c.netG == "revgan":
        net = RevGANGenerator(input_nc, output_nc, norm_layer=norm_layer, use_dropout=c.dropout, n_blocks=c.depth(),
                              n_downsampling=c.n_downsampling, coupling=c.coupling, use_naive=c.use_naive,
                              residual=c.residual, residual_gate=c.residual_gate, stem=c.stem,
                              stem_padding=c.stem_padding, **common)
    elif c.netG == "iunet":
        try:
            architecture = parse_architecture(c.iunet_architecture)
        except ValueError as e:
            raise UserError(str(e)) from None
        net = IUNetGenerator(input_nc, output_nc, architecture=architecture, use_naive=c.use_naive,
                             coupling=c.coupling, **common)
    else:
        raise UserError(f"unknown --netG {c.netG!r}; valid: resnet_9blocks, resnet_6blocks, unet_128, unet_256, "
                        f"revgan, iunet")
    if c.residual_auto and net.residual:
        net.add_residual_switch()
    return init_weights(net, c.init_type, c.init_gain)


# ------------------------------------------------------------------------------------------------------------------
# discriminators
class NLayerDiscriminator(Recomputing, nn.Module):
    """PatchGAN: ``n_layers`` stride-2 convs (basic = 3 layers, 70x70 receptive field in 2D)."""

    def __init__(self, input_nc, *, ndf, n_layers, norm_layer, dims):
        super().__init__()
        use_bias = _uses_bias(norm_layer)
        C = conv(dims)
        seq = [C(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            seq += [C(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=use_bias), norm_layer(ndf * mult),
                    nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [C(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=use_bias), norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True), C(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.run_part(self.model, x)


class PixelDiscriminator(Recomputing, nn.Module):
    """1x1 PatchGAN: classifies each pixel."""

    def __init__(self, input_nc, *, ndf, norm_layer, dims):
        super().__init__()
        C = conv(dims)
        self.net = nn.Sequential(C(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
                                 C(ndf, ndf * 2, 1, bias=_uses_bias(norm_layer)), norm_layer(ndf * 2),
                                 nn.LeakyReLU(0.2, True), C(ndf * 2, 1, 1, bias=False))

    def forward(self, x):
        return self.run_part(self.net, x)


def define_D(input_nc, config: DiscriminatorConfig) -> nn.Module:
    """The discriminator ``config`` describes, judging ``input_nc`` channels, initialized."""
    c = config
    common = dict(ndf=c.ndf, norm_layer=get_norm_layer(c.norm, c.dims), dims=c.dims)
    if c.netD == "basic":
        net = NLayerDiscriminator(input_nc, n_layers=3, **common)
    elif c.netD == "n_layers":
        net = NLayerDiscriminator(input_nc, n_layers=c.n_layers, **common)
    elif c.netD == "pixel":
        net = PixelDiscriminator(input_nc, **common)
    else:
        raise UserError(f"unknown --netD {c.netD!r}; valid: basic, n_layers, pixel")
    return init_weights(net, c.init_type, c.init_gain)


# ------------------------------------------------------------------------------------------------------------------
# losses
def separation(real_scores, fake_scores) -> float:
    """How well a discriminator tells real from fake: the probability that it scores a patch of ``real_scores``
    above a patch of ``fake_scores`` (ties count half; the area under its ROC curve), 0.5 where it cannot tell them
    apart, 1 where it always can. From the ranks of all scores together (mid-ranks for ties), in float64."""
    real, fake = real_scores.detach().flatten().double(), fake_scores.detach().flatten().double()
    values, inverse, counts = torch.unique(torch.cat([real, fake]), return_inverse=True, return_counts=True)
    counts = counts.double()
    below = torch.cumsum(counts, 0) - counts  # scores below each distinct value
    ranks = (below + (counts + 1) / 2)[inverse]  # 1-based mid-ranks
    n_real, n_fake = real.numel(), fake.numel()
    return float((ranks[:n_real].sum() - n_real * (n_real + 1) / 2) / (n_real * n_fake))


class GANLoss(nn.Module):
    """lsgan (MSE), vanilla (BCE with logits) or wgangp (mean critic score) against real/fake targets."""

    def __init__(self, gan_mode, target_real_label=1.0, target_fake_label=0.0):
        super().__init__()
        self.register_buffer("real_label", torch.tensor(target_real_label))
        self.register_buffer("fake_label", torch.tensor(target_fake_label))
        self.gan_mode = gan_mode
        if gan_mode == "lsgan":
            self.loss = nn.MSELoss()
        elif gan_mode == "vanilla":
            self.loss = nn.BCEWithLogitsLoss()
        elif gan_mode == "wgangp":
            self.loss = None
        else:
            raise UserError(f"unknown --gan_mode {gan_mode!r}; valid: lsgan, vanilla, wgangp")

    def __call__(self, prediction, target_is_real):
        if self.gan_mode == "wgangp":
            return -prediction.mean() if target_is_real else prediction.mean()
        target = (self.real_label if target_is_real else self.fake_label).to(prediction.dtype)
        return self.loss(prediction, target.expand_as(prediction))


def gradient_penalty(netD, real, fake, *, lambda_gp, constant=1.0, scale=1.0):
    """WGAN-GP: lambda * E[(||grad_x D(x)|| - constant)^2] at random interpolates x of real and fake.

    ``scale``: under --amp fp16 the gradient scaler's current scale. The input gradient is then taken of D's mean
    output times ``scale`` (torch.amp's recipe for gradient penalties), so that it does not underflow in float16, and
    unscaled in float32; a scale that overflows is halved until the gradient is finite."""
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    interp = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    with plain_autograd():  # differentiated twice: its activations are stored
        out = netD(interp)
    wide = torch.promote_types(out.dtype, torch.float32)  # float16 -> float32 (float64 stays)
    while True:
        grads = torch.autograd.grad(out.to(wide).mean() * scale, interp, create_graph=True)[0]
        if scale <= 1 or torch.isfinite(grads).all():
            break
        scale /= 2
    grads = grads.to(wide).flatten(1) * (out.numel() / scale)  # the gradient of D's summed output, as in the paper
    return lambda_gp * ((grads.norm(2, dim=1) - constant) ** 2).mean()
