"""Coupling blocks: invertible maps built from two arbitrary (non-invertible) functions F and G.

A coupling splits its input along the channel axis (dim 1) into ``x1`` (the first ``split`` channels) and ``x2``
(the rest) and applies two *half steps*::

    y1 = merge(x1, F(x2))          # half step 'F': writes half 0, reads half 1
    y2 = merge(x2, G(y1))          # half step 'G': writes half 1, reads half 0

and the inverse undoes them in reverse order with ``unmerge``. ``F`` maps a tensor shaped like ``x2`` to one shaped
like ``x1`` and ``G`` the other way round; any module that does so (1D, 2D or 3D convolutions, MLPs on (N, C)) fits.
The memory-saving engine (``engine.py``) works on half steps, so any subclass that defines ``merge``/``unmerge``
gets memory-saving backprop for free.
"""
import math

import torch
from torch import nn


class ReversibleError(ValueError):
    """A shape or configuration that cannot be run reversibly; the message names the problem."""


class HalfStep:
    """One elementary invertible step of a coupling: ``half[dst] = merge(half[dst], fn(half[src]))``."""

    __slots__ = ("name", "fn", "src", "dst")

    def __init__(self, name, fn, src, dst):
        self.name, self.fn, self.src, self.dst = name, fn, src, dst


def _shape(t):
    return tuple(t.shape)


class Coupling(nn.Module):
    """Base class of two-function couplings. Subclasses define ``merge(other, fn_out)`` and
    ``unmerge(output, fn_out)`` with ``unmerge(merge(a, h), h) == a``.

    Args:
        F: module or callable mapping the second half (x2) to the first half's shape.
        G: module or callable mapping the first half (y1) to the second half's shape.
        split: number of channels in the first half; default ``C // 2`` (odd channel counts work).
    """

    def __init__(self, F, G, split=None):
        super().__init__()
        if split is not None and (not isinstance(split, int) or split < 1):
            raise ReversibleError(f"split must be a positive number of channels, got {split!r}")
        self.F = F
        self.G = G
        self.split = split
        self._steps = (HalfStep("F", F, src=1, dst=0), HalfStep("G", G, src=0, dst=1))

    # -- the two operations a subclass defines ---------------------------------------------------------------
    def merge(self, other, fn_out):
        raise NotImplementedError

    def unmerge(self, output, fn_out):
        raise NotImplementedError

    def fn_out_channels(self, other_channels):
        """Channel counts that F/G may return for a half of ``other_channels`` channels."""
        return (other_channels,)

    def merge_vjp(self, other, fn_out, grad, inverse):
        """Optional shortcut: ``(grad wrt other, grad wrt fn_out)`` of ``merge`` (``unmerge`` when ``inverse``) for
        the output gradient ``grad``, or ``None`` to let autograd differentiate merge/unmerge."""
        return None

    # -- helpers used by the plain path and by the engine ----------------------------------------------------
    def split_sizes(self, x):
        if x.dim() < 2:
            raise ReversibleError(
                f"{type(self).__name__} expects input shaped (N, C, ...) and splits channels (dim 1); "
                f"got shape {_shape(x)}")
        c = x.shape[1]
        k = c // 2 if self.split is None else self.split
        if not 0 < k < c:
            raise ReversibleError(
                f"{type(self).__name__} cannot split {c} channel(s) at {k}: it needs at least 2 channels "
                f"and 0 < split < channels")
        return [k, c - k]

    def half_steps(self, inverse=False):
        return tuple(reversed(self._steps)) if inverse else self._steps

    def merge_parameters(self):
        """Parameters the coupling itself uses in merge/unmerge (not those of F or G)."""
        inner = {id(p) for m in (self.F, self.G) if isinstance(m, nn.Module) for p in m.parameters()}
        return [p for p in self.parameters() if id(p) not in inner]

    def check_fn_output(self, step, fn_out, other):
        ok_channels = self.fn_out_channels(other.shape[1])
        if (not torch.is_tensor(fn_out) or fn_out.dim() != other.dim() or fn_out.shape[0] != other.shape[0]
                or fn_out.shape[2:] != other.shape[2:] or fn_out.shape[1] not in ok_channels):
            got = _shape(fn_out) if torch.is_tensor(fn_out) else type(fn_out).__name__
            src = "x2" if step.name == "F" else "y1"
            want = " or ".join(str((other.shape[0], c) + tuple(other.shape[2:])) for c in ok_channels)
            raise ReversibleError(
                f"{type(self).__name__}: {step.name} must map its input half ({src}) to shape {want} "
                f"(same batch and spatial size, the other half's channels), but returned {got}")

    def apply_step(self, step, halves, fn_out, inverse):
        """Returns the new value of ``halves[step.dst]`` given ``fn_out = step.fn(halves[step.src])``."""
        other = halves[step.dst]
        self.check_fn_output(step, fn_out, other)
        return self.unmerge(other, fn_out) if inverse else self.merge(other, fn_out)

    def _run(self, x, inverse):
        halves = list(torch.split(x, self.split_sizes(x), dim=1))
        for step in self.half_steps(inverse):
            halves[step.dst] = self.apply_step(step, halves, step.fn(halves[step.src]), inverse)
        return torch.cat(halves, dim=1)

    def forward(self, x):
        return self._run(x, inverse=False)

    def inverse(self, y):
        return self._run(y, inverse=True)


