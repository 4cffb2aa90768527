"""Image formats (16-bit, TIFF, JPEG), preprocess modes, LR policies, GAN losses and discriminators, end to end."""
import json
import math
import os
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from tests.conftest import tiny_flags
from util.checkpoint import load_checkpoint


def _gray16(seed, size=32):
    """A real photo (skimage's camera) crop spread over the full 16-bit range, plus fine detail below 8 bits."""
    import skimage.data
    rng = np.random.default_rng(seed)
    cam = skimage.data.camera().astype(np.uint32)
    y, x = rng.integers(0, cam.shape[0] - size, 2)
    return (cam[y:y + size, x:x + size] * 257 + rng.integers(0, 257, (size, size))).astype(np.uint16)


@pytest.fixture(scope="module")
def gray16_root(tmp_path_factory):
    """Unpaired 1-channel dataset: 16-bit PNG and TIFF in A and testB, 8-bit JPEG in trainB."""
    root = tmp_path_factory.mktemp("gray16")
    for phase, n in (("train", 3), ("test", 2)):
        os.makedirs(root / (phase + "A"))
        os.makedirs(root / (phase + "B"))
        for i in range(n):
            img = Image.fromarray(_gray16(10 * i + len(phase)))
            img.save(root / (phase + "A") / (f"a{i}.png" if i % 2 == 0 else f"a{i}.tif"))
            if phase == "train":
                Image.fromarray((_gray16(99 + i) >> 8).astype(np.uint8)).save(root / "trainB" / f"b{i}.jpg",
                                                                              quality=95)
            else:
                Image.fromarray(_gray16(99 + i)).save(root / "testB" / f"b{i}.tif")
    return str(root)


def test_16bit_tiff_jpeg_in_and_16bit_out(gray16_root, tmp_path):
    flags = tiny_flags(gray16_root, tmp_path, "g16", "unpaired_revgan",
                       ["--input_nc", "1", "--output_nc", "1", "--n_blocks", "2", "--preprocess", "none",
                        "--n_epochs_decay", "0", "--norm", "instance"])  # (an untrained network without a norm
    train_script.main(flags)  # at this width gives an almost flat output, whose bit depth the test cannot see)
    out = tmp_path / "res"
    test_script.main(["--dataroot", gray16_root, "--name", "g16", "--model", "unpaired_revgan", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(out), "--gpu_ids", "-1", "--preprocess", "none"])
    images = out / "g16" / "test_latest" / "images"
    for name in ("a0", "a1"):  # a0 was a 16-bit PNG, a1 a 16-bit TIFF
        src = np.asarray(Image.open(os.path.join(gray16_root, "testA", name + (".png" if name == "a0" else ".tif"))))
        real = Image.open(images / "real_A" / (name + ".png"))
        fake = Image.open(images / "fake_B" / (name + ".png"))
        assert real.mode.startswith("I;16") and fake.mode.startswith("I;16"), (real.mode, fake.mode)
        # full precision in and out: the written input equals the source, to the last 16-bit step
        assert np.array_equal(np.asarray(real).astype(np.int64), src.astype(np.int64))
        assert len(np.unique(np.asarray(fake))) > 256  # not 8-bit data in a 16-bit file
    for label in ("real_B", "fake_A"):  # outputs take the bit depth of their domain's images
        assert Image.open(images / label / "b0.png").mode.startswith("I;16")  # named after its own B image


@pytest.mark.parametrize("preprocess,expected", [("resize_and_crop", (24, 24)), ("crop", (24, 24)),
                                                 ("scale_width", (32, 48)), ("scale_width_and_crop", (24, 24)),
                                                 ("none", (40, 60))])
def test_preprocess_modes(tmp_path, preprocess, expected):
    from data import create_dataset
    from options.train_options import TrainOptions
    for sub in ("trainA", "trainB"):
        os.makedirs(tmp_path / sub)
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(
            tmp_path / sub / "x.png")
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--model", "cycle_gan", "--gpu_ids", "-1",
                                "--num_threads", "0", "--preprocess", preprocess, "--load_size", "48",
                                "--crop_size", "24"])
    item = next(iter(create_dataset(opt)))
    assert tuple(item["A"].shape[2:]) == expected


def _epoch_losses(text):
    return [float(v) for v in re.findall(r"mean generator loss ([-\d.e+]+)", text)]


@pytest.mark.parametrize("policy,first", [("linear", 1), ("step", 1), ("plateau", 1), ("cosine", 1), ("linear", 3),
                                          ("step", 3), ("cosine", 3)])
