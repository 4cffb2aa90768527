"""Run a trained model on test images; save the images, metrics (MAE, PSNR, SSIM) and an HTML page.

    python test.py --dataroot ./datasets/maps --name maps_revgan --model unpaired_revgan
    python test.py --dataroot ./datasets/maps/testB --name maps_revgan --model test --direction BtoA

The network is rebuilt from the architecture stored in the checkpoint; flags that disagree are reported and ignored.
Images go to results/NAME/PHASE_EPOCH/images/LABEL/NAME.png, metrics to metrics.csv and metrics.json beside them.
"""
import os
import sys

from tqdm import tqdm

from data import create_dataset
from models import create_model
from models.base_model import ARCH_KEYS, SOFT_ARCH_KEYS
from options.test_options import TestOptions
from util import metrics
from util.checkpoint import checkpoint_path, load_checkpoint
from train import ensure_dataroot
from util.errors import user_facing
from util.util import save_image, tensor2im, to01

# For a model's visuals: which target each output is compared with, and the copy-the-input baseline for it.
TARGETS = {"fake_B": ("real_B", "real_A"), "fake_A": ("real_A", "real_B")}


def apply_checkpoint_architecture(opt):
    """Sets the architecture options from the checkpoint; prints the flags that disagreed."""
    arch = load_checkpoint(checkpoint_path(opt, opt.epoch))["architecture"]
    for key in ARCH_KEYS + SOFT_ARCH_KEYS:
        if key == "model" or key not in arch or arch[key] is None:
            continue
        mine = getattr(opt, key, None)
        if mine is not None and mine != arch[key] and key != "use_naive":
            print(f"note: --{key} {mine} ignored: the checkpoint was trained with {arch[key]}")
        setattr(opt, key, arch[key])
    opt.trained_model = arch["model"]
    if opt.model != "test" and opt.model != arch["model"]:
        print(f"note: --model {opt.model} ignored: the checkpoint holds a {arch['model']} model")
        opt.model = arch["model"]


def test_images(opt, model, dataset, out_dir):
    """The 2D loop: every test item's visuals as images, and metrics where targets exist."""
    rows, items = [], []
    total = min(len(dataset), opt.num_test)
    for i, data in enumerate(tqdm(dataset, total=total, desc="test", file=sys.stdout)):
        if i >= opt.num_test:
            break
        model.set_input(data)
        model.test()
        visuals = model.get_current_visuals()
        name = os.path.splitext(os.path.basename(model.get_image_paths()[0]))[0]
        saved = {}
        for label, image in visuals.items():
            if image is None:
                continue
            side = "B" if label.endswith("B") else "A"
            bits = int(data.get(f"{side}_bits", data.get("A_bits"))[0])
            path = os.path.join(out_dir, "images", label, name + ".png")
            save_image(tensor2im(image, bits=16 if bits == 16 and image.shape[1] == 1 else 8), path, opt.aspect_ratio)
            saved[label] = os.path.relpath(path, out_dir)
        items.append({"name": name, "images": saved})
        row = {"name": name}
        for out, (target, source) in TARGETS.items():
            if getattr(model, out, None) is None or getattr(model, target, None) is None:
                continue
            for k, v in metrics.compare(to01(getattr(model, out)[0]), to01(getattr(model, target)[0])).items():
                row[f"{k}_{out}"] = v
            src = getattr(model, source, None)
            if src is not None and src.shape == getattr(model, target).shape:
                for k, v in metrics.compare(to01(src[0]), to01(getattr(model, target)[0])).items():
                    row[f"baseline_{k}_{out}"] = v
        if len(row) > 1:
            rows.append(row)
    return items, rows


@user_facing
def main(argv=None):
    options = TestOptions()
    opt = options.parse(argv)
    ensure_dataroot(opt)
    opt.num_threads, opt.batch_size, opt.serial_batches, opt.no_flip = 0, 1, True, True
    apply_checkpoint_architecture(opt)
    model = create_model(opt)
    model.setup(opt)
    if opt.eval:
        model.eval()
    out_dir = os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.epoch}")
    options.save_options(opt, out_dir, "test_opt.txt")
    if model.dims == 3:
        from util import volume_test
        items, rows = volume_test.run(opt, model, out_dir)
    else:
        items, rows = test_images(opt, model, create_dataset(opt), out_dir)
    mean = metrics.write(rows, out_dir) if rows else {}
    from util.html import write_results_page
    page = write_results_page(out_dir, opt, items, rows, mean)
    if mean:
        for out in TARGETS:
            if f"PSNR_{out}" in mean:
                base = mean.get(f"baseline_PSNR_{out}")
                extra = f" (copy-the-input baseline {base:.2f} dB)" if base is not None else ""
                print(f"{out}: PSNR {mean[f'PSNR_{out}']:.2f} dB{extra}, SSIM {mean[f'SSIM_{out}']:.4f}, "
                      f"MAE {mean[f'MAE_{out}']:.4f}")
    print(f"results are in {out_dir} (open {page})")


if __name__ == "__main__":
    main()
