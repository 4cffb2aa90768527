"""pix2pix (Isola et al. 2017): G: A -> B with a conditional PatchGAN and L1 to the paired target."""
import torch

from models.base_model import BaseModel
from models.gan_parts import GANTraining, adam, add_generator_options, check_netG, make_D, make_G
from util.argtypes import WEIGHT


class Pix2PixModel(GANTraining, BaseModel):
    revgan = False

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser.set_defaults(norm="batch", netG="unet_256", dataset_mode="aligned")
        add_generator_options(parser, revgan=False)
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="vanilla")
            parser.add_argument("--lambda_L1", type=WEIGHT, default=100.0, help="weight of the L1 loss")
        return parser

    def __init__(self, opt):
        super().__init__(opt)
        check_netG(opt, self.revgan)
        self.loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"]
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.is_train else ["G"]
        self.netG = make_G(opt, opt.input_nc, opt.output_nc, self.dims).to(self.device)
        if self.is_train:
            self.netD = make_D(opt, opt.input_nc + opt.output_nc, self.dims).to(self.device)
            self.init_gan()
            self.optimizer_G, self.optimizer_D = adam(opt, self.netG), adam(opt, self.netD)
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    def translators(self):
        return {"fake_B": ("A", "B", self.netG)}

    def set_input(self, input):
        self.set_paired_input(input, "D")

    def forward(self):
        self.fake_B = self.netG(self.real_A)

    def optimize_parameters(self):
        with self.autocast():
            self.forward()
            self.set_requires_grad(self.netD, True)
            self.optimizer_D.zero_grad()
            real_AB = torch.cat((self.real_A, self.real_B), 1)
            fake_AB = torch.cat((self.real_A, self.fake_B), 1)
            self.loss_D_fake = self.criterionGAN(self.netD(fake_AB.detach()), False)
            self.loss_D_real = self.criterionGAN(self.netD(real_AB), True)
            loss_D = 0.5 * (self.loss_D_fake + self.loss_D_real)
            if self.opt.gan_mode == "wgangp":
                from models.networks import gradient_penalty
                loss_D = loss_D + gradient_penalty(self.netD, real_AB, fake_AB, lambda_gp=self.opt.lambda_gp)
            self.check_losses_finite(["D_real", "D_fake"])
            self.update(loss_D, self.optimizer_D)
            self.set_requires_grad(self.netD, False)
            self.optimizer_G.zero_grad()
            self.loss_G_GAN = self.criterionGAN(self.netD(fake_AB), True)
            self.loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * self.opt.lambda_L1
            self.check_losses_finite(["G_GAN", "G_L1"])
            self.update(self.loss_G_GAN + self.loss_G_L1, self.optimizer_G)
