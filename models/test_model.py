"""Single-direction inference with the generator of any trained model; RevGAN models run either direction
(--direction AtoB: dec_B(core(enc_A(x))); BtoA: dec_A(core.inverse(enc_B(x))))."""
from models.base_model import BaseModel
from models.gan_parts import REVERSIBLE_NETG, add_generator_options, make_G
from models.networks import IUNET_ARCHITECTURE
from util.argtypes import NONNEG_INT
from util.errors import UserError


class TestModel(BaseModel):
    direction_swaps_data = False

    @staticmethod
    def modify_commandline_options(parser, is_train=False):
        if is_train:
            raise UserError("--model test is for test.py; train with pix2pix, cycle_gan, paired_revgan or "
                            "unpaired_revgan")
        parser.set_defaults(dataset_mode="single")
        add_generator_options(parser, revgan=False)
        parser.add_argument("--n_blocks", type=NONNEG_INT, default=None, help="(taken from the checkpoint)")
        parser.add_argument("--coupling", default="additive", choices=["additive", "affine"])
        parser.add_argument("--use_naive", action="store_true")
        parser.add_argument("--iunet_architecture", default=IUNET_ARCHITECTURE, help="(taken from the checkpoint)")
        parser.add_argument("--model_suffix", default="", choices=["", "_A", "_B"],
                            help="CycleGAN's name for the direction: _A runs G_A (A->B, --direction AtoB), _B runs "
                                 "G_B (B->A, --direction BtoA)")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        self.dims = getattr(opt, "dims", 2)  # from the checkpoint's architecture
        trained = getattr(opt, "trained_model", None) or "pix2pix"
        self.loss_names = []
        self.visual_names = ["real", "fake"]
        if opt.model_suffix:
            wanted = "AtoB" if opt.model_suffix == "_A" else "BtoA"
            if opt.direction != wanted and opt.direction != "AtoB":  # AtoB is also the default
                raise UserError(f"--model_suffix {opt.model_suffix} runs {wanted}, but --direction is "
                                f"{opt.direction}: give one of the two")
            opt.direction = wanted
        reverse = opt.direction == "BtoA"
        in_nc, out_nc = (opt.output_nc, opt.input_nc) if reverse else (opt.input_nc, opt.output_nc)
        if opt.netG in REVERSIBLE_NETG:
            name = "G"
            self.netG = make_G(opt, opt.input_nc, opt.output_nc, self.dims).to(self.device)
            self.generate = lambda x: self.netG(x, opt.direction)
        elif trained.startswith("cycle_gan"):
            name = "G_B" if reverse else "G_A"
            setattr(self, "net" + name, make_G(opt, in_nc, out_nc, self.dims).to(self.device))
            self.generate = getattr(self, "net" + name)
        else:
            name = "G"
            if reverse:
                raise UserError(f"a {trained} model translates A to B only; drop --direction BtoA")
            self.netG = make_G(opt, in_nc, out_nc, self.dims).to(self.device)
            self.generate = self.netG
        self.gen_name = name
        self.model_names = [name]

    def architecture(self):
        arch = super().architecture()
        arch["model"] = getattr(self.opt, "trained_model", "test")
        return arch

    def translators(self):
        return {"fake_A": ("B", "A", self.generate)} if self.opt.direction == "BtoA" else \
            {"fake_B": ("A", "B", self.generate)}

    def set_input(self, input):
        self.real = input["A"].to(self.device)
        self.image_paths = input["A_paths"]
        self.note_input_size(self.gen_name, self.real)

    def forward(self):
        self.fake = self.generate(self.real)
