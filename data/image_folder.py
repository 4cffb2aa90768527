"""Finding and reading images: PNG, JPEG, TIFF, BMP; 8- and 16-bit; grayscale or RGB."""
import os

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from util.errors import UserError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")


def is_image_file(filename):
    return filename.lower().endswith(IMG_EXTENSIONS)


def make_dataset(folder, max_dataset_size=float("inf"), what="images"):
    """Sorted image paths under ``folder`` (recursively); a clear error if it is missing or has none."""
    if not os.path.isdir(folder):
        raise UserError(f"{what} folder {folder} does not exist (check --dataroot and --phase)")
    paths = sorted(os.path.join(root, f) for root, _, files in os.walk(folder, followlinks=True)
                   for f in files if is_image_file(f))
    if not paths:
        raise UserError(f"{what} folder {folder} has no images ({', '.join(IMG_EXTENSIONS)})")
    return paths[: int(min(max_dataset_size, len(paths)))]


def load_image(path, channels):
    """Reads ``path`` as a float tensor (channels, H, W) in [0, 1] and its bit depth (8 or 16). 16-bit images keep
    their full precision. A channel count other than ``channels`` is an error (RGBA and palette images count as RGB)."""
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                bits = 16
                arr = arr / 65535.0
                arr = arr[None]
            else:
                if mode in ("P", "RGBA", "LA", "CMYK", "YCbCr"):
                    img = img.convert("RGB" if mode != "LA" else "L")
                elif mode == "1":
                    img = img.convert("L")
                elif mode not in ("L", "RGB"):
                    raise UserError(f"image {path} has unsupported mode {mode}; convert it to PNG (L, RGB or 16-bit)")
                arr = np.asarray(img, dtype=np.float64) / 255.0
                bits = 8
                arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UserError(f"cannot read image {path}: it is corrupt, truncated or not an image ({e})") from None
    if arr.shape[0] != channels:
        flag = "--input_nc/--output_nc"
        raise UserError(f"image {path} has {arr.shape[0]} channel(s) but {channels} are expected "
                        f"(set {flag} to {arr.shape[0]}, or convert the images)")
    return torch.from_numpy(np.ascontiguousarray(arr)).float(), bits
