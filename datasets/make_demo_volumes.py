"""Builds the small real 3D demo dataset from the MNI152 T1 template that ships inside nilearn (no download).

Domain B is a T1 MRI volume (the ICBM152 2009a template, resampled to 2 mm); domain A is the same volume as a
"low-dose" acquisition: blurred (Gaussian, sigma 1 voxel) and with Gaussian noise of 15% of the intensity range, in
the same units. Paired 3D models learn to restore A to B; their PSNR is compared with the copy-the-input baseline.
Training volumes are crops of the back of the brain, test volumes crops of the front (held out; the template is
exactly left/right symmetric, so a left/right split would test on the mirror image of the training data), each
saved with its real affine (2 mm voxels, MNI position), as NIfTI:

    datasets/demo3d/trainA/ trainB/ testA/ testB/   subNN.nii.gz

    python datasets/make_demo_volumes.py [--out datasets/demo3d]
"""
import argparse
import importlib.util
import os
import shutil

import numpy as np

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo3d")
TEMPLATE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def template_path():
    spec = importlib.util.find_spec("nilearn")
    if spec is None:
        msg = "the 3D demo needs nilearn's bundled MNI152 template: pip install nilearn"
        try:
            from util.errors import UserError
        except ImportError:  # run as a script from another folder
            raise SystemExit(msg) from None
        raise UserError(msg)
    return os.path.join(spec.submodule_search_locations[0], "datasets", "data", TEMPLATE)


def degrade(vol, rng, noise=0.15):
    from scipy.ndimage import gaussian_filter
    span = float(vol.max() - vol.min())
    return gaussian_filter(vol, 1.0) + rng.normal(0, noise * span, vol.shape)


def build(out=DEFAULT_OUT, crop=(40, 32, 40), n_train=6, n_test=2, seed=0, gap=4):
    import nibabel as nib
    from scipy.ndimage import zoom
    rng = np.random.default_rng(seed)
    img = nib.load(template_path())
    vol = zoom(img.get_fdata(dtype=np.float32), 0.5, order=1)  # 1 mm -> 2 mm
    affine = img.affine.copy()
    affine[:3, :3] *= 2.0
    y_mid = vol.shape[1] // 2  # split along y (back | front), with ``gap`` voxels between the two never used
    ranges = {"train": (8, y_mid - gap // 2 - crop[1]), "test": (y_mid + gap // 2, vol.shape[1] - 8 - crop[1])}
    for phase, n in (("train", n_train), ("test", n_test)):
        for side in "AB":
            os.makedirs(os.path.join(out, phase + side), exist_ok=True)
        for k in range(n):
            x = int(rng.integers(5, vol.shape[0] - crop[0] - 5 + 1))
            y = int(rng.integers(ranges[phase][0], ranges[phase][1] + 1))
            z = int(rng.integers(15, vol.shape[2] - crop[2] - 10 + 1))
            b = vol[x:x + crop[0], y:y + crop[1], z:z + crop[2]].astype(np.float32)
            a = degrade(b, rng).astype(np.float32)
            aff = affine.copy()
            aff[:3, 3] = affine[:3, :3] @ np.array([x, y, z]) + affine[:3, 3]
            for side, data in (("A", a), ("B", b)):
                nii = nib.Nifti1Image(data, aff)
                nii.header.set_xyzt_units("mm")
                nib.save(nii, os.path.join(out, phase + side, f"sub{k:02d}.nii.gz"))
    with open(os.path.join(out, "README.txt"), "w") as f:
        f.write("3D demo dataset built by datasets/make_demo_volumes.py from nilearn's MNI152 T1 template.\n"
                "A: blurred, noisy ('low-dose') T1; B: the T1. train: back of the brain, test: front (split along y).\n")
    return out


def ensure_demo_volumes(out=DEFAULT_OUT):
    """Builds the 3D demo dataset on first use (and again over one of an older layout); returns its folder."""
    readme = os.path.join(out, "README.txt")
    if not os.path.isfile(readme) or "split along y" not in open(readme).read():
        print(f"building the 3D demo dataset in {out} (from nilearn's MNI152 template)")
        for phase in ("trainA", "trainB", "testA", "testB"):
            shutil.rmtree(os.path.join(out, phase), ignore_errors=True)
        build(out)
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Build the 3D demo dataset from nilearn's bundled MNI152 template.")
    p.add_argument("--out", default=DEFAULT_OUT)
    args = p.parse_args()
    print(build(args.out))
