"""End-to-end CPU runs of train.py and test.py for every model."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import test as test_script
import train as train_script
from tests.conftest import ROOT, tiny_flags
from util.checkpoint import load_checkpoint

MODELS = {"pix2pix": ["--netG", "unet_128", "--load_size", "128", "--crop_size", "128", "--max_dataset_size", "2"],
          "cycle_gan": ["--netG", "resnet_6blocks"],
          "paired_revgan": ["--n_blocks", "2"],
          "unpaired_revgan": ["--n_blocks", "2", "--coupling", "affine"]}


@pytest.mark.parametrize("model", list(MODELS))
def test_each_model_trains_saves_resumes_and_tests(demo_root, tmp_path, model):
    flags = tiny_flags(demo_root, tmp_path, model, model, MODELS[model])
    train_script.main(flags)
    ckpt = tmp_path / "ckpt" / model
    assert (ckpt / "latest.pth").exists() and (ckpt / "2.pth").exists()
    state = load_checkpoint(str(ckpt / "latest.pth"))
    assert state["counters"]["epoch"] == 3 and state["architecture"]["model"] == model
    # resume for one more epoch: counters continue from the checkpoint
    train_script.main(flags + ["--continue_train", "--n_epochs", "2"])
    assert load_checkpoint(str(ckpt / "latest.pth"))["counters"]["epoch"] == 4
    results = tmp_path / "results"
    test_script.main(["--dataroot", demo_root, "--name", model, "--model", model, "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(results), "--gpu_ids", "-1", "--num_test", "2"]
                     + (["--load_size", "128", "--crop_size", "128"] if model == "pix2pix" else
                        ["--load_size", "32", "--crop_size", "32"]))
    out = results / model / "test_latest"
    assert (out / "index.html").exists()
    fake = "fake_B"
    assert len(os.listdir(out / "images" / fake)) == 2
    if model in ("pix2pix", "paired_revgan"):
        metrics = json.load(open(out / "metrics.json"))
        assert {"PSNR_fake_B", "SSIM_fake_B", "MAE_fake_B"} <= set(metrics["mean"])
        assert len(metrics["items"]) == 2


def test_default_generator_with_n_downsampling_at_64(demo_root, tmp_path):
    flags = tiny_flags(demo_root, tmp_path, "cg64", "cycle_gan", ["--load_size", "64", "--crop_size", "64",
                                                                  "--n_downsampling", "3", "--max_dataset_size", "1",
                                                                  "--n_epochs_decay", "0"])
    train_script.main(flags)
    assert load_checkpoint(str(tmp_path / "ckpt" / "cg64" / "latest.pth"))["architecture"]["netG"] == \
        "resnet_9blocks"


def test_revgan_inverse_direction_with_test_model(demo_root, tmp_path):
    """--model test runs one direction of the trained unpaired RevGAN: A->B gives the full model's fake_B, B->A (by
    --direction BtoA or CycleGAN's --model_suffix _B) its fake_A, image for image."""
    train_script.main(tiny_flags(demo_root, tmp_path, "rev", "unpaired_revgan", ["--n_blocks", "2"]))
    common = ["--name", "rev", "--checkpoints_dir", str(tmp_path / "ckpt"), "--gpu_ids", "-1", "--load_size", "32",
              "--crop_size", "32"]
    test_script.main(["--dataroot", demo_root, "--model", "unpaired_revgan", "--results_dir", str(tmp_path / "full")]
                     + common)
    full = tmp_path / "full" / "rev" / "test_latest" / "images"
    runs = [("testA", ["--direction", "AtoB"], "fake_B", "real_A", "AtoB"),
            ("testB", ["--direction", "BtoA"], "fake_A", "real_B", "BtoA"),
            ("testB", ["--model_suffix", "_B"], "fake_A", "real_B", "BtoA")]
    for i, (folder, flags, label, source, direction) in enumerate(runs):
        out = tmp_path / f"one{i}"
        test_script.main(["--dataroot", os.path.join(demo_root, folder), "--model", "test", "--results_dir",
                          str(out)] + flags + common)
        images = out / "rev" / f"test_latest_{direction}_only" / "images"
        fakes = sorted(os.listdir(images / "fake"))
        assert fakes
        for name in fakes:
            one = np.asarray(Image.open(images / "fake" / name))
            # the full model names both rows after the A image: find the row whose input is this image
            real = np.asarray(Image.open(images / "real" / name))
            rows = [n for n in os.listdir(full / source) if np.array_equal(np.asarray(Image.open(full / source / n)),
                                                                           real)]
            assert rows, name
            assert np.array_equal(one, np.asarray(Image.open(full / label / rows[0]))), (flags, name)


def log_losses(path):
    """total_iters -> the loss part of each loss_log line."""
    out = {}
    for line in open(path):
        m = re.search(r"total_iters: (\d+),.*\) (.*)$", line)
        if m:
            out.setdefault(int(m.group(1)), []).append(m.group(2))
    return out


