"""DistributedDataParallel with two CPU processes (gloo, loopback): gradients equal one process on the batch."""
import gc
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

from .helpers import rel, sequence

GLOBAL_BATCH = 4


def make_net(memory_saving):
    return sequence("affine", 2, 6, 3, memory_saving, seed=11, norm="instance")


def batch():
    g = torch.Generator().manual_seed(5)
    return torch.randn(GLOBAL_BATCH, 6, 5, 5, generator=g, dtype=torch.float64)


def loss_of(net, x):
    return net(x).square().mean() + net.inverse(x).sin().mean()


def worker(rank, port, find_unused, out_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        net = make_net(True)
        ddp = DDP(net, find_unused_parameters=find_unused)
        x = batch().chunk(2)[rank]
        # DDP averages gradients over ranks, matching the mean loss over the global batch.
        y = ddp(x)
        loss = y.square().mean() + ddp.module.inverse(x).sin().mean()
        loss.backward()
        if rank == 0:
            torch.save([p.grad for p in net.parameters()], out_path)
        # DDP's reducer holds the process group: free it now, not at interpreter exit after the group is gone
        del ddp, y, loss
        gc.collect()
        dist.barrier()  # both ranks done before either tears gloo down (a rank leaving early can abort its peer)
    finally:
        dist.destroy_process_group()
    # The result is written and the group is closed: skip interpreter teardown, which is not under test here
    # (gloo's threads at interpreter exit once aborted a rank on CI after all work was done).
    os._exit(0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("find_unused", [False, True])
def test_ddp_two_processes_match_single_process(tmp_path, find_unused):
    out = str(tmp_path / "grads.pt")
    mp.spawn(worker, args=(free_port(), find_unused, out), nprocs=2, join=True)
    ddp_grads = torch.load(out)
    ref = make_net(False)
    # single process on the global batch: the mean over the two halves' mean losses
    halves = batch().chunk(2)
    (sum(loss_of(ref, h) for h in halves) / 2).backward()
    for g, p in zip(ddp_grads, ref.parameters()):
        assert rel(g, p.grad) <= 1e-10
