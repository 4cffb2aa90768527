"""The memory-saving autograd engine.

A call of a sequence becomes one autograd node per block (``_BlockFunction``), each run without an inner graph.
Only the chain's output is kept. In backward each block rebuilds its input from its output: per half step of a
coupling it evaluates ``fn`` once, with a graph, on the half that passes through unchanged, rebuilds the half that
was written (``unmerge``), and back-propagates merge (in closed form for additive couplings) and ``fn``. So backward
costs one extra evaluation of F and G per block (RevLib's one-pass scheme, not MemCNN's inverse-then-forward); the
rebuilt input is handed to the previous block's node (the "baton"), and each block's parameter gradients go to
autograd as soon as that block is done, so nothing grows with depth.

Parameters are explicit inputs of each node and their gradients are its return values (nothing is written to
``.grad`` by the engine); the forward's autocast state is re-entered for the recomputation. What each function of a
call needs is gathered once when the call starts (``FnState``: its parameters, its buffers by role).

The recomputation must see what the forward saw. The tape (``RNGTape``) keeps, per function call, only what that
call changed and read:

* randomness (dropout): the RNG state before a call that consumed randomness, replayed on recomputation;
* state that a call both updates and reads (the ``u``/``v`` vectors of spectral normalization, in either API; any
  buffer of a module in training mode other than a BatchNorm/InstanceNorm, whose training output does not read its
  running statistics): its value before the call, kept only when the call changed it, and put back before the
  recomputation, so that the recomputation starts from the state the forward started from;
* all buffers of modules in training mode (running statistics, counters) are restored after each recomputation, so
  they end exactly as the forward left them;
* modules are put back in the training mode they had in the forward (``model.eval()`` before backward).

A generic invertible block (any module with ``inverse``: a nested ``ReversibleSequence``, an iUNet level) is rebuilt
with its ``inverse``, which calls its couplings' F and G in the opposite order of the forward. While such a block
runs forward, a scope (``_NestedRecorder``) records each of those calls (RNG state, changed state), and while its
input is rebuilt a replaying scope hands each call its record, last in first out. The block is then recomputed
with a graph from the state it started from.

What cannot be recomputed is refused with a ``ReversibleError`` rather than given a wrong gradient: tensors that
require grad but are not parameters of the function (closures over outside tensors; found by a walk of each local
graph), parameters or buffers swapped between forward and backward (``torch.func.functional_call``), parameters
modified in place between forward and backward, and second-order gradients (``create_graph=True``).
``torch.compile`` does not trace into the engine (a graph break): the
core runs eagerly, F and G may be compiled on their own. Parameter hooks run once, on the gradient autograd
accumulates: the local backward of each block runs with them switched off. ``ReversibleFunction`` is the keep-input
variant (``ReversibleBlock(keep_input=True)``): it keeps the input and recomputes from it, like checkpointing.
"""
import contextlib
import threading
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

from .couplings import _SCOPE, Coupling, ReversibleError

_AUTOCAST_DEVICES = ("cpu", "cuda")
_ACCUMULATE_GRAD = type(torch.empty(1, requires_grad=True).view(1).grad_fn.next_functions[0][0])
_disable_dynamo = getattr(torch, "_disable_dynamo", None) or (lambda fn: fn)  # imports dynamo lazily, when called


def _memory_saving_off_hint():
    return "run the core with memory_saving=False (ReversibleBlock: disable=True)"


def _text(what):
    """Error-message subjects are built only when an error is raised: ``what`` may be a string or a callable."""
    return what() if callable(what) else what


def _substituted_parameter(what, module, name):
    return (f"{what}: {module}.{name} is a plain tensor where a parameter belongs (torch.func.functional_call with "
            f"substituted parameters, or a tensor put in a module's _parameters): a memory-saving core recomputes "
            f"with the module's own parameters in backward, so it cannot honour the substitution; "
            f"{_memory_saving_off_hint()} for this call")


