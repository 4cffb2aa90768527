"""A run's configuration, resolved once: the command line plus the checkpoint it continues (--continue_train) or
tests (test.py) into the frozen RunConfig that train.py, test.py and validation read.

What a checkpoint does to each flag is declared where the flag is defined (``policy=``; the table is in
util/flags.py). The checkpoint's architecture (``ModelSpec.flags``), its schedule and the options it was trained
with (its "options": every plain value of the run that wrote it) are the sources; --model is always treated as typed
(it chose the flags). What is taken or ignored is said in one line each, so that train_opt.txt and test_opt.txt
record what is in effect.
"""
from data import TEST_READING, resolve_dataroot, test_scale
from models import find_model_using_name, options_spec, with_architecture_defaults
from models.config import ModelSpec
from util.errors import UserError
from util.flags import ARCH, ARCH_SOFT, FIXED, RESUMED, SCHEDULE, TRAINED


def resolve(config, typed, checkpoint=None, path=None, say=print):
    """The run configuration of ``config`` (the command line, BaseOptions.parse) with ``checkpoint`` (read from
    ``path``; None: a fresh run, or test.py on pytorch-CycleGAN-and-pix2pix files). ``typed``: the flags the user
    typed. Returns (RunConfig, ModelSpec of the networks to build)."""
    typed = set(typed) | {"model"}
    if checkpoint is None:
        values, spec = {}, options_spec(config)
    elif config.is_train:
        values = resumed(config, typed, checkpoint, path, say)
        spec = options_spec(config.replace(**values))
    else:
        spec = ModelSpec.from_architecture(checkpoint["architecture"])
        values = tested(config, typed, checkpoint, spec, say)
    if not config.is_train:
        values.update(TEST_READING)
    config = with_architecture_defaults(config.replace(**values), spec)
    volumes = config.dataset_mode == "volume" if config.is_train else checkpoint is not None and spec.dims == 3
    return config.replace(dataroot=resolve_dataroot(config, volumes)), spec


def resumed(config, typed, checkpoint, path, say):
    """--continue_train: {flag: value} that differ from the command line."""
    arch = ModelSpec.from_architecture(checkpoint["architecture"]).flags()
    options, schedule = checkpoint.get("options") or {}, checkpoint.get("schedule")
    values, taken, mismatch, changed = {}, {}, [], []
    for flag in config.flags(ARCH, ARCH_SOFT, RESUMED, TRAINED):
        source = arch if config.policy(flag) in (ARCH, ARCH_SOFT) else options
        mine, theirs = getattr(config, flag), source.get(flag)
        if flag not in source or theirs == mine or (source is arch and theirs is None):  # None: does not apply
            continue
        if flag not in typed:
            values[flag] = taken[flag] = theirs
        elif config.policy(flag) == TRAINED:  # --direction: swapped data, the networks would learn the reversed task
            raise UserError(f"--continue_train --{flag} {mine}: {path} was trained with --{flag} {theirs}, and resumed "
                            f"another way its networks would learn another task: drop --{flag}, or train under a new "
                            f"--name")
        elif config.policy(flag) == ARCH:
            mismatch.append(f"{flag}: checkpoint {theirs!r}, flags {mine!r}")
    if mismatch:
        raise UserError(f"--continue_train: {path} is of another architecture ({'; '.join(mismatch)}); use the flags "
                        f"it was trained with, or a new --name")
    if taken:
        say("note: resuming with the checkpoint's " + ", ".join(f"{k} {v}" for k, v in taken.items())
            + " (flags not given)")
    kinds = (SCHEDULE, FIXED)
    if schedule is None:  # an older version's checkpoint: FIXED flags from its options still
        if config.flags(SCHEDULE):
            say("note: the checkpoint does not record its schedule (an older version wrote it): the schedule flags "
                "are used as given")
        schedule, kinds = {}, (FIXED,)
    for flag in config.flags(*kinds):
        mine, theirs = getattr(config, flag), schedule.get(flag, options.get(flag, getattr(config, flag)))
        if theirs == mine:
            continue
        if flag in typed and config.policy(flag) == SCHEDULE:
            changed.append(f"--{flag} {mine}: the checkpoint had {theirs}; using {mine} from epoch "
                           f"{checkpoint['counters']['epoch']}")
        else:
            values[flag] = theirs
            if flag in typed:
                changed.append(f"note: --{flag} {mine} ignored: the checkpoint was trained with {theirs}")
    for line in changed:
        say(line)
    return values


