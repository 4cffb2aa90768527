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


def resume(opt, typed, say):
    """--continue_train: the checkpoint (read once) and the spec to rebuild: its architecture, except for the flags
    the user typed (a typed flag that contradicts it is refused when the state loads)."""
    path = checkpoint_path(opt, opt.epoch)
    if not os.path.isfile(path):
        raise UserError(f"--continue_train: no checkpoint {path} (drop --continue_train to start fresh, or pick an "
                        f"existing --epoch)")
    checkpoint = load_checkpoint(path)
    spec, taken = options_spec(opt).resumed(checkpoint["architecture"], typed)
    for key, value in taken.items():  # the options record what is in effect (train_opt.txt)
        if key == "residual":
            opt.no_residual = not value
        elif key in vars(opt):
            setattr(opt, key, value)
    if taken:
        say("note: resuming with the checkpoint's " + ", ".join(f"{k} {v}" for k, v in taken.items())
            + " (flags not given)")
    return checkpoint, spec


def validate(validation, model, visualizer, epoch, n_last):
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
    opt.dataroot = resolve_dataroot(opt, volumes=opt.dataset_mode == "volume")
    set_precision(opt)
    set_seed(opt.seed)
    dataset = create_dataset(opt, split="train" if validation_source(opt) == "fraction" else None)
    world = distributed.world_size()
    say(f"the number of training images = {len(dataset)}" + (
        f"; effective batch size = {opt.batch_size} per process x {world} processes = {opt.batch_size * world}"
        if world > 1 else ""))
    checkpoint, spec = resume(opt, options.typed, say) if opt.continue_train else (None, None)
    model = create_model(opt, spec)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    if distributed.rank():
        set_seed(opt.seed + distributed.rank())  # each process its own dropout masks and image-pool draws
    model.setup(opt, checkpoint, typed=options.typed)
    share_intensity(dataset, model)
    validation = Validation(opt, model)
    validation.load((checkpoint or {}).get("validation"))
    if main_rank:
        options.save_options(opt, model.save_dir, "train_opt.txt")
    if validation.enabled:
        say(validation.describe())
    visualizer = Visualizer(opt, enabled=main_rank)
    progress = model.progress  # epoch, epoch_iter, total_iters: saved with every checkpoint
    steps_per_epoch = dataset.epoch_samples
    visualizer.start(progress.epoch - 1 + progress.epoch_iter / steps_per_epoch, resumed=opt.continue_train)

    def plot(progress, losses, recon=None):  # one point of the curves: losses, learning rate, peak memory
        visualizer.plot_current_losses(progress, losses, model.optimizers[0].param_groups[0]["lr"],
                                       peak_memory_mib(model.device), recon)

    def monitor():  # the reversible core's reconstruction error (rank 0), with a warning above --recon_warn
        recon = model.reconstruction_error() if main_rank else None
        if recon is not None and not recon <= opt.recon_warn:
            write(f"warning: the reversible core's relative reconstruction error {recon:.3e} exceeds "
                       f"--recon_warn {opt.recon_warn:g}: its recomputed activations, and so the gradients, drift "
                       f"(use --amp bf16 or none instead of fp16, or a lower --lr)", file=sys.stderr)
        return recon

    n_last = opt.n_epochs + opt.n_epochs_decay + opt.epoch_count - 1
    if progress.epoch > n_last:
        say(f"already trained to epoch {progress.epoch - 1}; raise --n_epochs/--n_epochs_decay to go on")
        return
    for epoch in progress_bar(range(progress.epoch, n_last + 1), "epochs", initial=progress.epoch - opt.epoch_count,
                              total=n_last - opt.epoch_count + 1, disable=not main_rank, quiet_in_logs=True):
        dataset.set_epoch(epoch, progress.epoch_iter)
        epoch_losses, t_data0, shown, plotted = [], time.time(), False, False
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
            epoch_losses.append(model.generator_loss())
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
                model.save("latest")
            t_data0 = time.time()
        if epoch_losses and not plotted:  # at least one point and one row of images per epoch
            plot(epoch, distributed.mean(losses), monitor())
        if epoch_losses and (not shown or (visualizer.use_html and not visualizer.has_epoch(epoch))):
            model.compute_visuals()
            visualizer.display_current_results(model.get_current_visuals(), epoch, True)
        mean_loss = distributed.mean(sum(epoch_losses) / max(1, len(epoch_losses)))  # schedulers agree across ranks
        lr = model.update_learning_rate(mean_loss)
        best = validate(validation, model, visualizer, epoch, n_last) if validation.due(epoch, n_last) else False
        progress.finish_epoch()
        model.save("latest", validation=validation.state())
        if epoch % opt.save_epoch_freq == 0 or epoch == n_last:
            model.save(epoch, validation=validation.state())
        if best:
            model.save("best", validation=validation.state())
        if main_rank:
            write(f"end of epoch {epoch} / {n_last}: mean generator loss {mean_loss:.4f}, learning rate "
                       f"{lr:.7f}")
    say(f"checkpoints are in {model.save_dir}" + ("" if opt.no_html else
                                                  f"; training page: {visualizer.web_dir}/index.html"))


if __name__ == "__main__":
    main()