# ----------------------------------------------------------------------------------------------------------------
# What the engine needs to know about each function of a call.
class FnState:
    """Parameters and buffers of one function (F, G, or a generic block), gathered in one pass over its modules
    when a call starts.

    ``params``: its distinct trainable parameters (plus, for a coupling's half step, the coupling's own merge
    parameters). ``train_buffers``: ``(module, name)`` of every buffer of a module in training mode, restored after
    each recomputation. ``watched``: those a call may both update and read (modules in training mode that are not
    BatchNorm/InstanceNorm): their value before each call is kept when the call changes them. ``fixed``:
    ``(kind, module, name, id, version)`` of the tensors the function reads, which must still be the same tensors in
    backward (its parameters, the buffers of its modules in eval mode, watched buffers; ``torch.func.functional_call``
    swaps them for the call only) and, for parameters, unmodified since (``version``).
    """

    __slots__ = ("params", "param_ids", "all_param_ids", "idx", "train_buffers", "watched", "fixed",
                 "merge_params", "modes")

    def __init__(self, fn: Any, what: str) -> None:
        params, seen, all_ids = [], set(), set()
        train, watched, fixed, modes = [], [], [], []
        if isinstance(fn, nn.Module):
            for m in _modules(fn):
                modes.append((m, m.training))
                for name, p in m._parameters.items():
                    if p is None:
                        continue
                    if not isinstance(p, nn.Parameter):
                        raise ReversibleError(_substituted_parameter(_text(what), type(m).__name__, name))
                    all_ids.add(id(p))
                    fixed.append(("parameter", m, name, id(p), p._version))
                    if p.requires_grad and id(p) not in seen:
                        seen.add(id(p))
                        params.append(p)
                training, norm = m.training, isinstance(m, _NormBase)
                for name, b in m._buffers.items():
                    if b is None:
                        continue
                    if training:
                        train.append((m, name))
                        if norm:
                            continue  # a training-mode norm updates its running statistics but does not read them
                        watched.append((m, name))
                    fixed.append(("buffer", m, name, id(b), None))  # (DDP re-broadcasts buffers in place)
        self.params, self.param_ids, self.all_param_ids = params, seen, all_ids
        self.train_buffers, self.watched, self.fixed, self.modes = train, watched, fixed, modes
        self.idx, self.merge_params = None, False

    def add_params(self, extra):
        for p in extra:
            if id(p) not in self.param_ids:
                self.param_ids.add(id(p))
                self.params.append(p)

    def check_unchanged(self, record, what):
        """Raises when a parameter or buffer that the forward read is no longer the same tensor, or was modified in
        place since (the recomputation would read other values)."""
        for kind, m, name, ident, version in self.fixed:
            t = (m._parameters if kind == "parameter" else m._buffers).get(name)
            if id(t) != ident:
                if kind == "buffer" and record is not None and any(
                        bm is m and bn == name for bm, bn, _ in record[1] or ()):
                    continue  # a buffer the forward replaced itself: its snapshot is put back
                raise ReversibleError(
                    f"{_text(what)}: the {kind} {type(m).__name__}.{name} is not the tensor the forward used "
                    f"(torch.func.functional_call with substituted {kind}s, or a {kind} replaced between forward and "
                    f"backward): backward recomputes with the module's own tensors, so it would give other "
                    f"gradients; {_memory_saving_off_hint()} for this call")
            if version is not None and t._version != version:
                raise ReversibleError(
                    f"{_text(what)}: the {kind} {type(m).__name__}.{name} was modified in place between the forward "
                    f"and the backward (an optimizer step or load_state_dict before backward?): the recomputation "
                    f"would read the new values. Call backward first (plain autograd refuses this too)")


def _modules(root):
    """The modules of ``root``, each once, parents before children (as ``root.modules()``, without building their
    names)."""
    out, seen, stack = [], {id(root)}, [root]
    while stack:
        m = stack.pop()
        out.append(m)
        children = m._modules
        if children:
            for c in reversed(list(children.values())):
                if c is not None and id(c) not in seen:
                    seen.add(id(c))
                    stack.append(c)
    return out


def _trainable(module, what):
    """Distinct trainable parameters of ``module``."""
    seen, params = set(), []
    for m in _modules(module):
        for name, p in m._parameters.items():
            if p is None:
                continue
            if not isinstance(p, nn.Parameter):
                raise ReversibleError(_substituted_parameter(_text(what), type(m).__name__, name))
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params


