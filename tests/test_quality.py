"""Translation quality (issue 18): generators that start from their input (a global residual), no seams in
whole-volume 3D outputs, and validation while training."""
import contextlib
import io
import json
import os
import re
import shutil

import numpy as np
import pytest
import torch

import test as test_script
import train as train_script
from models.config import GeneratorConfig, ModelSpec
from models.networks import define_G
from tests.conftest import logged_rows, tiny_flags, train_then_test_against_copy, vol_flags
from util.checkpoint import load_checkpoint

GENERATORS = [("resnet_6blocks", 2), ("unet_128", 2), ("revgan", 2), ("resnet_6blocks", 3), ("revgan", 3)]


def zero_last_layers(net):
    """Sets the correction of every output layer to 0 (the last convolution of each decoder / the U-Net)."""
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose2d,
                                                         torch.nn.ConvTranspose3d))]
    lasts = [convs[-1]] if not hasattr(net, "dec_A") else [net.dec_A[-1], net.dec_B[-1]]
    with torch.no_grad():
        for conv in lasts:
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()


@pytest.mark.parametrize("netG,dims", GENERATORS)
def test_residual_generators_start_from_their_input(netG, dims):
    torch.manual_seed(0)
    net = define_G(1, 1, GeneratorConfig(netG=netG, ngf=4, dims=dims, n_blocks=1, residual=True)).double()
    size = (128, 128) if netG == "unet_128" else (12, 10) if dims == 2 else (8, 12, 6)
    x = torch.rand((2, 1) + size, dtype=torch.float64) * 1.9 - 0.95
    directions = ["AtoB", "BtoA"] if netG == "revgan" else ["AtoB"]
    for direction in directions:
        y = net(x, direction)
        assert y.shape == x.shape and y.abs().max() < 1  # in range
        assert (y - x).abs().max() > 1e-4  # a trained-looking correction, not the identity
    zero_last_layers(net)
    for direction in directions:  # no correction: exactly the input
        assert torch.allclose(net(x, direction), x, atol=1e-12)
    # with other channel counts there is no residual path (and outputs keep their tanh range)
    other = define_G(1, 3, GeneratorConfig(netG=netG, ngf=4, dims=dims, n_blocks=1, residual=True))
    assert not other.residual and other(x.float()).abs().max() <= 1


@pytest.mark.parametrize("entry", ["residual", "residual_gate"])
def test_old_checkpoints_load_as_trained(demo_root, tmp_path, entry):
    """A checkpoint written before the residual (or its gate) existed, without that entry in its architecture, is
    rebuilt without it: test.py's outputs equal the generator run as trained."""
    flags = tiny_flags(demo_root, tmp_path, "old", "paired_revgan", ["--n_blocks", "1", "--no_" + entry,
                                                                    "--max_dataset_size", "1", "--n_epochs_decay", "0"])
    train_script.main(flags)
    path = tmp_path / "ckpt" / "old" / "latest.pth"
    state = load_checkpoint(str(path))
    del state["architecture"][entry]  # as an older version wrote it
    torch.save(state, path)
    spec = ModelSpec.from_architecture(state["architecture"])
    assert getattr(spec.generator, entry) is False
    assert spec.generator.residual is (entry == "residual_gate")
    test_script.main(["--dataroot", demo_root, "--name", "old", "--model", "paired_revgan", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1",
                      "--load_size", "32", "--crop_size", "32", "--eval"])
    net = define_G(3, 3, spec.generator).eval()  # the network as trained: no residual (no gate)
    net.load_state_dict(state["networks"]["G"])
    images = tmp_path / "res" / "old" / "test_latest" / "images"
    name = sorted(os.listdir(images / "real_A"))[0]
    from PIL import Image
    real = torch.from_numpy(np.asarray(Image.open(images / "real_A" / name), np.float32) / 127.5 - 1)
    with torch.no_grad():
        expected = net(real.permute(2, 0, 1)[None], "AtoB")[0].permute(1, 2, 0).numpy()
    fake = np.asarray(Image.open(images / "fake_B" / name), np.float32) / 127.5 - 1
    assert np.abs(fake - expected).max() <= 2 / 255 + 1e-6  # the rounding of the two saved images
    # and --continue_train takes the checkpoint's architecture for flags not typed (here: no residual, no gate)
    train_script.main(tiny_flags(demo_root, tmp_path, "old", "paired_revgan", ["--n_blocks", "1", "--max_dataset_size",
                                                                            "1", "--continue_train"]))
    assert load_checkpoint(str(path))["architecture"][entry] is False


