from util.argtypes import COUNT, POSITIVE
from util.errors import UserError
from util.flags import RUN

from .base_options import BaseOptions


class TestOptions(BaseOptions):
    is_train = False

    def initialize(self, parser):
        parser = super().initialize(parser)
        parser.add_argument("--results_dir", policy=RUN, default="./results/", help="results are saved here")
        parser.add_argument("--aspect_ratio", policy=RUN, type=POSITIVE, default=1.0,
                            help="aspect ratio of saved images")
        parser.add_argument("--phase", policy=RUN, default="test", help="train, val, test, ...")
        parser.add_argument("--eval", policy=RUN, action="store_true",
                            help="eval mode (BatchNorm running stats, no dropout)")
        parser.add_argument("--num_test", policy=RUN, type=COUNT, default=50, help="how many test images to run")
        parser.add_argument("--fid", policy=RUN, action="store_true",
                            help="2D: also FID and KID of each translation against the real images of its target "
                                 "domain (testA and testB; standard InceptionV3 features, see --fid_weights)")
        parser.add_argument("--baseline", policy=RUN, default="auto", choices=["auto", "copy", "lut", "mean", "none"],
                            help="what the metrics are compared with: copy (the input unchanged), lut (a look-up "
                                 "table of the input's colour fitted on the training pairs), mean (their mean "
                                 "target colour everywhere), none; auto: with paired training data at hand, "
                                 "whichever of copy, lut and mean has the best PSNR on the training pairs (no copy "
                                 "where input and target differ in channels), else copy where the channels match, "
                                 "else none")
        parser.set_defaults(load_size=parser.get_default("crop_size"))  # no random crop at test time
        return parser

    def adjust(self, values):
        super().adjust(values)
        if values["model"] == "test" and values["model_suffix"]:  # CycleGAN's name for the direction of --model test
            wanted = "AtoB" if values["model_suffix"] == "_A" else "BtoA"
            if values["direction"] != wanted and "direction" in self.typed:
                raise UserError(f"--model_suffix {values['model_suffix']} runs {wanted}, but --direction is "
                                f"{values['direction']}: give one of the two")
            values["direction"] = wanted
