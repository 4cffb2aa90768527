"""Watching training: a real visdom server, the training and results pages opened in headless Chromium, and the
server being down or going away."""
import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import test as test_script
import train as train_script
from tests.conftest import ROOT, logged_rows, tiny_flags, vol_flags

MARKUP = '<img src=x onerror="window.pwned=1">&amp;'


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def visdom_port(tmp_path_factory):
    """A real visdom server on a free loopback port, started the offline way (no script download)."""
    port = _free_port()
    env_path = tmp_path_factory.mktemp("visdom_env")
    proc = subprocess.Popen([sys.executable, "-m", "util.visdom_server", "-port", str(port), "-env_path",
                             str(env_path), "-logging_level", "WARNING", "-bind_local"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("the visdom server did not start")
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def _window(port, env, win):
    import visdom
    client = visdom.Visdom(port=port, env=env, raise_exceptions=True, use_incoming_socket=False)
    data = json.loads(client.get_window_data(win, env=env))
    assert data, f"window {win} is missing in env {env}"
    return data


def _png(src):
    assert src.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


def test_visdom_dashboard_shows_losses_lr_memory_and_images(demo_root, tmp_path, visdom_port, capsys):
    env = "revgan_test_2d"
    flags = tiny_flags(demo_root, tmp_path, "vis2d", "unpaired_revgan", [
        "--display_id", "1", "--display_port", str(visdom_port), "--display_server", "127.0.0.1",
        "--display_env", env, "--display_freq", "1", "--display_ncols", "3",
        "--no_residual", "--lambda_identity", "0.5"])  # identity visuals (--no_residual's default; typed to be sure)
    train_script.main(flags)
    assert "visdom" not in capsys.readouterr().err
    logged = logged_rows(tmp_path / "ckpt" / "vis2d" / "loss_log.txt")
    assert len(logged) == 6  # 3 images x 2 epochs, printed every image

    recon = [row.pop("recon_err") for row in logged]  # the reversible core's reconstruction monitor
    assert all(0 < r < 1e-5 for r in recon)  # float32 rounding: tiny, but measured (not a constant)
    losses = _window(visdom_port, env, "1")
    traces = {t["name"]: t for t in losses["content"]["data"]}
    assert set(traces) == set(logged[0])
    for name, trace in traces.items():  # the plotted values are the logged ones
        np.testing.assert_allclose(trace["y"], [row[name] for row in logged], rtol=1e-5)
        np.testing.assert_allclose(trace["x"], [1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2], rtol=1e-6)

    lr = _window(visdom_port, env, "2")["content"]["data"][0]
    np.testing.assert_allclose(lr["y"], [2e-4] * 3 + [1e-4] * 3)  # linear decay over 1 + 1 epochs
    memory = _window(visdom_port, env, "3")["content"]["data"][0]["y"]
    assert len(memory) == 6 and all(m > 10 for m in memory) and memory == sorted(memory)

    recon_window = _window(visdom_port, env, "4")["content"]["data"][0]["y"]
    np.testing.assert_allclose(recon_window, recon, rtol=1e-3)  # loss_log.txt has 4 significant digits

    images = _window(visdom_port, env, "5")
    labels = ["real_A", "fake_B", "rec_A", "idt_B", "real_B", "fake_A", "rec_B", "idt_A"]
    assert images["title"].endswith(" | ".join(labels))
    grid = _png(images["content"]["src"])
    # 8 images of 32x32 in rows of 3, each cell padded by 2 pixels on every side: 3 rows
    assert grid.shape[:2] == (3 * 36, 3 * 36)
    assert grid.std() > 5  # real pictures, not a blank canvas


def test_visdom_shows_volume_mid_slices(vol_root, tmp_path, visdom_port):
    env = "revgan_test_3d"
    flags = vol_flags(vol_root, tmp_path, "vis3d", "paired_revgan3d", [
        "--display_id", "1", "--display_port", str(visdom_port), "--display_env", env, "--display_freq", "1",
        "--n_epochs_decay", "0", "--two_way"])
    train_script.main(flags)
    images = _window(visdom_port, env, "5")
    assert images["title"].endswith("real_A | fake_B | real_B | fake_A")
    grid = _png(images["content"]["src"])
    # each picture: axial, coronal and sagittal mid-slices of a 16^3 patch side by side (16 x (3*16 + 4))
    assert grid.shape[:2] == (16 + 4, 4 * (16 * 3 + 4 + 4))


def test_server_down_costs_one_warning(demo_root, tmp_path, capsys):
    port = _free_port()  # nothing listens there
    flags = tiny_flags(demo_root, tmp_path, "down", "paired_revgan", ["--display_id", "1", "--display_port",
                                                                      str(port), "--display_freq", "1"])
    train_script.main(flags)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "visdom" in line]
    assert len(warnings) == 1, err
    assert f"python -m util.visdom_server -port {port}" in warnings[0] and "--display_id 0" in warnings[0]
    assert os.path.exists(tmp_path / "ckpt" / "down" / "latest.pth")


def test_visdom_not_installed_costs_one_warning(demo_root, tmp_path, capsys, monkeypatch):
    """visdom is optional (requirements-visdom.txt): without it training warns once and goes on."""
    monkeypatch.setitem(sys.modules, "visdom", None)  # makes `import visdom` raise ImportError
    flags = tiny_flags(demo_root, tmp_path, "novisdom", "paired_revgan", ["--display_id", "1", "--display_freq", "1"])
    train_script.main(flags)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "visdom" in line]
    assert len(warnings) == 1 and "not installed" in warnings[0] and "requirements-visdom.txt" in warnings[0], err
    assert os.path.exists(tmp_path / "ckpt" / "novisdom" / "latest.pth")
    with pytest.raises(SystemExit) as exit_info:
        from util import visdom_server
        visdom_server.main(["-port", "1"])
    assert exit_info.value.code == 2 and "not installed" in capsys.readouterr().err


