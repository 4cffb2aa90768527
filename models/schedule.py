"""Learning-rate schedules, and what the schedule flags mean when training resumes.

Every policy but plateau is a rule ``factor(epoch)`` (a LambdaLR): the learning rate of epoch e (counted from 0 at
the first epoch) is ``--lr * factor(e)``. Built from the current flags, a rule never multiplies a rate already decayed
to 0, so a new --lr_policy or --n_epochs on resume takes effect from the epoch it resumes at.

On --continue_train, the schedule flags the user did not type take the values the checkpoint was trained with (an
exact resume); those typed take effect, each said in one line. The checkpoint records them (``schedule``).
"""
import math

from torch.optim import lr_scheduler

from util.errors import UserError

SCHEDULE_KEYS = ("lr", "beta1", "lr_policy", "lr_decay_iters", "n_epochs", "n_epochs_decay")


def lr_factor(opt):
    """``factor(e)`` of --lr_policy linear, step or cosine."""
    if opt.lr_policy == "linear":  # constant for n_epochs, then linearly to zero over n_epochs_decay
        return lambda e: 1.0 - max(0, e + opt.epoch_count - opt.n_epochs) / float(opt.n_epochs_decay + 1)
    if opt.lr_policy == "step":  # x0.1 every lr_decay_iters epochs
        return lambda e: 0.1 ** (e // opt.lr_decay_iters)
    if opt.lr_policy == "cosine":  # cosine annealing to zero over all epochs
        total = max(1, opt.n_epochs + opt.n_epochs_decay)
        return lambda e: 0.5 * (1 + math.cos(math.pi * min(e, total) / total))
    raise UserError(f"unknown --lr_policy {opt.lr_policy!r}; valid: linear, step, plateau, cosine")


def make_scheduler(optimizer, opt):
    """The scheduler of --lr_policy; plateau: x0.2 when the epoch's mean generator loss stops improving."""
    if opt.lr_policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    return lr_scheduler.LambdaLR(optimizer, lr_lambda=lr_factor(opt))


def saved_schedule(opt) -> dict:
    """What a checkpoint records of the schedule."""
    return {k: getattr(opt, k) for k in SCHEDULE_KEYS + ("epoch_count",)}


def resolve_on_resume(opt, typed, saved, epoch, say=print) -> dict:
    """Sets the schedule flags for a resumed run: the checkpoint's ``saved`` values unless the user ``typed`` the
    flag. Returns {flag: (old, new)} for the typed flags that change the schedule, each said by ``say``; ``epoch``
    is the epoch training resumes at."""
    if saved is None:
        say("note: the checkpoint does not record its schedule (an older version wrote it): the schedule flags are "
            "used as given")
        return {}
    changed = {}
    for key in SCHEDULE_KEYS:
        if key in typed and getattr(opt, key) != saved[key]:
            changed[key] = (saved[key], getattr(opt, key))
        else:
            setattr(opt, key, saved[key])
    opt.epoch_count = saved["epoch_count"]
    for key, (old, new) in changed.items():
        say(f"--{key} {new}: the checkpoint had {old}; using {new} from epoch {epoch}")
    return changed


def restore(scheduler, state, changed, opt) -> None:
    """Loads ``state`` (a checkpoint's scheduler state) into ``scheduler``, built from the resolved flags: the epoch
    count always; the policy's own state only when --lr_policy did not change; --lr when it did."""
    optimizer = scheduler.optimizer
    if "lr" in changed:
        for group in optimizer.param_groups:
            group["initial_lr"] = opt.lr
    if "beta1" in changed:
        for group in optimizer.param_groups:
            group["betas"] = (opt.beta1, group["betas"][1])
    last_epoch = state.get("last_epoch", 0)
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        if "lr_policy" not in changed:
            scheduler.load_state_dict(state)
        scheduler.last_epoch = last_epoch
        if "lr_policy" in changed or "lr" in changed:  # the plateau search starts again from --lr
            for group in optimizer.param_groups:
                group["lr"] = opt.lr
        return
    scheduler.last_epoch = last_epoch
    for group in optimizer.param_groups:  # a plateau run's groups have no initial_lr: its --lr is the base then
        group["initial_lr"] = opt.lr if "lr" in changed or "initial_lr" not in group else group["initial_lr"]
    scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    for group, base, rule in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * rule(last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def check_positive_rate(optimizers, first_epoch, last_epoch) -> None:
    """Refuses a schedule that would train epoch ``first_epoch`` (up to ``last_epoch``) at learning rate 0."""
    if first_epoch <= last_epoch and any(g["lr"] <= 0 for o in optimizers for g in o.param_groups):
        raise UserError(f"the learning-rate schedule would train epochs {first_epoch} to {last_epoch} at learning "
                        f"rate 0: raise --n_epochs/--n_epochs_decay, or give --lr and --lr_policy")

