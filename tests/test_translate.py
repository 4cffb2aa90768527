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
        again = t(nib.load(os.path.join(case, source, "t0.nii.gz")))  # a nibabel image in: the same, as an image
        assert isinstance(again, nib.Nifti1Image) and np.array_equal(again.get_fdata(), got.get_fdata())
        want_npy = np.load(os.path.join(case, label, "t1.npy"))
        np.testing.assert_allclose(t(np.load(os.path.join(case, source, "t1.npy"))), want_npy, rtol=0,
                                   atol=1e-5 * window)
        written = t.translate_file(os.path.join(case, source, "t0.nii.gz"), str(tmp_path / f"{label}.nii.gz"))
        np.testing.assert_allclose(nib.load(written).get_fdata(), want.get_fdata(), rtol=0, atol=1e-5 * window)


def test_images_of_every_kind_files_folders_and_one_line_errors(tmp_path):
    folder = run_folder(tmp_path, "unpaired2d")
    t = load_translator(str(folder / "latest.pth"))
    src = os.path.join(FIXTURES, "unpaired2d", "real_A")
    rgb = png(os.path.join(src, "odd.png"))
    x = torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32) / 255 * 2 - 1)
    out = t(x)  # a tensor in [-1, 1] -> a tensor: the network's own output
    assert out.shape == x.shape and float(out.abs().max()) <= 1
    floats = t(rgb.astype(np.float64) / 255)  # floats in [0, 1] -> floats in [0, 1], the same image
    assert floats.dtype == np.float32 and floats.shape == rgb.shape
    assert np.abs(np.round(floats * 255) - t(rgb)).max() <= 1
    gray16 = (rgb.mean(2) * 257).astype(np.uint16)  # 16-bit grayscale: replicated to the model's 3 channels
    out16 = t(gray16)
    assert out16.dtype == np.uint16 and out16.shape == rgb.shape
    written = t.translate_folder(src, str(tmp_path / "out"))
    assert [os.path.basename(p) for p in written] == names("unpaired2d", "real_A")
    assert np.array_equal(png(tmp_path / "out" / "odd.png"), png(os.path.join(FIXTURES, "unpaired2d", "fake_B",
                                                                              "odd.png")))
    for bad, match in ((lambda: load_translator(str(tmp_path / "nothing")), "no checkpoint or run folder"),
                       (lambda: load_translator(str(folder), mode="test"), "use eval or train"),
                       (lambda: load_translator(str(folder), direction="AtoC"), "use AtoB or BtoA"),
                       (lambda: t(np.zeros((4, 4, 2), np.uint8)), "1, 3 or 4 channels"),
                       (lambda: t(torch.zeros(1, 1, 8, 8)), "the tensor has 1"),
                       (lambda: t(str(tmp_path / "missing.png")), "no file"),
                       (lambda: load_translator(str(folder), flags=["--no_such_flag"]), "not understood"),
                       (lambda: load_translator(str(folder), epoch="best"), r"\(epoch can be latest; best.pth is "
                                                                             r"written when validation")) \
            + (((lambda: load_translator(str(folder), device="cuda"), "no GPU is visible here: use device='cpu'"),)
               if not torch.cuda.is_available() else ()):
        with pytest.raises(UserError, match=match):
            bad()


def test_pytorch_cyclegan_files_through_the_api(tmp_path):
    from tests.test_upstream import their_resnet
    folder = tmp_path / "ckpt" / "theirs"
    folder.mkdir(parents=True)
    torch.manual_seed(1)
    net = their_resnet(3, 3, 8, 6)
    for p in net.parameters():
        p.data.normal_(0, 0.2)
    torch.save(net.state_dict(), folder / "latest_net_G.pth")
    t = load_translator(str(folder / "latest_net_G.pth"), flags=["--netG", "resnet_6blocks", "--ngf", "8",
                                                                 "--no_dropout"])
    x = torch.rand(1, 3, 32, 36) * 2 - 1
    with torch.no_grad():
        np.testing.assert_allclose(t(x).numpy(), net(x).numpy(), rtol=0, atol=1e-5)
