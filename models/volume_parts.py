"""What the 3D models share: volume defaults, and the intensity ranges that travel in the checkpoint."""


def volume_defaults(parser, paired):
    """3D models read single-channel volumes by default; paired ones pair A and B files by name."""
    parser.set_defaults(dataset_mode="volume", input_nc=1, output_nc=1, paired=paired)
    return parser


class VolumeModel:
    """Mixin for 3D models: ``dims = 3`` and the per-domain intensity ranges ({"A": (lo, hi), "B": (lo, hi)}),
    saved with every checkpoint so that test.py maps outputs back to original units."""
    dims = 3
    intensity = None

    patch_size = None

    def extra_state(self):
        return dict(super().extra_state(), intensity=self.intensity,
                    patch_size=getattr(self.opt, "patch_size", None) if self.is_train else self.patch_size)

    def load_extra_state(self, extra):
        super().load_extra_state(extra)
        self.intensity, self.patch_size = extra.get("intensity"), extra.get("patch_size")


def share_intensity(dataset, model):
    """Gives a volume dataset and a 3D model the same intensity ranges: the checkpoint's when resuming, else the
    ones the dataset computes from the training volumes. Refuses 2D models on volumes and 3D models on images."""
    from util.errors import UserError
    volumes = hasattr(dataset.dataset, "compute_intensity")
    if volumes != (model.dims == 3):
        raise UserError(f"--model {model.opt.model} is a {model.dims}D model but --dataset_mode "
                        f"{model.opt.dataset_mode} gives {'3D volumes' if volumes else '2D images'}: use "
                        f"{'a 3D model (paired_revgan3d, unpaired_revgan3d, pix2pix3d, cycle_gan3d)' if volumes else '--dataset_mode volume'}")
    if not volumes:
        return
    if model.intensity is None:
        model.intensity = dataset.dataset.compute_intensity()
    dataset.dataset.intensity = model.intensity
    for side, (lo, hi) in model.intensity.items():
        print(f"intensity {side}: [{lo:.6g}, {hi:.6g}] -> [-1, 1]")
