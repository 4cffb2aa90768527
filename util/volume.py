"""3D volumes: reading NIfTI/.npy, intensity windows, patches, sliding-window inference, mid-slice pictures."""
import math
import os

import numpy as np
import torch

from util.errors import UserError

VOLUME_EXTENSIONS = (".nii.gz", ".nii", ".npy")


def is_volume_file(name):
    return name.lower().endswith(VOLUME_EXTENSIONS)


def volume_stem(path):
    base = os.path.basename(path)
    for ext in VOLUME_EXTENSIONS:
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return os.path.splitext(base)[0]


def list_volumes(folder, max_size=float("inf"), what="volumes"):
    if not os.path.isdir(folder):
        from util.folders import missing_folder  # (it imports this module)
        raise UserError(missing_folder(folder, what, volumes=True))
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if is_volume_file(f))
    if not paths:
        raise UserError(f"{what} folder {folder} has no volumes ({', '.join(VOLUME_EXTENSIONS)})")
    return paths[: int(min(max_size, len(paths)))]


def volumes_by_name(folder):
    """{name: path} of the volumes in ``folder`` ({} when there is no such folder), under each file's name and its
    stem (of one stem in two formats, the first in sorted order: v.nii before v.nii.gz): where a volume's target is
    (``target_of``)."""
    if not os.path.isdir(folder):
        return {}
    found = {}
    for f in sorted(os.listdir(folder)):
        if is_volume_file(f):
            found[f] = os.path.join(folder, f)
            found.setdefault(volume_stem(f), os.path.join(folder, f))
    return found


def target_of(targets, path):
    """The path in ``targets`` (volumes_by_name) of the target of volume ``path``: the file of its own name (v.nii.gz
    for v.nii.gz), else one of its stem (v.nii, v.npy); None if there is none."""
    base = os.path.basename(path)
    return targets.get(base) or targets.get(volume_stem(base))


def volume_shape(path):
    """The 3D shape of a volume from its header alone (no voxel data read); clear errors for unusable files."""
    try:
        if path.lower().endswith(".npy"):
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        else:
            import nibabel as nib
            shape = nib.load(path).shape
    except Exception as e:
        raise UserError(f"cannot read volume {path}: {str(e).splitlines()[0][:200]}") from None
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise UserError(f"volume {path} has shape {tuple(shape)}: expected a 3D volume (or 4D with one frame)")
    return tuple(int(s) for s in shape)


def volume_axes(path):
    """The anatomical directions of a NIfTI file's array axes from its header ("RAS", "LAS", ...; None for .npy or
    a header without them)."""
    if path.lower().endswith(".npy"):
        return None
    import nibabel as nib
    try:
        return "".join(nib.aff2axcodes(nib.load(path).affine))
    except Exception:  # a header without a usable affine
        return None


def load_volume(path):
    """A volume as float32 (D, H, W) numpy array, and its NIfTI image (None for .npy) for affine and header."""
    try:
        if path.lower().endswith(".npy"):
            arr, img = np.load(path, allow_pickle=False), None
        else:
            import nibabel as nib
            img = nib.load(path)
            arr = img.get_fdata(dtype=np.float32)  # applies the header's scaling (scl_slope, scl_inter)
    except Exception as e:  # nibabel and numpy raise many types for damaged files
        raise UserError(f"cannot read volume {path}: {str(e).splitlines()[0][:200]}") from None
    return volume_array(arr, f"volume {path}"), img


def volume_array(arr, what="the volume"):
    """``arr`` checked and made a contiguous float32 (D, H, W) array (a 4D one of one frame loses that axis)."""
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise UserError(f"{what} has shape {tuple(arr.shape)}: expected a 3D volume (or 4D with one frame)")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise UserError(f"{what} holds {arr.dtype} data, not real numbers")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise UserError(f"{what} has {int((~np.isfinite(arr)).sum())} NaN/inf voxels; fill them "
                        f"(e.g. numpy.nan_to_num) before training")
    return arr