# ----------------------------------------------------------------------------------------------------------------
# Buffers: snapshots of state a call changes, and restoring what a recomputation changes.
def _snapshot(pairs):
    """``(module, name, tensor, version, copy)`` of each buffer, before a call."""
    out = []
    for m, name in pairs:
        b = m._buffers.get(name)
        if b is not None:
            out.append((m, name, b, b._version, b.detach().clone()))
    return out


def _changed(snapshot):
    """``(module, name, value before)`` of the snapshot's buffers that the call updated or replaced."""
    return [(m, name, copy) for m, name, b, version, copy in snapshot
            if m._buffers.get(name) is not b or b._version != version]


def _put_back(kept):
    """Sets buffers to the values kept before a call (in place where the shape allows)."""
    with torch.no_grad():
        for m, name, value in kept:
            cur = m._buffers.get(name)
            if cur is not None and cur.shape == value.shape and cur.dtype == value.dtype:
                cur.copy_(value)
            else:
                m._buffers[name] = value.clone()


@contextlib.contextmanager
def _restored_after(pairs):
    """Restores the listed buffers (identity and value) on exit."""
    saved = [(m, name, m._buffers[name], m._buffers[name].clone()) for m, name in pairs
             if m._buffers.get(name) is not None]
    try:
        yield
    finally:
        if saved:
            with torch.no_grad():
                for m, name, buf, value in saved:
                    m._buffers[name] = buf
                    buf.copy_(value)


@contextlib.contextmanager
def _forward_modes(modes):
    """Puts modules back in the training mode of the forward for a recomputation (``model.eval()`` between forward
    and backward must not change the gradients)."""
    flipped = [(m, training) for m, training in modes if m.training != training]
    for m, training in flipped:
        m.training = training
    try:
        yield
    finally:
        for m, training in flipped:
            m.training = not training


def frozen_buffers(fn):
    """Context manager that restores the buffers (BatchNorm/InstanceNorm running statistics, counters, spectral-norm
    vectors) of every module of ``fn`` that is in training mode, so a recomputation leaves them exactly as the
    original forward left them."""
    pairs = []
    if isinstance(fn, nn.Module):
        pairs = [(m, name) for m in _modules(fn) if m.training for name, b in m._buffers.items() if b is not None]
    return _restored_after(pairs)


def _watched_buffers(fn):
    if not isinstance(fn, nn.Module):
        return []
    return [(m, name) for m in _modules(fn) if m.training and m._buffers and not isinstance(m, _NormBase)
            for name, b in m._buffers.items() if b is not None]


# ----------------------------------------------------------------------------------------------------------------
# The scope of couplings run outside the engine (inside generic blocks).
@contextlib.contextmanager
def _scoped(scope):
    previous = getattr(_SCOPE, "current", None)
    _SCOPE.current = scope
    try:
        yield
    finally:
        _SCOPE.current = previous


class _NestedRecorder:
    """Records, while a generic block runs forward, each F/G call of the couplings inside it: per (coupling, step) a
    list of ``(rng state or None, changed buffers)`` or ``None`` when the call changed nothing."""

    def __init__(self, tape):
        self.tape, self.calls, self.used = tape, {}, False

    def call(self, coupling, step, x):
        snapshot = _snapshot(_watched_buffers(step.fn))
        before = self.tape.rng_state()
        with _scoped(None):  # calls nested inside F are reproduced by replaying F's own RNG state
            out = step.fn(x)
        rng = before if self.tape.rng_changed(before) else None
        kept = _changed(snapshot)
        entry = (rng, kept) if rng is not None or kept else None
        self.calls.setdefault((id(coupling), step.name), []).append(entry)
        self.used = self.used or entry is not None
        return out


class _NestedReplayer:
    """Hands each F/G call of a generic block's inverse the record of its forward call, last in first out (an
    inverse undoes the forward's calls in reverse order)."""

    def __init__(self, recorder):
        self.tape, self.calls, self.cursor = recorder.tape, recorder.calls, {}

    def call(self, coupling, step, x):
        key = (id(coupling), step.name)
        entries = self.calls.get(key, ())
        n = self.cursor.get(key, len(entries)) - 1
        entry = None
        if n >= 0:
            self.cursor[key] = n
            entry = entries[n]
        if entry is None:
            with _scoped(None):
                return step.fn(x)
        rng, kept = entry
        if kept:
            _put_back(kept)
        with self.tape.replaying(rng), _scoped(None):
            return step.fn(x)


