"""Recomputation for modules that are not invertible: the graph keeps the module's input only, and backward runs
the module once more from it (activation checkpointing), through the same engine as the reversible blocks, so it
keeps the library's promise: plain autograd's gradients, running statistics and random-number state, or a clear
refusal."""
import torch
from torch import Tensor, nn

from .couplings import ReversibleError
from .engine import run


def recompute(module: nn.Module, x: Tensor, preserve_rng_state: bool = True) -> Tensor:
    """``module(x)`` whose graph keeps only ``x`` (and the output): backward recomputes the module from ``x``.

    Unlike ``torch.utils.checkpoint``, the recomputation leaves norm running statistics (BatchNorm's running mean,
    variance and ``num_batches_tracked``) as one plain call leaves them, replays dropout and other randomness from
    the forward's recorded random state (the global state after backward is what plain autograd leaves), checks that
    the parameters and buffers the forward used were not changed in place before backward, runs the module's forward
    hooks again (``is_recomputing()`` tells them which call they see) and refuses what it cannot recompute soundly
    (see the library's README: closures over outside tensors that require grad, second-order gradients, functorch
    transforms, ``DataParallel``). Under ``torch.no_grad()``, or when nothing requires grad, it is a plain call.

    Args:
        module: any module mapping one tensor to one tensor (it need not be invertible).
        x: its input.
        preserve_rng_state: replay randomness (dropout) identically in the recomputation (default True).
    """
    if not torch.is_tensor(x):
        raise ReversibleError(f"recompute expects a tensor input, got {type(x).__name__}")
    if not torch.is_grad_enabled() or not (x.requires_grad or any(p.requires_grad for p in module.parameters())):
        return module(x)
    y = run(x, [module], False, preserve_rng_state, keep_input=True)
    return module(x) if y is None else y  # None: a lazy module's first call runs on plain autograd


class Recompute(nn.Module):
    """A module whose calls are recomputed in backward instead of storing their activations (see ``recompute``).

    Its state dict is the wrapped module's under ``module.``; to keep a module's own keys, call ``recompute(module,
    x)`` where it is used instead of wrapping it.

    Args:
        module: any module mapping one tensor to one tensor.
        enabled: False runs plain autograd (stores activations), with the same math.
        preserve_rng_state: replay randomness identically in the recomputation.
    """

    def __init__(self, module: nn.Module, enabled: bool = True, preserve_rng_state: bool = True) -> None:
        super().__init__()
        self.module = module
        self.enabled = bool(enabled)
        self.preserve_rng_state = bool(preserve_rng_state)

    def forward(self, x: Tensor) -> Tensor:
        """``module(x)``, recomputed in backward when enabled.

        Args:
            x: the module's input.
        """
        if not self.enabled:
            return self.module(x)
        return recompute(self.module, x, self.preserve_rng_state)
