"""Train an image-to-image translation model.

    python train.py --dataroot ./datasets/maps --name maps_revgan --model unpaired_revgan
    python train.py --dataroot ./datasets/facades --name facades_revgan --model paired_revgan
    python train.py --name demo --model paired_revgan ...     # no --dataroot: builds and uses the demo dataset

Checkpoints (full state) go to checkpoints/NAME/latest.pth and EPOCH.pth; resume with --continue_train.
"""
import math
import sys
import time

from tqdm import tqdm

from data import create_dataset
from models import create_model
from models.volume_parts import share_intensity
from options.train_options import TrainOptions
from util.errors import user_facing
from util.util import set_seed
from util.visualizer import Visualizer, peak_memory_mib


def crossed(total, step, freq):
    """True when ``total`` passed a multiple of ``freq`` in the last ``step`` samples."""
    return freq > 0 and total // freq > (total - step) // freq


def ensure_dataroot(opt):
    """No --dataroot: the demo dataset (built on first use), the 3D one for 3D models."""
    if opt.dataroot is None:
        if getattr(opt, "dataset_mode", None) == "volume":
            from datasets.make_demo_volumes import ensure_demo_volumes as ensure
        else:
            from datasets.make_demo_dataset import ensure_demo_dataset as ensure
        opt.dataroot = ensure()
        print(f"no --dataroot given: using the demo dataset at {opt.dataroot}")


@user_facing
def main(argv=None):
    options = TrainOptions()
    opt = options.parse(argv)
    ensure_dataroot(opt)
    set_seed(opt.seed)
    dataset = create_dataset(opt)
    print(f"the number of training images = {len(dataset)}")
    model = create_model(opt)
    model.setup(opt)
    share_intensity(dataset, model)
    options.save_options(opt, model.save_dir, "train_opt.txt")
    visualizer = Visualizer(opt)
    counters = model.counters
    steps_per_epoch = max(1, len(dataset))
    visualizer.start(counters["epoch"] - 1 + counters["epoch_iter"] / steps_per_epoch, resumed=opt.continue_train)

    def plot(progress, losses):  # one point of the curves: losses, learning rate, peak memory
        visualizer.plot_current_losses(progress, losses, model.optimizers[0].param_groups[0]["lr"],
                                       peak_memory_mib(model.device))

    n_last = opt.n_epochs + opt.n_epochs_decay + opt.epoch_count - 1
    if counters["epoch"] > n_last:
        print(f"already trained to epoch {counters['epoch'] - 1}; raise --n_epochs/--n_epochs_decay to go on")
        return
    bs = opt.batch_size
    for epoch in tqdm(range(counters["epoch"], n_last + 1), desc="epochs", initial=counters["epoch"] - opt.epoch_count,
                      total=n_last - opt.epoch_count + 1, position=0, file=sys.stdout):
        counters["epoch"] = epoch
        dataset.set_epoch(epoch, counters["epoch_iter"])
        epoch_losses, t_data0, shown, plotted = [], time.time(), False, False
        bar = tqdm(dataset, desc=f"epoch {epoch}", leave=False, position=1, file=sys.stdout,
                   total=math.ceil((len(dataset) - counters["epoch_iter"]) / bs))
        for data in bar:
            t_data = time.time() - t_data0
            t0 = time.time()
            n = data["A"].shape[0]
            counters["total_iters"] += n
            counters["epoch_iter"] += n
            model.set_input(data)
            model.optimize_parameters()
            losses = model.get_current_losses()
            epoch_losses.append(sum(v for k, v in losses.items() if k.startswith(("G", "L1", "cycle", "idt"))))
            if crossed(counters["total_iters"], n, opt.print_freq):
                msg = visualizer.print_current_losses(epoch, counters["epoch_iter"], counters["total_iters"], losses,
                                                      (time.time() - t0) / n, t_data)
                bar.write(msg)
                plot(epoch - 1 + counters["epoch_iter"] / steps_per_epoch, losses)
                plotted = True
            if crossed(counters["total_iters"], n, opt.display_freq):
                model.compute_visuals()
                visualizer.display_current_results(model.get_current_visuals(), epoch,
                                                   crossed(counters["total_iters"], n, opt.update_html_freq))
                shown = True
            if crossed(counters["total_iters"], n, opt.save_latest_freq):
                model.save("latest")
            t_data0 = time.time()
        if epoch_losses and not plotted:  # at least one point and one row of images per epoch
            plot(epoch, losses)
        if epoch_losses and (not shown or (visualizer.use_html and not visualizer.has_epoch(epoch))):
            model.compute_visuals()
            visualizer.display_current_results(model.get_current_visuals(), epoch, True)
        mean_loss = sum(epoch_losses) / max(1, len(epoch_losses))
        lr = model.update_learning_rate(mean_loss)
        counters["epoch"], counters["epoch_iter"] = epoch + 1, 0
        model.save("latest")
        if epoch % opt.save_epoch_freq == 0 or epoch == n_last:
            model.save(epoch)
        tqdm.write(f"end of epoch {epoch} / {n_last}: mean generator loss {mean_loss:.4f}, learning rate {lr:.7f}")
    print(f"checkpoints are in {model.save_dir}" + ("" if opt.no_html else
                                                    f"; training page: {visualizer.web_dir}/index.html"))


if __name__ == "__main__":
    main()
