"""Inference that holds less at once (no gradients): the same layers, computed so that no full-resolution feature
map is copied and no layer's scratch space grows with the image.

A generator's full-resolution layers dominate its inference memory: on a 2048x2048 image one 64-channel map is
1 GiB, and a plain forward on the CPU holds three or four of them at once (a convolution's output and its
normalised copy; a reflection-padded copy; the input reordered for the next convolution; a transposed
convolution's column buffer, output channels x kernel taps x input positions, 2.25 GiB there). ``run_lean(seq, x)``
runs an ``nn.Sequential`` (nested ones too) layer by layer under ``torch.no_grad`` with:

- instance norm (no affine, no running statistics), ReLU and tanh applied in place on tensors made inside;
- convolutions over large inputs (a reflection pad and the stride-1 convolution after it, or a convolution with
  zero padding and any stride) computed in slabs of output rows along the first spatial axis: each slab reads the
  input rows it needs (reflected or zero beyond the borders) and writes its part of one output tensor;
- transposed convolutions over large inputs or with a large column buffer computed in slabs of output rows in the
  same way (each slab from the input rows that reach it).

Slabs are sized so that each call's input or buffer stays under ``SLAB_BYTES``. Every other module runs
as usual. The result equals the plain forward up to floating-point rounding (the same sums, only split across
calls; float64 tests in tests/test_lean_inference.py).
"""
import torch
from torch import nn
from torch.nn import functional as F

SLAB_BYTES = 16 * 2 ** 20

_PADS = (nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d)
_CONVS = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}
_TRANSPOSED = {nn.ConvTranspose1d: F.conv_transpose1d, nn.ConvTranspose2d: F.conv_transpose2d,
               nn.ConvTranspose3d: F.conv_transpose3d}
_INSTANCE = (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def run_lean(module, x):
    """``module(x)`` without gradients, holding less memory where ``module`` is a Sequential of the layers above.
    ``x`` itself is never changed."""
    if torch.is_grad_enabled():
        raise RuntimeError("run_lean is for inference: call it under torch.no_grad()")
    return _run(module, x, owned=False)[0]


def _run(module, x, owned):
    """(output, whether it is a tensor made here, which later layers may change in place)."""
    if isinstance(module, nn.Sequential):
        layers, i = list(module), 0
        while i < len(layers):
            layer, nxt = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, _PADS) and _sliceable(nxt) and all(p == 0 for p in nxt.padding) and \
                    _largest_bytes(nxt, x) > SLAB_BYTES:
                x, owned, i = _conv_in_slabs(nxt, x, layer.padding), True, i + 2
            else:
                (x, owned), i = _run(layer, x, owned), i + 1
        return x, owned
    if _sliceable(module) and _largest_bytes(module, x) > SLAB_BYTES:
        return _conv_in_slabs(module, x, None), True
    if type(module) in _TRANSPOSED and module.groups == 1 and all(d == 1 for d in module.dilation) and \
            max(_columns_bytes(module, x), x.numel() * x.element_size()) > SLAB_BYTES:
        return _transposed_in_slabs(module, x), True
    if owned and isinstance(module, _INSTANCE) and not module.affine and not module.track_running_stats:
        var, mean = torch.var_mean(x, dim=tuple(range(2, x.dim())), keepdim=True, unbiased=False)
        return x.sub_(mean).mul_(torch.rsqrt(var.add_(module.eps))), True
    if owned and isinstance(module, nn.ReLU):
        return x.relu_(), True
    if owned and isinstance(module, nn.Tanh):
        return x.tanh_(), True
    y = module(x)
    return y, owned if y is x else y._base is None


def _sliceable(layer):
    return type(layer) in _CONVS and layer.padding_mode == "zeros" and not isinstance(layer.padding, str) and \
        all(d == 1 for d in layer.dilation) and layer.groups == 1


def _largest_bytes(conv, x):
    """The larger of a convolution's input and (about) its output, in bytes."""
    positions = x.numel() // x.shape[1]
    for stride in conv.stride:
        positions //= stride
    return max(x.numel(), positions * conv.out_channels) * x.element_size()


