"""Reversible (invertible) networks with memory-saving backprop, for 1D, 2D and 3D data.

A self-contained library: it imports only torch. Typical use::

    from models.reversible import AdditiveCoupling, ReversibleSequence
    core = ReversibleSequence([AdditiveCoupling(F=body(), G=body()) for _ in range(depth)])
    y = core(x)            # A -> B, activations are not stored
    x_back = core.inverse(y)   # B -> A through the same blocks

    from models.reversible import InvertibleUNet
    unet = InvertibleUNet(in_channels=3, architecture=[2, 2, 2, 2], dims=2, lift_stride=2)   # fully invertible

    from models.reversible import check_gradients
    print(check_gradients(core, x))   # memory-saving gradients against plain autograd on a batch of yours

See README.md in this folder for what is supported, what is refused, and the numerical limit.
"""
from .checks import (GradientReport, check_gradients, graph_saved_bytes, is_invertible, reconstruction_error,
                     relative_error)
from .couplings import AdditiveCoupling, AffineCoupling, Coupling, CustomCoupling, HalfStep, ReversibleError
from .engine import ReversibleFunction, is_recomputing
from .iunet import InvertibleUNet
from .padding import padding_for, run_padded
from .recompute import Recompute, recompute
from .resampling import InvertibleDownsampling, InvertibleUpsampling, OrthogonalChannelMixing
from .sequence import InvertibleModuleWrapper, ReversibleBlock, ReversibleSequence

__all__ = [
    "AdditiveCoupling", "AffineCoupling", "Coupling", "CustomCoupling", "HalfStep", "ReversibleError",
    "ReversibleSequence", "ReversibleBlock", "InvertibleModuleWrapper", "ReversibleFunction", "is_recomputing",
    "is_invertible", "reconstruction_error", "relative_error", "graph_saved_bytes", "check_gradients", "GradientReport",
    "InvertibleUNet", "InvertibleDownsampling", "InvertibleUpsampling", "OrthogonalChannelMixing", "run_padded",
    "padding_for", "Recompute", "recompute",
]
