"""Train an image-to-image translation model.

    python train.py --dataroot ./datasets/maps --name maps_revgan --model unpaired_revgan
    python train.py --dataroot ./datasets/facades --name facades_revgan --model paired_revgan
    python train.py --name demo --model paired_revgan ...     # no --dataroot: builds and uses the demo dataset
    torchrun --nproc_per_node 4 train.py ...                     # 4 processes (GPUs): DistributedDataParallel

Checkpoints (full state) go to checkpoints/NAME/latest.pth and EPOCH.pth; resume with --continue_train.
"""
import contextlib
import itertools
import os
import sys
import time

import torch

from cli import user_facing
from data import create_dataset, validation_source
from evaluation.snapshots import Snapshot
from evaluation.validation import Validation, format_metrics
from models import create_model
from models import cycle
from models.volume import match_data
from options.resolution import resolve
from options.train_options import TrainOptions
from util import distributed
from util.checkpoint import (EarlierRun, checkpoint_path, earlier_hint, load_checkpoint, megabytes,
                              remove_stale_temporaries, removed_if_unused, writable_folder)
from util.errors import UserError
from util.progress import progress as progress_bar
from util.progress import write
from util.util import set_seed
from util.visualizer import Visualizer, peak_memory_mib


@user_facing
def main(argv=None):
    options = TrainOptions()
    command = options.parse(argv)
    distributed.setup(command)
    folder = os.path.join(command.checkpoints_dir, command.name)
    earlier = EarlierRun(folder, enabled=not command.continue_train and distributed.is_main())
    with removed_if_unused(folder), earlier.restored_on_failure():  # a failed start leaves things as they were
        train(options, *configure(options, command), earlier)
    distributed.cleanup()


def say(*args, **kwargs):
    """print, on rank 0 only."""
    if distributed.is_main():
        print(*args, **kwargs)


def configure(options, command):
    """The run configuration, the networks to build and, for --continue_train, the checkpoint (read once)."""
    if distributed.is_main():
        prepare_folder(command)
    checkpoint, path = None, checkpoint_path(command, command.epoch)
    if command.continue_train:
        if not os.path.isfile(path):
            raise UserError(f"--continue_train: no checkpoint {path} (drop --continue_train to start fresh, or pick "
                            f"an existing --epoch{earlier_hint(path)})")
        checkpoint = load_checkpoint(path)
    opt, spec = resolve(command, options.typed, checkpoint, path, say)
    if "val_fraction" in options.typed and opt.val_fraction and not opt.val_freq:
        say(f"note: --val_fraction {opt.val_fraction:g} without --val_freq: no validation runs and nothing is held out "
            f"(add --val_freq 1 to validate after every epoch)")
    return opt, spec, checkpoint


def prepare_folder(opt):
    """checkpoints/NAME must be writable before any training; temporaries of a save that was killed are removed."""
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    writable_folder(folder, "--checkpoints_dir (or --name)")
    count, freed = remove_stale_temporaries(folder)
    if count:
        print(f"note: removed {count} temporary file(s) of an interrupted save from {folder} ({megabytes(freed)})")


def train(options, opt, spec, checkpoint, earlier):
    """Builds the run, then trains epoch after epoch: each batch one step, then the steps logging, display and
    saving take; after each epoch the learning-rate step, saving and validation."""
    dataset, model, validation = build(options, opt, spec, checkpoint, earlier)
    visualizer, progress, last = Visualizer(opt, enabled=distributed.is_main()), model.progress, last_epoch(opt)
    visualizer.start(progress.epoch - 1 + progress.epoch_iter / dataset.epoch_samples, resumed=opt.continue_train,
                     step=progress.total_iters)
    try:
        run_epochs(opt, model, dataset, validation, visualizer, earlier, last)
    except BaseException:  # an error, Ctrl-C: the page says the run stopped, and stops reloading itself
        with contextlib.suppress(Exception):  # (the run's own error is the one to say)
            visualizer.finish(progress.epoch - 1, stopped=True)
        raise


