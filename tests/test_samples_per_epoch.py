"""--samples_per_epoch: epochs of a chosen number of training samples, drawn at random without repeats within an
epoch, resumable like any epoch (the order depends only on the seed and the epoch)."""
import pytest
import torch

import train as train_script
from data import EpochSampler
from tests.conftest import tiny_flags
from util.checkpoint import load_checkpoint


def order(n, epoch, start=0, shuffle=True, **kw):
    s = EpochSampler(n, seed=7, shuffle=shuffle, **kw)
    s.set_epoch(epoch, start)
    return list(s)


def test_default_epoch_is_the_order_it_was_before():
    """No --samples_per_epoch: the permutation of every sample that runs (and their checkpoints) used before."""
    g = torch.Generator().manual_seed(7 * 100003 + 3)
    assert order(20, 3) == torch.randperm(20, generator=g).tolist()
    assert order(20, 3, shuffle=False) == list(range(20))


@pytest.mark.parametrize("k", [1, 6, 19])
def test_fewer_samples_a_random_draw_without_repeats_each_epoch(k):
    draws = [order(20, e, per_epoch=k) for e in range(1, 9)]
    assert all(len(d) == k and len(set(d)) == k for d in draws)
    assert len({tuple(d) for d in draws}) == len(draws)  # another draw each epoch
    assert len(set(sum(draws, []))) > k  # ... from all the samples
    assert draws[1] == order(20, 2, per_epoch=k)  # depends only on (seed, epoch): resumable
    assert order(20, 2, per_epoch=k, start=k // 2) == draws[1][k // 2:]


def test_more_samples_than_the_dataset_take_each_once_before_any_twice():
    d = order(7, 1, per_epoch=17)
    assert len(d) == 17 and sorted(d[:7]) == list(range(7)) and sorted(d[7:14]) == list(range(7))
    assert len(set(d[14:])) == 3


def test_serial_epochs_go_on_where_the_last_stopped():
    assert [order(10, e, per_epoch=4, shuffle=False) for e in (1, 2, 3)] == \
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]


@pytest.mark.parametrize("k", [9, 10])
def test_processes_share_the_epochs_samples(k):
    """Sharded over 3 processes: together the epoch's draw (10: padded with its first sample, as without the flag)."""
    draw = order(20, 2, per_epoch=k)
    shards = [order(20, 2, per_epoch=k, rank=r, world=3) for r in range(3)]
    assert sorted(sum(shards, [])) == sorted(draw + draw[:-k % 3])
    assert [len(s) for s in shards] == [-(-k // 3)] * 3


def test_train_runs_epochs_of_that_many_samples_and_resumes_with_it(demo_root, tmp_path, capsys):
    flags = tiny_flags(demo_root, tmp_path, "spe", "pix2pix", ["--netG", "resnet_6blocks",
                                                               "--load_size", "32", "--crop_size", "32"])
    train_script.main(flags + ["--samples_per_epoch", "5"])  # 2 epochs of 5 samples of the 3 images
    assert "3; 5 drawn per epoch (--samples_per_epoch)" in capsys.readouterr().out
    path = tmp_path / "ckpt" / "spe" / "latest.pth"
    assert load_checkpoint(str(path))["counters"]["total_iters"] == 10
    train_script.main(flags + ["--continue_train", "--n_epochs", "2"])  # the checkpoint's 5, not all 3
    assert load_checkpoint(str(path))["counters"]["total_iters"] == 15
