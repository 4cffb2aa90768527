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
    """A tiny paired RevGAN trained on the demo's aligned pairs, both directions (each gets its baseline)."""
    tmp = tmp_path_factory.mktemp("paired")
    train_script.main(tiny_flags(demo_root, tmp, "pr", "paired_revgan", ["--n_blocks", "1", "--two_way"]))
    return tmp


def test_aligned_data_has_reference_metrics_and_says_nothing_else(demo_root, paired, capsys):
    """Aligned pairs are real pairs: no "no reference metrics ... unpaired data" line before the PSNR lines."""
    capsys.readouterr()
    test_script.main(_test(demo_root, paired, "pr", paired / "res"))
    out = capsys.readouterr().out
    assert "no reference metrics" not in out and "unpaired" not in out
    assert "fake_B: PSNR" in out and "(look-up table baseline" in out
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
    test_script.main(_test(demo_root, paired, "pr", res / "copy", ["--baseline", "copy"]))
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


def _printed_baselines(out):
    return {line.split(":")[0][len("baseline of "):]: line.split(": ", 1)[1] for line in out.splitlines()
            if line.startswith("baseline of ")}


def test_baseline_auto_takes_the_best_of_copy_look_up_table_and_mean_on_the_training_pairs(demo_root, paired,
                                                                                            browser, capsys):
    """auto fits the table and the mean whenever paired training data is at hand and takes whichever of them and the
    copy scores best on the training pairs, saying which and every score; without paired training data it keeps the
    copy."""
    res = paired / "auto"
    capsys.readouterr()
    # the demo's pairs differ by a colour cast: the table wins there
    test_script.main(_test(demo_root, paired, "pr", res / "cast"))
    out = capsys.readouterr().out
    said = _printed_baselines(out)
    assert set(said) == {"fake_B", "fake_A"}
    for label in said:
        assert said[label].startswith("look-up table of the input's colour, fitted on ")
        assert "chosen by --baseline auto, the best on those pairs: mean PSNR " in said[label]
        assert "dB for the copy of the input and " in said[label] and "dB for their mean target colour" in said[label]
    cast = _records(res / "cast" / "pr" / "test_latest")
    assert cast["PSNR_fake_B"]["baseline_kind"] == "lut" and "(look-up table baseline" in out
    page = browser.inspect(res / "cast" / "pr" / "test_latest" / "index.html")
    browser.assert_clean()
    assert page["rows"]["metrics-mean"][2][-1] == "look-up table"
    assert "chosen by --baseline auto" in page["text"]
    # identical training pairs (B = A): nothing beats the copy, which auto then keeps, saying what it compared
    same = paired / "same"
    for folder in ("trainA", "trainB"):
        shutil.copytree(os.path.join(demo_root, "trainB"), same / folder)
    for folder in ("testA", "testB"):
        shutil.copytree(os.path.join(demo_root, folder), same / folder)
    test_script.main(_test(same, paired, "pr", res / "same"))
    said = _printed_baselines(capsys.readouterr().out)
    pairs = len(os.listdir(same / "trainA"))
    assert said["fake_B"].startswith(f"copy of the input; chosen by --baseline auto, the best on {pairs} training "
                                     f"pairs: mean PSNR 100.00 dB, against ")
    assert "for a look-up table of the input's colour fitted on them" in said["fake_B"]
    assert _records(res / "same" / "pr" / "test_latest")["PSNR_fake_B"]["baseline_kind"] == "copy"
    # no pairs among the training files (no names in common): the copy, and why nothing was compared
    for k, f in enumerate(sorted((same / "trainB").iterdir())):
        f.rename(same / "trainB" / f"b{k}.png")
    test_script.main(_test(same, paired, "pr", res / "unpaired", ["--dataset_mode", "unaligned"]))
    said = _printed_baselines(capsys.readouterr().out)
    assert said["fake_B"].startswith("copy of the input; --baseline auto found nothing to compare it with: no "
                                     "paired training data is at hand under ")
    assert _records(res / "unpaired" / "pr" / "test_latest")["PSNR_fake_B"]["baseline_kind"] == "copy"


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


