"""scripts/benchmark_quality.py: the quality benchmark runs end to end on its tiny smoke configuration (train.py and
test.py of an unpaired 2D and an unpaired 3D task, two seeds, the upstream-default rows, the reference
baselines, the docs section, the plots); its pieces (data split, baselines, equal-time budget) do what they say.
The benchmark itself is not a test: its numbers come from `make bench`."""
import os
import re
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from datasets import make_quality_benchmark as mqb  # noqa: E402
from scripts import benchmark_quality as bq  # noqa: E402
from tests.bench_runs import OTHER_SECTION, tiny_benchmark  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return tiny_benchmark(tmp_path_factory.mktemp("quality"), "benchmark_quality.py",
                          ["--seeds", "2", "--no_iunet", "--tasks", *TINY_TASKS], timeout=540)


def section(text, name):
    m = re.search(rf"<!-- begin {name} -->\n(.*?)<!-- end {name} -->", text, re.S)
    assert m, f"no section {name}"
    return m.group(1)


def table(body, header_start):
    """The markdown table of ``body`` whose header starts with ``header_start``: (header, rows)."""
    lines = body.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(header_start))
    cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]  # noqa: E731
    rows = []
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return cells(lines[i]), rows


TINY_TASKS = ["map2d_unpaired", "tissue3d"]
EXPECTED = {  # task -> the methods of its rows, in order; the last 3 or 4 are models
    "map2d_unpaired": ["copy the input", bq.CONSTANT, "per-channel histogram matching (unpaired)",
                       "per-colour look-up table (32³ bins, fitted on training pairs the models never see)",
                       "cycle_gan", "cycle_gan, upstream defaults", "unpaired_revgan, equal epochs",
                       "unpaired_revgan, equal time"],
    "tissue3d": ["copy the input", bq.CONSTANT, "intensity histogram matching (unpaired)",
                 "per-intensity look-up table (fitted on training pairs the models never see)",
                 "cycle_gan3d", "unpaired_revgan3d, equal epochs", "unpaired_revgan3d, equal time"],
}


def test_tiny_run_writes_the_table_and_plots(tiny_run):
    text = tiny_run["docs"].read_text()
    assert OTHER_SECTION in text  # other sections untouched
    body = section(text, "benchmark_quality_cpu")
    assert "Command: `python scripts/benchmark_quality.py --tiny" in body and "machine:" in body and "date:" in body
    assert "Smoke configuration" in body and "not results" in body
    mapu = next(r for r in tiny_run["results"]["results"] if r["task"] == "map2d_unpaired")
    assert "unpaired_revgan − cycle_gan with upstream defaults at equal epochs" in bq.findings(mapu)
    assert "data range" in body
    header, rows = table(body, "| task | method")
    assert header == bq.HEADER
    assert header[-4:] == ["PSNR (dB)", "SSIM", "MAE", "PSNR in the brain (dB)"]
    for task, methods in EXPECTED.items():
        got = [r for r in rows if r[0] == task]
        assert [r[1] for r in got] == methods
        models = 3 if task.endswith("3d") else 4
        for r in got:
            psnr, ssim, mae = float(r[5].split(" (")[0]), float(r[6]), float(r[7])  # no "failed" rows
            assert np.isfinite(psnr) and -1 <= ssim <= 1 and mae >= 0
            assert (r[8] != "") == task.endswith("3d")  # PSNR in the brain: volumes only
        for r in got[-models:]:  # model rows: epochs, time, the time ratio, each seed's PSNR
            epochs = r[2].split(" × ")  # 3D: "N × K patches" (per volume); 2D at equal time "N × K samples" (fewer)
            assert int(epochs[0]) >= 1 and float(r[3]) > 0 and float(r[4]) > 0
            if task.endswith("3d"):
                assert len(epochs) == 2 and int(epochs[1].split()[0]) >= 1 and epochs[1].split()[1] in ("patch",
                                                                                                      "patches")
            else:  # whole epochs, unless the equal-time run trained fewer samples in each
                assert len(epochs) == 1 or ("equal time" in r[1] and int(epochs[1].split()[0]) >= 1 and
                                            epochs[1].split()[1] in ("sample", "samples"))
            seeds = r[5].split(" (")[1].rstrip(")").split(" / ")
            assert len(seeds) == 2 and np.mean([float(x) for x in seeds]) == pytest.approx(float(r[5].split()[0]),
                                                                                           abs=0.006)
        assert got[len(methods) - models][4] == "1.00"  # the baseline model sets the budget
    for png in ("benchmark_quality_cpu.png", "benchmark_quality_cpu_examples.png"):
        assert (tiny_run["docs"].parent / png).stat().st_size > 10000
        assert f"](./{png})" in body
    assert "training ..." in tiny_run["stdout"] and re.search(r"epoch 1/1 done at \d+ s", tiny_run["stdout"])


