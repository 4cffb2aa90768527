"""Checks a model makes on its inputs and losses, so that a mistake ends in one line instead of deep in a network."""
import copy

import torch

from models.reversible import padding_for
from util import distributed
from util.errors import UserError
from util.progress import write
from util.util import spatial_text


def meta_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` on the meta device (shapes only; the weights are not copied)."""
    memo = {}
    for t in list(module.parameters()) + list(module.buffers()):
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = torch.nn.Parameter(meta, t.requires_grad) if isinstance(t, torch.nn.Parameter) else meta
    return copy.deepcopy(module, memo)


def _dry_run(net, shape, direction) -> bool:
    try:
        with torch.no_grad():
            net(torch.empty(shape, device="meta"), direction)  # the module's own forward: never a compiled one
        return True
    except (RuntimeError, ValueError):  # ValueError: a norm layer left with a single element
        return False


def smallest_side(fits, spatial, step=1):
    """The smallest side s (a multiple of ``step``, at most 1024) such that an input of ``spatial`` size with every
    side raised to at least s ``fits``; None where none does."""
    return next((s for s in range(step, 1025, step) if fits([max(s, n) for n in spatial])), None)


def nan_hint(opt) -> str:
    """What to try when a training loss is not finite (nothing when testing)."""
    if not opt.is_train:
        return ""
    hints = [f"try a lower --lr than {opt.lr:g}"]
    if getattr(opt, "init_gain", 0.02) > 1:  # weights scaled far beyond the usual start: the likelier cause
        hints.insert(0, f"try an --init_gain near the default 0.02 (this run's: {opt.init_gain:g})")
    if opt.amp == "fp16":
        hints.append("--amp bf16 (float16's range is narrow)")
    if opt.gan_mode != "lsgan":
        hints.append("--gan_mode lsgan")
    return ", or ".join(hints)


class InputGuards:
    """Per model: says once when inputs get padded, checks that a discriminator can judge an input size (once per
    size), and stops training on a loss that is not finite.

    Args:
        dims: 2 or 3 (the wording of messages: images or patches).
        netG, netD: the flag values named in messages.
        nan_hint: what to try when a loss is not finite.
    """

    def __init__(self, dims: int, netG: str, netD: str, nan_hint: str = "try a lower --lr"):
        self.dims, self.netG, self.netD, self.nan_hint = dims, netG, netD, nan_hint
        self._checked = set()  # (discriminator, channels, size) checked
        self._ran = {}  # (generator, direction, channels): the sizes its dry runs passed
        self._padding_noted = False

    def note_padding(self, generator, x: torch.Tensor) -> None:
        """Generators take any size: one that is not a multiple of what ``generator`` needs is reflection-padded up
        to it and the output cropped back (see networks.Generator). Says so once, on the first such size."""
        spatial = tuple(x.shape[2:])
        extra = padding_for(spatial, generator.size_multiple)
        if self._padding_noted or not any(extra):
            return
        self._padding_noted = True
        if distributed.is_main():
            padded = tuple(s + e for s, e in zip(spatial, extra))
            write(f"note: --netG {self.netG} needs sizes that are multiples of {generator.size_multiple}: "
                  f"inputs of {spatial_text(spatial, label=False)} are reflection-padded to {spatial_text(padded)} "
                  f"and its outputs cropped back (shown once)")

    def check_generator(self, generator, direction: str, channels: int, spatial) -> None:
        """Refuses an input size that ``generator`` cannot translate (e.g. its downsamplings would leave a norm layer
        a single element), found by a dry run on the meta device before any compute; says the smallest size that
        works. A size at least as large on every axis as one that ran needs no dry run: inputs of varying sizes
        (--preprocess none) cost one probe for the smallest, not one per image."""
        ran = self._ran.setdefault((id(generator), direction, channels), [])
        if any(all(n >= m for n, m in zip(spatial, size)) for size in ran):
            return
        probe = meta_copy(generator)
        runs = lambda size: _dry_run(probe, (1, channels) + tuple(size), direction)  # noqa: E731
        if not runs(spatial) and runs([256] * len(spatial)):  # (a failing probe of a large size proves nothing)
            step = max(generator.size_multiple) if isinstance(generator.size_multiple, tuple) else \
                generator.size_multiple
            smallest = smallest_side(runs, spatial, step)
            what = "patches" if self.dims == 3 else "images"
            need = f"; it needs at least {smallest} {'voxels' if self.dims == 3 else 'pixels'} per side" \
                if smallest else ""
            fix = "larger images, or a --preprocess that resizes them (resize_and_crop with a larger --load_size " \
                "and --crop_size)" if self.dims == 2 else "a larger --patch_size"
            raise UserError(f"{what} of {spatial_text(spatial)} are too small for --netG {self.netG}{need}: use {fix}")
        ran.append(tuple(spatial))

    def check_discriminator(self, name: str, netD: torch.nn.Module, channels: int, spatial) -> None:
        """Refuses an input size that ``netD`` would shrink to nothing (a dry run on the meta device: no compute)."""
        key = (name, channels, tuple(spatial))
        if key in self._checked:
            return
        meta = meta_copy(netD)

        def fits(size):
            try:
                with torch.no_grad():
                    out = meta.forward(torch.empty((1, channels) + tuple(size), device="meta"))
                return all(s > 0 for s in out.shape[2:])
            except (RuntimeError, ValueError):  # ValueError: a norm layer left with a single element
                return False
        if not fits(spatial):
            side = smallest_side(fits, spatial) if fits([1024] * len(spatial)) else None
            unit = "voxels" if self.dims == 3 else "pixels"
            raise UserError(f"{'patches' if self.dims == 3 else 'images'} of {spatial_text(spatial)} are too small "
                            f"for --netD {self.netD}" + (f" (it needs at least {side} {unit} per side)" if side else "")
                            + f": use a larger {'--patch_size' if self.dims == 3 else '--crop_size'}, "
                            f"a smaller --n_layers_D with --netD n_layers, or --netD pixel")
        self._checked.add(key)

    def check_finite(self, losses: dict, progress) -> None:
        """Stops training on the first of ``losses`` ({name: tensor}) that is NaN or infinite."""
        for name, value in losses.items():
            if not torch.isfinite(value).all():
                raise UserError(
                    f"loss {name} became {float(value.detach())} at epoch {progress.epoch}, total_iters "
                    f"{progress.total_iters}; training stopped, the last good checkpoint is kept ({self.nan_hint})")