def tested(config, typed, checkpoint, spec, say):
    """test.py: {flag: value} that differ from the command line: the architecture the checkpoint holds, and how it
    was trained where the user did not say otherwise."""
    arch, options = spec.flags(), checkpoint.get("options") or {}
    if config.model != "test" and find_model_using_name(config.model).dims != spec.dims:  # its flags do not fit
        raise UserError(f"--model {config.model} is a {3 if spec.dims == 2 else 2}D model, but the checkpoint holds "
                        f"a {spec.dims}D {arch.get('model')} model: give --model {arch.get('model')} (or --model test)")
    values = {k: v for k, v in arch.items() if k not in vars(config)}  # its model's flags this --model lacks
    for flag in config.flags(ARCH, ARCH_SOFT):
        mine, theirs = getattr(config, flag), arch.get(flag)
        if flag not in arch or theirs == mine:
            continue
        values[flag] = theirs
        if flag == "model":
            say(f"note: --model {mine} ignored: the checkpoint holds a {theirs} model")
        elif flag in typed and theirs is not None:
            say(f"note: --{flag} {mine} ignored: the checkpoint was trained with {theirs}")
    for flag in config.flags(FIXED):  # fixed when training started (a volume model's intensity windows)
        mine, theirs = getattr(config, flag), (checkpoint.get("schedule") or {}).get(flag, options.get(flag, mine))
        if theirs != mine:
            values[flag] = theirs
            if flag in typed:
                say(f"note: --{flag} {mine} ignored: the checkpoint was trained with {theirs}")
    for flag in config.flags(TRAINED):
        mine, theirs = getattr(config, flag), options.get(flag, getattr(config, flag))
        if theirs != mine and flag not in typed:
            values[flag] = theirs
            say(f"note: the model was trained with --{flag} {theirs}: testing it that way (give --{flag} to choose)")
        elif theirs != mine and flag == "direction":  # typed the other way: the data swapped, not the model run B->A
            say(f"note: the model was trained with --direction {theirs}; --direction {mine} swaps the test data (its "
                f"domain A reads the {mine[0]} images, results in {config.phase}_{config.epoch}_{mine}); to "
                f"translate B to A give --model test --direction BtoA")
    if spec.dims == 2 and not typed & {"preprocess", "load_size", "crop_size"}:
        values.update(trained_scale(config, options, say))
    return values


def trained_scale(config, options, say):
    """test.py on 2D images without a typed --preprocess, --load_size or --crop_size: {flag: value} that read each
    whole test image at the scale the model was trained at (data.test_scale), said where not the default."""
    trained = options.get("preprocess")
    scale = test_scale(trained, options.get("load_size"), options.get("crop_size"))
    values = {k: v for k, v in scale.items() if getattr(config, k) != v}
    if values:
        size = scale.get("load_size")
        how = {"none": "every image at its own size", "resize_and_crop": f"images resized to {size}x{size}",
               "scale_width": f"images scaled to {size} wide"}[scale["preprocess"]]
        flags = " ".join(f"--{k} {options.get(k)}" for k in ("preprocess", "load_size", "crop_size")
                         if k in options and (k == "preprocess" or trained != "none"))
        say(f"note: the model was trained with {flags}: testing {how} (give --preprocess, --load_size or "
            f"--crop_size to choose)")
    return values