def test_sigkill_mid_epoch_then_resume_logs_identical_losses(demo_root, tmp_path):
    common = ["--model", "unpaired_revgan", "--n_blocks", "2", "--max_dataset_size", "12", "--n_epochs", "2",
              "--n_epochs_decay", "0", "--save_latest_freq", "3", "--pool_size", "4"]
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    ref = tiny_flags(demo_root, tmp_path, "ref", "unpaired_revgan", common)
    subprocess.run([sys.executable, os.path.join(ROOT, "train.py")] + ref, env=env, check=True, capture_output=True)
    killed = tiny_flags(demo_root, tmp_path, "killed", "unpaired_revgan", common)
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py")] + killed, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "ckpt" / "killed" / "loss_log.txt"
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.exists() and max(log_losses(log) or [0]) >= 5:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(str(tmp_path / "ckpt" / "killed" / "latest.pth"))["counters"]
    assert saved["epoch"] == 1 and 0 < saved["epoch_iter"] < 8, "the kill must land mid-epoch after a save"
    subprocess.run([sys.executable, os.path.join(ROOT, "train.py")] + killed + ["--continue_train"], env=env,
                   check=True, capture_output=True)
    ref_losses, resumed = log_losses(tmp_path / "ckpt" / "ref" / "loss_log.txt"), log_losses(log)
    after = [t for t in ref_losses if t > saved["total_iters"]]
    assert after and max(after) == max(ref_losses) == 16  # 2 epochs of the 8 demo images
    for t in after:
        assert resumed[t][-1] == ref_losses[t][0], f"iteration {t} differs after resume"


def test_paired_revgan_trains_one_way_by_default(demo_root, tmp_path, capsys):
    """The paired RevGAN trains A->B only by default, as pix2pix: no D_B, only the A->B losses logged; the checkpoint
    says so, --continue_train keeps it (--two_way there is another architecture), test.py writes fake_B alone, and
    B->A is refused in one line that names --two_way."""
    from tests.conftest import logged_rows
    from tests.test_user_errors import one_line_failure
    flags = tiny_flags(demo_root, tmp_path, "one", "paired_revgan", ["--n_blocks", "2"])
    train_script.main(flags)
    ckpt = tmp_path / "ckpt" / "one"
    state = load_checkpoint(str(ckpt / "latest.pth"))
    assert state["architecture"]["one_way"] is True and set(state["networks"]) == {"G", "D_A"}
    assert state["architecture"]["stem"] == "unshuffle"  # the paired RevGAN's default stem
    rows = logged_rows(ckpt / "loss_log.txt")
    assert rows and all(set(r) - {"recon_err"} == {"G_A", "L1_A", "D_A"} for r in rows)
    capsys.readouterr()
    one_line_failure(capsys, train_script.main, flags + ["--continue_train", "--two_way"], "another architecture")
    train_script.main(flags + ["--continue_train", "--one_way", "--n_epochs", "2"])  # the old flag: the default
    assert set(load_checkpoint(str(ckpt / "latest.pth"))["networks"]) == {"G", "D_A"}
    common = ["--name", "one", "--checkpoints_dir", str(tmp_path / "ckpt"), "--gpu_ids", "-1", "--load_size", "32",
              "--crop_size", "32", "--num_test", "2"]
    test_script.main(["--dataroot", demo_root, "--model", "paired_revgan", "--results_dir", str(tmp_path / "r")]
                     + common)
    images = tmp_path / "r" / "one" / "test_latest" / "images"
    assert (images / "fake_B").is_dir() and not (images / "fake_A").exists()
    one_line_failure(capsys, test_script.main, ["--dataroot", os.path.join(demo_root, "testB"), "--model", "test",
                                                "--direction", "BtoA", "--results_dir", str(tmp_path / "r2")] + common,
                     "--two_way trains both directions")


def test_two_way_checkpoints_and_those_from_before_the_default_keep_both_directions(demo_root, tmp_path, capsys):
    """--two_way trains both directions with D_B; a checkpoint written before the one-way default and the stem
    (its architecture without the entries: it trained both ways, with the conv7 stem) resumes both ways with conv7
    without the flags, and test.py translates B->A."""
    from util.checkpoint import save_checkpoint
    flags = tiny_flags(demo_root, tmp_path, "two", "paired_revgan", ["--n_blocks", "2", "--two_way"])
    train_script.main(flags + ["--stem", "conv7"])
    path = str(tmp_path / "ckpt" / "two" / "latest.pth")
    state = load_checkpoint(path)
    assert state["architecture"]["one_way"] is False and set(state["networks"]) == {"G", "D_A", "D_B"}
    del state["architecture"]["one_way"], state["architecture"]["stem"]  # as written before the entries existed
    save_checkpoint(state, path)
    capsys.readouterr()
    train_script.main([f for f in flags if f != "--two_way"] + ["--continue_train", "--n_epochs", "2"])
    out = capsys.readouterr().out
    assert "one_way False" in out and "stem conv7" in out
    assert set(load_checkpoint(path)["networks"]) == {"G", "D_A", "D_B"}
    test_script.main(["--dataroot", os.path.join(demo_root, "testB"), "--model", "test", "--direction", "BtoA",
                      "--name", "two", "--checkpoints_dir", str(tmp_path / "ckpt"), "--gpu_ids", "-1",
                      "--load_size", "32", "--crop_size", "32", "--num_test", "2",
                      "--results_dir", str(tmp_path / "r")])
    assert list((tmp_path / "r" / "two" / "test_latest_BtoA_only" / "images" / "fake").iterdir())
