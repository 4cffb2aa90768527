"""Combine paired images into A|B side-by-side images (the pix2pix `aligned` layout).

    python datasets/combine_A_and_B.py --fold_A A --fold_B B --fold_AB AB
A/train/x.png and B/train/x.png (same name, or the same name with another extension: x.png and x.jpg; same size)
become AB/train/x.png, twice as wide. A pair of different modes is written in one: RGB where either half is colour
(palette, RGBA and CMYK count as RGB, alpha dropped, as the data loader reads them), grayscale where both are (16-bit
where both are). Mistakes (a missing folder, halves of different sizes) end in one line and exit status 2.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

IMAGES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")  # what the data loaders read


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def images_in(folder):
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGES))


def partner(folder_b, name):
    """B's file for A's ``name``: the same name, else the same stem with another extension (None if neither)."""
    if os.path.isfile(os.path.join(folder_b, name)):
        return os.path.join(folder_b, name)
    stem = os.path.splitext(name)[0]
    found = [f for f in images_in(folder_b) if os.path.splitext(f)[0] == stem] if os.path.isdir(folder_b) else []
    return os.path.join(folder_b, found[0]) if found else None


def side_by_side(path_a, path_b):
    """The A|B image of one pair, both halves in one mode."""
    a, b = Image.open(path_a), Image.open(path_b)
    if a.size != b.size:
        fail(f"{path_a} is {a.size[0]}x{a.size[1]} but {path_b} is {b.size[0]}x{b.size[1]} (width x height): the "
             f"halves of a pair must be of one size; resize one of them")
    wide = {"I;16", "I;16B", "I;16L", "I"}
    if a.mode in wide and b.mode in wide:
        a, b = (np.asarray(x, dtype=np.int64).clip(0, 65535).astype(np.uint16) for x in (a, b))
        return Image.fromarray(np.concatenate([a, b], axis=1))  # 16-bit grayscale
    colour = any(x.mode not in {"1", "L", "LA"} | wide for x in (a, b))  # palette, RGBA, CMYK: RGB, as the loader
    halves = [np.asarray(x.convert("RGB" if colour else "L"), dtype=np.uint8) if x.mode not in wide else
              (np.asarray(x, dtype=np.int64) // 257).clip(0, 255).astype(np.uint8) for x in (a, b)]
    if colour:
        halves = [h if h.ndim == 3 else np.repeat(h[..., None], 3, axis=2) for h in halves]
    return Image.fromarray(np.concatenate(halves, axis=1))


def combine(dir_a, dir_b, out, limit=None, missing="skip"):
    """Writes the A|B image of every A file of ``dir_a`` that has a partner in ``dir_b`` into ``out``; ``missing``:
    "skip" (said) or "fail" for an A file without one. Returns the number written."""
    os.makedirs(out, exist_ok=True)
    done = 0
    for name in images_in(dir_a)[:limit]:
        path_b = partner(dir_b, name)
        if path_b is None:
            if missing == "fail":
                fail(f"{os.path.join(dir_a, name)} has no partner in {dir_b} (a file of its name)")
            print(f"skipping {name}: nothing of its name in {dir_b}", file=sys.stderr)
            continue
        side_by_side(os.path.join(dir_a, name), path_b).save(os.path.join(out, os.path.splitext(name)[0] + ".png"))
        done += 1
    return done


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--fold_A", required=True, help="folder with one subfolder per split (train, test, ...)")
    p.add_argument("--fold_B", required=True)
    p.add_argument("--fold_AB", required=True, help="output folder")
    p.add_argument("--num_imgs", type=int, default=1000000)
    args = p.parse_args()
    for folder in (args.fold_A, args.fold_B):
        if not os.path.isdir(folder):
            fail(f"{folder} is not a folder")
    for split in sorted(os.listdir(args.fold_A)):
        dir_a, dir_b = os.path.join(args.fold_A, split), os.path.join(args.fold_B, split)
        if not os.path.isdir(dir_a):
            continue
        out = os.path.join(args.fold_AB, split)
        print(f"{split}: {combine(dir_a, dir_b, out, args.num_imgs)} pairs -> {out}")


if __name__ == "__main__":
    main()
