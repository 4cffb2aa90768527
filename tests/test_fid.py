"""FID and KID plumbing (test.py --fid, validation by --val_metric FID_...), run offline: the feature network is a
small stand-in (per-channel means and a 4x4 pooled grid: 51 numbers per image), so the numbers here are NOT FID/KID;
they are checked against an independent computation on the stand-in's features. The standard InceptionV3 path is
checked for its error lines (no weights and no internet, a missing file, missing packages) and, with a weights file
of the right architecture but random values, for loading and 2048-d features. Nothing is downloaded."""
import json
import os
import shutil
import sys
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg

import test as test_script
import train as train_script
from evaluation import fid
from tests.conftest import tiny_flags
from tests.test_translate import FIXTURES, run_folder
from tests.test_user_errors import one_line_failure


def stand_in_features(images):
    """uint8 (N, 3, H, W) -> (N, 51): channel means and a 4x4 average-pooled grey image (a stand-in, not FID)."""
    x = images.double() / 255
    grid = torch.nn.functional.adaptive_avg_pool2d(x.mean(1, keepdim=True), 4).flatten(1)
    return torch.cat([x.mean((2, 3)), grid, x.std((2, 3))], 1)


@pytest.fixture()
def stand_in(monkeypatch):
    monkeypatch.setattr(fid, "feature_network", lambda weights=None: fid.FeatureNetwork(
        "stand-in (tests only)", stand_in_features, 51))


def frechet(a, b):
    """FID's formula on feature sets, written out with scipy."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def mmd(x, y):
    """KID's unbiased polynomial-kernel MMD^2 (degree 3, gamma 1/D, coef 1) of whole sets."""
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * k(x, y).mean())


def unpaired_data(tmp_path):
    """The fixture's test images, B under other names: unpaired (no true targets)."""
    data = tmp_path / "data"
    for side in "AB":
        os.makedirs(data / f"test{side}", exist_ok=True)
        for f in os.listdir(os.path.join(FIXTURES, "unpaired2d", f"real_{side}")):
            shutil.copy(os.path.join(FIXTURES, "unpaired2d", f"real_{side}", f), data / f"test{side}" / (
                f if side == "A" else "b_" + f))
    return data


def feats(folder):
    return np.concatenate([stand_in_features(torch.from_numpy(np.asarray(Image.open(os.path.join(folder, f)).convert(
        "RGB")).transpose(2, 0, 1).copy())[None]).numpy() for f in sorted(os.listdir(folder))])


def test_unpaired_data_is_unpaired(tmp_path):
    assert sorted(os.listdir(unpaired_data(tmp_path) / "testB"))[0].startswith("b_")


def test_fid_and_kid_of_test_py_on_unpaired_images(tmp_path, stand_in, capsys):
    folder = run_folder(tmp_path, "unpaired2d")
    test_script.main(["--dataroot", str(unpaired_data(tmp_path)), "--name", "unpaired2d", "--model",
                      "unpaired_revgan", "--checkpoints_dir", str(folder.parent), "--results_dir",
                      str(tmp_path / "res"), "--gpu_ids", "-1", "--preprocess", "none", "--fid"])
    out = capsys.readouterr().out
    assert "stand-in (tests only); fake_B: 3 outputs against 3 real B images" in out
    assert "fewer than 50 images" in out and "fake_B: FID " in out and "KID " in out and " ± " in out
    res = tmp_path / "res" / "unpaired2d" / "test_latest"
    mean = json.load(open(res / "metrics.json"))["mean"]
    images = res / "images"
    for label, source, target in (("fake_B", "real_A", "real_B"), ("fake_A", "real_B", "real_A")):
        fake, real, inputs = feats(images / label), feats(images / target), feats(images / source)
        assert mean[f"FID_{label}"] == pytest.approx(frechet(real, fake), rel=1e-6, abs=1e-9)
        assert mean[f"baseline_FID_{label}"] == pytest.approx(frechet(real, inputs), rel=1e-6, abs=1e-9)
        # 3 images: every subset of 3 is the whole set, so KID is the MMD of the sets and its spread 0
        assert mean[f"KID_{label}"] == pytest.approx(mmd(real, fake), rel=1e-6, abs=1e-9)
        assert mean[f"KID_{label}_std"] == pytest.approx(0, abs=1e-9)
    assert "cycle_MAE_A" in mean  # the cycle error as before
    summary = json.load(open(res / "summary.json"))
    kid = next(r for r in summary["results"] if r["key"] == "KID_fake_B")
    assert kid["std"] == pytest.approx(0, abs=1e-9) and kid["higher_is_better"] is False
    page = open(res / "index.html").read()
    assert "FID" in page and "KID" in page and " ± " in page  # the summary table: value ± std, baseline, difference


