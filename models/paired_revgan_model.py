"""Paired RevGAN (as in the original): one reversible generator trained in both directions with conditional
discriminators D_A (judges A->B on (A, B) pairs) and D_B (judges B->A on (B, A) pairs), GAN loss plus lambda * L1."""
import torch

from models.gan import GANModel, add_generator_options, check_netG
from util.argtypes import WEIGHT, model_group
from util.flags import RESUMED


class PairedRevGANModel(GANModel):
    loss_names = ("G_A", "L1_A", "D_A", "G_B", "L1_B", "D_B")
    generator_losses = ("G_A", "G_B", "L1_A", "L1_B")
    directions = {"AtoB": ("G", "AtoB"), "BtoA": ("G", "BtoA")}

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        add_generator_options(parser, reversible=True)
        parser.set_defaults(dataset_mode="aligned")
        if is_train:
            parser.set_defaults(pool_size=0)
            model_group(parser).add_argument(
                "--lambda_L1", policy=RESUMED, type=WEIGHT, default=100.0, help="weight of the L1 losses")
        return parser

    def __init__(self, opt, spec):
        super().__init__(opt, spec)
        check_netG(spec, reversible=True)
        self.visual_names = ["real_A", "fake_B", "real_B", "fake_A"]
        self.netG = self.add_network("G", self.make_G(spec.input_nc, spec.output_nc))
        if self.is_train:
            pair_nc = spec.input_nc + spec.output_nc
            self.netD_A = self.add_network("D_A", self.make_D(pair_nc))
            self.netD_B = self.add_network("D_B", self.make_D(pair_nc))
            self.optimizer_G = self.add_optimizer(self.netG)
            self.optimizer_D = self.add_optimizer(self.netD_A, self.netD_B)

    def set_input(self, data):
        self.set_paired_input(data, "D_A")

    def forward(self):
        self.fake_B = self.translate(self.real_A, "AtoB")
        self.fake_A = self.translate(self.real_B, "BtoA")

    def optimize_parameters(self):
        with self.precision.autocast():
            self.forward()
            real_AB, fake_AB = torch.cat((self.real_A, self.real_B), 1), torch.cat((self.real_A, self.fake_B), 1)
            real_BA, fake_BA = torch.cat((self.real_B, self.real_A), 1), torch.cat((self.real_B, self.fake_A), 1)
            self.set_requires_grad([self.netD_A, self.netD_B], True)
            self.optimizer_D.zero_grad()
            self.loss_D_A = self.discriminator_loss(self.netD_A, real_AB, fake_AB)
            self.loss_D_B = self.discriminator_loss(self.netD_B, real_BA, fake_BA)
            self.check_losses_finite(["D_A", "D_B"])
            self.precision.update(self.loss_D_A + self.loss_D_B, self.optimizer_D)
            self.set_requires_grad([self.netD_A, self.netD_B], False)
            self.optimizer_G.zero_grad()
            self.loss_G_A = self.criterionGAN(self.netD_A(fake_AB), True)
            self.loss_G_B = self.criterionGAN(self.netD_B(fake_BA), True)
            self.loss_L1_A = self.criterionL1(self.fake_B, self.real_B) * self.opt.lambda_L1
            self.loss_L1_B = self.criterionL1(self.fake_A, self.real_A) * self.opt.lambda_L1
            self.check_losses_finite(self.generator_losses)
            self.precision.update(self.loss_G_A + self.loss_G_B + self.loss_L1_A + self.loss_L1_B, self.optimizer_G)
