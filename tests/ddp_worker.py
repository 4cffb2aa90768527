"""Run by tests/test_distributed.py, under torchrun or alone (one process).

    python tests/ddp_worker.py grads OUT.pt TRAIN_FLAGS...   one training step in float64; rank 0 saves every
                                                             parameter's gradient after it (grads2: the second
                                                             step's, on the same batch)
    python tests/ddp_worker.py train OUT_PREFIX TRAIN_FLAGS...  train.py's main; each rank writes the checkpoints it
                                                             wrote to OUT_PREFIX.RANK.txt
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util import distributed  # noqa: E402


def grads(out, flags, steps=1):
    from options.train_options import TrainOptions
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    opt = TrainOptions().parse(flags)
    distributed.setup(opt)
    try:
        one_step(opt, out, steps)  # its DDP-wrapped model is gone before the process group closes
    finally:
        distributed.cleanup()


def one_step(opt, out, steps=1):
    from data import create_dataset
    from models import create_model
    from util.util import set_seed
    set_seed(opt.seed)
    dataset = create_dataset(opt)
    model = create_model(opt)
    model.setup(opt)
    dataset.set_epoch(1)
    data = next(iter(dataset))
    data = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in data.items()}
    for _ in range(steps):
        model.set_input(data)
        model.optimize_parameters()
    result = {"paths": distributed.gather(list(data["A_paths"])),
              "grads": {f"{name}.{pname}": p.grad.detach().clone() for name in model.model_names
                        for pname, p in model.net(name).named_parameters() if p.grad is not None}}
    if distributed.is_main():
        torch.save(result, out)


def train(prefix, flags):
    import train as train_script
    import util.checkpoint
    written = []
    original = util.checkpoint.save_checkpoint

    def recording(state, path):
        written.append(path)
        return original(state, path)
    import models.base_model
    models.base_model.save_checkpoint = recording
    try:
        train_script.main(flags)
    finally:
        with open(f"{prefix}.{os.environ.get('RANK', '0')}.txt", "w") as f:
            f.writelines(p + "\n" for p in written)


if __name__ == "__main__":
    mode, out, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
    {"grads": grads, "grads2": lambda o, f: grads(o, f, steps=2), "train": train}[mode](out, flags)
