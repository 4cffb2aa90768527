"""The memory-saving autograd engine.

``ReversibleFunction`` runs a chain of invertible blocks without building a graph, keeps only the chain's output,
and in backward walks the chain in reverse: per half step of a coupling it evaluates ``fn`` once, with a graph, on the
half that passes through unchanged, rebuilds the half that was written (``unmerge``), re-applies ``merge`` on a leaf
copy of it and back-propagates that small local graph. So backward costs one extra evaluation of F and G per block
(RevLib's one-pass scheme, not MemCNN's inverse-then-forward), and nothing per block stays alive between forward
and backward.

Parameters are explicit inputs of the function and their gradients are its return values; running statistics are
restored after each recomputation; randomness (dropout) is replayed from the RNG state recorded in forward; the
forward's autocast state is re-entered for the recomputation.
"""
import contextlib

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .couplings import Coupling, ReversibleError

_AUTOCAST_DEVICES = ("cpu", "cuda")


# ----------------------------------------------------------------------------------------------------------------
# Randomness: record the RNG state before each function evaluation that consumed randomness, replay it later.
class RNGTape:
    """Records the CPU (and, for CUDA inputs, CUDA) RNG state before a call and replays it on recomputation.

    A state is kept only when the call actually consumed randomness (the generator state changed), so blocks
    without dropout cost nothing on the tape.
    """

    def __init__(self, device, enabled=True):
        self.enabled = enabled
        self.cuda_device = device if device.type == "cuda" else None
        self.states = {}

    def _state(self):
        cuda = torch.cuda.get_rng_state(self.cuda_device) if self.cuda_device is not None else None
        return torch.get_rng_state(), cuda

    def record(self, key, fn, *args):
        if not self.enabled:
            return fn(*args)
        before = self._state()
        out = fn(*args)
        after = self._state()
        changed = not torch.equal(before[0], after[0]) or (
            before[1] is not None and not torch.equal(before[1], after[1]))
        if changed:
            self.states[key] = before
        return out

    def replay(self, key, fn, *args):
        state = self.states.get(key)
        if state is None:
            return fn(*args)
        cuda_devices = [self.cuda_device] if self.cuda_device is not None else []
        with torch.random.fork_rng(devices=cuda_devices):
            torch.set_rng_state(state[0])
            if state[1] is not None:
                torch.cuda.set_rng_state(state[1], self.cuda_device)
            return fn(*args)


@contextlib.contextmanager
def frozen_buffers(fn):
    """Restores the buffers (BatchNorm/InstanceNorm running statistics, counters) of every module of ``fn`` that is
    in training mode, so a recomputation leaves them exactly as the original forward left them."""
    saved = []
    if isinstance(fn, nn.Module):
        saved = [(b, b.clone()) for m in fn.modules() if m.training for b in m.buffers(recurse=False)]
    try:
        yield
    finally:
        if saved:
            with torch.no_grad():
                for buf, value in saved:
                    buf.copy_(value)


def autocast_state():
    return [(dev, torch.is_autocast_enabled(dev), torch.get_autocast_dtype(dev)) for dev in _AUTOCAST_DEVICES]


def autocast_context(state):
    stack = contextlib.ExitStack()
    for dev, enabled, dtype in state:
        if dev == "cuda" and not torch.cuda.is_available():
            continue
        stack.enter_context(torch.autocast(dev, dtype=dtype, enabled=enabled))
    return stack


def module_parameters(fn):
    return [p for p in fn.parameters() if p.requires_grad] if isinstance(fn, nn.Module) else []


# ----------------------------------------------------------------------------------------------------------------
# The chain of blocks, run as a list of tensor "parts" so that consecutive couplings with the same split pass their
# halves along without concatenating and re-splitting.
def _regroup(parts, sizes):
    """``parts`` re-split along dim 1 into ``sizes`` (``None``: one whole tensor), reusing them if they fit."""
    if sizes is None:
        return parts if len(parts) == 1 else [torch.cat(parts, dim=1)]
    if len(parts) == len(sizes) and all(p.shape[1] == s for p, s in zip(parts, sizes)):
        return list(parts)
    whole = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
    if whole.dim() < 2 or whole.shape[1] != sum(sizes):
        raise ReversibleError(f"cannot split a tensor of shape {tuple(whole.shape)} into channel groups {sizes}")
    return list(torch.split(whole, sizes, dim=1))