def test_tiny_run_baselines_are_scored_like_the_models(tiny_run):
    for result in tiny_run["results"]["results"]:
        refs = {r["method"]: r["scores"] for r in result["references"]}
        copy = result["references"][0]["scores"]
        assert len(refs) >= 2
        for method, scores in list(refs.items())[1:]:  # the non-learned baselines really ran
            assert scores["PSNR"] != pytest.approx(copy["PSNR"], abs=1e-6), method
        for runs in result["runs"].values():
            assert [run["seed"] for run in runs] == [0, 1]
            for run in runs:
                assert "error" not in run, run.get("error")
                # test.py's copy baseline equals ours: same test data, same metric code
                for k in ("PSNR", "SSIM", "MAE"):
                    assert run["copy_scores"][k] == pytest.approx(copy[k], rel=1e-5, abs=1e-6)
        assert result["runs"]["baseline"][0]["model"] == bq.TASKS[result["task"]][0]
        assert result["runs"]["revgan_time"][0]["model"] == bq.TASKS[result["task"]][1]
        if result["task"] != "tissue3d":  # upstream's own defaults for the 2D baselines
            argv = result["runs"]["upstream"][0]["train_argv"]
            assert last_value(argv, "--netG") == "resnet_9blocks" and "--no_residual" in argv


def last_value(argv, flag):
    """The value argparse takes for ``flag``: the one after its last occurrence."""
    return argv[len(argv) - argv[::-1].index(flag)]


def test_upstream_rows_use_upstream_defaults():
    ctx = bq.Context()
    ctx.mode, ctx.train_flags = "quick", []
    pix = bq.task_flags(ctx, "map2d", upstream=True)  # pix2pix: U-Net, batch norm, dropout, no residual
    assert last_value(pix, "--netG") == "unet_256" and last_value(pix, "--norm") == "batch"
    assert "--no_dropout" not in pix and "--no_residual" in pix
    cyc = bq.task_flags(ctx, "unpaired2d", upstream=True)  # cycle_gan: 9 ResNet blocks, instance norm
    assert last_value(cyc, "--netG") == "resnet_9blocks" and last_value(cyc, "--norm") == "instance"
    ours = bq.task_flags(ctx, "map2d")  # the benchmark's own baseline rows: equal structure to the RevGAN model
    assert "--no_dropout" in ours and "--norm" not in ours  # the models' default (none), as the RevGAN rows


