"""The pages people look at, opened in headless Chromium and used as a user would (clicks, keys, wheel): the results
page (2D and 3D), the runs index, the comparison page and the training curves. Every page loads with no console
error and no request outside file://; a crafted file name shows as text; a page of 2,000 images loads only what is
on screen. Screenshots go to $REVGAN_SCREENS (or the test's temporary folder)."""
import json
import math
import os
import re
import shutil
import time
import zlib
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

import test as test_script
import train as train_script
from tests.conftest import tiny_flags, vol_flags
from util import compare
from util.pages import slices
from util.pages.html import script_json
from util.pages.results import write_results_page
from util.results import MAE, PSNR, Result, Results, summarize

MARKUP = '<img src=x onerror="window.pwned=1">&amp;'


def shot(browser, name, tmp_path, full_page=True):
    folder = Path(os.environ.get("REVGAN_SCREENS") or tmp_path)
    if full_page:
        browser.evaluate("window.scrollTo(0, 0)", settle=True)
    size = browser.screenshot(folder / f"{name}.png", full_page=full_page)
    assert size > 5000  # a page, not a blank


def rows_of(browser, table_id):
    """The body rows of a table as the browser orders them: [[cell text, ...], ...]."""
    return browser.evaluate(f"""Array.from(document.getElementById({json.dumps(table_id)}).tBodies[0].rows)
        .map(r => Array.from(r.cells).map(c => c.innerText.trim()))""")


def header_col(browser, table_id, text, nth=0):
    """The body column of the ``nth`` sortable header reading ``text``."""
    cols = browser.evaluate(f"""Array.from(document.querySelectorAll('#{table_id} th[data-col]'))
        .filter(th => th.textContent.trim() === {json.dumps(text)}).map(th => +th.dataset.col)""")
    return cols[nth]


def number(text):
    return float(text.replace("−", "-").replace("±", "").replace("+", "").replace("∞", "inf").split()[0])


def _test_flags(root, tmp, name, results, extra=()):
    return ["--dataroot", root, "--name", name, "--model", "paired_revgan", "--checkpoints_dir", str(tmp / "ckpt"),
            "--results_dir", str(results), "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32"] + list(extra)


# -- 2D: two tiny runs, tested, compared -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs2d(demo_root, tmp_path_factory):
    """Two tiny paired RevGAN runs (different seeds, both directions) tested on data with a file named like HTML;
    the second is tested on one image fewer, so the comparison has an unmatched input."""
    tmp = tmp_path_factory.mktemp("runs2d")
    root = tmp / "data"
    shutil.copytree(demo_root, root)
    test_dir = root / "test"
    first = sorted(os.listdir(test_dir))[0]
    os.rename(test_dir / first, test_dir / (MARKUP + ".png"))
    results = tmp / "res"
    n = len(os.listdir(test_dir))
    for name, seed, num in (("runa", "0", n), ("runb", "1", n - 1)):
        train_script.main(tiny_flags(str(root), tmp, name, "paired_revgan", ["--seed", seed, "--two_way"]))
        test_script.main(_test_flags(str(root), tmp, name, results, ["--num_test", str(num)]))
    return SimpleNamespace(results=results, a=results / "runa" / "test_latest", b=results / "runb" / "test_latest",
                           n=n)


def test_results_page_2d_summary_sorting_viewer_and_escaping(runs2d, browser, tmp_path):
    page = browser.inspect(runs2d.a / "index.html", eager=True)
    browser.assert_clean()
    assert not page["pwned"] and MARKUP in page["text"]
    assert not any(i["src"] == "x" for i in page["images"])
    broken = [i["src"] for i in page["images"] if not (i["complete"] and i["naturalWidth"] > 0)]
    assert page["images"] and not broken
    saved = json.load(open(runs2d.a / "metrics.json"))

    # the summary reads at a glance: a row per output; per metric the output, the baseline and the difference
    summary = page["rows"]["metrics-mean"]
    assert summary[0][:1] == ["output"] and summary[1][:3] == ["output", "baseline", "Δ"]
    by_output = {r[0].split()[0]: r[1:] for r in summary[2:]}
    assert set(by_output) == {"fake_B", "fake_A"}
    # which baseline, said in its row: on the demo's colour cast --baseline auto finds the look-up table better
    assert by_output["fake_B"][-1] == "look-up table"
    # what was measured is stated: data range, units, region, baseline (and why auto took it), the error maps' scale
    assert "Images on 0 … 1 (data range 1" in page["text"] and "chosen by --baseline auto" in page["text"]
    assert "Baseline: fake_B: look-up table of the input's colour, fitted on" in page["text"]
    mean = saved["mean"]
    psnr, base, delta = (number(v) for v in by_output["fake_B"][:3])
    assert psnr == pytest.approx(mean["PSNR_fake_B"], abs=0.006)
    assert base == pytest.approx(mean["baseline_PSNR_fake_B"], abs=0.006)
    assert delta == pytest.approx(mean["PSNR_fake_B"] - mean["baseline_PSNR_fake_B"], abs=0.011)

    # only the options that matter for a 2D run; the rest is in test_opt.txt
    options = dict(zip(*[iter(browser.evaluate(
        "Array.from(document.querySelectorAll('#options dt, #options dd')).map(e => e.textContent)"))] * 2))
    assert options["model"] == "paired_revgan" and options["direction"] == "AtoB" and "crop_size" in options
    assert "revgan" in options["generator"] and "patch" not in options and "display_winsize" not in options
    assert "stem unshuffle" in options["generator"]  # the paired default, which a reader of the page cannot guess
    assert json.load(open(runs2d.a / "summary.json"))["mean"] == pytest.approx(mean)

    # sorting: PSNR of fake_B, worst first on the first click, reversed on the second
    col = header_col(browser, "items", "PSNR")
    psnr_of = {r["name"]: r["PSNR_fake_B"] for r in saved["items"]}
    browser.click(f'#items th[data-col="{col}"]')
    names = [r[1] for r in rows_of(browser, "items")]
    assert names == sorted(psnr_of, key=psnr_of.get) and len(names) == runs2d.n
    assert [number(r[col]) for r in rows_of(browser, "items")] == sorted(number(r[col])
                                                                        for r in rows_of(browser, "items"))
    browser.click(f'#items th[data-col="{col}"]')
    assert [r[1] for r in rows_of(browser, "items")] == names[::-1]
    browser.click(f'#items th[data-col="{col}"]')  # worst first again
    shot(browser, "results2d", tmp_path)

    # the viewer: the worst image large beside its input and target, at one zoom, pixel-exact; arrows step in order
    browser.click('#items tbody tr:first-child img[data-label="fake_B"]')
    state = browser.evaluate("""(() => { const v = document.getElementById('viewer'); return {open: !v.hidden,
        title: v.querySelector('.vtitle').textContent, zoom: +v.dataset.zoom,
        imgs: Array.from(v.querySelectorAll('.vinner img')).map(i => ({label: i.dataset.label, w: i.naturalWidth,
          shown: parseFloat(i.style.width), rendering: getComputedStyle(i).imageRendering}))}; })()""")
    assert state["open"] and state["title"] == names[0]
    assert [i["label"] for i in state["imgs"]] == ["real_A", "fake_B", "real_B", "error_fake_B"]
    assert state["zoom"] >= 2 and state["zoom"] == int(state["zoom"])  # 32-pixel images, whole screen pixels each
    assert all(i["shown"] == i["w"] * state["zoom"] and i["rendering"] == "pixelated" for i in state["imgs"])
    shot(browser, "results2d_viewer", tmp_path, full_page=False)
    browser.key("ArrowRight")
    assert browser.evaluate("document.querySelector('.vtitle').textContent") == names[1]
    browser.key("ArrowDown")  # the other translation: B -> A
    assert browser.evaluate("Array.from(document.querySelectorAll('.vinner img')).map(i => i.dataset.label)") == \
        ["real_B", "fake_A", "real_A", "error_fake_A"]
    browser.key("Escape")
    assert browser.evaluate("document.getElementById('viewer').hidden")

    # a fake_A thumbnail opens B -> A (its translation), where ↑ ↓ are offered as they switch translations
    browser.click('#items tbody tr:first-child img[data-label="fake_A"]')
    viewer = browser.evaluate("""(() => { const v = document.getElementById('viewer'); return {
        group: v.querySelector('.vgroup').textContent, keys: !v.querySelector('.vkey-groups').hidden,
        labels: Array.from(v.querySelectorAll('.vinner img')).map(i => i.dataset.label),
        error: v.querySelector('figure.err img').getAttribute('src'),
        bar: v.querySelector('figure.err .cbar').textContent,
        barHeight: v.querySelector('figure.err .cbar canvas').getBoundingClientRect().height,
        imgHeight: v.querySelector('figure.err img').getBoundingClientRect().height}; })()""")
    assert viewer["group"].startswith("B → A") and viewer["keys"]
    assert viewer["labels"] == ["real_B", "fake_A", "real_A", "error_fake_A"]
    scale = json.loads(browser.evaluate("document.getElementById('error-scale').textContent"))["scale"]
    assert viewer["bar"] == f"≥ {scale:g}" + "0" and abs(viewer["barHeight"] - viewer["imgHeight"]) <= 1  # ≥ top, 0
    # the error map is |output - target| of the saved images on the page's one scale, in the page's colours
    row = rows_of(browser, "items")[0][1]
    assert viewer["error"] == f"errors/fake_A/{row}.png" or MARKUP in row
    browser.key("Escape")
    browser.assert_clean()
    from util.pages import errors
    for name in [r["name"] for r in saved["items"]][:2]:
        read = lambda label: np.asarray(Image.open(runs2d.a / "images" / label / f"{name}.png"), np.float32) / 255
        err = np.abs(read("fake_B") - read("real_B")).mean(axis=2)
        expected = np.asarray(errors.colours(), np.uint8)[np.clip(np.round(err / scale * 255), 0, 255).astype(int)]
        assert np.array_equal(np.asarray(Image.open(runs2d.a / "errors" / "fake_B" / f"{name}.png")), expected)
    assert scale == errors.scale(Results.from_json(json.load(open(runs2d.a / "metrics.json"))["results"]))
    assert scale >= 3 * max(mean["MAE_fake_B"], mean["MAE_fake_A"])  # the page's one scale: 3x the largest MAE


