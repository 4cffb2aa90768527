"""Failures a user can cause, run as a user would: each ends in one line with exit status 2, no traceback, and the
checkpoints written before stay byte-identical. I/O (full disk by fault injection, and a real small tmpfs where
mounting is allowed; unwritable folders; empty, truncated and foreign checkpoints), sizes that cannot work, mistyped
flags and --help, and the small confusions of issue 15."""
import errno
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
import util.checkpoint
from tests.conftest import ROOT, folder_hashes, tiny_flags


def one_line_failure(capsys, main, argv, match):
    """Runs ``main(argv)``: it must exit with status 2 after printing one error line containing ``match``."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and match in errors[0], err
    assert "Traceback" not in "\n".join(err)
    return errors[0]


@pytest.fixture()
def trained(demo_root, tmp_path):
    flags = tiny_flags(demo_root, tmp_path, "run", "paired_revgan", ["--n_blocks", "1", "--n_epochs_decay", "0",
                                                                    "--max_dataset_size", "1"])
    train_script.main(flags)
    return flags, tmp_path / "ckpt" / "run"


def test_disk_full_during_a_save_keeps_the_last_checkpoint(trained, monkeypatch, capsys):
    flags, folder = trained
    hashes = folder_hashes(folder)
    log_before = (folder / "loss_log.txt").read_text()

    def full_disk(f, data):  # the device fills up after the first half of the file
        f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(util.checkpoint, "_write_all", full_disk)
    line = one_line_failure(capsys, train_script.main, flags + ["--continue_train", "--n_epochs", "2"],
                            "no space left")
    assert re.search(r"needs [\d.]+ MB, [\d.]+ MB are free; the previous latest.pth is kept", line), line
    assert folder_hashes(folder) == hashes  # byte-identical
    assert not [f for f in os.listdir(folder) if f.endswith(".tmp")]  # no half-written temporary left
    assert (folder / "loss_log.txt").read_text().startswith(log_before)  # the log of the failed run is kept too


def test_real_small_tmpfs(demo_root, tmp_path, capsys):
    """The same on a real 700 kB file system (where this machine allows mounting one): the first checkpoint fits,
    the second does not."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not allowed here (the fault-injection test covers a full disk)")
    try:
        flags = tiny_flags(demo_root, tmp_path, "run", "paired_revgan", ["--n_blocks", "1", "--n_epochs_decay", "0",
                                                                        "--max_dataset_size", "1", "--no_html",
                                                                        "--two_way"])  # the checkpoint size 700k was chosen for
        flags[flags.index("--checkpoints_dir") + 1] = str(mount)
        one_line_failure(capsys, train_script.main, flags, "no space left")
        left = os.listdir(mount / "run")
        assert "latest.pth" in left and not [f for f in left if f.endswith(".tmp")], left
        util.checkpoint.load_checkpoint(str(mount / "run" / "latest.pth"))  # the kept checkpoint is whole
    finally:
        subprocess.run(["umount", str(mount)])


def test_unwritable_folders(trained, demo_root, tmp_path, capsys):
    flags, folder = trained
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    argv = list(flags)
    argv[argv.index("--checkpoints_dir") + 1] = str(a_file / "sub")
    one_line_failure(capsys, train_script.main, argv, "cannot write in")
    test_flags = ["--dataroot", demo_root, "--name", "run", "--model", "paired_revgan", "--checkpoints_dir",
                  str(tmp_path / "ckpt"), "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32"]
    one_line_failure(capsys, test_script.main, test_flags + ["--results_dir", str(a_file)], "choose another "
                     "--results_dir")


@pytest.mark.parametrize("damage,match", [
    ("empty", "is empty (0 bytes"), ("truncated", "not a readable PyTorch checkpoint"),
    ("random", "not a readable PyTorch checkpoint"), ("pickle", "holds Python objects other than tensors"),
    ("foreign", "is not a RevGAN checkpoint")])
def test_damaged_checkpoints(trained, demo_root, tmp_path, capsys, damage, match):
    flags, folder = trained
    latest = folder / "latest.pth"
    data = latest.read_bytes()
    if damage == "empty":
        latest.write_bytes(b"")
    elif damage == "truncated":
        latest.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        latest.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif damage == "pickle":  # a file that would run code if loaded without weights_only
        torch.save({"architecture": {}, "format": 1, "evil": Image.new("L", (1, 1))}, latest)
    else:
        torch.save({"weights": torch.zeros(3)}, latest)
    hashes = folder_hashes(folder)
    for main, argv in ((train_script.main, flags + ["--continue_train"]),
                       (test_script.main, ["--dataroot", demo_root, "--name", "run", "--model", "paired_revgan",
                                           "--checkpoints_dir", str(tmp_path / "ckpt"), "--results_dir",
                                           str(tmp_path / "res"), "--gpu_ids", "-1"])):
        line = one_line_failure(capsys, main, argv, match)
        assert "weights_only=False" not in line and str(latest) in line
    assert folder_hashes(folder) == hashes


