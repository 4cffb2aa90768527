"""The unpaired models' defaults leave the identity on a cross-domain task (issue 30). With the global residual the
generator starts as the identity, where the cycle and identity losses are zero; the identity loss then held it
there (its output was its input after 8 epochs of satellite -> map); without the identity loss, and with a fast
learned gain on the residual's input path, it left, but kept the photo's structure under a colour change and drifted
back towards its input with longer training (docs/benchmarks.md). The unpaired models' default now decides the
residual in training (tests/test_residual_probe.py: kept between domains that look alike, closed where they look
different), with no normalization (instance norm hid the input's colour and contrast from the generator);
--residual keeps the residual with its gain and no identity loss, --no_residual gives CycleGAN's generator (identity
loss 0.5). That generator leaves its input on two synthetic domains that differ in colour and texture; with the
residual and the identity loss the generator stays at its input."""
import json

import pytest
import torch

import test as test_script
import train as train_script
from evaluation import advice_lines
from models import create_model, upstream
from models.config import GeneratorConfig, ModelSpec
from options.train_options import TrainOptions
from tests.conftest import tiny_flags, train_then_test_against_copy
from util.checkpoint import load_checkpoint
from util.results import PSNR, Result, Results


def domains(n, size, gen):
    """A: warm, smooth blobs; B: cold stripes."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    a, b = [], []
    for _ in range(n):
        cx, cy = torch.rand(2, generator=gen) * 2 - 1
        blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) * 3)
        a.append(torch.stack([0.4 + 0.5 * blob, -0.2 + 0.3 * blob, -0.7 + 0.1 * blob]))
        stripes = torch.sign(torch.sin((4 + 4 * torch.rand(1, generator=gen)) * 3.14 *
                                       (xx + yy * torch.rand(1, generator=gen))))
        b.append(torch.stack([-0.7 + 0.1 * stripes, 0.2 * stripes, 0.5 + 0.3 * stripes]))
    return torch.stack(a), torch.stack(b)


def colour_shift(tmp_path, extra, steps=120):
    """How far the mean colour of A -> B moved from A's towards B's (0: the input's, 1: the target domain's) after
    ``steps`` training steps with default flags (small networks, a higher learning rate) plus ``extra``."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--name", "shift", "--model", "unpaired_revgan",
                                "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8",
                                "--n_blocks", "2", "--n_downsampling", "1", "--lr", "0.002"] + extra)
    model = create_model(opt)
    model.setup(opt)
    A, B = domains(64, 32, gen)
    for _ in range(steps):
        a, b = torch.randint(0, 64, (4,), generator=gen), torch.randint(0, 64, (4,), generator=gen)
        model.set_input({"A": A[a], "B": B[b], "A_paths": ["a"] * 4, "B_paths": ["b"] * 4})
        model.optimize_parameters()
    with torch.no_grad():
        fake = model.translate(A, "AtoB")
    mean_a, mean_b = A.mean((0, 2, 3)), B.mean((0, 2, 3))
    return ((fake.mean((0, 2, 3)) - mean_a).norm() / (mean_b - mean_a).norm()).item()


@pytest.mark.parametrize("flags", [["--no_residual"], ["--residual", "--norm", "instance"]])
def test_unpaired_revgan_leaves_its_input(tmp_path, flags):
    """CycleGAN's generator (no residual, no normalization) and the residual with its learned gain and instance norm
    (no identity loss) both move to the target's colours (the default, the residual decided in training:
    tests/test_residual_probe.py). (--residual without normalization moves 0.11 here: it learns
    restoration best and stays near its input between domains that look different; docs/benchmarks.md.)"""
    assert colour_shift(tmp_path, flags) > 0.4  # measured 1.0 (default) and 1.01


def test_the_identity_loss_on_a_residual_generator_holds_it_at_its_input(tmp_path):
    """An earlier default, to show the test above can fail."""
    held = colour_shift(tmp_path, ["--residual", "--lambda_identity", "0.5", "--no_residual_gate"], steps=60)
    assert held < 0.1  # measured 0.02


