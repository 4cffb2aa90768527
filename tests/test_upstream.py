"""pytorch-CycleGAN-and-pix2pix generators (their file names and layout) run through test.py with the same outputs.

The reference networks are built here the way their code builds them (written from their documented architecture:
the ResNet generator as one flat nn.Sequential, the U-Net as nested skip blocks), so the key mapping and the
architecture flags are checked against an independent construction."""
import functools
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import test as test_script
from tests.test_user_errors import one_line_failure


def their_resnet(input_nc, output_nc, ngf, n_blocks):
    """Their ResnetGenerator with instance norm: one flat Sequential (so keys model.1, model.10.conv_block.1...)."""
    norm = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)

    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm(dim),
                                            nn.ReLU(True), nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True),
                                            norm(dim))

        def forward(self, x):
            return x + self.conv_block(x)

    layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=True), norm(ngf), nn.ReLU(True)]
    for i in range(2):
        m = 2 ** i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1, bias=True), norm(ngf * m * 2),
                   nn.ReLU(True)]
    layers += [Block(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
        m = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1, bias=True),
                   norm(ngf * m // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
    net = nn.Module()
    net.model = nn.Sequential(*layers)
    net.forward = lambda x: net.model(x)
    return net


class TheirUnetBlock(nn.Module):
    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False, dropout=False):
        super().__init__()
        norm = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
        self.outermost = outermost
        input_nc = input_nc or outer
        down = nn.Conv2d(input_nc, inner, 4, stride=2, padding=1, bias=True)
        if outermost:
            layers = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1),
                      norm(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, norm(inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), norm(outer)] + ([nn.Dropout(0.5)] if dropout
                                                                                     else [])
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def their_unet(input_nc, output_nc, ngf, num_downs):
    block = TheirUnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        block = TheirUnetBlock(ngf * 8, ngf * 8, sub=block, dropout=True)
    block = TheirUnetBlock(ngf * 4, ngf * 8, sub=block)
    block = TheirUnetBlock(ngf * 2, ngf * 4, sub=block)
    block = TheirUnetBlock(ngf, ngf * 2, sub=block)
    net = nn.Module()
    net.model = TheirUnetBlock(output_nc, ngf, input_nc=input_nc, sub=block, outermost=True)
    net.forward = lambda x: net.model(x)
    return net


def photos(folder, size, n=2):
    import skimage.data
    os.makedirs(folder, exist_ok=True)
    for k, name in enumerate(["astronaut", "chelsea"][:n]):
        img = Image.fromarray(getattr(skimage.data, name)()[..., :3]).resize((size, size), Image.BICUBIC)
        img.save(os.path.join(folder, f"{name}.png"))
    return folder