@pytest.mark.parametrize("no_iunet", [False, True])
def test_runs_include_the_iunet_model_unless_skipped(monkeypatch, no_iunet):
    """Which models a task trains (the training itself is replaced; the tiny run above skips the iUNet for time)."""
    calls = []
    monkeypatch.setattr(bq, "reference_methods", lambda *a: [])
    monkeypatch.setattr(bq, "reference_rows", lambda *a: [("copy the input", {"PSNR": 1.0})])
    monkeypatch.setattr(bq, "check_copy", lambda *a: None)
    monkeypatch.setattr(bq, "train_and_test", lambda ctx, task, model, n, flags, seed=0, tag="":
                        calls.append((model, tag, flags)) or {"error": "not trained here"})
    ctx = bq.Context()
    ctx.mode, ctx.train_flags, ctx.data, ctx.epochs, ctx.seeds = "quick", [], "data", None, [0]
    ctx.no_upstream, ctx.no_iunet, ctx.baseline_netG = True, no_iunet, "resnet_6blocks"
    result = bq.run_task(ctx, "map2d_unpaired", {})
    iunet = [c for c in calls if c[1] == "_iunet"]
    assert [(m, t) for m, t, _ in calls] == [("cycle_gan", ""), ("unpaired_revgan", "")] + \
        ([] if no_iunet else [("unpaired_revgan", "_iunet")])
    assert all(last_value(f, "--netG") == "iunet" for _, _, f in iunet)
    assert ("iunet" in result["runs"]) != no_iunet


def run_faked(monkeypatch, task, fake, copy_scores, no_two_way=False, seeds=(0,)):
    """bq.run_task of ``task`` with training and testing replaced by ``fake`` (quick mode, 6 epochs, seed 0, no
    upstream or iunet rows; the copy the only reference row, with ``copy_scores``)."""
    monkeypatch.setattr(bq, "reference_methods", lambda *a: [])
    monkeypatch.setattr(bq, "reference_rows", lambda *a: [("copy the input", copy_scores)])
    monkeypatch.setattr(bq, "check_copy", lambda *a: None)
    monkeypatch.setattr(bq, "train_and_test", fake)
    ctx = bq.Context()
    ctx.mode, ctx.train_flags, ctx.data, ctx.epochs, ctx.seeds = "quick", [], "data", 6, list(seeds)
    ctx.no_upstream, ctx.no_iunet, ctx.no_two_way, ctx.baseline_netG = True, True, no_two_way, "resnet_6blocks"
    return bq.run_task(ctx, task, {})


@pytest.mark.parametrize("no_two_way", [False, True])
def test_paired_tasks_add_two_way_runs_at_their_own_budget(monkeypatch, no_two_way):
    """Paired tasks also train the paired RevGAN with --two_way, at equal epochs and, at equal time, the same epochs
    of the --samples_per_epoch its own measured per-epoch time fits in the baseline's time (training replaced: 30
    training images, a fixed step time), stated in the table and the findings."""
    calls = []
    step = {("pix2pix", ""): 1 / 3, ("paired_revgan", ""): 0.5, ("paired_revgan", "_twoway"): 1.0}

    def fake(ctx, task, model, n, flags, seed=0, tag=""):
        calls.append((model, tag, n, flags))
        k = int(bq.given({"train_argv": flags}, "--samples_per_epoch") or 30)
        t = step[(model, re.sub(r"_\d+samples$", "", tag))] * k
        return {"model": model, "epochs": n, "train_s": n * t, "epoch_ends": [t * (i + 1) for i in range(n)],
                "train_argv": flags, "train_samples": 30, "scores": {"PSNR": 1.0, "SSIM": 0.5, "MAE": 0.1}}
    result = run_faked(monkeypatch, "paired2d", fake, {"PSNR": 1.0, "SSIM": 0.5, "MAE": 0.1}, no_two_way)
    # budget 6 * 10 s: one-way (the default) 15 s an epoch of 30 images -> 20 images; two-way 30 s -> 10
    assert [(m, t, n, bq.given({"train_argv": f}, "--samples_per_epoch")) for m, t, n, f in calls] == [
        ("pix2pix", "", 6, None), ("paired_revgan", "", 6, None)] + \
        ([] if no_two_way else [("paired_revgan", "_twoway", 6, None)]) + [("paired_revgan", "_20samples", 6, 20)] + \
        ([] if no_two_way else [("paired_revgan", "_twoway_10samples", 6, 10)])
    assert all(("--two_way" in f) == t.startswith("_twoway") for _, t, _, f in calls)
    assert ("twoway_time" in result["runs"]) != no_two_way
    assert result["budget"]["samples_per_epoch"] == 20 and result["budget"]["epochs"] == 6
    rows = {r[1]: r for r in bq.table_rows(result)}
    assert rows["paired_revgan, equal time"][2] == "6 × 20 samples"
    assert "paired_revgan − pix2pix at equal time: +0.00 dB (6 epochs of 20 samples against 6 epochs)" in \
        bq.findings(result)
    if not no_two_way:
        assert result["twoway_budget"]["samples_per_epoch"] == 10
        assert rows["paired_revgan --two_way, equal time"][2] == "6 × 10 samples"


