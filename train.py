"""Train an image-to-image translation model.

    python train.py --dataroot ./datasets/maps --name maps_revgan --model unpaired_revgan
    python train.py --dataroot ./datasets/facades --name facades_revgan --model paired_revgan
    python train.py --name demo --model paired_revgan ...     # no --dataroot: builds and uses the demo dataset
    torchrun --nproc_per_node 4 train.py ...                     # 4 processes (GPUs): DistributedDataParallel

Checkpoints (full state) go to checkpoints/NAME/latest.pth and EPOCH.pth; resume with --continue_train.
"""
import os
import sys
import time

import torch

from cli import user_facing
from data import create_dataset, resolve_dataroot, share_intensity, validation_source
from evaluation.validation import Validation, format_metrics
from models import create_model, options_spec
from models.config import flag_value
from models.schedule import SCHEDULE_KEYS
from options.train_options import TrainOptions
from util import distributed
from util.checkpoint import checkpoint_path, load_checkpoint, megabytes, remove_stale_temporaries, writable_folder
from util.errors import UserError
from util.progress import progress as progress_bar
from util.progress import write
from util.util import set_seed
from util.visualizer import Visualizer, peak_memory_mib


def crossed(total, step, freq):
    """True when ``total`` passed a multiple of ``freq`` in the last ``step`` samples."""
    return freq > 0 and total // freq > (total - step) // freq


def set_precision(opt):
    """--tf32 on GPUs: TF32 tensor cores for float32 matmuls and convolutions (otherwise full float32)."""
    if opt.tf32 and not opt.gpu_ids and distributed.is_main():
        print("note: --tf32 only changes GPU arithmetic; it has no effect on the CPU")
    torch.backends.cuda.matmul.allow_tf32 = opt.tf32
    torch.backends.cudnn.allow_tf32 = opt.tf32


@user_facing
def main(argv=None):
    options = TrainOptions()
    opt = options.parse(argv)
    distributed.setup(opt)
    train(options, opt)
    distributed.cleanup()


def prepare_folder(opt):
    """checkpoints/NAME must be writable before any training; temporaries of a save that was killed are removed."""
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    writable_folder(folder, "--checkpoints_dir (or --name)")
    count, freed = remove_stale_temporaries(folder)
    if count:
        print(f"note: removed {count} temporary file(s) of an interrupted save from {folder} ({megabytes(freed)})")


# options that belong to one process or one invocation; --continue_train takes every other untyped option from the
# checkpoint (the schedule flags and the architecture are resolved by models.schedule and ModelSpec.resumed)
RUN_LOCAL = ("model", "gpu_ids", "num_threads", "display_freq", "display_ncols", "display_id", "display_server",
             "display_env", "display_port", "update_html_freq", "print_freq", "no_html", "save_latest_freq",
             "save_epoch_freq", "continue_train", "epoch", "checkpoints_dir", "name", "verbose", "suffix", "compile",
             "recon_warn", "is_train") + SCHEDULE_KEYS + ("epoch_count",)


def run_options(opt):
    """The options a checkpoint records (plain values only)."""
    plain = (str, int, float, bool, type(None))
    return {k: v for k, v in vars(opt).items()
            if isinstance(v, plain) or (isinstance(v, list) and all(isinstance(x, plain) for x in v))}


def resume(opt, typed, say):
    """--continue_train: the checkpoint (read once) and the spec to rebuild. Flags the user did not type take the
    checkpoint's values (its architecture, its data and loss options); typed flags that contradict its
    architecture are refused when the state loads."""
    path = checkpoint_path(opt, opt.epoch)
    if not os.path.isfile(path):
        raise UserError(f"--continue_train: no checkpoint {path} (drop --continue_train to start fresh, or pick an "
                        f"existing --epoch)")
    checkpoint = load_checkpoint(path)
    spec, taken = options_spec(opt).resumed(checkpoint["architecture"], typed)
    for key, value in taken.items():  # the options record what is in effect (train_opt.txt)
        flag, value = flag_value(key, value)
        if flag in vars(opt):
            setattr(opt, flag, value)
    for key, value in (checkpoint.get("options") or {}).items():
        if key not in typed and key not in RUN_LOCAL and key in vars(opt) and getattr(opt, key) != value:
            setattr(opt, key, value)
            taken[key] = value
    if taken:
        say("note: resuming with the checkpoint's " + ", ".join(f"{k} {v}" for k, v in taken.items())
            + " (flags not given)")
    return checkpoint, spec


def validate(validation, model, visualizer, epoch):
    """Runs validation after ``epoch``; logs and plots it; returns whether --val_metric improved (best.pth)."""
    means = validation.run(model)
    better = validation.improved(means)
    line = f"validation (epoch {epoch}): {format_metrics(means)}" + \
        (f"; best {validation.metric} so far -> best.pth" if better else "")
    if distributed.is_main():
        write(line)
    visualizer.plot_validation(epoch, means, line)
    return better


