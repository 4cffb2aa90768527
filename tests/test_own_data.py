"""A user's own data and resumed runs (issue 16), end to end: mixed grayscale/RGB/16-bit sets are converted to the
channel counts asked for; schedule flags on --continue_train take effect (said in one line) or keep the checkpoint's;
each test run's folder holds only its outputs; reference metrics only where pairs are real."""
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

import test as test_script
import train as train_script
from data.image_folder import LUMA, load_image
from tests.conftest import tiny_flags
from util.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def mixed_root(demo_root, tmp_path_factory):
    """The demo's unpaired layout with some A images made grayscale (8- and 16-bit) and one B image grayscale."""
    root = tmp_path_factory.mktemp("mixed")
    for sub in ("trainA", "trainB", "testA", "testB"):
        shutil.copytree(os.path.join(demo_root, sub), root / sub)
    a = sorted((root / "trainA").iterdir())
    Image.open(a[0]).convert("L").save(a[0])
    gray16 = (np.asarray(Image.open(a[1]).convert("L"), np.uint16) * 257 + 3).astype(np.uint16)
    Image.fromarray(gray16).save(a[1])
    b = sorted((root / "trainB").iterdir())
    Image.open(b[0]).convert("L").save(b[0])
    return root


def test_channel_conversion_values(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    gray = load_image(str(tmp_path / "rgb.png"), 1)[0].numpy()
    assert gray.shape == (1, 5, 6)
    assert np.allclose(gray[0], (rgb / 255.0) @ LUMA, atol=1e-6)  # luminance, ITU-R 601
    g16 = np.random.default_rng(1).integers(0, 65536, (5, 6), dtype=np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    three, bits = load_image(str(tmp_path / "g16.png"), 3)
    assert bits == 16 and three.shape == (3, 5, 6)
    assert np.allclose(three.numpy(), np.repeat(g16[None] / 65535.0, 3, axis=0), atol=1e-7)  # full precision


def test_mixed_grayscale_rgb_and_16bit_images_train_and_test(mixed_root, tmp_path, capsys):
    flags = tiny_flags(str(mixed_root), tmp_path, "mixed", "unpaired_revgan", ["--n_blocks", "1",
                                                                             "--max_dataset_size", "4"])
    train_script.main(flags)
    out = capsys.readouterr().out
    assert re.search(r"note: 2 of 4 images in \S*trainA are converted to 3 channel\(s\) \(--input_nc 3: grayscale "
                     r"replicated into 3 channels; 1 are 16-bit", out), out
    assert re.search(r"note: 1 of 4 images in \S*trainB are converted to 3 channel\(s\)", out), out
    assert out.count("are converted to") == 2, out  # each folder said once, though the run reads it more than once
    train_script.main(flags + ["--continue_train", "--n_epochs", "2"])  # another run in this process: said again
    assert capsys.readouterr().out.count("are converted to") == 2
    # asked for 1 channel: every RGB image becomes grayscale by luminance
    flags1 = tiny_flags(str(mixed_root), tmp_path, "gray", "unpaired_revgan", ["--n_blocks", "1", "--input_nc", "1",
                                                                             "--output_nc", "1", "--max_dataset_size",
                                                                             "4"])
    train_script.main(flags1)
    assert re.search(r"note: 2 of 4 images in \S*trainA are converted to 1 channel\(s\) \(--input_nc 1: RGB to "
                     r"grayscale by luminance\)", capsys.readouterr().out)
    test_script.main(["--dataroot", str(mixed_root), "--name", "gray", "--model", "unpaired_revgan",
                      "--checkpoints_dir", str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"),
                      "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32"])
    fake = Image.open(next((tmp_path / "res" / "gray" / "test_latest" / "images" / "fake_B").iterdir()))
    assert fake.mode == "L"


def drop(flags, *names):
    """``flags`` without the given flags and their values (every occurrence)."""
    out, skip = [], False
    for f in flags:
        if skip:
            skip = False
        elif f in names:
            skip = True
        else:
            out.append(f)
    return out


def rates(out):
    return [float(v) for v in re.findall(r"learning rate ([-\d.e+]+)", out)]


def test_schedule_flags_on_resume(demo_root, tmp_path, capsys):
    flags = tiny_flags(demo_root, tmp_path, "sched", "cycle_gan", ["--netG", "resnet_6blocks", "--lr", "0.001",
                                                                 "--n_epochs", "1", "--n_epochs_decay", "1",
                                                                 "--max_dataset_size", "1"])
    train_script.main(flags)
    capsys.readouterr()
    base = drop(flags, "--lr", "--n_epochs", "--n_epochs_decay") + ["--continue_train"]
    ckpt = tmp_path / "ckpt" / "sched"

    # nothing typed: the checkpoint's schedule (not the defaults --n_epochs 100 --n_epochs_decay 100)
    train_script.main(base)
    out = capsys.readouterr().out
    assert "already trained to epoch 2" in out

    # a finished linear run continued with --lr_policy step: the new epochs train at a positive rate
    train_script.main(base + ["--lr_policy", "step", "--n_epochs_decay", "3", "--lr_decay_iters", "2"])
    out = capsys.readouterr().out
    assert "--lr_policy step: the checkpoint had linear; using step from epoch 3" in out
    assert "--n_epochs_decay 3: the checkpoint had 1; using 3 from epoch 3" in out
    assert rates(out) == pytest.approx([0.001 * 0.1 ** (3 // 2), 0.001 * 0.1 ** (4 // 2)], rel=1e-6)
    saved = open(ckpt / "train_opt.txt").read()  # what is in effect
    assert re.search(r"lr_policy: step", saved) and re.search(r"\blr: 0.001\b", saved)
    assert re.search(r"n_epochs: 1\s", saved) and re.search(r"n_epochs_decay: 3\s", saved)

    # a new --lr and --beta1 take effect, said in one line each
    train_script.main(base + ["--lr", "0.0005", "--beta1", "0.9", "--n_epochs_decay", "4"])
    out = capsys.readouterr().out
    assert "--lr 0.0005: the checkpoint had 0.001; using 0.0005 from epoch 5" in out
    assert "--beta1 0.9: the checkpoint had 0.5; using 0.9 from epoch 5" in out
    assert rates(out) == pytest.approx([0.0005 * 0.1 ** (5 // 2)], rel=1e-6)  # the step policy kept
    state = load_checkpoint(str(ckpt / "latest.pth"))
    group = state["optimizers"][0]["param_groups"][0]
    assert group["betas"][0] == 0.9 and state["schedule"]["lr"] == 0.0005


def test_each_test_run_has_its_own_folder(demo_root, tmp_path, capsys):
    train_script.main(tiny_flags(demo_root, tmp_path, "runs", "unpaired_revgan", ["--n_blocks", "1"]))
    common = ["--name", "runs", "--checkpoints_dir", str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"),
              "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32"]
    test_script.main(["--dataroot", demo_root, "--model", "unpaired_revgan"] + common)
    test_script.main(["--dataroot", demo_root, "--model", "test", "--direction", "BtoA"] + common)
    full, one = tmp_path / "res" / "runs" / "test_latest", tmp_path / "res" / "runs" / "test_latest_BtoA_only"
    assert sorted(os.listdir(one / "images")) == ["fake", "real"]
    assert "metrics.json" not in os.listdir(one)  # no target for a one-direction run
    assert set(os.listdir(full / "images")) >= {"real_A", "fake_B", "real_B", "fake_A"}
    n = len(os.listdir(full / "images" / "fake_B"))
    test_script.main(["--dataroot", demo_root, "--model", "unpaired_revgan", "--num_test", "1"] + common)
    assert len(os.listdir(full / "images" / "fake_B")) == 1 < n  # only this run's outputs
    assert len(json.load(open(full / "metrics.json"))["items"]) == 1


def test_reference_metrics_only_for_real_pairs(demo_root, tmp_path, capsys):
    train_script.main(tiny_flags(demo_root, tmp_path, "pairs", "cycle_gan", ["--netG", "resnet_6blocks"]))
    common = ["--name", "pairs", "--model", "cycle_gan", "--checkpoints_dir", str(tmp_path / "ckpt"), "--gpu_ids",
              "-1", "--load_size", "32", "--crop_size", "32"]
    capsys.readouterr()
    # the demo's testA/testB hold the same names: real pairs
    test_script.main(["--dataroot", demo_root, "--results_dir", str(tmp_path / "named")] + common)
    out = capsys.readouterr().out
    assert "paired by file name" in out and "PSNR" in out
    assert os.path.exists(tmp_path / "named" / "pairs" / "test_latest" / "metrics.json")
    # renamed B files: unpaired, so no metrics (a sorted-index pairing would be meaningless)
    root = tmp_path / "unpaired"
    shutil.copytree(os.path.join(demo_root, "testA"), root / "testA")
    shutil.copytree(os.path.join(demo_root, "testB"), root / "testB")
    for k, f in enumerate(sorted((root / "testB").iterdir())):
        f.rename(root / "testB" / f"other_{k}.png")
    test_script.main(["--dataroot", str(root), "--results_dir", str(tmp_path / "unnamed")] + common)
    out = capsys.readouterr().out
    assert "no reference metrics" in out and "PSNR" not in out and "cycle error A -> B -> A: MAE" in out
    mean = json.load(open(tmp_path / "unnamed" / "pairs" / "test_latest" / "metrics.json"))["mean"]
    assert set(mean) == {"cycle_MAE_A", "cycle_MAE_B"}  # what can be measured honestly without pairs


def test_resume_takes_untyped_options_from_the_checkpoint(demo_root, tmp_path, capsys):
    """--continue_train without the data and architecture flags: the checkpoint's (1-channel images, its lambda,
    its dataroot) are used, said in one line, and recorded in train_opt.txt."""
    flags = tiny_flags(demo_root, tmp_path, "gray", "cycle_gan", ["--netG", "resnet_6blocks", "--input_nc", "1",
                                                                "--output_nc", "1", "--lambda_A", "3",
                                                                "--max_dataset_size", "2", "--n_epochs_decay", "0"])
    train_script.main(flags)
    capsys.readouterr()
    train_script.main(["--name", "gray", "--model", "cycle_gan", "--checkpoints_dir", str(tmp_path / "ckpt"),
                       "--gpu_ids", "-1", "--num_threads", "0", "--display_id", "0", "--continue_train",
                       "--n_epochs", "2"])
    out = capsys.readouterr().out
    note = next(line for line in out.splitlines() if line.startswith("note: resuming with the checkpoint's"))
    for part in ("input_nc 1", "netG resnet_6blocks", "lambda_A 3.0", f"dataroot {demo_root}"):
        assert part in note, note
    saved = open(tmp_path / "ckpt" / "gray" / "train_opt.txt").read()
    assert re.search(r"input_nc: 1\s", saved) and re.search(r"lambda_A: 3.0\s", saved)
    assert load_checkpoint(str(tmp_path / "ckpt" / "gray" / "latest.pth"))["counters"]["epoch"] == 3


def test_plateau_run_continued_with_another_policy(demo_root, tmp_path, capsys):
    flags = tiny_flags(demo_root, tmp_path, "plat", "cycle_gan", ["--netG", "resnet_6blocks", "--lr_policy",
                                                                "plateau", "--lr", "0.001", "--max_dataset_size", "1",
                                                                "--n_epochs", "1", "--n_epochs_decay", "0"])
    train_script.main(flags)
    capsys.readouterr()
    train_script.main(drop(flags, "--lr_policy", "--n_epochs_decay") + ["--continue_train", "--lr_policy", "linear",
                                                                        "--n_epochs_decay", "2"])
    out = capsys.readouterr().out
    assert "--lr_policy linear: the checkpoint had plateau; using linear from epoch 2" in out
    assert rates(out) == pytest.approx([0.001 / 3, 0.0], abs=1e-7)  # after epochs 2 and 3 (trained at 2/3, 1/3)


def test_test_reads_images_at_the_scale_the_model_was_trained_at(demo_root, tmp_path, capsys):
    """Without --preprocess/--load_size/--crop_size, test.py reads images as training scaled them: resized to its
    --crop_size, or (--preprocess none or crop) at their own size; not CycleGAN's default 256 x 256."""
    root = tmp_path / "wide"
    for sub in ("trainA", "trainB", "testA", "testB"):
        (root / sub).mkdir(parents=True)
        for f in sorted(os.listdir(os.path.join(demo_root, sub)))[:2]:
            Image.open(os.path.join(demo_root, sub, f)).resize((40, 24)).save(root / sub / f)
    test_flags = ["--dataroot", str(root), "--model", "paired_revgan", "--checkpoints_dir", str(tmp_path / "ckpt"),
                  "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1"]
    for name, preprocess, size in (("none", ["--preprocess", "none"], (40, 24)), ("resized", [], (32, 32)),
                                   ("cropped", ["--preprocess", "crop", "--crop_size", "24"], (40, 24))):
        train_script.main(drop(tiny_flags(str(root), tmp_path, name, "paired_revgan", ["--n_blocks", "1"]),
                               "--n_epochs_decay", "--max_dataset_size") + ["--n_epochs_decay", "0"] + preprocess)
        capsys.readouterr()
        test_script.main(test_flags + ["--name", name])
        out = capsys.readouterr().out
        fake = Image.open(next((tmp_path / "res" / name / "test_latest" / "images" / "fake_B").iterdir()))
        assert fake.size == size, (name, fake.size)
        how = "every image at its own size" if size == (40, 24) else "images resized to 32x32"
        assert f"testing {how} (give --preprocess, --load_size or --crop_size to choose)" in out, out
    # validation reads held-out images as test.py does: whole, at the training's scale (not random crops of them)
    from evaluation.validation import Validation
    from models import create_model
    from options.train_options import TrainOptions
    opt = TrainOptions().parse(drop(tiny_flags(str(root), tmp_path, "val", "paired_revgan", ["--n_blocks", "1"]),
                                    "--load_size", "--crop_size") +
                               ["--preprocess", "scale_width_and_crop", "--load_size", "40", "--crop_size", "16",
                                "--val_freq", "1", "--val_fraction", "0.5"])
    held_out = next(iter(Validation(opt, create_model(opt)).dataset))
    assert tuple(held_out["A"].shape[2:]) == (24, 40)  # scaled to 40 wide (it was 40 already), not cropped to 16
    # typed sizes are the user's
    test_script.main(test_flags + ["--name", "none", "--load_size", "48", "--crop_size", "48"])
    assert "note: the model was trained with --preprocess" not in capsys.readouterr().out
    fake = Image.open(next((tmp_path / "res" / "none" / "test_latest" / "images" / "fake_B").iterdir()))
    assert fake.size == (48, 48)


def test_test_in_train_mode_repeats_its_outputs_and_says_dropout_is_on(demo_root, tmp_path, capsys):
    train_script.main(tiny_flags(demo_root, tmp_path, "drop", "paired_revgan", ["--n_blocks", "1",
                                                                              "--n_epochs_decay", "0"]))
    flags = ["--dataroot", demo_root, "--name", "drop", "--model", "paired_revgan", "--checkpoints_dir",
             str(tmp_path / "ckpt"), "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32"]
    outputs = []
    for k, extra in enumerate(([], [], ["--seed", "1"], ["--eval"])):
        capsys.readouterr()
        test_script.main(flags + ["--results_dir", str(tmp_path / f"res{k}")] + extra)
        said = "note: the generator has dropout, on in test.py's train mode" in capsys.readouterr().out
        assert said == (extra != ["--eval"])
        folder = tmp_path / f"res{k}" / "drop" / "test_latest" / "images" / "fake_B"
        outputs.append([np.asarray(Image.open(f)) for f in sorted(folder.iterdir())])
    same = [all(np.array_equal(a, b) for a, b in zip(outputs[0], other)) for other in outputs[1:]]
    assert same == [True, False, False]  # the same command twice: the same images; another seed, eval: others


def test_paired_folders_pair_by_name_never_by_order(demo_root, tmp_path, capsys):
    """pix2pix / paired_revgan on trainA + trainB: files pair by name (x.png with x.jpg); unrelated names (what
    CycleGAN data holds) are refused in one line, not zipped by order into pairs the metrics would then trust."""
    root = tmp_path / "data"
    for sub in ("trainA", "trainB"):
        shutil.copytree(os.path.join(demo_root, sub), root / sub)
    for f in sorted((root / "trainB").iterdir()):  # the same names, another format
        Image.open(f).convert("RGB").save(f.with_suffix(".jpg"))
        f.unlink()
    flags = tiny_flags(str(root), tmp_path, "pairs", "paired_revgan", ["--n_blocks", "1", "--n_epochs_decay", "0"])
    train_script.main(flags)
    for k, f in enumerate(sorted((root / "trainB").iterdir())):  # unrelated names
        f.rename(root / "trainB" / f"b{k}.jpg")
    with pytest.raises(SystemExit) as e:
        train_script.main(flags + ["--name", "unrelated"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "have no partner of their name" in err and "use --model cycle_gan" in err, err


def test_unequal_unpaired_test_sets_give_each_file_once_under_its_own_name(demo_root, tmp_path, capsys):
    """testA with 2 images, testB with 6 (CycleGAN's horse2zebra has 120 and 140): the dataset is as long as the
    longer folder and repeats the shorter one's files; their outputs are written once (not as a0_2, a0_3, ... that
    would repeat them in the folders FID reads), and B's outputs are named after B's own files."""
    root = tmp_path / "data"
    for side in "AB":
        shutil.copytree(os.path.join(demo_root, "train" + side), root / ("train" + side))
    (root / "testA").mkdir()
    (root / "testB").mkdir()
    train_b = sorted((root / "trainB").iterdir())
    for k, f in enumerate(sorted((root / "trainA").iterdir())[:2]):
        shutil.copy(f, root / "testA" / f"a{k}.png")
    for k, f in enumerate(train_b[:6]):
        shutil.copy(f, root / "testB" / f"b{k}.png")
    train_script.main(tiny_flags(str(root), tmp_path, "uneq", "unpaired_revgan", ["--n_blocks", "1",
                                                                                "--n_epochs_decay", "0"]))
    test_script.main(["--dataroot", str(root), "--name", "uneq", "--model", "unpaired_revgan", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1"])
    images = tmp_path / "res" / "uneq" / "test_latest" / "images"
    listing = {label: sorted(os.listdir(images / label)) for label in ("real_A", "fake_B", "rec_A", "real_B",
                                                                      "fake_A", "rec_B")}
    a_files, b_files = ["a0.png", "a1.png"], [f"b{k}.png" for k in range(6)]
    assert listing == {"real_A": a_files, "fake_B": a_files, "rec_A": a_files, "real_B": b_files, "fake_A": b_files,
                       "rec_B": b_files}, listing
    assert "comes again" not in capsys.readouterr().out
