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
from util.results import MAE, PSNR, Results, summarize

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
    """Two tiny paired RevGAN runs (different seeds) tested on data with a file named like HTML; the second is
    tested on one image fewer, so the comparison has an unmatched input."""
    tmp = tmp_path_factory.mktemp("runs2d")
    root = tmp / "data"
    shutil.copytree(demo_root, root)
    test_dir = root / "test"
    first = sorted(os.listdir(test_dir))[0]
    os.rename(test_dir / first, test_dir / (MARKUP + ".png"))
    results = tmp / "res"
    n = len(os.listdir(test_dir))
    for name, seed, num in (("runa", "0", n), ("runb", "1", n - 1)):
        train_script.main(tiny_flags(str(root), tmp, name, "paired_revgan", ["--seed", seed]))
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

    # the summary reads at a glance: a row per output; per metric the output, the copy of the input and the difference
    summary = page["rows"]["metrics-mean"]
    assert summary[0][:1] == ["output"] and summary[1][:3] == ["output", "copy of input", "Δ"]
    by_output = {r[0].split()[0]: r[1:] for r in summary[2:]}
    assert set(by_output) == {"fake_B", "fake_A"}
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
    assert [i["label"] for i in state["imgs"]] == ["real_A", "fake_B", "real_B"]
    assert state["zoom"] >= 2 and state["zoom"] == int(state["zoom"])  # 32-pixel images, whole screen pixels each
    assert all(i["shown"] == i["w"] * state["zoom"] and i["rendering"] == "pixelated" for i in state["imgs"])
    shot(browser, "results2d_viewer", tmp_path, full_page=False)
    browser.key("ArrowRight")
    assert browser.evaluate("document.querySelector('.vtitle').textContent") == names[1]
    browser.key("ArrowDown")  # the other translation: B -> A
    assert browser.evaluate("Array.from(document.querySelectorAll('.vinner img')).map(i => i.dataset.label)") == \
        ["real_B", "fake_A", "real_A"]
    browser.key("Escape")
    assert browser.evaluate("document.getElementById('viewer').hidden")
    browser.assert_clean()


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
    links = browser.evaluate("Array.from(document.querySelectorAll('#runs a')).map(a => a.href)")
    assert sorted(links) == sorted(Path(p / "index.html").resolve().as_uri() for p in (runs2d.a, runs2d.b))
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

    # rebuilt from the summary.json files alone, without running anything
    before = page["rows"]["runs"]
    os.remove(index)
    assert compare.main(["--index", str(runs2d.results)]) == 0
    assert browser.inspect(index)["rows"]["runs"] == before


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
    rows = {name: Results.from_flat({"MAE_fake_B": 1.0, "PSNR_fake_B": 20.0, "SSIM_fake_B": 0.5})}
    write_results_page(str(out), opt, [item], rows, summarize(rows), run)
    return out, units, item["volumes"], (lo, hi)


def _browser_state(browser):
    return browser.evaluate("""(() => { const S = window.RevGAN.slices; const c = document.querySelector(
        '#s-grid canvas[data-view="axial"]');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let sum = 0; for (let i = 0; i < px.length; i += 4) sum += px[i];
        return {cursor: S.cursor.slice(), loaded: !!S.arrays, slice: +c.dataset.slice, sum,
                canvases: document.querySelectorAll('#s-grid canvas').length,
                readout: Object.fromEntries(Array.from(document.querySelectorAll('#s-readout .rv')).map(
                  s => [s.dataset.label, s.lastChild.textContent.trim()])),
                where: document.querySelector('#s-readout .rpos').textContent}; })()""")


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
    assert state["canvases"] == 9  # axial, coronal and sagittal of input, output and target
    assert state["cursor"] == [10, 12, 14]

    def check_readout(state):
        p = tuple(state["where"].split("(")[1].rstrip(")").split(", "))
        p = tuple(int(x) for x in p)
        for label, vol in units.items():
            assert number(state["readout"][label].lstrip("≤≥ ")) == pytest.approx(float(vol[p]), abs=step / 2 + 1e-6)
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
    assert wheeled["cursor"][1] == 13 and "under the cursor" in wheeled["where"]
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
    train_script.main(vol_flags(vol_root, tmp_path, "p3d", "paired_revgan3d", ["--n_epochs_decay", "0"]))
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
    assert state["canvases"] == 9
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
    browser.assert_clean()
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


def test_training_curves_one_point_plain_axes_and_validation(tmp_path, browser):
    import matplotlib
    matplotlib.use("Agg")
    from util.visualizer import loss_figure
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
    shot(browser, "training_validation", tmp_path)
    browser.click('#images img[data-label="fake_B"]')
    assert not browser.evaluate("document.getElementById('viewer').hidden")
    browser.key("Escape")


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
