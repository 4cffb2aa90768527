"""What the 3D models add to their 2D versions (``class X3DModel(VolumeModel, XModel)``): volume defaults, the
intensity ranges and patch size that travel in every checkpoint (so that test.py maps outputs back to original
units), and the check that a model and its training data have the same dimensions."""
from dataclasses import dataclass
from typing import Optional

from util.errors import UserError

VOLUME_MODELS = "paired_revgan3d, unpaired_revgan3d, pix2pix3d, cycle_gan3d"


def volume_defaults(parser, paired: bool):
    """3D models read single-channel volumes by default; paired ones pair A and B files by name. Their default
    --norm is none: test.py translates whole volumes window by window, and a normalization computed per window
    (instance norm) makes neighbouring windows disagree: grey blocks in flat background and seams at window borders
    (measured: 16.9 dB against 30.6 dB with the global residual and no normalization; see README, Quality). Their
    default --stem is None, the unshuffle stem (ModelSpec.from_options): it gains pix2pix3d 0.29 dB, and scores as
    conv7 does for the unpaired 3D models in 0.52-0.66x the time (docs/benchmarks.md, "The unshuffle stem"); in 2D only
    paired_revgan has it (2D pix2pix and the unpaired 2D models lose with it)."""
    parser.set_defaults(dataset_mode="volume", input_nc=1, output_nc=1, paired=paired, norm="none", stem=None)
    return parser


@dataclass
class VolumeMeta:
    """A 3D model's data facts, saved with its checkpoints.

    Args:
        intensity: {"A": (lo, hi), "B": (lo, hi)}: the original units each domain maps to [-1, 1]; set from the
            training volumes (match_data) or from a checkpoint.
        patch_size: the training patch (along the array's axes in file order), test.py's default window.
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


class VolumeModel:
    """Mixin (before the 2D model) of the 3D models: ``dims = 3`` and ``volume``, saved as the checkpoint's
    "extra"."""
    dims = 3

    def __init__(self, opt, spec):
        super().__init__(opt, spec)
        self.volume = VolumeMeta(patch_size=opt.patch_size if self.is_train else None)

    def extra_state(self) -> dict:
        return self.volume.state()

    def load_extra(self, extra: dict) -> None:
        self.volume.load(extra, keep_patch=self.is_train)


def match_data(model, dataset) -> None:
    """Refuses a 2D model on volumes and a 3D model on images; gives a volume ``dataset`` (data.BaseDataset) and its
    3D model one set of intensity ranges: the checkpoint's when resuming, else those the dataset computes from the
    training volumes."""
    if dataset.volumes != (model.dims == 3):
        fix = f"a 3D model ({VOLUME_MODELS})" if dataset.volumes else "--dataset_mode volume"
        raise UserError(f"--model {model.opt.model} is a {model.dims}D model but --dataset_mode "
                        f"{model.opt.dataset_mode} gives {'3D volumes' if dataset.volumes else '2D images'}: use {fix}")
    if not dataset.volumes:
        return
    if model.volume.intensity is None:
        model.volume.intensity = dataset.compute_intensity()
    dataset.intensity = model.volume.intensity
    for side, (lo, hi) in model.volume.intensity.items():
        print(f"intensity {side}: [{lo:.6g}, {hi:.6g}] -> [-1, 1]")