def save_volume(arr, path, like=None):
    """Writes ``arr`` as NIfTI with the affine and header of ``like`` (a nibabel image), or .npy."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith(".npy"):
        np.save(path, arr.astype(np.float32))
        return
    import nibabel as nib
    if like is not None:
        header = like.header.copy()
        header.set_data_dtype(np.float32)
        out = type(like)(arr.astype(np.float32), like.affine, header)
        out.header.set_slope_inter(1.0, 0.0)
    else:
        out = nib.Nifti1Image(arr.astype(np.float32), np.eye(4))
    nib.save(out, path)


# -- intensity windows -------------------------------------------------------------------------------------------------
def parse_intensity(spec, flag):
    """``window:LO,HI``, ``percentile:P1,P2`` or ``minmax`` -> (kind, numbers)."""
    kind, _, rest = spec.partition(":")
    try:
        numbers = [float(v) for v in rest.split(",")] if rest else []
    except ValueError:
        numbers = None
    if kind == "minmax" and not numbers:
        return kind, []
    if kind in ("window", "percentile") and numbers is not None and len(numbers) == 2:
        if numbers[0] >= numbers[1]:
            first, second = ("LO", "HI") if kind == "window" else ("P1", "P2")
            swapped = f" ({kind}:{numbers[1]:g},{numbers[0]:g}?)" if numbers[0] > numbers[1] else ""
            raise UserError(f"{flag} {spec}: {first} must be below {second}{swapped}")
        if kind == "percentile" and not (0 <= numbers[0] and numbers[1] <= 100):
            raise UserError(f"{flag} {spec}: percentiles must lie in [0, 100]")
        return kind, numbers
    raise UserError(f"{flag} {spec!r} is not understood: use window:LO,HI (e.g. window:-1150,350 for CT), "
                    f"percentile:P1,P2 (e.g. percentile:0.5,99.5) or minmax")


def intensity_range(spec, flag, volumes, say=None):
    """The (lo, hi) that ``spec`` maps to [-1, 1], computed over ``volumes`` (an iterable of arrays). Percentiles clip
    the values beyond them; where those reach far (a quarter of the window or more) and ``say`` is given, it says so
    (CT's bone above a soft-tissue percentile: a translation into that domain could never give it)."""
    kind, numbers = parse_intensity(spec, flag)
    if kind == "window":
        return float(numbers[0]), float(numbers[1])
    samples = []
    for v in volumes:
        flat = v.reshape(-1)
        step = max(1, flat.size // 200000)  # a strided sample keeps this fast on large volumes
        samples.append(flat[::step])
    allv = np.concatenate(samples).astype(np.float64)
    lo, hi = (allv.min(), allv.max()) if kind == "minmax" else np.percentile(allv, numbers)
    if not hi > lo:
        raise UserError(f"{flag} {spec}: the training volumes are constant ({lo}); use window:LO,HI")
    far, reach = [], (hi - lo) / 4
    if say is not None and lo - allv.min() >= reach:
        far.append(f"{100 * np.mean(allv < lo):.2g}% of the voxels below {lo:.6g} (down to {allv.min():.6g})")
    if say is not None and allv.max() - hi >= reach:
        far.append(f"{100 * np.mean(allv > hi):.2g}% of the voxels above {hi:.6g} (up to {allv.max():.6g})")
    if far:
        say(f"note: {flag} {spec} is [{lo:.6g}, {hi:.6g}] on the training volumes; {' and '.join(far)} are clipped "
            f"to it, in inputs and in what the model can output: where those values matter (CT's bone, contrast), "
            f"give {flag} window:LO,HI covering them, or minmax")
    return float(lo), float(hi)


def to_unit(arr, lo, hi):
    """Original units -> [-1, 1] (values outside [lo, hi] are clipped)."""
    return np.clip((arr - lo) / (hi - lo), 0.0, 1.0) * 2.0 - 1.0


def from_unit(arr, lo, hi):
    """[-1, 1] -> original units."""
    return (np.asarray(arr, dtype=np.float64) + 1.0) / 2.0 * (hi - lo) + lo


# -- patches -----------------------------------------------------------------------------------------------------------
def parse_patch_size(values):
    values = [int(v) for v in values]
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or min(values) < 1:
        raise UserError(f"--patch_size {' '.join(map(str, values))}: give one size or three (along the array's axes "
                        f"in file order; NIfTI: i j k)")
    return tuple(values)


def pad_to(arr, size, value):
    """Pads ``arr`` (..., D, H, W) at the end of each spatial axis up to ``size`` with ``value``."""
    pads = [(0, 0)] * (arr.ndim - 3) + [(0, max(0, s - n)) for s, n in zip(size, arr.shape[-3:])]
    if all(p == (0, 0) for p in pads):
        return arr
    return np.pad(arr, pads, mode="constant", constant_values=value)


def _starts(n, p, step):
    if n <= p:
        return [0]
    starts = list(range(0, n - p + 1, step))
    if starts[-1] != n - p:
        starts.append(n - p)
    return starts


def window_weight(patch, sigma_scale=0.125):
    """A smooth blending weight over a patch: a Gaussian centred on it, never below 1e-3 of its peak."""
    axes = []
    for p in patch:
        x = torch.arange(p, dtype=torch.float64) - (p - 1) / 2
        axes.append(torch.exp(-0.5 * (x / max(sigma_scale * p, 1e-6)) ** 2))
    w = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return (w / w.max()).clamp_min(1e-3)


def sliding_window(fn, volume, patch, overlap=0.5, batch_size=1, device="cpu", pad_value=-1.0, progress=None):
    """Applies ``fn`` (a batch of (C, *patch) tensors -> same spatial size) over a whole ``volume`` (C, D, H, W)
    tensor, in patches with ``overlap`` (fraction, 0 <= overlap < 1), blended with a smooth weight. Volumes
    smaller than a patch are padded with ``pad_value`` and cropped back. Only the patches of one batch are on
    ``device`` at a time; the result is accumulated on the CPU in float64."""
    if not 0 <= overlap < 1:
        raise UserError(f"--overlap {overlap} must be in [0, 1)")
    c, *shape = volume.shape
    padded = torch.from_numpy(pad_to(volume.numpy(), patch, pad_value)) if any(
        s < p for s, p in zip(shape, patch)) else volume
    full = padded.shape[1:]
    steps = [max(1, int(math.floor(p * (1 - overlap)))) for p in patch]
    corners = [(z, y, x) for z in _starts(full[0], patch[0], steps[0]) for y in _starts(full[1], patch[1], steps[1])
               for x in _starts(full[2], patch[2], steps[2])]
    weight = window_weight(patch)
    acc, norm = None, torch.zeros(full, dtype=torch.float64)
    it = range(0, len(corners), batch_size)
    for i in (progress(it) if progress else it):
        batch = corners[i:i + batch_size]
        x = torch.stack([padded[:, z:z + patch[0], y:y + patch[1], w:w + patch[2]] for z, y, w in batch]).to(device)
        with torch.no_grad():
            out = fn(x).detach().to("cpu", torch.float64)
        if acc is None:
            acc = torch.zeros((out.shape[1],) + tuple(full), dtype=torch.float64)
        for (z, y, w), o in zip(batch, out):
            acc[:, z:z + patch[0], y:y + patch[1], w:w + patch[2]] += o * weight
            norm[z:z + patch[0], y:y + patch[1], w:w + patch[2]] += weight
    out = acc / norm
    return out[:, : shape[0], : shape[1], : shape[2]].to(torch.float32)


# -- pictures ----------------------------------------------------------------------------------------------------------
def mid_slices(vol):
    """Axial, coronal and sagittal mid-slices of a (D, H, W) array in [-1, 1], side by side on one canvas
    (each slice padded to the largest), as a 2D array in [-1, 1]."""
    d, h, w = vol.shape
    slices = [vol[d // 2], vol[:, h // 2, :], vol[:, :, w // 2]]
    hh = max(s.shape[0] for s in slices)
    ww = max(s.shape[1] for s in slices)
    canvas = -np.ones((hh, ww * 3 + 4), dtype=np.float32)
    for k, s in enumerate(slices):
        s = np.flipud(s)
        canvas[:s.shape[0], k * (ww + 2):k * (ww + 2) + s.shape[1]] = s
    return canvas
