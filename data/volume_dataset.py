"""3D volumes: ``dataroot/PHASEA`` and ``dataroot/PHASEB`` of NIfTI (.nii, .nii.gz) or .npy files.

Paired data (``paired``, a default the paired models set) pairs A and B files by name and cuts both at the same
place; unpaired data draws B independently. Each domain's intensities are mapped to [-1, 1] by ``--intensity_A`` /
``--intensity_B`` (a fixed window, or percentiles or min-max over the training set); the ranges travel in the
checkpoint, so test.py maps outputs back to original units. Every item is a random patch of ``--patch_size``;
volumes smaller than a patch are padded, and ``--foreground_sampling`` centres that share of patches on voxels
above the bottom tenth of the window, so patches are not mostly background.
"""
import numpy as np
import torch

from data.base_dataset import BaseDataset
from util.argtypes import BELOW_ONE, COUNT, FRACTION
from util.errors import UserError
from util.flags import FIXED, RESUMED
from util.util import size_text
from util.volume import (intensity_range, list_volumes, load_volume, pad_to, parse_intensity, parse_patch_size,
                         to_unit, volume_axes, volume_shape, volume_stem)


def add_volume_options(parser, is_train=True):
    parser.add_argument("--patch_size", policy=RESUMED, type=COUNT, nargs="+", default=[64] if is_train else None,
                        help="patch: one size (cube) or three, along the volume array's axes in file order "
                             "(NIfTI: i j k, for most files x y z, so thick axial slices are the last); test.py "
                             "defaults to the training patch")
    # the ranges they give are fixed when training starts and travel in the checkpoint (models.volume.VolumeMeta):
    # resuming and testing use those, whatever is typed (said)
    parser.add_argument("--intensity_A", policy=FIXED, default="percentile:0.5,99.5",
                        help="domain A intensities to [-1, 1]: window:LO,HI (e.g. window:-1150,350 for CT in HU), "
                             "percentile:P1,P2 or minmax over the training set (fixed when training starts)")
    parser.add_argument("--intensity_B", policy=FIXED, default="percentile:0.5,99.5", help="the same for domain B")
    parser.add_argument("--foreground_sampling", policy=RESUMED, type=FRACTION, default=0.5,
                        help="share of patches centred on a foreground voxel (0 to 1)")
    parser.add_argument("--samples_per_volume", policy=RESUMED, type=COUNT, default=4,
                        help="patches per volume in one epoch")
    parser.add_argument("--no_pad", policy=RESUMED, action="store_true",
                        help="do not pad volumes smaller than a patch (an error instead)")
    parser.add_argument("--overlap", policy=RESUMED, type=BELOW_ONE, default=0.5,
                        help="test: sliding-window overlap (0 to <1)")
    return parser