def test_server_going_away_during_training_costs_one_warning(tmp_path, capsys):
    from types import SimpleNamespace

    import torch

    from util.visualizer import Visualizer
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "util.visdom_server", "-port", str(port), "-env_path",
                             str(tmp_path / "env"), "-bind_local"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        opt = SimpleNamespace(checkpoints_dir=str(tmp_path), name="away", display_id=1, display_port=port,
                              display_server="localhost", display_env="away", display_ncols=2, no_html=False,
                              display_winsize=64, model="paired_revgan")
        vis = Visualizer(opt)
        assert vis.vis is not None
        vis.plot_current_losses(0.5, {"G": 1.0}, 1e-3, 100.0)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for k in range(3):
        vis.plot_current_losses(1 + k, {"G": 0.5}, 1e-3, 100.0)
        vis.display_current_results({"real_A": torch.zeros(1, 3, 8, 8)}, 1 + k, save_result=True)
    err = capsys.readouterr().err
    assert err.count("warning: visdom: lost the server") == 1, err
    assert len(vis.history) == 4 and os.path.exists(tmp_path / "away" / "web" / "loss_curve.png")


# -- pages in a real browser ----------------------------------------------------------------------------------------
def _all_loaded(page):
    assert page["images"], "the page shows no images"
    broken = [i["src"] for i in page["images"] if not (i["complete"] and i["naturalWidth"] > 0)]
    assert not broken, f"images that did not load: {broken}"