class AdditiveCoupling(Coupling):
    """``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)`` (RevNet / MemCNN / RevGAN)."""

    def merge(self, other, fn_out):
        return other + fn_out

    def unmerge(self, output, fn_out):
        return output - fn_out

    def merge_vjp(self, other, fn_out, grad, inverse):
        return grad, (-grad if inverse else grad)


class AffineCoupling(Coupling):
    """``y1 = x1 * s(F(x2)) + t(F(x2))``, ``y2 = x2 * s(G(y1)) + t(G(y1))`` with a bounded scale.

    F and G return either a tensor of the other half's shape ``h`` (default; the same bodies fit
    :class:`AdditiveCoupling`), from which ``t = h`` and ``log s = softclamp(h)``, or twice that many channels,
    split into ``(log s, t)``. ``softclamp(h) = bound * tanh(h / bound)``, so ``s`` lies strictly inside
    ``(exp(-bound), exp(bound))``: never 0, never huge, and ``s = 1`` at ``h = 0``.
    """

    def __init__(self, F, G, split=None, scale_bound=2.0):
        super().__init__(F, G, split)
        if not scale_bound > 0 or not math.isfinite(scale_bound):
            raise ReversibleError(f"scale_bound must be a finite positive number, got {scale_bound!r}")
        self.scale_bound = float(scale_bound)

    def fn_out_channels(self, other_channels):
        return (other_channels, 2 * other_channels)

    def scale_shift(self, fn_out, channels):
        if fn_out.shape[1] == 2 * channels:
            raw, shift = torch.split(fn_out, [channels, channels], dim=1)
        else:
            raw, shift = fn_out, fn_out
        log_scale = self.scale_bound * torch.tanh(raw / self.scale_bound)
        return torch.exp(log_scale), shift

    def merge(self, other, fn_out):
        scale, shift = self.scale_shift(fn_out, other.shape[1])
        return other * scale + shift

    def unmerge(self, output, fn_out):
        scale, shift = self.scale_shift(fn_out, output.shape[1])
        return (output - shift) / scale


class CustomCoupling(Coupling):
    """A coupling whose merge functions the user supplies, e.g. RevLib's momentum coupling::

        beta = 0.9
        CustomCoupling(F, G, merge=lambda other, h: other * beta + h * (1 - beta),
                       unmerge=lambda out, h: (out - h * (1 - beta)) / beta)

    ``unmerge(merge(a, h), h)`` must give back ``a``; ``is_invertible`` checks it. ``fn_out_channels`` maps the
    other half's channel count to the channel counts F/G may return (default: the same count).
    """

    def __init__(self, F, G, merge, unmerge, split=None, fn_out_channels=None):
        super().__init__(F, G, split)
        if not callable(merge) or not callable(unmerge):
            raise ReversibleError("CustomCoupling needs callable merge(other, fn_out) and unmerge(output, fn_out)")
        self._merge, self._unmerge = merge, unmerge
        self._fn_out_channels = fn_out_channels

    def fn_out_channels(self, other_channels):
        if self._fn_out_channels is None:
            return (other_channels,)
        return tuple(self._fn_out_channels(other_channels))

    def merge(self, other, fn_out):
        return self._merge(other, fn_out)

    def unmerge(self, output, fn_out):
        return self._unmerge(output, fn_out)
