"""A model's full training state: what one checkpoint holds, so that --continue_train resumes exactly.

One checkpoint (``checkpoints/NAME/latest.pth`` or ``EPOCH.pth``, written by util.checkpoint) is a dict of:
``architecture`` (models.config.ModelSpec as flag names), ``networks`` ({name: state_dict}), ``optimizers``,
``schedulers``, ``scalers`` (fp16), ``counters`` (TrainingProgress), ``ranks`` (every torchrun process's random states
and image pools), ``extra`` (the model's own facts; 3D: the intensity ranges and training patch size) and
``schedule`` (the schedule flags); train.py adds ``options`` (every plain value of its run configuration) and
``validation`` (the best so far).
"""
import copy
import random
from dataclasses import asdict, dataclass

import torch

from models import schedule
from util import distributed
from util.errors import UserError


@dataclass
class TrainingProgress:
    """Where training stands: the epoch being trained (1-based), the samples seen in it and in all; train.py
    advances it and checkpoints save it. Counts are in samples of all torchrun processes together."""
    epoch: int = 1
    epoch_iter: int = 0
    total_iters: int = 0
    loss_sum: float = 0.0  # the epoch's generator loss so far (its mean steps --lr_policy plateau)
    loss_count: int = 0

    def advance(self, samples: int) -> None:
        self.epoch_iter += samples
        self.total_iters += samples

    def add_loss(self, value: float) -> None:
        self.loss_sum, self.loss_count = self.loss_sum + value, self.loss_count + 1

    def mean_loss(self) -> float:
        return self.loss_sum / max(1, self.loss_count)

    def finish_epoch(self) -> None:
        self.epoch, self.epoch_iter, self.loss_sum, self.loss_count = self.epoch + 1, 0, 0.0, 0

    @classmethod
    def of(cls, counters: dict) -> "TrainingProgress":
        progress = cls()
        progress.load(counters)
        return progress

    def describe(self) -> str:
        """What was trained, as a user counts it: "trained 15 epochs (4500 images)"."""
        done = f"trained {self.epoch - 1} epoch{'s' if self.epoch != 2 else ''}"
        if self.epoch_iter:
            done += f" and {self.epoch_iter} images of epoch {self.epoch}"
        return f"{done}; {self.total_iters} images in all"

    def as_dict(self) -> dict:
        return asdict(self)

    def load(self, counters: dict) -> None:
        """From a checkpoint's ``counters`` (in place: train.py holds this object)."""
        self.epoch, self.epoch_iter, self.total_iters = (counters[k] for k in ("epoch", "epoch_iter", "total_iters"))
        self.loss_sum, self.loss_count = counters.get("loss_sum", 0.0), counters.get("loss_count", 0)


def step_state(model) -> dict:
    """What a training step changes in ``model`` besides its random states and pools, by reference: the networks',
    optimizers' and gradient scalers' state dicts."""
    return {"networks": {n: model.net(n).state_dict() for n in model.model_names},
            "optimizers": [o.state_dict() for o in model.optimizers],
            "scalers": model.precision.state_dicts(model.optimizers)}


def full_state(model, **extra) -> dict:
    """``model``'s full training state plus ``extra`` entries; every torchrun rank's random states and image pools go
    into ``ranks`` (gathered on every rank)."""
    return {**extra, "architecture": model.spec.to_architecture(), **step_state(model),
            "schedulers": [s.state_dict() for s in model.schedulers], "counters": model.progress.as_dict(),
            "ranks": distributed.gather(rank_state(model.pools)), "extra": model.extra_state(),
            "schedule": schedule.saved_schedule(model.opt) if model.is_train else None}


def load_full_state(model, state: dict, path: str) -> None:
    """Restores ``model``'s networks from checkpoint ``state`` (read from ``path``); for training also the
    optimizers, schedulers (built from the resolved schedule flags), scalers, progress, random states and pools."""
    for name in model.model_names:
        if name not in state["networks"]:
            raise UserError(f"checkpoint {path} has no network {name} (it holds {', '.join(state['networks'])})")
        try:
            model.net(name).load_state_dict(state["networks"][name])
        except RuntimeError as e:
            raise UserError(f"checkpoint {path} does not fit network {name}: {str(e).splitlines()[0][:200]}") from None
    model.load_extra(state.get("extra", {}))
    if model.is_train:
        for o, s in zip(model.optimizers, state["optimizers"]):
            o.load_state_dict(split_groups(o, s, model.opt.lr))
        for sch, s in zip(model.schedulers, state["schedulers"]):
            schedule.restore(sch, s, schedule.changes(state.get("schedule"), model.opt), model.opt)
        model.precision.load_state_dicts(model.optimizers, state.get("scalers", []))
        model.progress.load(state["counters"])
        load_rank_state(state, model.pools, path)
    model.loaded_from = f"{path} ({TrainingProgress.of(state['counters']).describe()})"
    model.trained_direction = (state.get("options") or {}).get("direction", "AtoB")
    if distributed.is_main():
        print(f"loaded {model.loaded_from}")


