"""Training through a generator's widest layers without holding their feature maps (--memory low).

Recomputation (models.reversible.recompute) keeps only a part's input between forward and backward, but its backward
still holds the part's activations at once. In a CycleGAN-style encoder and decoder the widest of them is the
full-resolution map between two convolutions: after the 7x7 stem convolution (64 channels at full resolution for one
RGB input) and before the 7x7 output convolution. Its backward holds that map several times over (the convolution's
output, its normalised copy, the reflection-padded copy, their gradients): most of a RevGAN training step's memory.

A *section* is such a sandwich, found in an ``nn.Sequential``: a layer that widens (a convolution, optionally after
a reflection pad, or a transposed convolution), an optional instance norm (no affine, no running statistics), a
ReLU, and a convolution that narrows again (optionally after a reflection pad). ``run_streamed(seq, x)`` computes
each section in slabs of output rows along the first spatial axis, as models.lean does for inference, in a custom
autograd function that saves only the section's input:

- forward: one pass over the wide map in slabs for the norm's statistics (per sample and channel, combined slab by
  slab with Chan's formula), one pass for the output, each slab from the input rows it needs (halo rows are computed
  twice; reflected or zero rows beyond the borders as the pad or the convolution gives them);
- backward: the same slabs again with autograd, the statistics entering as leaves, so each slab gives its share of
  the gradients of the input, the parameters and the statistics; one more pass over the wide map takes the
  statistics' gradients back to the widening layer (mean and variance are sums over the map).

The gradients are plain autograd's up to floating-point rounding (the same sums, split across calls; float64 tests
in tests/test_streamed.py). The rest of the Sequential is recomputed as before. Under autocast, for a compiled
Sequential (--compile) or when no section matches, ``run_streamed`` is plain recomputation.
"""
import math
import weakref

import torch
from torch import nn
from torch.nn import functional as F

from models.lean import (_INSTANCE, _PADS, _TRANSPOSED, _in_slabs, _sliceable, conv_plan, conv_rows, conv_sizes,
                         transposed_plan, transposed_sizes)
from models.reversible import recompute

SLAB_BYTES = 16 * 2 ** 20  # at most this much of the wide map per slab ...
SLABS = 8  # ... and at most 1/SLABS of it (at least one row)
MIN_BYTES = 2 * 2 ** 20  # smaller wide maps are recomputed whole: there slabs save little and cost calls
STREAMED_SECTIONS = 0  # sections streamed so far (models.networks.Recomputing tells small parts by it)