def _join(parts):
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class Chain:
    """The blocks of one call, in the order they are applied, with the direction and parameter bookkeeping."""

    def __init__(self, blocks, inverse, params, preserve_rng_state):
        self.blocks = list(reversed(blocks)) if inverse else list(blocks)
        self.inverse = inverse
        self.params = params
        self.index = {id(p): i for i, p in enumerate(params)}
        self.preserve_rng_state = preserve_rng_state

    def _step_params(self, block, step):
        """Parameters of one half step (its function's, then the coupling's own merge parameters), their indices
        in the function's inputs, and whether merge has parameters of its own."""
        merge_params = [p for p in block.merge_parameters() if p.requires_grad]
        params = module_parameters(step.fn) + merge_params
        return params, [self.index[id(p)] for p in params], bool(merge_params)

    def _block_fn(self, block, inverse):
        return block.inverse if inverse else block

    # forward, no graph ------------------------------------------------------------------------------------------
    def run(self, x, tape):
        parts = [x]
        for i, block in enumerate(self.blocks):
            if isinstance(block, Coupling):
                parts = _regroup(parts, block.split_sizes(_probe(parts)))
                for step in block.half_steps(self.inverse):
                    h = tape.record((i, step.name), step.fn, parts[step.src])
                    parts[step.dst] = block.apply_step(step, parts, h, self.inverse)
            else:
                parts = [tape.record((i, None), self._block_fn(block, self.inverse), _join(parts))]
        return _join(parts)

    # backward by reconstruction -----------------------------------------------------------------------------------
    def backward(self, y, grad_y, tape, param_grads):
        """Walks the chain backwards from output ``y``; returns the gradient of the chain's input."""
        parts, grads = [y], [grad_y]
        del y  # the halves replace it block by block; let its memory go once both are rebuilt
        for i in reversed(range(len(self.blocks))):
            block = self.blocks[i]
            if isinstance(block, Coupling):
                sizes = block.split_sizes(_probe(parts))
                parts, grads = _regroup(parts, sizes), _regroup(grads, sizes)
                for step in reversed(block.half_steps(self.inverse)):
                    self._backward_step(i, block, step, parts, grads, tape, param_grads)
            else:
                parts, grads = self._backward_generic(i, block, _join(parts), _join(grads), tape, param_grads)
        return _join(grads)

    def _backward_step(self, i, block, step, parts, grads, tape, param_grads):
        params, idx, merge_has_params = self._step_params(block, step)
        src = parts[step.src].detach().requires_grad_(True)
        grad_out = grads[step.dst]
        # Running statistics are restored only after the local backward: BatchNorm's backward reads them.
        with frozen_buffers(step.fn):
            with torch.enable_grad():
                h = tape.replay((i, step.name), step.fn, src)
            with torch.no_grad():  # rebuild the half this step wrote
                written_input = block.apply_step(step, parts, h.detach(), not self.inverse)
            shortcut = None if merge_has_params else block.merge_vjp(written_input, h, grad_out, self.inverse)
            if shortcut is not None:  # merge's gradient is known in closed form: back-propagate through fn only
                grad_in, grad_h = shortcut
                got = (grad_in,) + (torch.autograd.grad(h, [src] + params, grad_h, allow_unused=True)
                                    if h.requires_grad else (None,) * (1 + len(params)))
            else:  # the small local graph: written half = merge(leaf, h)
                leaf = written_input.detach().requires_grad_(True)
                with torch.enable_grad():
                    out = block.unmerge(leaf, h) if self.inverse else block.merge(leaf, h)
                got = torch.autograd.grad(out, [leaf, src] + params, grad_out, allow_unused=True)
        del h
        parts[step.dst] = written_input
        grads[step.dst] = got[0] if got[0] is not None else torch.zeros_like(written_input)
        if got[1] is not None:
            grads[step.src] = _add_owned(got[1], grads[step.src], (grad_out, grads[step.dst]))
        _accumulate(param_grads, idx, got[2:])

    def _backward_generic(self, i, block, y, grad_y, tape, param_grads):
        # A generic invertible module: rebuild its input with the opposite map, then recompute with a graph.
        params = module_parameters(block)
        with frozen_buffers(block):
            with torch.no_grad():
                x = self._block_fn(block, not self.inverse)(y)
            leaf = x.detach().requires_grad_(True)
            with torch.enable_grad():
                out = tape.replay((i, None), self._block_fn(block, self.inverse), leaf)
            got = torch.autograd.grad(out, [leaf] + params, grad_y, allow_unused=True)
        _accumulate(param_grads, [self.index[id(p)] for p in params], got[1:])
        grad_x = got[0] if got[0] is not None else torch.zeros_like(x)
        return [x], [grad_x]

    # backward by recomputation from a kept input (ReversibleBlock(keep_input=True)) ------------------------------
    def backward_from_input(self, x, grad_y, tape, param_grads):
        leaf = x.detach().requires_grad_(True)
        with contextlib.ExitStack() as stack:
            for block in self.blocks:
                stack.enter_context(frozen_buffers(block))
            with torch.enable_grad():
                out = self.run(leaf, _ReplayTape(tape))
            got = torch.autograd.grad(out, [leaf] + self.params, grad_y, allow_unused=True)
        _accumulate(param_grads, range(len(self.params)), got[1:])
        return got[0]


