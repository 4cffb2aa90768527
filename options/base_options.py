"""Options shared by train.py and test.py, with the pytorch-CycleGAN-and-pix2pix flag names."""
import argparse
import difflib
import os
import re
import sys

import torch

import data
import models
from data import image_folder
from models.config import INIT_TYPES, NETD, NETG, NORMS, DiscriminatorConfig, GeneratorConfig
from util import distributed
from util.argtypes import COUNT, NONNEG_INT, POSITIVE, run_name
from util.errors import UserError
from util.flags import ARCH, ARCH_SOFT, RESUMED, RUN, TRAINED, FlagParser, RunConfig

# The original RevGAN (2018) flag names, accepted with a notice.
DEPRECATED = {
    "--which_model_netG": "--netG", "--which_model_netD": "--netD", "--niter": "--n_epochs",
    "--niter_decay": "--n_epochs_decay", "--loadSize": "--load_size", "--fineSize": "--crop_size",
    "--batchSize": "--batch_size", "--which_direction": "--direction", "--which_epoch": "--epoch",
}


def translate_deprecated(argv, stream=None):
    """Maps 2018 flag names to current ones (``--niter 5`` and ``--niter=5``), with a one-line notice each."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name in DEPRECATED:
            print(f"notice: {name} is deprecated; use {DEPRECATED[name]}", file=stream or sys.stderr)
            arg = DEPRECATED[name] + eq + value
        out.append(arg)
    return out


_UNSET = object()


def _given(argv, flag):
    """The value of ``flag`` in ``argv`` (``--flag v`` or ``--flag=v``), or None."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


class ArgumentParser(FlagParser):
    """argparse with short errors: the message first, a did-you-mean for a mistyped flag (or the models a flag
    belongs to), and where to find the flags; no usage dump. Exit status 2, as argparse's."""

    def __init__(self, *args, is_train=False, model=None, script=None, usage=None, **kwargs):
        self.script = script or ("train.py" if is_train else "test.py")
        super().__init__(*args, usage=usage or f"python {self.script} --dataroot DIR --name NAME --model MODEL [flags]",
                         **kwargs)
        self.is_train, self.model = is_train, model

    def flags(self):
        return [s for a in self._actions for s in a.option_strings if s.startswith("--")]

    def error(self, message):
        """One line: what is wrong, a did-you-mean (or which models own a flag), and where all flags are listed."""
        hints = []
        unknown = re.match(r"unrecognized arguments: (.*)", message)
        others = model_flags(self.is_train) if unknown else {}
        for token in (unknown.group(1).split() if unknown else []):
            if not token.startswith("--"):
                continue
            flag = token.split("=", 1)[0]
            owners = [m for m, flags in others.items() if flag in flags]
            close = _closest(flag, self.flags())
            elsewhere = _closest(flag, {f for flags in others.values() for f in flags})
            if not self.is_train and flag in training_flags():
                hints.append(f"{flag} is a train.py flag: {self.script} does not take it (drop it)")
            elif owners:
                hints.append(f"{flag} belongs to --model {', '.join(owners)}")
            elif close:
                hints.append(f"did you mean {close}?")
            elif elsewhere:
                hints.append(f"did you mean {elsewhere} (a flag of --model "
                             f"{', '.join(m for m, flags in others.items() if elsewhere in flags)})?")
        model = self.model if self.model in models.available_models() else "MODEL"
        hints.append(f"all flags: python {self.script} --model {model} --help")
        print(f"error: {message}; " + "; ".join(hints), file=sys.stderr)
        sys.exit(2)


def _closest(flag, candidates):
    """The candidate closest to ``flag`` (ignoring case), or None."""
    lower = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(flag.lower(), list(lower), n=1, cutoff=0.75)
    return lower[match[0]] if match else None


def model_flags(is_train):
    """{model: the flags it adds}, for the error of a flag given to the wrong model."""
    out = {}
    for name in models.available_models():
        probe = FlagParser(add_help=False)
        try:
            models.get_option_setter(name)(probe, is_train)
        except UserError:  # --model test refuses training
            continue
        out[name] = {s for a in probe._actions for s in a.option_strings}
    return out


def training_flags():
    """The flags train.py takes (its own and every model's), for the error of one given to another entry point."""
    from options.train_options import TrainOptions  # (it imports this module)
    probe = FlagParser(add_help=False)
    TrainOptions().initialize(probe)
    return {s for a in probe._actions for s in a.option_strings} | set().union(*model_flags(True).values())


