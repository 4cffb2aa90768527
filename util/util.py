"""Image conversion and saving helpers."""
import os

import numpy as np
import torch
from PIL import Image


def size_text(shape):
    """A size as users read it: (64, 48, 32) -> "64x48x32"."""
    return "x".join(str(int(s)) for s in shape)


def spatial_text(spatial, label=True):
    """The spatial size of an image or a volume (array order: (H, W) or (D, H, W)) as users read it: an image's as
    width x height, labelled ((6, 20) -> "20x6 (width x height)", the order image sizes are given in), a volume's in
    array order, as its header shows it ((64, 48, 32) -> "64x48x32"). ``label`` False: without the label (for the
    first of two sizes in one sentence)."""
    if len(spatial) == 2:
        return size_text(tuple(spatial)[::-1]) + (" (width x height)" if label else "")
    return size_text(spatial)


def tensor2im(tensor, bits=8):
    """A (C, H, W) or (1, C, H, W) tensor in [-1, 1] to a numpy image (H, W[, C]) of uint8 (or uint16 with bits=16).
    Single-channel images stay single-channel."""
    t = tensor.detach().float().cpu()
    if t.dim() == 4:
        t = t[0]
    t = ((t.clamp(-1, 1) + 1) / 2).numpy()
    scale, dtype = (65535.0, np.uint16) if bits == 16 else (255.0, np.uint8)
    arr = np.round(t * scale).astype(dtype)
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def visual_to_rgb(tensor):
    """The first item of a batch of images (N, C, H, W) or volumes (N, C, D, H, W) in [-1, 1] as an (H, W, 3) uint8
    picture: volumes as their axial, coronal and sagittal mid-slices side by side; one channel as grey; more than
    three channels shows the first three."""
    t = tensor.detach().float().cpu()[0]
    if t.dim() == 4:
        from util.volume import mid_slices
        t = torch.from_numpy(mid_slices(t[0].numpy()))[None]
    t = t[:3] if t.shape[0] >= 3 else t[:1]
    im = tensor2im(t)
    return np.repeat(im[:, :, None], 3, axis=2) if im.ndim == 2 else im


def to_pil(image_numpy):
    """An image of ``tensor2im`` as a PIL image: 16-bit grayscale stays 16-bit, 16-bit RGB becomes 8-bit RGB."""
    if image_numpy.dtype == np.uint16:
        return Image.fromarray(np.ascontiguousarray(image_numpy, dtype=np.uint16)) if image_numpy.ndim == 2 else \
            Image.fromarray((image_numpy >> 8).astype(np.uint8))
    return Image.fromarray(image_numpy)


def save_image(image_numpy, path, aspect_ratio=1.0):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    img = to_pil(image_numpy)
    if aspect_ratio != 1.0:
        w, h = img.size
        img = img.resize((int(w * aspect_ratio), h) if aspect_ratio > 1 else (w, int(h / aspect_ratio)),
                         Image.BICUBIC)
    img.save(path)


def to01(tensor):
    """[-1, 1] -> [0, 1] as float64 numpy (C, H, W)."""
    return ((tensor.detach().double().cpu().clamp(-1, 1) + 1) / 2).numpy()


def set_seed(seed):
    import random
    random.seed(seed)
    torch.manual_seed(seed)
