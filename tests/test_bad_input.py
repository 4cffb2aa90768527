"""Every user mistake: a one-line error naming the file or flag, exit status 2, and saved checkpoints unchanged."""
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import train as train_script
from tests.conftest import folder_hashes, tiny_flags


@pytest.fixture()
def trained(demo_root, tmp_path):
    """A run with a checkpoint, whose files (every one: checkpoints, options, logs, page) must stay byte-identical
    and in place through every failure, also those of fresh runs under its name that fail after they are set up
    (its files set aside, then put back)."""
    flags = tiny_flags(demo_root, tmp_path, "keep", "paired_revgan", ["--n_blocks", "2", "--n_epochs_decay", "0",
                                                                     "--max_dataset_size", "1"])
    train_script.main(flags)
    return flags, folder_hashes(tmp_path / "ckpt", "")


def fails(capsys, argv, match):
    with pytest.raises(SystemExit) as e:
        train_script.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and match in err[-1], err
    assert "Traceback" not in "\n".join(err)
    return err[-1]


def copy_root(demo_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    return root


def test_bad_inputs_leave_checkpoints_intact(trained, demo_root, tmp_path, capsys):
    flags, hashes = trained
    run = dict(zip(flags[::2], flags[1::2]))

    def argv(**overrides):
        d = dict(run, **{"--" + k: v for k, v in overrides.items()})
        return [x for kv in d.items() for x in kv]

    fails(capsys, argv(dataroot=str(tmp_path / "missing")), "does not exist")
    empty = tmp_path / "empty"
    (empty / "trainA").mkdir(parents=True)
    (empty / "trainB").mkdir()
    fails(capsys, argv(dataroot=str(empty), dataset_mode="unaligned"), "has no images")

    root = copy_root(demo_root, tmp_path)
    Image.new("RGB", (41, 32)).save(root / "train" / "aaa_odd_width.png")
    fails(capsys, argv(dataroot=str(root)), "width must be even")

    root2 = copy_root(demo_root, tmp_path / "r2")
    shutil.rmtree(root2 / "train")
    os.remove(sorted((root2 / "trainB").iterdir())[0])
    fails(capsys, argv(dataroot=str(root2)), "1 have no partner of their name (astronaut_0)")

    root3 = copy_root(demo_root, tmp_path / "r3")
    good = sorted((root3 / "train").iterdir())[0]
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 3])
    fails(capsys, argv(dataroot=str(root3)), "corrupt")
    # the same from a DataLoader worker process (the default --num_threads 4): still one line, no worker traceback
    fails(capsys, argv(dataroot=str(root3), num_threads="2"), "corrupt")

    root4 = copy_root(demo_root, tmp_path / "r4")
    first = sorted((root4 / "trainA").iterdir())[0]
    Image.open(first).resize((40, 36)).save(first)
    line = fails(capsys, argv(dataroot=str(root4), dataset_mode="unaligned", preprocess="none", batch_size="2",
                              max_dataset_size="4") + ["--serial_batches"],
                 "items of different sizes cannot share a batch")
    assert "40x36" in line and "(width x height)" in line  # the order the other size messages use

    root5 = copy_root(demo_root, tmp_path / "r5")
    float_tiff = sorted((root5 / "train").iterdir())[0]
    Image.fromarray(np.zeros((32, 64), np.float32)).save(float_tiff.with_suffix(".tif"))  # mode F: no conversion
    os.remove(float_tiff)
    fails(capsys, argv(dataroot=str(root5)), "unsupported mode F")
    fails(capsys, argv(crop_size="48", load_size="32", preprocess="crop"), "--crop_size 48 is larger")
    fails(capsys, argv(model="nonexistent"), "invalid choice: 'nonexistent'")
    for flag, value, message in [("lr", "-1", "--lr: -1 must be > 0"), ("lr", "nan", "'nan' is not a finite"),
                                 ("batch_size", "0", "--batch_size: 0 must be >= 1"),
                                 ("n_blocks", "-2", "--n_blocks: -2 must be >= 0"),
                                 ("crop_size", "x", "--crop_size: 'x' is not an integer"),
                                 ("beta1", "1", "--beta1: 1 must be < 1"),
                                 ("lambda_L1", "-5", "--lambda_L1: -5 must be >= 0"),
                                 ("gpu_ids", "a", "--gpu_ids a: give GPU numbers"),
                                 ("ngf", "3", "use an even --ngf")]:
        extra = {"n_downsampling": "0"} if flag == "ngf" else {}
        fails(capsys, argv(**{flag: value}, **extra), message)
    fails(capsys, argv(n_epochs="0", n_epochs_decay="0"), "--n_epochs + --n_epochs_decay must be at least 1")
    fails(capsys, argv(netG="bogus"), "invalid choice: 'bogus'")
    fails(capsys, argv(dataset_mode="nope"), "invalid choice: 'nope'")
    fails(capsys, argv(name="never_trained") + ["--continue_train"], "no checkpoint")
    fails(capsys, argv(ngf="8") + ["--continue_train"], "another architecture (ngf: checkpoint 4, flags 8)")
    fails(capsys, argv(init_gain="1e30"), "became")
    assert folder_hashes(tmp_path / "ckpt", "") == hashes