# ----------------------------------------------------------------------------------------------------------------
class RNGTape:
    """The tape of one call: per function call (key), what its recomputation needs to see what the forward saw.

    A record ``(rng, kept, nested)`` is kept only for calls that consumed randomness (``rng``: the CPU and, for CUDA
    inputs, CUDA RNG state before the call), changed state they read (``kept``: the values before the call), or, for
    generic blocks, whose inner coupling calls did (``nested``). Calls that do neither cost nothing on the tape.

    Args:
        device: the device of the call's input (its CUDA RNG is recorded too).
        enabled: record and replay randomness (``preserve_rng_state``).
    """

    def __init__(self, device: torch.device, enabled: bool = True) -> None:
        self.enabled = enabled
        self.cuda_device = device if device.type == "cuda" else None
        self.states = {}

    def _state(self):
        cuda = torch.cuda.get_rng_state(self.cuda_device) if self.cuda_device is not None else None
        return torch.get_rng_state(), cuda

    def rng_state(self):
        return self._state() if self.enabled else None

    def rng_changed(self, before):
        if before is None:
            return False
        after = self._state()
        return not torch.equal(before[0], after[0]) or (before[1] is not None and not torch.equal(before[1], after[1]))

    @contextlib.contextmanager
    def replaying(self, state):
        if state is None:
            yield
            return
        cuda_devices = [self.cuda_device] if self.cuda_device is not None else []
        with torch.random.fork_rng(devices=cuda_devices):
            torch.set_rng_state(state[0])
            if state[1] is not None:
                torch.cuda.set_rng_state(state[1], self.cuda_device)
            yield

    def record(self, key, fn, x, state=None, nested=False):
        snapshot = _snapshot(state.watched) if state is not None and state.watched else ()
        before = self.rng_state()
        recorder = _NestedRecorder(self) if nested else None
        with _scoped(recorder):
            out = fn(x)
        rng = before if self.rng_changed(before) else None
        kept = _changed(snapshot) if snapshot else None
        nested_used = recorder if recorder is not None and recorder.used else None
        if rng is not None or kept or nested_used is not None:
            self.states[key] = (rng, kept or None, nested_used)
        return out

    def replay(self, key, fn, x):
        record = self.states.get(key)
        if record is None:
            with _scoped(None):
                return fn(x)
        if record[1]:
            _put_back(record[1])
        with self.replaying(record[0]), _scoped(None):
            return fn(x)


def autocast_state():
    return [(dev, torch.is_autocast_enabled(dev), torch.get_autocast_dtype(dev)) for dev in _AUTOCAST_DEVICES]


def autocast_context(state):
    stack = contextlib.ExitStack()
    for dev, enabled, dtype in state:
        if dev == "cuda" and not torch.cuda.is_available():
            continue
        stack.enter_context(torch.autocast(dev, dtype=dtype, enabled=enabled))
    return stack


# ----------------------------------------------------------------------------------------------------------------
# Checks of each local graph, and parameter hooks.
def _check_graph(out, leaves, state, what, block_params=()):
    """Raises when the recomputation ``out`` depends on a tensor that requires grad but is neither one of ``leaves``
    (the rebuilt inputs) nor one of the function's parameters: its gradient could not be returned."""
    root = out.grad_fn
    if root is None:
        return
    leaf_ids = {id(t) for t in leaves}
    stack, seen = [root], {root}
    while stack:
        node = stack.pop()
        if type(node) is _ACCUMULATE_GRAD:
            t = node.variable
            if id(t) not in state.param_ids and id(t) not in leaf_ids:
                mine = any(p is t for p in block_params) or id(t) in state.all_param_ids
                kind = "a parameter of the block that is not registered in this function" if mine else \
                    "a tensor that requires grad"
                raise ReversibleError(
                    f"{_text(what)} uses {kind} (shape {tuple(t.shape)}) that is not one of its own parameters: a "
                    f"closure over an outside tensor (a conditioning code, an unregistered module) or parameters "
                    f"swapped in by torch.func.functional_call. A memory-saving core has no way to return its "
                    f"gradient: make it an nn.Parameter of a module inside this function, pass it in through the "
                    f"input, or {_memory_saving_off_hint()}")
            continue
        for nxt, _ in node.next_functions:
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)


