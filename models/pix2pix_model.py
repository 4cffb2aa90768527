"""pix2pix (Isola et al. 2017): G: A -> B with a conditional PatchGAN and L1 to the paired target.

The shortest complete model here, and the one to copy for a new model: declare the losses, the generator objective
and the directions; build networks and optimizers in __init__; define set_input, forward, optimize_parameters."""
import torch

from models.gan import GANModel, add_generator_options, check_netG
from models.networks import GATE_MAX_LR
from util.argtypes import WEIGHT, model_group
from util.flags import RESUMED


class Pix2PixModel(GANModel):
    loss_names = ("G_GAN", "G_L1", "D_real", "D_fake")  # logged: self.loss_<name>
    generator_losses = ("G_GAN", "G_L1")  # the generator's objective (what --lr_policy plateau watches)
    directions = {"AtoB": ("G", "AtoB")}  # translates A to B with network G

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser.set_defaults(netG="unet_256", dataset_mode="aligned")
        add_generator_options(parser, reversible=False)
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="vanilla")
            model_group(parser).add_argument("--lambda_L1", policy=RESUMED, type=WEIGHT, default=100.0,
                                             help="weight of the L1 loss")
        return parser

    def __init__(self, opt, spec):
        super().__init__(opt, spec)
        check_netG(spec, reversible=False)
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.netG = self.add_network("G", self.make_G(spec.input_nc, spec.output_nc))
        if self.is_train:
            self.netD = self.add_network("D", self.make_D(spec.input_nc + spec.output_nc))
            self.optimizer_G = self.add_optimizer(self.netG, gain_lr_cap=GATE_MAX_LR)
            self.optimizer_D = self.add_optimizer(self.netD)

    def set_input(self, data):
        self.set_paired_input(data, "D")

    def forward(self):
        self.fake_B = self.translate(self.real_A)

    def optimize_parameters(self):
        with self.precision.autocast():
            self.forward()
            self.set_requires_grad(self.netD, True)
            self.optimizer_D.zero_grad()
            real_AB = torch.cat((self.real_A, self.real_B), 1)  # the conditional discriminator sees (A, B)
            fake_AB = torch.cat((self.real_A, self.fake_B), 1)
            self.loss_D_real, self.loss_D_fake, penalty = self.discriminator_terms(self.netD, real_AB, fake_AB)
            self.check_losses_finite(["D_real", "D_fake"])
            self.precision.update(0.5 * (self.loss_D_fake + self.loss_D_real) + penalty, self.optimizer_D)
            self.set_requires_grad(self.netD, False)
            self.optimizer_G.zero_grad()
            self.loss_G_GAN = self.criterionGAN(self.netD(fake_AB), True)
            self.loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * self.opt.lambda_L1
            self.check_losses_finite(self.generator_losses)
            self.precision.update(self.loss_G_GAN + self.loss_G_L1, self.optimizer_G)
