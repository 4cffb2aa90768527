from util.argtypes import COUNT, POSITIVE
from util.errors import UserError

from .base_options import BaseOptions


class TestOptions(BaseOptions):
    is_train = False

    def initialize(self, parser):
        parser = super().initialize(parser)
        parser.add_argument("--results_dir", default="./results/", help="results are saved here")
        parser.add_argument("--aspect_ratio", type=POSITIVE, default=1.0, help="aspect ratio of saved images")
        parser.add_argument("--phase", default="test", help="train, val, test, ...")
        parser.add_argument("--eval", action="store_true", help="eval mode (BatchNorm running stats, no dropout)")
        parser.add_argument("--num_test", type=COUNT, default=50, help="how many test images to run")
        parser.set_defaults(load_size=parser.get_default("crop_size"))  # no random crop at test time
        return parser

    def parse(self, argv=None):
        opt = super().parse(argv)
        if opt.model == "test" and opt.model_suffix:  # CycleGAN's name for the direction of --model test
            wanted = "AtoB" if opt.model_suffix == "_A" else "BtoA"
            if opt.direction != wanted and "direction" in self.typed:
                raise UserError(f"--model_suffix {opt.model_suffix} runs {wanted}, but --direction is "
                                f"{opt.direction}: give one of the two")
            opt.direction = wanted
        return opt