def test_results_page_of_one_direction_model_test(runs2d, browser, tmp_path):
    """--model test: one direction, labels "real" and "fake", no targets: the page says so, and the viewer shows
    the input beside the output."""
    root = str(runs2d.results.parent / "data")
    test_script.main(_test_flags(root, runs2d.results.parent, "runa", tmp_path / "res",
                                 ["--model", "test", "--dataset_mode", "single", "--dataroot", root + "/test"]))
    folder = next((tmp_path / "res" / "runa").iterdir())
    page = browser.inspect(folder / "index.html", eager=True)
    browser.assert_clean()
    assert "no metrics" in page["text"] and not page["pwned"] and MARKUP in page["text"]
    assert all(i["naturalWidth"] > 0 for i in page["images"])
    html = (folder / "index.html").read_text()
    local = {unquote(h) for h in re.findall(r'href="([^"#:]+)"', html) if not h.startswith("..")}
    assert "test_opt.txt" in local and "metrics.csv" not in local  # none written without targets
    assert all((folder / h).is_file() for h in local), [h for h in local if not (folder / h).is_file()]
    browser.click('#items tbody tr:first-child img[data-label="fake"]')
    assert browser.evaluate("Array.from(document.querySelectorAll('.vinner img')).map(i => i.dataset.label)") == \
        ["real", "fake"]
    browser.key("Escape")
    assert json.load(open(folder / "summary.json"))["model"] == "test"


def test_runs_index_lists_every_run_and_is_rebuilt_from_summaries(runs2d, browser, tmp_path):
    index = runs2d.results / "index.html"
    page = browser.inspect(index)
    browser.assert_clean()
    rows = rows_of(browser, "runs")
    assert sorted(r[1].split("\n")[0] for r in rows) == ["runa", "runb"]
    assert all(r[2] == "paired_revgan · 2D" and r[3] == "AtoB" for r in rows)
    links = browser.evaluate("Array.from(document.querySelectorAll('#runs a.result')).map(a => a.href)")
    assert sorted(links) == sorted(Path(p / "index.html").resolve().as_uri() for p in (runs2d.a, runs2d.b))
    training = browser.evaluate("Array.from(document.querySelectorAll('#runs a.training')).map(a => a.href)")
    assert sorted(training) == sorted((runs2d.results.parent / "ckpt" / n / "web" / "index.html").resolve().as_uri()
                                      for n in ("runa", "runb"))
    mean_b = json.load(open(runs2d.b / "metrics.json"))["mean"]
    row_b = next(r for r in rows if r[1].startswith("runb"))
    col = header_col(browser, "runs", "PSNR")
    assert number(row_b[col]) == pytest.approx(mean_b["PSNR_fake_B"], abs=0.006)
    # ticking two runs gives the command that compares them
    for box in browser.evaluate("Array.from(document.querySelectorAll('input.pick')).map((b, i) => i)"):
        browser.click(f"#runs tbody tr:nth-child({box + 1}) input.pick")
    cmd = browser.evaluate("document.getElementById('compare-cmd').textContent")
    assert cmd.startswith("python -m util.compare ") and "runa" in cmd and "runb" in cmd
    shot(browser, "runs_index", tmp_path)
    for box in browser.evaluate("Array.from(document.querySelectorAll('input.pick')).map((b, i) => i)"):
        browser.click(f"#runs tbody tr:nth-child({box + 1}) input.pick")  # untick both

    # rebuilt from the summary.json files alone, without running anything (the training pages' links too)
    before = page["rows"]["runs"]
    os.remove(index)
    assert compare.main(["--index", str(runs2d.results)]) == 0
    assert browser.inspect(index)["rows"]["runs"] == before