def randomized(net, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net.eval()


def their_output(net, path):
    x = torch.from_numpy(np.asarray(Image.open(path), np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = net(x)[0].permute(1, 2, 0).numpy()
    return np.round((y + 1) / 2 * 255).astype(np.int64)


@pytest.mark.parametrize("netG,size,build", [("resnet_9blocks", 64, lambda: their_resnet(3, 3, 8, 9)),
                                             ("unet_256", 256, lambda: their_unet(3, 3, 8, 8))])
def test_their_generator_gives_their_outputs(tmp_path, netG, size, build):
    data = photos(str(tmp_path / "data"), size)
    net = randomized(build(), 0)
    folder = tmp_path / "ckpt" / "theirs"
    folder.mkdir(parents=True)
    state = net.state_dict()
    if netG.startswith("resnet"):  # files from PyTorch < 0.4 carry InstanceNorm statistics: dropped on load
        state["model.2.running_mean"] = torch.zeros(8)
        state["model.2.running_var"] = torch.ones(8)
    torch.save(state, folder / "latest_net_G.pth")
    test_script.main(["--dataroot", data, "--name", "theirs", "--model", "test", "--netG", netG, "--ngf", "8",
                      "--checkpoints_dir", str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"),
                      "--gpu_ids", "-1", "--load_size", str(size), "--crop_size", str(size), "--eval"]
                     + (["--no_dropout"] if netG.startswith("resnet") else []))  # as their README says
    out = tmp_path / "res" / "theirs" / "test_latest_AtoB_only" / "images" / "fake"
    for name in ("astronaut", "chelsea"):
        ours = np.asarray(Image.open(out / f"{name}.png")).astype(np.int64)
        assert np.abs(ours - their_output(net, os.path.join(data, f"{name}.png"))).max() <= 1  # one grey level


def test_their_cycle_gan_pair_runs_both_ways(tmp_path):
    root = tmp_path / "data"
    photos(str(root / "testA"), 64)
    photos(str(root / "testB"), 64)
    g_a, g_b = randomized(their_resnet(3, 3, 8, 6), 1), randomized(their_resnet(3, 3, 8, 6), 2)
    folder = tmp_path / "ckpt" / "cyc"
    folder.mkdir(parents=True)
    torch.save(g_a.state_dict(), folder / "latest_net_G_A.pth")
    torch.save(g_b.state_dict(), folder / "latest_net_G_B.pth")
    common = ["--name", "cyc", "--netG", "resnet_6blocks", "--ngf", "8", "--no_dropout", "--checkpoints_dir",
              str(tmp_path / "ckpt"),
              "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1", "--load_size", "64", "--crop_size", "64",
              "--eval"]
    test_script.main(["--dataroot", str(root), "--model", "cycle_gan"] + common)
    images = tmp_path / "res" / "cyc" / "test_latest" / "images"
    for label, net, side in (("fake_B", g_a, "testA"), ("fake_A", g_b, "testB")):
        ours = np.asarray(Image.open(images / label / "astronaut.png")).astype(np.int64)
        assert np.abs(ours - their_output(net, str(root / side / "astronaut.png"))).max() <= 1
    # --model test --model_suffix _B: their test model on G_B alone
    test_script.main(["--dataroot", str(root / "testB"), "--model", "test", "--model_suffix", "_B"] + common)
    ours = np.asarray(Image.open(tmp_path / "res" / "cyc" / "test_latest_BtoA_only" / "images" / "fake" /
                                 "chelsea.png")).astype(np.int64)
    assert np.abs(ours - their_output(g_b, str(root / "testB" / "chelsea.png"))).max() <= 1


def test_mismatched_files_say_which_flags_fit(tmp_path, capsys):
    data = photos(str(tmp_path / "data"), 64, n=1)
    folder = tmp_path / "ckpt" / "bad"
    folder.mkdir(parents=True)
    torch.save(their_resnet(3, 3, 8, 9).state_dict(), folder / "latest_net_G.pth")
    common = ["--dataroot", data, "--name", "bad", "--model", "test", "--checkpoints_dir", str(tmp_path / "ckpt"),
              "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1", "--load_size", "64", "--crop_size", "64"]
    line = one_line_failure(capsys, test_script.main, common + ["--netG", "resnet_6blocks", "--ngf", "16"],
                            "does not fit --netG resnet_6blocks")
    assert "latest_net_G.pth" in line and "--netG resnet_9blocks --ngf 8 --input_nc 3 --output_nc 3 --no_dropout " \
        "--norm instance" in line
    torch.save(their_unet(3, 3, 8, 7).state_dict(), folder / "latest_net_G.pth")
    line = one_line_failure(capsys, test_script.main, common + ["--netG", "unet_256", "--ngf", "8"], "does not fit")
    assert "--netG unet_128 --ngf 8" in line
    disc = nn.Module()
    disc.model = nn.Sequential(nn.Conv2d(6, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 4, 1, 1))
    torch.save(disc.state_dict(), folder / "latest_net_G.pth")
    one_line_failure(capsys, test_script.main, common + ["--netG", "resnet_9blocks", "--ngf", "8"],
                     "holds a discriminator")
