"""Dataset registry: ``--dataset_mode X`` loads ``data/X_dataset.py`` and its class ``XDataset`` (case-insensitive)."""
import os

import torch

from data.base_dataset import DomainMap
from util import distributed
from util.errors import UserError
from util.util import spatial_text
from util.registry import available, find_class

_HERE = os.path.dirname(os.path.abspath(__file__))
# How test.py and validation read data: whole items in order, no flips, one at a time, in this process
TEST_READING = {"serial_batches": True, "no_flip": True, "batch_size": 1, "num_threads": 0}
# ... and how they scale 2D images after training's --preprocess: whole images at the scale the model learned
SCALE_AT_TEST = {"resize_and_crop": "resize_and_crop", "crop": "none", "none": "none", "scale_width": "scale_width",
                 "scale_width_and_crop": "scale_width"}


def test_scale(preprocess, load_size, crop_size):
    """{preprocess, load_size, crop_size} that read whole 2D images at the scale a model trained with these flags
    saw: resized to its crop size (resize_and_crop), at their own size (crop, none: the pixels it trained on), scaled
    to its load size wide (scale_width...). {} for a --preprocess it does not know (an older checkpoint's None)."""
    if preprocess not in SCALE_AT_TEST:
        return {}
    preprocess = SCALE_AT_TEST[preprocess]
    size = crop_size if preprocess == "resize_and_crop" else load_size
    if preprocess == "none" or not isinstance(size, int):
        return {"preprocess": preprocess}
    return {"preprocess": preprocess, "load_size": size, "crop_size": size}


def available_datasets():
    return available(_HERE, "dataset")


def find_dataset_using_name(name):
    return find_class("data", _HERE, name, "dataset", "--dataset_mode")


