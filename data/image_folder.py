"""Finding and reading images: PNG, JPEG, TIFF, BMP; 8- and 16-bit; grayscale or RGB.

Every image is converted to the channel count its domain asks for (--input_nc / --output_nc), as CycleGAN does:
grayscale to RGB by replicating the channel, RGB to grayscale by luminance (ITU-R 601: 0.299 R + 0.587 G +
0.114 B); palette, RGBA and CMYK images count as RGB. 16-bit grayscale keeps its full precision either way (as
floats; with 3 channels, outputs are written as 8-bit RGB)."""
import os

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from util.errors import UserError
from util.folders import IMG_EXTENSIONS, is_image_file, missing_folder


def make_dataset(folder, max_dataset_size=float("inf"), what="images"):
    """Sorted image paths under ``folder`` (recursively); a clear error if it is missing or has none."""
    if not os.path.isdir(folder):
        raise UserError(missing_folder(folder, what, volumes=False))
    paths = sorted(os.path.join(root, f) for root, _, files in os.walk(folder, followlinks=True)
                   for f in files if is_image_file(f))
    if not paths:
        raise UserError(f"{what} folder {folder} has no images ({', '.join(IMG_EXTENSIONS)})")
    return paths[: int(min(max_dataset_size, len(paths)))]


GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L")
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L")
LUMA = np.array([0.299, 0.587, 0.114])


def image_channels(mode):
    return 1 if mode in GRAY_MODES else 3


def channel_conversions(paths, channels):
    """How many of ``paths`` (read from their headers only) have another channel count than ``channels``, and how
    many of those are 16-bit."""
    converted = sixteen = 0
    for path in paths:
        try:
            with Image.open(path) as img:
                mode = img.mode
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            continue  # reported when the image is read
        if image_channels(mode) != channels:
            converted += 1
            sixteen += mode in SIXTEEN_BIT_MODES
    return converted, sixteen


_NOTED = set()  # (folder, channels) said in this run (options.BaseOptions.parse starts each run afresh)


def forget_notes():
    _NOTED.clear()


def note_conversions(paths, channels, flag, folder):
    """Says once how many images of ``folder`` are converted to ``channels`` channels (``flag``: the option); once
    per run, though a run reads the same folder for more than one purpose (training and the files held out for
    validation, a baseline fitted on the training pairs)."""
    said = (os.path.abspath(folder), channels)
    if said in _NOTED:
        return
    _NOTED.add(said)
    converted, sixteen = channel_conversions(paths, channels)
    if not converted:
        return
    how = "grayscale replicated into 3 channels" if channels == 3 else "RGB to grayscale by luminance"
    extra = f"; {sixteen} are 16-bit: full precision in training, outputs written as 8-bit RGB" if sixteen and \
        channels == 3 else ""
    print(f"note: {converted} of {len(paths)} images in {folder} are converted to {channels} channel(s) ({flag} "
          f"{channels}: {how}{extra})")


def load_image(path, channels):
    """Reads ``path`` as a float tensor (channels, H, W) in [0, 1] and its bit depth (8 or 16), converted to
    ``channels`` channels (see the module's docstring). 16-bit images keep their full precision."""
    try:
        with Image.open(path) as img:
            img.load()
            arr, bits = image_array(img, f"image {path}")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UserError(f"cannot read image {path}: it is corrupt, truncated or not an image ({e})") from None
    return convert_channels(arr, channels, f"image {path}"), bits


def image_array(img, what="the image"):
    """A PIL image as a float64 array (C, H, W) in [0, 1] with C = 1 or 3, and its bit depth (8 or 16)."""
    mode = img.mode
    if mode in SIXTEEN_BIT_MODES:
        return np.asarray(img, dtype=np.float64)[None] / 65535.0, 16
    if mode in ("P", "RGBA", "LA", "CMYK", "YCbCr"):
        img = img.convert("RGB" if mode != "LA" else "L")
    elif mode == "1":
        img = img.convert("L")
    elif mode not in ("L", "RGB"):
        raise UserError(f"{what} has unsupported mode {mode}; convert it to PNG (L, RGB or 16-bit)")
    arr = np.asarray(img, dtype=np.float64) / 255.0
    return (arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)), 8


def convert_channels(arr, channels, what="the image"):
    """An array (C, H, W) in [0, 1] with C = 1 or 3 as a float tensor of ``channels`` channels: grayscale replicated
    to RGB, RGB to grayscale by luminance."""
    if arr.shape[0] == 1 and channels == 3:
        arr = np.repeat(arr, 3, axis=0)
    elif arr.shape[0] == 3 and channels == 1:
        arr = np.tensordot(LUMA, arr, axes=1)[None]
    elif arr.shape[0] != channels:
        raise UserError(f"{what} has {arr.shape[0]} channel(s) but {channels} are expected "
                        f"(set --input_nc/--output_nc to 1 or 3)")
    return torch.from_numpy(np.ascontiguousarray(arr)).float()