def test_runs_index_compares_the_ticked_runs_in_the_page(runs2d, browser, tmp_path):
    """Ticking two runs and one click: each input with both runs' outputs side by side, per-image metrics and their
    differences from the first run ticked, sortable, the viewer on a click; the inputs not in both are listed."""
    browser.open(runs2d.results / "index.html")
    assert browser.evaluate("document.getElementById('compare-go').disabled")
    rows = rows_of(browser, "runs")
    order = [r[1].split("\n")[0] for r in rows]
    for name in ("runa", "runb"):  # runa ticked first: the reference
        browser.click(f"#runs tbody tr:nth-child({order.index(name) + 1}) input.pick")
    browser.click("#compare-go")
    assert not browser.evaluate("document.getElementById('compare').hidden")
    a = {r["name"]: r for r in json.load(open(runs2d.a / "metrics.json"))["items"]}
    b = {r["name"]: r for r in json.load(open(runs2d.b / "metrics.json"))["items"]}
    rows = rows_of(browser, "cmp-fake_B")
    assert sorted(r[1] for r in rows) == sorted(b)  # matched by name (runb was tested on one image fewer)
    heads = browser.evaluate("Array.from(document.querySelectorAll('#cmp-fake_B thead tr:first-child th'))"
                             ".map(t => t.textContent.trim())")
    assert heads[:6] == ["#", "name", "input", "runa", "runb", "target"]
    text = browser.evaluate("document.getElementById('compare').innerText")
    assert "Not in every run (1)" in text and sorted(set(a) - set(b))[0] in text
    col = header_col(browser, "cmp-fake_B", "Δ runb")  # PSNR of runb minus runa, worst first
    browser.click(f'#cmp-fake_B th[data-col="{col}"]')
    deltas = {n: b[n]["PSNR_fake_B"] - a[n]["PSNR_fake_B"] for n in b}
    rows = rows_of(browser, "cmp-fake_B")
    assert [r[1] for r in rows] == sorted(deltas, key=deltas.get)
    assert [number(r[col]) for r in rows] == pytest.approx(sorted(deltas.values()), abs=0.006)
    psnr_a = header_col(browser, "cmp-fake_B", "runa")
    assert [number(r[psnr_a]) for r in rows] == pytest.approx([a[r[1]]["PSNR_fake_B"] for r in rows], abs=0.006)
    broken = browser.evaluate("""Array.from(document.querySelectorAll('#compare img')).filter(i => {
        i.loading = 'eager'; return false; }).length""")
    browser.settle()
    assert broken == 0 and browser.evaluate(
        "Array.from(document.querySelectorAll('#compare img')).every(i => i.complete && i.naturalWidth > 0)")
    shot(browser, "runs_index_compare", tmp_path)
    browser.click('#cmp-fake_B tbody tr:first-child img[data-label="run1"]')
    labels = browser.evaluate("Array.from(document.querySelectorAll('.vinner img')).map(i => i.dataset.label)")
    assert labels == ["input", "run0", "run1", "target"]
    assert browser.evaluate("document.querySelector('.vtitle').textContent") == rows[0][1]
    shot(browser, "runs_index_compare_viewer", tmp_path, full_page=False)
    browser.key("Escape")
    browser.assert_clean()


def test_comparison_page_matches_inputs_and_sorts_differences(runs2d, browser, tmp_path):
    out = tmp_path / "cmp"
    assert compare.main([str(runs2d.a), str(runs2d.b), "--out", str(out)]) == 0
    page = browser.inspect(out / "index.html", eager=True)
    browser.assert_clean()
    assert not page["pwned"] and MARKUP in page["text"]
    assert all(i["naturalWidth"] > 0 for i in page["images"])
    assert [r[0] for r in page["rows"]["runs"][2:]] == ["runa", "runb"]  # both runs listed
    a = {r["name"]: r for r in json.load(open(runs2d.a / "metrics.json"))["items"]}
    b = {r["name"]: r for r in json.load(open(runs2d.b / "metrics.json"))["items"]}
    assert len(b) == runs2d.n - 1
    rows = rows_of(browser, "compare-fake_B")
    assert sorted(r[1] for r in rows) == sorted(b)  # matched by name
    missing = sorted(set(a) - set(b))
    assert "Not in every run (1)" in page["text"] and missing[0] in page["text"]
    # each input with every run's output side by side: input, runa, runb, target
    heads = browser.evaluate("Array.from(document.querySelectorAll('#compare-fake_B thead tr:last-child th'))"
                             ".map(t => t.textContent.trim())")
    assert heads[2:6] == ["input", "runa", "runb", "target"]
    # the difference of PSNR (runb - runa), sorted biggest loss first
    col = header_col(browser, "compare-fake_B", "Δ runb")
    browser.click(f'#compare-fake_B th[data-col="{col}"]')
    rows = rows_of(browser, "compare-fake_B")
    deltas = {n: b[n]["PSNR_fake_B"] - a[n]["PSNR_fake_B"] for n in b}
    assert [r[1] for r in rows] == sorted(deltas, key=deltas.get)
    assert [number(r[col]) for r in rows] == pytest.approx(sorted(deltas.values()), abs=0.006)
    browser.click('#compare-fake_B tbody tr:first-child img[data-label="run1"]')
    labels = browser.evaluate("Array.from(document.querySelectorAll('.vinner img')).map(i => i.dataset.label)")
    assert labels == ["input", "run0", "run1", "target"]
    shot(browser, "compare_viewer", tmp_path, full_page=False)
    browser.key("Escape")
    shot(browser, "compare", tmp_path)


def test_compare_needs_result_folders(tmp_path, capsys):
    assert compare.main([str(tmp_path)]) == 2
    assert "two or more" in capsys.readouterr().err
    assert compare.main([str(tmp_path), str(tmp_path / "nope")]) == 2
    assert "result folder" in capsys.readouterr().err
    assert compare.main([str(tmp_path), str(tmp_path / ".")]) == 2
    assert "a result folder is given twice" in capsys.readouterr().err
    assert compare.main(["--index", str(tmp_path / "nowhere")]) == 2
    assert "--index" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()