@contextlib.contextmanager
def _hooks_suspended(params):
    """Switches off the tensor hooks of ``params`` during a local backward: autograd runs them once, on the
    gradient it accumulates from the returned values."""
    hooked = [(hooks, dict(hooks)) for hooks in (p._backward_hooks for p in params) if hooks]
    if not hooked:
        yield
        return
    for hooks, _ in hooked:
        hooks.clear()
    try:
        yield
    finally:
        for hooks, saved in hooked:
            hooks.update(saved)


_RECOMPUTING = threading.local()


def is_recomputing() -> bool:
    """True while the memory-saving engine recomputes F, G or a block in backward (on this thread).

    Forward hooks of F and G run again during that recomputation, as with ``torch.utils.checkpoint``; a hook that
    counts, logs or stores activations can return early when this is True.
    """
    return getattr(_RECOMPUTING, "depth", 0) > 0


@contextlib.contextmanager
def _recomputing():
    _RECOMPUTING.depth = getattr(_RECOMPUTING, "depth", 0) + 1
    try:
        yield
    finally:
        _RECOMPUTING.depth -= 1


_SECOND_ORDER = (
    "second-order gradients (create_graph=True: torch.autograd.functional.hvp/hessian, gradient penalties through "
    "the core) are not supported through a memory-saving core, whose backward is not differentiable: "
    + _memory_saving_off_hint() + " for this computation")


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
    """The blocks of one call, in the order they are applied, with the direction and what the engine needs to know
    about each function (``FnState``), gathered once per call."""

    def __init__(self, blocks, inverse, preserve_rng_state, keep_input=False):
        self.blocks = list(reversed(blocks)) if inverse else list(blocks)
        self.inverse = inverse
        self.preserve_rng_state = preserve_rng_state
        self.nested = not keep_input  # generic blocks are rebuilt with their inverse (not when the input is kept)
        self.block_params, self.steps = [], []
        seen, self.params = set(), []
        for i, block in enumerate(self.blocks):
            if getattr(block, "_is_replica", False):
                raise ReversibleError(
                    f"{self.describe(i)} is an nn.DataParallel replica, whose parameters are copies rather than "
                    f"parameters: the memory-saving engine cannot hand their gradients back. Use "
                    f"DistributedDataParallel (one process per GPU), or {_memory_saving_off_hint()}")
            if isinstance(block, Coupling):
                steps = {step.name: FnState(step.fn, self.where(i, step.name)) for step in block.half_steps()}
                params = _trainable(block, self.where(i))
                inner = set().union(*(s.all_param_ids for s in steps.values()))
                merge = [p for p in params if id(p) not in inner]
                for s in steps.values():
                    s.add_params(merge)
                    s.merge_params = bool(merge)
            else:
                state = FnState(block, self.where(i))
                params = state.params
                steps = {None: state}
            index = {id(p): j for j, p in enumerate(params)}
            for s in steps.values():
                s.idx = [index[id(p)] for p in s.params]
            self.block_params.append(params)
            self.steps.append(steps)
            for p in params:
                if id(p) not in seen:
                    seen.add(id(p))
                    self.params.append(p)

    def describe(self, i, step_name=None):
        block = self.blocks[i]
        number = i if not self.inverse else len(self.blocks) - 1 - i
        where = f"block {number} ({type(block).__name__})"
        return f"{step_name} of {where}" if step_name else where

    def where(self, i, step_name=None):
        """``describe``, deferred until an error message needs it."""
        return lambda: self.describe(i, step_name)

    def _block_fn(self, block, inverse):
        return block.inverse if inverse else block

    # forward, no graph ------------------------------------------------------------------------------------------
    def run_block(self, i, parts, tape):
        """Applies block ``i`` to ``parts`` (the input as a list of channel groups); returns the output's parts."""
        block = self.blocks[i]
        if isinstance(block, Coupling):
            parts = _regroup(parts, block.split_sizes(_probe(parts)))
            for step in block.half_steps(self.inverse):
                h = tape.record((i, step.name), step.fn, parts[step.src], self.steps[i][step.name])
                parts[step.dst] = block.apply_step(step, parts, h, self.inverse)
            return parts
        return [tape.record((i, None), self._block_fn(block, self.inverse), _join(parts), self.steps[i][None],
                            nested=self.nested)]

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
        state, key, what = self.steps[i][step.name], (i, step.name), self.where(i, step.name)
        state.check_unchanged(tape.states.get(key), what)
        params = state.params
        src = parts[step.src].detach().requires_grad_(True)
        grad_out = grads[step.dst]
        # Running statistics are restored only after the local backward: BatchNorm's backward reads them.
        with _forward_modes(state.modes), _restored_after(state.train_buffers):
            with torch.enable_grad():
                h = tape.replay(key, step.fn, src)
            with torch.no_grad():  # rebuild the half this step wrote
                written_input = block.apply_step(step, parts, h.detach(), not self.inverse)
            shortcut = None if state.merge_params else block.merge_vjp(written_input, h, grad_out, self.inverse)
            with _hooks_suspended(params):
                if shortcut is not None:  # merge's gradient is known in closed form: back-propagate through fn only
                    grad_in, grad_h = shortcut
                    if h.requires_grad:
                        _check_graph(h, (src,), state, what, self.block_params[i])
                        got = (grad_in,) + torch.autograd.grad(h, [src] + params, grad_h, allow_unused=True)
                    else:
                        got = (grad_in,) + (None,) * (1 + len(params))
                else:  # the small local graph: written half = merge(leaf, h)
                    leaf = written_input.detach().requires_grad_(True)
                    with torch.enable_grad():
                        out = block.unmerge(leaf, h) if self.inverse else block.merge(leaf, h)
                    _check_graph(out, (leaf, src), state, what, self.block_params[i])
                    got = torch.autograd.grad(out, [leaf, src] + params, grad_out, allow_unused=True)
        del h
        parts[step.dst] = written_input
        grads[step.dst] = got[0] if got[0] is not None else torch.zeros_like(written_input)
        if got[1] is not None:
            grads[step.src] = _add_owned(got[1], grads[step.src], (grad_out, grads[step.dst]) + tuple(got[2:]))
        _accumulate(param_grads, state.idx, got[2:])

    def _backward_generic(self, i, block, y, grad_y, tape, param_grads):
        # A generic invertible module: rebuild its input with the opposite map (its couplings' calls replayed from
        # their records), then recompute it with a graph from the state its forward started from.
        state, key = self.steps[i][None], (i, None)
        record = tape.states.get(key)
        what = self.where(i)
        state.check_unchanged(record, what)
        params = state.params
        with _forward_modes(state.modes), _restored_after(state.train_buffers):
            nested = _NestedReplayer(record[2]) if record is not None and record[2] is not None else None
            with torch.no_grad(), _scoped(nested):
                x = self._block_fn(block, not self.inverse)(y)
            leaf = x.detach().requires_grad_(True)
            with torch.enable_grad():
                out = tape.replay(key, self._block_fn(block, self.inverse), leaf)
            if not out.requires_grad:
                got = (None,) * (1 + len(params))
            else:
                _check_graph(out, (leaf,), state, what)
                with _hooks_suspended(params):
                    got = torch.autograd.grad(out, [leaf] + params, grad_y, allow_unused=True)
        _accumulate(param_grads, range(len(params)), got[1:])
        grad_x = got[0] if got[0] is not None else torch.zeros_like(x)
        return [x], [grad_x]

    # backward by recomputation from a kept input (ReversibleBlock(keep_input=True)) ------------------------------
    def backward_from_input(self, x, grad_y, tape, param_grads):
        for i, steps in enumerate(self.steps):
            for name, state in steps.items():
                state.check_unchanged(tape.states.get((i, name)), self.where(i, name))
        leaf = x.detach().requires_grad_(True)
        with contextlib.ExitStack() as stack:
            for steps in self.steps:
                for state in steps.values():
                    stack.enter_context(_forward_modes(state.modes))
                    stack.enter_context(_restored_after(state.train_buffers))
            with torch.enable_grad():
                out = self.run(leaf, _ReplayTape(tape))
            if not out.requires_grad:
                return None
            _check_graph(out, (leaf,), _AllParams(self), "a ReversibleBlock(keep_input=True)")
            with _hooks_suspended(self.params):
                got = torch.autograd.grad(out, [leaf] + self.params, grad_y, allow_unused=True)
        _accumulate(param_grads, range(len(self.params)), got[1:])
        return got[0]


