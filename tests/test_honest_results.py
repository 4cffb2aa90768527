"""Numbers that do not mislead (issue 29): test.py says "no reference metrics" only where there are none; the
baseline each output is measured against (--baseline: the copy of the input, a look-up table fitted on the training
pairs, or none) and which one it was; foreground metrics of volumes that the air around a subject does not flatter;
and the training page's fixed sample, drawn without changing training."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

import test as test_script
import train as train_script
from evaluation import metrics
from evaluation.baselines import LookUpTable
from tests.conftest import logged_rows, tiny_flags
from util.checkpoint import load_checkpoint
from util.results import MAE, PSNR, SSIM, Results


def _test(root, tmp, name, results, extra=()):
    return ["--dataroot", str(root), "--name", name, "--checkpoints_dir", str(tmp / "ckpt"), "--results_dir",
            str(results), "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32", "--eval"] + list(extra)


@pytest.fixture(scope="module")
def paired(demo_root, tmp_path_factory):
    """A tiny paired RevGAN trained on the demo's aligned pairs."""
    tmp = tmp_path_factory.mktemp("paired")
    train_script.main(tiny_flags(demo_root, tmp, "pr", "paired_revgan", ["--n_blocks", "1"]))
    return tmp


def test_aligned_data_has_reference_metrics_and_says_nothing_else(demo_root, paired, capsys):
    """Aligned pairs are real pairs: no "no reference metrics ... unpaired data" line before the PSNR lines."""
    capsys.readouterr()
    test_script.main(_test(demo_root, paired, "pr", paired / "res"))
    out = capsys.readouterr().out
    assert "no reference metrics" not in out and "unpaired" not in out
    assert "fake_B: PSNR" in out and "(copy-the-input baseline" in out
    # on unpaired test data (no names in common) it is said, and there is no PSNR to print
    root = paired / "unpaired"
    for side in "AB":
        shutil.copytree(os.path.join(demo_root, "test" + side), root / ("test" + side))
    for k, f in enumerate(sorted((root / "testB").iterdir())):
        f.rename(root / "testB" / f"b{k}.png")
    test_script.main(_test(root, paired, "pr", paired / "res_unpaired", ["--dataset_mode", "unaligned"]))
    out = capsys.readouterr().out
    assert "no reference metrics: the test A and B images are not paired by file name" in out
    assert "PSNR" not in out


def _records(folder):
    return {r["key"]: r for r in json.load(open(folder / "summary.json"))["results"]}


def test_baseline_copy_lut_or_none_and_the_page_says_which(demo_root, paired, browser, capsys):
    res = paired / "base"
    test_script.main(_test(demo_root, paired, "pr", res / "lut", ["--baseline", "lut"]))
    test_script.main(_test(demo_root, paired, "pr", res / "copy"))  # auto: copy (the same channels)
    test_script.main(_test(demo_root, paired, "pr", res / "none", ["--baseline", "none"]))
    lut, copy, none = (_records(res / k / "pr" / "test_latest") for k in ("lut", "copy", "none"))
    assert lut["PSNR_fake_B"]["baseline_kind"] == "lut" and copy["PSNR_fake_B"]["baseline_kind"] == "copy"
    # the demo's domains differ by a colour cast: a per-colour table undoes most of it, copying none of it
    assert lut["PSNR_fake_B"]["baseline"] > copy["PSNR_fake_B"]["baseline"] + 5
    assert lut["PSNR_fake_B"]["value"] == pytest.approx(copy["PSNR_fake_B"]["value"])  # the same outputs
    assert all("baseline" not in r for r in none.values())
    assert not any(k.startswith("baseline_") for k in json.load(open(res / "none" / "pr" / "test_latest" /
                                                                         "metrics.json"))["mean"])
    out = capsys.readouterr().out
    assert "(look-up table baseline" in out
    page = browser.inspect(res / "lut" / "pr" / "test_latest" / "index.html")
    browser.assert_clean()
    assert page["rows"]["metrics-mean"][2][-1] == "look-up table"
    assert "look-up table of the input's colour, fitted on" in page["text"] and "training pairs" in page["text"]
    page = browser.inspect(res / "none" / "pr" / "test_latest" / "index.html")
    summary = page["rows"]["metrics-mean"]
    assert summary[1] == ["output", "output", "output"] and summary[2][-1] == "none"  # no baseline, no Δ
    assert "Δ" not in " ".join(c for r in summary for c in r)
    # the runs index names the baseline behind each gain
    index = (res / "lut" / "index.html").read_text()
    assert "look-up table: " in index


def test_baseline_where_input_and_target_differ_in_channels(demo_root, tmp_path, capsys):
    """3 -> 1 channels: copying the input is no baseline; auto fits the look-up table, copy is refused."""
    root = tmp_path / "pairs"  # A and B files of the same names (side-by-side pairs share one channel count)
    for folder in ("trainA", "trainB", "testA", "testB"):
        shutil.copytree(os.path.join(demo_root, folder), root / folder)
    flags = ["--input_nc", "3", "--output_nc", "1", "--netG", "unet_128", "--dataset_mode", "aligned"]
    train_script.main(tiny_flags(str(root), tmp_path, "grey", "pix2pix", flags))
    demo_root = root
    test_script.main(_test(demo_root, tmp_path, "grey", tmp_path / "res", ["--model", "pix2pix"]))
    rec = _records(tmp_path / "res" / "grey" / "test_latest")["PSNR_fake_B"]
    assert rec["baseline_kind"] == "lut" and rec["baseline"] > 10
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        test_script.main(_test(demo_root, tmp_path, "grey", tmp_path / "res", ["--model", "pix2pix", "--baseline",
                                                                               "copy"]))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--baseline copy" in err[0] and "--baseline lut or none" in err[0]


