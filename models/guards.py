"""Checks a model makes on its inputs and losses, so that a mistake ends in one line instead of deep in a network."""
import copy

import torch
from tqdm import tqdm

from models.reversible import padding_for
from util import distributed
from util.errors import UserError
from util.util import size_text


class InputGuards:
    """Per model: says once when inputs get padded, checks that a discriminator can judge an input size (once per
    size), and stops training on a loss that is not finite.

    Args:
        dims: 2 or 3 (the wording of messages: images or patches).
        netG, netD: the flag values named in messages.
    """

    def __init__(self, dims: int, netG: str, netD: str):
        self.dims, self.netG, self.netD = dims, netG, netD
        self._checked = set()
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
            tqdm.write(f"note: --netG {self.netG} needs sizes that are multiples of {generator.size_multiple}: "
                       f"inputs of {size_text(spatial)} are reflection-padded to {size_text(padded)} and its outputs "
                       f"cropped back (shown once)")

    def check_discriminator(self, name: str, netD: torch.nn.Module, channels: int, spatial) -> None:
        """Refuses an input size that ``netD`` would shrink to nothing (a dry run on the meta device: no compute)."""
        key = (name, channels, tuple(spatial))
        if key in self._checked:
            return
        try:
            with torch.no_grad():
                probe = copy.deepcopy(netD).to("meta")
                out = probe.forward(torch.empty((1, channels) + tuple(spatial), device="meta"))  # never compiled
            ok = all(s > 0 for s in out.shape[2:])
        except (RuntimeError, ValueError):  # ValueError: a norm layer left with a single element
            ok = False
        if not ok:
            raise UserError(f"{'patches' if self.dims == 3 else 'images'} of {size_text(spatial)} are too small for "
                            f"--netD {self.netD}: use a larger {'--patch_size' if self.dims == 3 else '--crop_size'}, "
                            f"a smaller --n_layers_D with --netD n_layers, or --netD pixel")
        self._checked.add(key)

    @staticmethod
    def check_finite(losses: dict, progress) -> None:
        """Stops training on the first of ``losses`` ({name: tensor}) that is NaN or infinite."""
        for name, value in losses.items():
            if not torch.isfinite(value).all():
                raise UserError(
                    f"loss {name} became {float(value.detach())} at epoch {progress.epoch}, total_iters "
                    f"{progress.total_iters}; training stopped, the last good checkpoint is kept "
                    f"(try a lower --lr, or --gan_mode lsgan)")
