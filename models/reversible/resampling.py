"""Learnable invertible resampling and orthogonal channel mixing, for 1D, 2D and 3D (iUNets-style).

Invertible downsampling with stride ``s = (s1, ..., sd)`` turns each non-overlapping ``s1 x ... x sd`` block of a
``C``-channel input into ``C * prod(s)`` channels at one position, mixed by an orthogonal matrix ``K`` of size
``n = C * prod(s)``: a strided convolution whose kernel is ``K`` reshaped to ``(n, C, s1, ..., sd)``. Because ``K``
is orthogonal and the blocks do not overlap, the transposed convolution with the same kernel is its exact inverse
(upsampling). ``K = K0 @ Q(A)``: ``K0`` is the initialization (``haar``, ``squeeze`` or ``pixel_shuffle``), ``A`` a
learnable skew-symmetric matrix (zero at the start), and ``Q`` the matrix exponential (scaling and squaring,
``torch.linalg.matrix_exp``) or the Cayley transform ``(I + A)^-1 (I - A)``; either is orthogonal for every ``A``,
so ``K`` stays orthogonal through training.
"""
import math
from typing import Sequence, Union

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

from .couplings import ReversibleError

_CONV = {1: nnf.conv1d, 2: nnf.conv2d, 3: nnf.conv3d}
_CONV_T = {1: nnf.conv_transpose1d, 2: nnf.conv_transpose2d, 3: nnf.conv_transpose3d}


def _exact_conv(conv, x, kernel, **kwargs):
    """``conv(x, kernel)`` in float32 (or better) even under autocast: an orthogonal map rounded to bfloat16 or
    float16 would no longer be undone by its transpose, and the reversible stream must stay exact."""
    if not torch.is_autocast_enabled(x.device.type):
        return conv(x, kernel, **kwargs)
    with torch.autocast(x.device.type, enabled=False):
        dtype = torch.promote_types(x.dtype, torch.float32)
        return conv(x.to(dtype), kernel.to(dtype), **kwargs)
INITS = ("haar", "squeeze", "pixel_shuffle")
METHODS = ("exp", "cayley")


def stride_tuple(stride, dims):
    """``stride`` (an int or one int per dimension) as a tuple of ``dims`` positive ints."""
    if dims not in _CONV:
        raise ReversibleError(f"dims must be 1, 2 or 3, got {dims!r}")
    s = (stride,) * dims if isinstance(stride, int) else tuple(stride)
    if len(s) != dims or not all(isinstance(v, int) and v >= 1 for v in s):
        raise ReversibleError(f"stride must be a positive int or {dims} positive ints, got {stride!r}")
    return s


def skew(w):
    """The skew-symmetric matrix built from the strict upper triangle of ``w``."""
    a = torch.triu(w, diagonal=1)
    return a - a.transpose(0, 1)


def orthogonal(a, method):
    """An orthogonal matrix from the skew-symmetric ``a``: ``exp(a)`` or the Cayley transform."""
    if method == "exp":
        return torch.linalg.matrix_exp(a)
    if method == "cayley":
        eye = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
        return torch.linalg.solve(eye + a, eye - a)
    raise ReversibleError(f"method must be one of {METHODS}, got {method!r}")


def haar_matrix(stride):
    """Orthonormal Haar analysis matrix of one ``stride`` block (stride 1 or 2 per dimension), offsets in C order."""
    h = torch.ones(1, 1, dtype=torch.float64)
    for s in stride:
        if s == 2:
            h = torch.kron(h, torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64) / math.sqrt(2))
        elif s != 1:
            raise ReversibleError(f"init 'haar' needs stride 1 or 2 in every dimension, got {stride}: use init "
                                  f"'squeeze' or 'pixel_shuffle' (InvertibleUNet: resampling_init=...)")
    return h


def initial_matrix(init, channels, stride):
    """``K0`` (float64, ``n x n``) whose rows are output channels and columns (input channel, block offset) pairs
    in ``torch.pixel_unshuffle``'s order: ``pixel_shuffle`` is the identity (PyTorch's channel order), ``squeeze``
    the same values ordered offset-major (RealNVP/Glow's squeeze), ``haar`` a Haar wavelet per channel."""
    size = math.prod(stride)
    n = channels * size
    if init == "pixel_shuffle":
        return torch.eye(n, dtype=torch.float64)
    if init == "squeeze":
        k0 = torch.zeros(n, n, dtype=torch.float64)
        for c in range(channels):
            for k in range(size):
                k0[k * channels + c, c * size + k] = 1.0
        return k0
    if init == "haar":
        return torch.block_diag(*[haar_matrix(stride)] * channels)
    raise ReversibleError(f"init must be one of {INITS}, got {init!r}")


class OrthogonalMatrix(nn.Module):
    """``K0 @ Q(skew(weight))``: orthogonal for every value of the learnable ``weight`` (zero by default, so
    ``K = K0``). ``K0`` is kept in float64 and cast to the working dtype when used, so a float64 module is
    orthogonal to float64 precision. ``learnable=False`` keeps ``weight`` fixed."""

    def __init__(self, k0, method="exp", learnable=True):
        super().__init__()
        if method not in METHODS:
            raise ReversibleError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        self._k0, self._cast = k0.to(torch.float64), {}
        self.weight = nn.Parameter(torch.zeros(k0.shape, dtype=torch.get_default_dtype()), requires_grad=learnable)

    def base(self):
        key = (self.weight.dtype, self.weight.device)
        if key not in self._cast:
            self._cast[key] = self._k0.to(device=self.weight.device, dtype=self.weight.dtype)
        return self._cast[key]

    def forward(self):
        with torch.autocast(self.weight.device.type, enabled=False):  # rounded to 16 bits it is not orthogonal
            return self.base() @ orthogonal(skew(self.weight), self.method)