def test_equal_time_budget_is_the_mean_of_every_seeds_runs(monkeypatch):
    """With several seeds every equal-epoch run comes first, then one budget from the means of all their times (a
    slow run of one seed evens out), the same for every seed; a failed run is left out of the means."""
    calls = []
    base_s = {0: 50.0, 1: 70.0, 2: None}  # pix2pix's 6 epochs per seed; seed 2 fails
    per_image = {0: 0.5, 1: 0.3, 2: 0.4}  # the RevGAN's step time per seed

    def fake(ctx, task, model, n, flags, seed=0, tag=""):
        calls.append((model, tag, seed))
        if model == "pix2pix" and base_s[seed] is None:
            return {"model": model, "epochs": n, "error": "failed", "train_argv": flags}
        k = int(bq.given({"train_argv": flags}, "--samples_per_epoch") or 30)
        t = base_s[seed] / n if model == "pix2pix" else per_image[seed] * k
        return {"model": model, "epochs": n, "train_s": n * t, "epoch_ends": [t * (i + 1) for i in range(n)],
                "train_argv": flags, "train_samples": 30, "scores": {"PSNR": 1.0, "SSIM": 0.5, "MAE": 0.1}}
    result = run_faked(monkeypatch, "paired2d", fake, {"PSNR": 1.0, "SSIM": 0.5, "MAE": 0.1}, no_two_way=True,
                       seeds=(0, 1, 2))
    # budget: mean of 50 and 70 s = 60 s; the RevGAN's mean epoch 0.4 * 30 = 12 s -> 6 epochs of 25 images
    assert result["budget"]["budget_s"] == 60.0 and result["budget"]["samples_per_epoch"] == 25
    assert result["budget"]["from_runs"] == [2, 3]
    assert calls == [(m, "", seed) for seed in (0, 1, 2) for m in ("pix2pix", "paired_revgan")] + \
        [("paired_revgan", "_25samples", seed) for seed in (0, 1, 2)]
    assert bq.seeds_text(result) == "mean of 2 seeds" and bq.seeds_text({"budget": {"epochs": 6}}) == "first seed"