def test_lr_policies(demo_root, tmp_path, capsys, policy, first):
    """Epochs 1-4 of 2 + 2, or (--epoch_count 3, as in CycleGAN) epochs 3 and 4 at the rates of a run from 1."""
    lr = 1e-3
    flags = tiny_flags(demo_root, tmp_path, policy, "cycle_gan",
                       ["--netG", "resnet_6blocks", "--lr", str(lr), "--lr_policy", policy, "--n_epochs", "2",
                        "--n_epochs_decay", "2", "--lr_decay_iters", "2", "--max_dataset_size", "1",
                        "--epoch_count", str(first)])
    train_script.main(flags)
    out = capsys.readouterr().out
    rates = [float(v) for v in re.findall(r"learning rate ([-\d.e+]+)", out)]
    expected = {"linear": [lr, lr * 2 / 3, lr / 3, 0.0], "step": [lr, lr / 10, lr / 10, lr / 100],
                "cosine": [lr * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(1, 5)],
                "plateau": [lr] * 4}[policy][first - 1:]  # after each epoch
    assert rates == pytest.approx(expected, abs=1e-7)
    assert re.findall(r"end of epoch (\d+) / (\d+)", out) == [(str(e), "4") for e in range(first, 5)]
    state = load_checkpoint(str(tmp_path / "ckpt" / policy / "latest.pth"))
    assert state["optimizers"][0]["param_groups"][0]["lr"] == pytest.approx(expected[-1], abs=1e-12)
    if policy == "plateau":  # stepped on the epoch's real mean loss, not a constant
        losses = _epoch_losses(out)
        assert len(losses) == 4 and len(set(losses)) > 1
        best = losses[0]
        for value in losses[1:]:  # ReduceLROnPlateau, mode min, relative threshold 0.01
            best = value if value < best * (1 - 0.01) else best
        assert state["schedulers"][0]["best"] == pytest.approx(best, abs=1e-4)


@pytest.mark.parametrize("model,gan_mode,netD", [("pix2pix", "wgangp", "pixel"), ("cycle_gan", "vanilla", "n_layers"),
                                                 ("paired_revgan", "wgangp", "basic"),
                                                 ("unpaired_revgan", "vanilla", "pixel")])
def test_gan_losses_and_discriminators(demo_root, tmp_path, model, gan_mode, netD):
    extra = ["--gan_mode", gan_mode, "--netD", netD, "--n_layers_D", "2", "--n_epochs_decay", "0"]
    extra += ["--netG", "unet_128", "--load_size", "128", "--crop_size", "128", "--max_dataset_size", "1"] \
        if model == "pix2pix" else ["--n_blocks", "2"] if "revgan" in model else ["--netG", "resnet_6blocks"]
    train_script.main(tiny_flags(demo_root, tmp_path, model, model, extra))
    lines = open(tmp_path / "ckpt" / model / "loss_log.txt").read().splitlines()
    values = [float(v) for line in lines for v in re.findall(r"\bD_\w+: ([-\d.e+]+)", line)]
    assert values and all(np.isfinite(values))


def test_gradient_penalty_is_real():
    """For D(x) = <w, x> the input gradient is w everywhere: the penalty is lambda * (||w|| - 1)^2."""
    from models.networks import gradient_penalty
    w = torch.randn(1, 3, 4, 4, dtype=torch.float64)

    def netD(x):
        return (x * w).flatten(1).sum(1)
    real, fake = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 3, 4, 4, dtype=torch.float64)
    gp = gradient_penalty(netD, real, fake, lambda_gp=10.0)
    assert float(gp) == pytest.approx(10.0 * (float(w.norm()) - 1) ** 2, rel=1e-12)