class _AllParams:
    def __init__(self, chain):
        self.param_ids = {id(p) for p in chain.params}
        self.all_param_ids = set().union(*(s.all_param_ids for steps in chain.steps for s in steps.values()))


class _ReplayTape:
    def __init__(self, tape):
        self.tape = tape

    def record(self, key, fn, x, state=None, nested=False):
        return self.tape.replay(key, fn, x)


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


_use_count = getattr(torch.Tensor, "_use_count", None)
_storage_use_count = getattr(torch._C, "_storage_Use_Count", None)


def _sole_storage_count():
    """The use count of a storage that one tensor (and the Python storage object that asks) refers to."""
    if _use_count is None or _storage_use_count is None:
        return None
    t = torch.empty(4)
    return _storage_use_count(t.untyped_storage()._cdata)


_SOLE_STORAGE = _sole_storage_count()


def _owned(t, others):
    """Whether ``t``, a gradient autograd just returned, may be written in place: a dense tensor that nothing else
    refers to (not a view or an expanded, stride-0 tensor, not kept by a custom function, not one of the step's
    other gradients, which autograd may return aliased, e.g. for ``x + b``)."""
    if _SOLE_STORAGE is None or t.requires_grad or t._base is not None or not t.is_contiguous():
        return False
    storage = t.untyped_storage()
    if _use_count(t) != 1 or _storage_use_count(storage._cdata) != _SOLE_STORAGE:
        return False
    ptr = storage.data_ptr()
    return not any(o is not None and (o is t or o.untyped_storage().data_ptr() == ptr) for o in others)