def test_training_page_in_chromium(demo_root, tmp_path, browser):
    flags = tiny_flags(demo_root, tmp_path, "page", "unpaired_revgan", ["--n_epochs_decay", "2"])
    train_script.main(flags)
    web = tmp_path / "ckpt" / "page" / "web"
    page = browser.inspect(web / "index.html", eager=True)  # lazy thumbnails: every one asked to load
    browser.assert_clean()
    _all_loaded(page)
    assert (web / "loss_curve.png").exists() and "curves as PNG" in page["text"]
    header, *rows = page["rows"]["images"]
    assert [r[0] for r in rows] == ["epoch 3", "epoch 2", "epoch 1"]  # newest first
    # the same sample every epoch (from the training data: no validation here), translated both ways and back
    labels = ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
    assert header[1:] == labels
    assert [i["src"] for i in page["images"][:6]] == [f"images/epoch003_{lbl}.png" for lbl in labels]
    assert "The same image every epoch" in page["text"] and "from the training data" in page["text"]
    reals = [np.asarray(Image.open(web / "images" / f"epoch00{e}_real_A.png")) for e in (1, 2, 3)]
    fakes = [np.asarray(Image.open(web / "images" / f"epoch00{e}_fake_B.png")) for e in (1, 2, 3)]
    assert all(np.array_equal(reals[0], r) for r in reals) and reals[0].std() > 10  # fixed, and not blank
    assert not np.array_equal(fakes[0], fakes[2])  # the model changed
    assert "finished: 3 epochs" in page["text"]
    # the curves' epoch means are the means of every step (here each one is logged: --print_freq 1)
    rows = logged_rows(tmp_path / "ckpt" / "page" / "loss_log.txt")
    history = [json.loads(line) for line in open(tmp_path / "ckpt" / "page" / "loss_history.jsonl")]
    means = [p for p in history if "epoch_means" in p]
    assert [(p["x"], p["steps"]) for p in means] == [(1.0, 3), (2.0, 3), (3.0, 3)]
    for k, p in enumerate(means):
        assert p["epoch_means"]["G_A"] == pytest.approx(np.mean([r["G_A"] for r in rows[3 * k:3 * k + 3]]), abs=1e-5)
    tip = browser.evaluate("""(() => { const c = window.RevGAN.curves.charts.find(c => c.c.key === 'loss_G_A');
        return window.RevGAN.curves.values(c, 2)[1][0][1]; })()""")
    assert tip.startswith(f"mean {means[1]['epoch_means']['G_A']:.4g}"[:9]) and "of 3 steps" in tip, tip
    # the check can fail: a missing picture is reported
    os.remove(web / "images" / "epoch002_fake_B.png")
    with pytest.raises(AssertionError, match="epoch002_fake_B"):
        _all_loaded(browser.inspect(web / "index.html", eager=True))

    # resuming keeps earlier epochs and the curve's earlier points
    points = len(open(tmp_path / "ckpt" / "page" / "loss_history.jsonl").readlines())
    train_script.main(flags + ["--n_epochs_decay", "3", "--continue_train"])  # the last value wins
    page = browser.inspect(web / "index.html")
    assert [r[0] for r in page["rows"]["images"][1:]][:2] == ["epoch 4", "epoch 3"]
    # one more epoch: its 3 logged steps and its mean
    assert len(open(tmp_path / "ckpt" / "page" / "loss_history.jsonl").readlines()) == points + 4


def test_volume_training_page_shows_mid_slices(vol_root, tmp_path, browser):
    train_script.main(vol_flags(vol_root, tmp_path, "page3d", "unpaired_revgan3d"))
    page = browser.inspect(tmp_path / "ckpt" / "page3d" / "web" / "index.html", eager=True)
    browser.assert_clean()
    _all_loaded(page)
    widths = {i["alt"]: i["naturalWidth"] for i in page["images"]}
    assert set(widths) == {"real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"}
    assert set(widths.values()) == {16 * 3 + 4}
    # a fixed patch around the centre of the volume's foreground: never all background (-1 is black)
    web = tmp_path / "ckpt" / "page3d" / "web" / "images"
    for epoch in (1, 2):
        real = np.asarray(Image.open(web / f"epoch00{epoch}_real_A.png"), np.float32)
        assert (real > 25).mean() > 0.3  # the mid-slices are mostly inside the head
    assert np.array_equal(np.asarray(Image.open(web / "epoch001_real_B.png")),
                          np.asarray(Image.open(web / "epoch002_real_B.png")))


def test_results_page_in_chromium_escapes_markup_names(demo_root, tmp_path, browser):
    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    test_dir = root / "test"
    first = sorted(os.listdir(test_dir))[0]
    os.rename(test_dir / first, test_dir / (MARKUP + ".png"))
    n_items = len(os.listdir(test_dir))
    flags = tiny_flags(str(root), tmp_path, "results", "paired_revgan", ["--two_way"])  # both outputs on the page
    train_script.main(flags)
    test_script.main(["--dataroot", str(root), "--name", "results", "--model", "paired_revgan", "--checkpoints_dir",
                      str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1",
                      "--load_size", "32", "--crop_size", "32"])
    page = browser.inspect(tmp_path / "res" / "results" / "test_latest" / "index.html", eager=True)
    browser.assert_clean()
    _all_loaded(page)
    assert len(page["images"]) == n_items * 4  # real_A, fake_B, real_B, fake_A of every item
    assert not page["pwned"] and not any(i["src"] == "x" for i in page["images"])
    assert MARKUP in page["text"]  # the name shows as text
    assert {"metrics-mean", "items"} <= set(page["tables"])
    mean = page["rows"]["metrics-mean"]  # a row per output: output, baseline, difference per metric; the baseline
    assert [r[0].split()[0] for r in mean[2:]] == ["fake_B", "fake_A"]
    assert all(float(v.replace("−", "-")) == float(v.replace("−", "-")) for r in mean[2:] for v in r[1:-1])
    assert all(r[-1] == "look-up table" for r in mean[2:])  # --baseline auto: better than the copy on these pairs
    names = [r[1] for r in page["rows"]["items"][2:]]
    assert MARKUP in names and len(names) == n_items
    assert "Options that matter for this run" in page["text"]