@pytest.mark.parametrize("netG,dims", GENERATORS)
def test_residual_gate_starts_open_and_can_close(netG, dims):
    """The gain on the residual's input path starts at 1 (the generator still starts at its input) and at 0 leaves
    the network's own output: tanh(h)."""
    from models.networks import GATE_RATE
    torch.manual_seed(0)
    config = GeneratorConfig(netG=netG, ngf=4, dims=dims, n_blocks=1, residual=True, residual_gate=True)
    net = define_G(2, 2, config).double().eval()
    size = (128, 128) if netG == "unet_128" else (12, 10) if dims == 2 else (8, 12, 6)
    x = torch.rand((1, 2) + size, dtype=torch.float64) * 1.9 - 0.95
    directions = ["AtoB", "BtoA"] if netG == "revgan" else ["AtoB"]
    assert tuple(net.residual_gain.shape) == (len(directions), 2)
    zero_last_layers(net)
    with torch.no_grad():
        for direction in directions:
            assert torch.allclose(net(x, direction), x, atol=1e-12)
        net.residual_gain.fill_(-1 / GATE_RATE)  # gain 0: the input path closed
        for direction in directions:
            assert torch.allclose(net(x, direction), torch.zeros_like(x), atol=1e-12)  # tanh(h), h = 0
    ungated = define_G(2, 2, GeneratorConfig(netG=netG, ngf=4, dims=dims, n_blocks=1, residual=True))
    assert not hasattr(ungated, "residual_gain")


@pytest.mark.parametrize("policy", ["linear", "plateau"])
def test_paired_gains_learn_at_most_at_the_cap_and_one_group_checkpoints_resume_exactly(demo_root, tmp_path, capsys,
                                                                                       policy):
    """The paired models' residual gains have their own parameter group at min(--lr, GATE_MAX_LR) (the schedule
    scales both groups alike); a checkpoint written when all the generator's parameters shared one Adam group (before
    this rule) resumes with each parameter's Adam state: the same losses and weights as resuming the two-group
    checkpoint."""
    from models import create_model
    from models.networks import GATE_MAX_LR
    from options.train_options import TrainOptions
    flags = tiny_flags(demo_root, tmp_path, "two", "paired_revgan", ["--n_blocks", "1", "--lr", "0.0005",
                                                                       "--n_epochs", "1", "--n_epochs_decay", "0",
                                                                       "--seed", "3", "--lr_policy", policy,
                                                                       "--two_way"])  # as checkpoints then were
    train_script.main(flags)
    ckpt = tmp_path / "ckpt"
    state = torch.load(ckpt / "two" / "latest.pth", weights_only=False)
    groups = state["optimizers"][0]["param_groups"]
    assert [g.get("initial_lr", g["lr"]) for g in groups] == [0.0005, GATE_MAX_LR]  # (plateau: no initial_lr)
    assert groups[1]["lr_cap"] == GATE_MAX_LR
    assert len(state["optimizers"][1]["param_groups"]) == 1  # the discriminators have no gain
    with contextlib.redirect_stdout(io.StringIO()):
        model = create_model(TrainOptions().parse(flags))
    names = [n for n, _ in model.net("G").named_parameters()]  # the one group's order
    gains = [n for n in names if n.endswith("residual_gain")]
    assert gains == ["residual_gain"] and names.index(gains[0]) < len(names) - 1  # not already last
    if policy == "plateau":  # as if the plateau rule had reduced the rates once (x0.2): the gains' from their cap
        for g in groups:
            g["lr"] *= 0.2
        state["schedulers"][0]["_last_lr"] = [g["lr"] for g in groups]
        torch.save(state, ckpt / "two" / "latest.pth")
    order = [n for n in names if n not in gains] + gains  # the two groups' order
    one = {k: v for k, v in groups[0].items() if k != "params"}
    two_group = state["optimizers"][0]
    state["optimizers"][0] = {"param_groups": [dict(one, params=list(range(len(names))))],
                              "state": {i: two_group["state"][order.index(n)] for i, n in enumerate(names)}}
    if policy == "plateau":  # the scheduler of one group
        state["schedulers"][0].update(min_lrs=[0], _last_lr=[groups[0]["lr"]])
    (ckpt / "one").mkdir()
    torch.save(state, ckpt / "one" / "latest.pth")
    for name in ("two", "one"):
        resume = [f if f != "two" else name for f in flags] + ["--continue_train", "--n_epochs", "2"]
        train_script.main(resume)
    capsys.readouterr()
    after = {n: torch.load(ckpt / n / "latest.pth", weights_only=False) for n in ("two", "one")}
    assert logged_rows(ckpt / "one" / "loss_log.txt")[-3:] == logged_rows(ckpt / "two" / "loss_log.txt")[-3:]
    for net in after["two"]["networks"]:
        for key, value in after["two"]["networks"][net].items():
            assert torch.equal(after["one"]["networks"][net][key], value), f"{net}.{key} differs"
    assert [g["lr"] for g in after["one"]["optimizers"][0]["param_groups"]] == \
        [g["lr"] for g in after["two"]["optimizers"][0]["param_groups"]]
    if policy == "plateau":  # a minimum per group (torch < 2.6 would fail at the next reduction)
        assert after["one"]["schedulers"][0]["min_lrs"] == [0, 0]


