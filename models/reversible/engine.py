"""The memory-saving autograd engine.

A call of a sequence becomes one autograd node per block (``_BlockFunction``), each run without an inner graph.
Only the chain's output is kept. In backward each block rebuilds its input from its output: per half step of a
coupling it evaluates ``fn`` once, with a graph, on the half that passes through unchanged, rebuilds the half that
was written (``unmerge``), and back-propagates merge (in closed form for additive couplings) and ``fn``. So backward
costs one extra evaluation of F and G per block (RevLib's one-pass scheme, not MemCNN's inverse-then-forward); the
rebuilt input is handed to the previous block's node (the "baton"), and each block's parameter gradients go to
autograd as soon as that block is done, so nothing grows with depth.

Parameters are explicit inputs of each node and their gradients are its return values; running statistics are
restored after each recomputation; randomness (dropout) is replayed from the RNG state recorded in forward; the
forward's autocast state is re-entered for the recomputation. ``ReversibleFunction`` is the keep-input variant
(``ReversibleBlock(keep_input=True)``): it keeps the input and recomputes from it, like checkpointing.
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


def _trainable(module):
    """Distinct trainable parameters of ``module``, in order."""
    seen, params = set(), []
    for p in module.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            params.append(p)
    return params


class Chain:
    """The blocks of one call, in the order they are applied, with the direction and parameter bookkeeping."""

    def __init__(self, blocks, inverse, preserve_rng_state):
        self.blocks = list(reversed(blocks)) if inverse else list(blocks)
        self.inverse = inverse
        self.preserve_rng_state = preserve_rng_state
        self.block_params = [_trainable(b) for b in self.blocks]
        self.block_index = [{id(p): j for j, p in enumerate(ps)} for ps in self.block_params]
        seen, self.params = set(), []
        for ps in self.block_params:
            for p in ps:
                if id(p) not in seen:
                    seen.add(id(p))
                    self.params.append(p)

    def _step_params(self, i, block, step):
        """Parameters of one half step (its function's, then the coupling's own merge parameters), their indices
        among block ``i``'s parameters, and whether merge has parameters of its own."""
        merge_params = [p for p in block.merge_parameters() if p.requires_grad]
        params = module_parameters(step.fn) + merge_params
        return params, [self.block_index[i][id(p)] for p in params], bool(merge_params)

    def _block_fn(self, block, inverse):
        return block.inverse if inverse else block

    # forward, no graph ------------------------------------------------------------------------------------------
    def run_block(self, i, parts, tape):
        """Applies block ``i`` to ``parts`` (the input as a list of channel groups); returns the output's parts."""
        block = self.blocks[i]
        if isinstance(block, Coupling):
            parts = _regroup(parts, block.split_sizes(_probe(parts)))
            for step in block.half_steps(self.inverse):
                h = tape.record((i, step.name), step.fn, parts[step.src])
                parts[step.dst] = block.apply_step(step, parts, h, self.inverse)
            return parts
        return [tape.record((i, None), self._block_fn(block, self.inverse), _join(parts))]

    def run(self, x, tape):
        parts = [x]
        for i in range(len(self.blocks)):
            parts = self.run_block(i, parts, tape)
        return _join(parts)

    # backward by reconstruction -----------------------------------------------------------------------------------
    def backward_block(self, i, parts, grads, tape):
        """Back-propagates block ``i`` from its output ``parts`` and their ``grads`` (lists, consumed); returns the
        rebuilt input's parts, their gradients, and the gradients of ``block_params[i]``."""
        block = self.blocks[i]
        param_grads = [None] * len(self.block_params[i])
        if isinstance(block, Coupling):
            sizes = block.split_sizes(_probe(parts))
            parts, grads = _regroup(parts, sizes), _regroup(grads, sizes)
            for step in reversed(block.half_steps(self.inverse)):
                self._backward_step(i, block, step, parts, grads, tape, param_grads)
            return parts, grads, param_grads
        parts, grads = self._backward_generic(i, block, _join(parts), _join(grads), tape, param_grads)
        return parts, grads, param_grads

    def _backward_step(self, i, block, step, parts, grads, tape, param_grads):
        params, idx, merge_has_params = self._step_params(i, block, step)
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
        params = self.block_params[i]
        with frozen_buffers(block):
            with torch.no_grad():
                x = self._block_fn(block, not self.inverse)(y)
            leaf = x.detach().requires_grad_(True)
            with torch.enable_grad():
                out = tape.replay((i, None), self._block_fn(block, self.inverse), leaf)
            got = torch.autograd.grad(out, [leaf] + params, grad_y, allow_unused=True)
        _accumulate(param_grads, range(len(params)), got[1:])
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


_SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they have already "
    "been freed). Specify retain_graph=True if you need to backward through the graph a second time.")


class _Call:
    """What the per-block functions of one call share: the chain, the RNG tape, the forward's autocast state, and
    the baton: block ``i + 1``'s backward hands block ``i`` its rebuilt output here, so nothing per block is kept
    between forward and backward."""

    def __init__(self, chain, tape):
        self.chain, self.tape = chain, tape
        self.autocast = autocast_state()
        self.baton = {}


def run_chain(x, chain):
    """Runs ``chain`` on ``x`` with memory-saving backprop: one autograd node per block, so each block's parameter
    gradients are handed to autograd (and its buffers freed) as soon as that block is done."""
    call = _Call(chain, RNGTape(x.device, enabled=chain.preserve_rng_state))
    parts = [x]
    for i in range(len(chain.blocks)):
        parts = list(_BlockFunction.apply(call, i, len(parts), *parts, *chain.block_params[i]))
    return parts[0]


class _BlockFunction(torch.autograd.Function):
    """``apply(call, i, n_parts, *parts, *params)``: block ``i`` of ``call.chain`` on ``parts``, no graph inside.

    Only the last block keeps anything: the chain's output, as a detached alias on the context (no reference cycle)
    rather than through ``save_for_backward``, so that backward can let go of it as soon as the last block has been
    rebuilt. Its version counter is checked as ``save_for_backward`` would, and without ``retain_graph`` a second
    backward raises autograd's usual error.
    """

    @staticmethod
    def forward(ctx, call, i, n_parts, *args):
        parts, chain = list(args[:n_parts]), call.chain
        with torch.no_grad():
            out = chain.run_block(i, list(parts), call.tape)
            last = i == len(chain.blocks) - 1
            if last:
                out = [_join(out)]
        inputs = {p.untyped_storage().data_ptr() for p in parts}
        out = [o.clone() if o.untyped_storage().data_ptr() in inputs else o for o in out]  # never hand back a view
        ctx.call, ctx.i, ctx.in_sizes = call, i, [p.shape[1] if p.dim() > 1 else None for p in parts]
        if last:
            ctx.output, ctx.output_version = out[0].detach(), out[0]._version
        return tuple(out)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grad_out):
        call, i = ctx.call, ctx.i
        parts = [_take_output(ctx)] if hasattr(ctx, "output_version") else call.baton.pop(i, None)
        if parts is None:
            raise RuntimeError(_SECOND_BACKWARD)
        with autocast_context(call.autocast):
            parts, grads, param_grads = call.chain.backward_block(i, parts, list(grad_out), call.tape)
        if len(ctx.in_sizes) > 1:
            parts, grads = _regroup(parts, ctx.in_sizes), _regroup(grads, ctx.in_sizes)
        else:
            parts, grads = [_join(parts)], [_join(grads)]
        if i > 0:
            call.baton[i - 1] = parts
        del parts
        return (None, None, None, *grads, *param_grads)


class ReversibleFunction(torch.autograd.Function):
    """``apply(x, chain, *params)``: runs ``chain`` on ``x``, keeping ``x`` and recomputing from it in backward
    (``ReversibleBlock(keep_input=True)``); parameters are inputs and their gradients are returned."""

    @staticmethod
    def forward(ctx, x, chain, *params):
        tape = RNGTape(x.device, enabled=chain.preserve_rng_state)
        with torch.no_grad():
            y = chain.run(x, tape)
        if y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
            y = y.clone()  # never hand back a view of the caller's tensor
        ctx.chain, ctx.tape = chain, tape
        ctx.autocast = autocast_state()
        ctx.save_for_backward(x)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        chain = ctx.chain
        param_grads = [None] * len(chain.params)
        with autocast_context(ctx.autocast):
            grad_x = chain.backward_from_input(ctx.saved_tensors[0], grad_y, ctx.tape, param_grads)
        return (grad_x, None, *param_grads)


def _take_output(ctx):
    if not hasattr(ctx, "output"):
        raise RuntimeError(_SECOND_BACKWARD)
    if ctx.output._version != ctx.output_version:
        raise RuntimeError(
            "the output of a reversible sequence was modified in place after the forward, so its input cannot be "
            "rebuilt: modify a clone of it instead (y = y.clone())")
    y = ctx.output
    if not _graph_is_retained():
        del ctx.output
    return y
