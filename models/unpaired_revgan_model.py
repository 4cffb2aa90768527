"""Unpaired RevGAN: CycleGAN's objective (models.cycle.CycleModel) with one reversible generator,
A->B = dec_B(core(enc_A(a))), B->A = dec_A(core.inverse(enc_B(b)))."""
from models.cycle import CycleModel, add_cycle_options
from models.gan import check_netG


class UnpairedRevGANModel(CycleModel):
    directions = {"AtoB": ("G", "AtoB"), "BtoA": ("G", "BtoA")}

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        return add_cycle_options(parser, is_train, reversible=True)

    def __init__(self, opt, spec):
        super().__init__(opt, spec)
        check_netG(spec, reversible=True)
        self.netG = self.add_network("G", self.make_G(spec.input_nc, spec.output_nc))
        self.build_cycle_training([self.netG])