def test_3d_equal_time_keeps_the_epochs_with_fewer_patches(monkeypatch):
    """3D: the equal-time runs keep the baseline's epochs (and schedule) with the --samples_per_volume that fits the
    baseline's time (training replaced: each patch a fixed step time, 2 s fixed), stated in the findings."""
    calls = []
    step = {("pix2pix3d", ""): 0.1, ("paired_revgan3d", ""): 0.115, ("paired_revgan3d", "_twoway"): 0.25}

    def fake(ctx, task, model, n, flags, seed=0, tag=""):
        calls.append((model, tag, n, last_value(flags, "--samples_per_volume")))
        per_epoch = step[(model, re.sub(r"_\d+patches$", "", tag))] * int(last_value(flags, "--samples_per_volume"))
        return {"model": model, "epochs": n, "train_s": n * per_epoch + 2.0, "train_argv": flags,
                "epoch_ends": [2.0 + per_epoch * (i + 1) for i in range(n)], "scores": {"PSNR": 1.0, "SSIM": 0.5,
                                                                                       "MAE": 0.1, "PSNR_brain": 1.0}}
    result = run_faked(monkeypatch, "thick3d", fake, {"PSNR": 1.0, "SSIM": 0.5, "MAE": 0.1, "PSNR_brain": 1.0})
    # budget 6 * 3.2 + 2 = 21.2 s: one-way (the default) 3.68 s an epoch at 32 patches -> 27 patches; two-way 8 s -> 12
    assert [(m, t, n, k) for m, t, n, k in calls] == [
        ("pix2pix3d", "", 6, "32"), ("paired_revgan3d", "", 6, "32"), ("paired_revgan3d", "_twoway", 6, "32"),
        ("paired_revgan3d", "_27patches", 6, "27"), ("paired_revgan3d", "_twoway_12patches", 6, "12")]
    assert result["budget"]["samples_per_volume"] == 27 and result["budget"]["epochs"] == 6
    assert result["twoway_budget"]["samples_per_volume"] == 12
    rows = {r[1]: r for r in bq.table_rows(result)}
    assert rows["paired_revgan3d --two_way, equal time"][2] == "6 × 12 patches"
    assert "(6 epochs of 27 patches per volume against 6 epochs of 32 patches per volume)" in bq.findings(result)


def test_equal_time_samples():
    run = {"epochs": 4, "train_s": 50.0, "epoch_ends": [15.0, 25.0, 35.0, 45.0], "train_samples": 100}
    assert bq.equal_time_samples(30.0, [run]) == (50, 10.0, 10.0)  # 10 s an epoch, 10 s fixed: half the samples fit
    assert bq.equal_time_samples(50.0, [run])[0] == 100  # its own time: its own samples
    assert bq.equal_time_samples(90.0, [run])[0] == 200  # a faster model trains as many more as fit
    assert bq.equal_time_samples(5.0, [run])[0] == 1  # never less than one
    assert bq.equal_time_samples(30.0, [dict(run, train_argv=["--samples_per_epoch", "40"])])[0] == 20
    assert bq.equal_time_samples(30.0, [dict(run, epoch_ends=[])])[:2] == (60, 12.5)  # no epoch lines: run time / N
    # several seeds' runs: the means of their per-epoch times and fixed costs (10 and 20 s an epoch, 10 s fixed)
    slow = {"epochs": 4, "train_s": 90.0, "epoch_ends": [30.0, 50.0, 70.0, 90.0], "train_samples": 100}
    assert bq.equal_time_samples(40.0, [run, slow]) == (50, 15.0, 10.0)
    assert bq.decay_epochs(6) == 2 and bq.decay_epochs(1) == 0


def fake_timed(calls, epoch_s):
    """A train_and_test stand-in: ``epoch_s[model]`` seconds per epoch of 96 training images (2D), proportional to
    the --samples_per_epoch given."""
    def fake(ctx, task, model, n, flags, seed=0, tag=""):
        calls.append((model, tag))
        t = epoch_s[model] * (bq.given({"train_argv": flags}, "--samples_per_epoch") or 96) / 96
        return {"name": f"{task}_{model}{tag}_{n}ep_seed{seed}", "model": model, "epochs": n, "train_s": n * t,
                "epoch_ends": [t * (i + 1) for i in range(n)], "train_argv": flags, "train_samples": 96,
                "scores": {"PSNR": 1.0, "SSIM": 0.5, "MAE": 0.1}}
    return fake


