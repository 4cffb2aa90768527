"""What the 3D models add to their 2D versions: volume defaults, and the intensity ranges and patch size that
travel in every checkpoint (so that test.py maps outputs back to original units)."""
from dataclasses import dataclass
from typing import Optional


def volume_defaults(parser, paired: bool):
    """3D models read single-channel volumes by default; paired ones pair A and B files by name. Their default
    --norm is none: test.py translates whole volumes window by window, and a normalization computed per window
    (instance norm) makes neighbouring windows disagree: grey blocks in flat background and seams at window borders
    (measured: 16.9 dB against 30.6 dB with the global residual and no normalization; see README, Quality)."""
    parser.set_defaults(dataset_mode="volume", input_nc=1, output_nc=1, paired=paired, norm="none")
    return parser


@dataclass
class VolumeMeta:
    """A 3D model's data facts, saved with its checkpoints.

    Args:
        intensity: {"A": (lo, hi), "B": (lo, hi)}: the original units each domain maps to [-1, 1]; set from the
            training volumes (data.share_intensity) or from a checkpoint.
        patch_size: the training patch (depth, height, width), test.py's default window.
    """
    intensity: Optional[dict] = None
    patch_size: Optional[list] = None

    def state(self) -> dict:
        return {"intensity": self.intensity, "patch_size": self.patch_size}

    def load(self, extra: dict, keep_patch: bool) -> None:
        """From a checkpoint's ``extra``; ``keep_patch`` keeps this run's patch size (training goes on with it)."""
        self.intensity = extra.get("intensity")
        if not keep_patch:
            self.patch_size = extra.get("patch_size")
