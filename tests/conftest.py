import hashlib
import os
import sys

import nibabel as nib
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    from datasets.make_demo_dataset import build
    return build(str(tmp_path_factory.mktemp("demo")), size=32, per_photo=1)


def tiny_flags(root, tmp, name, model, extra=()):
    return ["--dataroot", root, "--name", name, "--model", model, "--checkpoints_dir", str(tmp / "ckpt"),
            "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--load_size", "32", "--crop_size", "32",
            "--num_threads", "0", "--display_id", "0", "--n_epochs", "1", "--n_epochs_decay", "1",
            "--max_dataset_size", "3", "--print_freq", "1", "--save_latest_freq", "2"] + list(extra)


def train_then_test_against_copy(root, tmp, capsys, name, model, extra):
    """Trains ``model`` on ``root`` with tiny_flags plus ``extra``, then runs test.py on it with --baseline copy.
    Returns test.py's printed output and the mean of its metrics.json."""
    import json

    import test as test_script
    import train as train_script
    train_script.main(tiny_flags(root, tmp, name, model, extra))
    capsys.readouterr()
    test_script.main(["--dataroot", root, "--name", name, "--model", model, "--checkpoints_dir", str(tmp / "ckpt"),
                      "--results_dir", str(tmp / "res"), "--gpu_ids", "-1", "--load_size", "32", "--crop_size", "32",
                      "--baseline", "copy"])
    return capsys.readouterr().out, json.loads((tmp / "res" / name / "test_latest" / "metrics.json").read_text())["mean"]


def logged_rows(path):
    """The values of each line of a loss_log.txt ({name: value}), in order."""
    rows = []
    for line in open(path):
        if line.startswith("(epoch"):
            parts = line.split(") ", 1)[1].split()
            rows.append({parts[i].rstrip(":"): float(parts[i + 1]) for i in range(0, len(parts), 2)})
    return rows


def folder_hashes(folder, suffix=".pth"):
    """{path: sha256} of the files under ``folder`` whose names end in ``suffix`` (checkpoints; "": every file)."""
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            if f.endswith(suffix):
                p = os.path.join(root, f)
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium for the page tests (tests/browser.py); skipped where none is installed, except in CI
    (REVGAN_REQUIRE_BROWSER=1: .ci/run installs it)."""
    from tests.browser import Chromium, find_chromium
    if find_chromium() is None and not os.environ.get("REVGAN_REQUIRE_BROWSER"):
        pytest.skip("no Chromium on this machine (apt-get install -y chromium); CI installs it and requires it")
    with Chromium(1400, 1000) as b:  # the screen the pages are made for (and screenshots taken at)
        yield b


NIB_DATA = os.path.join(os.path.dirname(nib.__file__), "tests", "data")


def _save(arr, affine, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nib.save(nib.Nifti1Image(arr.astype(np.float32), affine), path)


@pytest.fixture(scope="module")
def vol_root(tmp_path_factory):
    """Real MRI from nibabel's test data (anatomical.nii, 33x41x25, 2 mm): B is the volume, A a noisy copy in
    other units (x2 + 100). Training volumes are flips of it; the test volume is a 21x26x19 crop (not a multiple of
    the patch) with its own affine; one test volume is .npy."""
    root = tmp_path_factory.mktemp("vols")
    img = nib.load(os.path.join(NIB_DATA, "anatomical.nii"))
    b = img.get_fdata(dtype=np.float32)
    rng = np.random.default_rng(0)
    for k, vol in enumerate([b, b[::-1], b[:, ::-1]]):
        a = vol * 2 + 100 + rng.normal(0, 200, vol.shape)
        _save(a, img.affine, str(root / "trainA" / f"s{k}.nii.gz"))
        _save(vol, img.affine, str(root / "trainB" / f"s{k}.nii"))
    crop = b[5:26, 7:33, 3:22]
    affine = img.affine.copy()
    affine[:3, 3] += [10.0, 14.0, 6.0]
    _save(crop * 2 + 100 + rng.normal(0, 200, crop.shape), affine, str(root / "testA" / "t0.nii.gz"))
    _save(crop, affine, str(root / "testB" / "t0.nii.gz"))
    np.save(root / "testA" / "t1.npy", (crop[::-1] * 2 + 100).astype(np.float32))
    np.save(root / "testB" / "t1.npy", crop[::-1].astype(np.float32))
    return str(root)


def vol_flags(root, tmp, name, model, extra=()):
    return ["--dataroot", root, "--name", name, "--model", model, "--checkpoints_dir", str(tmp / "ckpt"),
            "--gpu_ids", "-1", "--ngf", "4", "--ndf", "4", "--netD", "n_layers", "--n_layers_D", "1",
            "--patch_size", "16", "--samples_per_volume", "1", "--num_threads", "0", "--display_id", "0",
            "--n_epochs", "1", "--n_epochs_decay", "1", "--print_freq", "1", "--save_latest_freq", "2"] + \
        (["--n_blocks", "2"] if "revgan" in model else ["--netG", "resnet_6blocks"]) + list(extra)
