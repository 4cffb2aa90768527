"""Images of one domain, for inference: ``--dataroot`` itself, or the folder of the item's A side
(``dataroot/PHASEA``; ``PHASEB`` with --direction BtoA, see DomainMap)."""
import os

from data.base_dataset import BaseDataset, get_params, transform
from data.image_folder import is_image_file, load_image, make_dataset


class SingleDataset(BaseDataset):
    two_domains = False

    def __init__(self, opt, domains=None, split=None):
        super().__init__(opt, domains, split)
        folder = opt.dataroot
        has_images = os.path.isdir(folder) and any(is_image_file(f) for f in os.listdir(folder))
        if not has_images:
            folder = self.folder("A")
        self.paths = self.listing(make_dataset(folder, what="input"))
        self.note_conversions(self.paths, "A", folder)

    def __getitem__(self, index):
        path = self.paths[index]
        img, bits = load_image(path, self.channels("A"))
        img = transform(img, self.opt, get_params(self.opt, img.shape[1:], self.rng(index)), path)
        return {"A": img, "A_paths": path, "A_bits": bits}

    def __len__(self):
        return len(self.paths)
