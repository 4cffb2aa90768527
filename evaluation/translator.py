"""One direction of a loaded model as a function: the one inference path of test.py, validation and the translate
API (``translate.load_translator``).

A ``Translator`` maps

- an image (a PIL image, a numpy array (H, W) or (H, W, C) of uint8, uint16 or floats in [0, 1], or a tensor (C, H,
  W) or (N, C, H, W) in the networks' range [-1, 1]) to its translation of the same kind and size, with test.py's
  rules: the image is converted to the source domain's channel count (grayscale replicated, RGB to luminance),
  mapped to [-1, 1], reflection-padded up to the generator's size multiple and its output cropped back (inside the
  generator), clipped to [-1, 1] and written back as 8-bit (16-bit where the input is 16-bit grayscale and the
  output has one channel);
- a volume (a numpy array (D, H, W) in the source domain's original units, e.g. HU) to a volume in the target
  domain's original units: the checkpoint's intensity windows map it to [-1, 1] (values outside are clipped) and
  back, and it is translated patch by patch (a sliding window of ``patch_size`` with ``overlap``, blended with a
  Gaussian weight; util.volume.sliding_window);
- a file (an image, or a .nii/.nii.gz/.npy volume) to a file (``translate_file``), a NIfTI output keeping the
  input's affine and header.

The Translator runs the model in whatever mode it is in: test.py keeps CycleGAN's train-mode inference unless
--eval; validation, the training page's snapshots (evaluation.snapshots), the translate API and exports use eval
mode.
"""
import os
from collections import namedtuple

import numpy as np
import torch

from data.image_folder import convert_channels, image_array, is_image_file
from models.reversible import padding_for
from util.errors import UserError
from util.util import size_text, tensor2im, to_pil
from util.volume import (from_unit, is_volume_file, load_volume, parse_patch_size, save_volume, sliding_window,
                         to_unit, volume_array)

DIRECTIONS = ("AtoB", "BtoA")
# the sliding window's blending (util.volume.window_weight), as exports describe it
BLENDING = {"kind": "gaussian", "sigma": "0.125 x patch size per axis", "floor": 1e-3}
# a volume translated: the input on [-1, 1], the output on [-1, 1] and in the target domain's original units
VolumeParts = namedtuple("VolumeParts", "source_unit output_unit output")


def size_multiple(net):
    """The sizes a generator takes without padding: a multiple of this on every spatial axis (an int, or one per
    axis); other sizes are padded inside it."""
    inner = getattr(net, "unet", None)  # --netG iunet pads inside its invertible U-Net
    return inner.size_multiple if inner is not None else net.size_multiple