# -- a page of 2,000 images --------------------------------------------------------------------------------------------
def test_page_of_2000_images_loads_only_what_is_on_screen(tmp_path, browser):
    out = tmp_path / "big" / "test_latest"
    rng = np.random.default_rng(0)
    labels = ("real_A", "fake_B", "real_B")
    for label in labels:
        os.makedirs(out / "images" / label)
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(tmp_path / f"{label}.png")
    items, flat = [], []
    for i in range(2000):
        name = f"img{i:04d}"
        for label in labels:
            os.link(tmp_path / f"{label}.png", out / "images" / label / f"{name}.png")
        items.append({"name": name, "images": {lbl: f"images/{lbl}/{name}.png" for lbl in labels}})
        psnr = float(rng.uniform(15, 30))
        flat.append({"name": name, "MAE_fake_B": 1 / psnr, "PSNR_fake_B": psnr, "SSIM_fake_B": psnr / 40,
                     "baseline_MAE_fake_B": 0.1, "baseline_PSNR_fake_B": 20.0, "baseline_SSIM_fake_B": 0.5})
    rows = {r["name"]: Results.from_flat(r) for r in flat}
    opt = SimpleNamespace(name="big", phase="test", epoch="latest", model="pix2pix", direction="AtoB",
                          checkpoints_dir="ckpt", results_dir=str(tmp_path), num_test=2000, eval=False,
                          preprocess="resize_and_crop", load_size=24, crop_size=24, gpu_ids=[])
    run = {"dims": 2, "outputs": {"fake_B": {"source": "A", "target": "B"}},
           "architecture": {"model": "pix2pix", "netG": "unet_256", "ngf": 64, "input_nc": 3, "output_nc": 3}}
    started = time.time()
    write_results_page(str(out), opt, items, rows, summarize(rows), run)
    written = time.time() - started

    started = time.time()
    browser.open(out / "index.html")
    opened = time.time() - started
    browser.assert_clean()
    images = [u for u in browser.requests if "/images/" in u]
    assert 0 < len(images) < 300, f"{len(images)} of 6000 images were requested at once"
    last = "Array.from(document.querySelectorAll('#items tbody tr:last-child img')).map(i => i.naturalWidth)"
    assert browser.evaluate(last) == [0, 0, 0]  # off screen: not loaded
    assert written < 30 and opened < 15, (written, opened)

    # usable: sorting 2,000 rows is one click
    col = header_col(browser, "items", "PSNR")
    started = time.time()
    browser.click(f'#items th[data-col="{col}"]')
    assert time.time() - started < 5
    first = rows_of(browser, "items")[0][1]
    assert first == min(flat, key=lambda r: r["PSNR_fake_B"])["name"]
    # scrolling to the end loads the images there, still not all of them
    browser.evaluate("window.scrollTo(0, document.body.scrollHeight)", settle=True)
    assert all(w > 0 for w in browser.evaluate(last))
    assert len([u for u in browser.requests if "/images/" in u]) < 600
    browser.assert_clean()


# -- 3D: the slice browser ---------------------------------------------------------------------------------------------
def _volumes_page(tmp_path, name="vol"):
    """A synthetic 3D results folder: an input, an output and a target whose voxel values are known."""
    out = tmp_path / "vol" / "test_latest"
    shape = (20, 24, 28)
    i, j, k = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    window = (-1000.0, 1000.0)
    lo, hi = window
    units = {"real_A": -900 + 40 * i + 20 * j + 10 * k, "fake_B": -800 + 30 * i + 25 * j + 15 * k,
             "real_B": -700 + 20 * i + 30 * j + 20 * k}
    affine = np.diag([1.5, 1.0, 1.0, 1.0])  # RAS; anisotropic
    like = nib.Nifti1Image(np.zeros(shape, np.float32), affine)
    item = {"name": name, "images": {}, "volumes": {}}
    for label, vol in units.items():
        item["volumes"][label] = slices.write(str(out), name, label, (np.clip(vol, lo, hi) - lo) / (hi - lo) * 2 - 1,
                                              window, like)
        rel = f"images/{label}/{name}.png"
        os.makedirs(out / "images" / label, exist_ok=True)
        Image.fromarray(np.zeros((8, 26), np.uint8)).save(out / rel)
        item["images"][label] = rel
    opt = SimpleNamespace(name="vol", phase="test", epoch="latest", model="paired_revgan3d", direction="AtoB",
                          checkpoints_dir="ckpt", num_test=50, eval=True, overlap=0.5, gpu_ids=[], crop_size=256)
    run = {"dims": 3, "outputs": {"fake_B": {"source": "A", "target": "B"}}, "patch_size": [16, 16, 16],
           "intensity": {"A": [lo, hi], "B": [lo, hi]}, "architecture": {"model": "paired_revgan3d", "netG": "revgan"}}
    rows = {name: Results([Result(MAE, "fake_B", 40.0, data_range=hi - lo), Result(PSNR, "fake_B", 20.0),
                           Result(MAE, "fake_B", 60.0, region="foreground", data_range=hi - lo)])}
    write_results_page(str(out), opt, [item], rows, summarize(rows), run)
    return out, units, item["volumes"], (lo, hi)


def _browser_state(browser):
    return browser.evaluate("""(() => { const S = window.RevGAN.slices; const c = document.querySelector(
        '#s-grid canvas[data-view="axial"][data-label]');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let sum = 0; for (let i = 0; i < px.length; i += 4) sum += px[i];
        return {cursor: S.cursor.slice(), loaded: !!S.arrays, slice: +c.dataset.slice, sum,
                canvases: document.querySelectorAll('#s-grid canvas[data-label]').length,
                readout: Object.fromEntries(Array.from(document.querySelectorAll('#s-readout .rv')).map(
                  s => [s.dataset.label, s.lastChild.textContent.trim()])),
                where: document.querySelector('#s-readout .rpos').textContent}; })()""")


def _pixel(browser, view, label, voxel=None):
    """The colour the panel ``label`` of ``view`` shows at ``voxel`` (default: the crosshair), read from its canvas."""
    return browser.evaluate(f"""(() => {{ const S = window.RevGAN.slices, vi = S.views.findIndex(
        v => v.name === {json.dumps(view)}), v = S.views[vi], p = {json.dumps(voxel)} || S.cursor;
        const c = document.querySelector('#s-grid canvas[data-view="{view}"][data-label="{label}"]');
        const r = S.rows[vi], g = {{nc: S.shape[v.c], nr: S.shape[v.r]}};
        const W = S.shape[v.c] * S.spacing[v.c], H = S.shape[v.r] * S.spacing[v.r];
        const s = Math.min(r.cw / W, r.ch / H) * S.zoom[vi], w = W * s, h = H * s;
        const x0 = (r.cw - w) / 2 + S.pan[vi][0], y0 = (r.ch - h) / 2 + S.pan[vi][1];
        const col = v.cf ? g.nc - 1 - p[v.c] : p[v.c], row = v.rf ? g.nr - 1 - p[v.r] : p[v.r];
        const x = Math.floor(x0 + (col + 0.3) / g.nc * w), y = Math.floor(y0 + (row + 0.3) / g.nr * h);
        return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3)); }})()""")


def _wait_loaded(browser):
    for _ in range(100):
        if browser.evaluate("!!(window.RevGAN && window.RevGAN.slices && window.RevGAN.slices.arrays)"):
            return
        time.sleep(0.05)
    raise AssertionError("the slice browser did not load its volumes")