def test_fid_and_kid_compare_with_the_baseline_of_the_other_metrics(demo_root, tmp_path, stand_in, monkeypatch):
    """--fid beside --baseline: lut compares the look-up table's outputs of the inputs with the real targets (the
    summary row then names one baseline for every metric), mean the mean target colour everywhere; none has no FID
    baseline."""
    from evaluation import baselines
    chosen = {}

    def keep(*args, **kwargs):
        chosen.update(real_for_test(*args, **kwargs))
        return chosen
    real_for_test = baselines.for_test
    monkeypatch.setattr(baselines, "for_test", keep)
    folder = run_folder(tmp_path, "paired2d")
    common = ["--dataroot", str(demo_root), "--name", "paired2d", "--model", "paired_revgan", "--checkpoints_dir",
              str(folder.parent), "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32", "--eval", "--fid"]
    test_script.main(common + ["--results_dir", str(tmp_path / "lut"), "--baseline", "lut"])
    res = tmp_path / "lut" / "paired2d" / "test_latest"
    mean = json.load(open(res / "metrics.json"))["mean"]
    images = res / "images"
    real = feats(images / "real_B")
    sources = [np.asarray(Image.open(images / "real_A" / f).convert("RGB"), np.float64).transpose(2, 0, 1) / 255
               for f in sorted(os.listdir(images / "real_A"))]
    table = chosen["fake_B"]
    assert table.kind == "lut"
    predicted = torch.cat([stand_in_features(fid.as_uint8(torch.from_numpy(table(x) * 2 - 1)[None])) for x in sources])
    # (the PNG's values in float64 here, the loader's float32 there: a pixel on a bin's edge may fall either way)
    assert mean["baseline_FID_fake_B"] == pytest.approx(frechet(real, predicted.numpy()), rel=1e-3)
    assert mean["baseline_FID_fake_B"] < frechet(real, feats(images / "real_A")) / 10  # not the copy's
    records = {r["key"]: r for r in json.load(open(res / "summary.json"))["results"]}
    assert {records[k]["baseline_kind"] for k in ("PSNR_fake_B", "FID_fake_B", "KID_fake_B")} == {"lut"}
    # mean: the mean target colour everywhere, for every metric (its FID: of identical images, finite)
    test_script.main(common + ["--results_dir", str(tmp_path / "mean"), "--baseline", "mean"])
    res = tmp_path / "mean" / "paired2d" / "test_latest"
    records = {r["key"]: r for r in json.load(open(res / "summary.json"))["results"]}
    assert {records[k]["baseline_kind"] for k in ("PSNR_fake_B", "FID_fake_B", "KID_fake_B")} == {"mean"}
    const = chosen["fake_B"]
    assert const.kind == "mean"
    flat = torch.cat([stand_in_features(fid.as_uint8(torch.from_numpy(const(x) * 2 - 1)[None])) for x in sources])
    assert np.isfinite(records["FID_fake_B"]["baseline"])
    assert records["FID_fake_B"]["baseline"] == pytest.approx(frechet(real, flat.numpy()), rel=1e-3)
    test_script.main(common + ["--results_dir", str(tmp_path / "none"), "--baseline", "none"])
    mean = json.load(open(tmp_path / "none" / "paired2d" / "test_latest" / "metrics.json"))["mean"]
    assert "FID_fake_B" in mean and not any(k.startswith("baseline_") for k in mean)