class Translator:
    """``direction`` (AtoB: the translation the model was trained for, BtoA: the other way; for a RevGAN the
    inverse of its one core) of a set-up ``model``.

    Args:
        model: a model with its networks loaded (models.base_model.BaseModel); only its ``directions``,
            ``translate``, ``check_input``, ``spec``, ``volume`` and ``device`` are used.
        direction: AtoB or BtoA, in the model's own domains.
        patch_size: volumes: the sliding window (one size or three; None: the training patch), rounded up to the
            generator's size multiple.
        overlap: volumes: the windows' overlap, 0 to <1.
        batch_size: volumes: windows per batch on the device.
        say: where notes go (the window rounded up).
        direct: call the network itself rather than the model's handle of it (under torchrun its
            DistributedDataParallel wrapper, whose forward may synchronize processes): for what one process alone
            draws (the training page's snapshots).
    """

    def __init__(self, model, direction="AtoB", patch_size=None, overlap=0.5, batch_size=1, say=print,
                 direct=False):
        if direction not in DIRECTIONS:
            raise UserError(f"direction {direction!r}: use AtoB or BtoA")
        if direction not in model.directions:
            raise UserError(f"a {model.spec.model} model translates {' and '.join(model.directions)} only, not "
                            f"{direction}")
        self.model, self.direction, self.direct = model, direction, direct
        self.source, self.target = direction[0], direction[-1]
        self.dims = model.dims
        channels = {"A": model.spec.input_nc, "B": model.spec.output_nc}
        self.in_channels, self.out_channels = channels[self.source], channels[self.target]
        name, self.call = model.directions[direction]
        self.net = model.net(name)
        self.size_multiple = size_multiple(self.net)
        self.overlap, self.batch_size, self.patch = overlap, batch_size, None
        self.intensity = None
        if self.dims == 3:
            intensity = model.volume.intensity if model.volume else None
            if not intensity:
                raise UserError(f"the checkpoint of {model.opt.name} holds no intensity ranges: it was not trained on "
                                f"volumes")
            self.intensity = {"source": tuple(intensity[self.source]), "target": tuple(intensity[self.target])}
            self.patch = self.window(patch_size, say)

    @property
    def mode(self):
        """"eval" or "train": the mode of the network (test.py without --eval runs in train mode)."""
        return "train" if self.net.training else "eval"

    def window(self, patch_size, say=print):
        """The sliding window: ``patch_size``, else the training patch, rounded up to a size the generator takes."""
        patch = parse_patch_size(patch_size or self.model.volume.patch_size or [64])
        extra = padding_for(patch, self.size_multiple)
        if any(extra):  # a larger window beats padding every window inside the generator
            rounded = tuple(p + e for p, e in zip(patch, extra))
            say(f"note: --patch_size {size_text(patch)} rounded up to {size_text(rounded)}, the next multiple of "
                f"{self.size_multiple} that --netG {self.model.spec.generator.netG} needs")
            patch = rounded
        return patch

    # -- the network ------------------------------------------------------------------------------------------------
    def run(self, x):
        """A batch (N, C, *spatial) in [-1, 1] -> its translation (N, C_out, *spatial) in [-1, 1] on the model's
        device, without gradients; sizes the generator cannot take are refused in one line."""
        x = x.to(self.model.device, torch.float32)
        self.model.check_input(x, self.direction)
        with torch.no_grad():
            if self.direct:
                return self.net(x, self.call)
            return self.model.translate(x, self.direction)

    # -- images -----------------------------------------------------------------------------------------------------
    def image(self, image):
        """The translation of a 2D ``image`` (see the module's docstring), of the same kind."""
        if self.dims != 2:
            raise UserError("this is a 3D model: translate volumes (numpy arrays in original units, or NIfTI/.npy "
                            "files)")
        if torch.is_tensor(image):
            if image.dim() not in (3, 4):
                raise UserError(f"an image tensor is (C, H, W) or (N, C, H, W) in [-1, 1], not {tuple(image.shape)}")
            batch = image if image.dim() == 4 else image[None]
            self._check_channels(batch.shape[1])
            out = self.run(batch).to(image.device)
            return out if image.dim() == 4 else out[0]
        if isinstance(image, np.ndarray):
            return self._array(image)
        from PIL import Image
        if isinstance(image, Image.Image):
            arr, bits = image_array(image)
            out = self._unit(arr)
            return to_pil(tensor2im(out, bits=16 if bits == 16 and out.shape[0] == 1 else 8))
        raise UserError(f"cannot translate a {type(image).__name__}: give a PIL image, a numpy array, a tensor or a "
                        f"file name")

    def _check_channels(self, c):
        if c != self.in_channels:
            raise UserError(f"the model's {self.source} images have {self.in_channels} channel(s), the tensor has {c}")

    def _unit(self, arr):
        """(C, H, W) in [0, 1], C = 1 or 3 -> the output (C_out, H, W) in [-1, 1] (on the CPU)."""
        x = convert_channels(arr, self.in_channels) * 2 - 1
        return self.run(x[None])[0].cpu()

    def _array(self, a):
        if a.ndim == 3 and a.shape[2] == 4:
            a = a[..., :3]  # RGBA: the colour, as reading an RGBA file does
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
            raise UserError(f"an image array is (H, W) or (H, W, C) with 1, 3 or 4 channels, not {a.shape}")
        chw = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        if a.dtype == np.uint8:
            out = self._unit(chw.astype(np.float64) / 255.0)
            return tensor2im(out)
        if a.dtype == np.uint16:
            out = self._unit(chw.astype(np.float64) / 65535.0)
            return tensor2im(out, bits=16)
        if np.issubdtype(a.dtype, np.floating):
            out = self._unit(np.clip(chw.astype(np.float64), 0, 1))
            out = ((out.clamp(-1, 1) + 1) / 2).numpy()
            return out[0] if out.shape[0] == 1 else out.transpose(1, 2, 0)
        raise UserError(f"an image array of {a.dtype}: use uint8, uint16 or floats in [0, 1]")

    # -- volumes ----------------------------------------------------------------------------------------------------
    def volume_parts(self, arr):
        """A volume (D, H, W) in the source domain's original units -> VolumeParts (input and output on [-1, 1],
        output in the target domain's original units, float32)."""
        if self.dims != 3:
            raise UserError("this is a 2D model: translate images")
        arr = np.asarray(arr)
        if arr.ndim != 3:
            raise UserError(f"a volume array is (D, H, W), not {arr.shape}")
        (slo, shi), (dlo, dhi) = self.intensity["source"], self.intensity["target"]
        x = torch.from_numpy(to_unit(arr.astype(np.float32), slo, shi).astype(np.float32))[None]
        out = sliding_window(self.run, x, self.patch, self.overlap, self.batch_size, self.model.device)[0].numpy()
        return VolumeParts(x[0].numpy(), out, from_unit(out, dlo, dhi).astype(np.float32))

    def volume(self, arr):
        """The translation of a volume (D, H, W) in original units, in the target domain's original units."""
        return self.volume_parts(arr).output

    # -- anything ---------------------------------------------------------------------------------------------------
    def __call__(self, x):
        """An image (PIL, array, tensor), a volume (array in original units), or a file name: an image file gives a
        PIL image, a NIfTI file a nibabel image with the input's affine and header, a .npy file an array."""
        if isinstance(x, (str, os.PathLike)):
            return self.read_and_translate(os.fspath(x))
        if self.dims == 3 and hasattr(x, "get_fdata") and hasattr(x, "affine"):  # a nibabel image, as returned
            return _like(self.volume(volume_array(x.get_fdata(dtype=np.float32), "the image")), x)
        if self.dims == 3 and isinstance(x, np.ndarray):
            return self.volume(x)
        if self.dims == 3 and torch.is_tensor(x):  # (C, D, H, W) on [-1, 1]: the networks' range
            return sliding_window(self.run, x.float().cpu(), self.patch, self.overlap, self.batch_size,
                                  self.model.device)
        return self.image(x)

    def read_and_translate(self, path):
        if not os.path.isfile(path):
            raise UserError(f"no file {path}")
        if self.dims == 3:
            if not is_volume_file(path):
                raise UserError(f"{path}: a 3D model translates volumes (.nii, .nii.gz, .npy)")
            arr, img = load_volume(path)
            out = self.volume(arr)
            return out if img is None else _like(out, img)
        if not is_image_file(path):
            raise UserError(f"{path}: a 2D model translates images (.png, .jpg, .tif, ...)")
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(path) as img:
                img.load()
                return self.image(img)
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise UserError(f"cannot read image {path}: it is corrupt, truncated or not an image ({e})") from None

    def translate_file(self, src, dst):
        """Translates file ``src`` into file ``dst`` (an image, or a volume: NIfTI with the input's affine and header,
        or .npy); returns ``dst``."""
        os.makedirs(os.path.dirname(os.path.abspath(dst)) or ".", exist_ok=True)
        if self.dims == 3:
            arr, img = load_volume(src) if os.path.isfile(src) else (None, None)
            if arr is None:
                raise UserError(f"no file {src}")
            save_volume(self.volume(arr), dst, like=img)
        else:
            self.read_and_translate(src).save(dst)
        return dst

    def translate_folder(self, src, dst):
        """Every image (2D) or volume (3D) file directly in folder ``src`` into folder ``dst`` under its own name;
        returns the files written."""
        if not os.path.isdir(src):
            raise UserError(f"no folder {src}")
        wanted = is_volume_file if self.dims == 3 else is_image_file
        names = sorted(f for f in os.listdir(src) if wanted(f) and os.path.isfile(os.path.join(src, f)))
        if not names:
            raise UserError(f"{src} holds no {'volumes' if self.dims == 3 else 'images'}")
        return [self.translate_file(os.path.join(src, n), os.path.join(dst, n)) for n in names]

    def describe(self):
        """What a caller of this translation needs to know (exports write it as their JSON sidecar)."""
        spec = self.model.spec
        out = {"model": spec.model, "netG": spec.generator.netG, "direction": self.direction,
               "source_domain": self.source, "target_domain": self.target, "dims": self.dims,
               "in_channels": self.in_channels, "out_channels": self.out_channels,
               "size_multiple": list(self.size_multiple) if isinstance(self.size_multiple, tuple) else
               self.size_multiple, "value_range": [-1.0, 1.0], "mode": self.mode,
               "checkpoint": self.model.loaded_from}
        if self.dims == 2:
            out["images"] = ("network input = image / 255 * 2 - 1 (16-bit: / 65535), channels first; output on "
                             "[-1, 1]: clip, then (y + 1) / 2 * 255")
        else:
            out["volume"] = {"intensity_source": list(self.intensity["source"]),
                             "intensity_target": list(self.intensity["target"]),
                             "mapping": "network input = clip((v - lo) / (hi - lo), 0, 1) * 2 - 1 with the source "
                                        "window; output v = (y + 1) / 2 * (hi - lo) + lo with the target window",
                             "patch_size": list(self.patch), "overlap": self.overlap, "blending": BLENDING,
                             "layout": "N, C, D, H, W"}
        return out


def _like(out, img):
    """``out`` (float32, original units) as a nibabel image of ``img``'s class, affine and header (unscaled)."""
    header = img.header.copy()
    header.set_data_dtype(np.float32)
    result = type(img)(out, img.affine, header)
    result.header.set_slope_inter(1.0, 0.0)
    return result
