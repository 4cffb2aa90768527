"""Paired RevGAN: one reversible generator trained with a conditional discriminator D_A (judges A->B on (A, B)
pairs), GAN loss plus lambda * L1. By default only A->B trains (after --direction), as pix2pix does: a step costs
about pix2pix's. With --two_way it also trains B->A, as the original RevGAN did, with a second discriminator D_B
(judges B->A on (B, A) pairs): about twice the step."""
import torch

from models.gan import GANModel, add_generator_options, check_netG
from models.networks import GATE_MAX_LR
from util.argtypes import WEIGHT, model_group
from util.flags import ARCH, RESUMED


class PairedRevGANModel(GANModel):
    loss_names = ("G_A", "L1_A", "D_A", "G_B", "L1_B", "D_B")
    generator_losses = ("G_A", "G_B", "L1_A", "L1_B")
    directions = {"AtoB": ("G", "AtoB"), "BtoA": ("G", "BtoA")}

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        add_generator_options(parser, reversible=True)
        # stem None: the unshuffle stem (ModelSpec.from_options; docs/benchmarks.md, "The unshuffle stem")
        parser.set_defaults(dataset_mode="aligned", stem=None)
        if is_train:
            parser.set_defaults(pool_size=0)
            group = model_group(parser)
            group.add_argument(
                "--lambda_L1", policy=RESUMED, type=WEIGHT, default=100.0, help="weight of the L1 losses")
            group.add_argument(
                "--two_way", policy=ARCH, dest="one_way", action="store_false",
                help="train both directions, A->B and B->A, as the original RevGAN did: a second discriminator D_B "
                     "and a B->A pass each step (about twice the step time and memory of the default, which trains "
                     "A->B only, as pix2pix does); the checkpoint then translates both ways (test.py --direction "
                     "BtoA, the translate API, export)")
            group.add_argument(
                "--one_way", policy=ARCH, action="store_true",
                help="train A->B only (after --direction), as pix2pix does: the default (a flag for commands written "
                     "before it was); the checkpoint translates A->B only (its B->A networks never train, so "
                     "test.py, the translate API and export refuse BtoA; --two_way trains both)")
            parser.set_defaults(one_way=True)
        return parser

    @classmethod
    def directions_of(cls, spec):
        return {"AtoB": cls.directions["AtoB"]} if spec.one_way else cls.directions

    def __init__(self, opt, spec):
        super().__init__(opt, spec)
        check_netG(spec, reversible=True)
        self.directions = self.directions_of(spec)
        self.sides = ("A",) if spec.one_way else ("A", "B")  # A: A->B judged by D_A; B: B->A judged by D_B
        self.loss_names = tuple(n for n in self.loss_names if n[-1] in self.sides)
        self.generator_losses = tuple(n for n in self.generator_losses if n[-1] in self.sides)
        self.visual_names = ["real_A", "fake_B", "real_B"] + ([] if spec.one_way else ["fake_A"])
        self.netG = self.add_network("G", self.make_G(spec.input_nc, spec.output_nc))
        if spec.one_way:  # never used: frozen, so that DistributedDataParallel waits for no gradient of theirs
            for part in self.netG.btoa_only_parts():
                part.requires_grad_(False)
        if self.is_train:
            pair_nc = spec.input_nc + spec.output_nc
            discriminators = [self.add_network("D_" + side, self.make_D(pair_nc)) for side in self.sides]
            self.optimizer_G = self.add_optimizer(self.netG, gain_lr_cap=GATE_MAX_LR)
            self.optimizer_D = self.add_optimizer(*discriminators)

    def set_input(self, data):
        self.set_paired_input(data, "D_A")

    def forward(self):
        self.fake_B = self.translate(self.real_A, "AtoB")
        if "B" in self.sides:
            self.fake_A = self.translate(self.real_B, "BtoA")

    def optimize_parameters(self):
        with self.precision.autocast():
            self.forward()
            # per side: its discriminator, the real pair, the fake pair (the condition first), the fake, the target
            sides = {"A": (self.netD_A, torch.cat((self.real_A, self.real_B), 1),
                           torch.cat((self.real_A, self.fake_B), 1), self.fake_B, self.real_B)}
            if "B" in self.sides:
                sides["B"] = (self.netD_B, torch.cat((self.real_B, self.real_A), 1),
                              torch.cat((self.real_B, self.fake_A), 1), self.fake_A, self.real_A)
            nets = [d for d, *_ in sides.values()]
            self.set_requires_grad(nets, True)
            self.optimizer_D.zero_grad()
            for side, (netD, real, fake, _, _) in sides.items():
                setattr(self, "loss_D_" + side, self.discriminator_loss(netD, real, fake))
            names = ["D_" + side for side in sides]
            self.check_losses_finite(names)
            self.precision.update(sum(getattr(self, "loss_" + n) for n in names), self.optimizer_D)
            self.set_requires_grad(nets, False)
            self.optimizer_G.zero_grad()
            for side, (netD, _, fake_pair, fake, target) in sides.items():
                setattr(self, "loss_G_" + side, self.criterionGAN(netD(fake_pair), True))
                setattr(self, "loss_L1_" + side, self.criterionL1(fake, target) * self.opt.lambda_L1)
            self.check_losses_finite(self.generator_losses)
            self.precision.update(sum(getattr(self, "loss_" + n) for n in self.generator_losses), self.optimizer_G)
