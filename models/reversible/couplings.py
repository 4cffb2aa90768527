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
import threading
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

Fn = Union[nn.Module, Callable[[Tensor], Tensor]]


class ReversibleError(ValueError):
    """A shape, configuration or use that cannot be run reversibly (or not with memory saving); the message names
    the problem and what to do instead."""


class HalfStep:
    """One elementary invertible step of a coupling: ``half[dst] = merge(half[dst], fn(half[src]))``.

    Args:
        name: ``"F"`` or ``"G"``.
        fn: the function of the step.
        src: index of the half ``fn`` reads.
        dst: index of the half the step writes.
    """

    __slots__ = ("name", "fn", "src", "dst")

    def __init__(self, name: str, fn: Fn, src: int, dst: int) -> None:
        self.name, self.fn, self.src, self.dst = name, fn, src, dst


def _shape(t):
    return tuple(t.shape)


# The memory-saving engine rebuilds the input of a generic invertible block (a nested ReversibleSequence, an iUNet
# level) with the block's inverse, which calls the couplings' F and G in the opposite order. While it records or
# replays such a block it installs a scope here, and every F/G call of a coupling run outside the engine goes
# through it, so that each call can be replayed with the randomness and state of its forward (engine.py).
_SCOPE = threading.local()


def _call_step(coupling, step, x):
    scope = getattr(_SCOPE, "current", None)
    if scope is None:
        return step.fn(x)
    return scope.call(coupling, step, x)


def _note_forward(module, x, y):
    """Tells the engine's scope what ``module``'s forward received and returned: when calling a block runs module
    hooks, the engine compares them with what the call passed and got back, to find whether a hook changed them."""
    scope = getattr(_SCOPE, "current", None)
    if scope is not None:
        scope.note(module, x, y)