def test_deprecated_flag_names_are_accepted(demo_root, tmp_path, capsys):
    flags = tiny_flags(demo_root, tmp_path, "old", "paired_revgan", ["--n_blocks", "1", "--max_dataset_size", "1"])
    old = [{"--n_epochs": "--niter", "--n_epochs_decay": "--niter_decay", "--crop_size": "--fineSize"}.get(f, f)
           for f in flags]
    train_script.main(old)
    err = capsys.readouterr().err
    assert "notice: --niter is deprecated; use --n_epochs" in err
    assert (tmp_path / "ckpt" / "old" / "latest.pth").exists()


def test_failed_test_run_keeps_the_results_before(trained, demo_root, tmp_path, capsys):
    """test.py stopped by a bad image halfway leaves the earlier run's results, page and runs index as they were
    (they used to be removed before the first image was read), and no folder of its own beside them."""
    import test as test_script
    flags, _ = trained
    root = copy_root(demo_root, tmp_path)
    argv = ["--dataroot", str(root), "--name", "keep", "--model", "paired_revgan", "--checkpoints_dir",
            str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1", "--load_size", "32",
            "--crop_size", "32"]
    test_script.main(argv)
    before = folder_hashes(tmp_path / "res", suffix="")
    assert any(p.endswith("index.html") and "test_latest" in p for p in before), sorted(before)
    (root / "test" / "zzz_broken.png").write_bytes(b"not an image")
    with pytest.raises(SystemExit) as e:
        test_script.main(argv)
    assert e.value.code == 2 and "zzz_broken.png" in capsys.readouterr().err.strip().splitlines()[-1]
    assert folder_hashes(tmp_path / "res", suffix="") == before


@pytest.mark.parametrize("name", ["..", "", ".", "a/../..", "/tmp/run", "C:run"])
def test_run_names_outside_the_run_folders_are_refused(demo_root, tmp_path, capsys, name):
    """--name is a folder under checkpoints/ and results/: '..' wrote a run's files beside checkpoints/, '' into it."""
    fails(capsys, tiny_flags(demo_root, tmp_path, name, "paired_revgan"), "--name")
    assert not os.path.exists(tmp_path / "ckpt") or not any(p.suffix == ".pth" for p in (tmp_path / "ckpt").rglob("*"))


def test_results_of_a_test_on_other_data_replaced_are_said(tmp_path, capsys):
    from evaluation import replacing_results
    out = tmp_path / "test_latest"
    for root, said in (("data/one", False), ("data/two", True), ("data/two", False)):
        with replacing_results(str(out), root):
            out.mkdir()
            (out / "test_opt.txt").write_text(f"{'dataroot':>25}: {root:<30}\t[default: None]\n")
        printed = capsys.readouterr().out
        assert ("held the results of a test on data/one: replaced" in printed) == said, printed


def test_results_aside_survive_a_killed_run_and_stay_off_the_runs_index(tmp_path):
    """After a test run killed outright (its folder without summary.json, the earlier complete results aside in
    .previous), the next run that fails puts the complete ones back, and the runs index never lists the folder aside."""
    from evaluation import replacing_results
    from util.pages.runs import find_results
    out = tmp_path / "res" / "run" / "test_latest"
    aside = tmp_path / "res" / "run" / "test_latest.previous"
    for folder, what in ((out, "partial"), (aside, "complete")):
        folder.mkdir(parents=True)
        (folder / "test_opt.txt").write_text(what)
    (aside / "summary.json").write_text('{"name": "run", "date": "2026-12-07 00:00:00", "mean": {}}')
    shutil.copytree(aside, tmp_path / "res" / "run" / "test_5")  # the same summary in a run's own folder is listed
    assert [os.path.basename(r["folder"]) for r in find_results(str(tmp_path / "res"))] == ["test_5"]
    with pytest.raises(KeyboardInterrupt):
        with replacing_results(str(out)):
            out.mkdir(exist_ok=True)
            (out / "test_opt.txt").write_text("new")
            raise KeyboardInterrupt
    assert (out / "test_opt.txt").read_text() == "complete" and not aside.exists()
    with replacing_results(str(out)):
        out.mkdir()
        (out / "test_opt.txt").write_text("new")
    assert (out / "test_opt.txt").read_text() == "new" and not aside.exists()
