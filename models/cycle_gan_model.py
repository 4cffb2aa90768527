"""CycleGAN (Zhu et al. 2017): G_A: A -> B, G_B: B -> A, discriminators D_A (on B) and D_B (on A), cycle and
identity losses (the training step is models.cycle.CycleModel's)."""
from models.cycle import CycleModel, add_cycle_options
from models.gan import check_netG


class CycleGANModel(CycleModel):
    directions = {"AtoB": ("G_A", "AtoB"), "BtoA": ("G_B", "AtoB")}  # G_B is a one-way network from B to A

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        return add_cycle_options(parser, is_train, reversible=False)

    def __init__(self, opt, spec):
        super().__init__(opt, spec)
        check_netG(spec, reversible=False)
        self.netG_A = self.add_network("G_A", self.make_G(spec.input_nc, spec.output_nc))
        self.netG_B = self.add_network("G_B", self.make_G(spec.output_nc, spec.input_nc))
        self.build_cycle_training([self.netG_A, self.netG_B])