def test_slice_browser_slider_wheel_readout_in_units(tmp_path, browser):
    out, units, vols, (lo, hi) = _volumes_page(tmp_path)
    browser.open(out / "index.html")
    _wait_loaded(browser)
    browser.assert_clean()
    step = (hi - lo) / 255
    state = _browser_state(browser)
    assert state["canvases"] == 12  # axial, coronal and sagittal of input, output, target and the error map
    assert state["cursor"] == [10, 12, 14]
    # the position in millimetres from the affine (diag 1.5, 1, 1)
    assert state["where"].startswith("crosshair") and "15.0, 12.0, 14.0 mm" in state["where"]

    def check_readout(state):
        p = tuple(int(x) for x in state["where"].split("voxel (")[1].split(")")[0].split(", "))
        for label, vol in units.items():
            assert number(state["readout"][label].lstrip("≤≥ ")) == pytest.approx(float(vol[p]),
                                                                              abs=step / 2 + 1e-6)
        return p
    assert check_readout(state) == (10, 12, 14)

    # the axial slider (RAS: the axial normal is the third axis) moves through every slice; readout follows
    browser.evaluate("document.querySelector('#s-grid input[type=range]').focus()")
    browser.key("ArrowRight")
    moved = _browser_state(browser)
    assert moved["slice"] == state["slice"] + 1 == 15 and moved["cursor"] == [10, 12, 15]
    assert moved["sum"] != state["sum"] and moved["readout"] != state["readout"]
    assert check_readout(moved) == (10, 12, 15)
    browser.evaluate("(() => { const r = document.querySelector('#s-grid input[type=range]'); r.value = r.max;"
                     " r.dispatchEvent(new Event('input')); })()")
    assert _browser_state(browser)["slice"] == 27  # the last of 28

    # the wheel over the coronal view steps its slices; the readout shows the voxel under the pointer
    browser.wheel('#s-grid canvas[data-view="coronal"][data-label="fake_B"]', 120)
    wheeled = _browser_state(browser)
    assert wheeled["cursor"][1] == 13 and wheeled["where"].startswith("pointer")
    check_readout(wheeled)
    # a click moves the crosshair, and the other views follow
    x, y = browser.center('#s-grid canvas[data-view="sagittal"][data-label="real_B"]')
    browser.call("Input.dispatchMouseEvent", type="mousePressed", x=x - 20, y=y - 10, button="left", clickCount=1)
    browser.call("Input.dispatchMouseEvent", type="mouseReleased", x=x - 20, y=y - 10, button="left", clickCount=1)
    clicked = _browser_state(browser)
    assert clicked["cursor"][0] == 10 and clicked["cursor"][1:] != wheeled["cursor"][1:]
    assert clicked["slice"] == clicked["cursor"][2]
    browser.move(0, 0)
    shot(browser, "results3d_synthetic", tmp_path)
    browser.assert_clean()
    # uint8 over the window, compressed: the bytes the page says, and the voxels back exactly
    data = open(out / "slices" / "fake_B" / "vol.js").read()
    b64 = data.split('"')[3]
    q = np.frombuffer(zlib.decompress(__import__("base64").b64decode(b64)), np.uint8).reshape(20, 24, 28)
    expected = slices.quantize((np.clip(units["fake_B"], lo, hi) - lo) / (hi - lo) * 2 - 1)
    assert np.array_equal(q, expected) and vols["fake_B"]["bytes"] == len(data)


def _decoded(out, label, name="vol"):
    """The uint8 voxels of a preview file, as the page decodes them."""
    import base64
    data = open(out / "slices" / label / f"{name}.js").read()
    return np.frombuffer(zlib.decompress(base64.b64decode(data.split('"')[3])), np.uint8)


def _mouse(browser, kind, x, y, button="none", modifiers=0, **kw):
    browser.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button=button, modifiers=modifiers,
                 buttons={"left": 1, "right": 2, "middle": 4}.get(button, 0), **kw)


def _drag(browser, start, end, button="left", modifiers=0):
    _mouse(browser, "mouseMoved", *start)
    _mouse(browser, "mousePressed", *start, button=button, modifiers=modifiers, clickCount=1)
    for k in range(1, 5):
        _mouse(browser, "mouseMoved", start[0] + (end[0] - start[0]) * k / 4, start[1] + (end[1] - start[1]) * k / 4,
               button=button, modifiers=modifiers)
    _mouse(browser, "mouseReleased", *end, button=button, modifiers=modifiers, clickCount=1)
    browser.settle(quiet=0.1)