class _ReplayTape:
    def __init__(self, tape):
        self.tape = tape

    def record(self, key, fn, *args):
        return self.tape.replay(key, fn, *args)


def _probe(parts):
    """A stand-in with the joined tensor's shape, to size the split without concatenating."""
    if len(parts) == 1:
        return parts[0]
    shape = list(parts[0].shape)
    shape[1] = sum(p.shape[1] for p in parts)
    return _Shape(shape)


class _Shape:
    def __init__(self, shape):
        self.shape = torch.Size(shape)

    def dim(self):
        return len(self.shape)


def _add_owned(fresh, other, avoid):
    """``fresh + other``, in place into ``fresh`` (a gradient autograd just made) when it aliases nothing else."""
    ptr = fresh.untyped_storage().data_ptr()
    if fresh.requires_grad or any(t.untyped_storage().data_ptr() == ptr for t in (other,) + tuple(avoid)):
        return fresh + other
    return fresh.add_(other)


def _accumulate(param_grads, idx, grads):
    for j, g in zip(idx, grads):
        if g is None:
            continue
        param_grads[j] = g if param_grads[j] is None else param_grads[j] + g


# ----------------------------------------------------------------------------------------------------------------
def _graph_is_retained():
    """Whether the running backward keeps the graph (retain_graph=True); True when torch cannot tell us."""
    try:
        from torch._C._autograd import _get_current_graph_task_keep_graph
    except ImportError:  # older torch: be conservative and keep the output alive
        return True
    return _get_current_graph_task_keep_graph()


class ReversibleFunction(torch.autograd.Function):
    """``apply(x, chain, keep_input, *params)``: runs ``chain`` on ``x`` with memory-saving backprop.

    The output is kept on the context as a detached alias (no reference cycle) rather than through
    ``save_for_backward``, so that backward can let go of it as soon as the last block has been rebuilt instead of
    holding it to the end: one block-output less at the peak. Its version counter is checked, as
    ``save_for_backward`` would, and without ``retain_graph`` a second backward raises autograd's usual error.
    """

    @staticmethod
    def forward(ctx, x, chain, keep_input, *params):
        tape = RNGTape(x.device, enabled=chain.preserve_rng_state)
        with torch.no_grad():
            y = chain.run(x, tape)
        if y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
            y = y.clone()  # never hand back (or keep) a view of the caller's tensor
        ctx.chain, ctx.tape, ctx.keep_input = chain, tape, keep_input
        ctx.autocast = autocast_state()
        if keep_input:
            ctx.save_for_backward(x)
        else:
            ctx.output, ctx.output_version = y.detach(), y._version
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        chain = ctx.chain
        param_grads = [None] * len(chain.params)
        with autocast_context(ctx.autocast):
            if ctx.keep_input:
                grad_x = chain.backward_from_input(ctx.saved_tensors[0], grad_y, ctx.tape, param_grads)
            else:
                grad_x = chain.backward(_take_output(ctx), grad_y, ctx.tape, param_grads)
        return (grad_x, None, None, *param_grads)


def _take_output(ctx):
    if not hasattr(ctx, "output"):
        raise RuntimeError(
            "Trying to backward through the graph a second time (or directly access saved tensors after they have "
            "already been freed). Specify retain_graph=True if you need to backward through the graph a second time.")
    if ctx.output._version != ctx.output_version:
        raise RuntimeError(
            "the output of a reversible sequence was modified in place after the forward, so its input cannot be "
            "rebuilt: modify a clone of it instead (y = y.clone())")
    y = ctx.output
    if not _graph_is_retained():
        del ctx.output
    return y
