"""Running a network that needs sizes divisible by some multiple on inputs of any size: pad, run, crop back."""
from typing import Callable, List, Sequence, Union

import torch.nn.functional as nnf
from torch import Tensor

from .couplings import ReversibleError

PADDING_MODES = ("constant", "reflect", "replicate")


def padding_for(spatial: Sequence[int], multiple: Union[int, Sequence[int]]) -> List[int]:
    """Extra elements per spatial axis that bring ``spatial`` up to a multiple of ``multiple``.

    Args:
        spatial: the spatial sizes.
        multiple: an int, or one per axis.
    """
    multiple = (multiple,) * len(spatial) if isinstance(multiple, int) else tuple(multiple)
    if len(multiple) != len(spatial):
        raise ReversibleError(f"a multiple per spatial axis is needed: {len(spatial)} axes, got {multiple}")
    return [(-s) % m for s, m in zip(spatial, multiple)]


def run_padded(fn: Callable[[Tensor], Tensor], x: Tensor, multiple: Union[int, Sequence[int]],
               mode: str = "reflect") -> Tensor:
    """``fn`` on ``x`` (N, C, *spatial) padded up to a multiple of ``multiple`` (half on each side, the odd element at
    the end), its output cropped back to ``x``'s spatial size. Reflection falls back to replication where the padding
    is not smaller than the size.

    Args:
        fn: a function that keeps the spatial size (channels may change).
        x: input shaped (N, C, *spatial).
        multiple: an int, or one per spatial axis.
        mode: ``constant``, ``reflect`` or ``replicate``.
    """
    if mode not in PADDING_MODES:
        raise ReversibleError(f"padding mode must be one of {', '.join(PADDING_MODES)}, got {mode!r}")
    spatial = tuple(x.shape[2:])
    extra = padding_for(spatial, multiple)
    if not any(extra):
        return fn(x)
    if mode == "reflect" and any(e >= s for e, s in zip(extra, spatial)):
        mode = "replicate"
    pads = []
    for e in reversed(extra):  # F.pad lists the last axis first
        pads += [e // 2, e - e // 2]
    y = fn(nnf.pad(x, pads, mode=mode))
    if tuple(y.shape[2:]) != tuple(s + e for s, e in zip(spatial, extra)):
        raise ReversibleError(f"run_padded needs a size-preserving function: {tuple(y.shape[2:])} from "
                              f"{tuple(s + e for s, e in zip(spatial, extra))}")
    index = (slice(None), slice(None)) + tuple(slice(e // 2, e // 2 + s) for e, s in zip(extra, spatial))
    return y[index]
