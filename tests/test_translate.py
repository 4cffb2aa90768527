"""The translate API (translate.load_translator): it reproduces, image for image and volume for volume, what test.py
wrote for three small checkpoints before test.py was rewired to it (tests/fixtures/translate, made by its
make_fixtures.py), and test.py, now running through it, still does; images of every kind, files and folders;
one-line errors."""
import os
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
from translate import load_translator
from util.errors import UserError

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "translate")


def run_folder(tmp_path, case):
    """checkpoints/CASE/latest.pth in a temporary checkpoints folder (the fixture's checkpoint)."""
    folder = tmp_path / "ckpt" / case
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(os.path.join(FIXTURES, case, "latest.pth"), folder / "latest.pth")
    return folder


def png(path):
    return np.asarray(Image.open(path))


def names(case, label):
    return sorted(os.listdir(os.path.join(FIXTURES, case, label)))


@pytest.mark.parametrize("case,mode", [("paired2d", "eval"), ("unpaired2d", "train")])
def test_the_api_reproduces_what_test_py_wrote_image_for_image(tmp_path, case, mode):
    """paired2d was tested with --eval (its generator has dropout), unpaired2d in test.py's default train mode (no
    dropout, instance norm: the same function); odd.png (27x30) is padded to a multiple of 4 and cropped back."""
    folder = run_folder(tmp_path, case)
    for direction, source, label in (("AtoB", "real_A", "fake_B"), ("BtoA", "real_B", "fake_A")):
        t = load_translator(str(folder), direction=direction, mode=mode)
        assert t.mode == mode
        for name in names(case, label):
            src = os.path.join(FIXTURES, case, source, name)
            want = png(os.path.join(FIXTURES, case, label, name))
            got = np.asarray(t(src))  # a file name -> a PIL image
            assert got.shape == want.shape and got.dtype == want.dtype
            assert np.array_equal(got, want), (case, direction, name, int(np.abs(got.astype(int) - want).max()))
            assert np.array_equal(np.asarray(t(Image.open(src))), want)  # a PIL image
            assert np.array_equal(t(png(src)), want)  # a uint8 array


def test_test_py_through_the_api_still_writes_the_same_images(tmp_path):
    """test.py, rewired to the translate API, on the fixture's inputs: the images it wrote before."""
    folder = run_folder(tmp_path, "unpaired2d")
    data = tmp_path / "data"
    for side in "AB":
        shutil.copytree(os.path.join(FIXTURES, "unpaired2d", f"real_{side}"), data / f"test{side}")
    test_script.main(["--dataroot", str(data), "--name", "unpaired2d", "--model", "unpaired_revgan",
                      "--checkpoints_dir", str(folder.parent), "--results_dir", str(tmp_path / "res"), "--gpu_ids",
                      "-1", "--preprocess", "none"])
    out = tmp_path / "res" / "unpaired2d" / "test_latest" / "images"
    for label in ("fake_B", "fake_A"):
        for name in names("unpaired2d", label):
            assert np.array_equal(png(out / label / name), png(os.path.join(FIXTURES, "unpaired2d", label, name)))


def test_the_api_reproduces_what_test_py_wrote_volume_for_volume(tmp_path):
    """paired3d (test.py --eval --overlap 0.5, the training patch 16): NIfTI in, NIfTI out with the input's affine,
    and .npy; in the target domain's original units."""
    folder = run_folder(tmp_path, "paired3d")
    case = os.path.join(FIXTURES, "paired3d")
    for direction, source, label in (("AtoB", "testA", "fake_B"), ("BtoA", "testB", "fake_A")):
        t = load_translator(str(folder / "latest.pth"), direction=direction)
        assert t.patch == (16, 16, 16) and t.overlap == 0.5
        want = nib.load(os.path.join(case, label, "t0.nii.gz"))
        got = t(os.path.join(case, source, "t0.nii.gz"))
        assert isinstance(got, nib.Nifti1Image) and np.allclose(got.affine, want.affine)
        window = t.intensity["target"][1] - t.intensity["target"][0]
        np.testing.assert_allclose(got.get_fdata(), want.get_fdata(), rtol=0, atol=1e-5 * window)
        want_npy = np.load(os.path.join(case, label, "t1.npy"))
        np.testing.assert_allclose(t(np.load(os.path.join(case, source, "t1.npy"))), want_npy, rtol=0,
                                   atol=1e-5 * window)
        written = t.translate_file(os.path.join(case, source, "t0.nii.gz"), str(tmp_path / f"{label}.nii.gz"))
        np.testing.assert_allclose(nib.load(written).get_fdata(), want.get_fdata(), rtol=0, atol=1e-5 * window)