class InvertibleDownsampling(nn.Module):
    """Learnable invertible downsampling: ``(N, C, *S)`` to ``(N, C * prod(stride), *S / stride)``.

    Args:
        channels: input channels ``C``.
        stride: per-dimension factor (int or tuple); each spatial size must be a multiple of it.
        dims: 1, 2 or 3.
        init: ``haar`` (needs stride 1 or 2), ``squeeze`` or ``pixel_shuffle``.
        method: ``exp`` (matrix exponential) or ``cayley``.
        learnable: train the mixing (False: a fixed orthogonal resampling).
    """

    def __init__(self, channels: int, stride: Union[int, Sequence[int]] = 2, dims: int = 2, init: str = "haar",
                 method: str = "exp", learnable: bool = True) -> None:
        super().__init__()
        self.dims, self.stride, self.channels = dims, stride_tuple(stride, dims), int(channels)
        self.out_channels = self.channels * math.prod(self.stride)
        self.kernel_matrix = OrthogonalMatrix(initial_matrix(init, self.channels, self.stride), method, learnable)

    def _kernel(self):
        return self.kernel_matrix().reshape((self.out_channels, self.channels) + self.stride)

    def _check(self, x, channels, what):
        if x.dim() != self.dims + 2 or x.shape[1] != channels:
            raise ReversibleError(f"{type(self).__name__} expects {what} shaped (N, {channels}, "
                                  f"{', '.join(['...'] * self.dims)}), got {tuple(x.shape)}")

    def down(self, x: Tensor) -> Tensor:
        """``(N, C, *S)`` to ``(N, C * prod(stride), *S / stride)``.

        Args:
            x: a tensor whose spatial sizes are multiples of the stride.
        """
        self._check(x, self.channels, "input")
        bad = [s for s, f in zip(x.shape[2:], self.stride) if s % f]
        if bad:
            raise ReversibleError(f"spatial size {tuple(x.shape[2:])} is not a multiple of the stride {self.stride}: "
                                  f"pad the input (the iUNet pads automatically unless pad=False)")
        return _exact_conv(_CONV[self.dims], x, self._kernel(), stride=self.stride)

    def up(self, y: Tensor) -> Tensor:
        """The exact inverse of ``down``.

        Args:
            y: shaped (N, C * prod(stride), ...).
        """
        self._check(y, self.out_channels, "input of the upsampling")
        return _exact_conv(_CONV_T[self.dims], y, self._kernel(), stride=self.stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(x)

    def inverse(self, y: Tensor) -> Tensor:
        return self.up(y)


class InvertibleUpsampling(InvertibleDownsampling):
    """Learnable invertible upsampling, the mirror image of :class:`InvertibleDownsampling`:
    ``(N, C * prod(stride), *S)`` to ``(N, C, *S * stride)``.

    Args:
        channels: output channels ``C``.
        stride: per-dimension factor (int or tuple).
        dims: 1, 2 or 3.
        init: ``haar`` (needs stride 1 or 2), ``squeeze`` or ``pixel_shuffle``.
        method: ``exp`` (matrix exponential) or ``cayley``.
        learnable: train the mixing (False: a fixed orthogonal resampling).
    """

    def forward(self, x: Tensor) -> Tensor:
        return self.up(x)

    def inverse(self, y: Tensor) -> Tensor:
        return self.down(y)


class OrthogonalChannelMixing(nn.Module):
    """Invertible 1x1 convolution with an orthogonal weight (kept orthogonal by the same parametrization); its
    inverse is the transposed weight.

    Args:
        channels: channels ``C`` of input and output.
        dims: 1, 2 or 3.
        method: ``exp`` (matrix exponential) or ``cayley``.
        init: ``random`` (a random rotation) or ``identity``.
        learnable: train the rotation.
    """

    def __init__(self, channels: int, dims: int = 2, method: str = "exp", init: str = "random",
                 learnable: bool = True) -> None:
        super().__init__()
        self.dims, self.channels = dims, int(channels)
        stride_tuple(1, dims)
        if init not in ("random", "identity"):
            raise ReversibleError(f"init must be 'random' or 'identity', got {init!r}")
        self.kernel_matrix = OrthogonalMatrix(torch.eye(self.channels, dtype=torch.float64), method, learnable)
        if init == "random":  # a random rotation: exp of a random skew-symmetric matrix
            with torch.no_grad():
                self.kernel_matrix.weight.normal_(0.0, 1.0)

    def _mix(self, x, k):
        if x.dim() != self.dims + 2 or x.shape[1] != self.channels:
            raise ReversibleError(f"OrthogonalChannelMixing expects (N, {self.channels}, ...) with {self.dims} "
                                  f"spatial dimensions, got {tuple(x.shape)}")
        return _exact_conv(_CONV[self.dims], x, k.reshape((self.channels, self.channels) + (1,) * self.dims))

    def forward(self, x: Tensor) -> Tensor:
        return self._mix(x, self.kernel_matrix())

    def inverse(self, y: Tensor) -> Tensor:
        return self._mix(y, self.kernel_matrix().transpose(0, 1))
