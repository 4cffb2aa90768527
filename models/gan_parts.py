"""Pieces every GAN model here shares: option groups, the generator/discriminator set-up, D's backward."""
import itertools

import torch

from models import networks
from util.argtypes import NONNEG_INT
from util.errors import UserError
from util.image_pool import ImagePool


def add_generator_options(parser, revgan):
    parser.add_argument("--n_downsampling", type=NONNEG_INT, default=2, help="stride-2 levels in the encoder/decoder")
    parser.add_argument("--no_output_tanh", action="store_true", help="no tanh on the generator output")
    if revgan:
        parser.add_argument("--n_blocks", type=NONNEG_INT, default=6,
                            help="depth of the reversible core (coupling blocks)")
        parser.add_argument("--coupling", default="additive", choices=["additive", "affine"])
        parser.add_argument("--use_naive", action="store_true",
                            help="run the core on plain autograd (stores activations; the memory reference)")
        parser.add_argument("--iunet_architecture", default=networks.IUNET_ARCHITECTURE,
                            help="--netG iunet: coupling blocks per resolution level, comma-separated")
        parser.set_defaults(netG="revgan")
    return parser


REVERSIBLE_NETG = ("revgan", "iunet")


def check_netG(opt, revgan):
    if revgan and opt.netG not in REVERSIBLE_NETG:
        raise UserError(f"--model {opt.model} needs --netG revgan or iunet (got {opt.netG}); for {opt.netG} use "
                        f"--model pix2pix or cycle_gan")
    if not revgan and opt.netG in REVERSIBLE_NETG:
        raise UserError(f"--netG {opt.netG} belongs to the RevGAN models: use --model paired_revgan or "
                        f"unpaired_revgan")


def make_G(opt, input_nc, output_nc, dims):
    return networks.define_G(input_nc, output_nc, opt.ngf, opt.netG, opt.norm, not opt.no_dropout, opt.init_type,
                             opt.init_gain, dims, getattr(opt, "n_blocks", None), opt.n_downsampling,
                             getattr(opt, "coupling", "additive"), getattr(opt, "use_naive", False),
                             not opt.no_output_tanh, getattr(opt, "iunet_architecture", networks.IUNET_ARCHITECTURE))


def make_D(opt, input_nc, dims):
    return networks.define_D(input_nc, opt.ndf, opt.netD, opt.n_layers_D, opt.norm, opt.init_type, opt.init_gain,
                             dims)


def adam(opt, *nets):
    return torch.optim.Adam(itertools.chain(*[n.parameters() for n in nets]), lr=opt.lr, betas=(opt.beta1, 0.999))


class GANTraining:
    """Mixin: criterion, pools and the discriminator's backward (with a real WGAN-GP penalty)."""

    def init_gan(self, pool_names=()):
        self.criterionGAN = networks.GANLoss(self.opt.gan_mode).to(self.device)
        self.criterionL1 = torch.nn.L1Loss()
        for name in pool_names:
            self.pools[name] = ImagePool(self.opt.pool_size)

    def set_paired_input(self, input, disc_name):
        """Paired batch for generator G and a conditional discriminator seeing (A, B) channel pairs."""
        self.real_A = input["A"].to(self.device)
        self.real_B = input["B"].to(self.device)
        self.image_paths = input["A_paths"]
        self.note_input_size("G", self.real_A)
        if self.is_train:
            self.check_disc_size(disc_name, self.opt.input_nc + self.opt.output_nc, self.real_A.shape[2:])

    def backward_D_basic(self, netD, real, fake):
        loss = 0.5 * (self.criterionGAN(netD(real), True) + self.criterionGAN(netD(fake.detach()), False))
        if self.opt.gan_mode == "wgangp":
            loss = loss + networks.gradient_penalty(netD, real, fake, lambda_gp=self.opt.lambda_gp)
        return loss
