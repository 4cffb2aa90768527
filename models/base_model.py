"""The interface every model offers train.py and test.py, and what a model author writes.

A model (``models/NAME_model.py``, class ``NAMEModel``, chosen by ``--model NAME``) subclasses BaseModel and:

- declares ``loss_names`` (logged: the values of ``self.loss_<name>``), ``generator_losses`` (those of them that
  form the generators' objective: train.py's plateau schedule steps on their sum) and ``directions`` (how each
  translation runs: {"AtoB": (network name, direction to call it with), ...});
- in ``__init__(opt, spec)``: builds its networks from ``spec`` (models.config.ModelSpec) with ``add_network``,
  and, for training, its optimizers with ``add_optimizer``, and sets ``visual_names``;
- defines ``set_input(data)``, ``forward()`` and ``optimize_parameters()`` (one training step, forward passes
  under ``self.precision.autocast()``, updates through ``self.precision.update(loss, optimizer)``).

Everything else is here: set-up (schedulers, loading, --compile, DistributedDataParallel), eval/test, visuals and
losses, learning-rate steps, full-state checkpoints (see models.training_state), the reconstruction monitor.
``models/pix2pix_model.py`` is the shortest complete example.
"""
import math
import os
import re
import warnings
from collections import OrderedDict, namedtuple

import torch
from torch.nn.parallel import DistributedDataParallel

from models.config import HARD_KEYS, ModelSpec
from models.guards import InputGuards
from models.networks import Generator
from models.schedule import check_positive_rate, make_scheduler, resolve_on_resume, restore, saved_schedule
from models.precision import Precision
from models.training_state import TrainingProgress, load_rank_state, rank_state
from models.volume import VolumeMeta
from util import distributed
from util.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from util.errors import UserError

# A translation the model performs: images of domain ``source`` to domain ``target`` by ``fn`` (a batch -> a batch).
Translation = namedtuple("Translation", "source target fn")
OUTPUT_LABEL = {"AtoB": "fake_B", "BtoA": "fake_A"}


