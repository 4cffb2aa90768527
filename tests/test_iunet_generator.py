"""--netG iunet: the fully invertible U-Net as the RevGAN generator, end to end in 2D and 3D, and exactly
invertible at the application level."""
import os

import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from models import create_model
from models.config import ModelSpec
from options.test_options import TestOptions
from tests.conftest import tiny_flags, vol_flags
from tests.test_bad_input import copy_root, fails
from util.checkpoint import checkpoint_path, load_checkpoint

IUNET = ["--netG", "iunet", "--iunet_architecture", "1,1,1"]


def load_generator(tmp_path, name, model):
    opt = TestOptions().parse(["--name", name, "--model", model, "--checkpoints_dir", str(tmp_path / "ckpt"),
                               "--gpu_ids", "-1", "--netG", "iunet"])
    checkpoint = load_checkpoint(checkpoint_path(opt, opt.epoch))
    m = create_model(opt, ModelSpec.from_architecture(checkpoint["architecture"]))
    m.setup(opt, checkpoint)
    return m.netG.double().eval()


@pytest.mark.parametrize("model", ["paired_revgan", "unpaired_revgan"])
def test_iunet_revgan_trains_resumes_tests_and_is_exactly_invertible(demo_root, tmp_path, model):
    flags = tiny_flags(demo_root, tmp_path, model, model, IUNET)
    train_script.main(flags)
    train_script.main(flags + ["--n_epochs_decay", "2", "--continue_train"])
    test_script.main(["--dataroot", demo_root, "--name", model, "--model", model, "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1",
                      "--load_size", "32", "--crop_size", "32"])
    assert os.path.exists(tmp_path / "res" / model / "test_latest" / "metrics.json")
    if model == "unpaired_revgan":  # the inverse alone, through --model test
        test_script.main(["--dataroot", os.path.join(demo_root, "testB"), "--name", model, "--model", "test",
                          "--direction", "BtoA", "--checkpoints_dir", str(tmp_path / "ckpt"), "--results_dir",
                          str(tmp_path / "one"), "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32"])
        assert os.listdir(tmp_path / "one" / model / "test_latest_BtoA_only" / "images" / "fake")
    g = load_generator(tmp_path, model, model)
    assert g.exact and g.unet.size_multiple == (8, 8)
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        fake_b = g(x, "AtoB")
        assert (fake_b - x).abs().max() > 1e-3  # training changed it: not the identity
        assert (g(fake_b, "BtoA") - x).abs().max() <= 1e-10  # G_BA(G_AB(x)) = x
        assert (g(g(x, "BtoA"), "AtoB") - x).abs().max() <= 1e-10


def test_iunet_with_different_channel_counts_uses_stems(demo_root, tmp_path):
    root = copy_root(demo_root, tmp_path)
    for f in os.listdir(root / "trainB"):  # B: grayscale
        Image.open(root / "trainB" / f).convert("L").save(root / "trainB" / f)
    flags = tiny_flags(str(root), tmp_path, "gray", "unpaired_revgan", IUNET + ["--output_nc", "1"])
    train_script.main(flags)
    g = load_generator(tmp_path, "gray", "unpaired_revgan")
    assert not g.exact and g.unet.in_channels == 12
    with torch.no_grad():
        assert g(torch.zeros(1, 3, 32, 32, dtype=torch.float64), "AtoB").shape == (1, 1, 32, 32)
        assert g(torch.zeros(1, 1, 32, 32, dtype=torch.float64), "BtoA").shape == (1, 3, 32, 32)


def test_iunet_3d_trains_and_tests_whole_volumes(vol_root, tmp_path):
    flags = vol_flags(vol_root, tmp_path, "iu3d", "unpaired_revgan3d", IUNET + ["--n_epochs_decay", "0"])
    train_script.main(flags)
    test_script.main(["--dataroot", vol_root, "--name", "iu3d", "--model", "unpaired_revgan3d", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1"])
    out = tmp_path / "res" / "iu3d" / "test_latest" / "volumes"
    assert sorted(os.listdir(out)) == ["fake_A", "fake_B"]
    g = load_generator(tmp_path, "iu3d", "unpaired_revgan3d")
    x = torch.rand(1, 1, 16, 16, 16, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        assert (g(g(x, "AtoB"), "BtoA") - x).abs().max() <= 1e-10


def test_iunet_flag_errors(demo_root, tmp_path, capsys):
    fails(capsys, tiny_flags(demo_root, tmp_path, "bad", "paired_revgan", ["--netG", "iunet", "--iunet_architecture",
                                                                          "2,x"]),
          "--iunet_architecture must be comma-separated")
    fails(capsys, tiny_flags(demo_root, tmp_path, "bad2", "pix2pix", ["--netG", "iunet"]),
          "--netG iunet belongs to the RevGAN models")