def test_stale_temporaries_of_a_killed_save_are_removed(trained, capsys):
    flags, folder = trained
    stale = folder / ".latest.pth.k3j4h5.tmp"
    stale.write_bytes(b"\0" * 300_000)
    train_script.main(flags + ["--continue_train", "--n_epochs", "2"])
    out = capsys.readouterr().out
    assert not stale.exists() and "removed 1 temporary file(s) of an interrupted save" in out


def test_a_fresh_run_killed_before_its_first_save_puts_the_earlier_run_back(trained):
    """kill (SIGTERM), as a scheduler or ``timeout`` stops a job, after the earlier run's files were set aside and
    before the new run's first save: one line, status 143, and the earlier run's files back, byte-identical."""
    import signal
    flags, folder = trained
    before = folder_hashes(folder, "")
    slow = flags + ["--load_size", "128", "--crop_size", "128", "--max_dataset_size", "8", "--n_epochs", "3",
                    "--save_latest_freq", "1000000"]  # its first save: after its first epoch
    proc = subprocess.Popen([sys.executable, "train.py", *slow], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:
        if "files moved to" in line:
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, (out, err)
    assert "terminated (SIGTERM); checkpoints already written are kept" in err and "Traceback" not in err, err
    assert "the earlier run's files are back" in out
    assert folder_hashes(folder, "") == before and not (folder / "earlier").exists()


def test_sizes_that_cannot_work(demo_root, tmp_path, capsys):
    tiny = tmp_path / "tiny"
    for sub in ("trainA", "trainB"):
        (tiny / sub).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((4, 6, 3), 40 * k, np.uint8)).save(tiny / sub / f"{k}.png")  # 6 wide, 4 high
    flags = tiny_flags(str(tiny), tmp_path, "tiny", "cycle_gan", ["--preprocess", "none", "--netG",
                                                                  "resnet_6blocks"])
    line = one_line_failure(capsys, train_script.main, flags,
                            "images of 6x4 (width x height) are too small for --netG resnet_6blocks")
    assert "it needs at least 8 pixels per side" in line
    for k in range(2):  # 14x12: enough for the generator, not for the default discriminator
        for sub in ("trainA", "trainB"):
            Image.fromarray(np.full((12, 14, 3), 40 * k, np.uint8)).save(tiny / sub / f"{k}.png")
    line = one_line_failure(capsys, train_script.main, flags,
                            "images of 14x12 (width x height) are too small for --netD basic")
    assert "it needs at least 24 pixels per side" in line  # 24 -> 12 -> 6 -> 3 -> 2 -> 1: the smallest that works
    one_line_failure(capsys, train_script.main, tiny_flags(demo_root, tmp_path, "huge", "cycle_gan",
                                                           ["--load_size", "100000"]), "--load_size 100000: resizing")


def test_a_failed_start_leaves_no_empty_folder(tmp_path, capsys):
    """A mistake found before anything is written (here a --dataroot that does not exist) removes the folders the
    run made for itself (checkpoints/NAME, and checkpoints/ where it was new); folders that were there stay."""
    flags = tiny_flags(str(tmp_path / "missing"), tmp_path, "run", "pix2pix")
    one_line_failure(capsys, train_script.main, flags, "does not exist")
    assert not (tmp_path / "ckpt").exists()
    (tmp_path / "ckpt" / "other").mkdir(parents=True)
    one_line_failure(capsys, train_script.main, flags, "does not exist")
    assert os.listdir(tmp_path / "ckpt") == ["other"]
    (tmp_path / "ckpt" / "run").mkdir()
    one_line_failure(capsys, train_script.main, flags, "does not exist")
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["other", "run"]


def test_a_run_stopped_by_an_error_says_so_on_its_page(demo_root, tmp_path, capsys):
    """A fresh run that fails in its first batch (a crop larger than the images) leaves a training page that says it
    stopped and does not reload itself for a quarter of an hour, nor link to files the run never wrote."""
    flags = tiny_flags(demo_root, tmp_path, "stops", "paired_revgan", ["--n_blocks", "1", "--crop_size", "48"])
    one_line_failure(capsys, train_script.main, flags, "--crop_size 48 is larger than image")
    web = tmp_path / "ckpt" / "stops" / "web"
    info = json.loads((web / "page.json").read_text())
    assert info["finished"] and info["stopped"]
    html = (web / "index.html").read_text()
    assert "data-reload" not in html and "stopped at epoch 0.00: an error or an interruption ended the run" in html
    for href in re.findall(r'href="(\.\./[^"]+)"', html):
        assert (web / href).is_file(), href


