"""Run a trained model on test images; save the images, metrics (MAE, PSNR, SSIM) and an HTML page.

    python test.py --dataroot ./datasets/maps --name maps_revgan --model unpaired_revgan
    python test.py --dataroot ./datasets/maps/testB --name maps_revgan --model test --direction BtoA

The network is rebuilt from the architecture stored in the checkpoint; flags that disagree are reported and ignored.
Generators trained with pytorch-CycleGAN-and-pix2pix (EPOCH_net_G.pth, ...) run too, built from the flags
(models/upstream.py).
Images go to results/NAME/PHASE_EPOCH/images/LABEL/NAME.png, metrics to metrics.csv and metrics.json beside them.
"""
import os

from cli import user_facing
from evaluation import evaluate, summary_lines
from models import create_model, upstream
from options.resolution import resolve
from options.test_options import TestOptions
from util.checkpoint import checkpoint_path, load_checkpoint


@user_facing
def main(argv=None):
    options = TestOptions()
    command = options.parse(argv)
    path, folder = checkpoint_path(command, command.epoch), os.path.join(command.checkpoints_dir, command.name)
    if not os.path.isfile(path) and upstream.available(folder, command.epoch, upstream.network_names(command)):
        opt, spec = resolve(command, options.typed)  # pytorch-CycleGAN-and-pix2pix's files: built from the flags
        model = create_model(opt, upstream.spec_for(opt, spec))
        model.setup(opt)
        upstream.load_networks(model, folder, opt.epoch)
    else:
        checkpoint = load_checkpoint(path)
        opt, spec = resolve(command, options.typed, checkpoint, path)
        model = create_model(opt, spec)
        model.setup(opt, checkpoint)
    if opt.eval:
        model.eval()
    out_dir, page, mean = evaluate(opt, model, options)
    for line in summary_lines(mean):
        print(line)
    print(f"results are in {out_dir} (open {page})")


if __name__ == "__main__":
    main()
