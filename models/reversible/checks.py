"""Checks and measurements: invertibility, reconstruction error, memory-saving gradients against plain autograd, and
the memory an autograd graph keeps alive."""
import contextlib
import dataclasses
import math
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .couplings import ReversibleError
from .engine import _generators, _modules, _restored_after, frozen_buffers
from .sequence import _Reversible

_DEFAULT_RTOL = {torch.float64: 1e-10, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 2e-2}
_GRADIENT_RTOL = {torch.float64: 1e-8, torch.float32: 1e-3, torch.float16: 5e-2, torch.bfloat16: 5e-2}
_SMALL_GRADIENT = 1e-3  # gradients below this fraction of the largest are judged relative to that fraction


def _module_dtype_device(module):
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return torch.get_default_dtype(), torch.device("cpu")


def relative_error(a: Tensor, b: Tensor) -> float:
    """‖a − b‖ / ‖b‖ (‖a − b‖ when b is zero).

    Args:
        a: the tensor to judge.
        b: the reference.
    """
    diff = (a.detach().double() - b.detach().double()).norm()
    ref = b.detach().double().norm()
    return float(diff / ref) if ref > 0 else float(diff)


def _private_generators(module):
    generators = []
    if isinstance(module, nn.Module):
        for m in _modules(module):
            _generators(m, generators)
    return generators


def _rng_devices(device):
    return [device.index or 0] if device.type == "cuda" else []


@contextlib.contextmanager
def _left_as_found(module, device):
    """Leaves the buffers of ``module``'s training-mode modules (running statistics, ``num_batches_tracked``,
    spectral-norm vectors), the ``torch.Generator`` attributes of its modules and torch's global RNG (CPU, and
    ``device``'s CUDA generator) as they were."""
    generators = [(g, g.get_state()) for g in _private_generators(module)]
    try:
        with torch.random.fork_rng(devices=_rng_devices(device)), frozen_buffers(module):
            yield
    finally:
        for g, state in generators:
            g.set_state(state)


def reconstruction_error(module: nn.Module, x: Tensor, inverse: bool = False) -> float:
    """Relative error of ``module.inverse(module(x))`` against ``x`` (``inverse=True``: of
    ``module(module.inverse(x))``), computed without a graph, in the module's current modes. A monitor: it leaves
    the module as it found it (the buffers of training-mode modules, such as running statistics and
    ``num_batches_tracked``, the generators of its modules and torch's global RNG), so it does not change the
    training it watches.

    Args:
        module: an invertible module (with ``forward`` and ``inverse``).
        x: a batch.
        inverse: measure ``forward(inverse(x))`` instead.
    """
    with torch.no_grad(), _left_as_found(module, x.device):
        if inverse:
            return relative_error(module(module.inverse(x)), x)
        return relative_error(module.inverse(module(x)), x)


def is_invertible(module: nn.Module, input_shape: Sequence[int], rtol: Optional[float] = None,
                  dtype: Optional[torch.dtype] = None, device: Optional[torch.device] = None, seed: int = 0,
                  eval_mode: bool = True) -> bool:
    """True when ``inverse(forward(x)) ≈ x`` and ``forward(inverse(y)) ≈ y`` for random ``x`` of ``input_shape`` and
    random ``y`` of the output's shape, within relative error ``rtol``. The module's training flags, buffers and the
    global RNG are left as they were.

    Args:
        module: an invertible module.
        input_shape: shape of the random input.
        rtol: tolerance (default by dtype: 1e-10 for float64, 1e-4 for float32).
        dtype, device: of the random input (default: the module's).
        seed: seed of the random input.
        eval_mode: check in eval mode (dropout off, running statistics).
    """
    mdtype, mdevice = _module_dtype_device(module)
    dtype, device = dtype or mdtype, device or mdevice
    rtol = _DEFAULT_RTOL.get(dtype, 1e-4) if rtol is None else rtol
    modes = [(m, m.training) for m in module.modules()] if isinstance(module, nn.Module) else []
    try:
        with _left_as_found(module, torch.device(device)):
            if eval_mode and isinstance(module, nn.Module):
                module.eval()
            gen = torch.Generator().manual_seed(seed)
            x = torch.randn(tuple(input_shape), generator=gen, dtype=dtype).to(device)
            with torch.no_grad():
                y = module(x)
            y_random = torch.randn(tuple(y.shape), generator=gen, dtype=dtype).to(device)
            errors = (reconstruction_error(module, x), reconstruction_error(module, y_random, inverse=True))
    finally:
        for m, training in modes:
            m.training = training
    return all(e <= rtol for e in errors)