def _conv_in_slabs(conv, x, reflect):
    """``conv(x)``, or ``conv(reflection_pad(x, reflect))`` with ``reflect`` the pad module's (last axis first)
    padding tuple, computed in slabs of output rows along the first spatial axis."""
    rows_out = conv_rows(conv, reflect, x.shape[2])
    row_bytes = max(1, _largest_bytes(conv, x) // rows_out)  # input or output per output row
    return _in_slabs(x, rows_out, max(1, SLAB_BYTES // row_bytes - conv.kernel_size[0]),
                     lambda start, stop: conv_plan(conv, reflect, x.shape[2], start, stop))


def _in_slabs(x, rows_out, slab, plan):
    """One output tensor filled slab by slab: ``plan(start, stop)`` gives (lo, hi, make) for output rows
    [start, stop), ``make`` computing them from input rows [lo, hi)."""
    out = None
    for start in range(0, rows_out, slab):
        stop = min(rows_out, start + slab)
        lo, hi, make = plan(start, stop)
        y = make(x[:, :, lo:hi])
        if out is None:
            out = y.new_empty(y.shape[:2] + (rows_out,) + y.shape[3:])
        out[:, :, start:stop] = y
        del y
    return out


def _columns_bytes(conv, x):
    """The column buffer a transposed convolution fills on the CPU: every output channel and kernel tap at every
    input position."""
    taps = 1
    for k in conv.kernel_size:
        taps *= k
    return x.numel() // x.shape[1] * conv.out_channels * taps * x.element_size()


def _transposed_in_slabs(conv, x):
    """A transposed convolution computed in slabs of output rows along the first spatial axis, each from the input
    rows that reach it (the slab's output rows receive every contribution they get from the whole input)."""
    s, rows_in = conv.stride[0], x.shape[2]
    rows_out = transposed_sizes(conv, x.shape[2:3])[0]
    out_row = max(1, (x.numel() // rows_in) * conv.out_channels // x.shape[1] // s * x.element_size())
    col_row = max(1, _columns_bytes(conv, x) // rows_in)  # column buffer per input row
    return _in_slabs(x, rows_out, max(s, SLAB_BYTES // max(out_row, col_row // s)),
                     lambda start, stop: transposed_plan(conv, rows_in, start, stop))


# -- row plans: which input rows give output rows [start, stop) (shared with models.streamed) --------------------
def conv_sizes(conv, reflect, sizes):
    """Output spatial sizes of ``conv`` (after a reflection pad with the pad module's tuple ``reflect``, last axis
    first, or with its own zero padding)."""
    d = len(sizes)
    out = []
    for axis, n in enumerate(sizes):
        if reflect is not None:
            pads = reflect[2 * (d - 1 - axis)] + reflect[2 * (d - 1 - axis) + 1]
        else:
            pads = 2 * conv.padding[axis]
        out.append((n + pads - conv.kernel_size[axis]) // conv.stride[axis] + 1)
    return out


def transposed_sizes(conv, sizes):
    """Output spatial sizes of the transposed convolution ``conv`` for input sizes ``sizes`` (leading axes)."""
    return [(n - 1) * s - 2 * p + k + op for n, s, p, k, op in
            zip(sizes, conv.stride, conv.padding, conv.kernel_size, conv.output_padding)]


def conv_rows(conv, reflect, rows_in):
    """Output rows of ``conv`` along the first spatial axis for ``rows_in`` input rows (padding as conv_sizes)."""
    d = conv.weight.dim() - 2
    pads = reflect[2 * d - 2] + reflect[2 * d - 1] if reflect is not None else 2 * conv.padding[0]
    return (rows_in + pads - conv.kernel_size[0]) // conv.stride[0] + 1


def conv_plan(conv, reflect, rows_in, start, stop):
    """Output rows [start, stop) of ``conv`` (after a reflection pad with the pad module's tuple ``reflect``, or with
    its own zero padding): (lo, hi, make), ``make(piece)`` computing them from input rows [lo, hi)."""
    d = conv.weight.dim() - 2
    k, s = conv.kernel_size[0], conv.stride[0]
    fn = _CONVS[type(conv)]
    if reflect is not None:
        before = reflect[2 * d - 2]
        rest = tuple(reflect[:2 * d - 2]) + (0, 0)
        first, last = start * s - before, (stop - 1) * s - before + k
        rows = [abs(r) for r in range(first, last)]
        rows = [2 * (rows_in - 1) - r if r >= rows_in else r for r in rows]
        lo, hi = min(rows), max(rows) + 1
        index = torch.tensor([r - lo for r in rows], device=conv.weight.device)

        def make(piece):
            p = piece.index_select(2, index)
            if any(rest):
                p = F.pad(p, rest, mode="reflect")
            return fn(p, conv.weight, conv.bias, conv.stride, 0, conv.dilation, 1)
        return lo, hi, make
    pad = conv.padding[0]
    first, last = start * s - pad, (stop - 1) * s - pad + k
    lo, hi = max(first, 0), min(last, rows_in)
    padding = (0,) + tuple(conv.padding[1:])

    def make(piece):
        p = F.pad(piece, (0, 0) * (d - 1) + (lo - first, last - hi))  # zeros beyond the borders
        return fn(p, conv.weight, conv.bias, conv.stride, padding, conv.dilation, 1)
    return lo, hi, make


def transposed_plan(conv, rows_in, start, stop):
    """Output rows [start, stop) of the transposed convolution ``conv``: (lo, hi, make) as ``conv_plan``."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    lo = max(0, -((p + k - 1 - start) // s))  # first input row reaching start
    hi = min(rows_in, (stop - 1 + p) // s + 1)  # one past the last input row reaching stop - 1
    offset = lo * s - p  # output row of the piece's row 0
    extra = max(0, stop - offset - ((hi - lo - 1) * s + k))  # rows past the last contribution (output padding)
    padding, fn = (0,) + tuple(conv.padding[1:]), _TRANSPOSED[type(conv)]

    def make(piece):
        y = fn(piece, conv.weight, conv.bias, conv.stride, padding, (extra,) + tuple(conv.output_padding[1:]), 1,
               conv.dilation)
        return y[:, :, start - offset:stop - offset]
    return lo, hi, make