def test_no_gpu_says_so_once_and_runs_on_cpu(demo_root, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: this checks the message of a machine without one")
    flags = tiny_flags(demo_root, tmp_path, "nogpu", "cycle_gan", ["--netG", "resnet_6blocks",
                                                                   "--n_epochs_decay", "0"])
    flags[flags.index("--gpu_ids") + 1] = "0"
    train_script.main(flags)
    err = capsys.readouterr().err
    assert err.count("no GPU found") == 1
    assert (tmp_path / "ckpt" / "nogpu" / "latest.pth").exists()


@pytest.fixture(scope="module")
def odd_root(tmp_path_factory):
    """Real photos (scikit-image) at sizes that are not multiples of 4, one size per photo. A: RGB, B: the same photo
    in grayscale under the same name (pairs for the aligned models)."""
    import skimage.data
    from skimage.transform import resize
    root = tmp_path_factory.mktemp("odd")
    photos = {"astronaut": (37, 50), "coffee": (42, 29), "chelsea": (31, 45)}
    for phase in ("train", "test"):
        for side in "AB":
            os.makedirs(root / (phase + side))
        for name, size in photos.items():
            rgb = (resize(getattr(skimage.data, name)(), size, anti_aliasing=True) * 255).astype(np.uint8)
            if phase == "test":
                rgb = rgb[:, ::-1].copy()
            Image.fromarray(rgb).save(root / (phase + "A") / f"{name}.png")
            Image.fromarray(rgb.mean(2).astype(np.uint8)).save(root / (phase + "B") / f"{name}.png")
    return str(root), photos


@pytest.mark.parametrize("model,extra", [("unpaired_revgan", ["--n_blocks", "1"]),
                                         ("paired_revgan", ["--n_blocks", "1", "--dataset_mode", "aligned"]),
                                         ("cycle_gan", ["--netG", "resnet_6blocks"]),
                                         ("pix2pix", ["--netG", "unet_128", "--dataset_mode", "aligned"])])
def test_any_image_size_trains_and_tests_at_its_own_size(odd_root, tmp_path, capsys, model, extra):
    """--preprocess none on sizes that are not multiples of what the generator needs: the generator pads and crops
    back, so training runs and test.py writes every output at its input's size (with metrics against the target)."""
    root, photos = odd_root
    flags = tiny_flags(root, tmp_path, model, model, ["--preprocess", "none", "--output_nc", "1",
                                                      "--n_epochs_decay", "0"] + extra)
    train_script.main(flags)
    assert capsys.readouterr().out.count("reflection-padded") == 1  # said once, not per image
    out = tmp_path / "res"
    test_script.main(["--dataroot", root, "--name", model, "--checkpoints_dir", str(tmp_path / "ckpt"),
                      "--results_dir", str(out), "--gpu_ids", "-1", "--preprocess", "none", "--model", model]
                     + (extra[-2:] if "--dataset_mode" in extra else []))
    images = out / model / "test_latest" / "images"
    labels = sorted(p.name for p in images.iterdir())
    assert "fake_B" in labels
    for name, (h, w) in photos.items():
        for label in labels:
            assert Image.open(images / label / f"{name}.png").size == (w, h), (label, name)
    rows = json.load(open(out / model / "test_latest" / "metrics.json"))["items"]
    assert len(rows) == len(photos) and all(np.isfinite(r["PSNR_fake_B"]) for r in rows)


@pytest.mark.parametrize("netG,dims", [("resnet_6blocks", 2), ("unet_128", 2), ("revgan", 2), ("iunet", 2),
                                       ("resnet_6blocks", 3), ("revgan", 3)])
def test_generators_take_any_size(netG, dims):
    from models.config import GeneratorConfig
    from models.networks import define_G
    g = define_G(1, 2, GeneratorConfig(netG=netG, ngf=4, norm="instance", dropout=False, dims=dims, n_blocks=1))
    spatial = (9, 14) if dims == 2 else (7, 5, 10)
    for direction in (["AtoB", "BtoA"] if netG in ("revgan", "iunet") else ["AtoB"]):
        x = torch.randn((1, 1 if direction == "AtoB" else 2) + spatial)
        y = g(x) if direction == "AtoB" else g(x, direction)
        assert tuple(y.shape) == (1, 2 if direction == "AtoB" else 1) + spatial
    if netG != "iunet":  # on a multiple, nothing is padded: the wrapped network runs as it is
        x = torch.randn((1, 1) + (16,) * dims if netG != "unet_128" else (1, 1, 128, 128))
        inner = g.model if hasattr(g, "model") else (lambda t: g.dec_B(g.core(g.enc_A(t))))
        assert torch.equal(g(x), inner(x))


def test_side_by_side_pairs_of_any_shape(odd_root, tmp_path):
    """A|B files whose halves are not square (what datasets/combine_A_and_B.py writes from non-square photos) train
    and test as pix2pix reads them: split at half the width, each output at its half's size."""
    import subprocess
    import sys
    root, photos = odd_root
    split = tmp_path / "split"
    for side in "AB":
        for phase in ("train", "test"):
            os.makedirs(split / side / phase)
            for name in photos:  # B in RGB too: side-by-side pairs share one channel count
                Image.open(os.path.join(root, phase + side, f"{name}.png")).convert("RGB").save(
                    split / side / phase / f"{name}.png")
    ab = tmp_path / "AB"
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "datasets", "combine_A_and_B.py")
    subprocess.run([sys.executable, script, "--fold_A", str(split / "A"), "--fold_B",
                    str(split / "B"), "--fold_AB", str(ab)], check=True, capture_output=True)
    assert {Image.open(ab / "train" / f"{n}.png").size for n in photos} == {(2 * w, h) for h, w in photos.values()}
    train_script.main(tiny_flags(str(ab), tmp_path, "pairs", "paired_revgan",
                                 ["--preprocess", "none", "--n_blocks", "1", "--n_epochs_decay", "0"]))
    out = tmp_path / "res"
    test_script.main(["--dataroot", str(ab), "--name", "pairs", "--checkpoints_dir", str(tmp_path / "ckpt"),
                      "--results_dir", str(out), "--gpu_ids", "-1", "--preprocess", "none", "--model", "paired_revgan"])
    for name, (h, w) in photos.items():
        assert Image.open(out / "pairs" / "test_latest" / "images" / "fake_B" / f"{name}.png").size == (w, h)