@pytest.mark.parametrize("model,flags,residual,auto,expected", [
    ("unpaired_revgan", [], True, True, 0.5), ("cycle_gan", [], True, True, 0.5),  # (0.5 where the residual closes)
    ("unpaired_revgan3d", [], True, True, 0.5), ("cycle_gan3d", [], True, True, 0.5),
    ("unpaired_revgan", ["--residual"], True, False, 0.0), ("cycle_gan", ["--residual"], True, False, 0.0),
    ("unpaired_revgan", ["--residual_auto"], True, True, 0.5),
    ("unpaired_revgan", ["--no_residual"], False, None, 0.5), ("cycle_gan", ["--no_residual"], False, None, 0.5),
    ("unpaired_revgan", ["--no_residual", "--residual_auto"], False, None, 0.5),
    ("unpaired_revgan", ["--netG", "iunet"], None, None, 0.5),  # (the invertible U-Net has none)
    ("unpaired_revgan", ["--lambda_identity", "0.3"], True, True, 0.3), ("paired_revgan", [], True, False, None),
    ("pix2pix", [], True, False, None), ("pix2pix3d", ["--no_residual"], False, None, None)])
def test_residual_and_identity_defaults(tmp_path, model, flags, residual, auto, expected):
    """The unpaired models default to the residual decided before training (tests/test_residual_probe.py; the
    identity loss 0.5 where it closes), --residual to the residual kept (no identity loss), --no_residual to
    CycleGAN's generator (identity loss 0.5); the paired ones to the residual. The identity weight follows the
    residual unless typed."""
    from models import options_spec, with_architecture_defaults
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--name", "x", "--model", model, "--checkpoints_dir",
                                str(tmp_path), "--gpu_ids", "-1"] + flags)
    spec = options_spec(opt)
    assert spec.to_architecture()["residual"] is residual and spec.to_architecture()["residual_auto"] is auto
    if expected is not None:
        assert opt.lambda_identity is None or "--lambda_identity" in flags
        assert with_architecture_defaults(opt, spec).lambda_identity == expected
    assert spec.to_architecture()["norm"] == "none"  # every GAN model's default (models/gan.py)


@pytest.mark.parametrize("model,flags,sees", [("unpaired_revgan", [], True), ("cycle_gan", [], True),
                                               ("unpaired_revgan", ["--norm", "instance"], False),
                                               ("cycle_gan", ["--norm", "instance"], False)])
def test_default_generators_see_the_input_colour(tmp_path, model, flags, sees):
    """Instance norm after the first convolution removes each channel's mean and scale, so a generator without the
    residual gives the same output for an image and for the image faded (its contrast compressed, a cast added): it
    cannot tell how faded its input is, and guessed (6 dB below the copy on faded photos, docs/benchmarks.md,
    "Normalization"). The unpaired models now default to no normalization, whose output changes with the fade.
    (Without the residual, as where --residual_auto closes it: the residual passes the input's colour anyway.)"""
    torch.manual_seed(0)
    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--name", "x", "--model", model, "--checkpoints_dir",
                                str(tmp_path), "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8", "--n_downsampling", "1"]
                               + (["--n_blocks", "2"] if model == "unpaired_revgan" else []) + ["--no_residual"]
                               + flags)
    net = create_model(opt)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    faded = 0.6 * x + 0.2  # the same fade in every channel: no channel mixing
    with torch.no_grad():
        diff = (net.translate(x, "AtoB") - net.translate(faded, "AtoB")).abs().mean().item()
        scale = net.translate(x, "AtoB").abs().mean().item()
    # measured 0.33 and 0.44 of the output's size with the defaults, 6e-5 and 1.1e-4 with instance norm (its eps)
    assert (diff > 0.05 * scale) if sees else diff < 1e-3 * scale