def test_slice_browser_fits_the_screen_zoom_pan_window_flicker_error_map_and_worst_slice(tmp_path, browser):
    """The volume viewer as ITK-SNAP or Papaya users expect it, at 1400x1000: every view in the window with the
    readout above (never over) the images; the error map |output - target| on the page's scale; a click on a view's
    worst slice goes there; Ctrl + wheel zooms about the pointer, Shift-drag pans, right-drag sets window/level,
    presets reset it; F flickers output and target; the large view fills the height; the readout is never stale."""
    out, units, vols, (lo, hi) = _volumes_page(tmp_path)
    browser.open(out / "index.html")
    _wait_loaded(browser)
    browser.assert_clean()
    shape = vols["fake_B"]["shape"]
    q = {label: _decoded(out, label).reshape(shape).astype(int) for label in units}
    S = "window.RevGAN.slices"

    # the whole browser fits the window; the readout sits above the images and covers none
    browser.evaluate("document.getElementById('slices').scrollIntoView()", settle=True)
    boxes = browser.evaluate("""(() => { const r = e => { const b = e.getBoundingClientRect();
        return [b.left, b.top, b.right, b.bottom]; };
        return {readout: r(document.getElementById('s-readout')), height: innerHeight, width: innerWidth,
                canvases: Array.from(document.querySelectorAll('#s-grid canvas[data-label]')).map(r)}; })()""")
    rl, rt, rr, rb = boxes["readout"]
    assert all(b[3] <= boxes["height"] and b[2] <= boxes["width"] for b in boxes["canvases"])
    assert all(b[1] >= rb or b[3] <= rt or b[0] >= rr or b[2] <= rl for b in boxes["canvases"])
    assert min(b[2] - b[0] for b in boxes["canvases"]) > 200  # the panels use the width
    shot(browser, "results3d_browser", tmp_path, full_page=False)

    # the error map at the crosshair: |output - target| of the voxels shown, on the page's one scale
    scale = browser.evaluate("JSON.parse(document.getElementById('s-data').textContent).error.scale")
    assert scale == 0.1  # 3 x the foreground's MAE of 60 over a window of 2000 is 0.09: the next step up
    from util.pages import errors
    p = tuple(browser.evaluate(f"{S}.cursor"))
    diff = abs(q["fake_B"][p] - q["real_B"][p])
    assert _pixel(browser, "axial", "error_fake_B") == errors.colours()[min(255, round(diff / 255 / scale * 255))]
    assert _browser_state(browser)["readout"]["error_fake_B"] == f"{diff * (hi - lo) / 255:.1f}"
    assert browser.evaluate("document.querySelector('#s-grid .cbar').textContent") == "≥ 200" + "0"

    # the worst axial slice (RAS: the axial normal is the array's third axis): one click goes there
    err = np.abs(q["fake_B"] - q["real_B"]).astype(float)
    profile = err.mean(axis=(0, 1)) * (hi - lo) / 255
    browser.click('.sworst[data-view="axial"]')
    k = browser.evaluate(f"{S}.cursor")[2]
    assert profile[k] == pytest.approx(profile.max()) and _browser_state(browser)["slice"] == k
    # and a click on the plot goes to the slice under it
    left, width = browser.evaluate("""(() => { const b = document.querySelector('.sprof[data-view="coronal"]')
        .getBoundingClientRect(); return [b.left, b.width]; })()""")
    y = browser.center('.sprof[data-view="coronal"]')[1]
    browser.call("Input.dispatchMouseEvent", type="mousePressed", x=left + width * 5.5 / shape[1], y=y,
                 button="left", clickCount=1)
    browser.call("Input.dispatchMouseEvent", type="mouseReleased", x=left + width * 5.5 / shape[1], y=y,
                 button="left", clickCount=1)
    assert browser.evaluate(f"{S}.cursor")[1] == 5

    # Ctrl + wheel zooms the view about the pointer: the voxel under it stays under it
    x, y = browser.center('#s-grid canvas[data-view="axial"][data-label="fake_B"]')
    x, y = x + 17, y - 23
    browser.move(x, y)
    under = _browser_state(browser)["where"]
    _mouse(browser, "mouseWheel", x, y, modifiers=2, deltaX=0, deltaY=-120)
    browser.settle(quiet=0.1)
    assert browser.evaluate(f"{S}.zoom[0]") == pytest.approx(1.25)
    assert _browser_state(browser)["where"].split(" ·")[0] == under.split(" ·")[0]
    assert browser.evaluate("document.getElementById('s-zoom').textContent") == "1.25×"
    # Shift-drag pans it, the others stay
    before = browser.evaluate(f"{S}.pan[0].slice()")
    _drag(browser, (x, y), (x + 30, y + 10), modifiers=8)
    assert browser.evaluate(f"{S}.pan[0]") == pytest.approx([before[0] + 30, before[1] + 10])
    assert browser.evaluate(f"{S}.pan[1]") == [0, 0]
    shot(browser, "results3d_zoomed", tmp_path, full_page=False)
    browser.click("#s-fit")
    assert browser.evaluate(f"[{S}.zoom[0], {S}.pan[0]]") == [1, [0, 0]]

    # right-drag: window/level; the target's grey at the crosshair follows it; the preset puts it back
    tx, ty = browser.center('#s-grid canvas[data-view="coronal"][data-label="real_B"]')
    _drag(browser, (tx, ty), (tx - 60, ty - 40), button="right")
    a, b = browser.evaluate(f"{S}.wl")
    assert b - a < 1 and (a, b) != (0, 1) and browser.evaluate("document.getElementById('s-wl').value") == "custom"
    p = tuple(browser.evaluate(f"{S}.cursor"))
    grey = min(255, max(0, round((q["real_B"][p] / 255 - a) / (b - a) * 255)))
    assert _pixel(browser, "coronal", "real_B") == [grey] * 3
    assert browser.evaluate("document.querySelector('#s-readout .rwl').textContent").startswith("window ")
    browser.evaluate("(() => { const s = document.getElementById('s-wl'); s.value = 'full';"
                     " s.dispatchEvent(new Event('change')); })()")
    assert browser.evaluate(f"{S}.wl") == [0, 1] and _pixel(browser, "coronal", "real_B") == [int(q["real_B"][p])] * 3

    # F flickers: the output's place shows the target, and back
    browser.move(tx, ty)
    output = _pixel(browser, "sagittal", "fake_B")
    browser.key("f")
    assert _pixel(browser, "sagittal", "fake_B") == _pixel(browser, "sagittal", "real_B") != output
    assert browser.evaluate("document.getElementById('s-flicker').getAttribute('aria-pressed')") == "true"
    browser.key("f")
    assert _pixel(browser, "sagittal", "fake_B") == output

    # the readout is never stale: over a voxel it says so; off the images (or after the layout changed), the crosshair
    browser.move(tx + 5, ty + 5)
    assert _browser_state(browser)["where"].startswith("pointer")
    drawn = browser.evaluate(f"{S}.place(2).h")  # the sagittal slice's height on screen, three views shown
    browser.evaluate("(() => { const s = document.getElementById('s-view'); s.value = '2';"
                     " s.dispatchEvent(new Event('change')); })()")
    large = browser.evaluate("""Array.from(document.querySelectorAll('#s-grid canvas[data-label]')).map(
        c => [c.dataset.view, c.getBoundingClientRect().top, c.getBoundingClientRect().bottom])""")
    assert {v for v, _, _ in large} == {"sagittal"} and len(large) == 4
    # the panels fill the window's height (in one row or two, whichever shows the slice larger)
    top, bottom = min(t for _, t, _ in large), max(b for _, _, b in large)
    assert bottom - top >= 0.6 * boxes["height"] and browser.evaluate(f"{S}.place(2).h") > 1.5 * drawn
    assert browser.evaluate("document.querySelector('#s-readout .rpos').textContent").startswith("crosshair")
    shot(browser, "results3d_large_sagittal", tmp_path, full_page=False)
    browser.assert_clean()


def test_slice_browser_escapes_names_and_loads_only_the_volume_shown(tmp_path, browser):
    out, units, vols, _ = _volumes_page(tmp_path, name=MARKUP)
    extra = slices.write(str(out), "second", "real_A", np.zeros((4, 4, 4)), (0, 1))
    assert extra["src"] == "slices/real_A/second.js"
    page = browser.inspect(out / "index.html")
    _wait_loaded(browser)
    browser.assert_clean()
    assert not page["pwned"] and MARKUP in page["text"]
    assert browser.evaluate("document.querySelector('#s-case option').textContent") == MARKUP
    loaded = sorted(u.rsplit("/", 1)[1] for u in browser.requests if "/slices/" in u)
    assert len(loaded) == 3 and "second.js" not in loaded
    # a JSON string that holds a closing script tag stays inside its script
    html = f"<!doctype html><script>window.x = {script_json({'n': '</script><script>window.pwned=1</script>'})};" \
           f"</script>"
    (tmp_path / "json.html").write_text(html)
    page = browser.inspect(tmp_path / "json.html")
    assert not page["pwned"] and browser.evaluate("window.x.n") == "</script><script>window.pwned=1</script>"


