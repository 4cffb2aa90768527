"""torchrun with two CPU processes (gloo): gradients equal one process on the global batch, one checkpoint writer,
and a resumed run continues exactly."""
import os
import re
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT, tiny_flags
from util.checkpoint import load_checkpoint

WORKER = os.path.join(ROOT, "tests", "ddp_worker.py")
ENV = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")


def run(args, nproc):
    """The worker alone (nproc 0) or under torchrun with ``nproc`` processes; fails with their output."""
    launcher = [sys.executable, WORKER] if nproc == 0 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), WORKER]
    proc = subprocess.run(launcher + args, env=ENV, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def rel(a, b):
    return float((a - b).norm() / b.norm()) if b.norm() > 0 else float(a.norm())


@pytest.mark.timeout(600)
@pytest.mark.parametrize("model,extra,steps", [("paired_revgan", ["--two_way"], 1), ("unpaired_revgan", [], 1),
                                               ("paired_revgan", [], 2)])
def test_two_processes_give_the_gradients_of_one_process_on_the_global_batch(demo_root, tmp_path, model, extra,
                                                                            steps):
    """The paired default (A -> B only): two steps (a parameter DistributedDataParallel waits for in vain stops the
    second one)."""
    # randomness off: no dropout, no image pool, instance norm (per-sample statistics)
    flags = tiny_flags(demo_root, tmp_path, model, model, [
        "--n_blocks", "2", "--no_dropout", "--pool_size", "0", "--norm", "instance", "--max_dataset_size", "4"] + extra)
    mode = "grads2" if steps == 2 else "grads"
    run([mode, str(tmp_path / "ddp.pt")] + flags + ["--batch_size", "2"], nproc=2)
    run([mode, str(tmp_path / "one.pt")] + flags + ["--batch_size", "4", "--name", model + "_one"], nproc=0)
    ddp, one = torch.load(tmp_path / "ddp.pt"), torch.load(tmp_path / "one.pt")
    shards = ddp["paths"]
    assert len(shards) == 2 and not set(shards[0]) & set(shards[1])  # each process its own half of the batch
    assert sorted(shards[0] + shards[1]) == sorted(one["paths"][0])
    assert ddp["grads"].keys() == one["grads"].keys() and len(one["grads"]) > 20
    assert any(g.dtype == torch.float64 and g.norm() > 0 for g in one["grads"].values())
    largest = max(float(g.norm()) for g in one["grads"].values())
    for name, g in one["grads"].items():
        if g.norm() > 1e-8 * largest:
            assert rel(ddp["grads"][name], g) <= 1e-10, name
        else:  # a bias right before instance norm: zero in exact arithmetic, rounding noise here
            assert ddp["grads"][name].norm() <= 1e-10 * largest, name


def losses_by_iteration(path):
    out = {}
    for line in open(path):
        m = re.search(r"total_iters: (\d+),.*?\) (.*)$", line)
        if m:
            assert int(m.group(1)) not in out, "a line logged twice (only rank 0 may log)"
            out[int(m.group(1))] = m.group(2)
    return out


@pytest.mark.timeout(600)
def test_torchrun_one_writer_and_exact_resume(demo_root, tmp_path):
    # randomness on: a small image pool whose draws come from each process's own random state
    # validation on: every process validates all of the held-out data, so they agree on best.pth
    common = ["--model", "unpaired_revgan", "--n_blocks", "2", "--max_dataset_size", "6", "--pool_size", "2",
              "--n_epochs_decay", "0", "--save_latest_freq", "100", "--val_freq", "1", "--val_fraction", "0.3"]
    straight = tiny_flags(demo_root, tmp_path, "straight", "unpaired_revgan", common + ["--n_epochs", "2"])
    out = run(["train", str(tmp_path / "straight")] + straight, nproc=2)
    assert "effective batch size = 1 per process x 2 processes = 2" in out
    split = tiny_flags(demo_root, tmp_path, "split", "unpaired_revgan", common)
    run(["train", str(tmp_path / "first")] + split + ["--n_epochs", "1"], nproc=2)
    run(["train", str(tmp_path / "second")] + split + ["--n_epochs", "2", "--continue_train"], nproc=2)

    for prefix in ("straight", "first", "second"):  # rank 0 writes every checkpoint, rank 1 none
        assert open(tmp_path / f"{prefix}.0.txt").read().count("latest.pth") >= 1
        assert open(tmp_path / f"{prefix}.1.txt").read() == ""
    a = load_checkpoint(str(tmp_path / "ckpt" / "straight" / "latest.pth"))
    b = load_checkpoint(str(tmp_path / "ckpt" / "split" / "latest.pth"))
    assert a["counters"] == b["counters"] and (a["counters"]["epoch"], a["counters"]["total_iters"]) == (3, 12)
    assert a["validation"] == b["validation"] and a["validation"]["metric"] == "PSNR_fake_B"
    assert len(a["ranks"]) == 2 and not torch.equal(a["ranks"][0]["rng"]["torch"], a["ranks"][1]["rng"]["torch"])
    for net in a["networks"]:
        for key, value in a["networks"][net].items():
            assert torch.equal(value, b["networks"][net][key]), f"{net}.{key} differs after resume"
    for r in range(2):  # every process's pool came back as it was
        for name, pool in a["ranks"][r]["pools"].items():
            assert all(torch.equal(x, y) for x, y in zip(pool["images"], b["ranks"][r]["pools"][name]["images"]))
    logged_a = losses_by_iteration(tmp_path / "ckpt" / "straight" / "loss_log.txt")
    logged_b = losses_by_iteration(tmp_path / "ckpt" / "split" / "loss_log.txt")
    assert sorted(logged_a) == list(range(2, 13, 2)) and logged_a == logged_b
    validated = [[line for line in open(tmp_path / "ckpt" / n / "loss_log.txt") if line.startswith("validation")]
                 for n in ("straight", "split")]
    assert len(validated[0]) == 2 and validated[0] == validated[1]


def test_sampler_shards_cover_each_epoch_and_resume_mid_epoch():
    from data import EpochSampler
    for n, world in ((7, 2), (5, 3), (1, 2), (8, 4)):
        shards = [EpochSampler(n, seed=3, shuffle=True, rank=r, world=world) for r in range(world)]
        for s in shards:
            s.set_epoch(2)
        taken = [list(s) for s in shards]
        assert all(len(t) == len(s) == -(-n // world) for t, s in zip(taken, shards))  # equal shard sizes
        order = shards[0].order()
        assert sorted(set(order)) == list(range(n)) and len(order) == -(-n // world) * world
        assert sorted(i for t in taken for i in t) == sorted(order)  # every item, padding repeats the first ones
        for s in shards:  # resuming after k global steps of one item per process: the rest of each shard
            s.set_epoch(2, start=world)
        assert [list(s) for s in shards] == [t[1:] for t in taken]
        other = EpochSampler(n, seed=3, shuffle=True, rank=0, world=world)
        other.set_epoch(3)
        assert n < 3 or other.order() != order  # reshuffled every epoch
