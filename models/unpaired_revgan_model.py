"""Unpaired RevGAN: CycleGAN's objective with one reversible generator,
A->B = dec_B(core(enc_A(a))), B->A = dec_A(core.inverse(enc_B(b)))."""
from models.base_model import BaseModel
from models.cycle_gan_model import CycleLosses, add_cycle_options
from models.gan_parts import GANTraining, adam, add_generator_options, check_netG, make_D, make_G


class UnpairedRevGANModel(CycleLosses, GANTraining, BaseModel):
    size_net = "G"

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        add_generator_options(parser, revgan=True)
        return add_cycle_options(parser, is_train)

    def __init__(self, opt):
        super().__init__(opt)
        check_netG(opt, True)
        self.loss_names = list(CycleLosses.loss_names)
        self.visual_names = self.training_visuals()
        self.model_names = ["G", "D_A", "D_B"] if self.is_train else ["G"]
        self.netG = make_G(opt, opt.input_nc, opt.output_nc, self.dims).to(self.device)
        if self.is_train:
            self.netD_A = make_D(opt, opt.output_nc, self.dims).to(self.device)
            self.netD_B = make_D(opt, opt.input_nc, self.dims).to(self.device)
            self.init_gan(["fake_A", "fake_B"])
            self.optimizer_G = adam(opt, self.netG)
            self.optimizer_D = adam(opt, self.netD_A, self.netD_B)
            self.optimizers = [self.optimizer_G, self.optimizer_D]

    # looked up at each call: under torchrun netG becomes its DistributedDataParallel wrapper
    def G_AB(self, x):
        return self.netG(x, "AtoB")

    def G_BA(self, x):
        return self.netG(x, "BtoA")