def test_checkpoints_with_the_residual_keep_it(demo_root, tmp_path):
    """An unpaired checkpoint trained with the residual and instance norm (earlier defaults) is tested and resumed
    with them, though the defaults are now without: the architecture comes from the checkpoint."""
    flags = tiny_flags(demo_root, tmp_path, "res", "unpaired_revgan", ["--n_blocks", "1", "--max_dataset_size", "1",
                                                                      "--n_epochs_decay", "0", "--residual",
                                                                      "--norm", "instance"])
    train_script.main(flags)
    path = tmp_path / "ckpt" / "res" / "latest.pth"
    assert load_checkpoint(str(path))["architecture"]["residual"] is True
    assert "residual_gain" in load_checkpoint(str(path))["networks"]["G"]
    test_script.main(["--dataroot", demo_root, "--name", "res", "--model", "unpaired_revgan", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res_out"), "--gpu_ids", "-1",
                      "--load_size", "32", "--crop_size", "32"])  # loads strictly: the gain must be there
    summary = json.loads((tmp_path / "res_out" / "res" / "test_latest" / "summary.json").read_text())
    assert summary["architecture"]["norm"] == "instance"  # the checkpoint's (instance norm has no weights to check)
    train_script.main([f for f in flags if f not in ("--residual", "--norm", "instance")] + ["--continue_train"])
    state = load_checkpoint(str(path))
    assert state["architecture"]["residual"] is True and "residual_gain" in state["networks"]["G"]
    assert state["architecture"]["norm"] == "instance"


def _spec(model="unpaired_revgan", residual=False, netG="revgan", nc=(3, 3)):
    return ModelSpec(model, nc[0], nc[1], GeneratorConfig(netG=netG, residual=residual))


def test_an_unpaired_model_below_the_copy_of_its_input_is_told_about_residual():
    """test.py's note: an unpaired model without the residual that scores below the copy of its input (a task where
    input and target look alike) is pointed to --residual; nothing for other models, other baselines or better
    scores."""
    below = Results([Result(PSNR, "fake_B", 19.5, 20.3), Result(PSNR, "fake_A", 22.0, 20.3)])
    lines = advice_lines(_spec(), below)
    assert len(lines) == 1 and lines[0].startswith("note: fake_B scores below the copy of its input (PSNR 19.50 "
                                                   "against 20.30 dB)") and "--residual" in lines[0]
    assert len(advice_lines(_spec("cycle_gan3d"), below)) == 1
    assert len(advice_lines(_spec(residual=True), below, residual_open=False)) == 1  # closed in training
    assert advice_lines(_spec(residual=True), below, residual_open=True) == []
    for spec in (_spec(residual=True), _spec("pix2pix"), _spec("paired_revgan"), _spec(netG="iunet"),
                 _spec(nc=(1, 3)), _spec(upstream.SINGLE_G, netG="resnet_9blocks")):
        assert advice_lines(spec, below) == []
    lut = Results([Result(PSNR, "fake_B", 19.5, 20.3, baseline_kind="lut")])
    assert advice_lines(_spec(), lut) == [] and advice_lines(_spec(), Results([Result(PSNR, "fake_B", 19.5)])) == []


def test_test_py_prints_the_note_when_its_numbers_say_so(demo_root, tmp_path, capsys):
    """Wired into test.py: the note is printed exactly when the run's PSNR is below its copy baseline."""
    out, mean = train_then_test_against_copy(demo_root, tmp_path, capsys, "adv", "unpaired_revgan",
                                             ["--n_blocks", "1", "--max_dataset_size", "1", "--n_epochs_decay", "0",
                                              "--no_residual"])
    for label in ("fake_B", "fake_A"):
        below = mean[f"PSNR_{label}"] < mean[f"baseline_PSNR_{label}"]
        assert (f"note: {label} scores below the copy of its input" in out) == below
    assert mean["PSNR_fake_B"] < mean["baseline_PSNR_fake_B"]  # one training step: the note must show here
