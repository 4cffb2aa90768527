import hashlib
import os
import sys

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


def folder_hashes(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            if f.endswith(".pth"):
                p = os.path.join(root, f)
                out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out
