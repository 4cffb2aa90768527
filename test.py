"""Run a trained model on test images; save the images, metrics (MAE, PSNR, SSIM) and an HTML page.

    python test.py --dataroot ./datasets/maps --name maps_revgan --model unpaired_revgan
    python test.py --dataroot ./datasets/maps/testB --name maps_revgan --model test --direction BtoA

The network is rebuilt from the architecture stored in the checkpoint; flags that disagree are reported and ignored.
Generators trained with pytorch-CycleGAN-and-pix2pix (EPOCH_net_G.pth, ...) run too, built from the flags
(models/upstream.py).
Images go to results/NAME/PHASE_EPOCH/images/LABEL/NAME.png, metrics to metrics.csv and metrics.json beside them.

The networks run in train mode, as CycleGAN's test.py runs them (dropout on, batch norm on the image's own
statistics), unless --eval; the translate API (translate.py), validation and exports use eval mode. Dropout's masks
follow --seed, so one command gives the same outputs every time. Every
translation goes through evaluation.translator.Translator, as the translate API's do.
"""
from cli import user_facing
from evaluation import advice_lines, evaluate, set_test_mode, summary_lines
from options.test_options import TestOptions
from translate import load_model


@user_facing
def main(argv=None):
    options = TestOptions()
    opt, model = load_model(options, options.parse(argv))
    set_test_mode(opt, model)
    out_dir, page, mean = evaluate(opt, model, options)
    for line in summary_lines(mean) + advice_lines(model.spec, mean, getattr(model, "path_open", None)):
        print(line)
    print(f"results are in {out_dir} (open {page})")


if __name__ == "__main__":
    main()