def _add_owned(fresh, other, avoid):
    """``fresh + other``, in place into ``fresh`` when it is safe to (``_owned``)."""
    if fresh.shape == other.shape and fresh.dtype == other.dtype and _owned(fresh, (other,) + tuple(avoid)):
        return fresh.add_(other)
    return fresh + other


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


def run(x: Tensor, blocks: Sequence[nn.Module], inverse: bool, preserve_rng_state: bool,
        keep_input: bool = False) -> Tensor:
    """Runs ``blocks`` (in reverse order and inverted when ``inverse``) on ``x`` with memory-saving backprop.

    ``torch.compile`` does not trace into the engine (a graph break): its recomputation replays the forward's
    randomness from the recorded generator state, which compiled random ops do not draw the same way. The core then
    runs eagerly; compile F and G instead (they may be compiled modules).
    """
    if _is_compiling():
        return _run_eagerly(x, blocks, inverse, preserve_rng_state, keep_input)
    return _run(x, blocks, inverse, preserve_rng_state, keep_input)


def _is_compiling():
    compiler = getattr(torch, "compiler", None)
    return compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling()


def _run(x, blocks, inverse, preserve_rng_state, keep_input):
    chain = Chain(blocks, inverse, preserve_rng_state, keep_input)
    if keep_input:
        return ReversibleFunction.apply(x, chain, *chain.params)
    return run_chain(x, chain)


@_disable_dynamo
def _run_eagerly(x, blocks, inverse, preserve_rng_state, keep_input):
    return _run(x, blocks, inverse, preserve_rng_state, keep_input)


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
    def backward(ctx, *grad_out):
        if torch.is_grad_enabled():
            raise ReversibleError(_SECOND_ORDER)
        call, i = ctx.call, ctx.i
        parts = [_take_output(ctx)] if hasattr(ctx, "output_version") else call.baton.pop(i, None)
        if parts is None:
            raise RuntimeError(_SECOND_BACKWARD)
        with autocast_context(call.autocast), _recomputing():
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
    """``ReversibleFunction.apply(x, chain, *params)``: runs ``chain`` on ``x``, keeping ``x`` and recomputing from it
    in backward (``ReversibleBlock(keep_input=True)``); parameters are inputs and their gradients are returned.

    Args:
        x: the input tensor.
        chain: a ``Chain`` of the blocks (built by ``run``).
        params: ``chain.params``, so that autograd hands their gradients back.
    """

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
    def backward(ctx, grad_y):
        if torch.is_grad_enabled():
            raise ReversibleError(_SECOND_ORDER)
        chain = ctx.chain
        param_grads = [None] * len(chain.params)
        with autocast_context(ctx.autocast), _recomputing():
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