def test_look_up_table_learns_a_colour_mapping():
    rng = np.random.default_rng(0)
    source = rng.random((3, 64, 64))
    target = np.stack([1 - source[0], source[2] ** 2])  # 3 -> 2 channels, a per-pixel function of the colour
    table = LookUpTable(3)
    table.add(source, target)
    table.finish(1)
    assert table(source).shape == (2, 64, 64)
    assert np.abs(table(source) - target).mean() < 0.02  # within its bins (32 levels per channel)
    unseen = LookUpTable(1)  # an intensity the pairs never had takes the coarse bin's mean, else the global mean
    unseen.add(np.full((1, 4, 4), 0.1), np.full((1, 4, 4), 0.7))
    unseen.finish(1)
    assert unseen(np.full((1, 2, 2), 0.9)) == pytest.approx(0.7)


def test_foreground_metrics_are_not_flattered_by_the_air_around_the_subject():
    """A blurred ball in a large box of air: over every voxel the air, reproduced exactly, makes the output look
    good; over the foreground (the target above the lowest tenth of its window) it does not."""
    from scipy.ndimage import gaussian_filter
    z, y, x = np.mgrid[:40, :40, :40]
    target = np.where((z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 < 36, 800.0, 0.0)
    target += np.where((z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 < 9, 400.0, 0.0)
    output = gaussian_filter(target, 1.5)
    window = (0.0, 1200.0)
    results = Results(metrics.translation("fake_B", output[None], target[None], target[None], data_range=1200.0,
                                          window=window))
    every = results.in_region(None)
    fg = {r.metric.name: r for r in results.in_region("foreground")}
    mask = target > 120.0
    err = output - target
    assert fg["MAE"].value == pytest.approx(np.abs(err[mask]).mean())
    assert fg["PSNR"].value == pytest.approx(10 * np.log10(1200.0 ** 2 / (err[mask] ** 2).mean()))
    assert every.value(SSIM, "fake_B") > 0.9 > fg["SSIM"].value
    assert every.value(PSNR, "fake_B") > fg["PSNR"].value + 10
    assert every.value(MAE, "fake_B") < fg["MAE"].value / 10
    assert all(r.data_range == 1200.0 for r in results) and {r.region for r in results} == {None, "foreground"}
    # the copy baseline (here: the target itself) is measured on the same voxels
    assert fg["MAE"].baseline == 0.0 and fg["MAE"].baseline_kind == "copy"
    assert [r.key for r in results.in_region("foreground")] == ["MAE_foreground_fake_B", "PSNR_foreground_fake_B",
                                                               "SSIM_foreground_fake_B"]


def test_training_page_snapshots_leave_training_unchanged(demo_root, tmp_path):
    """The fixed sample goes through the networks every step here (--display_freq 1 --update_html_freq 1), with
    dropout and BatchNorm: the losses, weights and running statistics are bit for bit those of a run without the
    page (--no_html), and a resumed run stays exact."""
    common = ["--netG", "unet_128", "--norm", "batch", "--dataset_mode", "aligned", "--max_dataset_size", "4",
              "--n_epochs", "2", "--n_epochs_decay", "1", "--display_freq", "1", "--update_html_freq", "1"]
    train_script.main(tiny_flags(demo_root, tmp_path, "page", "pix2pix", common))
    train_script.main(tiny_flags(demo_root, tmp_path, "plain", "pix2pix", common + ["--no_html"]))
    ckpt = tmp_path / "ckpt"
    assert logged_rows(ckpt / "page" / "loss_log.txt") == logged_rows(ckpt / "plain" / "loss_log.txt")
    page, plain = (load_checkpoint(str(ckpt / n / "latest.pth"))["networks"] for n in ("page", "plain"))
    assert page.keys() == plain.keys()
    for net in page:
        assert any("running_mean" in k for k in page[net]) or net != "G"
        assert all(torch.equal(page[net][k], plain[net][k]) for k in page[net]), net
    assert json.load(open(ckpt / "page" / "web" / "page.json"))["snapshot"].startswith("The same image every epoch")
    assert (ckpt / "page" / "web" / "images" / "epoch003_fake_B.png").exists()
    # and resumed: an interrupted run with the page goes on exactly as the whole run
    split = tiny_flags(demo_root, tmp_path, "split", "pix2pix", common)
    first = [a if a != "2" or split[i - 1] != "--n_epochs" else "1" for i, a in enumerate(split)]
    train_script.main(first + ["--n_epochs_decay", "0"])
    train_script.main(split + ["--continue_train"])
    assert logged_rows(ckpt / "split" / "loss_log.txt") == logged_rows(ckpt / "page" / "loss_log.txt")