class Section:
    """widen -> [instance norm] -> ReLU -> narrow, with the row arithmetic to compute it in slabs."""

    def __init__(self, widen, widen_pad, norm, narrow, narrow_pad, layers):
        self.widen, self.widen_pad, self.norm, self.narrow, self.narrow_pad = widen, widen_pad, norm, narrow, narrow_pad
        self.layers = layers  # the same layers as one Sequential: how a small wide map is computed

    @property
    def params(self):
        return [p for m in (self.widen, self.narrow) for p in (m.weight, m.bias) if p is not None]

    # -- rows -------------------------------------------------------------------------------------------------------
    def wide_sizes(self, x):
        """The wide map's spatial sizes for input ``x``."""
        c, sizes = self.widen, x.shape[2:]
        if type(c) in _TRANSPOSED:
            return transposed_sizes(c, sizes)
        return conv_sizes(c, self.widen_pad, sizes)

    def wide_rows(self, x):
        return self.wide_sizes(x)[0]

    def widen_plan(self, rows_in, start, stop):
        if type(self.widen) in _TRANSPOSED:
            return transposed_plan(self.widen, rows_in, start, stop)
        return conv_plan(self.widen, self.widen_pad, rows_in, start, stop)

    def wide_bytes(self, x):
        return x.element_size() * x.shape[0] * self.widen.out_channels * math.prod(self.wide_sizes(x))

    def slab_rows(self, x):
        """Rows of the wide map per slab: at most SLAB_BYTES and 1/SLABS of it, at least one."""
        rows = self.wide_rows(x)
        per_row = self.wide_bytes(x) // rows
        return max(1, min(-(-rows // SLABS), SLAB_BYTES // max(1, per_row)))

    # -- pieces ------------------------------------------------------------------------------------------------------
    def wide(self, piece, make, mean=None, rstd=None):
        y = make(piece)
        if self.norm is not None:
            y = (y - mean) * rstd
        return F.relu(y)

    def stats(self, x):
        """Per sample and channel: the wide map's mean and 1 / sqrt(variance + eps) (biased variance, as instance
        norm), combined slab by slab."""
        if self.norm is None:
            return None, None
        rows = self.wide_rows(x)
        step = self.slab_rows(x)
        count, mean, m2 = 0, None, None
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            lo, hi, make = self.widen_plan(x.shape[2], start, stop)
            y = make(x[:, :, lo:hi])
            dims = tuple(range(2, y.dim()))
            n = y[0, 0].numel()
            var, m = torch.var_mean(y, dim=dims, keepdim=True, unbiased=False)
            if mean is None:
                count, mean, m2 = n, m, var * n
            else:
                delta, total = m - mean, count + n
                mean = mean + delta * (n / total)
                m2 = m2 + var * n + delta * delta * (count * n / total)
                count = total
            del y
        return mean, torch.rsqrt(m2 / count + self.norm.eps)

    def out_rows(self, x):
        """(output rows, output rows per slab)."""
        rows = conv_rows(self.narrow, self.narrow_pad, self.wide_rows(x))
        return rows, max(1, self.slab_rows(x) // self.narrow.stride[0])

    def out_plan(self, x, start, stop, mean, rstd):
        """Output rows [start, stop): (lo, hi, make), ``make(piece)`` computing them from input rows [lo, hi)."""
        wlo, whi, narrow = conv_plan(self.narrow, self.narrow_pad, self.wide_rows(x), start, stop)
        lo, hi, widen = self.widen_plan(x.shape[2], wlo, whi)
        return lo, hi, lambda piece: narrow(self.wide(piece, widen, mean, rstd))

    def forward(self, x, mean, rstd):
        rows, step = self.out_rows(x)
        return _in_slabs(x, rows, step, lambda start, stop: self.out_plan(x, start, stop, mean, rstd))


class _Streamed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, section, x, *params):
        ctx.section = section
        with torch.no_grad():
            mean, rstd = section.stats(x)
            out = section.forward(x, mean, rstd)
        ctx.save_for_backward(x, mean, rstd, *params)  # autograd refuses backward if a parameter changed in place
        return out

    @staticmethod
    def backward(ctx, grad):
        sec = ctx.section
        x, mean, rstd, *params = ctx.saved_tensors
        want_x = ctx.needs_input_grad[1]
        want = [p for p, need in zip(sec.params, ctx.needs_input_grad[2:]) if need]
        dx = torch.zeros_like(x) if want_x else None
        dparams = [torch.zeros_like(p) for p in want]
        dmean = torch.zeros_like(mean) if mean is not None else None
        drstd = torch.zeros_like(rstd) if rstd is not None else None
        with torch.enable_grad():
            # the output's gradient, slab by slab: input, parameters and (as leaves) the statistics
            rows, step = sec.out_rows(x)
            for start in range(0, rows, step):
                stop = min(rows, start + step)
                m = mean.detach().requires_grad_() if mean is not None else None
                r = rstd.detach().requires_grad_() if rstd is not None else None
                xlo, xhi, make = sec.out_plan(x, start, stop, m, r)
                piece = x[:, :, xlo:xhi].detach().requires_grad_(want_x)
                y = make(piece)
                leaves = ([piece] if want_x else []) + want + ([m, r] if m is not None else [])
                got = list(torch.autograd.grad(y, leaves, grad[:, :, start:stop], allow_unused=True))
                if want_x:
                    _add(dx[:, :, xlo:xhi], got.pop(0))
                for acc, g in zip(dparams, got[:len(want)]):
                    _add(acc, g)
                if m is not None:
                    _add(dmean, got[len(want)])
                    _add(drstd, got[len(want) + 1])
                del y, got
            slots = [i for i, p in enumerate(want) if any(p is q for q in (sec.widen.weight, sec.widen.bias))]
            if mean is not None and (want_x or slots):
                # the statistics are means over the wide map c: d/dc = dmean / n - drstd * rstd^3 * (c - mean) / n
                rows = sec.wide_rows(x)
                step = sec.slab_rows(x)
                n = None
                widen_params = [want[i] for i in slots]
                for start in range(0, rows, step):
                    stop = min(rows, start + step)
                    lo, hi, make = sec.widen_plan(x.shape[2], start, stop)
                    piece = x[:, :, lo:hi].detach().requires_grad_(want_x)
                    c = make(piece)
                    if n is None:
                        n = c[0, 0].numel() // c.shape[2] * rows
                    gc = (dmean - drstd * rstd ** 3 * (c.detach() - mean)) / n
                    leaves = ([piece] if want_x else []) + widen_params
                    got = list(torch.autograd.grad(c, leaves, gc, allow_unused=True))
                    if want_x:
                        _add(dx[:, :, lo:hi], got.pop(0))
                    for i, g in zip(slots, got):
                        _add(dparams[i], g)
                    del c, gc, got
        it = iter(dparams)
        return (None, dx) + tuple(next(it) if need else None for need in ctx.needs_input_grad[2:])


def _add(acc, g):
    if g is not None:
        acc.add_(g)


def _section_at(layers, i):
    """(Section, index after it) if a section starts at ``layers[i]``, else None."""
    j, widen_pad = i, None
    if j < len(layers) and isinstance(layers[j], _PADS):
        widen_pad, j = layers[j].padding, j + 1
    if j >= len(layers):
        return None
    widen = layers[j]
    if type(widen) in _TRANSPOSED:
        if widen_pad is not None or widen.groups != 1 or any(d != 1 for d in widen.dilation) or \
                widen.padding_mode != "zeros" or isinstance(widen.padding, str):
            return None
        growth = widen.out_channels / widen.in_channels * math.prod(widen.stride)
    elif _sliceable(widen) and (widen_pad is None or all(p == 0 for p in widen.padding)):
        growth = widen.out_channels / widen.in_channels / math.prod(widen.stride)
    else:
        return None
    j += 1
    norm = None
    while j < len(layers) and isinstance(layers[j], nn.Identity):
        j += 1
    if j < len(layers) and isinstance(layers[j], _INSTANCE):
        norm = layers[j]
        if norm.affine or norm.track_running_stats:
            return None
        j += 1
    if not (j < len(layers) and type(layers[j]) is nn.ReLU):
        return None
    j += 1
    narrow_pad = None
    if j < len(layers) and isinstance(layers[j], _PADS):
        narrow_pad, j = layers[j].padding, j + 1
    if j >= len(layers) or not _sliceable(layers[j]) or \
            (narrow_pad is not None and any(p != 0 for p in layers[j].padding)):
        return None
    narrow = layers[j]
    shrink = narrow.out_channels / narrow.in_channels / math.prod(narrow.stride)
    if growth <= 1 or shrink >= 1 or narrow.in_channels != widen.out_channels:
        return None
    return Section(widen, widen_pad, norm, narrow, narrow_pad, nn.Sequential(*layers[i:j + 1])), j + 1


def segments(seq):
    """``seq``'s layers as [("layers", nn.Sequential) | ("section", Section)] in order."""
    layers = list(seq)
    out, run, i = [], [], 0
    while i < len(layers):
        found = _section_at(layers, i)
        if found is None:
            run.append(layers[i])
            i += 1
            continue
        if run:
            out.append(("layers", _sequential(run)))
            run = []
        out.append(("section", found[0]))
        i = found[1]
    if run:
        out.append(("layers", _sequential(run)))
    return out


def _sequential(layers):
    """The layers as one Sequential; an in-place activation first (after identities) works on a copy instead,
    since recomputation replays the layers from a leaf tensor, which cannot change in place."""
    layers = list(layers)
    first = next((i for i, m in enumerate(layers) if not isinstance(m, nn.Identity)), None)
    if first is not None and getattr(layers[first], "inplace", False):
        if type(layers[first]) is nn.ReLU:
            layers[first] = nn.ReLU()
        elif type(layers[first]) is nn.LeakyReLU:
            layers[first] = nn.LeakyReLU(layers[first].negative_slope)
    return nn.Sequential(*layers)


_SEGMENTS = weakref.WeakKeyDictionary()


class _Streaming(nn.Module):
    """``seq`` run segment by segment, its sections streamed where their wide map reaches MIN_BYTES: recomputed
    as one part, so that between forward and backward only the part's input is kept."""

    def __init__(self, seq, parts):
        super().__init__()
        self.seq, self.parts = seq, parts

    def forward(self, x):
        global STREAMED_SECTIONS
        for kind, part in self.parts:
            if kind == "section" and part.wide_bytes(x) >= MIN_BYTES:
                STREAMED_SECTIONS += 1
                x = _Streamed.apply(part, x, *part.params)
            else:
                x = part(x) if kind == "layers" else part.layers(x)
        return x


def compiled(module) -> bool:
    """Whether ``module.compile()`` was called: then its compiled call runs, whole."""
    return getattr(module, "_compiled_call_impl", None) is not None


def run_streamed(seq, x):
    """``seq(x)`` recomputed in backward (models.reversible.recompute), with its sections computed in slabs
    (above); ``seq`` an ``nn.Sequential`` or any module (then plain recomputation)."""
    autocast = torch.is_autocast_enabled(x.device.type) if x.device.type in ("cpu", "cuda") else False
    if not isinstance(seq, nn.Sequential) or autocast or compiled(seq) or not torch.is_grad_enabled():
        return recompute(seq, x)
    parts = _SEGMENTS.get(seq)
    if parts is None:
        parts = _SEGMENTS[seq] = segments(seq)
    if not any(kind == "section" for kind, _ in parts):
        return recompute(seq, x)
    return recompute(_Streaming(seq, parts), x)
