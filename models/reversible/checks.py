"""Checks and measurements: invertibility, reconstruction error, and the memory an autograd graph keeps alive."""
import torch
from torch import nn

from .engine import frozen_buffers

_DEFAULT_RTOL = {torch.float64: 1e-10, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 2e-2}


def _module_dtype_device(module):
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return torch.get_default_dtype(), torch.device("cpu")


def relative_error(a, b):
    """‖a − b‖ / ‖b‖ (‖a − b‖ when b is zero)."""
    diff = (a.detach().double() - b.detach().double()).norm()
    ref = b.detach().double().norm()
    return float(diff / ref) if ref > 0 else float(diff)


def reconstruction_error(module, x, inverse=False):
    """Relative error of ``module.inverse(module(x))`` against ``x`` (``inverse=True``: of ``module(module.inverse(x))``),
    computed without a graph."""
    with torch.no_grad():
        if inverse:
            return relative_error(module(module.inverse(x)), x)
        return relative_error(module.inverse(module(x)), x)


def is_invertible(module, input_shape, rtol=None, dtype=None, device=None, seed=0, eval_mode=True):
    """True when ``inverse(forward(x)) ≈ x`` and ``forward(inverse(y)) ≈ y`` for random ``x`` of ``input_shape`` and
    random ``y`` of the output's shape, within relative error ``rtol`` (default by dtype: 1e-10 for float64, 1e-4
    for float32). The module's training flags, buffers and the global RNG are left as they were."""
    mdtype, mdevice = _module_dtype_device(module)
    dtype, device = dtype or mdtype, device or mdevice
    rtol = _DEFAULT_RTOL.get(dtype, 1e-4) if rtol is None else rtol
    modes = [(m, m.training) for m in module.modules()] if isinstance(module, nn.Module) else []
    try:
        with torch.random.fork_rng(devices=[]), frozen_buffers(module):
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


def graph_saved_bytes(output, exclude=()):
    """Bytes of distinct storages that the autograd graph of ``output`` keeps alive for backward: tensors saved by
    built-in nodes, ``save_for_backward`` of custom functions, and any tensor a custom function keeps on its context
    in other attributes. Storages of ``exclude`` (e.g. the parameters) are not counted."""
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
