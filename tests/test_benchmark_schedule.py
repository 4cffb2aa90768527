"""scripts/benchmark_schedule.py: its smoke configuration runs end to end (both unpaired 3D models of t2w3d trained
through train.py with a checkpoint every epoch, each checkpoint tested through test.py, the docs section and the
plot), and its correlation does what it says. Its numbers come from the runs in docs/benchmarks.md, not from here."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from scripts import benchmark_schedule as bs  # noqa: E402
from tests.bench_runs import OTHER_SECTION, tiny_benchmark  # noqa: E402

SCRIPT = os.path.join(ROOT, "scripts", "benchmark_schedule.py")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return tiny_benchmark(tmp_path_factory.mktemp("schedule"), "benchmark_schedule.py",
                          ["--n_epochs", "2", "--n_epochs_decay", "1", "--every", "2"], timeout=300)


def test_every_model_trained_and_each_checkpoint_tested(tiny_run):
    runs = tiny_run["results"]["runs"]
    assert [(r["task"], r["model"], r["seed"]) for r in runs] == [("t2w3d", "cycle_gan3d", 0),
                                                                  ("t2w3d", "unpaired_revgan3d", 0)]
    for run in runs:
        argv = run["train_argv"]
        assert argv[argv.index("--n_epochs") + 1] == "2" and argv[argv.index("--n_epochs_decay") + 1] == "1"
        assert argv[argv.index("--lr") + 1] == "0.0002"  # train.py's, after the benchmark's 3D flags (0.0005)
        assert argv[len(argv) - 1 - argv[::-1].index("--save_epoch_freq") + 1] == "2"
        # checkpoint 2 (saved at epoch 2) and the last (latest, epoch 3): different networks, different outputs
        assert [c["epoch"] for c in run["checkpoints"]] == [2, 3]
        results = os.path.join(tiny_run["tmp"], "work", "results", os.path.basename(argv[argv.index("--name") + 1]))
        assert sorted(os.listdir(results)) == ["test_2", "test_latest"]
        for c in run["checkpoints"]:
            assert all(np.isfinite(c[k]) for k in ("PSNR", "SSIM", "MAE", "PSNR_brain"))
            assert -1 <= c["r_input"] <= 1 and -1 <= c["r_target"] <= 1
        assert run["checkpoints"][0]["MAE"] != run["checkpoints"][1]["MAE"]


def test_docs_section_and_plot(tiny_run):
    text = tiny_run["docs"].read_text()
    assert OTHER_SECTION in text
    body = re.search(r"<!-- begin benchmark_schedule_cpu -->\n(.*?)<!-- end benchmark_schedule_cpu -->", text,
                     re.S).group(1)
    assert "Smoke configuration" in body
    rows = [line for line in body.splitlines() if line.startswith("| t2w3d |")]
    assert len(rows) == 4 + 2 * 2  # the four references, two checkpoints of each model
    assert (tiny_run["docs"].parent / "benchmark_schedule_cpu.png").stat().st_size > 10_000


def test_correlations_inside_the_brain():
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 255, (6, 7, 8))
    a[:2] = 0  # outside the brain: not counted
    out = 3 * a + 1
    out[:2] = rng.uniform(0, 255, (2, 7, 8))
    r_in, r_target = bs.correlations(out, a, 255 - a)
    assert r_in == pytest.approx(1) and r_target == pytest.approx(-1)


@pytest.mark.parametrize("argv, message", [
    (["--tasks", "t2w3d", "--models", "pix2pix3d"], "--models: choose among"),
    (["--every", "0"], "--every must be at least 1"),
    (["--n_epochs", "0", "--n_epochs_decay", "0"], "together at least 1"),
])
def test_mistakes_end_in_one_line(argv, message):
    proc = subprocess.run([sys.executable, SCRIPT, "--tiny"] + argv, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
