"""Unpaired images: ``dataroot/PHASEA`` and ``dataroot/PHASEB``; B is drawn at random unless --serial_batches."""
import torch

from data.base_dataset import BaseDataset, get_params, transform
from data.image_folder import load_image, make_dataset
from util.volume import volume_stem


class UnalignedDataset(BaseDataset):
    def __init__(self, opt, domains=None, split=None):
        super().__init__(opt, domains, split)
        self.paths_a = self.listing(make_dataset(self.folder("A"), what="A"))
        self.paths_b = self.listing(make_dataset(self.folder("B"), what="B"))
        stems = [[volume_stem(p) for p in paths] for paths in (self.paths_a, self.paths_b)]
        self.pairing = "by name" if stems[0] == stems[1] else None  # testA/x.png and testB/x.png: a real pair
        self.note_conversions(self.paths_a, "A", self.folder("A"))
        self.note_conversions(self.paths_b, "B", self.folder("B"))

    def __getitem__(self, index):
        gen = self.rng(index)
        path_a = self.paths_a[index % len(self.paths_a)]
        if self.opt.serial_batches:
            index_b = index % len(self.paths_b)
        else:
            index_b = int(torch.randint(0, len(self.paths_b), (1,), generator=gen))
        path_b = self.paths_b[index_b]
        (a, bits_a), (b, bits_b) = load_image(path_a, self.channels("A")), load_image(path_b, self.channels("B"))
        a = transform(a, self.opt, get_params(self.opt, a.shape[1:], gen), path_a)
        b = transform(b, self.opt, get_params(self.opt, b.shape[1:], gen), path_b)
        return {"A": a, "B": b, "A_paths": path_a, "B_paths": path_b, "A_bits": bits_a, "B_bits": bits_b}

    def __len__(self):
        return max(len(self.paths_a), len(self.paths_b))
