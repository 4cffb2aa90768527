"""User-facing containers: a reversible sequence of blocks and a single memory-saving block."""
from typing import Iterable

import torch
from torch import Tensor, nn

from .couplings import Coupling, ReversibleError, _note_forward
from .engine import run


def _check_block(i, block):
    if not isinstance(block, nn.Module):
        raise ReversibleError(f"block {i} is a {type(block).__name__}, not an nn.Module")
    if not isinstance(block, Coupling) and not callable(getattr(block, "inverse", None)):
        raise ReversibleError(
            f"block {i} ({type(block).__name__}) has no inverse(): wrap non-invertible functions in a coupling "
            f"such as AdditiveCoupling(F, G)")


class _Reversible(nn.Module):
    """Shared machinery: run ``blocks`` forward or inverse, with or without memory saving."""

    def __init__(self, blocks, memory_saving, preserve_rng_state):
        super().__init__()
        blocks = list(blocks)
        for i, block in enumerate(blocks):
            _check_block(i, block)
        self.blocks = nn.ModuleList(blocks)
        self.memory_saving = bool(memory_saving)
        self.preserve_rng_state = bool(preserve_rng_state)

    def _run_blocks(self, x, inverse, memory_saving, keep_input=False):
        if not torch.is_tensor(x):
            raise ReversibleError(f"{type(self).__name__} expects a tensor, got {type(x).__name__}")
        if len(self.blocks) == 0:
            return x
        if x.dtype in (torch.float16, torch.bfloat16) and torch.is_autocast_enabled(x.device.type):
            # Under autocast F and G run in low precision, but the stream they add to stays float32: a
            # bfloat16/float16 stream would round at every merge and the inverse could not undo it.
            x = x.float()
        needs_graph = torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self.parameters()))
        if memory_saving and needs_graph:
            y = run(x, list(self.blocks), inverse, self.preserve_rng_state, keep_input)
            if y is not None:
                return y
            # (a lazy module's first call, which materialises its parameters, runs on plain autograd)
        # Plain autograd (the reference, RevGAN's --use_naive), and inference: no extra cost.
        for block in (reversed(self.blocks) if inverse else self.blocks):
            x = block.inverse(x) if inverse else block(x)
        return x


class ReversibleSequence(_Reversible):
    """A stack of invertible blocks (couplings, or any module with ``forward`` and ``inverse``).

    ``forward(x)`` applies the blocks in order, ``inverse(y)`` undoes them in reverse order; with
    ``memory_saving=True`` both train without storing any per-block activation (inputs are rebuilt from outputs in
    backward), and with ``memory_saving=False`` the same math runs on plain autograd. Memory saving gives plain
    autograd's gradients or raises a ``ReversibleError`` (see the library's README for what is refused, and
    ``check_gradients`` for the numerical limit that every reconstruction shares). Blocks may be sequences
    themselves (nesting), or any invertible module with ``forward`` and ``inverse``.

    Under ``torch.autocast`` the blocks' functions (F, G) run in the autocast dtype but the values passed from block
    to block stay float32 (a float16/bfloat16 input is upcast on entry), so the inverse, and the memory-saving
    backward's reconstruction, undoes the forward to float32 rounding instead of drifting by the low precision.

    Args:
        blocks: iterable of blocks.
        memory_saving: reconstruct instead of store (default True).
        preserve_rng_state: replay dropout/randomness identically during recomputation (default True).
    """

    def __init__(self, blocks: Iterable[nn.Module], memory_saving: bool = True,
                 preserve_rng_state: bool = True) -> None:
        super().__init__(blocks, memory_saving, preserve_rng_state)

    def forward(self, x: Tensor) -> Tensor:
        """Applies the blocks in order.

        Args:
            x: input shaped (N, C, ...).
        """
        y = self._run_blocks(x, inverse=False, memory_saving=self.memory_saving)
        _note_forward(self, x, y)
        return y

    def inverse(self, y: Tensor) -> Tensor:
        """Undoes the blocks in reverse order (with memory saving too).

        Args:
            y: a tensor of the output's shape.
        """
        return self._run_blocks(y, inverse=True, memory_saving=self.memory_saving)

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> nn.Module:
        return self.blocks[i]


class ReversibleBlock(_Reversible):
    """One invertible module with memory-saving backprop, usable on its own (MemCNN's ``InvertibleModuleWrapper``).

    Args:
        module: a coupling or any module with ``forward`` and ``inverse``.
        keep_input: keep the input of ``forward`` for backward (recompute from it, like checkpointing) instead of
            reconstructing it from the output. Default False: reconstruct, keeping nothing but the output.
        keep_input_inverse: the same for ``inverse``.
        disable: run plain autograd (no memory saving) in both directions.
        preserve_rng_state: replay randomness identically during recomputation.

    Memory: a block's graph keeps its output, so a chain of ReversibleBlocks (an ``nn.Sequential`` of them) keeps
    every block's output, one activation per block, where MemCNN's wrapper frees the storage of its input instead.
    For flat memory along a chain, put its blocks in one ``ReversibleSequence``, which keeps the last output only.
    """

    def __init__(self, module: nn.Module, keep_input: bool = False, keep_input_inverse: bool = False,
                 disable: bool = False, preserve_rng_state: bool = True) -> None:
        super().__init__([module], memory_saving=not disable, preserve_rng_state=preserve_rng_state)
        self.keep_input = bool(keep_input)
        self.keep_input_inverse = bool(keep_input_inverse)

    @property
    def module(self) -> nn.Module:
        return self.blocks[0]

    def forward(self, x: Tensor) -> Tensor:
        """Applies the module.

        Args:
            x: its input.
        """
        y = self._run_blocks(x, inverse=False, memory_saving=self.memory_saving, keep_input=self.keep_input)
        _note_forward(self, x, y)
        return y

    def inverse(self, y: Tensor) -> Tensor:
        """Undoes the module.

        Args:
            y: a tensor of the output's shape.
        """
        return self._run_blocks(y, inverse=True, memory_saving=self.memory_saving, keep_input=self.keep_input_inverse)


# MemCNN users know the wrapper by this name.
InvertibleModuleWrapper = ReversibleBlock
