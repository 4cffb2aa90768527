"""Combine paired images into A|B side-by-side images (the pix2pix `aligned` layout).

    python datasets/combine_A_and_B.py --fold_A A --fold_B B --fold_AB AB
A/train/x.png and B/train/x.png (same name, same size) become AB/train/x.png, twice as wide.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--fold_A", required=True, help="folder with one subfolder per split (train, test, ...)")
    p.add_argument("--fold_B", required=True)
    p.add_argument("--fold_AB", required=True, help="output folder")
    p.add_argument("--num_imgs", type=int, default=1000000)
    args = p.parse_args()
    if not os.path.isdir(args.fold_A) or not os.path.isdir(args.fold_B):
        sys.exit(f"error: {args.fold_A} or {args.fold_B} is not a folder")
    for split in sorted(os.listdir(args.fold_A)):
        dir_a, dir_b = os.path.join(args.fold_A, split), os.path.join(args.fold_B, split)
        if not os.path.isdir(dir_a):
            continue
        out = os.path.join(args.fold_AB, split)
        os.makedirs(out, exist_ok=True)
        names = sorted(os.listdir(dir_a))[: args.num_imgs]
        for name in names:
            path_b = os.path.join(dir_b, name)
            if not os.path.isfile(path_b):
                print(f"skipping {name}: no {path_b}", file=sys.stderr)
                continue
            a, b = np.asarray(Image.open(os.path.join(dir_a, name))), np.asarray(Image.open(path_b))
            if a.shape != b.shape:
                sys.exit(f"error: {name}: A is {a.shape} but B is {b.shape}")
            Image.fromarray(np.concatenate([a, b], axis=1)).save(os.path.join(out, os.path.splitext(name)[0] + ".png"))
        print(f"{split}: {len(names)} pairs -> {out}")


if __name__ == "__main__":
    main()
