"""Paired images: ``dataroot/PHASE/`` holding A|B side by side (pix2pix layout), or ``dataroot/PHASEA`` and
``dataroot/PHASEB`` holding the pairs under matching names."""
import os

from data.base_dataset import BaseDataset, get_params, transform
from data.image_folder import load_image, make_dataset
from util.errors import UserError
from util.volume import volume_stem


class AlignedDataset(BaseDataset):
    pairing = "aligned"

    def __init__(self, opt, domains=None, split=None):
        super().__init__(opt, domains, split)
        combined = os.path.join(opt.dataroot, opt.phase)
        if os.path.isdir(combined):
            self.pairs = [(p, None) for p in self.listing(make_dataset(combined, what="aligned"))]
            self.note_conversions([p for p, _ in self.pairs], "A", combined)
        else:
            dir_a, dir_b = self.folder("A"), self.folder("B")
            if not (os.path.isdir(dir_a) and os.path.isdir(dir_b)):
                raise UserError(f"aligned data needs {combined}/ (A|B side by side) or {combined}A/ and {combined}B/ "
                                f"(check --dataroot and --phase)")
            paths_a, paths_b = make_dataset(dir_a, what="A"), make_dataset(dir_b, what="B")
            self.pairs = self.listing(pairs_by_name(paths_a, paths_b, dir_a, dir_b),
                                      key=lambda pair: volume_stem(pair[0]))
            self.note_conversions([a for a, _ in self.pairs], "A", dir_a)
            self.note_conversions([b for _, b in self.pairs], "B", dir_b)

    def _load(self, index):
        path_a, path_b = self.pairs[index]
        if path_b is not None:
            (a, bits_a), (b, bits_b) = load_image(path_a, self.channels("A")), load_image(path_b, self.channels("B"))
            if a.shape[1:] != b.shape[1:]:
                raise UserError(f"paired images {path_a} ({a.shape[2]}x{a.shape[1]}) and {path_b} "
                                f"({b.shape[2]}x{b.shape[1]}) differ in size (width x height)")
            return a, b, path_a, path_b, bits_a, bits_b
        if self.channels("A") != self.channels("B"):
            raise UserError(f"{path_a}: side-by-side pairs need --input_nc equal to --output_nc")
        ab, bits = load_image(path_a, self.channels("A"))
        h, w = ab.shape[1:]
        if w % 2:  # halves of any shape, as pix2pix splits them (datasets/combine_A_and_B.py writes such pairs)
            raise UserError(f"aligned image {path_a} is {w}x{h} (width x height): an A|B pair is two images of one "
                            f"size side by side, so its width must be even (see datasets/combine_A_and_B.py)")
        halves = {"A": ab[:, :, : w // 2], "B": ab[:, :, w // 2:]}  # the file's own A (left) and B (right)
        return halves[self.domains.side_folder("A")], halves[self.domains.side_folder("B")], path_a, path_a, bits, bits

    def __getitem__(self, index):
        a, b, path_a, path_b, bits_a, bits_b = self._load(index)
        params = get_params(self.opt, a.shape[1:], self.rng(index))
        a, b = transform(a, self.opt, params, path_a), transform(b, self.opt, params, path_b)
        return {"A": a, "B": b, "A_paths": path_a, "B_paths": path_b, "A_bits": bits_a, "B_bits": bits_b}

    def __len__(self):
        return len(self.pairs)


def pairs_by_name(paths_a, paths_b, dir_a, dir_b):
    """[(A file, B file)] of the same name (relative to their folders; any extension: x.png with x.jpg); files
    without a partner are an error, so that unrelated images are never paired silently by their order."""
    def name(path, folder):
        return os.path.splitext(os.path.relpath(path, folder))[0]
    by_name = {name(p, dir_b): p for p in paths_b}
    names_a = {name(p, dir_a) for p in paths_a}
    alone = sorted(names_a ^ set(by_name))
    if alone:
        raise UserError(f"paired data pairs the files of {dir_a} and {dir_b} by name, but {len(alone)} have no partner "
                        f"of their name ({', '.join(alone[:4])}{', ...' if len(alone) > 4 else ''}): rename them, or "
                        f"for unpaired data use --model cycle_gan or unpaired_revgan (--dataset_mode unaligned)")
    return [(p, by_name[name(p, dir_a)]) for p in paths_a]