def test_unpaired_gains_learn_at_the_learning_rate(demo_root, tmp_path):
    """The unpaired models with --residual keep one group at --lr: their gains must keep pace with the network to
    leave the identity (tests/test_unpaired_defaults.py)."""
    train_script.main(tiny_flags(demo_root, tmp_path, "un", "cycle_gan", ["--lr", "0.0005", "--n_epochs_decay", "0",
                                                                          "--lr_policy", "plateau", "--residual"]))
    state = torch.load(tmp_path / "ckpt" / "un" / "latest.pth", weights_only=False)
    assert "residual_gain" in state["networks"]["G_A"]  # the gains are there, in the one group
    assert [g["lr"] for g in state["optimizers"][0]["param_groups"]] == [0.0005]


def test_short_paired_training_beats_the_copy_baseline(demo_root, tmp_path, capsys):
    """A near-identity task (the demo's badly exposed photos): a few epochs with default flags (tiny sizes) already
    beat copying the input (--baseline copy). This checks that training starts from the input and improves on it,
    no more: a look-up table of the input's colour fitted on the training pairs (what --baseline auto shows for
    this data) scores above such a short run, and above the demo's model too (README)."""
    _, mean = train_then_test_against_copy(demo_root, tmp_path, capsys, "near", "paired_revgan",
                                           ["--ngf", "16", "--ndf", "16", "--max_dataset_size", "16", "--n_epochs", "3",
                                            "--n_epochs_decay", "1"])
    assert mean["PSNR_fake_B"] > mean["baseline_PSNR_fake_B"] + 1, mean


def test_sliding_window_has_no_seams_on_a_flat_background(tmp_path):
    """A 3D generator (the 3D default norm) on a volume with a flat background and an object in the middle,
    translated in overlapping windows: the flat background comes out flat (no blocks at window borders), and the
    whole equals one pass over the volume."""
    from util.volume import sliding_window
    torch.manual_seed(0)
    from options.train_options import TrainOptions
    opt = TrainOptions().parse(["--model", "paired_revgan3d", "--gpu_ids", "-1", "--ngf", "4", "--n_blocks", "1"])
    spec = ModelSpec.from_options(opt, 3)
    net = define_G(1, 1, spec.generator).eval()
    vol = -torch.ones(1, 40, 40, 40)
    vol[:, 15:25, 15:25, 15:25] = 0.5
    with torch.no_grad():
        whole = net(vol[None])[0]
        tiled = sliding_window(lambda x: net(x), vol, (16, 16, 16), overlap=0.5)
    background = vol[0] == -1
    assert float(tiled[0][background].max() - tiled[0][background].min()) < 1e-3
    assert float((tiled - whole)[0][~background].abs().max()) < 0.05


def val_rows(path):
    return [line for line in open(path) if line.startswith("validation (epoch")]