def test_fid_needs_the_standard_weights_said_in_one_line(tmp_path, capsys, monkeypatch):
    folder = run_folder(tmp_path, "unpaired2d")
    argv = ["--dataroot", str(unpaired_data(tmp_path)), "--name", "unpaired2d", "--model", "unpaired_revgan",
            "--checkpoints_dir", str(folder.parent), "--results_dir", str(tmp_path / "res"), "--gpu_ids", "-1",
            "--preprocess", "none", "--fid"]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached weights

    def offline(url, dst, *args, **kwargs):  # never download in tests: the machine is offline
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    line = one_line_failure(capsys, test_script.main, argv, "--fid_weights PATH")
    assert fid.WEIGHTS_FILE in line and "could not be downloaded" in line
    assert not (tmp_path / "res").exists()  # said before anything is written
    one_line_failure(capsys, test_script.main, argv + ["--fid_weights", str(tmp_path / "none.pth")], "no such file")
    (tmp_path / "bad.pth").write_bytes(b"not weights")
    one_line_failure(capsys, test_script.main, argv + ["--fid_weights", str(tmp_path / "bad.pth")],
                     "is not the InceptionV3 weights")
    monkeypatch.setitem(sys.modules, "torchmetrics.image.fid", None)
    one_line_failure(capsys, test_script.main, argv, "torchmetrics and torch-fidelity")
    monkeypatch.delitem(sys.modules, "torchmetrics.image.fid")
    one_line_failure(capsys, test_script.main, argv[:-1] + ["--dataroot", str(unpaired_data(tmp_path) / "testA"),
                                                          "--model", "test", "--fid"], "--fid")


def test_inception_loads_a_weights_file_of_its_architecture(tmp_path, monkeypatch):
    """A file of the right architecture with random weights (built without any download): --fid_weights reads it
    and the network gives 2048 numbers per image (not FID: the weights are random)."""
    pytest.importorskip("torch_fidelity")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    with monkeypatch.context() as m:
        m.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        m.setattr("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", lambda *a, **k: {})
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), tmp_path / "w.pth")
    network = fid.inception(str(tmp_path / "w.pth"))
    images = torch.randint(0, 256, (2, 3, 40, 48), dtype=torch.uint8)
    assert tuple(network.fn(images).shape) == (2, 2048) and "InceptionV3" in network.name


def many_images(folder, n, seed):
    """``n`` random 32x32 images named after their domain's folder (valA: A000.png, ...): unpaired."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            os.path.join(folder, f"{str(folder)[-1]}{i:03d}.png"))


def test_validation_by_fid_needs_enough_held_out_images(demo_root, tmp_path, stand_in, capsys):
    root = tmp_path / "data"
    for side in "AB":
        shutil.copytree(os.path.join(demo_root, f"train{side}"), root / f"train{side}")
        many_images(root / f"val{side}", 12, ord(side))
    flags = tiny_flags(str(root), tmp_path, "v", "unpaired_revgan", ["--n_blocks", "1", "--val_freq", "1",
                                                                     "--val_metric", "FID_fake_B", "--n_epochs_decay",
                                                                     "0", "--max_dataset_size", "60"])
    line = one_line_failure(capsys, train_script.main, flags, "at least 50 held-out images")
    assert "has 12" in line
    for side in "AB":
        many_images(root / f"val{side}", fid.MIN_VALIDATION_IMAGES, ord(side))
    train_script.main(flags)
    points = [json.loads(x) for x in open(tmp_path / "ckpt" / "v" / "loss_history.jsonl")]
    val = [p["val"] for p in points if "val" in p]
    assert val and {"FID_fake_B", "KID_fake_B", "KID_fake_B_std", "cycle_MAE_A"} <= set(val[-1])
    assert (tmp_path / "ckpt" / "v" / "best.pth").exists()
    assert "best FID_fake_B so far" in capsys.readouterr().out
