"""Several processes under ``torchrun``: process-group set-up and the few collectives training needs.

``torchrun --nproc_per_node N train.py ...`` starts N copies of train.py with RANK, LOCAL_RANK and WORLD_SIZE in
their environment. Each process then trains on its own shard of every epoch (``data.EpochSampler``) with its own
``--batch_size``, so the effective batch is ``--batch_size`` x N; DistributedDataParallel averages the gradients.
GPUs talk over NCCL (process k uses the k-th of --gpu_ids, or GPU LOCAL_RANK); on the CPU (``--gpu_ids -1``, or no
GPU) the processes use gloo. Only rank 0 prints, logs, shows visdom, writes the HTML pages and checkpoints.

Plain ``python train.py`` never touches torch.distributed: every helper here is then a no-op.
"""
import datetime
import gc
import os

import torch
import torch.distributed as dist

from util.errors import UserError


def under_torchrun():
    return "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def active():
    return dist.is_available() and dist.is_initialized()


def rank():
    return dist.get_rank() if active() else 0


def world_size():
    return dist.get_world_size() if active() else 1


def is_main():
    return rank() == 0


def process_gpu_ids(gpu_ids):
    """The GPU of this process: under torchrun, process k (LOCAL_RANK) takes the k-th of ``gpu_ids``, or the first
    plus k when one is given; otherwise ``gpu_ids`` as they are."""
    if not under_torchrun() or not gpu_ids:
        return gpu_ids
    local = int(os.environ["LOCAL_RANK"])
    if len(gpu_ids) > 1 and local >= len(gpu_ids):
        raise UserError(f"torchrun started more processes per node than --gpu_ids lists "
                        f"({','.join(map(str, gpu_ids))}): list one GPU per process, or lower --nproc_per_node")
    gpu = gpu_ids[local] if len(gpu_ids) > 1 else gpu_ids[0] + local
    if gpu >= torch.cuda.device_count():
        raise UserError(f"process {local} of this node needs GPU {gpu}, but only {torch.cuda.device_count()} "
                        f"are visible: lower --nproc_per_node, or use --gpu_ids -1 for CPU processes")
    return [gpu]


def setup(opt):
    """Joins the process group when launched by torchrun, on this process's GPU (``opt.gpu_ids``, set by
    process_gpu_ids); afterwards ``rank()`` and ``world_size()`` say where this process stands (0 and 1 in a plain
    run)."""
    if not under_torchrun() or active():
        return
    backend = "nccl" if opt.gpu_ids else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(opt.gpu_ids[0])
    if opt.norm == "syncbatch" and backend != "nccl":
        raise UserError("--norm syncbatch synchronizes batch statistics between GPUs (NCCL); CPU processes cannot: "
                        "use --norm batch (each process normalizes its own batch) or --norm instance")
    kwargs = {"device_id": torch.device("cuda", opt.gpu_ids[0])} if backend == "nccl" else {}
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30), **kwargs)


def wrap(net, device):
    """``net`` in DistributedDataParallel under torchrun, itself otherwise. No unused-parameter search: every parameter
    is used in every backward that reaches the network (and the search misfires on a network called twice a step)."""
    if not active() or world_size() == 1:
        return net
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)


def cleanup():
    """Leaves the process group after a successful run: a barrier first (gloo aborts a peer still talking to a rank
    that has left). After an error a rank just exits; torchrun then stops the others."""
    if active():
        gc.collect()  # DDP wrappers left in reference cycles hold the group: drop them while it is still alive
        dist.barrier()
        dist.destroy_process_group()


def gather(obj):
    """Every rank's ``obj`` as a list indexed by rank (on every rank); ``[obj]`` in a plain run."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def mean(values):
    """The mean over ranks of a dict of floats (or of one float); unchanged in a plain run."""
    if not active():
        return values
    keys = list(values) if isinstance(values, dict) else None
    t = torch.tensor([values[k] for k in keys] if keys is not None else [values], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    t = (t / world_size()).tolist()
    return dict(zip(keys, t)) if keys is not None else t[0]


def barrier():
    if active():
        dist.barrier()
