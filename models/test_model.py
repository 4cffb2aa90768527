"""Single-direction inference with the generator of any trained model (CycleGAN's ``--model test``): RevGAN and
CycleGAN models run either direction (--direction, or CycleGAN's --model_suffix _A|_B); pix2pix models A to B.

The network is the one the trained model's class declares for that direction (its ``directions``), built from the
checkpoint's architecture, so a RevGAN's BtoA is dec_A(core.inverse(enc_B(x))) and a CycleGAN's is G_B."""
from models import find_model_using_name, upstream
from models.base_model import BaseModel
from models.gan import add_generator_options
from models.networks import define_G
from models.volume import VolumeMeta
from util.argtypes import BELOW_ONE, COUNT, model_group
from util.errors import UserError
from util.flags import RUN


class TestModel(BaseModel):
    # --direction picks the generator's direction (it does not swap the data folders, as training's does), and the
    # translations name the true domains
    direction_swaps_data = False

    @staticmethod
    def modify_commandline_options(parser, is_train=False):
        if is_train:
            raise UserError("--model test is for test.py; train with pix2pix, cycle_gan, paired_revgan or "
                            "unpaired_revgan")
        parser.set_defaults(dataset_mode="single")
        add_generator_options(parser, reversible=True)
        parser.set_defaults(netG="resnet_9blocks", norm="instance")  # their test.py's (files of theirs)
        parser.set_policies(model=RUN, direction=RUN)  # --model test and the direction to run: not the checkpoint's
        group = model_group(parser)
        group.add_argument("--model_suffix", policy=RUN, default="", choices=["", "_A", "_B"],
                           help="CycleGAN's name for the direction: _A runs G_A (A->B, --direction AtoB), _B runs "
                                "G_B (B->A, --direction BtoA)")
        group.add_argument("--patch_size", policy=RUN, type=COUNT, nargs="+", default=None,
                           help="3D checkpoints: sliding-window patch (None: the training patch)")
        group.add_argument("--overlap", policy=RUN, type=BELOW_ONE, default=0.5,
                           help="3D checkpoints: sliding-window overlap (0 to <1)")
        return parser

    def __init__(self, opt, spec):
        super().__init__(opt, spec)
        direction = opt.direction  # TestOptions resolves --model_suffix into it
        directions = upstream.SINGLE_G_DIRECTIONS if spec.model == upstream.SINGLE_G else \
            find_model_using_name(spec.model).directions_of(spec)
        if direction not in directions:
            why = " (it was trained A to B only, the paired RevGAN's default: its B to A networks never trained; " \
                  "--two_way trains both directions)" if spec.one_way else ""
            typed = "--model_suffix _B" if getattr(opt, "model_suffix", "") == "_B" else "--direction BtoA"
            raise UserError(f"a {spec.model} model translates one way only, the translation it was trained "
                            f"(for --model test that is AtoB, also for a model trained with --direction BtoA: it maps "
                            f"what it was trained to map){why}; drop {typed}")
        name, call = directions[direction]
        # a network called in the other direction than the translation's is a one-way network from B to A
        in_nc, out_nc = (spec.input_nc, spec.output_nc) if call == direction else (spec.output_nc, spec.input_nc)
        self.add_network(name, define_G(in_nc, out_nc, spec.generator))
        self.directions = {direction: (name, call)}
        self.direction = direction
        self.loss_names = ()
        self.visual_names = ["real", "fake"]
        self.volume = VolumeMeta() if spec.dims == 3 else None  # a 3D checkpoint's intensity ranges and patch

    def load_extra(self, extra):
        if self.volume:
            self.volume.load(extra, keep_patch=False)

    def set_input(self, data):
        self.real = data["A"].to(self.device)
        self.image_paths = data["A_paths"]
        self.check_input(self.real, self.direction)

    def forward(self):
        self.fake = self.translate(self.real, self.direction)
