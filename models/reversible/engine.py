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
call needs is gathered once when the call starts (``FnState``: its parameters, its buffers by role, its generators)
and sealed when its forward call is done (the parameters and buffers as that call left them). A call in which a
lazy module has not materialised its parameters yet runs on plain autograd (``run`` returns ``None``).

The recomputation must see what the forward saw. The tape (``RNGTape``) keeps, per function call, only what that
call changed and read:

* randomness (dropout): the RNG state before a call that consumed randomness (torch's CPU generator, the input's
  CUDA generator, and every ``torch.Generator`` attribute of the function's modules), replayed on recomputation;
* state that a call both updates and reads (the ``u``/``v`` vectors of spectral normalization, in either API; any
  buffer of a module in training mode other than a norm whose forward is torch's own BatchNorm/InstanceNorm, which
  updates its running statistics but does not read them): its value before the call, kept only when the call
  changed it, and put back before the recomputation, so that the recomputation starts from the state the forward
  started from. A call that wrote its module's parameters (a first-call initialisation such as Glow's ActNorm)
  starts its recomputation from the state it left instead, so it does not initialise again;
* all buffers of modules in training mode (running statistics, counters) are restored after each recomputation
  (values and version counters), so they end exactly as the forward left them;
* modules are put back in the training mode, and parameters in the ``requires_grad``, they had in the forward
  (``model.eval()``, freezing or unfreezing between forward and backward).

A generic invertible block (any module with ``inverse``: a nested ``ReversibleSequence``, an iUNet level) is rebuilt
with its ``inverse``, which calls its couplings' F and G in the opposite order of the forward. While such a block
runs forward, a scope (``_NestedRecorder``) records each of those calls (RNG state, changed state), and while its
input is rebuilt a replaying scope hands each call its record, last in first out. The block is then recomputed
with a graph from the state it started from. A coupling whose call runs module hooks (forward, pre-forward or
backward hooks on the coupling itself, or global ones) runs as such a block in the forward direction, through
``__call__`` as with plain autograd; when a hook changed its input or output (or a hooked invertible module inside
a generic block could have), its input is kept and the block is recomputed from it.