def test_pair_scripts_take_mixed_modes_and_extensions_and_fail_in_one_line(tmp_path):
    """datasets/combine_A_and_B.py and make_dataset_aligned.py: an RGBA half beside an RGB one, x.png beside x.jpg,
    16-bit grayscale pairs; halves of other sizes or a missing partner: one line, status 2."""
    import subprocess
    import sys
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "datasets")
    rng = np.random.default_rng(0)
    rgb = lambda: rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)  # noqa: E731
    for side in "AB":
        os.makedirs(tmp_path / side / "train")
    Image.fromarray(np.dstack([rgb(), np.full((8, 10), 128, np.uint8)])).save(tmp_path / "A" / "train" / "x.png")
    Image.fromarray(rgb()).save(tmp_path / "B" / "train" / "x.jpg")
    for side in "AB":
        Image.fromarray(rng.integers(0, 65536, (8, 10), dtype=np.uint16)).save(tmp_path / side / "train" / "g.png")
    Image.fromarray(rgb()).save(tmp_path / "A" / "train" / "alone.png")

    def run(script, *args):
        return subprocess.run([sys.executable, os.path.join(here, script)] + [str(a) for a in args],
                              capture_output=True, text=True)
    folds = ["--fold_A", tmp_path / "A", "--fold_B", tmp_path / "B", "--fold_AB"]
    done = run("combine_A_and_B.py", *folds, tmp_path / "AB")
    assert done.returncode == 0 and "train: 2 pairs" in done.stdout and "skipping alone.png" in done.stderr, done
    x, g = (Image.open(tmp_path / "AB" / "train" / f) for f in ("x.png", "g.png"))
    assert (x.mode, x.size) == ("RGB", (20, 8)) and g.size == (20, 8) and np.asarray(g).max() > 255  # 16-bit kept
    assert np.array_equal(np.asarray(g)[:, 10:], np.asarray(Image.open(tmp_path / "B" / "train" / "g.png")))
    Image.fromarray(rgb()[:6]).save(tmp_path / "B" / "train" / "x.jpg")  # another size
    bad = run("combine_A_and_B.py", *folds, tmp_path / "C")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: ") and \
        "is 10x8 but" in bad.stderr and "Traceback" not in bad.stderr, bad
    # make_dataset_aligned: trainA/trainB of one dataset; a file without a partner is an error there
    data = tmp_path / "data"
    os.makedirs(data / "trainA")
    os.makedirs(data / "trainB")
    for side in "AB":
        shutil.copy(tmp_path / side / "train" / "g.png", data / ("train" + side) / "g.png")
    assert run("make_dataset_aligned.py", "--dataset-path", data).returncode == 0
    assert Image.open(data / "train" / "g.png").size == (20, 8)
    shutil.copy(tmp_path / "A" / "train" / "alone.png", data / "trainA")
    bad = run("make_dataset_aligned.py", "--dataset-path", data)
    assert bad.returncode == 2 and "alone.png has no partner in" in bad.stderr and "Traceback" not in bad.stderr


def test_inputs_of_one_name_keep_their_own_outputs(odd_root, tmp_path, capsys):
    """Test inputs that share a name (another extension, another subfolder: folders are read recursively) each keep
    their outputs, under a name that says which (the second used to overwrite the first)."""
    root, photos = odd_root
    train_script.main(tiny_flags(root, tmp_path, "names", "unpaired_revgan", ["--preprocess", "none", "--n_blocks",
                                                                             "1", "--n_epochs_decay", "0"]))
    src = Image.open(os.path.join(root, "testA", "coffee.png"))
    inputs = tmp_path / "inputs"
    os.makedirs(inputs / "more")
    src.save(inputs / "coffee.png")
    src.transpose(Image.FLIP_TOP_BOTTOM).save(inputs / "coffee.jpg")
    src.transpose(Image.FLIP_LEFT_RIGHT).save(inputs / "more" / "coffee.png")
    capsys.readouterr()
    test_script.main(["--dataroot", str(inputs), "--name", "names", "--checkpoints_dir", str(tmp_path / "ckpt"),
                      "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1", "--preprocess", "none",
                      "--model", "test", "--dataset_mode", "single"])
    out = capsys.readouterr().out
    real = next((tmp_path / "res" / "names").iterdir()) / "images" / "real"
    saved = {p.name: np.asarray(Image.open(p)) for p in real.iterdir()}
    assert len(saved) == 3 and "coffee.png" in saved, sorted(saved)
    assert len({a.tobytes() for a in saved.values()}) == 3  # three different inputs, none overwritten
    assert out.count("an earlier test input is named coffee too") == 2
