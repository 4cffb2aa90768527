"""Paired RevGAN (as in the original): one reversible generator trained in both directions with conditional
discriminators D_A (judges A->B on (A, B) pairs) and D_B (judges B->A on (B, A) pairs), GAN loss plus lambda * L1."""
import torch

from models.base_model import BaseModel
from models.gan_parts import GANTraining, adam, add_generator_options, check_netG, make_D, make_G
from util.argtypes import WEIGHT


class PairedRevGANModel(GANTraining, BaseModel):
    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        add_generator_options(parser, revgan=True)
        parser.set_defaults(dataset_mode="aligned")
        if is_train:
            parser.set_defaults(pool_size=0)
            parser.add_argument("--lambda_L1", type=WEIGHT, default=100.0, help="weight of the L1 losses")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        check_netG(opt, True)
        self.loss_names = ["G_A", "L1_A", "D_A", "G_B", "L1_B", "D_B"]
        self.visual_names = ["real_A", "fake_B", "real_B", "fake_A"]
        self.model_names = ["G", "D_A", "D_B"] if self.is_train else ["G"]
        self.netG = make_G(opt, opt.input_nc, opt.output_nc, self.dims).to(self.device)
        if self.is_train:
            pair_nc = opt.input_nc + opt.output_nc
            self.netD_A, self.netD_B = make_D(opt, pair_nc, self.dims).to(self.device), \
                make_D(opt, pair_nc, self.dims).to(self.device)
            self.init_gan()
            self.optimizer_G = adam(opt, self.netG)
            self.optimizer_D = adam(opt, self.netD_A, self.netD_B)
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    def translators(self):
        """label -> (source domain, target domain, function) for whole-volume inference."""
        return {"fake_B": ("A", "B", lambda x: self.netG(x, "AtoB")),
                "fake_A": ("B", "A", lambda x: self.netG(x, "BtoA"))}

    def set_input(self, input):
        self.set_paired_input(input, "D_A")

    def forward(self):
        self.fake_B = self.netG(self.real_A, "AtoB")
        self.fake_A = self.netG(self.real_B, "BtoA")

    def optimize_parameters(self):
        with self.autocast():
            self.forward()
            real_AB, fake_AB = torch.cat((self.real_A, self.real_B), 1), torch.cat((self.real_A, self.fake_B), 1)
            real_BA, fake_BA = torch.cat((self.real_B, self.real_A), 1), torch.cat((self.real_B, self.fake_A), 1)
            self.set_requires_grad([self.netD_A, self.netD_B], True)
            self.optimizer_D.zero_grad()
            self.loss_D_A = self.backward_D_basic(self.netD_A, real_AB, fake_AB)
            self.loss_D_B = self.backward_D_basic(self.netD_B, real_BA, fake_BA)
            self.check_losses_finite(["D_A", "D_B"])
            self.update(self.loss_D_A + self.loss_D_B, self.optimizer_D)
            self.set_requires_grad([self.netD_A, self.netD_B], False)
            self.optimizer_G.zero_grad()
            self.loss_G_A = self.criterionGAN(self.netD_A(fake_AB), True)
            self.loss_G_B = self.criterionGAN(self.netD_B(fake_BA), True)
            self.loss_L1_A = self.criterionL1(self.fake_B, self.real_B) * self.opt.lambda_L1
            self.loss_L1_B = self.criterionL1(self.fake_A, self.real_A) * self.opt.lambda_L1
            self.check_losses_finite(["G_A", "G_B", "L1_A", "L1_B"])
            self.update(self.loss_G_A + self.loss_G_B + self.loss_L1_A + self.loss_L1_B, self.optimizer_G)