def get_option_setter(name):
    return find_dataset_using_name(name).modify_commandline_options


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled (or serial) order that depends only on (seed, epoch), starting at ``start``: a resumed run sees
    exactly the batches the interrupted run would have seen next.

    ``per_epoch`` (--samples_per_epoch; default ``n``): the samples an epoch takes. Shuffled, a random draw without
    repeats within the epoch (more than ``n``: whole permutations one after another, then part of one; the datasets
    draw crops and flips per (epoch, index), so a sample taken twice in an epoch is the same crop twice); serial, the
    next ``per_epoch`` samples in order (epoch 1 from the first), wrapping round, so that successive epochs go through
    all of them.

    Under torchrun (``world`` processes) the epoch's order is padded by repeating its first samples to a multiple of
    ``world`` (as torch's DistributedSampler does) and process ``rank`` takes every ``world``-th sample from
    ``rank``; ``start`` then counts samples of all processes together."""

    def __init__(self, n, seed, shuffle, rank=0, world=1, per_epoch=None):
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.per_epoch = n if per_epoch is None else per_epoch
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch, start=0):
        self.epoch, self.start = epoch, start

    @property
    def total(self):
        """Samples in one epoch, over all processes (with the padding)."""
        return -(-self.per_epoch // self.world) * self.world

    def order(self):
        m = self.per_epoch
        if not self.n:
            return []
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = []
            while len(order) < m:
                order += torch.randperm(self.n, generator=g).tolist()
            order = order[:m]
        else:
            first = (self.epoch - 1) * m % self.n  # epoch 1 from the first (all of them: every epoch)
            order = [(first + i) % self.n for i in range(m)]
        while len(order) < self.total:
            order += order[:self.total - len(order)]
        return order

    def __iter__(self):
        return iter(self.order()[self.start + self.rank::self.world])

    def __len__(self):
        return max(0, self.total - self.start - self.rank + self.world - 1) // self.world


def collate(batch):
    """torch's default collation, after checking that the batch's tensors agree in shape per key."""
    for key, value in batch[0].items():
        if torch.is_tensor(value):
            shapes = list(dict.fromkeys(tuple(item[key].shape) for item in batch))
            if len(shapes) > 1:
                sizes = ", ".join(spatial_text(s[1:], label=False) for s in shapes)
                sizes += " (width x height)" if len(shapes[0]) == 3 else ""  # images; volumes in array order
                raise UserError(f"items of different sizes cannot share a batch ({key}: {sizes}): use --batch_size 1, "
                                f"or a --preprocess that crops them to one --crop_size")
    return torch.utils.data.default_collate(batch)


class DataLoader:
    """Wraps a dataset with an epoch-aware sampler (sharded over torchrun's processes) and a torch DataLoader."""

    def __init__(self, opt, domains=None, split=None, shard=True, per_epoch=None):
        self.opt = opt
        self.dataset = find_dataset_using_name(opt.dataset_mode)(opt, domains or DomainMap.of(opt), split)
        shuffle = opt.is_train and not opt.serial_batches
        rank, world = (distributed.rank(), distributed.world_size()) if shard else (0, 1)
        self.sampler = EpochSampler(len(self.dataset), opt.seed, shuffle, rank, world, per_epoch)
        self.loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=opt.batch_size, sampler=self.sampler, num_workers=int(opt.num_threads),
            drop_last=False, persistent_workers=False, collate_fn=collate,
            # its own generator: creating an iterator must not draw from the global RNG that checkpoints restore
            generator=torch.Generator().manual_seed(opt.seed))

    def set_epoch(self, epoch, start=0):
        """Start ``epoch`` at sample ``start`` (counted in samples of all processes, as --save_latest_freq is)."""
        self.dataset.epoch = epoch
        self.sampler.set_epoch(epoch, start)

    @property
    def epoch_samples(self):
        """Samples in one epoch over all processes: len(self), padded to a multiple of the process count."""
        return self.sampler.total

    def batches_left(self):
        """Batches this process has left in the current epoch."""
        return -(-len(self.sampler) // self.opt.batch_size)

    def __len__(self):
        return len(self.dataset)

    def __iter__(self):
        return iter(self.loader)


def create_dataset(opt, domains=None, split=None, shard=True, per_epoch=None):
    """The --dataset_mode dataset of --dataroot in a DataLoader; ``domains`` (a DomainMap) says which folders and
    channel counts feed each side (default: the options', as for training); ``split``: see BaseDataset;
    ``shard=False``: every torchrun process reads all of it (validation); ``per_epoch``: samples per epoch (training's
    --samples_per_epoch; default all)."""
    check_dataroot(opt)
    return DataLoader(opt, domains, split, shard, per_epoch)


def check_dataroot(opt):
    if not os.path.isdir(opt.dataroot):
        raise UserError(f"--dataroot {opt.dataroot} does not exist (or is not a folder)")


def validation_source(opt):
    """Where --val_freq's held-out data comes from, in this order: "folder" (DATAROOT/val, or valA and valB, read
    like the test set), "fraction" (--val_fraction of the training files, held out from training), or None (no
    validation)."""
    if not opt.is_train or not opt.val_freq:
        return None
    check_dataroot(opt)
    root = opt.dataroot
    if os.path.isdir(os.path.join(root, "val")) or all(os.path.isdir(os.path.join(root, "val" + s)) for s in "AB"):
        return "folder"
    if opt.val_fraction > 0:
        return "fraction"
    raise UserError(f"--val_freq {opt.val_freq}: no validation data: add {os.path.join(root, 'valA')} and valB "
                    f"(or val/ of A|B pairs), or hold out part of the training data with --val_fraction 0.1")


def resolve_dataroot(opt, volumes):
    """No --dataroot: the demo dataset (built on first use, by rank 0 under torchrun); the 3D one for ``volumes``.
    Returns the data root."""
    if opt.dataroot is not None:
        return opt.dataroot
    if volumes:
        from datasets.make_demo_volumes import ensure_demo_volumes as ensure
    else:
        from datasets.make_demo_dataset import ensure_demo_dataset as ensure
    if distributed.is_main():
        root = ensure()
        print(f"no --dataroot given: using the demo dataset at {root}")
    distributed.barrier()
    return root if distributed.is_main() else ensure()
