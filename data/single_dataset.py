"""Images of one domain, for inference: ``--dataroot`` itself, or ``dataroot/PHASEA`` (``PHASEB`` with BtoA)."""
import os

from data.base_dataset import BaseDataset, get_params, transform
from data.image_folder import is_image_file, load_image, make_dataset


class SingleDataset(BaseDataset):
    def __init__(self, opt):
        super().__init__(opt)
        folder = opt.dataroot
        has_images = os.path.isdir(folder) and any(is_image_file(f) for f in os.listdir(folder))
        if not has_images:
            folder = os.path.join(opt.dataroot, opt.phase + ("B" if opt.direction == "BtoA" else "A"))
        self.paths = make_dataset(folder, opt.max_dataset_size, "input")
        self.nc = opt.output_nc if opt.direction == "BtoA" else opt.input_nc

    def __getitem__(self, index):
        path = self.paths[index]
        img, bits = load_image(path, self.nc)
        img = transform(img, self.opt, get_params(self.opt, img.shape[1:], self.rng(index)), path)
        return {"A": img, "A_paths": path, "A_bits": bits}

    def __len__(self):
        return len(self.paths)
