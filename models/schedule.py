"""Learning-rate schedules, and what the schedule flags mean when training resumes.

Every policy but plateau is a rule ``factor(epoch)`` (a LambdaLR): the learning rate of the run's epoch e (counted
from 0 at its first epoch, --epoch_count) is ``--lr * factor(e)``, the rate of epoch e + --epoch_count of a run that
began at epoch 1 (as in CycleGAN, whose schedule ends at epoch --n_epochs + --n_epochs_decay whatever --epoch_count).
Built from the current flags, a rule never multiplies a rate already decayed to 0, so a new --lr_policy or --n_epochs
on resume takes effect from the epoch it resumes at.

On --continue_train, the schedule flags the user did not type take the values the checkpoint was trained with (an
exact resume); those typed take effect, each said in one line (options.resolution). The checkpoint records them
(``schedule``).
"""
import math
import re
import warnings

from torch.optim import lr_scheduler

from util.errors import UserError
from util.flags import FIXED, SCHEDULE


def lr_factor(opt):
    """``factor(e)`` of --lr_policy linear, step or cosine."""
    before = opt.epoch_count - 1  # the epochs a run that starts at --epoch_count counts as done
    if opt.lr_policy == "linear":  # constant for n_epochs, then linearly to zero over n_epochs_decay
        return lambda e: 1.0 - max(0, e + before + 1 - opt.n_epochs) / float(opt.n_epochs_decay + 1)
    if opt.lr_policy == "step":  # x0.1 every lr_decay_iters epochs
        return lambda e: 0.1 ** ((e + before) // opt.lr_decay_iters)
    if opt.lr_policy == "cosine":  # cosine annealing to zero over all epochs
        total = max(1, opt.n_epochs + opt.n_epochs_decay)
        return lambda e: 0.5 * (1 + math.cos(math.pi * min(e + before, total) / total))
    raise UserError(f"unknown --lr_policy {opt.lr_policy!r}; valid: linear, step, plateau, cosine")


def make_scheduler(optimizer, opt):
    """The scheduler of --lr_policy; plateau: x0.2 when the epoch's mean generator loss stops improving."""
    if opt.lr_policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    return lr_scheduler.LambdaLR(optimizer, lr_lambda=lr_factor(opt))


def saved_schedule(config) -> dict:
    """What a checkpoint records of the schedule: the flags of policy SCHEDULE and FIXED (util.flags)."""
    return {k: getattr(config, k) for k in config.flags(SCHEDULE, FIXED)}


def changes(saved, config) -> dict:
    """{flag: (checkpoint's, this run's)} of the schedule flags that differ from a checkpoint's ``saved`` schedule
    (options.resolution takes the checkpoint's unless the user typed another value)."""
    return {k: (saved[k], getattr(config, k)) for k in config.flags(SCHEDULE)
            if saved and k in saved and saved[k] != getattr(config, k)}


def step(schedulers, metric=None) -> None:
    """Steps every scheduler once per epoch; plateau schedulers step on ``metric`` (the epoch's mean generator loss)."""
    for scheduler in schedulers:
        if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
            if metric is None or not math.isfinite(metric):
                raise UserError("--lr_policy plateau needs a finite epoch loss to step on")
            scheduler.step(metric)
        else:
            with warnings.catch_warnings():  # fp16: the gradient scaler skipped the first steps (inf/NaN)
                warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"))
                scheduler.step()


def group_lr(group, lr) -> float:
    """The learning rate of parameter ``group`` for --lr ``lr``: ``lr``, capped by the group's ``lr_cap`` if it has
    one (the residual gains' group, networks.optimizer_groups)."""
    return min(lr, group.get("lr_cap", lr))


def restore(scheduler, state, changed, opt) -> None:
    """Loads ``state`` (a checkpoint's scheduler state) into ``scheduler``, built from the resolved flags: the epoch
    count always; the policy's own state only when --lr_policy did not change; --lr when it did."""
    optimizer = scheduler.optimizer
    if "lr" in changed:
        for group in optimizer.param_groups:
            group["initial_lr"] = group_lr(group, opt.lr)
    if "beta1" in changed:
        for group in optimizer.param_groups:
            group["betas"] = (opt.beta1, group["betas"][1])
    last_epoch = state.get("last_epoch", 0)
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        if "lr_policy" not in changed:
            scheduler.load_state_dict(state)
            groups = len(optimizer.param_groups)  # a state of one group (training_state.split_groups): torch < 2.6
            scheduler.min_lrs = (scheduler.min_lrs * groups)[:groups]  # would fail at its first reduction
        scheduler.last_epoch = last_epoch
        if "lr_policy" in changed or "lr" in changed:  # the plateau search starts again from --lr
            for group in optimizer.param_groups:
                group["lr"] = group_lr(group, opt.lr)
        return
    scheduler.last_epoch = last_epoch
    for group in optimizer.param_groups:  # a plateau run's groups have no initial_lr: its --lr is the base then
        if "lr" in changed or "initial_lr" not in group:
            group["initial_lr"] = group_lr(group, opt.lr)
    scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    for group, base, rule in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * rule(last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def check_positive_rate(optimizers, first_epoch, last_epoch) -> None:
    """Refuses a schedule that would train epoch ``first_epoch`` (up to ``last_epoch``) at learning rate 0."""
    if first_epoch <= last_epoch and any(g["lr"] <= 0 for o in optimizers for g in o.param_groups):
        raise UserError(f"the learning-rate schedule would train epochs {first_epoch} to {last_epoch} at learning "
                        f"rate 0: raise --n_epochs/--n_epochs_decay, or give --lr and --lr_policy")