# ----------------------------------------------------------------------------------------------------------------
def _tensors_in(obj, seen, depth=0):
    """Tensors reachable from an autograd context attribute (lists, dicts, plain objects; not modules)."""
    if depth > 12 or id(obj) in seen:
        return
    seen.add(id(obj))
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from _tensors_in(v, seen, depth + 1)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors_in(v, seen, depth + 1)
    elif isinstance(obj, nn.Module):
        return
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        yield from _tensors_in(vars(obj), seen, depth + 1)
    elif hasattr(obj, "__slots__"):
        for name in obj.__slots__:
            if hasattr(obj, name):
                yield from _tensors_in(getattr(obj, name), seen, depth + 1)


def graph_saved_bytes(output: Tensor, exclude: Iterable[Tensor] = ()) -> int:
    """Bytes of distinct storages that the autograd graph of ``output`` keeps alive for backward: tensors saved by
    built-in nodes, ``save_for_backward`` of custom functions, and any tensor a custom function keeps on its context
    in other attributes. Storages of ``exclude`` (e.g. the parameters) are not counted.

    Args:
        output: a tensor with a graph.
        exclude: tensors whose storages are not counted.
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    storages, seen_nodes, seen_objs = {}, set(), set()
    stack = [output.grad_fn] if output.grad_fn is not None else []

    def count(t):
        st = t.untyped_storage()
        if st.data_ptr() not in skip and st.nbytes() > 0:
            storages[st.data_ptr()] = st.nbytes()

    while stack:
        node = stack.pop()
        if node is None or node in seen_nodes:
            continue
        seen_nodes.add(node)
        for name in dir(node):
            if name.startswith("_saved_"):
                for t in _tensors_in(getattr(node, name), seen_objs):
                    count(t)
        if hasattr(node, "saved_tensors"):
            try:
                for t in node.saved_tensors:
                    if t is not None:
                        count(t)
            except RuntimeError:
                pass
        if hasattr(node, "__dict__"):
            for t in _tensors_in(vars(node), seen_objs):
                count(t)
        stack.extend(fn for fn, _ in node.next_functions)
    return sum(storages.values())


# ----------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class GradientReport:
    """What :func:`check_gradients` found: relative errors of the memory-saving run against plain autograd.

    Attributes:
        rtol: the tolerance the errors were judged by.
        output_error: of the output (the forward itself; 0 unless the forward differs).
        input_error: of the input's gradient.
        parameter_errors: per parameter name, of its gradient (``inf`` when one run gave a gradient and the other
            none).
        cores: names of the memory-saving cores that were switched off for the reference run.
    """

    rtol: float
    output_error: float
    input_error: float
    parameter_errors: Dict[str, float]
    cores: List[str]

    @property
    def max_error(self) -> float:
        return max([self.output_error, self.input_error] + list(self.parameter_errors.values()))

    @property
    def ok(self) -> bool:
        return self.max_error <= self.rtol

    def worst(self, n: int = 5) -> List[Tuple[str, float]]:
        """The ``n`` largest errors as ``(name, error)``, largest first.

        Args:
            n: how many.
        """
        errors = [("output", self.output_error), ("input gradient", self.input_error)]
        errors += sorted(self.parameter_errors.items(), key=lambda kv: -kv[1])
        return sorted(errors, key=lambda kv: -kv[1])[:n]

    def __str__(self) -> str:
        verdict = "match" if self.ok else "DIFFER"
        lines = [f"memory-saving gradients {verdict} plain autograd: largest relative error {self.max_error:.3g} "
                 f"(tolerance {self.rtol:.3g}; cores: {', '.join(self.cores)})"]
        lines += [f"  {name}: {error:.3g}" for name, error in self.worst()]
        if not self.ok:
            lines.append(
                "  The inputs that backward rebuilds from outputs have lost precision: the map amplifies strongly "
                "(|y|/|x| >> 1, large or unbounded affine scales, many blocks in low precision). Use a smaller "
                "AffineCoupling scale_bound or AdditiveCoupling, normalize inside F and G, keep the stream in float32 "
                "(autocast does), or train this core with memory_saving=False.")
        return "\n".join(lines)


def _grad_error(a, b, floor):
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
        return math.inf
    diff = float((a.detach().double() - b.detach().double()).norm())
    return diff / max(float(b.detach().double().norm()), floor) if diff > 0 else 0.0


def check_gradients(module: nn.Module, x: Tensor, inverse: bool = False,
                    loss_fn: Optional[Callable[[Tensor], Tensor]] = None, rtol: Optional[float] = None,
                    seed: int = 0, raise_on_mismatch: bool = True) -> GradientReport:
    """Compares the gradients of ``module`` on the batch ``x`` with memory saving (as configured) against plain
    autograd (every memory-saving ``ReversibleSequence``/``ReversibleBlock`` inside it switched off), in one call.

    Both runs start from the same buffers and the same RNG state (dropout draws the same masks; ``torch.Generator``
    attributes of its modules start from the same state too) and differentiate the same loss; the module's buffers,
    flags, generators, ``.grad`` and the global RNG are left as they were. Run it on a real
    batch, in the mode you train in, when you build or change a core (new F/G, affine or custom couplings, a larger
    ``scale_bound``, more depth, float16/bfloat16), and again after some training, when weights have grown: every
    method that rebuilds inputs from outputs loses precision when the map amplifies strongly.

    Args:
        module: a module containing one or more memory-saving cores (or a core itself).
        x: a batch for ``module`` (float64 makes the comparison exact up to rounding).
        inverse: check ``module.inverse(x)`` instead of ``module(x)``.
        loss_fn: maps the output to a scalar (default: a fixed random projection, whose gradient reaches every
            output element).
        rtol: tolerance on the relative errors (default by dtype: 1e-8 for float64, 1e-3 for float32, 5e-2 for
            16-bit). An error is relative to the reference gradient's norm, but never to less than 1e-3 times
            the largest gradient norm (gradients that are zero in theory would compare rounding noise).
        seed: RNG seed of both runs and of the default projection.
        raise_on_mismatch: raise a ``ReversibleError`` with the report when an error exceeds ``rtol`` (otherwise
            just return the report).

    Returns:
        A :class:`GradientReport` (``str(report)`` is a readable summary; ``report.ok``).
    """
    cores = [(name, m) for name, m in module.named_modules() if isinstance(m, _Reversible) and m.memory_saving]
    if not cores:
        raise ReversibleError(f"check_gradients: {type(module).__name__} has no memory-saving ReversibleSequence or "
                              f"ReversibleBlock to compare with plain autograd")
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise ReversibleError("check_gradients needs a floating-point input tensor")
    rtol = _GRADIENT_RTOL.get(x.dtype, 1e-3) if rtol is None else float(rtol)
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    buffers = [(m, name) for m in _modules(module) for name, b in m._buffers.items() if b is not None]
    generators = [(g, g.get_state()) for g in _private_generators(module)]
    runs = []
    with torch.random.fork_rng(devices=_rng_devices(x.device)), _restored_after(buffers):
        initial = [(m, name, m._buffers[name].clone()) for m, name in buffers]
        try:
            for saving in (True, False):
                for _, core in cores:
                    core.memory_saving = saving
                with torch.no_grad():
                    for m, name, value in initial:
                        m._buffers[name].copy_(value)
                for g, state in generators:
                    g.set_state(state)
                torch.manual_seed(seed)
                xi = x.detach().clone().requires_grad_(True)
                with torch.enable_grad():
                    y = module.inverse(xi) if inverse else module(xi)
                    if loss_fn is None:
                        g = torch.Generator(device="cpu").manual_seed(seed)
                        w = torch.randn(y.shape, generator=g, dtype=torch.float64).to(device=y.device, dtype=y.dtype)
                        loss = (y * w).sum()
                    else:
                        loss = loss_fn(y)
                grads = torch.autograd.grad(loss, [xi] + [p for _, p in named], allow_unused=True)
                runs.append((y.detach(), grads))
        finally:
            for _, core in cores:
                core.memory_saving = True
            for g, state in generators:
                g.set_state(state)
    (y_saving, g_saving), (y_plain, g_plain) = runs
    norms = [float(g.detach().double().norm()) for g in g_plain if g is not None]
    floor = max(norms, default=0.0) * _SMALL_GRADIENT or 1e-300
    report = GradientReport(
        rtol=rtol,
        output_error=relative_error(y_saving, y_plain),
        input_error=_grad_error(g_saving[0], g_plain[0], floor),
        parameter_errors={n: _grad_error(a, b, floor) for (n, _), a, b in zip(named, g_saving[1:], g_plain[1:])},
        cores=[name or type(module).__name__ for name, _ in cores])
    if raise_on_mismatch and not report.ok:
        raise ReversibleError(str(report))
    return report
