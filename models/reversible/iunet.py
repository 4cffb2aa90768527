"""A fully invertible U-Net (iUNets-style) for 1D, 2D and 3D, with memory-saving backprop through all of it.

Per resolution level: ``architecture[l]`` coupling blocks, then a channel split: one part is skipped to the same
level of the upsampling branch, the other is downsampled by learnable invertible downsampling and goes one level
deeper. On the way up: learnable invertible upsampling, concatenation with the skipped part, and
``architecture[l]`` coupling blocks again. Every step is invertible, so the whole network is a bijection and
``inverse`` undoes ``forward`` exactly.

Memory saving: each level is a :class:`ReversibleSequence` whose blocks are its couplings and one invertible
"inner" block (split, downsample, the deeper levels, upsample, concatenate), itself a ReversibleSequence. In backward
every block's input is rebuilt from its output, so no level stores activations; a deeper level is recomputed once
more per level above it. Blocks with dropout or spectral norm are rebuilt with the randomness and state of their
forward (the engine records each coupling call inside a level).
"""
import math
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from .couplings import AdditiveCoupling, AffineCoupling, ReversibleError
from .padding import PADDING_MODES, padding_for, run_padded
from .resampling import InvertibleDownsampling, InvertibleUpsampling, OrthogonalChannelMixing, stride_tuple
from .sequence import ReversibleSequence

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def default_block(in_channels, out_channels, hidden, dims):
    """F or G of a coupling: 3-wide conv, LeakyReLU, 3-wide conv (zero-initialized, so each coupling starts as the
    identity)."""
    conv = _CONV[dims]
    last = conv(hidden, out_channels, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(conv(in_channels, hidden, 3, padding=1), nn.LeakyReLU(0.2, inplace=True), last)


class _Inner(nn.Module):
    """``x = [skip | rest]`` to ``[skip | deeper(rest)]`` where ``deeper`` is a ReversibleSequence (down, next
    level, up) at the same resolution as ``rest``: invertible, and its own memory-saving unit."""

    def __init__(self, skip, deeper):
        super().__init__()
        self.skip = skip
        self.deeper = deeper

    def forward(self, x):
        s, r = torch.split(x, [self.skip, x.shape[1] - self.skip], dim=1)
        return torch.cat([s, self.deeper(r)], dim=1)

    def inverse(self, y):
        s, r = torch.split(y, [self.skip, y.shape[1] - self.skip], dim=1)
        return torch.cat([s, self.deeper.inverse(r)], dim=1)


class InvertibleUNet(nn.Module):
    """Fully invertible U-Net.

    Args:
        in_channels: channels of input and output (at least 2: a coupling splits channels).
        architecture: coupling blocks per level, e.g. ``[2, 2, 2, 2]`` (four levels, three downsamplings); each
            level has that many blocks on the way down and as many on the way up.
        dims: 1, 2 or 3.
        stride: resampling factor per level (int or one per dimension, e.g. ``(1, 2, 2)`` for thick 3D slices).
        channel_growth: channels multiply by this from one level to the next (the downsampled part of the split is
            ``growth * C / prod(stride)`` channels, the rest is skipped); 2 as in iUNets' "double" mode.
        coupling: ``additive`` or ``affine``.
        block_fn: ``block_fn(in_channels, out_channels, level)`` builds each F and G (default: conv-LeakyReLU-conv
            with ``hidden`` channels at level 0, doubling per level up to 8x).
        hidden: width of the default blocks at level 0 (default: the level's channel count).
        channel_mixing: an orthogonal 1x1 channel mixing after every coupling.
        resampling_init, resampling_method, learnable_resampling: see :class:`InvertibleDownsampling`.
        pad: pad inputs to a valid size (a multiple of ``stride ** (levels - 1)``) and crop outputs back; with
            ``pad=False`` a wrong size is an error. Padding makes forward/inverse exact only on valid sizes.
        padding_mode: ``constant``, ``reflect`` or ``replicate``.
        memory_saving: rebuild activations in backward instead of storing them (False: plain autograd, the
            conventional reference).
        lift_stride: first an invertible downsampling by this stride (and an upsampling at the end), so that inputs
            with few channels (1 or 3) reach the couplings with ``in_channels * prod(lift_stride)`` channels.
    """

    def __init__(self, in_channels: int, architecture: Sequence[int] = (2, 2, 2, 2), dims: int = 2,
                 stride: Union[int, Sequence[int]] = 2, channel_growth: float = 2, coupling: str = "additive",
                 block_fn: Optional[Callable[[int, int, int], nn.Module]] = None, hidden: Optional[int] = None,
                 channel_mixing: bool = False, resampling_init: str = "haar", resampling_method: str = "exp",
                 learnable_resampling: bool = True, pad: bool = True, padding_mode: str = "reflect",
                 memory_saving: bool = True, lift_stride: Optional[Union[int, Sequence[int]]] = None) -> None:
        super().__init__()
        architecture = list(architecture)
        if not architecture or not all(isinstance(n, int) and n >= 0 for n in architecture):
            raise ReversibleError(f"architecture must be a non-empty list of block counts >= 0, got {architecture}")
        lift = stride_tuple(lift_stride, dims) if lift_stride is not None else (1,) * dims
        self.in_channels, in_channels = in_channels, in_channels * math.prod(lift)
        if in_channels < 2:
            raise ReversibleError(f"an iUNet needs at least 2 channels (a coupling splits them), got {in_channels}: "
                                  f"pass lift_stride=2 to lift them with an invertible downsampling")
        if coupling not in ("additive", "affine"):
            raise ReversibleError(f"coupling must be 'additive' or 'affine', got {coupling!r}")
        if padding_mode not in PADDING_MODES:
            raise ReversibleError(f"padding_mode must be constant, reflect or replicate, got {padding_mode!r}")
        self.dims, self.architecture = dims, architecture
        self.stride = stride_tuple(stride, dims)
        self.pad, self.padding_mode = pad, padding_mode
        self.size_multiple = tuple(f * s ** (len(architecture) - 1) for f, s in zip(lift, self.stride))
        coupling_cls = AdditiveCoupling if coupling == "additive" else AffineCoupling
        factor = math.prod(self.stride)
        if block_fn is None:
            def block_fn(cin, cout, level):
                width = (hidden or in_channels) * 2 ** min(level, 3)
                return default_block(cin, cout, width, dims)

        widen = 1 if coupling == "additive" else 2  # affine F/G return (log scale, shift)

        def couplings(channels, n, level):
            blocks = []
            for _ in range(n):
                a, b = channels // 2, channels - channels // 2
                blocks.append(coupling_cls(block_fn(b, widen * a, level), block_fn(a, widen * b, level)))
                if channel_mixing:
                    blocks.append(OrthogonalChannelMixing(channels, dims, resampling_method))
            return blocks

        # channels per level, and the (skipped, downsampled) split at every level but the last
        self.channels, self.splits = [in_channels], []
        for _ in range(len(architecture) - 1):
            c = self.channels[-1]
            down = max(1, min(c - 1, round(channel_growth * c / factor)))
            self.splits.append((c - down, down))
            self.channels.append(down * factor)
        last = len(architecture) - 1

        def resampling(channels, stride):
            """A learnable invertible (downsampling, upsampling) pair at ``channels``, both starting as ``init``."""
            args = (channels, stride, dims, resampling_init, resampling_method, learnable_resampling)
            return InvertibleDownsampling(*args), InvertibleUpsampling(*args)

        def build(level):
            c, n = self.channels[level], architecture[level]
            if level == last:  # the bottom: its down-branch and up-branch blocks meet
                return couplings(c, 2 * n, level)
            skip, down = self.splits[level]
            down_op, up_op = resampling(down, self.stride)
            deeper = [down_op] + build(level + 1) + [up_op]
            return couplings(c, n, level) + [_Inner(skip, ReversibleSequence(deeper, memory_saving=memory_saving))] \
                + couplings(c, n, level)

        blocks = build(0)
        if lift != (1,) * dims:
            lift_down, lift_up = resampling(self.in_channels, lift)
            blocks = [lift_down] + blocks + [lift_up]
        self.body = ReversibleSequence(blocks, memory_saving=memory_saving)

    # -- sizes ---------------------------------------------------------------------------------------------------
    def _run(self, fn_name, x):
        if x.dim() != self.dims + 2:
            raise ReversibleError(f"InvertibleUNet(dims={self.dims}) expects (N, C, {', '.join(['...'] * self.dims)}),"
                                  f" got {tuple(x.shape)}")
        if not self.pad and any(padding_for(x.shape[2:], self.size_multiple)):
            raise ReversibleError(f"spatial size {tuple(x.shape[2:])} is not a multiple of {self.size_multiple} (the "
                                  f"product of the strides of all downsamplings): use pad=True or a size that is a "
                                  f"multiple")
        return run_padded(getattr(self.body, fn_name), x, self.size_multiple, self.padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        """The U-Net on ``x``.

        Args:
            x: shaped (N, in_channels, *spatial); other sizes are padded and cropped back when ``pad``.
        """
        return self._run("forward", x)

    def inverse(self, y: Tensor) -> Tensor:
        """Undoes ``forward``.

        Args:
            y: shaped like the output.
        """
        return self._run("inverse", y)

    # -- layout ----------------------------------------------------------------------------------------------------
    def layout(self) -> str:
        """The network as text, one line per level (iUNets' print_layout format): the channels after each
        coupling, ``(skipped/downsampled)`` at each split, mirrored on the way up."""
        levels = len(self.architecture)
        rows = []
        for level in range(levels):
            c, n = self.channels[level], self.architecture[level]
            blocks = [str(c)] * max(n, 1)
            if level < levels - 1:
                split = "({}/{})".format(*self.splits[level])
                rows.append(("-".join(blocks + [split]), "-".join([split] + blocks)))
            else:
                rows.append(("-".join(blocks), "-".join(blocks)))
        indents = [0]
        for left, _ in rows[:-1]:
            indents.append(indents[-1] + len(left) + 1)
        width = 2 * indents[-1] + len(rows[-1][0]) + 2 + len(rows[-1][1])
        return "\n".join("-" * ind + left + "-" * (width - 2 * ind - len(left) - len(right)) + right + "-" * ind
                         for ind, (left, right) in zip(indents, rows))

    def print_layout(self) -> None:
        print(self.layout())