def test_verbose_prints_the_networks(trained, demo_root, tmp_path, capsys):
    """--verbose, as in CycleGAN: every network's architecture and parameter count (it printed nothing more)."""
    flags, _ = trained
    train_script.main(flags + ["--continue_train", "--n_epochs", "1", "--verbose"])
    out = capsys.readouterr().out
    assert "[network G]\nRevGANGenerator(" in out and re.search(r"\[network D_A\] [\d.]+ M parameters", out), out


def test_a_reader_that_closes_the_output_ends_the_run_quietly(demo_root, tmp_path):
    """`python train.py ... | head -2`: the closed pipe ends the run as a killed pipeline writer (status 141), without
    an error line about a file that cannot be written."""
    flags = tiny_flags(demo_root, tmp_path, "pipe", "paired_revgan", ["--n_blocks", "1", "--n_epochs", "3"])
    run = subprocess.Popen([sys.executable, "train.py"] + flags, cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    run.stdout.readline()
    run.stdout.close()  # as head does after its lines
    err = run.stderr.read().decode()
    assert run.wait(timeout=300) == 141 and "error" not in err and "Traceback" not in err, err


def test_a_missing_data_folder_says_what_dataroot_holds(tmp_path):
    from util.folders import missing_folder
    (tmp_path / "vols").mkdir()
    (tmp_path / "vols" / "a.nii.gz").write_bytes(b"")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"")
    assert "holds volumes, but this is a 2D model" in missing_folder(str(tmp_path / "vols" / "testA"), "input", False)
    assert "holds images, but this is a 3D model" in missing_folder(str(tmp_path / "imgs" / "testA"), "test A", True)
    line = missing_folder(str(tmp_path / "imgs" / "trainB"), "train B", False)
    assert "holds the inputs themselves: give the folder that holds trainB/ and trainA/" in line
    assert missing_folder(str(tmp_path / "none" / "testA"), "input", False) == \
        f"input folder {tmp_path / 'none' / 'testA'} does not exist (check --dataroot and --phase)"