class Coupling(nn.Module):
    """Base class of two-function couplings. Subclasses define ``merge(other, fn_out)`` and
    ``unmerge(output, fn_out)`` with ``unmerge(merge(a, h), h) == a``.

    With memory saving, F and G are evaluated once more in backward (forward hooks run again); see the library's
    README for what they may contain.

    Args:
        F: module or callable mapping the second half (x2) to the first half's shape.
        G: module or callable mapping the first half (y1) to the second half's shape.
        split: number of channels in the first half; default ``C // 2`` (odd channel counts work).
    """

    def __init__(self, F: Fn, G: Fn, split: Optional[int] = None) -> None:
        super().__init__()
        if split is not None and (not isinstance(split, int) or split < 1):
            raise ReversibleError(f"split must be a positive number of channels, got {split!r}")
        self.F = F
        self.G = G
        self.split = split
        self._steps = None

    # -- the two operations a subclass defines ---------------------------------------------------------------
    def merge(self, other: Tensor, fn_out: Tensor) -> Tensor:
        """The written half from the half it replaces (``other``) and the function's output.

        Args:
            other: the half being written (x1 for F, x2 for G).
            fn_out: F's or G's output.
        """
        raise NotImplementedError

    def unmerge(self, output: Tensor, fn_out: Tensor) -> Tensor:
        """The inverse of ``merge`` in its first argument: ``unmerge(merge(a, h), h) == a``.

        Args:
            output: the written half.
            fn_out: F's or G's output.
        """
        raise NotImplementedError

    def fn_out_channels(self, other_channels: int) -> Tuple[int, ...]:
        """Channel counts that F/G may return for a half of ``other_channels`` channels.

        Args:
            other_channels: channels of the half being written.
        """
        return (other_channels,)

    def merge_vjp(self, other: Tensor, fn_out: Tensor, grad: Tensor,
                  inverse: bool) -> Optional[Tuple[Tensor, Tensor]]:
        """Optional shortcut: ``(grad wrt other, grad wrt fn_out)`` of ``merge`` (``unmerge`` when ``inverse``) for
        the output gradient ``grad``, or ``None`` to let autograd differentiate merge/unmerge.

        Args:
            other: merge's first argument.
            fn_out: the function's output.
            grad: gradient of merge's (unmerge's) output.
            inverse: differentiate ``unmerge`` instead of ``merge``.
        """
        return None

    # -- helpers used by the plain path and by the engine ----------------------------------------------------
    def split_sizes(self, x: Tensor) -> List[int]:
        """``[first half's channels, second half's channels]`` for ``x``.

        Args:
            x: the coupling's input, shaped (N, C, ...).
        """
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

    def half_steps(self, inverse: bool = False) -> Tuple[HalfStep, ...]:
        """The half steps in the order they are applied, with the coupling's current ``F`` and ``G`` (assigning
        ``coupling.F = new_module`` after construction replaces F everywhere: plain and memory-saving runs,
        ``parameters()``).

        Args:
            inverse: the order of ``inverse`` (G's step first).
        """
        F, G, steps = self.F, self.G, self._steps
        if steps is None or steps[0].fn is not F or steps[1].fn is not G:
            steps = self._steps = (HalfStep("F", F, src=1, dst=0), HalfStep("G", G, src=0, dst=1))
        return (steps[1], steps[0]) if inverse else steps

    def merge_parameters(self) -> List[nn.Parameter]:
        """Parameters the coupling itself uses in merge/unmerge (not those of F or G)."""
        inner = {id(p) for m in (self.F, self.G) if isinstance(m, nn.Module) for p in m.parameters()}
        return [p for p in self.parameters() if id(p) not in inner]

    def check_fn_output(self, step: HalfStep, fn_out: Tensor, other: Tensor) -> None:
        """Raises a ``ReversibleError`` when ``fn_out`` does not have a shape that ``merge`` can use.

        Args:
            step: the half step.
            fn_out: its function's output.
            other: the half it writes.
        """
        ok_channels = self.fn_out_channels(other.shape[1])
        if (not torch.is_tensor(fn_out) or fn_out.dim() != other.dim() or fn_out.shape[0] != other.shape[0]
                or fn_out.shape[2:] != other.shape[2:] or fn_out.shape[1] not in ok_channels):
            got = _shape(fn_out) if torch.is_tensor(fn_out) else type(fn_out).__name__
            src = "x2" if step.name == "F" else "y1"
            want = " or ".join(str((other.shape[0], c) + tuple(other.shape[2:])) for c in ok_channels)
            raise ReversibleError(
                f"{type(self).__name__}: {step.name} must map its input half ({src}) to shape {want} "
                f"(same batch and spatial size, the other half's channels), but returned {got}")

    def apply_step(self, step: HalfStep, halves: Sequence[Tensor], fn_out: Tensor, inverse: bool) -> Tensor:
        """Returns the new value of ``halves[step.dst]`` given ``fn_out = step.fn(halves[step.src])``.

        Args:
            step: the half step.
            halves: the two halves.
            fn_out: the step's function output.
            inverse: unmerge instead of merge.
        """
        other = halves[step.dst]
        self.check_fn_output(step, fn_out, other)
        return self.unmerge(other, fn_out) if inverse else self.merge(other, fn_out)

    def _run(self, x, inverse):
        halves = list(torch.split(x, self.split_sizes(x), dim=1))
        for step in self.half_steps(inverse):
            halves[step.dst] = self.apply_step(step, halves, _call_step(self, step, halves[step.src]), inverse)
        return torch.cat(halves, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """Applies the coupling.

        Args:
            x: shaped (N, C, ...), split along C.
        """
        y = self._run(x, inverse=False)
        _note_forward(self, x, y)
        return y

    def inverse(self, y: Tensor) -> Tensor:
        """Undoes the coupling.

        Args:
            y: an output of ``forward`` (or any tensor of its shape).
        """
        return self._run(y, inverse=True)


class AdditiveCoupling(Coupling):
    """``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)`` (RevNet / MemCNN / RevGAN).

    Args:
        F: module or callable mapping the second half (x2) to the first half's shape.
        G: module or callable mapping the first half (y1) to the second half's shape.
        split: number of channels in the first half; default ``C // 2``.
    """

    def merge(self, other: Tensor, fn_out: Tensor) -> Tensor:
        return other + fn_out

    def unmerge(self, output: Tensor, fn_out: Tensor) -> Tensor:
        return output - fn_out

    def merge_vjp(self, other: Tensor, fn_out: Tensor, grad: Tensor, inverse: bool) -> Tuple[Tensor, Tensor]:
        return grad, (-grad if inverse else grad)


class AffineCoupling(Coupling):
    """``y1 = x1 * s(F(x2)) + t(F(x2))``, ``y2 = x2 * s(G(y1)) + t(G(y1))`` with a bounded scale.

    F and G return either a tensor of the other half's shape ``h`` (default; the same bodies fit
    :class:`AdditiveCoupling`), from which ``t = h`` and ``log s = softclamp(h)``, or twice that many channels,
    split into ``(log s, t)``. ``softclamp(h) = bound * tanh(h / bound)``, so ``s`` lies strictly inside
    ``(exp(-bound), exp(bound))``: never 0, never huge, and ``s = 1`` at ``h = 0``. A larger bound amplifies more
    per block, and inputs rebuilt in backward lose precision accordingly (``check_gradients``).

    Args:
        F: module or callable mapping x2 to x1's shape (or twice its channels: ``(log s, t)``).
        G: module or callable mapping y1 to x2's shape (or twice its channels).
        split: number of channels in the first half; default ``C // 2``.
        scale_bound: bound of ``|log s|`` (finite, positive; default 2).
    """

    def __init__(self, F: Fn, G: Fn, split: Optional[int] = None, scale_bound: float = 2.0) -> None:
        super().__init__(F, G, split)
        if not scale_bound > 0 or not math.isfinite(scale_bound):
            raise ReversibleError(f"scale_bound must be a finite positive number, got {scale_bound!r}")
        self.scale_bound = float(scale_bound)

    def fn_out_channels(self, other_channels: int) -> Tuple[int, ...]:
        return (other_channels, 2 * other_channels)

    def scale_shift(self, fn_out: Tensor, channels: int) -> Tuple[Tensor, Tensor]:
        """``(s, t)`` from F's or G's output.

        Args:
            fn_out: the function's output (``channels`` or ``2 * channels`` channels).
            channels: channels of the half being written.
        """
        if fn_out.shape[1] == 2 * channels:
            raw, shift = torch.split(fn_out, [channels, channels], dim=1)
        else:
            raw, shift = fn_out, fn_out
        log_scale = self.scale_bound * torch.tanh(raw / self.scale_bound)
        return torch.exp(log_scale), shift

    def merge(self, other: Tensor, fn_out: Tensor) -> Tensor:
        scale, shift = self.scale_shift(fn_out, other.shape[1])
        return other * scale + shift

    def unmerge(self, output: Tensor, fn_out: Tensor) -> Tensor:
        scale, shift = self.scale_shift(fn_out, output.shape[1])
        return (output - shift) / scale


class CustomCoupling(Coupling):
    """A coupling whose merge functions the user supplies, e.g. RevLib's momentum coupling::

        beta = 0.9
        CustomCoupling(F, G, merge=lambda other, h: other * beta + h * (1 - beta),
                       unmerge=lambda out, h: (out - h * (1 - beta)) / beta)

    ``unmerge(merge(a, h), h)`` must give back ``a``; ``is_invertible`` checks it. Parameters used by ``merge``
    belong on the coupling (``nn.Parameter`` attributes of a subclass), not in closures.

    Args:
        F: module or callable mapping x2 to x1's shape.
        G: module or callable mapping y1 to x2's shape.
        merge: ``merge(other, fn_out)``.
        unmerge: ``unmerge(output, fn_out)``, its inverse in the first argument.
        split: number of channels in the first half; default ``C // 2``.
        fn_out_channels: maps the other half's channel count to the channel counts F/G may return (default: the
            same count).
    """

    def __init__(self, F: Fn, G: Fn, merge: Callable[[Tensor, Tensor], Tensor],
                 unmerge: Callable[[Tensor, Tensor], Tensor], split: Optional[int] = None,
                 fn_out_channels: Optional[Callable[[int], Sequence[int]]] = None) -> None:
        super().__init__(F, G, split)
        if not callable(merge) or not callable(unmerge):
            raise ReversibleError("CustomCoupling needs callable merge(other, fn_out) and unmerge(output, fn_out)")
        self._merge, self._unmerge = merge, unmerge
        self._fn_out_channels = fn_out_channels

    def fn_out_channels(self, other_channels: int) -> Tuple[int, ...]:
        if self._fn_out_channels is None:
            return (other_channels,)
        return tuple(self._fn_out_channels(other_channels))

    def merge(self, other: Tensor, fn_out: Tensor) -> Tensor:
        return self._merge(other, fn_out)

    def unmerge(self, output: Tensor, fn_out: Tensor) -> Tensor:
        return self._unmerge(output, fn_out)
