"""Training curves and images in TensorBoard and Weights & Biases (``--log tensorboard wandb``; upstream's
``--use_wandb`` and ``--wandb_project_name`` work too), beside visdom and the training page.

What is logged, at the global step ``total_iters`` (training images seen, over all processes: the counter
checkpoints keep, so a resumed run continues its curves where its checkpoint was written): the losses
(``loss/NAME``), the learning rate, the peak memory (MiB), the reversible core's reconstruction error, the epoch,
validation's results under their names on disk (``validation/PSNR_fake_B``, ``validation/baseline_PSNR_fake_B``,
``validation/KID_fake_B_std``, ...) and the current images (``images/LABEL``; volumes as their axial, coronal and
sagittal mid-slices).

- TensorBoard: event files in checkpoints/NAME/ (``tensorboard --logdir checkpoints`` lists every run by its name).
  A resumed run purges the points an interrupted run logged after its checkpoint (SummaryWriter's purge_step); a
  fresh run under an old name purges them all.
- W&B: the run is named NAME in project --wandb_project_name, its files under checkpoints/NAME/wandb/; every value is
  plotted against ``total_iters``; a resumed run continues the same W&B run (its id is kept in
  checkpoints/NAME/wandb_run_id.txt). Offline machines: ``WANDB_MODE=offline`` (then ``wandb sync``).

Both are optional: without the package, or when the service cannot be started, training prints one warning line and
goes on without it (as with visdom).
"""
import os
import sys
import uuid

BACKENDS = ("tensorboard", "wandb")
INSTALL = "it is optional: pip install -r requirements-extras.txt"


def wanted(opt):
    """The backends --log (and --use_wandb) ask for, in order, each once."""
    kinds = list(getattr(opt, "log", None) or [])
    if getattr(opt, "use_wandb", False):
        kinds.append("wandb")
    return list(dict.fromkeys(kinds))


def warn(kind, reason):
    print(f"warning: {kind}: {reason}; training goes on without it", file=sys.stderr, flush=True)


class TensorBoard:
    name = "tensorboard"

    def __init__(self, opt, folder, step, resumed):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise RuntimeError(f"the tensorboard package is not installed ({INSTALL})") from None
        # purge_step: points of this folder's earlier event files at this step or later are hidden
        self.writer = SummaryWriter(log_dir=folder, purge_step=step if resumed else 0, flush_secs=10)

    def scalars(self, step, values):
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def images(self, step, images):
        for label, im in images.items():
            self.writer.add_image(f"images/{label}", im, step, dataformats="HWC")

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()


class WandB:
    name = "wandb"

    def __init__(self, opt, folder, step, resumed):
        try:
            import wandb
        except ImportError:
            raise RuntimeError(f"the wandb package is not installed ({INSTALL})") from None
        self.wandb = wandb
        id_file = os.path.join(folder, "wandb_run_id.txt")
        run_id = open(id_file).read().strip() if resumed and os.path.isfile(id_file) else None
        if run_id is None:
            run_id = uuid.uuid4().hex[:12]  # W&B ids: lowercase letters and digits
            with open(id_file, "w") as f:
                f.write(run_id + "\n")
        self.run = wandb.init(project=opt.wandb_project_name, name=opt.name, id=run_id, resume="allow", dir=folder,
                              config=opt.record(), settings=wandb.Settings(silent=True, console="off"))
        self.run.define_metric("total_iters")
        self.run.define_metric("*", step_metric="total_iters")

    def scalars(self, step, values):
        self.run.log({"total_iters": step, **values})

    def images(self, step, images):
        self.run.log({"total_iters": step, **{f"images/{label}": self.wandb.Image(im, caption=label)
                                               for label, im in images.items()}})

    def flush(self):
        pass

    def close(self):
        self.run.finish()


class Loggers:
    """The backends of one run (none for torchrun's other ranks); every call on a backend that fails costs one
    warning and that backend.

    Args:
        opt: the run configuration (--log, --use_wandb, --wandb_project_name, --name, --checkpoints_dir).
        enabled: False on ranks other than 0.
    """

    def __init__(self, opt, enabled=True):
        self.opt, self.kinds = opt, wanted(opt) if enabled else []
        self.backends, self.step = [], 0

    def start(self, step, resumed):
        """Opens the backends at global step ``step`` (a resumed run's checkpoint; 0 for a fresh run)."""
        self.step = step
        folder = os.path.join(self.opt.checkpoints_dir, self.opt.name)
        for kind in self.kinds:
            cls = {"tensorboard": TensorBoard, "wandb": WandB}[kind]
            try:
                self.backends.append(cls(self.opt, folder, step, resumed))
            except Exception as e:  # a missing package, a W&B service that does not start (no login, no network)
                warn(kind, str(e).splitlines()[0] if str(e) else type(e).__name__)

    def _each(self, method, step, *args):
        self.step = self.step if step is None else step
        for backend in list(self.backends):
            try:
                getattr(backend, method)(self.step, *args)
            except Exception as e:
                self.backends.remove(backend)
                warn(backend.name, f"lost ({str(e).splitlines()[0] if str(e) else type(e).__name__})")

    def scalars(self, step, values):
        """``values`` ({tag: number}; None values are left out) at ``step`` (None: the last step logged)."""
        values = {k: float(v) for k, v in values.items() if v is not None}
        if values:
            self._each("scalars", step, values)

    def images(self, step, images):
        """``images`` ({label: (H, W, 3) uint8}) at ``step``."""
        if images:
            self._each("images", step, images)

    def flush(self):
        for backend in self.backends:
            backend.flush()

    def close(self):
        for backend in self.backends:
            try:
                backend.close()
            except Exception as e:
                warn(backend.name, f"could not close ({e})")
        self.backends = []
