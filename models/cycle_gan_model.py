"""CycleGAN (Zhu et al. 2017): G_A: A -> B, G_B: B -> A, discriminators D_A (on B) and D_B (on A), cycle and
identity losses."""
from models.base_model import BaseModel
from models.gan_parts import GANTraining, adam, add_generator_options, check_netG, make_D, make_G
from util.argtypes import WEIGHT


def add_cycle_options(parser, is_train):
    parser.set_defaults(no_dropout=True, dataset_mode="unaligned")
    if is_train:
        parser.add_argument("--lambda_A", type=WEIGHT, default=10.0, help="weight of cycle loss A -> B -> A")
        parser.add_argument("--lambda_B", type=WEIGHT, default=10.0, help="weight of cycle loss B -> A -> B")
        parser.add_argument("--lambda_identity", type=WEIGHT, default=0.5,
                            help="identity loss weight, relative to lambda_A/lambda_B; 0 turns it off")
    return parser


class CycleLosses:
    """The CycleGAN objective, input and training step given ``self.G_AB``/``self.G_BA`` callables; shared with
    unpaired_revgan. ``size_net`` names the generator whose size multiple applies."""

    size_net = "G_A"
    loss_names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
    visuals_A = ["real_A", "fake_B", "rec_A"]
    visuals_B = ["real_B", "fake_A", "rec_B"]

    def translators(self):
        return {"fake_B": ("A", "B", self.G_AB), "fake_A": ("B", "A", self.G_BA)}

    def set_input(self, input):
        self.real_A = input["A"].to(self.device)
        self.real_B = input["B"].to(self.device) if "B" in input else None
        self.image_paths = input["A_paths"]
        self.note_input_size(self.size_net, self.real_A)
        if self.is_train:
            self.check_disc_size("D_A", self.opt.output_nc, self.real_B.shape[2:])

    def forward(self):
        self.fake_B = self.G_AB(self.real_A)
        self.rec_A = self.G_BA(self.fake_B)
        self.fake_A = self.G_BA(self.real_B)
        self.rec_B = self.G_AB(self.fake_A)

    def loss_G_cycle(self):
        """The generators' total loss (GAN + cycle + identity)."""
        opt = self.opt
        lam_idt = opt.lambda_identity
        if lam_idt > 0 and opt.input_nc == opt.output_nc:
            self.idt_A = self.G_AB(self.real_B)
            self.idt_B = self.G_BA(self.real_A)
            self.loss_idt_A = self.criterionL1(self.idt_A, self.real_B) * opt.lambda_B * lam_idt
            self.loss_idt_B = self.criterionL1(self.idt_B, self.real_A) * opt.lambda_A * lam_idt
        else:
            self.loss_idt_A = self.loss_idt_B = self.real_A.new_zeros(())
        self.loss_G_A = self.criterionGAN(self.netD_A(self.fake_B), True)
        self.loss_G_B = self.criterionGAN(self.netD_B(self.fake_A), True)
        self.loss_cycle_A = self.criterionL1(self.rec_A, self.real_A) * opt.lambda_A
        self.loss_cycle_B = self.criterionL1(self.rec_B, self.real_B) * opt.lambda_B
        self.check_losses_finite(["G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B"])
        return (self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B + self.loss_idt_A
                + self.loss_idt_B)

    def optimize_parameters(self):
        with self.autocast():
            self.forward()
            self.set_requires_grad([self.netD_A, self.netD_B], False)
            self.optimizer_G.zero_grad()
            self.update(self.loss_G_cycle(), self.optimizer_G)
            self.set_requires_grad([self.netD_A, self.netD_B], True)
            self.optimizer_D.zero_grad()
            self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, self.pools["fake_B"].query(self.fake_B))
            self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, self.pools["fake_A"].query(self.fake_A))
            self.check_losses_finite(["D_A", "D_B"])
            self.update(self.loss_D_A + self.loss_D_B, self.optimizer_D)

    def training_visuals(self):
        names = self.visuals_A + self.visuals_B
        if self.is_train and self.opt.lambda_identity > 0 and self.opt.input_nc == self.opt.output_nc:
            names = self.visuals_A + ["idt_B"] + self.visuals_B + ["idt_A"]
        return names


class CycleGANModel(CycleLosses, GANTraining, BaseModel):
    # looked up at each call: under torchrun netG_A/netG_B become their DistributedDataParallel wrappers
    def G_AB(self, x):
        return self.netG_A(x)

    def G_BA(self, x):
        return self.netG_B(x)

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        add_generator_options(parser, revgan=False)
        return add_cycle_options(parser, is_train)

    def __init__(self, opt):
        super().__init__(opt)
        check_netG(opt, False)
        self.loss_names = list(CycleLosses.loss_names)
        self.visual_names = self.training_visuals()
        self.model_names = ["G_A", "G_B", "D_A", "D_B"] if self.is_train else ["G_A", "G_B"]
        self.netG_A = make_G(opt, opt.input_nc, opt.output_nc, self.dims).to(self.device)
        self.netG_B = make_G(opt, opt.output_nc, opt.input_nc, self.dims).to(self.device)
        if self.is_train:
            self.netD_A = make_D(opt, opt.output_nc, self.dims).to(self.device)
            self.netD_B = make_D(opt, opt.input_nc, self.dims).to(self.device)
            self.init_gan(["fake_A", "fake_B"])
            self.optimizer_G = adam(opt, self.netG_A, self.netG_B)
            self.optimizer_D = adam(opt, self.netD_A, self.netD_B)
            self.optimizers = [self.optimizer_G, self.optimizer_D]