def test_results_page_3d_end_to_end_values_match_the_nifti(vol_root, tmp_path, browser):
    train_script.main(vol_flags(vol_root, tmp_path, "p3d", "paired_revgan3d", ["--n_epochs_decay", "0", "--two_way"]))
    test_script.main(["--dataroot", vol_root, "--name", "p3d", "--model", "paired_revgan3d", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1"])
    out = tmp_path / "res" / "p3d" / "test_latest"
    page = browser.inspect(out / "index.html")
    _wait_loaded(browser)
    browser.assert_clean()
    text = page["text"]
    assert "Slice browser" in text and "patch" in text and "intensity A" in text and "crop_size" not in text
    assert browser.evaluate("Array.from(document.querySelectorAll('#s-case option')).map(o => o.textContent)") == \
        ["t0", "t1"]
    state = _browser_state(browser)
    assert state["canvases"] == 12
    summary = json.load(open(out / "summary.json"))
    cases = browser.evaluate("window.REVGAN_SLICES.cases[0].volumes.fake_B")
    lo, hi = cases["lo"], cases["hi"]
    fake = nib.load(str(out / "volumes" / "fake_B" / "t0.nii.gz")).get_fdata()
    p = tuple(state["cursor"])
    assert number(state["readout"]["fake_B"].lstrip("≤≥ ")) == pytest.approx(fake[p], abs=(hi - lo) / 510 + 1e-3)
    assert summary["dims"] == 3 and summary["name"] == "p3d"
    # the pointer over the browser: arrow keys step slices and volumes
    browser.move(*browser.center('#s-grid canvas[data-view="axial"][data-label="fake_B"]'))
    before = _browser_state(browser)["cursor"]
    browser.key("ArrowDown")
    after = _browser_state(browser)["cursor"]
    assert sum(a != b for a, b in zip(before, after)) == 1
    browser.key("ArrowRight")
    _wait_loaded(browser)
    assert browser.evaluate("document.getElementById('s-case').value") == "1"
    shot(browser, "results3d", tmp_path)
    # a fake_A thumbnail of the volumes table opens that volume's B -> A translation (its own), not A -> B
    browser.click('#items tbody tr:first-child img[data-label="fake_A"]')
    for _ in range(100):
        if browser.evaluate("window.RevGAN.slices.g === 1 && window.RevGAN.slices.c === 0"):
            break
        time.sleep(0.05)
    assert browser.evaluate("document.getElementById('s-group').selectedOptions[0].textContent") == "B → A"
    assert browser.evaluate("Array.from(document.querySelectorAll('#s-grid canvas[data-view=axial][data-label]'))"
                            ".map(c => c.dataset.label)") == ["real_B", "fake_A", "real_A", "error_fake_A"]
    browser.assert_clean()
    # honest numbers: every voxel and the foreground, each with the data range it used and its baseline
    mean = json.load(open(out / "metrics.json"))
    records = {r["key"]: r for r in mean["results"]}
    assert {"PSNR_foreground_fake_B", "SSIM_foreground_fake_B", "MAE_foreground_fake_A"} <= set(records)
    window = summary["results"][0]["data_range"]
    assert records["PSNR_foreground_fake_B"]["region"] == "foreground" and \
        records["PSNR_foreground_fake_B"]["data_range"] == pytest.approx(window)
    rows = page["rows"]["metrics-mean"][2:]
    assert [r[0].split("\n")[0].split()[-1] for r in rows] == ["voxel", "foreground", "voxel", "foreground"]
    assert "Foreground: the voxels whose target lies above the lowest tenth of its window" in text
    assert f"data range {window:g}" in text
    index = browser.inspect(tmp_path / "res" / "index.html")
    assert [r[1].split("\n")[0] for r in index["rows"]["runs"][2:]] == ["p3d"]
    assert index["rows"]["runs"][2][2] == "paired_revgan3d · 3D"


def test_previews_downsample_large_volumes_and_orient_views():
    vol = np.linspace(-1, 1, 300 * 6 * 4, dtype=np.float32).reshape(300, 6, 4)
    small, factors = slices.downsample(vol, 256)
    assert factors == [2, 1, 1] and small.shape == (150, 6, 4)
    assert np.allclose(small[3], vol[6:8].mean(axis=0))
    ras = slices.views(np.diag([2, 2, 2, 1]))
    assert [(v["name"], v["n"]) for v in ras] == [("axial", 2), ("coronal", 1), ("sagittal", 0)]
    axial = ras[0]  # radiological: anterior at the top, the patient's right on the left
    assert (axial["r"], axial["rf"], axial["c"], axial["cf"]) == (1, True, 0, True)
    las = slices.views(np.diag([-2, 2, 2, 1]))
    assert las[0]["cf"] is False and las[0]["edges"] == ["A", "P", "R", "L"]
    assert slices.views(None)[0]["n"] == 0 and slices.views(None)[0]["edges"] is None
    assert slices.spacing(np.diag([1.5, 2, 3, 1])) == [1.5, 2.0, 3.0]
    background = np.full((64, 64, 64), -1.0, np.float32)
    assert len(slices.encode(slices.quantize(background))) < 64 ** 3 / 100  # flat regions cost next to nothing


# -- the training page -------------------------------------------------------------------------------------------------
def _visualizer(tmp_path, name="curves"):
    from util.visualizer import Visualizer
    opt = SimpleNamespace(checkpoints_dir=str(tmp_path), name=name, display_id=0, no_html=False, display_winsize=64,
                          model="paired_revgan")
    return Visualizer(opt)


def _hover_chart(browser, key, epoch):
    """Moves the pointer over the chart ``key`` at ``epoch``; returns the tooltip's text."""
    find = f"window.RevGAN.curves.charts.find(c => c.c.key === {json.dumps(key)})"
    x, y = browser.evaluate(f"""(() => {{ const c = {find};
        c.canvas.scrollIntoView({{block: 'center'}}); const r = c.canvas.getBoundingClientRect();
        return [r.left + c.X({epoch}), r.top + r.height / 2]; }})()""")
    browser.move(x, y)
    return browser.evaluate(f"""(() => {{ const c = {find};
        return c.tip.hidden ? null : c.tip.innerText; }})()""")


def test_training_curves_one_point_plain_axes_and_validation(tmp_path, browser):
    import matplotlib
    matplotlib.use("Agg")
    from util.pages.training import loss_figure
    fig = loss_figure([{"x": 0.5, "losses": {"G": 1.0, "D": 0.5}, "lr": 2e-4, "memory_mib": 1000.25,
                        "recon": 1e-6}], "one")
    fig.canvas.draw()
    losses = fig.axes[0]
    assert all(len(line.get_xdata()) == 1 and line.get_marker() == "o" for line in losses.lines)  # a dot each
    memory = fig.axes[-1]
    assert memory.get_ylabel() == "peak memory (MiB)"
    labels = [t.get_text() for t in memory.get_yticklabels() if t.get_text()]
    assert memory.yaxis.get_offset_text().get_text() == "" and any(lbl.startswith("10") for lbl in labels), labels
    import matplotlib.pyplot as plt
    plt.close(fig)

    vis = _visualizer(tmp_path)
    for k in range(4):
        vis.plot_current_losses(0.5 * (k + 1), {"G": 1.0 - 0.1 * k, "L1": 40.0 - k}, 2e-4, 1000.0 + k, None)
        if k % 2:
            point = {"x": 0.5 * (k + 1), "val": {"PSNR_fake_B": 20.0 + k, "baseline_PSNR_fake_B": 18.0,
                                                 "SSIM_fake_B": 0.7, "baseline_SSIM_fake_B": 0.6,
                                                 "MAE_fake_B": 0.05, "baseline_MAE_fake_B": 0.07}}
            vis.history.append(point)
            with open(vis.history_path, "a") as f:
                f.write(json.dumps(point) + "\n")
    fig = loss_figure(vis.history, "curves")
    assert [a.get_ylabel() for a in fig.axes][:3] == ["loss (log scale)", "learning rate", "validation\nPSNR (dB)"]
    assert len(fig.axes[2].lines) == 2  # validation PSNR and its copy-the-input baseline
    plt.close(fig)
    import torch
    vis.display_current_results({"real_A": torch.zeros(1, 3, 8, 8), "fake_B": torch.ones(1, 3, 8, 8)}, 1, True)
    vis.load_history(10)  # a page rebuilt from loss_history.jsonl (points without "losses" included)
    page = browser.inspect(tmp_path / "curves" / "web" / "index.html", eager=True)
    browser.assert_clean()
    val = page["rows"]["validation-summary"]
    assert val[2][0] == "fake_B" and number(val[2][1]) == pytest.approx(23.0) and val[2][3] == "+5.00"
    assert "at epoch 2" in page["text"]
    assert all(i["naturalWidth"] > 0 for i in page["images"])
    # the curves, drawn in the page: a chart per loss, the learning rate, memory, validation beside its baseline
    keys = browser.evaluate("window.RevGAN.curves.charts.map(c => c.c.key)")
    assert keys == ["loss_G", "loss_L1", "lr", "memory", "validation"]
    # hover: the mean of the epoch's logged values (epoch 2: x = 1.5 and 2.0), not a single iteration's
    tip = _hover_chart(browser, "loss_G", 2)
    assert tip.startswith("epoch 2") and "mean 0.75 of 2 logged" in tip, tip
    assert "mean 0.95 of 2 logged" in _hover_chart(browser, "loss_G", 1)
    tip = _hover_chart(browser, "validation", 2)
    assert "fake_B: 23" in tip and "copy of the input: 18" in tip, tip
    assert browser.evaluate("window.RevGAN.reloading")  # training runs: the page reloads itself
    shot(browser, "training_validation", tmp_path)
    browser.click('#images img[data-label="fake_B"]')
    assert not browser.evaluate("document.getElementById('viewer').hidden")
    # one group of images: the ↑ ↓ keys (other translation) are not offered
    assert browser.evaluate("document.querySelector('#viewer .vkey-groups').hidden")
    browser.key("Escape")
    browser.assert_clean()

    # training ended: the page says so and stops reloading; one that stopped without a word stops after a while
    vis.finish(2)
    browser.open(tmp_path / "curves" / "web" / "index.html")
    assert not browser.evaluate("window.RevGAN.reloading") and "finished: 2 epochs" in browser.evaluate(
        "document.body.innerText")
    assert "data-reload" not in (tmp_path / "curves" / "web" / "index.html").read_text()
    vis.finished = None
    vis.write_page()
    page = tmp_path / "curves" / "web" / "index.html"
    html = page.read_text()
    assert 'data-reload="60"' in html
    page.write_text(re.sub(r'data-updated="\d+"', f'data-updated="{int(time.time()) - 3600}"', html))
    browser.open(page)
    assert not browser.evaluate("window.RevGAN.reloading")
    assert "training seems to have stopped" in browser.evaluate("document.getElementById('stale').textContent")
    assert "no longer reloading" in browser.evaluate("document.querySelector('header').innerText")
    shot(browser, "training_stale", tmp_path, full_page=False)
    browser.assert_clean()


def test_training_page_says_validation_is_off_by_default(tmp_path, browser):
    vis = _visualizer(tmp_path, "noval")
    vis.plot_current_losses(1.0, {"G": 1.0}, 2e-4, 100.0)
    vis.write_page()
    page = browser.inspect(tmp_path / "noval" / "web" / "index.html")
    browser.assert_clean()
    assert "Validation is off (--val_freq 0, the default)" in page["text"] and "--val_freq N" in page["text"]
    shot(browser, "training_validation_off", tmp_path, full_page=False)
    vis.opt.val_freq = 5
    vis.write_page()
    page = browser.inspect(tmp_path / "noval" / "web" / "index.html")
    assert "Validation runs every 5 epoch(s)" in page["text"] and "after epoch 5" in page["text"]


def test_page_helpers_escape_and_format():
    assert "<" not in script_json({"a": "</script>"}) and json.loads(script_json({"a": "</script>"})) == {
        "a": "</script>"}
    from util.pages.html import fmt, number as js_number, url
    assert url("images/a b/<x>&.png") == "images/a%20b/%3Cx%3E%26.png"
    assert js_number(math.inf) == "Infinity" and js_number(float("nan")) == "" and js_number(None) == ""
    assert fmt(PSNR, 23.456) == "23.46" and fmt(MAE, 0.19) == "0.1900" and fmt(MAE, 45.27) == "45.3"


# -- pages as web files ------------------------------------------------------------------------------------------------
JS = re.compile(r"\bconst \w+\s*=|\bfunction\b[^(]*\([^)]*\)\s*\{|=>|addEventListener|querySelector|\bdocument\.\w+\(|"
                r"\bwindow\.\w+\s*=")
CSS = re.compile(r"\{[^{}]*[a-z-]+\s*:\s*[^;{}]+;[^{}]*\}")  # a rule: { property: value; ... }


def test_style_and_scripts_are_files_inlined_into_each_page(tmp_path):
    """CSS and JavaScript live in util/pages/static (no Python string holds any), every file there is used, and a
    written page carries them inline, so it opens from disk with nothing beside it but its images."""
    import ast

    from util.pages.html import STATIC, asset, document, write_page
    root = Path(__file__).resolve().parent.parent
    sources = [p for p in root.rglob("*.py") if not {"tests", ".venv"} & set(p.relative_to(root).parts)]
    found = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found += [f"{path.relative_to(root)}:{node.lineno}" for p in (JS, CSS) if p.search(node.value)]
    assert not found, f"CSS or JavaScript in Python strings: {found}"
    pages_code = "".join(p.read_text() for p in (root / "util" / "pages").glob("*.py"))
    assets = sorted(os.listdir(STATIC))
    assert {"page.css", "page.js", "slices.css", "slices.js", "runs.js"} <= set(assets)
    assert [a for a in assets if f'"{a}"' not in pages_code] == []
    doc = document("t", styles=("slices.css",))
    html = Path(write_page(doc, str(tmp_path), scripts=("runs.js",))).read_text()
    assert all(asset(a) in html for a in ("page.css", "slices.css", "page.js", "runs.js"))
    assert html.index(asset("page.js")) < html.index(asset("runs.js"))  # shared first, then the page's own