def test_validation_logs_keeps_best_and_does_not_change_training(demo_root, tmp_path, capsys):
    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    for side in "AB":  # a validation folder: preferred over --val_fraction
        shutil.copytree(root / f"test{side}", root / f"val{side}")
    common = ["--n_blocks", "1", "--max_dataset_size", "4", "--n_epochs", "2", "--n_epochs_decay", "1",
              "--dataset_mode", "aligned"]
    train_script.main(tiny_flags(str(root), tmp_path, "plain", "paired_revgan", common))
    flags = tiny_flags(str(root), tmp_path, "val", "paired_revgan", common + ["--val_freq", "2", "--val_fraction",
                                                                            "0.5"])
    train_script.main(flags)
    out = capsys.readouterr().out
    assert "validation every 2 epoch(s) on" in out and "/val*" in out  # the folder wins over the fraction
    folder = tmp_path / "ckpt" / "val"
    # validation does not change training: the same losses as without it
    assert logged_rows(folder / "loss_log.txt") == logged_rows(tmp_path / "ckpt" / "plain" / "loss_log.txt")
    rows = val_rows(folder / "loss_log.txt")
    assert [r.split(")")[0] for r in rows] == ["validation (epoch 2", "validation (epoch 3"]  # every 2, and the last
    assert re.search(r"PSNR_fake_B: [\d.]+ \(copy [\d.]+\)", rows[0]) and "best.pth" in rows[0]
    history = [json.loads(line) for line in open(folder / "loss_history.jsonl")]
    vals = [p for p in history if "val" in p]
    assert [p["x"] for p in vals] == [2.0, 3.0] and "baseline_PSNR_fake_B" in vals[0]["val"]
    best = load_checkpoint(str(folder / "best.pth"))
    best_psnr = max(p["val"]["PSNR_fake_B"] for p in vals)
    assert best["validation"] == {"metric": "PSNR_fake_B", "best": pytest.approx(best_psnr)}
    assert "Validation" in open(folder / "web" / "index.html").read()
    test_script.main(["--dataroot", str(root), "--name", "val", "--model", "paired_revgan", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1",
                      "--load_size", "32", "--crop_size", "32", "--epoch", "best"])
    assert (tmp_path / "res" / "val" / "test_best" / "metrics.json").exists()


def test_validation_resume_is_exact(demo_root, tmp_path):
    common = ["--two_way", "--n_blocks", "1", "--max_dataset_size", "6", "--n_epochs", "2", "--n_epochs_decay", "1",
              "--val_freq", "1", "--val_fraction", "0.3", "--val_metric", "mae_fake_a"]  # B -> A validated
    train_script.main(tiny_flags(demo_root, tmp_path, "ref", "paired_revgan", common))
    split = tiny_flags(demo_root, tmp_path, "split", "paired_revgan", common)
    train_script.main(split[:-len(common)] + ["--two_way", "--n_blocks", "1", "--max_dataset_size", "6",
                                              "--n_epochs", "1", "--n_epochs_decay", "0", "--val_freq", "1",
                                              "--val_fraction", "0.3", "--val_metric", "mae_fake_a"])
    train_script.main(split + ["--continue_train"])
    ref, resumed = (tmp_path / "ckpt" / n / "loss_log.txt" for n in ("ref", "split"))
    assert logged_rows(ref) == logged_rows(resumed)
    assert val_rows(ref) == val_rows(resumed)
    assert load_checkpoint(str(tmp_path / "ckpt" / "split" / "best.pth"))["validation"]["metric"] == "MAE_fake_A"


def test_validation_on_unpaired_data_reports_the_cycle_error(demo_root, tmp_path, capsys):
    root = tmp_path / "unpaired"
    for side in "AB":
        shutil.copytree(os.path.join(demo_root, "train" + side), root / ("train" + side))
    for k, f in enumerate(sorted((root / "trainB").iterdir())):  # no names in common: no real pairs
        f.rename(root / "trainB" / f"b{k}.png")
    train_script.main(tiny_flags(str(root), tmp_path, "cyc", "unpaired_revgan", ["--n_blocks", "1", "--val_freq",
                                                                                "1", "--val_fraction", "0.3"]))
    rows = val_rows(tmp_path / "ckpt" / "cyc" / "loss_log.txt")
    assert rows and "cycle_MAE_A" in rows[0] and "PSNR" not in rows[0]


def test_3d_validation_and_test(vol_root, tmp_path, capsys):
    flags = vol_flags(vol_root, tmp_path, "v3", "paired_revgan3d", ["--val_freq", "1", "--val_fraction", "0.4"])
    # a --val_metric that validation will not measure (the one-way default has no B -> A) stops the run before it
    # trains or writes anything
    with pytest.raises(SystemExit):
        train_script.main(flags + ["--val_metric", "PSNR_fake_A"])
    assert "--val_metric PSNR_fake_A: validation here measures MAE_fake_B" in capsys.readouterr().err
    assert not (tmp_path / "ckpt").exists()
    train_script.main(flags + ["--val_metric", "PSNR_foreground_fake_B"])  # the foreground's, as validation prints
    assert "without --val_freq" not in capsys.readouterr().out
    rows = val_rows(tmp_path / "ckpt" / "v3" / "loss_log.txt")
    assert len(rows) == 2 and "PSNR_fake_B" in rows[0]
    assert np.isfinite(float(re.search(r"PSNR_fake_B: ([-\d.]+)", rows[0]).group(1)))
    best = load_checkpoint(str(tmp_path / "ckpt" / "v3" / "best.pth"))["validation"]
    assert best["metric"] == "PSNR_foreground_fake_B"
    # --val_fraction alone validates nothing: said
    at = flags.index("--val_freq")
    train_script.main(flags[:at] + flags[at + 2:] + ["--name", "alone", "--n_epochs_decay", "0"])
    assert "note: --val_fraction 0.4 without --val_freq: no validation runs" in capsys.readouterr().out