def test_equal_time_where_the_run_takes_the_budget_is_the_run_itself(monkeypatch):
    """2D: a RevGAN run whose N epochs take the baseline's time is its own equal-time row (no second run), and
    the findings say N epochs, not N epochs of all the samples; the plots name only other runs' samples."""
    calls = []
    fake = fake_timed(calls, {"cycle_gan": 12.0, "unpaired_revgan": 12.0})
    result = run_faked(monkeypatch, "unpaired2d", fake, {"PSNR": 1.0, "SSIM": 0.5, "MAE": 0.1})
    assert calls == [("cycle_gan", ""), ("unpaired_revgan", "")]
    assert result["runs"]["revgan_time"] == result["runs"]["revgan_epochs"]
    assert "at equal time: +0.00 dB (6 epochs against 6 epochs)" in bq.findings(result)
    run = result["runs"]["revgan_time"][0]
    assert bq.bar_label("unpaired_revgan", run, "revgan_time") == "unpaired_revgan, 6 ep (=time)"
    reduced = dict(run, name="unpaired2d_unpaired_revgan_83samples_6ep_seed0")
    assert bq.bar_label("unpaired_revgan", reduced, "revgan_time") == "unpaired_revgan, 6 ep × 83 (=time)"


def test_a_faster_revgan_trains_the_time_it_saves(monkeypatch):
    """Equal time is the baseline's time, also for a faster RevGAN model: its equal-time run takes the same epochs of
    more samples, as many as fit (10 s an epoch against 12: 96 × 1.2 = 115), and the findings say so."""
    calls = []
    fake = fake_timed(calls, {"cycle_gan": 12.0, "unpaired_revgan": 10.0})
    result = run_faked(monkeypatch, "unpaired2d", fake, {"PSNR": 1.0, "SSIM": 0.5, "MAE": 0.1})
    assert calls == [("cycle_gan", ""), ("unpaired_revgan", ""), ("unpaired_revgan", "_115samples")]
    run = result["runs"]["revgan_time"][0]
    assert bq.given(run, "--samples_per_epoch") == 115 and abs(run["train_s"] - 71.875) < 1e-9
    assert "at equal time: +0.00 dB (6 epochs of 115 samples against 6 epochs)" in bq.findings(result)
    assert bq.table_rows(result)[-1][1:5] == ["unpaired_revgan, equal time", "6 × 115 samples", "72", "1.00"]
    assert bq.given({"train_argv": ["--samples_per_epoch=40", "--x"]}, "--samples_per_epoch") == 40