def test_baseline_auto_on_volumes_in_other_units_and_in_the_same(tmp_path):
    """Volumes: the table maps intensities through the checkpoint's windows, in original units. Training pairs in
    other units (B = 10 A + noise) make it far better than the copy; identical pairs keep the copy."""
    from types import SimpleNamespace

    from data.base_dataset import DomainMap
    from evaluation import baselines
    rng = np.random.default_rng(0)
    model = SimpleNamespace(dims=3, volume=SimpleNamespace(intensity={"A": (0.0, 100.0), "B": (0.0, 1000.0)}),
                            translators=lambda: {"fake_B": SimpleNamespace(source="A", target="B")})
    domains = DomainMap("AtoB", 1, 1)
    for case, scale in (("units", 10.0), ("same", 1.0), ("unrelated", 0.0)):
        root = tmp_path / case
        for folder in ("trainA", "trainB"):
            (root / folder).mkdir(parents=True)
        for k in range(3):
            a = rng.uniform(0, 100, (6, 7, 8)).astype(np.float32)
            np.save(root / "trainA" / f"v{k}.npy", a)
            np.save(root / "trainB" / f"v{k}.npy", a * scale + (rng.normal(0, 5, a.shape) if scale != 1 else 0) +
                    (500 if case == "unrelated" else 0))
        said = []
        chosen = baselines.for_test(SimpleNamespace(baseline="auto", dataroot=str(root)), model, domains,
                                    say=said.append)["fake_B"]
        assert said == [f"baseline of fake_B: {chosen.about}"]
        if case == "units":
            assert chosen.kind == "lut" and chosen.about.startswith("look-up table of the input's intensity, fitted "
                                                                    "on 3 training pairs; chosen by --baseline auto")
            x = np.full((1, 2, 2, 2), 50.0)
            assert np.allclose(chosen(x), 500.0, atol=10)  # original units in and out
        elif case == "same":
            assert chosen.kind == "copy" and "mean PSNR 100.00 dB, against " in chosen.about
        else:  # B = 500 + noise whatever A is: the table over-fits its bins, one intensity everywhere does better
            assert chosen.kind == "mean" and chosen.about.startswith("mean target intensity of 3 training pairs, the "
                                                                     "same everywhere; chosen by --baseline auto")
            assert "dB for a look-up table of the input's intensity fitted on them" in chosen.about
            b = np.concatenate([np.load(root / "trainB" / f"v{k}.npy").ravel() for k in range(3)])
            x = np.full((1, 2, 2, 2), 50.0)
            assert chosen(x).shape == x.shape and np.allclose(chosen(x), b.mean(), atol=0.5)  # original units
            asked = baselines.for_test(SimpleNamespace(baseline="mean", dataroot=str(root)), model, domains,
                                       say=said.append)["fake_B"]
            assert asked.kind == "mean" and "chosen" not in asked.about and np.allclose(asked(x), chosen(x))


def test_baseline_auto_scores_the_fits_on_the_other_half_of_the_files(tmp_path):
    """The table and the mean are scored on halves in file order, as a test set of other images would score them:
    a table fitted on the first files' intensities has seen none of the last files' and falls back to the mean there
    (split every other file, it would have seen both and scored far above the mean)."""
    from types import SimpleNamespace

    from data.base_dataset import DomainMap
    from evaluation import baselines
    rng = np.random.default_rng(0)
    model = SimpleNamespace(dims=3, volume=SimpleNamespace(intensity={"A": (0.0, 100.0), "B": (0.0, 1000.0)}))
    for folder in ("trainA", "trainB"):
        (tmp_path / folder).mkdir()
    for k in range(4):  # v0, v1: dark inputs; v2, v3: bright ones; B = 10 A in all
        a = rng.uniform(0, 50, (6, 7, 8)).astype(np.float32) + (50 if k >= 2 else 0)
        np.save(tmp_path / "trainA" / f"v{k}.npy", a)
        np.save(tmp_path / "trainB" / f"v{k}.npy", 10 * a)
    fit, why = baselines._fit(SimpleNamespace(dataroot=str(tmp_path)), model, DomainMap("AtoB", 1, 1), "A", "B", True)
    assert why is None and fit.held_out and fit.pairs == 4
    assert fit.lut_psnr == pytest.approx(fit.mean_psnr, abs=0.5) and fit.lut_psnr < 15
    x = np.full((1, 2, 2, 2), 75.0)
    assert np.allclose(fit.baseline(x), 750.0, atol=10)  # the table itself is fitted on every pair
    for k in (1, 2, 3):  # one pair left: scored on the pair it was fitted on, which its message says
        os.remove(tmp_path / "trainA" / f"v{k}.npy")
    one, _ = baselines._fit(SimpleNamespace(dataroot=str(tmp_path)), model, DomainMap("AtoB", 1, 1), "A", "B", True)
    assert not one.held_out and one.pairs == 1
    assert "scored on the one pair they were fitted on, which flatters them: add pairs" in one.choice().about


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
