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
from data import resolve_dataroot
from evaluation import evaluate, summary_lines
from models import create_model, options_spec, upstream
from models.config import HARD_KEYS, SOFT_KEYS, ModelSpec, flag_value
from options.test_options import TestOptions
from util.checkpoint import checkpoint_path, load_checkpoint


def checkpoint_spec(opt, checkpoint, typed=None):
    """The networks the checkpoint holds. Says which of the flags the user typed (``typed``: their names; None:
    all) it overrides, and which --model it runs instead of the one given (``--model test`` runs one direction of
    any checkpoint)."""
    spec = ModelSpec.from_architecture(checkpoint["architecture"])
    arch = spec.to_architecture()
    for key in HARD_KEYS + SOFT_KEYS:
        if key in ("model", "use_naive") or arch[key] is None:
            continue
        flag, theirs = flag_value(key, arch[key])
        mine = vars(opt).get(flag)
        if mine is not None and (typed is None or flag in typed) and mine != theirs:
            print(f"note: --{flag} {mine} ignored: the checkpoint was trained with {theirs}")
    if opt.model != "test" and opt.model != spec.model:
        print(f"note: --model {opt.model} ignored: the checkpoint holds a {spec.model} model")
        opt.model = spec.model
    trained = (checkpoint.get("options") or {}).get("direction")
    if opt.model != "test" and trained and trained != opt.direction and "direction" not in (typed or ()):
        print(f"note: the model was trained with --direction {trained}: testing it that way (give --direction to "
              f"choose)")
        opt.direction = trained
    return spec


@user_facing
def main(argv=None):
    options = TestOptions()
    opt = options.parse(argv)
    opt.num_threads, opt.batch_size, opt.serial_batches, opt.no_flip = 0, 1, True, True
    path, folder = checkpoint_path(opt, opt.epoch), os.path.join(opt.checkpoints_dir, opt.name)
    names = upstream.network_names(opt)
    if not os.path.isfile(path) and upstream.available(folder, opt.epoch, names):  # pytorch-CycleGAN-and-pix2pix's
        spec = upstream.spec_for(opt, options_spec(opt))
        opt.dataroot = resolve_dataroot(opt, volumes=False)
        model = create_model(opt, spec)
        model.setup(opt, load=False)
        model.load_upstream(folder, opt.epoch)
    else:
        checkpoint = load_checkpoint(path)
        spec = checkpoint_spec(opt, checkpoint, options.typed)
        opt.dataroot = resolve_dataroot(opt, volumes=spec.dims == 3)
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