def test_training_samples_read_from_the_train_log(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("note: x\nthe number of training images = 192; effective batch size = ...\n")
    assert bq.training_samples(str(log)) == 192
    log.write_text("nothing\n")
    assert bq.training_samples(str(log)) is None and bq.training_samples(str(tmp_path / "none")) is None


def test_colour_baselines_fit_what_they_should():
    rng = np.random.default_rng(0)
    b = rng.random((5000, 3))
    m = np.array([[0.8, 0.1, 0.0], [0.1, 0.7, 0.1], [0.0, 0.2, 0.6]])
    a = b @ m.T + 0.05
    assert np.allclose(bq.fit_affine(a, b)(a), b, atol=1e-9)  # an affine cast is undone exactly
    lut = bq.fit_lut(a ** 2, b)  # a pointwise map: the LUT gets within its bin width
    assert np.abs(lut(a ** 2) - b).mean() < 0.05
    match = bq.fit_histogram_matching(b, b)  # same distributions: the identity (to the 8-bit level)
    assert np.abs(match(b) - b).max() <= 1 / 255 + 1e-9
    const = bq.fit_constant(b)(a.reshape(50, 100, 3))  # the mean target colour everywhere, whatever the input
    assert const.shape == (50, 100, 3) and np.allclose(const, b.mean(axis=0))
    assert np.allclose(bq.fit_constant(np.array([1.0, 3.0]))(np.zeros((2, 3, 4))), 2.0)  # volumes: one intensity


def test_references_only_trains_nothing_and_writes_no_docs(tmp_path, capsys):
    docs = tmp_path / "benchmarks.md"
    rows = bq.main(["--tiny", "--references_only", "--workdir", str(tmp_path / "work"), "--docs", str(docs),
                    "--tasks", "map2d_unpaired", "tissue3d"])
    assert [r[:2] for r in rows] == [[task, m] for task in ("map2d_unpaired", "tissue3d") for m in EXPECTED[task][:4]]
    assert all(np.isfinite(float(r[2])) for r in rows) and (rows[-1][5] != "") and not docs.exists()
    out = capsys.readouterr().out
    assert "| map2d_unpaired | " + bq.CONSTANT in out
    assert sorted(os.listdir(tmp_path / "work")) == ["data"]  # no checkpoints, results, logs or results.json


def test_findings_name_the_models_not_above_the_constant():
    """A model that scores no better than the mean target colour everywhere is named, on any kind of task."""
    def result(task, model_psnr):
        refs = [("copy the input", 6.0), (bq.CONSTANT, 18.7), ("per-channel histogram matching (unpaired)", 15.2)]
        return {"task": task, "references": [{"method": m, "scores": {"PSNR": v}} for m, v in refs],
                "runs": {"baseline": [{"scores": {"PSNR": model_psnr}}], "revgan_epochs": [{"scores": {"PSNR": 19.0}}]},
                "epochs": 8, "baseline": bq.TASKS[task][0], "revgan": bq.TASKS[task][1]}
    low = bq.findings(result("map2d_unpaired", 15.3))
    assert "not above the constant (18.70 dB): cycle_gan." in low and "unpaired_revgan" not in low.split("constant")[-1]
    assert "not above the constant" not in bq.findings(result("map2d_unpaired", 18.8))
    assert "not above the constant (18.70 dB): pix2pix." in bq.findings(result("paired2d", 18.7))


def test_data_holds_out_the_test_photos_and_regions(tmp_path):
    meta = mqb.build(str(tmp_path), **dict(mqb.SIZES["tiny"]))
    assert sorted(meta) == sorted(bq.TASKS)
    for task in ("paired2d", "unpaired2d", "map2d", "map2d_unpaired"):
        folder = tmp_path / task
        train = {re.sub(r"_[ab]?\d+\.png$", "", n) for side in "AB" for n in os.listdir(folder / f"train{side}")}
        test = {re.sub(r"_\d+\.png$", "", n) for side in "AB" for n in os.listdir(folder / f"test{side}")}
        assert train and test and not train & test  # no test photo in training
        assert sorted(os.listdir(folder / "testA")) == sorted(os.listdir(folder / "testB"))  # real pairs
    assert meta["unpaired2d"]["train_A"] > 0 and meta["unpaired2d"]["train_B"] > 0
    for task in ("unpaired2d", "map2d_unpaired"):  # unpaired tiles never share a name (they would be taken for pairs)
        assert not set(os.listdir(tmp_path / task / "trainA")) & set(os.listdir(tmp_path / task / "trainB"))
    # the map tasks are cross-domain: B is drawn in flat map colours (palette, borders darker) and looks nothing
    # like the photo A; near-identity tasks stay close to their input
    from PIL import Image
    for task in ("map2d", "paired2d"):
        name = sorted(os.listdir(tmp_path / task / "testA"))[0]
        a, b = (np.asarray(Image.open(tmp_path / task / f"test{s}" / name), np.float64) / 255 for s in "AB")
        psnr = 10 * np.log10(1 / np.mean((a - b) ** 2))
        assert psnr < 12 if task == "map2d" else psnr > 12
    b = np.asarray(Image.open(tmp_path / "map2d" / "trainB" / sorted(os.listdir(tmp_path / "map2d" / "trainB"))[0]))
    palette = np.concatenate([mqb.MAP_PALETTE, (mqb.MAP_PALETTE * 0.55).astype(np.uint8)]).astype(np.uint8)
    assert all((palette == c).all(1).any() for c in np.unique(b.reshape(-1, 3), axis=0))
    import nibabel as nib
    folder = tmp_path / "thick3d"
    train, test = (nib.load(str(folder / f"{p}B" / f"mni_{p}.nii.gz")) for p in ("train", "test"))
    y_train_end = (train.affine @ [0, train.shape[1] - 1, 0, 1])[1]
    y_test_start = (test.affine @ [0, 0, 0, 1])[1]
    assert y_test_start - y_train_end > 4  # split along y with a gap (mm), never along the symmetric x
    assert train.shape[0] == test.shape[0]  # both hemispheres on both sides of the split
    a = nib.load(str(folder / "testA" / "mni_test.nii.gz")).get_fdata()
    b = np.asarray(test.get_fdata())
    assert a.shape == b.shape and 0 < np.abs(a - b).mean() < 0.2 * np.abs(b).mean()  # near-identity
    folder = tmp_path / "tissue3d"  # T1 -> grey matter: same grid as thick3d's B, a different-looking target
    t1, gm = (nib.load(str(folder / f"test{s}" / "mni_test.nii.gz")).get_fdata() for s in "AB")
    assert np.array_equal(t1, b) and gm.shape == t1.shape and 0 < gm.max() <= 255
    brain = t1 > 0
    assert np.corrcoef(t1[brain], gm[brain])[0, 1] < 0.5
    folder = tmp_path / "t2w3d"  # T1 -> T2-weighted: the same T1, the tissue order reversed in the brain
    t1_, t2 = (nib.load(str(folder / f"test{s}" / "mni_test.nii.gz")).get_fdata() for s in "AB")
    assert np.array_equal(t1_, t1) and (t2[~brain] == 0).all() and 0 < t2.max() <= 255
    assert np.corrcoef(t1[brain], t2[brain])[0, 1] < -0.3
    _, rows = bq.task_references("t2w3d", str(folder), meta["t2w3d"])  # its references are tissue3d's
    assert [m for m, _ in rows] == EXPECTED["tissue3d"][:4]
    psnr = {m: s["PSNR"] for m, s in rows}  # a per-intensity map fitted on pairs solves it; a monotone one does not
    assert psnr[EXPECTED["tissue3d"][3]] > psnr["copy the input"] + 10
    assert psnr["intensity histogram matching (unpaired)"] < psnr["copy the input"] + 1


def test_t2_rendering_orders_the_tissues_as_t2_weighted_mri():
    """CSF brightest, then grey matter, then white matter (a T1's order reversed); outside the brain dark."""
    t1 = np.array([0.0, 40.0, 160.0, 220.0, 180.0])  # background, CSF, grey, white, a grey/white mix
    grey = np.array([0, 0, 255, 0, 127.5])
    white = np.array([0, 0, 0, 255, 127.5])
    t2 = mqb.render_t2(t1, grey, white)
    assert t2[0] == 0 and t2[1] > t2[2] > t2[3] and t2[2] > t2[4] > t2[3]
    assert t2[1] == 255 * mqb.T2_CONTRAST["csf"] and t2[3] == pytest.approx(255 * mqb.T2_CONTRAST["white"])


def test_first_seed_starts_the_seeds_there(monkeypatch, tmp_path):
    """--first_seed S --seeds N trains seeds S .. S+N-1 (more seeds for a run made before); a negative S is refused."""
    seen = []
    monkeypatch.setattr(bq.mqb, "build", lambda data, tasks, **kw: {t: {"title": t} for t in tasks})
    monkeypatch.setattr(bq, "run_task", lambda ctx, task, meta: seen.append(list(ctx.seeds)) or {})
    monkeypatch.setattr(bq, "report", lambda *a: None)
    bq.main(["--tasks", "map2d", "--first_seed", "2", "--seeds", "2", "--workdir", str(tmp_path), "--no_docs"])
    assert seen == [[2, 3]]
    with pytest.raises(SystemExit) as e:
        bq.main(["--first_seed", "-1", "--workdir", str(tmp_path)])
    assert e.value.code == 2