def train(options, opt):
    main_rank = distributed.is_main()
    say = print if main_rank else (lambda *a, **k: None)
    if main_rank:
        prepare_folder(opt)
    checkpoint, spec = resume(opt, options.typed, say) if opt.continue_train else (None, None)
    opt.dataroot = resolve_dataroot(opt, volumes=opt.dataset_mode == "volume")
    set_precision(opt)
    set_seed(opt.seed)
    dataset = create_dataset(opt, split="train" if validation_source(opt) == "fraction" else None)
    world = distributed.world_size()
    say(f"the number of training images = {len(dataset)}" + (
        f"; effective batch size = {opt.batch_size} per process x {world} processes = {opt.batch_size * world}"
        if world > 1 else ""))
    model = create_model(opt, spec)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    if distributed.rank():
        set_seed(opt.seed + distributed.rank())  # each process its own dropout masks and image-pool draws
    model.setup(opt, checkpoint, typed=options.typed)
    share_intensity(dataset, model)
    validation = Validation(opt, model)
    validation.load((checkpoint or {}).get("validation"), options.typed, say)
    if main_rank:
        options.save_options(opt, model.save_dir, "train_opt.txt")
    if validation.enabled:
        say(validation.describe())
    visualizer = Visualizer(opt, enabled=main_rank)
    progress = model.progress  # epoch, epoch_iter, total_iters, the epoch's loss so far: saved with every checkpoint

    def save(tag):  # the full state, with validation's best and the options of this run
        model.save(tag, validation=validation.state(), options=run_options(opt))

    steps_per_epoch = dataset.epoch_samples
    visualizer.start(progress.epoch - 1 + progress.epoch_iter / steps_per_epoch, resumed=opt.continue_train)

    def plot(progress, losses, recon=None):  # one point of the curves: losses, learning rate, peak memory
        visualizer.plot_current_losses(progress, losses, model.optimizers[0].param_groups[0]["lr"],
                                       peak_memory_mib(model.device), recon)

    def monitor():  # the reversible core's reconstruction error (rank 0), with a warning above --recon_warn
        recon = model.reconstruction_error() if main_rank else None
        if recon is not None and not recon <= opt.recon_warn:
            write(f"warning: the reversible core's relative reconstruction error {recon:.3e} exceeds --recon_warn "
                  f"{opt.recon_warn:g}: its recomputed activations, and so the gradients, drift (use --amp bf16 or "
                  f"none instead of fp16, or a lower --lr)", file=sys.stderr)
        return recon

    n_last = opt.n_epochs + opt.n_epochs_decay + opt.epoch_count - 1
    if progress.epoch > n_last:
        say(f"already trained to epoch {progress.epoch - 1}; raise --n_epochs/--n_epochs_decay to go on")
        return
    for epoch in progress_bar(range(progress.epoch, n_last + 1), "epochs", initial=progress.epoch - opt.epoch_count,
                              total=n_last - opt.epoch_count + 1, disable=not main_rank, quiet_in_logs=True):
        dataset.set_epoch(epoch, progress.epoch_iter)
        trained, t_data0, shown, plotted = False, time.time(), False, False
        bar = progress_bar(dataset, f"epoch {epoch}", leave=False, position=1, total=dataset.batches_left(),
                           disable=not main_rank)
        for data in bar:
            t_data = time.time() - t_data0
            t0 = time.time()
            n = data["A"].shape[0] * world  # every process takes a batch of the same size
            progress.advance(n)
            model.set_input(data)
            model.optimize_parameters()
            losses = model.get_current_losses()
            progress.add_loss(model.generator_loss())
            trained = True
            if crossed(progress.total_iters, n, opt.print_freq):
                losses = distributed.mean(losses)
                recon = monitor()
                msg = visualizer.print_current_losses(epoch, progress.epoch_iter, progress.total_iters, losses,
                                                      (time.time() - t0) / n, t_data, recon)
                if main_rank:
                    write(msg)
                plot(epoch - 1 + progress.epoch_iter / steps_per_epoch, losses, recon)
                plotted = True
            if crossed(progress.total_iters, n, opt.display_freq):
                model.compute_visuals()
                visualizer.display_current_results(model.get_current_visuals(), epoch,
                                                   crossed(progress.total_iters, n, opt.update_html_freq))
                shown = True
            if crossed(progress.total_iters, n, opt.save_latest_freq):
                save("latest")
            t_data0 = time.time()
        if trained and not plotted:  # at least one point and one row of images per epoch
            plot(epoch, distributed.mean(losses), monitor())
        if trained and (not shown or (visualizer.use_html and not visualizer.has_epoch(epoch))):
            model.compute_visuals()
            visualizer.display_current_results(model.get_current_visuals(), epoch, True)
        mean_loss = distributed.mean(progress.mean_loss())  # of the whole epoch, resumed or not; ranks agree
        lr = model.update_learning_rate(mean_loss)
        progress.finish_epoch()
        save("latest")  # before validation: an error there costs no training
        if epoch % opt.save_epoch_freq == 0 or epoch == n_last:
            save(epoch)
        if validation.due(epoch, n_last):
            if validate(validation, model, visualizer, epoch):
                save("best")
            save("latest")  # again, with validation's best
        if main_rank:
            write(f"end of epoch {epoch} / {n_last}: mean generator loss {mean_loss:.4f}, learning rate {lr:.7f}")
    say(f"checkpoints are in {model.save_dir}" + ("" if opt.no_html else
                                                  f"; training page: {visualizer.web_dir}/index.html"))


if __name__ == "__main__":
    main()
