"""Turn a folder with trainA/trainB (and testA/testB, ...) of matching names into the aligned A|B layout.

    python datasets/make_dataset_aligned.py --dataset-path ./datasets/mydata
writes ./datasets/mydata/train/, test/ ... of side-by-side pairs (names must match between A and B).
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--dataset-path", required=True)
    args = p.parse_args()
    root = args.dataset_path
    if not os.path.isdir(root):
        sys.exit(f"error: {root} is not a folder")
    done = 0
    for sub in sorted(os.listdir(root)):
        if not sub.endswith("A") or not os.path.isdir(os.path.join(root, sub[:-1] + "B")):
            continue
        split = sub[:-1]
        out = os.path.join(root, split)
        os.makedirs(out, exist_ok=True)
        for name in sorted(os.listdir(os.path.join(root, sub))):
            path_b = os.path.join(root, split + "B", name)
            if not os.path.isfile(path_b):
                sys.exit(f"error: {name} has no partner {path_b}")
            a = np.asarray(Image.open(os.path.join(root, sub, name)))
            b = np.asarray(Image.open(path_b))
            if a.shape != b.shape:
                sys.exit(f"error: {name}: A is {a.shape} but B is {b.shape}")
            Image.fromarray(np.concatenate([a, b], axis=1)).save(os.path.join(out, os.path.splitext(name)[0] + ".png"))
            done += 1
    print(f"wrote {done} aligned pairs under {root}")


if __name__ == "__main__":
    main()
