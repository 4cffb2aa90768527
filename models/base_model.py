"""The model interface (setup / set_input / optimize_parameters / visuals / losses / save / load) and the full-state
checkpoints behind --continue_train and test.py."""
import contextlib
import copy
import math
import os
import random
import re
import warnings
from collections import OrderedDict

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from models.reversible import padding_for
from util import distributed
from util.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from util.errors import UserError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# Options that decide the networks' structure. They travel inside each checkpoint: test.py rebuilds from them, and
# --continue_train refuses a checkpoint whose values differ (SOFT ones only change behaviour, not parameters).
ARCH_KEYS = ("model", "netG", "netD", "ngf", "ndf", "n_layers_D", "input_nc", "output_nc", "norm", "n_blocks",
             "n_downsampling", "coupling", "no_output_tanh", "dims", "iunet_architecture")
SOFT_ARCH_KEYS = ("no_dropout", "use_naive")


class BaseModel:
    dims = 2
    # --direction BtoA swaps the data folders (the model's domain A reads B's files), as in training. TestModel
    # sets False: its --direction picks the generator's direction and its translators name the true domains.
    direction_swaps_data = True

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return parser

    def __init__(self, opt):
        self.opt = opt
        self.is_train = opt.is_train
        self.gpu_ids = opt.gpu_ids
        self.device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.loss_names, self.model_names, self.visual_names = [], [], []
        self.optimizers, self.schedulers, self.scalers, self.pools = [], [], [], {}
        self.counters = {"epoch": opt.epoch_count if hasattr(opt, "epoch_count") else 1, "epoch_iter": 0,
                         "total_iters": 0}
        self.image_paths = []
        self._checked_shapes = set()
        self._padding_noted = False

    # -- helpers for subclasses -----------------------------------------------------------------------------------
    def net(self, name):
        """Network ``name`` itself (under torchrun ``self.net<name>`` is its DistributedDataParallel wrapper, which
        the training code calls; checkpoints and checks use the network inside)."""
        net = getattr(self, "net" + name)
        return net.module if isinstance(net, DistributedDataParallel) else net

    def architecture(self):
        arch = {k: getattr(self.opt, k, None) for k in ARCH_KEYS + SOFT_ARCH_KEYS}
        arch["dims"] = self.dims
        if arch.get("netG") != "iunet":
            arch["iunet_architecture"] = None  # only meaningful for --netG iunet
        return arch

    def note_input_size(self, name, x):
        """Generators take any size: one that is not a multiple of what network ``name`` needs is reflection-padded
        up to it and the output cropped back (see networks). Says so once per run, on the first such size."""
        multiple = getattr(self.net(name), "size_multiple", 1)
        spatial = tuple(x.shape[2:])
        extra = padding_for(spatial, multiple)
        if self._padding_noted or not any(extra):
            return
        self._padding_noted = True
        if distributed.is_main():
            padded = tuple(s + e for s, e in zip(spatial, extra))
            tqdm.write(f"note: --netG {self.opt.netG} needs sizes that are multiples of {multiple}: inputs of "
                       f"{'x'.join(map(str, spatial))} are reflection-padded to {'x'.join(map(str, padded))} and "
                       f"its outputs cropped back (shown once)")

    def check_disc_size(self, name, channels, spatial):
        key = (name, channels, tuple(spatial))
        if key in self._checked_shapes:
            return
        try:  # a dry run of a copy on the meta device: shapes only, no compute
            with torch.no_grad():
                probe = copy.deepcopy(self.net(name)).to("meta")
                out = probe.forward(torch.empty((1, channels) + tuple(spatial), device="meta"))  # never compiled
            ok = all(s > 0 for s in out.shape[2:])
        except (RuntimeError, ValueError):  # ValueError: a norm layer left with a single element
            ok = False
        if not ok:
            raise UserError(f"{'patches' if self.dims == 3 else 'images'} of {'x'.join(map(str, spatial))} are too "
                            f"small for --netD {self.opt.netD}: use a larger "
                            f"{'--patch_size' if self.dims == 3 else '--crop_size'}, a smaller --n_layers_D with "
                            f"--netD n_layers, or --netD pixel")
        self._checked_shapes.add(key)

    def check_losses_finite(self, names):
        for name in names:
            value = getattr(self, "loss_" + name)
            if not torch.isfinite(value).all():
                raise UserError(
                    f"loss {name} became {float(value.detach())} at epoch {self.counters['epoch']}, total_iters "
                    f"{self.counters['total_iters']}; training stopped, the last good checkpoint is kept "
                    f"(try a lower --lr, or --gan_mode lsgan)")

    @staticmethod
    def set_requires_grad(nets, requires_grad=False):
        for net in nets if isinstance(nets, (list, tuple)) else [nets]:
            if net is not None:
                for p in net.parameters():
                    p.requires_grad = requires_grad

    # -- the interface ----------------------------------------------------------------------------------------------
    def set_input(self, input):
        raise NotImplementedError

    def forward(self):
        raise NotImplementedError

    def optimize_parameters(self):
        raise NotImplementedError

    def setup(self, opt):
        """Schedulers (and fp16 gradient scalers) for training; loads a checkpoint for testing or --continue_train;
        then --compile and, under torchrun, DistributedDataParallel."""
        if self.is_train:
            from models.networks import get_scheduler
            self.schedulers = [get_scheduler(o, opt) for o in self.optimizers]
            self.scalers = [torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
                            for _ in self.optimizers]
        if not self.is_train or opt.continue_train:
            self.load(opt.epoch)
        if self.is_train and getattr(opt, "compile", False):
            for name in self.model_names:
                self.compile_network(self.net(name))
        if self.is_train and distributed.world_size() > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            for name in self.model_names:
                # every parameter is used in every backward that reaches the network: no unused-parameter search
                # (it would also misfire on a generator called several times per step)
                setattr(self, "net" + name, DistributedDataParallel(self.net(name), device_ids=ids))

    @staticmethod
    def compile_network(net):
        """torch.compile in place (the state_dict keeps its names): a network's ``compile_parts()`` when it has a
        reversible core (the core stays eager), the whole network otherwise."""
        for part in (net.compile_parts() if hasattr(net, "compile_parts") else [net]):
            part.compile()

    # -- mixed precision ------------------------------------------------------------------------------------------
    @property
    def amp(self):
        return getattr(self.opt, "amp", "none")

    def autocast(self):
        """The forward passes' context: autocast to --amp's dtype, or nothing."""
        if self.amp == "none":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AMP_DTYPES[self.amp])

    def update(self, loss, optimizer):
        """Backward of ``loss`` (outside autocast) and one step of ``optimizer``; with --amp fp16 through the
        optimizer's gradient scaler, which skips steps with inf/NaN gradients and adapts its scale."""
        scaler = self.scalers[self.optimizers.index(optimizer)] if self.scalers else None
        with torch.autocast(self.device.type, enabled=False):
            (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    def reconstruction_error(self):
        """``||h - core^-1(core(h))|| / ||h||`` of the generator's reversible core on the current batch's A side (h:
        the core's input), in eval mode under the training's autocast; None for models without a reversible core."""
        if "G" not in self.model_names or getattr(self, "real_A", None) is None:
            return None
        net = self.net("G")
        if not hasattr(net, "roundtrip_error"):
            return None
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad(), self.autocast():
                return float(net.roundtrip_error(self.real_A))
        finally:
            net.train(was_training)

    def eval(self):
        for name in self.model_names:
            self.net(name).eval()

    def train(self):
        for name in self.model_names:
            self.net(name).train()

    def test(self):
        with torch.no_grad():
            self.forward()
            self.compute_visuals()

    def compute_visuals(self):
        pass

    def get_image_paths(self):
        return self.image_paths

    def update_learning_rate(self, metric=None):
        """Steps every scheduler once per epoch; plateau schedulers step on ``metric`` (the epoch's mean loss)."""
        for scheduler in self.schedulers:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if metric is None or not math.isfinite(metric):
                    raise UserError("--lr_policy plateau needs a finite epoch loss to step on")
                scheduler.step(metric)
            else:
                with warnings.catch_warnings():  # fp16: the gradient scaler skipped the first steps (inf/NaN)
                    warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"))
                    scheduler.step()
        return self.optimizers[0].param_groups[0]["lr"] if self.optimizers else None

    def get_current_visuals(self):
        return OrderedDict((name, getattr(self, name)) for name in self.visual_names if hasattr(self, name))

    def get_current_losses(self):
        return OrderedDict((name, float(getattr(self, "loss_" + name).detach())) for name in self.loss_names
                           if hasattr(self, "loss_" + name))

    # -- checkpoints ----------------------------------------------------------------------------------------------------
    def state(self):
        """The full training state. Random states and image pools differ between torchrun's processes: every
        rank's go into ``ranks`` (gathered on every rank; only rank 0 writes)."""
        return {
            "architecture": self.architecture(),
            "networks": {n: self.net(n).state_dict() for n in self.model_names},
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "scalers": [s.state_dict() for s in self.scalers],
            "counters": dict(self.counters),
            "ranks": distributed.gather(self.rank_state()),
            "extra": self.extra_state(),
        }

    def rank_state(self):
        return {"pools": {k: p.state_dict() for k, p in self.pools.items()},
                "rng": {"torch": torch.get_rng_state(), "python": list(_py_state_to_list(random.getstate())),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}}

    def load_rank_state(self, state, path):
        ranks = state.get("ranks") or [{"pools": state.get("pools", {}), "rng": state["rng"]}]  # older checkpoints
        rank, world = distributed.rank(), distributed.world_size()
        if len(ranks) != world and distributed.is_main():
            print(f"note: {path} was written by {len(ranks)} process(es), this run has {world}: the data order "
                  f"continues, but random draws (dropout, image pools) differ from an uninterrupted run")
        mine = ranks[rank % len(ranks)]
        for k, p in self.pools.items():
            if k in mine["pools"]:
                p.load_state_dict(mine["pools"][k], self.device)
        torch.set_rng_state(mine["rng"]["torch"])
        random.setstate(_py_state_from_list(mine["rng"]["python"]))
        if mine["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(mine["rng"]["cuda"])

    def extra_state(self):
        return {}

    def load_extra_state(self, extra):
        pass

    def save(self, epoch):
        """Writes checkpoint ``epoch``; under torchrun every rank must call it (they gather), rank 0 writes."""
        state = self.state()
        if distributed.is_main():
            save_checkpoint(state, checkpoint_path(self.opt, epoch))

    def load(self, epoch):
        path = checkpoint_path(self.opt, epoch)
        if self.is_train and not os.path.isfile(path):
            raise UserError(f"--continue_train: no checkpoint {path} (drop --continue_train to start fresh, "
                            f"or pick an existing --epoch)")
        state = load_checkpoint(path)
        if self.is_train:
            mine, theirs = self.architecture(), state["architecture"]
            diff = [f"{k}: checkpoint {theirs.get(k)!r}, flags {mine.get(k)!r}" for k in ARCH_KEYS
                    if theirs.get(k) != mine.get(k)]
            if diff:
                raise UserError(f"--continue_train: {path} is of another architecture ({'; '.join(diff)}); use "
                                f"the flags it was trained with, or a new --name")
        for name in self.model_names:
            if name not in state["networks"]:
                raise UserError(f"checkpoint {path} has no network {name} (it holds "
                                f"{', '.join(state['networks'])})")
            try:
                self.net(name).load_state_dict(state["networks"][name])
            except RuntimeError as e:
                raise UserError(f"checkpoint {path} does not fit network {name}: {str(e).splitlines()[0][:200]}") \
                    from None
        self.loaded_extra = state.get("extra", {})
        self.load_extra_state(self.loaded_extra)
        if self.is_train:
            for o, s in zip(self.optimizers, state["optimizers"]):
                o.load_state_dict(s)
            for sch, s in zip(self.schedulers, state["schedulers"]):
                sch.load_state_dict(s)
                if isinstance(sch, torch.optim.lr_scheduler.LambdaLR):  # --lr_policy linear: the schedule of the
                    # current --n_epochs/--n_epochs_decay (raised to train on), not the saved learning rate
                    for group, base, rule in zip(sch.optimizer.param_groups, sch.base_lrs, sch.lr_lambdas):
                        group["lr"] = base * rule(sch.last_epoch)
            for sc, s in zip(self.scalers, state.get("scalers", [])):
                if s and sc.is_enabled():  # an fp32 run's scalers are empty; a new fp16 run starts its own
                    sc.load_state_dict(s)
            self.counters = dict(state["counters"])
            self.load_rank_state(state, path)
        if distributed.is_main():
            print(f"loaded {path} (epoch {state['counters']['epoch']}, total_iters "
                  f"{state['counters']['total_iters']})")
        return state


def _py_state_to_list(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _py_state_from_list(state):
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
