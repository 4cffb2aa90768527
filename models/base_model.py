"""The interface every model offers train.py and test.py, and what a model author writes (models/pix2pix_model.py
is the shortest complete example): a model declares ``loss_names`` (logged: ``self.loss_<name>``),
``generator_losses`` (the generators' objective, which --lr_policy plateau steps on) and ``directions`` ({"AtoB":
(network name, direction to call it with), ...}); builds its networks from ``spec`` with ``add_network`` and its
optimizers with ``add_optimizer`` in ``__init__(opt, spec)``; and defines ``set_input(data)`` (a batch {"A", "B",
"A_paths", ...}), ``forward()`` and ``optimize_parameters()`` (forward passes under ``self.precision.autocast()``,
updates by ``self.precision.update(loss, optimizer)``). Checkpoints hold the full state (models.training_state)."""
import os
from collections import OrderedDict, namedtuple

import torch
from torch.nn.parallel import DistributedDataParallel

from models import networks, schedule
from models.config import ModelSpec
from models.guards import InputGuards, nan_hint
from models.precision import Precision
from models.training_state import TrainingProgress, full_state, load_full_state
from util import distributed
from util.checkpoint import checkpoint_path, save_checkpoint

# A translation the model performs: images of domain ``source`` to domain ``target`` by ``fn`` (a batch -> a batch).
Translation = namedtuple("Translation", "source target fn")
OUTPUT_LABEL = {"AtoB": "fake_B", "BtoA": "fake_A"}