def test_out_of_memory_is_one_line(trained, monkeypatch, capsys):
    flags, folder = trained
    hashes = folder_hashes(folder)
    from models.paired_revgan_model import PairedRevGANModel

    def oom(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    monkeypatch.setattr(PairedRevGANModel, "optimize_parameters", oom)
    one_line_failure(capsys, train_script.main, flags + ["--continue_train", "--n_epochs", "2"], "out of memory")
    assert folder_hashes(folder) == hashes


def test_mistyped_flags_say_what_to_type(demo_root, tmp_path, capsys):
    base = tiny_flags(demo_root, tmp_path, "typo", "unpaired_revgan")
    line = one_line_failure(capsys, train_script.main, base + ["--nblocks", "2"], "unrecognized arguments: --nblocks")
    assert "did you mean --n_blocks?" in line and "python train.py --model unpaired_revgan --help" in line
    cycle = tiny_flags(demo_root, tmp_path, "typo", "cycle_gan")
    line = one_line_failure(capsys, train_script.main, cycle + ["--coupling", "affine"], "--coupling")
    assert "--coupling belongs to --model paired_revgan" in line
    line = one_line_failure(capsys, train_script.main, base + ["--lr", "-1"], "--lr: -1 must be > 0")
    assert "usage" not in line
    # train.py's flags copied into a test command: said to be train.py's, not a near-miss of another flag
    for flag in ("--display_id", "--lambda_L1"):
        line = one_line_failure(capsys, test_script.main, ["--name", "typo", flag, "0"], "unrecognized arguments")
        assert f"{flag} is a train.py flag: test.py does not take it (drop it)" in line and "did you mean" not in line


def help_text(*argv):
    out = subprocess.run([sys.executable, *argv, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_help_shows_the_flags_of_the_model_and_dataset_mode():
    text = help_text("train.py", "--model", "unpaired_revgan")
    section = text.split("--model unpaired_revgan:")[1]
    for flag in ("--n_blocks", "--coupling", "--lambda_A", "--use_naive", "--iunet_architecture"):
        assert flag in section, flag
    text3d = help_text("train.py", "--model", "unpaired_revgan3d")
    assert "--patch_size" in text3d.split("--dataset_mode volume:")[1] and "--intensity_A" in text3d
    assert "--model_suffix" in help_text("test.py", "--model", "test")
    # every flag says what it does
    from options.train_options import TrainOptions
    for model in ("unpaired_revgan3d", "paired_revgan", "pix2pix", "cycle_gan"):
        options = TrainOptions()
        options.parse(["--model", model, "--gpu_ids", "-1"])
        silent = [a.option_strings for a in options.parser._actions if not a.help]
        assert not silent, (model, silent)


def test_small_confusions(trained, demo_root, tmp_path, capsys):
    flags, folder = trained
    capsys.readouterr()
    test_flags = ["--dataroot", demo_root, "--name", "run", "--checkpoints_dir", str(tmp_path / "ckpt"),
                  "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32"]
    test_script.main(test_flags + ["--model", "paired_revgan", "--ngf", "8"])
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note: --")]
    assert notes == ["note: --ngf 8 ignored: the checkpoint was trained with 4"], notes  # only the typed flag
    assert "(trained 1 epoch; 1 images in all)" in out  # what was trained, not the next epoch's number
    one_line_failure(capsys, test_script.main, test_flags + ["--model", "test", "--model_suffix", "_B",
                                                             "--direction", "AtoB"], "--model_suffix _B runs BtoA")
    # a one-way model asked for BtoA: the message does not claim it maps A to B (trained BtoA, it maps B to A)
    line = one_line_failure(capsys, test_script.main, test_flags + ["--model", "test", "--direction", "BtoA"],
                            "translates one way only, the translation it was trained")
    assert "translates A to B only" not in line and line.endswith("drop --direction BtoA")
    line = one_line_failure(capsys, test_script.main, test_flags + ["--model", "test", "--model_suffix", "_B"],
                            "translates one way only")
    assert line.endswith("drop --model_suffix _B")  # what the user typed, not a --direction never typed
    # more loader processes than cores: capped, said once when typed
    train_script.main(flags + ["--continue_train", "--n_epochs", "2", "--num_threads", "64"])
    captured = capsys.readouterr()
    cores = len(os.sched_getaffinity(0))
    if cores < 64:
        assert captured.err.count(f"--num_threads 64: this machine has {cores} cores") == 1
    # stdout is not a terminal here: progress comes as plain lines, no carriage returns or escape codes
    assert "\r" not in captured.out and "\x1b" not in captured.out
    # training anew under the name of a trained run: that run's files are set aside before training, said
    before = {os.path.relpath(p, folder): h for p, h in folder_hashes(folder, "").items()}
    train_script.main(flags + ["--n_epochs", "2", "--n_epochs_decay", "0", "--save_epoch_freq", "2"])
    out = capsys.readouterr().out
    note = [line for line in out.splitlines() if "held an earlier run" in line]
    assert len(note) == 1 and "(latest.pth, 1.pth, 2.pth: " in note[0] and "no --continue_train" in note[0], note
    (aside,) = (folder / "earlier").iterdir()
    assert f"files moved to {aside} (back again if this run stops before its first save; to test or resume that run " \
           f"give --checkpoints_dir {aside.parent} --name {aside.name};" in note[0]
    assert {os.path.relpath(p, aside): h for p, h in folder_hashes(aside, "").items()} == before  # all, as they were
    assert sorted(f.name for f in folder.glob("*.pth")) == ["2.pth", "latest.pth"]  # no 1.pth of the earlier run
    assert (folder / "loss_log.txt").read_text().count("Training Loss") == 1  # the new run's log alone
    with pytest.raises(SystemExit):
        test_script.main(test_flags + ["--model", "paired_revgan", "--epoch", "1"])
    err = capsys.readouterr().err
    assert "(--epoch can be latest, 2; earlier runs under this name, set aside, hold 1.pth" in err, err
    test_script.main(test_flags + ["--model", "paired_revgan", "--checkpoints_dir", str(aside.parent), "--name",
                                   aside.name, "--epoch", "1"])  # the earlier run, where the note says
    # a first epoch past the schedule's end (CycleGAN's --epoch_count: the schedule ends at n_epochs + decay)
    one_line_failure(capsys, train_script.main, flags + ["--name", "late", "--n_epochs", "2", "--n_epochs_decay", "1",
                                                         "--epoch_count", "4"],
                     "--epoch_count 4: the schedule ends at epoch 3 (--n_epochs 2 + --n_epochs_decay 1)")
    # the NaN hint does not suggest the default --gan_mode lsgan, and names an --init_gain far above the default
    line = one_line_failure(capsys, train_script.main, flags + ["--init_gain", "1e30", "--name", "nan"], "became")
    assert "--gan_mode lsgan" not in line and "lower --lr" in line
    assert "try an --init_gain near the default 0.02 (this run's: 1e+30)" in line