class BaseModel:
    dims = 2  # 3 for the volume models
    # --direction BtoA swaps the data folders (the model's domain A reads B's files), as in training. TestModel
    # declares False: its --direction picks the generator's direction, and its translations name the true domains.
    direction_swaps_data = True
    loss_names: tuple = ()
    generator_losses: tuple = ()
    directions: dict = {}
    has_cycle_error = False  # True: visuals rec_A, rec_B are A -> B -> A and B -> A -> B (CycleModel)

    @staticmethod
    def modify_commandline_options(parser, is_train):
        """Adds the model's own flags (and its defaults for shared ones) to ``parser``."""
        return parser

    def __init__(self, opt, spec: ModelSpec):
        """Args:
            opt: the parsed options (the run: device, folders, training flags).
            spec: the networks to build (from the options, or from a checkpoint for test.py).
        """
        self.opt, self.spec = opt, spec
        self.dims = spec.dims
        self.is_train = opt.is_train
        self.gpu_ids = opt.gpu_ids
        self.device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
        self.save_dir = os.path.join(opt.checkpoints_dir, opt.name)
        self.model_names, self.visual_names = [], []
        self.optimizers, self.schedulers, self.pools = [], [], {}
        self.progress = TrainingProgress(epoch=opt.epoch_count if self.is_train else 1)
        self.precision = Precision(opt.amp if self.is_train else "none", self.device)
        self.guards = InputGuards(spec.dims, spec.generator.netG, spec.discriminator.netD, self._nan_hint())
        self.volume = VolumeMeta(patch_size=opt.patch_size if self.is_train else None) if self.dims == 3 else None
        self.image_paths = []
        self.real_A = None
        self.loaded_from = None  # the checkpoint the networks came from, as the results page names it
        self.trained_direction = "AtoB"  # the --direction the checkpoint was trained with

    def _nan_hint(self) -> str:
        if not self.is_train:
            return ""
        hints = [f"try a lower --lr than {self.opt.lr:g}"]
        if self.opt.amp == "fp16":
            hints.append("--amp bf16 (float16's range is narrow)")
        if self.opt.gan_mode != "lsgan":
            hints.append("--gan_mode lsgan")
        return ", or ".join(hints)

    # -- what a model builds with ---------------------------------------------------------------------------------
    def add_network(self, name: str, net: torch.nn.Module) -> torch.nn.Module:
        """Registers ``net`` as network ``name`` (``self.net<name>``, saved in checkpoints) on the model's device."""
        net = net.to(self.device)
        setattr(self, "net" + name, net)
        self.model_names.append(name)
        return net

    def add_optimizer(self, *nets: torch.nn.Module) -> torch.optim.Optimizer:
        """Adam over the parameters of ``nets`` with --lr and --beta1 (and a gradient scaler under --amp fp16)."""
        params = [p for n in nets for p in n.parameters()]
        optimizer = torch.optim.Adam(params, lr=self.opt.lr, betas=(self.opt.beta1, 0.999))
        self.optimizers.append(optimizer)
        self.precision.add_optimizer(optimizer)
        return optimizer

    def net(self, name: str) -> torch.nn.Module:
        """Network ``name`` itself (under torchrun ``self.net<name>`` is its DistributedDataParallel wrapper, which
        the training code calls; checkpoints and checks use the network inside)."""
        net = getattr(self, "net" + name)
        return net.module if isinstance(net, DistributedDataParallel) else net

    def translate(self, x: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """``x`` translated in ``direction`` by the network ``directions`` names (looked up at each call: under
        torchrun it is the DistributedDataParallel wrapper)."""
        name, call = self.directions[direction]
        return getattr(self, "net" + name)(x, call)

    def translators(self) -> dict:
        """{output label: Translation} for each direction the model translates (test.py, whole-volume inference)."""
        return {OUTPUT_LABEL[d]: Translation(d[0], d[-1], lambda x, d=d: self.translate(x, d)) for d in self.directions}

    @staticmethod
    def set_requires_grad(nets, requires_grad=False):
        for net in nets if isinstance(nets, (list, tuple)) else [nets]:
            for p in net.parameters():
                p.requires_grad = requires_grad

    def check_input(self, x: torch.Tensor, direction: str = "AtoB") -> None:
        """Refuses an ``x`` too small for the generator of ``direction``; notes (once) when it will be padded."""
        name, call = self.directions[direction]
        self.guards.check_generator(self.net(name), call, x.shape[1], x.shape[2:])
        self.guards.note_padding(self.net(name), x)

    def check_losses_finite(self, names) -> None:
        self.guards.check_finite({n: getattr(self, "loss_" + n) for n in names}, self.progress)

    # -- what a model defines ----------------------------------------------------------------------------------------
    def set_input(self, data: dict) -> None:
        """Takes one batch from the dataset ({"A": tensor, "B": tensor, "A_paths": [...], ...})."""
        raise NotImplementedError

    def forward(self) -> None:
        """Computes the outputs (``fake_B``, ...) of the current input."""
        raise NotImplementedError

    def optimize_parameters(self) -> None:
        """One training step on the current input."""
        raise NotImplementedError

    # -- set-up --------------------------------------------------------------------------------------------------------
    def setup(self, opt, checkpoint=None, typed=frozenset(), load=True) -> None:
        """Schedulers for training; the networks (and for --continue_train the whole training state) from
        ``checkpoint``, or read from --epoch when testing or resuming; then --compile and, under torchrun,
        DistributedDataParallel. ``typed``: the flags the user typed (a resumed run keeps the checkpoint's schedule
        for the others); ``load=False``: the caller loads the networks (pytorch-CycleGAN-and-pix2pix files)."""
        path = checkpoint_path(opt, opt.epoch)
        resuming = self.is_train and opt.continue_train
        if checkpoint is None and load and (resuming or not self.is_train):
            checkpoint = load_checkpoint(path)
        changed = {}
        if resuming:
            say = print if distributed.is_main() else (lambda *a, **k: None)
            changed = resolve_on_resume(opt, typed, checkpoint.get("schedule"), checkpoint["counters"]["epoch"], say)
        if self.is_train:
            self.schedulers = [make_scheduler(o, opt) for o in self.optimizers]
        if checkpoint is not None:
            self.load_state(checkpoint, path, changed)
        if self.is_train:
            check_positive_rate(self.optimizers, self.progress.epoch,
                                opt.n_epochs + opt.n_epochs_decay + opt.epoch_count - 1)
        if self.is_train and opt.compile:
            for name in self.model_names:
                net = self.net(name)
                for part in net.compile_parts() if isinstance(net, Generator) else [net]:
                    part.compile()  # in place: the state_dict keeps its names
        if self.is_train and distributed.world_size() > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            for name in self.model_names:
                # every parameter is used in every backward that reaches the network: no unused-parameter search
                # (it would also misfire on a generator called several times per step)
                setattr(self, "net" + name, DistributedDataParallel(self.net(name), device_ids=ids))

    def eval(self) -> None:
        for name in self.model_names:
            self.net(name).eval()

    def train(self) -> None:
        for name in self.model_names:
            self.net(name).train()

    # -- running ---------------------------------------------------------------------------------------------------
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

    def reconstruction_error(self):
        """``||h - core^-1(core(h))|| / ||h||`` of the A->B generator's reversible core on the current batch (h: the
        core's input), in eval mode under the training's autocast; None without a core or an input."""
        if self.real_A is None or "AtoB" not in self.directions:
            return None
        net = self.net(self.directions["AtoB"][0])
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad(), self.precision.autocast():
                error = net.roundtrip_error(self.real_A)
        finally:
            net.train(was_training)
        return None if error is None else float(error)

    def update_learning_rate(self, metric=None):
        """Steps every scheduler once per epoch; plateau schedulers step on ``metric`` (the epoch's mean generator
        loss). Returns the new learning rate."""
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

    # -- checkpoints ---------------------------------------------------------------------------------------------------
    def state(self, **extra) -> dict:
        """The full training state (see models.training_state), plus ``extra`` entries (e.g. validation's best).
        Random states and image pools differ between torchrun's processes: every rank's go into ``ranks``
        (gathered on every rank; only rank 0 writes)."""
        return {**extra,
            "architecture": self.spec.to_architecture(),
            "networks": {n: self.net(n).state_dict() for n in self.model_names},
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "scalers": self.precision.state_dicts(self.optimizers),
            "counters": self.progress.as_dict(),
            "ranks": distributed.gather(rank_state(self.pools)),
            "extra": self.volume.state() if self.volume else {},
            "schedule": saved_schedule(self.opt) if self.is_train else None,
        }

    def save(self, tag, **extra) -> None:
        """Writes checkpoint ``tag`` (latest, best or an epoch) with ``extra`` entries; under torchrun every rank
        must call it (they gather), rank 0 writes."""
        state = self.state(**extra)
        if distributed.is_main():
            save_checkpoint(state, checkpoint_path(self.opt, tag))

    def load_upstream(self, folder: str, epoch) -> None:
        """The networks from pytorch-CycleGAN-and-pix2pix files in ``folder`` (EPOCH_net_NAME.pth; see
        models.upstream)."""
        from models import upstream
        for name in self.model_names:
            upstream.load(self.net(name), upstream.file_for(folder, epoch, name), self.spec.generator.netG,
                          self.spec.generator.depth())
        files = ", ".join(os.path.basename(upstream.file_for(folder, epoch, n)) for n in self.model_names)
        self.loaded_from = f"{folder}: {files} (pytorch-CycleGAN-and-pix2pix)"
        print(f"loaded pytorch-CycleGAN-and-pix2pix generator(s) {files} from {folder} (architecture from the "
              f"flags: --netG {self.spec.generator.netG}, --norm {self.spec.generator.norm}, --ngf "
              f"{self.spec.generator.ngf})")

    def load_state(self, state: dict, path: str, changed=None) -> None:
        """Restores the networks from checkpoint ``state`` (read from ``path``); for training also the optimizers,
        schedulers (with the schedule flags ``changed`` on resume: {flag: (old, new)}), scalers, progress, random
        states and image pools."""
        if self.is_train:
            diff = self.spec.differences(ModelSpec.from_architecture(state["architecture"]), HARD_KEYS)
            if diff:
                raise UserError(f"--continue_train: {path} is of another architecture ("
                                + "; ".join(f"{k}: checkpoint {theirs!r}, flags {mine!r}" for k, mine, theirs in diff)
                                + "); use the flags it was trained with, or a new --name")
        for name in self.model_names:
            if name not in state["networks"]:
                raise UserError(f"checkpoint {path} has no network {name} (it holds {', '.join(state['networks'])})")
            try:
                self.net(name).load_state_dict(state["networks"][name])
            except RuntimeError as e:
                raise UserError(f"checkpoint {path} does not fit network {name}: {str(e).splitlines()[0][:200]}") \
                    from None
        if self.volume:
            self.volume.load(state.get("extra", {}), keep_patch=self.is_train)
        if self.is_train:
            for o, s in zip(self.optimizers, state["optimizers"]):
                o.load_state_dict(s)
            for sch, s in zip(self.schedulers, state["schedulers"]):
                restore(sch, s, changed or {}, self.opt)
            self.precision.load_state_dicts(self.optimizers, state.get("scalers", []))
            self.progress.load(state["counters"])
            load_rank_state(state, self.pools, self.device, path)
        self.loaded_from = f"{path} ({TrainingProgress.of(state['counters']).describe()})"
        self.trained_direction = (state.get("options") or {}).get("direction", "AtoB")
        if distributed.is_main():
            print(f"loaded {self.loaded_from}")