def split_groups(optimizer, saved: dict, lr: float) -> dict:
    """``saved`` (an optimizer's state) in the parameter groups of ``optimizer``: a state written with one group
    (before the paired models' residual gains had their own, networks.optimizer_groups) gets this optimizer's groups,
    each at the saved rate scaled by its cap at --lr ``lr`` (the saved rate may be a decayed or reduced one), and each
    parameter's Adam state moved to the parameter's new index."""
    groups = optimizer.param_groups
    if len(saved["param_groups"]) != 1 or len(groups) == 1:
        return saved
    old = saved["param_groups"][0]
    flat = {id(p): i for i, p in enumerate(optimizer.flat_params)}  # the one group's order
    new_groups, new_state, index = [], {}, 0
    for group in groups:
        scale = schedule.group_lr(group, lr) / lr
        entry = dict(old, lr=old["lr"] * scale, params=[])
        if "initial_lr" in old:
            entry["initial_lr"] = old["initial_lr"] * scale
        if "lr_cap" in group:
            entry["lr_cap"] = group["lr_cap"]
            if scale != 1 and distributed.is_main():
                print(f"note: the residual gains now learn at most at {group['lr_cap']:g} (this checkpoint trained "
                      f"them at --lr {lr:g}); the other parameters keep --lr")
        for p in group["params"]:
            before = old["params"][flat[id(p)]]
            if before in saved["state"]:
                new_state[index] = saved["state"][before]
            entry["params"].append(index)
            index += 1
        new_groups.append(entry)
    return {"state": new_state, "param_groups": new_groups}


def rank_state(pools: dict) -> dict:
    """This process's random states and image pools."""
    return {"pools": {k: p.state_dict() for k, p in pools.items()},
            "rng": {"torch": torch.get_rng_state(), "python": _py_state_to_list(random.getstate()),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}}


def snapshot(model) -> dict:
    """What a training step changes, copied in memory (the networks' tensors on the CPU): step_state, this process's
    pools and random states."""
    state = step_state(model)
    networks = {n: {k: v.detach().to("cpu", copy=True) for k, v in sd.items()}
                for n, sd in state.pop("networks").items()}
    return {**copy.deepcopy(state), "networks": networks, "rank": rank_state(model.pools)}


def restore(model, saved: dict) -> None:
    """``model`` back to its ``snapshot``."""
    for name in model.model_names:
        model.net(name).load_state_dict(saved["networks"][name])
    for o, s in zip(model.optimizers, saved["optimizers"]):
        o.load_state_dict(s)
    model.precision.load_state_dicts(model.optimizers, saved["scalers"])
    set_rank_state(saved["rank"], model.pools)


def load_rank_state(state: dict, pools: dict, path: str) -> None:
    """Restores this process's random states and image pools from a checkpoint ``state`` (read from ``path``)."""
    ranks = state.get("ranks") or [{"pools": state.get("pools", {}), "rng": state["rng"]}]  # older checkpoints
    rank, world = distributed.rank(), distributed.world_size()
    if len(ranks) != world and distributed.is_main():
        print(f"note: {path} was written by {len(ranks)} process(es), this run has {world}: the data order "
              f"continues, but random draws (dropout, image pools) differ from an uninterrupted run")
    set_rank_state(ranks[rank % len(ranks)], pools)


def set_rank_state(mine: dict, pools: dict) -> None:
    """This process's random states and image pools from ``mine`` (a rank_state)."""
    for k, p in pools.items():
        if k in mine["pools"]:
            p.load_state_dict(mine["pools"][k])
    torch.set_rng_state(mine["rng"]["torch"])
    random.setstate(_py_state_from_list(mine["rng"]["python"]))
    if mine["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(mine["rng"]["cuda"])


def _py_state_to_list(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _py_state_from_list(state):
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
