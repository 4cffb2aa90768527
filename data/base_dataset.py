"""Base dataset and the shared preprocessing: resize, crop, scale_width, flips, normalization to [-1, 1].

Images are float tensors (C, H, W) in [0, 1] from ``data.image_folder.load_image``, so 16-bit data keeps its
precision through every transform. Random choices (crop position, flip) come from a generator seeded by
(seed, epoch, index): the same sample gets the same augmentation in a resumed run, whatever the worker count.
"""
import os
import zlib

import torch
import torch.nn.functional as F

from util import distributed
from util.errors import UserError
from util.volume import volume_stem


class DomainMap:
    """Which data folder and channel count each domain and each side of a dataset item come from: the one place
    that knows what --direction does to the data.

    ``folder``: model domain -> data folder letter. With ``swap`` (the models' declaration ``direction_swaps_data``;
    all but ``--model test``) --direction BtoA swaps the folders, as in CycleGAN: the model's domain A reads the B
    files (``PHASE``B). ``channels``: model domain -> channels (--input_nc for A, --output_nc for B).
    ``side``: item side -> model domain. An item's A side is domain A, except under ``--model test``, whose domains
    are the checkpoint's and whose A side is the translation's source (domain B for --direction BtoA).

    Args:
        direction: AtoB or BtoA.
        input_nc, output_nc: channels of the model's domains A and B.
        swap: the model's ``direction_swaps_data``.
    """

    def __init__(self, direction: str, input_nc: int, output_nc: int, swap: bool = True):
        flipped = {"A": "B", "B": "A"}
        same = {"A": "A", "B": "B"}
        self.folder = flipped if swap and direction == "BtoA" else same
        self.side = flipped if not swap and direction == "BtoA" else same
        self.channels = {"A": input_nc, "B": output_nc}

    @classmethod
    def of(cls, opt, swap: bool = True) -> "DomainMap":
        return cls(opt.direction, opt.input_nc, opt.output_nc, swap)

    def side_folder(self, side: str) -> str:
        """The data folder letter of an item's ``side``."""
        return self.folder[self.side[side]]

    def side_channels(self, side: str) -> int:
        return self.channels[self.side[side]]


def held_out(paths, fraction, key=None):
    """Which of ``paths`` --val_fraction holds out for validation: decided by a hash of the file's name (so A and B
    files of the same name go together, and adding files does not reshuffle the others), at least one file and
    never all of them."""
    key = key or volume_stem
    if not paths or fraction <= 0:
        return [False] * len(paths)
    scores = [zlib.crc32(key(p).encode()) / 2 ** 32 for p in paths]
    held = [s < fraction for s in scores]
    if len(paths) > 1 and not any(held):
        held[min(range(len(paths)), key=scores.__getitem__)] = True
    if all(held):
        held[max(range(len(paths)), key=scores.__getitem__)] = False
    return held


def split_paths(paths, fraction, part, key=None):
    """The ``paths`` that --val_fraction ``fraction`` keeps for training (``part`` "train") or holds out ("val")."""
    return [p for p, h in zip(paths, held_out(paths, fraction, key)) if h == (part == "val")]


class BaseDataset(torch.utils.data.Dataset):
    """A dataset of items {"A": tensor, "B": tensor, "A_paths": path, ...} keyed by the model's domains
    (see DomainMap)."""
    volumes = False  # 3D volumes (VolumeDataset) rather than 2D images
    # how an item's B relates to its A: "aligned" (a real pair), "by name" (files of the same name: a real pair) or
    # None (unpaired: B is no reference for a translation of A)
    pairing = None
    two_domains = True  # items hold A and B (SingleDataset: A only)

    def __init__(self, opt, domains: DomainMap = None, split: str = None):
        """Args:
            opt: the options.
            domains: which folders and channel counts feed each side (default: the options').
            split: None for every file; "train" or "val" for the files --val_fraction keeps for training or holds
                out for validation (see ``held_out``).
        """
        self.opt = opt
        self.root = opt.dataroot
        self.epoch = 0
        self.domains = domains or DomainMap.of(opt)
        self.split = split

    def listing(self, paths, key=None):
        """``paths`` of this dataset's split (all, or those --val_fraction keeps or holds out), at most
        --max_dataset_size of them. ``key``: the name a file is held out by (default its stem)."""
        if self.split is not None:
            kept = split_paths(paths, self.opt.val_fraction, self.split, key)
            if not kept:
                raise UserError(f"--val_fraction {self.opt.val_fraction:g}: {len(paths)} file(s) are too few to hold "
                                f"some out for validation and train on the rest: add files, or a "
                                f"{os.path.join(self.opt.dataroot, 'valA')} and valB")
            paths = kept
        return paths[: int(min(self.opt.max_dataset_size, len(paths)))]

    def folder(self, side: str) -> str:
        """The data folder of the item's ``side`` (A or B): ``dataroot/PHASE`` + its letter."""
        return os.path.join(self.opt.dataroot, self.opt.phase + self.domains.side_folder(side))

    def channels(self, side: str) -> int:
        return self.domains.side_channels(side)

    def note_conversions(self, paths, side: str, folder: str) -> None:
        """Says once (rank 0) how many images of ``side`` get converted to its channel count."""
        from data.image_folder import note_conversions
        if distributed.is_main():
            flag = "--input_nc" if self.domains.side[side] == "A" else "--output_nc"
            note_conversions(paths, self.channels(side), flag, folder)

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return parser

    def rng(self, index, stream=0):
        return torch.Generator().manual_seed(((self.opt.seed * 1000003 + self.epoch) * 1000003 + index) * 7 + stream)


def _resize(img, h, w):
    if img.shape[-2:] == (h, w):
        return img
    out = F.interpolate(img[None], size=(h, w), mode="bicubic", align_corners=False, antialias=True)[0]
    return out.clamp_(0, 1)


def get_params(opt, size, gen):
    """Random crop position and flip for an image of ``size`` (h, w), drawn from ``gen``."""
    h, w = size
    new_h, new_w = h, w
    if opt.preprocess == "resize_and_crop":
        new_h = new_w = opt.load_size
    elif opt.preprocess.startswith("scale_width"):
        new_w = opt.load_size
        new_h = max(int(round(opt.load_size * h / w)), opt.crop_size if "crop" in opt.preprocess else 1)
    x = y = 0
    if "crop" in opt.preprocess:
        x = int(torch.randint(0, max(0, new_w - opt.crop_size) + 1, (1,), generator=gen))
        y = int(torch.randint(0, max(0, new_h - opt.crop_size) + 1, (1,), generator=gen))
    flip = bool(torch.rand(1, generator=gen) > 0.5) and opt.is_train and not opt.no_flip
    return {"size": (new_h, new_w), "crop_pos": (y, x), "flip": flip}


def transform(img, opt, params, path=""):
    """Applies preprocess/crop/flip with ``params`` and maps [0, 1] to [-1, 1]."""
    h, w = params["size"]
    img = _resize(img, h, w)
    if "crop" in opt.preprocess:
        if opt.crop_size > h or opt.crop_size > w:
            raise UserError(f"--crop_size {opt.crop_size} is larger than image {path} after preprocessing "
                            f"({w}x{h}, width x height); lower --crop_size or raise --load_size")
        y, x = params["crop_pos"]
        img = img[:, y:y + opt.crop_size, x:x + opt.crop_size]
    if params["flip"]:
        img = img.flip(-1)
    return img * 2 - 1