What cannot be recomputed is refused with a ``ReversibleError`` rather than given a wrong gradient: tensors that
require grad but are not parameters of the function (closures over outside tensors; found by a walk of each local
graph), parameters or buffers swapped or modified in place between forward and backward
(``torch.func.functional_call``, an optimizer step, a conditioning buffer set before an earlier call's backward),
``parametrize.cached()`` around the forward, functorch transforms and batched backward, and second-order gradients
(``create_graph=True``). ``torch.compile`` does not trace into the engine (a graph break): the core runs eagerly, F
and G may be compiled on their own. Parameter hooks run once, on the gradient autograd accumulates: the local
backward of each block runs with them switched off. ``ReversibleFunction`` is the keep-input variant
(``ReversibleBlock(keep_input=True)``): it keeps the input and recomputes from it, like checkpointing.
"""
import contextlib
import threading
from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules import module as _module_hooks
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.utils import parametrize as _parametrize

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
# A norm whose training output uses the batch's statistics only: it updates its running statistics but does not read
# them, so a recomputation need not start from them. Keyed by the forward it runs, so that a subclass with a forward
# of its own (batch renormalisation reads its running statistics) is watched like any module with state.
_BATCH_STATISTICS_FORWARDS = frozenset((nn.modules.batchnorm._BatchNorm.forward, nn.SyncBatchNorm.forward,
                                        nn.modules.instancenorm._InstanceNorm.forward))
_TORCH_CLASSES = {}  # module class -> whether torch defines it (torch's modules hold no generators of their own)
_UninitializedParameter = getattr(nn.parameter, "UninitializedParameter", None)
_UninitializedBuffer = getattr(nn.parameter, "UninitializedBuffer", None)


def _reads_running_statistics(m):
    return type(m).forward not in _BATCH_STATISTICS_FORWARDS


def _generators(m, out):
    """Appends the ``torch.Generator`` attributes of ``m`` to ``out`` (a module's private randomness; as
    ``FnState`` finds them)."""
    cls = type(m)
    torch_class = _TORCH_CLASSES.get(cls)
    if torch_class is None:
        torch_class = _TORCH_CLASSES[cls] = cls.__module__.split(".", 1)[0] == "torch"
    if not torch_class:
        out.extend(v for v in m.__dict__.values() if type(v) is torch.Generator)


def _has_forward_hooks(m):
    return bool(m._forward_hooks or m._forward_pre_hooks or _module_hooks._global_forward_hooks
                or _module_hooks._global_forward_pre_hooks)


def _runs_hooks(m):
    """Whether calling ``m`` runs module hooks (its own or global ones): forward, forward pre-, backward hooks."""
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
                or _module_hooks._global_forward_hooks or _module_hooks._global_forward_pre_hooks
                or _module_hooks._global_backward_hooks or _module_hooks._global_backward_pre_hooks)


def _invertible(m):
    return isinstance(m, Coupling) or callable(getattr(m, "inverse", None))


_PARAMETRIZE_CACHED = (
    "{what} holds parametrized tensors ({module}) and runs inside torch.nn.utils.parametrize.cached(): the "
    "memory-saving forward runs without a graph, so the cache would hold weights without one (their parameters "
    "would get no gradient, here and wherever else the cache is read). Call the core outside parametrize.cached() "
    "(caching around the backward alone is fine), or " + _memory_saving_off_hint())


class FnState:
    """What the engine knows about one function (F, G, or a generic block) in one call: gathered in one pass over its
    modules when the call starts, and sealed when the function's forward call is done.

    ``params``: its distinct parameters that required grad in the forward (plus, for a coupling's half step, the
    coupling's own merge parameters); ``frozen``: those that did not. The recomputation sees these flags as the
    forward did (freezing or unfreezing between forward and backward changes nothing, as with plain autograd).
    ``train_buffers``: ``(module, name)`` of every buffer of a module in training mode, restored after each
    recomputation. ``watched``: those a call may both update and read (training mode, other than a norm that uses
    batch statistics only); their value before each call is kept when the call changes them. ``generators``: the
    ``torch.Generator`` attributes of its modules, recorded and replayed with torch's global generators.
    ``fixed`` (after ``seal``): ``(kind, module, name, tensor, version)`` of each parameter and read buffer as the
    forward's call left it: backward requires the same tensor, unmodified (``check_unchanged``).
    ``inner_hooks``: a generic block holds an invertible module with forward hooks, so rebuilding it by its inverse
    would not undo what those hooks did: its input is kept instead.
    """

    __slots__ = ("params", "frozen", "param_ids", "all_param_ids", "idx", "train_buffers", "watched",
                 "param_reads", "buffer_reads", "fixed", "generators", "merge_params", "modes", "inner_hooks",
                 "uninitialised", "written")

    def __init__(self, fn: Any, what: Any, block: Any = None) -> None:
        params, frozen, all_ids, param_reads = [], [], set(), []
        train, watched, buffer_reads, modes, generators = [], [], [], [], []
        inner_hooks = uninitialised = False
        if isinstance(fn, nn.Module):
            caching = _parametrize._cache_enabled
            global_hooks = _module_hooks._global_forward_hooks or _module_hooks._global_forward_pre_hooks
            for m in _modules(fn):
                modes.append((m, m.training))
                for name, p in m._parameters.items():
                    if p is None:
                        continue
                    if not isinstance(p, nn.Parameter):
                        raise ReversibleError(_substituted_parameter(_text(what), type(m).__name__, name))
                    param_reads.append((m, name, p))
                    uninitialised = uninitialised or type(p) is _UninitializedParameter
                    if id(p) not in all_ids:
                        all_ids.add(id(p))
                        (params if p.requires_grad else frozen).append(p)
                cls = type(m)
                torch_class = _TORCH_CLASSES.get(cls)
                if torch_class is None:
                    torch_class = _TORCH_CLASSES[cls] = cls.__module__.split(".", 1)[0] == "torch"
                if m._buffers:
                    training = m.training
                    # in eval mode torch's own modules only read their buffers; a module of the user's may update
                    # and read them in either mode (a counter, a running value), so it is watched in both
                    updates = training or not torch_class
                    stateful = updates and cls.forward not in _BATCH_STATISTICS_FORWARDS
                    for name, b in m._buffers.items():
                        if b is None:
                            continue
                        uninitialised = uninitialised or type(b) is _UninitializedBuffer
                        if updates:
                            train.append((m, name))
                            if not stateful:
                                continue  # updated, not read: nothing to check or keep
                            watched.append((m, name))
                        buffer_reads.append((m, name))
                if not torch_class:  # torch's own modules hold no generators
                    generators.extend(v for v in m.__dict__.values() if type(v) is torch.Generator)
                if caching and "parametrizations" in m._modules:
                    raise ReversibleError(_PARAMETRIZE_CACHED.format(what=_text(what), module=cls.__name__))
                if (block is not None and m is not block and (m._forward_hooks or m._forward_pre_hooks or global_hooks)
                        and _invertible(m)):
                    inner_hooks = True
        self.params, self.frozen, self.all_param_ids = params, frozen, all_ids
        self.param_ids = {id(p) for p in params}
        self.train_buffers, self.watched, self.modes = train, watched, modes
        self.param_reads, self.buffer_reads = param_reads, buffer_reads
        self.generators, self.inner_hooks, self.uninitialised = generators, inner_hooks, uninitialised
        self.idx, self.merge_params, self.fixed, self.written = None, False, (), ()

    def add_params(self, trainable, frozen):
        for p in trainable:
            if id(p) not in self.param_ids:
                self.param_ids.add(id(p))
                self.all_param_ids.add(id(p))
                self.params.append(p)
        for p in frozen:
            if id(p) not in self.all_param_ids:
                self.all_param_ids.add(id(p))
                self.frozen.append(p)

    def seal(self, kept, before=None):
        """Records the versions of the parameters and the read buffers as the forward's call left them (after a
        first-call initialisation, which writes parameters before using them). Buffers the call changed (``kept``)
        are put back from their copy before the recomputation, so they are not checked. ``before``: the parameters'
        versions before the call; those it wrote are kept as it left them (``written``: rare, a few tensors), so
        that a recomputation that writes them again is told apart from one that leaves them as they were."""
        fixed = [("parameter", m, name, p, p._version) for m, name, p in self.param_reads]
        self.written = [(p, p.detach().clone()) for (_, _, p), v in zip(self.param_reads, before)
                        if p._version != v] if before is not None else ()
        if self.buffer_reads:
            skip = {(id(m), name) for m, name, _ in kept} if kept else ()
            for m, name in self.buffer_reads:
                b = m._buffers.get(name)
                if b is not None and (id(m), name) not in skip:
                    fixed.append(("buffer", m, name, b, b._version))
        self.fixed = fixed

    def check_not_rewritten(self, what):
        """After a recomputation: raises where it wrote a parameter in place again. A call that writes its parameters
        is taken for a first-call initialisation (ActNorm), which its recomputation does not repeat; a module that
        writes them on every call would recompute with other values than its forward used."""
        written = {id(p): value for p, value in self.written}
        for k, (kind, m, name, t, version) in enumerate(self.fixed):
            if kind == "parameter" and t._version != version:
                value = written.get(id(t))
                if value is not None and torch.equal(t, value):  # written again to the same values (clamp_)
                    self.fixed[k] = (kind, m, name, t, t._version)
                    continue
                raise ReversibleError(
                    f"{_text(what)}: the parameter {type(m).__name__}.{name} is written in place on every call (its "
                    f"recomputation wrote it again), so backward would recompute with other values than the forward "
                    f"used and change the parameter a second time: write it outside the call (e.g. before the "
                    f"forward, as weight clipping after an optimizer step), or {_memory_saving_off_hint()}")

    def check_unchanged(self, what):
        """Raises when a parameter or buffer that the forward read is no longer the same tensor, or was modified in
        place since (the recomputation would read other values)."""
        for kind, m, name, t, version in self.fixed:
            current = (m._parameters if kind == "parameter" else m._buffers).get(name)
            if current is not t:
                raise ReversibleError(
                    f"{_text(what)}: the {kind} {type(m).__name__}.{name} is not the tensor the forward used "
                    f"(torch.func.functional_call with substituted {kind}s, or a {kind} reassigned between the "
                    f"forward and the backward, e.g. a conditioning value set before the backward of an earlier "
                    f"call): backward recomputes with the module's own tensors, so it would give other gradients; "
                    f"pass such values through the input, call backward before changing them, or "
                    f"{_memory_saving_off_hint()} for this call")
            if t._version != version:
                if kind == "parameter":
                    raise ReversibleError(
                        f"{_text(what)}: the parameter {type(m).__name__}.{name} was modified in place between the "
                        f"forward and the backward (an optimizer step or load_state_dict before backward?): the "
                        f"recomputation would read the new values. Call backward first (plain autograd refuses "
                        f"this too)")
                raise ReversibleError(
                    f"{_text(what)}: the buffer {type(m).__name__}.{name} was modified in place between the forward "
                    f"and the backward (e.g. a conditioning value set with copy_ before the backward of an earlier "
                    f"call): the recomputation would read the new values, not the ones the forward read. Call "
                    f"backward before changing it, pass such values through the input, or "
                    f"{_memory_saving_off_hint()}")


def _grad(out, inputs, grad_out, what):
    """``torch.autograd.grad`` of a recomputation's local graph; torch.utils.checkpoint with use_reentrant=True inside
    it, which cannot run under autograd.grad, is said as this library's refusal, with what to do."""
    try:
        return torch.autograd.grad(out, inputs, grad_out, allow_unused=True)
    except RuntimeError as e:
        if "use_reentrant=True" not in str(e):
            raise
        raise ReversibleError(
            f"{_text(what)}: torch.utils.checkpoint(..., use_reentrant=True) inside it cannot run in the memory-saving "
            f"backward (which differentiates each recomputed call with torch.autograd.grad): pass "
            f"use_reentrant=False (the recomputation already keeps no activations), or "
            f"{_memory_saving_off_hint()}") from None


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


def _parameters(module, what):
    """Distinct parameters of ``module``: ``(those that require grad, those that do not)``."""
    seen, trainable, frozen = set(), [], []
    for m in _modules(module):
        for name, p in m._parameters.items():
            if p is None:
                continue
            if not isinstance(p, nn.Parameter):
                raise ReversibleError(_substituted_parameter(_text(what), type(m).__name__, name))
            if id(p) not in seen:
                seen.add(id(p))
                (trainable if p.requires_grad else frozen).append(p)
    return trainable, frozen


# ----------------------------------------------------------------------------------------------------------------
# Buffers: snapshots of state a call changes, and restoring what a recomputation changes.
def _snapshot(pairs):
    """Before a call: ``(module, name, tensor, version, copy)`` of each buffer, and the parameter versions of their
    modules (a call that writes its module's parameters is an initialisation, see ``_to_restore``). The version of a
    norm's buffer is ``None``: its native kernel updates the running statistics without bumping it, so they count as
    changed by every call."""
    buffers, modules = [], {}
    for m, name in pairs:
        b = m._buffers.get(name)
        if b is not None:
            buffers.append((m, name, b, None if isinstance(m, _NormBase) else b._version, b.detach().clone()))
            if id(m) not in modules:
                modules[id(m)] = [(p, p._version) for p in m._parameters.values() if p is not None]
    return buffers, modules


def _to_restore(snapshot):
    """``(module, name, value)`` for each buffer the call updated or replaced: the value its recomputation must start
    from. That is the value before the call (spectral normalization's u/v, batch renormalisation's statistics: the
    call reads what it updates), except for a module whose parameters the call wrote in place: a first-call
    initialisation (Glow's ActNorm sets its parameters and a flag from the first batch), whose recomputation must
    start from the state the call left, so that it does not initialise again."""
    buffers, modules = snapshot
    kept, initialised = [], {}
    for m, name, b, version, copy in buffers:
        current = m._buffers.get(name)
        if current is b and b._version == version:
            continue
        if id(m) not in initialised:
            initialised[id(m)] = any(p._version != v for p, v in modules[id(m)])
        if initialised[id(m)] and current is not None:
            copy = current.detach().clone()
        kept.append((m, name, copy))
    return kept


def _put_back(kept):
    """Sets buffers to the values kept before a call (in place where the shape allows)."""
    with torch.no_grad():
        for m, name, value in kept:
            cur = m._buffers.get(name)
            if cur is not None and cur.shape == value.shape and cur.dtype == value.dtype:
                cur.copy_(value)
            else:
                m._buffers[name] = value.clone()


_set_version_counters = getattr(torch._C._autograd, "_unsafe_set_version_counter", None)


def _reset_versions(tensors, versions):
    """Sets the version counters of tensors whose values were restored exactly, so that the engine's own
    bookkeeping does not look like a modification between forward and backward (``FnState.check_unchanged``,
    autograd's saved-tensor checks)."""
    if _set_version_counters is None or not tensors:
        return
    try:
        _set_version_counters(tuple(tensors), tuple(versions))
    except TypeError:  # older torch: one tensor at a time
        for t, v in zip(tensors, versions):
            _set_version_counters(t, v)


@contextlib.contextmanager
def _restored_after(pairs):
    """Restores the listed buffers on exit: identity, value and version counter (a norm's native kernel updates its
    running statistics without a version bump, so every listed buffer is restored)."""
    saved = []
    for m, name in pairs:
        b = m._buffers.get(name)
        if b is not None:
            saved.append((m, name, b, b._version, b.clone()))
    try:
        yield
    finally:
        if saved:
            with torch.no_grad():
                for m, name, b, _, value in saved:
                    m._buffers[name] = b
                    b.copy_(value)
            _reset_versions([b for _, _, b, _, _ in saved], [version for _, _, _, version, _ in saved])


@contextlib.contextmanager
def _as_in_forward(states):
    """Puts the modules of ``states`` back in the training mode of the forward and their parameters back to the
    ``requires_grad`` of the forward for a recomputation: ``model.eval()``, freezing or unfreezing parameters
    between forward and backward must not change the gradients (plain autograd's graph was built before)."""
    modes, flags = [], {}  # flags by identity: a parameter shared by two functions must be flipped once, not twice
    for state in states:
        modes += [(m, training) for m, training in state.modes if m.training != training]
        flags.update((id(p), p) for p in state.params if not p.requires_grad)
        if state.frozen:
            flags.update((id(p), p) for p in state.frozen if p.requires_grad)
    flags = list(flags.values())
    for m, training in modes:
        m.training = training
    for p in flags:
        p.requires_grad_(not p.requires_grad)
    try:
        yield
    finally:
        for m, training in modes:
            m.training = not training
        for p in flags:
            p.requires_grad_(not p.requires_grad)


def frozen_buffers(fn):
    """Context manager that restores the buffers (BatchNorm/InstanceNorm running statistics, counters, spectral-norm
    vectors) of every module of ``fn`` that is in training mode, so a recomputation leaves them exactly as the
    original forward left them."""
    pairs = []
    if isinstance(fn, nn.Module):
        pairs = [(m, name) for m in _modules(fn) if m.training for name, b in m._buffers.items() if b is not None]
    return _restored_after(pairs)


def _watched(fn):
    """``(watched buffers, generators)`` of ``fn``'s modules, as ``FnState`` finds them."""
    pairs, generators = [], []
    if isinstance(fn, nn.Module):
        for m in _modules(fn):
            if m.training and m._buffers and _reads_running_statistics(m):
                pairs.extend((m, name) for name, b in m._buffers.items() if b is not None)
            _generators(m, generators)
    return pairs, generators


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
    list of ``(rng state or None, changed buffers)`` or ``None`` when the call changed nothing.

    It also hears what the forward of ``probe`` (the block, when calling it runs module hooks) received and returned
    (``couplings._note_forward``): a hook that replaced or modified either means the block's inverse does not undo
    what was computed.
    """

    def __init__(self, tape, probe=None):
        self.tape, self.calls, self.used = tape, {}, False
        self.probe, self.noted = probe, None

    def call(self, coupling, step, x):
        watched, generators = _watched(step.fn)
        snapshot = _snapshot(watched) if watched else None
        before = self.tape.rng_state(generators)
        with _scoped(None):  # calls nested inside F are reproduced by replaying F's own RNG state
            out = step.fn(x)
        rng = before if self.tape.rng_changed(before) else None
        kept = _to_restore(snapshot) if snapshot else None
        entry = (rng, kept) if rng is not None or kept else None
        self.calls.setdefault((id(coupling), step.name), []).append(entry)
        self.used = self.used or entry is not None
        return out

    def note(self, module, x, y):
        if module is self.probe and self.noted is None:
            self.noted = (x, y, y._version if torch.is_tensor(y) else None)

    def hooks_changed(self, block, x, out):
        """Whether module hooks changed what ``block`` computed from ``x``: its forward received another input, or
        returned another output than the call's ``out`` (or one modified in place since). Without a note (a block
        whose forward does not report), any forward hook counts as a change."""
        if self.noted is None:
            return _has_forward_hooks(block)
        received, returned, version = self.noted
        return received is not x or returned is not out or out._version != version


class _NestedReplayer:
    """Hands each F/G call of a generic block the record of its forward call: last in first out while the block's
    input is rebuilt (an inverse undoes the forward's calls in reverse order), first in first out while the block is
    recomputed (each call then draws as it drew in the forward, even where something before it drew differently in
    the forward, e.g. a module hook on the block that samples activations to log unless ``is_recomputing()``)."""

    def __init__(self, recorder, forward=False):
        self.tape, self.calls, self.cursor, self.forward = recorder.tape, recorder.calls, {}, forward

    def call(self, coupling, step, x):
        key = (id(coupling), step.name)
        entries = self.calls.get(key, ())
        if self.forward:
            n = self.cursor.get(key, -1) + 1
            ok = n < len(entries)
        else:
            n = self.cursor.get(key, len(entries)) - 1
            ok = n >= 0
        entry = None
        if ok:
            self.cursor[key] = n
            entry = entries[n]
        if entry is None:
            with _scoped(None):
                return step.fn(x)
        rng, kept = entry
        if kept:
            _put_back(kept)
        if self.forward:  # set the generators and draw on: the stream goes on as in the forward
            if rng is not None:
                self.tape.set_rng_state(rng)
            with _scoped(None):
                return step.fn(x)
        with self.tape.replaying(rng), _scoped(None):
            return step.fn(x)

    def note(self, module, x, y):
        pass


# ----------------------------------------------------------------------------------------------------------------
class RNGTape:
    """The tape of one call: per function call (key), what its recomputation needs to see what the forward saw.

    A record ``(rng, kept, nested, kept_input)`` is kept only for calls that consumed randomness (``rng``: the CPU
    and, for CUDA inputs, CUDA RNG state before the call, and the state of each ``torch.Generator`` attribute of the
    function's modules), changed state they read (``kept``: the values to start from, ``_to_restore``), or, for
    generic blocks, whose inner coupling calls did (``nested``), or whose module hooks changed what the block
    computed (``kept_input``: the input and its version; the block is recomputed from it instead of being rebuilt).
    Calls that do none of these cost nothing on the tape.

    Args:
        device: the device of the call's input (its CUDA RNG is recorded too).
        enabled: record and replay randomness (``preserve_rng_state``).
    """

    def __init__(self, device: torch.device, enabled: bool = True) -> None:
        self.enabled = enabled
        self.cuda_device = device if device.type == "cuda" else None
        self.states = {}

    def rng_state(self, generators=()):
        if not self.enabled:
            return None
        cuda = torch.cuda.get_rng_state(self.cuda_device) if self.cuda_device is not None else None
        return torch.get_rng_state(), cuda, tuple([(g, g.get_state()) for g in generators]) if generators else ()

    def rng_changed(self, before):
        if before is None:
            return False
        cpu, cuda, generators = before
        return (not torch.equal(cpu, torch.get_rng_state())
                or (cuda is not None and not torch.equal(cuda, torch.cuda.get_rng_state(self.cuda_device)))
                or any(not torch.equal(state, g.get_state()) for g, state in generators))

    def set_rng_state(self, state):
        cpu, cuda, generators = state
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, self.cuda_device)
        for g, s in generators:
            g.set_state(s)

    @contextlib.contextmanager
    def replaying(self, state):
        """Runs the block inside with the generators set to ``state``, and leaves them as it found them."""
        if state is None:
            yield
            return
        now = [(g, g.get_state()) for g, _ in state[2]]
        cuda_devices = [self.cuda_device] if self.cuda_device is not None else []
        with torch.random.fork_rng(devices=cuda_devices):
            self.set_rng_state(state)
            try:
                yield
            finally:
                for g, s in now:  # the recomputation does not advance private generators either
                    g.set_state(s)

    def record(self, key, fn, x, state=None, nested=False, probe=None, what=None, rebuilt=True):
        """Runs ``fn(x)`` in the forward, keeping what its recomputation will need; seals ``state`` after.

        ``nested``: ``fn`` is a generic block: its inner coupling calls are recorded. ``rebuilt``: backward rebuilds
        its input by its inverse; its input is kept instead when ``state.inner_hooks`` or, for ``probe`` (the block,
        when calling it runs module hooks), when its hooks changed what it computed."""
        snapshot = _snapshot(state.watched) if state is not None and state.watched else None
        versions = [p._version for _, _, p in state.param_reads] if state is not None else None
        before = self.rng_state(state.generators if state is not None else ())
        recorder = _NestedRecorder(self, probe) if nested else None
        version = x._version
        with _scoped(recorder):
            out = fn(x)
        if probe is not None and x._version != version:
            raise ReversibleError(
                f"{_text(what)}: a module hook modified its input in place, which the block cannot be rebuilt to: "
                f"return a new tensor from the hook instead, or {_memory_saving_off_hint()}")
        rng = before if self.rng_changed(before) else None
        kept = _to_restore(snapshot) if snapshot else None
        kept_input = None
        if nested and rebuilt and (state.inner_hooks or (probe is not None and recorder.hooks_changed(probe, x, out))):
            kept_input = (x, version)
        nested_used = recorder if recorder is not None and recorder.used else None
        if rng is not None or kept or nested_used is not None or kept_input is not None:
            self.states[key] = (rng, kept or None, nested_used, kept_input)
        if state is not None:
            state.seal(kept, versions)
        return out

    def replay(self, key, fn, x):
        """Recomputes the call ``key`` (``fn(x)``) as the forward ran it; a generic block's coupling calls each
        replay their own record."""
        record = self.states.get(key)
        if record is None:
            with _scoped(None):
                return fn(x)
        if record[1]:
            _put_back(record[1])
        nested = _NestedReplayer(record[2], forward=True) if record[2] is not None else None
        with self.replaying(record[0]), _scoped(nested):
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
    """The scope of a backward's recomputation. ``parametrize.cached()`` is off inside it: the forward ran without
    the cache (``FnState`` refuses it there), and a recomputation must compute its parametrized weights with a graph
    as the forward computed them, not read ones cached elsewhere."""
    _RECOMPUTING.depth = getattr(_RECOMPUTING, "depth", 0) + 1
    caching, _parametrize._cache_enabled = _parametrize._cache_enabled, 0
    try:
        yield
    finally:
        _parametrize._cache_enabled = caching
        _RECOMPUTING.depth -= 1


_TRANSFORMED = (
    "functorch transforms (torch.func.grad, vmap, jacrev, jacfwd, jvp, functionalize) cannot run through a "
    "memory-saving core, whose backward recomputes with side effects (recorded RNG states, restored buffers) that "
    "these transforms do not support: " + _memory_saving_off_hint() + " for this computation")
_FORWARD_AD = (
    "forward-mode AD (a dual tensor of torch.autograd.forward_ad) cannot run through a memory-saving core, which has "
    "no forward derivative: " + _memory_saving_off_hint() + " for this computation")
_BATCHED_BACKWARD = (
    "a batched backward (torch.autograd.functional.jacobian(vectorize=True), gradcheck(check_batched_grad=True), "
    "torch.autograd.grad(is_grads_batched=True)) cannot run through a memory-saving core, whose backward "
    "recomputes one batch at a time: use vectorize=False / check_batched_grad=False, or "
    + _memory_saving_off_hint() + " for this computation")
_functorch = getattr(torch._C, "_functorch", None)
_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", None)


def _check_not_transformed(x):
    """Raises when the call runs under a functorch transform or forward-mode AD (its input is a dual tensor)."""
    if (_transforms_active is not None and _transforms_active()) or (
            _functorch is not None and _functorch.is_functorch_wrapped_tensor(x)):
        raise ReversibleError(_TRANSFORMED)
    if torch.autograd.forward_ad._current_level >= 0 and torch.autograd.forward_ad.unpack_dual(x).tangent is not None:
        raise ReversibleError(_FORWARD_AD)


def _check_not_batched(grads):
    """Raises when backward is vmapped over its gradients (vectorized Jacobians, batched gradchecks: all of a node's
    gradients are batched then, so the first one tells)."""
    g = next((g for g in grads if g is not None), None)
    if g is not None and _functorch is not None and (
            _functorch.is_legacy_batchedtensor(g) or _functorch.is_batchedtensor(g)):
        raise ReversibleError(_BATCHED_BACKWARD)


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
    about each function (``FnState``), gathered once per call.

    A coupling runs as two half steps, except in the forward direction when calling it runs module hooks: then,
    like any generic block, it runs through ``__call__`` as with plain autograd (hooks included), is rebuilt by its
    inverse (or recomputed from its kept input, when a hook changed what it computed) and recomputed with its hooks.
    Plain autograd's ``inverse`` runs no hooks of the block, and neither does the engine in that direction.
    """

    def __init__(self, blocks, inverse, preserve_rng_state, keep_input=False):
        self.blocks = list(reversed(blocks)) if inverse else list(blocks)
        self.inverse = inverse
        self.preserve_rng_state = preserve_rng_state
        self.rebuilt = not keep_input  # generic blocks are rebuilt with their inverse (not when the input is kept)
        self.block_params, self.steps, self.hooked, self.uninitialised = [], [], [], False
        seen, self.params = set(), []
        for i, block in enumerate(self.blocks):
            if getattr(block, "_is_replica", False):
                raise ReversibleError(
                    f"{self.describe(i)} is an nn.DataParallel replica, whose parameters are copies rather than "
                    f"parameters: the memory-saving engine cannot hand their gradients back. Use "
                    f"DistributedDataParallel (one process per GPU), or {_memory_saving_off_hint()}")
            hooked = not inverse and _runs_hooks(block)
            if isinstance(block, Coupling) and not hooked:
                steps = {step.name: FnState(step.fn, self.where(i, step.name)) for step in block.half_steps()}
                params, frozen = _parameters(block, self.where(i))
                inner = set().union(*(s.all_param_ids for s in steps.values()))
                merge = [p for p in params if id(p) not in inner]
                merge_frozen = [p for p in frozen if id(p) not in inner]
                for s in steps.values():
                    s.add_params(merge, merge_frozen)
                    s.merge_params = bool(merge)
            else:
                state = FnState(block, self.where(i), block=block)
                params = state.params
                steps = {None: state}
            index = {id(p): j for j, p in enumerate(params)}
            for s in steps.values():
                s.idx = [index[id(p)] for p in s.params]
            self.block_params.append(params)
            self.steps.append(steps)
            self.hooked.append(hooked)
            self.uninitialised = self.uninitialised or any(s.uninitialised for s in steps.values())
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

    def _block_fn(self, block):
        """What the call computes with a generic block: ``block(x)`` (module hooks included) or ``block.inverse``."""
        return block.inverse if self.inverse else block

    def _rebuild_fn(self, block):
        """The map that rebuilds a generic block's input from its output: its inverse, or, for an inverse call, its
        forward without the block's own module hooks (which plain autograd's ``inverse`` never ran)."""
        return block.forward if self.inverse else block.inverse

    # forward, no graph ------------------------------------------------------------------------------------------
    def run_block(self, i, parts, tape):
        """Applies block ``i`` to ``parts`` (the input as a list of channel groups); returns the output's parts."""
        block, steps = self.blocks[i], self.steps[i]
        if None not in steps:  # a coupling, by half steps
            parts = _regroup(parts, block.split_sizes(_probe(parts)))
            for step in block.half_steps(self.inverse):
                h = tape.record((i, step.name), step.fn, parts[step.src], steps[step.name])
                parts[step.dst] = block.apply_step(step, parts, h, self.inverse)
            return parts
        return [tape.record((i, None), self._block_fn(block), _join(parts), steps[None], nested=True,
                            probe=block if self.hooked[i] else None, what=self.where(i), rebuilt=self.rebuilt)]

    def run(self, x, tape):
        parts = [x]
        for i in range(len(self.blocks)):
            parts = self.run_block(i, parts, tape)
        return _join(parts)

    # backward by reconstruction -----------------------------------------------------------------------------------
    def backward_block(self, i, parts, grads, tape, needs_input=True):
        """Back-propagates block ``i`` from its output ``parts`` and their ``grads`` (lists, consumed); returns the
        rebuilt input's parts, their gradients (``None`` when ``needs_input`` is False: nothing before the block
        requires grad), and the gradients of ``block_params[i]``."""
        block = self.blocks[i]
        param_grads = [None] * len(self.block_params[i])
        if None not in self.steps[i]:
            sizes = block.split_sizes(_probe(parts))
            parts, grads = _regroup(parts, sizes), _regroup(grads, sizes)
            for step in reversed(block.half_steps(self.inverse)):
                self._backward_step(i, block, step, parts, grads, tape, param_grads)
            return parts, grads, param_grads
        parts, grads = self._backward_generic(i, block, _join(parts), _join(grads), tape, param_grads, needs_input)
        return parts, grads, param_grads

    def _backward_step(self, i, block, step, parts, grads, tape, param_grads):
        state, key, what = self.steps[i][step.name], (i, step.name), self.where(i, step.name)
        state.check_unchanged(what)
        params = state.params
        src = parts[step.src].detach().requires_grad_(True)
        grad_out = grads[step.dst]
        # Running statistics are restored only after the local backward: BatchNorm's backward reads them.
        with _as_in_forward((state,)), _restored_after(state.train_buffers):
            with torch.enable_grad():
                h = tape.replay(key, step.fn, src)
            state.check_not_rewritten(what)
            with torch.no_grad():  # rebuild the half this step wrote
                written_input = block.apply_step(step, parts, h.detach(), not self.inverse)
            shortcut = None if state.merge_params else block.merge_vjp(written_input, h, grad_out, self.inverse)
            with _hooks_suspended(params):
                if shortcut is not None:  # merge's gradient is known in closed form: back-propagate through fn only
                    grad_in, grad_h = shortcut
                    if h.requires_grad:
                        _check_graph(h, (src,), state, what, self.block_params[i])
                        got = (grad_in,) + _grad(h, [src] + params, grad_h, what)
                    else:
                        got = (grad_in,) + (None,) * (1 + len(params))
                else:  # the small local graph: written half = merge(leaf, h)
                    leaf = written_input.detach().requires_grad_(True)
                    with torch.enable_grad():
                        out = block.unmerge(leaf, h) if self.inverse else block.merge(leaf, h)
                    _check_graph(out, (leaf, src), state, what, self.block_params[i])
                    got = _grad(out, [leaf, src] + params, grad_out, what)
        del h
        parts[step.dst] = written_input
        grads[step.dst] = got[0] if got[0] is not None else torch.zeros_like(written_input)
        if got[1] is not None:
            grads[step.src] = _add_owned(got[1], grads[step.src], (grad_out, grads[step.dst]) + tuple(got[2:]))
        _accumulate(param_grads, state.idx, got[2:])

    def _backward_generic(self, i, block, y, grad_y, tape, param_grads, needs_input):
        # A generic invertible module: rebuild its input with the opposite map (its couplings' calls replayed from
        # their records), or take the input kept for it, then recompute it with a graph from the state its forward
        # started from (module hooks run again, backward hooks fire in the local backward).
        state, key, what = self.steps[i][None], (i, None), self.where(i)
        record = tape.states.get(key)
        state.check_unchanged(what)
        params = state.params
        with _as_in_forward((state,)), _restored_after(state.train_buffers):
            if record is not None and record[3] is not None:
                x = _kept_input(record[3], what)
            else:
                nested = _NestedReplayer(record[2]) if record is not None and record[2] is not None else None
                with torch.no_grad(), _scoped(nested):
                    x = self._rebuild_fn(block)(y)
            leaf = x.detach().requires_grad_(needs_input)
            with torch.enable_grad():
                out = tape.replay(key, self._block_fn(block), leaf)
            state.check_not_rewritten(what)
            inputs = [leaf] + params if needs_input else params
            if not out.requires_grad or not inputs:
                got = (None,) * len(inputs)
            else:
                _check_graph(out, (leaf,), state, what)
                with _hooks_suspended(params):
                    got = _grad(out, inputs, grad_y, what)
        grad_x = None
        if needs_input:
            grad_x, got = (got[0] if got[0] is not None else torch.zeros_like(x)), got[1:]
        _accumulate(param_grads, range(len(params)), got)
        return [x], [grad_x]

    # backward by recomputation from a kept input (ReversibleBlock(keep_input=True)) ------------------------------
    def backward_from_input(self, x, grad_y, tape, param_grads, needs_input=True):
        states = [state for steps in self.steps for state in steps.values()]
        for i, steps in enumerate(self.steps):
            for name, state in steps.items():
                state.check_unchanged(self.where(i, name))
        leaf = x.detach().requires_grad_(needs_input)
        with contextlib.ExitStack() as stack:
            stack.enter_context(_as_in_forward(states))
            for state in states:
                stack.enter_context(_restored_after(state.train_buffers))
            with torch.enable_grad():
                out = self.run(leaf, _ReplayTape(tape))
            for i, steps in enumerate(self.steps):
                for name, state in steps.items():
                    state.check_not_rewritten(self.where(i, name))
            inputs = [leaf] + self.params if needs_input else self.params
            if not out.requires_grad or not inputs:
                return None
            _check_graph(out, (leaf,), _AllParams(self), "a ReversibleBlock(keep_input=True)")
            with _hooks_suspended(self.params):
                got = _grad(out, inputs, grad_y, "a recomputed module (ReversibleBlock(keep_input=True), Recompute)")
        if not needs_input:
            got = (None,) + tuple(got)
        _accumulate(param_grads, range(len(self.params)), got[1:])
        return got[0]


def _kept_input(kept, what):
    x, version = kept
    if x._version != version:
        raise RuntimeError(
            f"{_text(what)}: its input, kept for backward because a module hook changed what the block computed, "
            f"was modified by an inplace operation after the forward: modify a clone of it instead")
    return x


class _AllParams:
    def __init__(self, chain):
        self.param_ids = {id(p) for p in chain.params}
        self.all_param_ids = set().union(*(s.all_param_ids for steps in chain.steps for s in steps.values()))


class _ReplayTape:
    def __init__(self, tape):
        self.tape = tape

    def record(self, key, fn, x, state=None, nested=False, probe=None, what=None, rebuilt=True):
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
        keep_input: bool = False) -> Optional[Tensor]:
    """Runs ``blocks`` (in reverse order and inverted when ``inverse``) on ``x`` with memory-saving backprop.

    Returns ``None`` when the call must run on plain autograd instead: a lazy module among the blocks has not
    materialised its parameters yet. Its first call creates and initialises them (drawing random numbers, which no
    recomputation would draw again), so that call runs as plain autograd runs it; later calls save memory.

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
    _check_not_transformed(x)
    chain = Chain(blocks, inverse, preserve_rng_state, keep_input)
    if chain.uninitialised:
        return None
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
        _check_not_batched(grad_out)
        call, i, n_in = ctx.call, ctx.i, len(ctx.in_sizes)
        parts = [_take_output(ctx)] if hasattr(ctx, "output_version") else call.baton.pop(i, None)
        if parts is None:
            raise RuntimeError(_SECOND_BACKWARD)
        needs_input = any(ctx.needs_input_grad[3:3 + n_in])
        with autocast_context(call.autocast), _recomputing():
            parts, grads, param_grads = call.chain.backward_block(i, parts, list(grad_out), call.tape, needs_input)
        if n_in > 1:
            parts = _regroup(parts, ctx.in_sizes)
            grads = _regroup(grads, ctx.in_sizes) if needs_input else [None] * n_in
        else:
            parts, grads = [_join(parts)], [_join(grads) if needs_input else None]
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
        _check_not_batched((grad_y,))
        chain = ctx.chain
        param_grads = [None] * len(chain.params)
        with autocast_context(ctx.autocast), _recomputing():
            grad_x = chain.backward_from_input(ctx.saved_tensors[0], grad_y, ctx.tape, param_grads,
                                               ctx.needs_input_grad[0])
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