def run_epochs(opt, model, dataset, validation, visualizer, earlier, last):
    """The residual's probe where due, then the epochs up to ``last``."""
    progress = model.progress
    if progress.epoch > last:
        say(f"already trained to epoch {progress.epoch - 1}; raise --n_epochs/--n_epochs_decay to go on")
        visualizer.finish(progress.epoch - 1)
        visualizer.close()
        return
    if getattr(model, "probe_due", False):  # --residual_auto: decided before the first step
        steps = dataset.batches_left() * (last - progress.epoch + 1)  # of this run (a short one probes fewer)
        model.decide_residual(progress_bar(probe_batches(dataset, progress.epoch), "residual probe",
                                           total=min(cycle.PROBE_STEPS, steps), leave=False,
                                           disable=not distributed.is_main()), steps)
    log, display = LossLog(opt, model, visualizer, dataset.epoch_samples), Display(opt, model, visualizer)
    saver = Checkpoints(opt, model, validation, earlier)
    for epoch in progress_bar(range(progress.epoch, last + 1), "epochs", initial=progress.epoch - opt.epoch_count,
                              total=last - opt.epoch_count + 1, disable=not distributed.is_main(), quiet_in_logs=True):
        dataset.set_epoch(epoch, progress.epoch_iter)
        for batch, t_data in timed(progress_bar(dataset, f"epoch {epoch}", leave=False, position=1,
                                                total=dataset.batches_left(), disable=not distributed.is_main())):
            t_start = time.time()
            n, losses = train_step(model, batch)
            log.step(epoch, n, losses, t_start, t_data)
            display.step(epoch, n)
            saver.step(n)
        log.end_epoch(epoch)
        display.end_epoch(epoch)
        mean_loss = distributed.mean(progress.mean_loss())  # of the whole epoch, resumed or not; ranks agree
        lr = model.update_learning_rate(mean_loss)
        progress.finish_epoch()
        saver.end_epoch(epoch, last)
        if validation.due(epoch, last):
            saver.validated(validate(validation, model, visualizer, epoch))
        if distributed.is_main():
            write(f"end of epoch {epoch} / {last}: mean generator loss {mean_loss:.4f}, learning rate {lr:.7f}")
    visualizer.finish(last)  # the training page stops reloading itself
    visualizer.close()
    say(f"checkpoints are in {model.save_dir}" + ("" if opt.no_html else
                                                  f"; training page: {visualizer.web_dir}/index.html"))


def build(options, opt, spec, checkpoint, earlier):
    """The training data, the model (set up from the checkpoint when resuming) and the validation of this run;
    train_opt.txt records the configuration."""
    set_precision(opt)
    set_seed(opt.seed)
    dataset = create_dataset(opt, split="train" if validation_source(opt) == "fraction" else None,
                             per_epoch=opt.samples_per_epoch or None)
    world = distributed.world_size()
    patches = opt.samples_per_volume if dataset.dataset.volumes else None  # 3D: the patches an epoch draws
    say(f"the number of training images = {len(dataset)}" + (
        f" (patches: {len(dataset) // patches} volumes x {patches}, --samples_per_volume)" if patches else "") + (
        f"; {opt.samples_per_epoch} drawn per epoch (--samples_per_epoch)" if opt.samples_per_epoch else "") + (
        f"; effective batch size = {opt.batch_size} per process x {world} processes = {opt.batch_size * world}"
        if world > 1 else ""))
    model = create_model(opt, spec)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    if distributed.rank():
        set_seed(opt.seed + distributed.rank())  # each process its own dropout masks and image-pool draws
    model.setup(opt, checkpoint)
    match_data(model, dataset.dataset)
    validation = Validation(opt, model)
    validation.load((checkpoint or {}).get("validation"), options.typed, say)
    earlier.set_aside(say)  # the run is set up: an earlier run's files under the name go aside
    if distributed.is_main():
        options.save_options(opt, model.save_dir, "train_opt.txt")
    if validation.enabled:
        say(validation.describe())
    return dataset, model, validation


def set_precision(opt):
    """--tf32 on GPUs: TF32 tensor cores for float32 matmuls and convolutions (otherwise full float32)."""
    if opt.tf32 and not opt.gpu_ids:
        say("note: --tf32 only changes GPU arithmetic; it has no effect on the CPU")
    torch.backends.cuda.matmul.allow_tf32 = opt.tf32
    torch.backends.cudnn.allow_tf32 = opt.tf32


def last_epoch(opt):
    """The schedule's last epoch, as CycleGAN's: --n_epochs + --n_epochs_decay, whatever --epoch_count (the first)."""
    return opt.n_epochs + opt.n_epochs_decay


def crossed(total, step, freq):
    """True when ``total`` passed a multiple of ``freq`` in the last ``step`` samples."""
    return freq > 0 and total // freq > (total - step) // freq


def timed(batches):
    """(batch, seconds spent waiting for it) for each of ``batches``."""
    start = time.time()
    for batch in batches:
        yield batch, time.time() - start
        start = time.time()


def probe_batches(dataset, epoch):
    """The training batches from ``epoch`` on, in their order, for as long as they are drawn (the training loop sets
    its epoch again before its first step)."""
    for k in itertools.count():
        dataset.set_epoch(epoch + k)
        yield from dataset


def train_step(model, batch):
    """One optimization step on ``batch``; returns the samples it took (over all processes) and the losses."""
    n = batch["A"].shape[0] * distributed.world_size()  # every process takes a batch of the same size
    model.progress.advance(n)
    model.set_input(batch)
    model.optimize_parameters()
    losses = model.get_current_losses()
    model.progress.add_loss(model.generator_loss())
    return n, losses