def available_memory():
    """Bytes of memory available to this process (Linux: MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_resize_memory(opt):
    """Refuses a --load_size whose resized images cannot fit in memory (before any data is read)."""
    if opt.dataset_mode == "volume" or opt.preprocess in ("crop", "none"):
        return
    need = opt.load_size ** 2 * 3 * 4 * 3  # float32 RGB, with the resize's temporaries
    free = available_memory()
    if free is not None and need > free:
        raise UserError(f"--load_size {opt.load_size}: resizing an image to {opt.load_size}x{opt.load_size} needs "
                        f"about {need / 2 ** 30:.0f} GB of memory, more than the {free / 2 ** 30:.0f} GB available: "
                        f"use a smaller --load_size")


class BaseOptions:
    is_train = False
    script = usage = purpose = None  # the entry point's name, usage line and purpose (default: train.py/test.py's)

    def initialize(self, parser):
        parser.add_argument("--dataroot", policy=RESUMED, default=None,
                            help="path to images (trainA/trainB, train/ of A|B pairs, or volumes); "
                                 "default: a small demo dataset built on first use under ./datasets/demo")
        parser.add_argument("--name", policy=RUN, type=run_name, default="experiment_name",
                            help="name of the experiment: folder under checkpoints_dir and results_dir")
        parser.add_argument("--gpu_ids", policy=RUN, default="0", help="e.g. 0  0,1,2  or -1 for the CPU")
        parser.add_argument("--checkpoints_dir", policy=RUN, default="./checkpoints", help="models are saved here")
        parser.add_argument("--seed", policy=RESUMED, type=NONNEG_INT, default=0,
                            help="random seed (data order, augmentation, init)")
        # model
        parser.add_argument("--model", policy=ARCH, default="cycle_gan", choices=models.available_models(),
                            help="which model to train or test")
        parser.add_argument("--input_nc", policy=ARCH, type=int, default=3, choices=[1, 3],
                            help="channels of domain A images")
        parser.add_argument("--output_nc", policy=ARCH, type=int, default=3, choices=[1, 3],
                            help="channels of domain B images")
        parser.add_argument("--ngf", policy=ARCH, type=COUNT, default=GeneratorConfig.ngf,
                            help="generator filters in the first conv layer")
        parser.add_argument("--ndf", policy=ARCH, type=COUNT, default=DiscriminatorConfig.ndf,
                            help="discriminator filters in the first conv layer")
        parser.add_argument("--netD", policy=ARCH, default=DiscriminatorConfig.netD, choices=NETD,
                            help="basic: 70x70 PatchGAN; n_layers: PatchGAN of --n_layers_D; pixel: 1x1 PatchGAN")
        parser.add_argument("--netG", policy=ARCH, default=GeneratorConfig.netG, choices=NETG,
                            help="generator architecture")
        parser.add_argument("--n_layers_D", policy=ARCH, type=COUNT, default=DiscriminatorConfig.n_layers,
                            help="layers of the n_layers discriminator")
        parser.add_argument("--norm", policy=ARCH, default=GeneratorConfig.norm, choices=NORMS,
                            help="normalization layer; syncbatch: batch norm with statistics over all GPUs of a "
                                 "torchrun job (plain batch norm in a single process)")
        parser.add_argument("--init_type", policy=RESUMED, default=GeneratorConfig.init_type, choices=INIT_TYPES,
                            help="weight initialization")
        parser.add_argument("--init_gain", policy=RESUMED, type=POSITIVE, default=GeneratorConfig.init_gain,
                            help="scale for normal, xavier and orthogonal")
        parser.add_argument("--no_dropout", policy=ARCH_SOFT, action="store_true", help="no dropout in the generator")
        # data
        parser.add_argument("--dataset_mode", policy=RESUMED, default="unaligned", choices=data.available_datasets(),
                            help="how datasets are loaded")
        parser.add_argument("--direction", policy=TRAINED, default="AtoB", choices=["AtoB", "BtoA"],
                            help="BtoA swaps the domains (the model's A reads the B images); for --model test: the "
                                 "direction to run")
        parser.add_argument("--serial_batches", policy=RESUMED, action="store_true",
                            help="take images in order (otherwise shuffled, and B drawn at random if unaligned)")
        parser.add_argument("--num_threads", policy=RUN, type=NONNEG_INT, default=4,
                            help="data-loading worker processes")
        parser.add_argument("--batch_size", policy=RESUMED, type=COUNT, default=1,
                            help="images (or patches) per step and process")
        parser.add_argument("--load_size", policy=RESUMED, type=COUNT, default=286, help="scale images to this size")
        parser.add_argument("--crop_size", policy=RESUMED, type=COUNT, default=256, help="then crop to this size")
        parser.add_argument("--max_dataset_size", policy=RESUMED, type=COUNT, default=float("inf"),
                            help="use at most this many samples")
        parser.add_argument("--preprocess", policy=RESUMED, default="resize_and_crop",
                            choices=["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"],
                            help="resize to --load_size and/or crop to --crop_size; none keeps every image's size")
        parser.add_argument("--no_flip", policy=RESUMED, action="store_true", help="no random horizontal flips")
        parser.add_argument("--display_winsize", policy=RESUMED, type=COUNT, default=256,
                            help="image size shown in HTML pages")
        # misc
        parser.add_argument("--epoch", policy=RUN, default="latest",
                            help="which checkpoint to load: latest or an epoch number")
        parser.add_argument("--verbose", policy=RUN, action="store_true",
                            help="print each network's architecture and parameter count")
        parser.add_argument("--fid_weights", policy=RUN, default=None,
                            help="FID/KID (test.py --fid, --val_metric FID_...): the InceptionV3 weights file "
                                 "(weights-inception-2015-12-05-6726825d.pth) for machines without internet; default: "
                                 "torch's hub cache, downloaded there on first use")
        parser.add_argument("--suffix", policy=RUN, default="",
                            help="appended to --name, e.g. {model}_{netG}_size{load_size}")
        return parser

    def gather_options(self, argv=None):
        """The base flags, then those of --model and of --dataset_mode (each in its own --help section); --help
        shows them all once --model (and --dataset_mode) are known. Records which flags were typed in
        ``self.typed``."""
        argv = translate_deprecated(list(sys.argv[1:] if argv is None else argv))
        parser = ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter, add_help=False,
                                description="RevGAN " + (self.purpose or ("training" if self.is_train else "testing"))
                                + ": the flags below depend on --model and --dataset_mode",
                                is_train=self.is_train, model=_given(argv, "--model"), script=self.script,
                                usage=self.usage)
        parser = self.initialize(parser)
        opt, _ = parser.parse_known_args(argv)
        parser.model = opt.model
        parser = models.get_option_setter(opt.model)(parser, self.is_train)
        opt, _ = parser.parse_known_args(argv)
        group = parser.add_argument_group(f"--dataset_mode {opt.dataset_mode}")
        data.get_option_setter(opt.dataset_mode)(group, self.is_train)
        parser.add_argument("-h", "--help", action="help", help="show the flags of this --model and --dataset_mode")
        self.parser = parser
        unset = argparse.Namespace(**{a.dest: _UNSET for a in parser._actions if a.dest != "help"})
        self.typed = {k for k, v in vars(parser.parse_args(argv, namespace=unset)).items() if v is not _UNSET}
        return parser.parse_args(argv)

    def parse(self, argv=None) -> RunConfig:
        """The command line as a frozen RunConfig: a fresh run's configuration (options.resolution.resolve adds what
        a checkpoint decides)."""
        values = vars(self.gather_options(argv))
        values["is_train"] = self.is_train
        image_folder.forget_notes()  # a new run (another in the same process says its notes again)
        self.adjust(values)
        self.opt = RunConfig(values, self.parser.policies())
        check_resize_memory(self.opt)
        return self.opt

    def adjust(self, values: dict) -> None:
        """The values made concrete before they are frozen: --suffix into --name, --gpu_ids as a list (this
        process's GPU under torchrun; none without a GPU), --num_threads at most the cores."""
        if values["suffix"]:
            values["name"] = values["name"] + "_" + values["suffix"].format(**values)
        try:
            ids = [int(s) for s in str(values["gpu_ids"]).split(",") if s.strip() != ""]
        except ValueError:
            raise UserError(f"--gpu_ids {values['gpu_ids']}: give GPU numbers separated by commas (0  or  0,1), or -1 "
                            f"for the CPU") from None
        ids = [i for i in ids if i >= 0]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if values["num_threads"] > cores:  # more loader processes than cores only slows down (and torch warns)
            if "num_threads" in self.typed:
                print(f"note: --num_threads {values['num_threads']}: this machine has {cores} cores; using {cores}",
                      file=sys.stderr)
            values["num_threads"] = cores
        if ids and not torch.cuda.is_available():
            print("note: no GPU found; running on the CPU (pass --gpu_ids -1 to silence this)", file=sys.stderr)
            ids = []
        elif ids and max(ids) >= torch.cuda.device_count():
            raise UserError(f"--gpu_ids {','.join(map(str, ids))}: only {torch.cuda.device_count()} GPU(s) "
                            f"visible (use ids 0..{torch.cuda.device_count() - 1})")
        values["gpu_ids"] = distributed.process_gpu_ids(ids)

    def format_options(self, opt):
        lines = ["----------------- Options ---------------"]
        for k, v in sorted(vars(opt).items()):
            default = self.parser.get_default(k)
            note = f"\t[default: {default}]" if v != default and default is not None else ""
            lines.append(f"{k:>25}: {v!s:<30}{note}")
        lines.append("----------------- End -------------------")
        return "\n".join(lines)

    def save_options(self, opt, folder, filename):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, filename), "w") as f:
            f.write(self.format_options(opt) + "\n")