class BaseModel:
    dims = 2  # 3 for the volume models (models.volume.VolumeModel)
    direction_swaps_data = True  # --direction BtoA swaps the data folders, as in training (TestModel: see there)
    loss_names: tuple = ()
    generator_losses: tuple = ()
    directions: dict = {}
    volume = None  # 3D models: models.volume.VolumeMeta
    has_cycle_error = False  # True: visuals rec_A, rec_B are A -> B -> A and B -> A -> B (CycleModel)

    @staticmethod
    def modify_commandline_options(parser, is_train):  # the model's own flags, each with its policy (util.flags)
        return parser

    @staticmethod
    def architecture_defaults(config, spec: ModelSpec) -> dict:
        """{flag: value} for the model's flags left at None whose default depends on the architecture ``spec``
        (options.resolution applies them once, so that train_opt.txt and the checkpoint record the value used)."""
        return {}

    @classmethod
    def directions_of(cls, spec: ModelSpec) -> dict:
        """The directions a model of this class with the networks of ``spec`` translates (``directions``; a paired
        RevGAN trained one way, its default: A -> B only)."""
        return cls.directions

    def __init__(self, opt, spec: ModelSpec):
        """``opt``: the run configuration (options.resolution); ``spec``: the networks to build."""
        self.opt, self.spec, self.dims, self.is_train = opt, spec, spec.dims, opt.is_train
        self.device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.model_names, self.visual_names, self.image_paths = [], [], []
        self.optimizers, self.schedulers, self.pools = [], [], {}
        self.progress = TrainingProgress(epoch=opt.epoch_count if self.is_train else 1)
        self.precision = Precision(opt.amp if self.is_train else "none", self.device)
        self.guards = InputGuards(spec.dims, spec.generator.netG, spec.discriminator.netD, nan_hint(opt))
        self.loaded_from = None  # the checkpoint the networks came from, as the results page names it
        self.trained_direction = "AtoB"  # the --direction the checkpoint was trained with

    def add_network(self, name: str, net: torch.nn.Module) -> torch.nn.Module:
        """Registers ``net`` as network ``name`` (``self.net<name>``, saved in checkpoints) on the model's device."""
        setattr(self, "net" + name, net.to(self.device))
        self.model_names.append(name)
        return getattr(self, "net" + name)

    def add_optimizer(self, *nets: torch.nn.Module, gain_lr_cap=None) -> torch.optim.Optimizer:
        """Adam over the parameters of ``nets`` with --lr (with ``gain_lr_cap``, the residual gains at most that, in
        their own group) and --beta1, its --lr_policy scheduler (and a gradient scaler under --amp fp16)."""
        flat = [p for n in nets for p in n.parameters()]
        groups = flat if gain_lr_cap is None else networks.optimizer_groups(nets, self.opt.lr, gain_lr_cap)
        optimizer = torch.optim.Adam(groups, lr=self.opt.lr, betas=(self.opt.beta1, 0.999))
        optimizer.flat_params = flat  # the order of a one-group state (training_state.split_groups)
        self.optimizers.append(optimizer)
        self.schedulers.append(schedule.make_scheduler(optimizer, self.opt))
        self.precision.add_optimizer(optimizer)
        return optimizer

    def net(self, name: str) -> torch.nn.Module:
        """Network ``name`` itself (under torchrun ``self.net<name>`` is its DistributedDataParallel wrapper)."""
        net = getattr(self, "net" + name)
        return net.module if isinstance(net, DistributedDataParallel) else net

    def translate(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """``x`` translated in ``direction`` by the network ``directions`` names (looked up at each call)."""
        name, call = self.directions[direction]
        return getattr(self, "net" + name)(x, call)

    def translators(self) -> dict:
        """{output label: Translation} for each direction the model translates (test.py, whole-volume inference)."""
        return {OUTPUT_LABEL[d]: Translation(d[0], d[-1], lambda x, d=d: self.translate(x, d)) for d in self.directions}

    def check_input(self, x: torch.Tensor, direction: str = "AtoB") -> None:
        """Refuses an ``x`` too small for the generator of ``direction``; notes (once) when it will be padded."""
        name, call = self.directions[direction]
        self.guards.check_generator(self.net(name), call, x.shape[1], x.shape[2:])
        self.guards.note_padding(self.net(name), x)

    def set_input(self, data: dict) -> None:
        raise NotImplementedError

    def forward(self) -> None:
        raise NotImplementedError

    def optimize_parameters(self) -> None:
        raise NotImplementedError

    def setup(self, opt, checkpoint=None) -> None:
        """The networks (for --continue_train the whole training state) from ``checkpoint`` (read from --epoch), if
        any; for training, a check of the learning rates, --compile and, under torchrun, DistributedDataParallel."""
        if checkpoint is not None:
            load_full_state(self, checkpoint, checkpoint_path(opt, opt.epoch))
        if getattr(opt, "verbose", False) and distributed.is_main():
            self.print_networks()
        if not self.is_train:
            return
        schedule.check_positive_rate(self.optimizers, self.progress.epoch, opt.n_epochs + opt.n_epochs_decay)
        for name in self.model_names:
            net = self.net(name)
            for part in getattr(net, "compile_parts", lambda: [net])() if opt.compile else []:
                # in place: the state_dict keeps its names. Static shapes (training's are fixed; a new shape compiles
                # again): with dynamic ones Inductor failed on the unshuffle stem's halved sizes ("cannot determine
                # truth value of Relational"), paired_revgan's default stem
                part.compile(dynamic=False)
            setattr(self, "net" + name, distributed.wrap(net, self.device))

    def print_networks(self) -> None:
        """--verbose: each network's architecture and parameter count (as CycleGAN's --verbose prints them)."""
        for name in self.model_names:
            net = self.net(name)
            print(f"[network {name}]\n{net}\n[network {name}] {sum(p.numel() for p in net.parameters()) / 1e6:.3f} M "
                  f"parameters")

    def train(self, mode: bool = True) -> None:
        for name in self.model_names:
            self.net(name).train(mode)

    def eval(self) -> None:
        self.train(False)

    def test(self) -> None:
        """forward() without gradients, then compute_visuals()."""
        with torch.no_grad():
            self.forward()
            self.compute_visuals()

    def compute_visuals(self) -> None:
        """Extra images for display, computed after forward (none by default)."""

    def get_image_paths(self) -> list:
        return self.image_paths

    def get_current_visuals(self) -> OrderedDict:
        return OrderedDict((name, getattr(self, name)) for name in self.visual_names if hasattr(self, name))

    def get_current_losses(self) -> OrderedDict:
        return OrderedDict((name, float(getattr(self, "loss_" + name).detach())) for name in self.loss_names
                           if hasattr(self, "loss_" + name))

    def generator_loss(self) -> float:
        """The generators' objective on the last step: the sum of the ``generator_losses``."""
        losses = self.get_current_losses()
        return sum(losses[name] for name in self.generator_losses if name in losses)

    def update_learning_rate(self, metric=None):
        """Steps the schedulers once per epoch (plateau on ``metric``); returns the new learning rate."""
        schedule.step(self.schedulers, metric)
        return self.optimizers[0].param_groups[0]["lr"] if self.optimizers else None

    def save(self, tag, **extra) -> None:
        """Writes checkpoint ``tag`` (latest, best or an epoch; models.training_state) with ``extra`` entries (e.g.
        validation's best); under torchrun every rank calls it (their random states are gathered), rank 0 writes."""
        state = full_state(self, **extra)
        if distributed.is_main():
            save_checkpoint(state, checkpoint_path(self.opt, tag))

    def extra_state(self) -> dict:  # the model's own data facts: the checkpoint's "extra" (models.volume)
        return {}

    def load_extra(self, extra: dict) -> None:
        pass