class LossLog:
    """Every --print_freq samples: the losses (the mean over processes) in loss_log.txt and on the console, and a
    point of the curves (losses, learning rate, peak memory, the reversible core's reconstruction error); at least
    one point per epoch; and after each epoch the mean of every step's losses (the training page's epoch means)."""

    def __init__(self, opt, model, visualizer, epoch_samples):
        self.opt, self.model, self.visualizer, self.epoch_samples = opt, model, visualizer, epoch_samples
        self.losses, self.plotted = None, False  # this epoch's last losses; whether it has a point
        self.sums, self.steps = {}, 0  # this epoch's losses summed over its steps (in this process, since resuming)

    def step(self, epoch, n, losses, t_start, t_data):
        self.losses, progress = losses, self.model.progress
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.steps += 1
        if not crossed(progress.total_iters, n, self.opt.print_freq):
            return
        losses, recon = distributed.mean(losses), self.monitor()
        line = self.visualizer.print_current_losses(epoch, progress.epoch_iter, progress.total_iters, losses,
                                                    (time.time() - t_start) / n, t_data, recon)
        if distributed.is_main():
            write(line)
        self.plot(epoch - 1 + progress.epoch_iter / self.epoch_samples, losses, recon)
        self.plotted = True

    def end_epoch(self, epoch):
        if self.losses is not None and not self.plotted:
            self.plot(epoch, distributed.mean(self.losses), self.monitor())
        if self.steps:
            means = distributed.mean({name: total / self.steps for name, total in self.sums.items()})
            self.visualizer.plot_epoch_means(epoch, means, self.steps)
        self.losses, self.plotted, self.sums, self.steps = None, False, {}, 0

    def plot(self, at, losses, recon):
        self.visualizer.plot_current_losses(at, losses, self.model.optimizers[0].param_groups[0]["lr"],
                                            peak_memory_mib(self.model.device), recon,
                                            step=self.model.progress.total_iters)

    def monitor(self):
        """The reversible core's reconstruction error (rank 0), with a warning above --recon_warn."""
        recon = reconstruction_error(self.model) if distributed.is_main() else None
        if recon is not None and not recon <= self.opt.recon_warn:
            write(f"warning: the reversible core's relative reconstruction error {recon:.3e} exceeds --recon_warn "
                  f"{self.opt.recon_warn:g}: its recomputed activations, and so the gradients, drift (use --amp bf16 "
                  f"or none instead of fp16, or a lower --lr)", file=sys.stderr)
        return recon


def reconstruction_error(model):
    """``||h - core^-1(core(h))|| / ||h||`` of the A->B generator's reversible core on the current batch (h: the
    core's input), in eval mode under the training's autocast; None without a core or an input."""
    if getattr(model, "real_A", None) is None or "AtoB" not in model.directions:
        return None
    net = model.net(model.directions["AtoB"][0])
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), model.precision.autocast():
            error = net.roundtrip_error(model.real_A)
    finally:
        net.train(was_training)
    return None if error is None else float(error)


class Display:
    """Every --display_freq samples the current images to visdom and, every --update_html_freq, the fixed sample
    (evaluation.snapshots) to the training page; at least one row of images per epoch."""

    def __init__(self, opt, model, visualizer):
        self.opt, self.model, self.visualizer = opt, model, visualizer
        self.trained, self.shown = False, False  # this epoch: a step taken, images shown
        self.snapshot = Snapshot(opt, model) if visualizer.use_html else None

    def step(self, epoch, n):
        total, self.trained = self.model.progress.total_iters, True
        if crossed(total, n, self.opt.display_freq):
            self.show(epoch, crossed(total, n, self.opt.update_html_freq))

    def end_epoch(self, epoch):
        page = self.visualizer.use_html and not self.visualizer.has_epoch(epoch)
        if self.trained and (not self.shown or page):
            self.show(epoch, True)
        self.trained, self.shown = False, False

    def show(self, epoch, save):
        self.model.compute_visuals()
        page = self.snapshot.visuals() if save and self.snapshot else None
        self.visualizer.display_current_results(self.model.get_current_visuals(), epoch, save, page,
                                                about=self.snapshot.about if page is not None else None,
                                                step=self.model.progress.total_iters)
        self.shown = True


class Checkpoints:
    """latest.pth every --save_latest_freq samples and after every epoch, EPOCH.pth every --save_epoch_freq epochs
    and after the last, best.pth when validation improves; each with validation's best and this run's options."""

    def __init__(self, opt, model, validation, earlier):
        self.opt, self.model, self.validation, self.earlier = opt, model, validation, earlier

    def save(self, tag):
        self.earlier.saved = True  # from here on the earlier run, if any, stays aside
        self.model.save(tag, validation=self.validation.state(), options=self.opt.record())

    def step(self, n):
        if crossed(self.model.progress.total_iters, n, self.opt.save_latest_freq):
            self.save("latest")

    def end_epoch(self, epoch, last):
        self.save("latest")  # before validation: an error there costs no training
        if epoch % self.opt.save_epoch_freq == 0 or epoch == last:
            self.save(epoch)

    def validated(self, better):
        if better:
            self.save("best")
        self.save("latest")  # again, with validation's best


def validate(validation, model, visualizer, epoch):
    """Runs validation after ``epoch``; logs and plots it; returns whether --val_metric improved (best.pth)."""
    means = validation.run(model)
    better = validation.improved(means)
    line = f"validation (epoch {epoch}): {format_metrics(means)}" + \
        (f"; best {validation.metric} so far -> best.pth" if better else "")
    if distributed.is_main():
        write(line)
    visualizer.plot_validation(epoch, means, line, step=model.progress.total_iters)
    return better


if __name__ == "__main__":
    main()