def test_3d_validation_on_unpaired_volumes_reports_the_cycle_error(vol_root, tmp_path, capsys):
    root = tmp_path / "unpaired"
    shutil.copytree(os.path.join(vol_root, "trainA"), root / "trainA")
    shutil.copytree(os.path.join(vol_root, "trainB"), root / "trainB")
    for k, f in enumerate(sorted((root / "trainB").iterdir())):  # no names in common: no targets
        f.rename(root / "trainB" / f"b{k}.nii")
    flags = vol_flags(str(root), tmp_path, "u3", "unpaired_revgan3d", ["--val_freq", "1", "--val_fraction", "0.4",
                                                                      "--n_epochs_decay", "0"])
    train_script.main(flags)
    out = capsys.readouterr().out  # what 3D "images" count: patches
    assert re.search(r"the number of training images = (\d+) \(patches: \1 volumes x 1, --samples_per_volume\)", out)
    rows = val_rows(tmp_path / "ckpt" / "u3" / "loss_log.txt")
    assert rows and "cycle_MAE_A" in rows[0] and "cycle_MAE_B" in rows[0] and "PSNR" not in rows[0]
    assert np.isfinite(float(re.search(r"cycle_MAE_A: ([-\d.]+)", rows[0]).group(1)))
    assert load_checkpoint(str(tmp_path / "ckpt" / "u3" / "best.pth"))["validation"]["metric"] == "cycle_MAE_A"
    test_script.main(["--dataroot", str(vol_root), "--name", "u3", "--model", "unpaired_revgan3d", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1"])
    options = (tmp_path / "res" / "u3" / "test_latest" / "test_opt.txt").read_text()
    assert re.search(r"^\s*patch_size: \[16\]", options, re.M), options  # the training patch it used, not None
    # a one-way model has no cycle error: validation volumes without targets (valA, valB) refused before it trains
    paired = tmp_path / "paired"
    for side in "AB":
        shutil.copytree(os.path.join(vol_root, "train" + side), paired / ("train" + side))
    (paired / "valA").mkdir()
    (paired / "valB").mkdir()
    shutil.copy(paired / "trainA" / "s0.nii.gz", paired / "valA" / "v.nii.gz")
    shutil.copy(paired / "trainB" / "s0.nii", paired / "valB" / "w.nii")
    with pytest.raises(SystemExit):
        train_script.main(vol_flags(str(paired), tmp_path, "p3", "paired_revgan3d", ["--val_freq", "1"]))
    assert "the validation volumes of --model paired_revgan3d need targets" in capsys.readouterr().err
    assert not (tmp_path / "ckpt" / "p3").exists()


def test_every_save_keeps_validations_best(demo_root, tmp_path, monkeypatch):
    """Mid-epoch saves (--save_latest_freq) carry validation's best too, so a run resumed from one keeps best.pth's
    standard."""
    import models.base_model
    import util.checkpoint
    saved = []
    original = util.checkpoint.save_checkpoint

    def recording(state, path):
        saved.append((os.path.basename(path), (state["counters"]["epoch"], state["counters"]["epoch_iter"]),
                      state["validation"]))
        return original(state, path)
    monkeypatch.setattr(models.base_model, "save_checkpoint", recording)
    train_script.main(tiny_flags(demo_root, tmp_path, "mid", "paired_revgan", [
        "--n_blocks", "1", "--max_dataset_size", "6", "--n_epochs", "2", "--n_epochs_decay", "0", "--val_freq", "1",
        "--val_fraction", "0.3", "--save_latest_freq", "2"]))
    mid_epoch_2 = [v for name, (epoch, within), v in saved if name == "latest.pth" and epoch == 2 and within]
    assert mid_epoch_2 and all(v["best"] is not None and v["metric"] == "PSNR_fake_B" for v in mid_epoch_2)
    assert [name for name, _, _ in saved][-2:] in (["best.pth", "latest.pth"], ["2.pth", "latest.pth"])