class VolumeDataset(BaseDataset):
    volumes = True

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return add_volume_options(parser, is_train)

    def __init__(self, opt, domains=None, split=None):
        super().__init__(opt, domains, split)
        if opt.input_nc != 1 or opt.output_nc != 1:
            raise UserError("volumes are single-channel: use --input_nc 1 --output_nc 1")
        self.patch = parse_patch_size(opt.patch_size)
        for flag in ("intensity_A", "intensity_B"):
            parse_intensity(getattr(opt, flag), "--" + flag)
        self.paths = {s: self.listing(list_volumes(self.folder(s), what=s)) for s in "AB"}
        # --intensity_A/_B name the data folders' domains
        self.specs = {s: vars(opt)["intensity_" + self.domains.side_folder(s)] for s in "AB"}
        self.paired = bool(getattr(opt, "paired", False))
        if self.paired:
            stems = {s: [volume_stem(p) for p in self.paths[s]] for s in "AB"}
            if stems["A"] != stems["B"]:
                only = sorted(set(stems["A"]) ^ set(stems["B"]))
                raise UserError(f"paired volumes must have the same names in {opt.phase}A and {opt.phase}B; "
                                f"unmatched: {', '.join(only[:5])}")
        # every file's shape from its header, so a bad volume stops the run before any training (and saving)
        shapes = {s: [volume_shape(p) for p in self.paths[s]] for s in "AB"}
        if self.paired:
            for pa, pb, sa, sb in zip(self.paths["A"], self.paths["B"], shapes["A"], shapes["B"]):
                if sa != sb:
                    raise UserError(f"paired volumes {pa} and {pb} differ in shape ({size_text(sa)} vs "
                                    f"{size_text(sb)}); resample them to one grid")
            self._note_orientations()
        for s in "AB":
            for path, shape in zip(self.paths[s], shapes[s]):
                self._check_fits(shape, path)
        self.intensity = None  # {"A": (lo, hi), "B": (lo, hi)}: from the training set, or from a checkpoint

    def _note_orientations(self):
        """Pairs are matched voxel by voxel: pairs whose headers give their array axes other anatomical directions
        (RAS and LAS: one mirrored) are said, since they would teach the model mirrored pairs."""
        axes = [(pa, pb, volume_axes(pa), volume_axes(pb)) for pa, pb in zip(self.paths["A"], self.paths["B"])]
        differ = [(pa, pb, xa, xb) for pa, pb, xa, xb in axes if xa and xb and xa != xb]
        if differ:
            pa, pb, xa, xb = differ[0]
            print(f"note: {len(differ)} of {len(axes)} {self.opt.phase} pairs have other orientations in their headers "
                  f"(e.g. {pa}: {xa}, {pb}: {xb}); pairs are matched voxel by voxel, so such a pair may show one "
                  f"anatomy mirrored: reorient both to one orientation (e.g. nibabel.as_closest_canonical) if so")

    def compute_intensity(self):
        """Each domain's (lo, hi) from its --intensity_* spec over the training volumes."""
        self.intensity = {s: intensity_range(self.specs[s], "--intensity_" + s,
                                             (load_volume(p)[0] for p in self.paths[s]), say=print) for s in "AB"}
        return self.intensity

    def _check_fits(self, shape, path):
        if self.opt.no_pad and any(n < p for n, p in zip(shape, self.patch)):
            raise UserError(f"--patch_size {size_text(self.patch)} is larger than volume {path} "
                            f"({size_text(shape)}) and --no_pad is set: lower --patch_size or "
                            f"drop --no_pad")

    def _corner(self, vol, gen):
        """A patch corner: around a random foreground voxel with probability --foreground_sampling, else uniform."""
        limits = [max(0, n - p) for n, p in zip(vol.shape, self.patch)]
        if float(torch.rand(1, generator=gen)) < self.opt.foreground_sampling:
            fg = np.flatnonzero(vol.reshape(-1) > -0.8)
            if fg.size:
                centre = np.unravel_index(fg[int(torch.randint(0, fg.size, (1,), generator=gen))], vol.shape)
                return [int(min(max(0, c - p // 2), lim)) for c, p, lim in zip(centre, self.patch, limits)]
        return [int(torch.randint(0, lim + 1, (1,), generator=gen)) for lim in limits]

    def _patch(self, vol, corner):
        z, y, x = corner
        pd, ph, pw = self.patch
        return torch.from_numpy(np.ascontiguousarray(vol[z:z + pd, y:y + ph, x:x + pw]))[None]

    def _load(self, side, path):
        if self.intensity is None:
            raise RuntimeError("VolumeDataset.intensity is not set: call compute_intensity() or set it from a "
                               "checkpoint first")
        arr = load_volume(path)[0]
        lo, hi = self.intensity[side]
        return to_unit(arr, lo, hi).astype(np.float32)

    def __getitem__(self, index):
        gen = self.rng(index)
        i = index // self.opt.samples_per_volume
        path_a = self.paths["A"][i % len(self.paths["A"])]
        if self.paired or self.opt.serial_batches:
            path_b = self.paths["B"][i % len(self.paths["B"])]
        else:
            path_b = self.paths["B"][int(torch.randint(0, len(self.paths["B"]), (1,), generator=gen))]
        a = self._load("A", path_a)
        b = self._load("B", path_b)
        if self.paired and a.shape != b.shape:
            raise UserError(f"paired volumes {path_a} and {path_b} differ in shape ({size_text(a.shape)}"
                            f" vs {size_text(b.shape)}); resample them to one grid")
        a, b = pad_to(a, self.patch, -1.0), pad_to(b, self.patch, -1.0)
        if self.paired:
            corner = self._corner(a, gen)
            pa, pb = self._patch(a, corner), self._patch(b, corner)
        else:
            pa, pb = self._patch(a, self._corner(a, gen)), self._patch(b, self._corner(b, gen))
        return {"A": pa, "B": pb, "A_paths": path_a, "B_paths": path_b}

    def __len__(self):
        return max(len(self.paths["A"]), len(self.paths["B"])) * self.opt.samples_per_volume
