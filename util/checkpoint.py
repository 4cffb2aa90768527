"""Checkpoints: one file per save holding the full training state, written atomically, loaded safely.

``save_checkpoint`` writes to a temporary file in the same folder, flushes it to disk and renames it over the
target, so a crash during a save never damages the last good checkpoint. ``load_checkpoint`` uses
``torch.load(weights_only=True)``: only tensors and plain containers are unpickled, never arbitrary code.
"""
import os
import tempfile

import torch

from util.errors import UserError

FORMAT = 1


def save_checkpoint(state, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state, format=FORMAT), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path, map_location="cpu"):
    if not os.path.isfile(path):
        raise UserError(f"no checkpoint at {path} (train first, or check --name, --checkpoints_dir and --epoch)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt file, or one holding more than tensors and plain containers
        raise UserError(f"cannot load checkpoint {path}: {str(e).splitlines()[0][:200]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "architecture" not in state:
        raise UserError(f"{path} is not a RevGAN checkpoint of format {FORMAT}")
    return state


def checkpoint_path(opt, epoch):
    return os.path.join(opt.checkpoints_dir, opt.name, f"{epoch}.pth")
