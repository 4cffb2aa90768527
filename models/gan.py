"""What the GAN models share: their generator flags, the GAN criterion, image pools and the discriminator's step."""
import torch

from models import networks
from models.base_model import BaseModel
from models.config import COUPLINGS, REVERSIBLE_NETG, REVGAN_DEPTH, STEM_PADDINGS, STEMS, GeneratorConfig
from util.argtypes import NONNEG_INT, model_group
from util.errors import UserError
from util.flags import ARCH, ARCH_SOFT, RUN
from util.image_pool import ImagePool


def add_generator_options(parser, reversible: bool):
    """The generator flags every GAN model has, and with ``reversible`` those of the RevGAN generators (whose
    --netG then defaults to revgan). Defaults come from models.config.GeneratorConfig, but --norm: none.

    No normalization by default (CycleGAN's generators have instance norm, pix2pix's batch norm, which with one image
    per batch is the same in training): a per-image norm after the first convolution removes each channel's mean
    and scale, so the generator cannot see its input's colour and contrast (how faded a photo is, which colour a
    region has) and guesses them. Without it, on 2 CPU cores, 8 short epochs: faded photos, unpaired, 13.3 -> 19.6 dB
    (cycle_gan 13.4 -> 19.5); camera restoration, paired, 25.3 -> 27.0-27.2; satellite -> map, paired, pix2pix
    18.0 -> 19.0 (docs/benchmarks.md, "Normalization"). The 3D models had none already (models/volume.py)."""
    parser.set_defaults(norm="none")
    g = model_group(parser)
    g.add_argument("--n_downsampling", policy=ARCH, type=NONNEG_INT, default=GeneratorConfig.n_downsampling,
                   help="stride-2 levels in the encoder/decoder (ResNet and RevGAN generators)")
    g.add_argument("--no_output_tanh", policy=ARCH, action="store_true", help="no tanh on the generator output")
    g.add_argument("--stem", policy=ARCH, default=GeneratorConfig.stem, choices=STEMS,
                   help="how the encoder enters the first resolution level and the decoder leaves it (ResNet and "
                        "RevGAN generators): conv7, a 7x7 convolution at full resolution (CycleGAN's, the original "
                        "RevGAN's); unshuffle, each 2x2 (2x2x2) block of pixels moved into channels and convolutions "
                        "at half resolution, the decoder's mirror (no feature map at full resolution: less memory). "
                        "Default: conv7; paired_revgan and the 3D models: unshuffle (conv7 at --n_downsampling 0): "
                        "ahead of conv7 on the paired map task and for pix2pix3d in 3D, within seed noise of it on "
                        "the other paired tasks and for the unpaired 3D models (in about half their time), with less "
                        "memory")
    g.add_argument("--stem_padding", policy=ARCH, default=GeneratorConfig.stem_padding, choices=STEM_PADDINGS,
                   help="--stem unshuffle: the padding of its first convolution; zeros, or reflect as unshuffle "
                        "checkpoints written before this option have (then a uniform image, such as a blank tile, "
                        "reaches the core as a constant map and the gradients of its instance norms overflow)")
    g.add_argument("--no_residual", policy=ARCH, action="store_true",
                   help="no global residual: the generator's output does not start from its input (as in "
                        "CycleGAN's generator)")
    g.add_argument("--residual", policy=ARCH, dest="no_residual", action="store_false",
                   help="a global residual: the generator's output starts from its input, tanh(g * atanh(x) + h) "
                        "with a learned gain g starting at 1 (the default of the paired models; for the unpaired "
                        "ones, kept whatever the domains: it learns best between domains that look alike, such as "
                        "restoration, and holds them near their input between domains that do not, see "
                        "--residual_auto); only where input and output have as many channels")
    g.add_argument("--no_residual_gate", policy=ARCH, action="store_true",
                   help="the residual's input path without its learned gain (the output is tanh(atanh(x) + h) "
                        "exactly, as before the gate existed); the gain starts at 1 and lets training leave the "
                        "identity when the target looks different from the input")
    if reversible:
        g.add_argument("--n_blocks", policy=ARCH, type=NONNEG_INT, default=REVGAN_DEPTH,
                       help="depth of the reversible core (coupling blocks)")
        g.add_argument("--coupling", policy=ARCH, default=GeneratorConfig.coupling, choices=COUPLINGS,
                       help="coupling blocks of the core: additive (y1 = x1 + F(x2)) or affine (bounded scale)")
        g.add_argument("--use_naive", policy=ARCH_SOFT, action="store_true",
                       help="run the core on plain autograd (stores activations; the memory reference)")
        g.add_argument("--memory", policy=RUN, default="low", choices=MEMORY_MODES,
                       help="low: every network outside the reversible core (encoders, decoders, discriminators) "
                            "recomputes its activations in backward instead of storing them (same gradients; the "
                            "least memory), except parts whose activations total under 4 MiB, and a core under 16 "
                            "MiB a pass, measured on the first step (small inputs, such as 64x64 tiles: there "
                            "recomputing saves little and costs time); core: only the core saves memory, always "
                            "(stores the rest). Independent of --use_naive, which runs the core itself on plain "
                            "autograd")
        g.add_argument("--iunet_architecture", policy=ARCH, default=GeneratorConfig.iunet_architecture,
                       help="--netG iunet: coupling blocks per resolution level, comma-separated")
        parser.set_defaults(netG="revgan")
    return parser


MEMORY_MODES = ("low", "core")


def check_netG(spec, reversible: bool) -> None:
    """RevGAN models need a reversible generator; the others cannot take one."""
    netG = spec.generator.netG
    if reversible and netG not in REVERSIBLE_NETG:
        raise UserError(f"--model {spec.model} needs --netG revgan or iunet (got {netG}); for {netG} use "
                        f"--model pix2pix or cycle_gan")
    if not reversible and netG in REVERSIBLE_NETG:
        raise UserError(f"--netG {netG} belongs to the RevGAN models: use --model paired_revgan or unpaired_revgan")


class GANModel(BaseModel):
    """A BaseModel trained adversarially: the GAN criterion, an L1 criterion, image pools of generated images for the
    discriminators, and the discriminator's loss with a real WGAN-GP gradient penalty.

    Subclasses build their networks (``make_G``/``make_D``) and call ``add_pools`` for the fakes they pool. While
    ``measure_separation`` is set, each discriminator loss appends its networks.separation to ``separations``."""
    measure_separation = False

    @staticmethod
    def architecture_defaults(config, spec):
        # --stem None (the default of paired_revgan and the 3D models): the stem from_options resolved
        return {"stem": spec.generator.stem} if getattr(config, "stem", "") is None else {}

    def __init__(self, opt, spec):
        super().__init__(opt, spec)
        self.separations = []
        if self.is_train:
            self.criterionGAN = networks.GANLoss(opt.gan_mode).to(self.device)
            self.criterionL1 = torch.nn.L1Loss()

    @staticmethod
    def set_requires_grad(nets, requires_grad=False):
        for net in nets if isinstance(nets, (list, tuple)) else [nets]:
            for p in net.parameters():
                p.requires_grad = requires_grad

    def check_losses_finite(self, names) -> None:
        """Stops training on the first loss ``self.loss_<name>`` of ``names`` that is not finite."""
        self.guards.check_finite({n: getattr(self, "loss_" + n) for n in names}, self.progress)

    def add_network(self, name, net):
        """Registers ``net``; under --memory low (the RevGAN models' default) it recomputes its activations outside
        the reversible core in training (models.networks.Recomputing)."""
        if isinstance(net, networks.Recomputing):
            net.recompute = self.is_train and getattr(self.opt, "memory", "core") == "low"
        return super().add_network(name, net)

    def make_G(self, input_nc: int, output_nc: int):
        return networks.define_G(input_nc, output_nc, self.spec.generator)

    def make_D(self, input_nc: int):
        return networks.define_D(input_nc, self.spec.discriminator)

    def add_pools(self, *names: str) -> None:
        for name in names:
            self.pools[name] = ImagePool(self.opt.pool_size)

    def set_paired_input(self, data: dict, disc_name: str) -> None:
        """A paired batch, for generators and a conditional discriminator ``disc_name`` seeing (A, B) channel
        pairs."""
        self.real_A = data["A"].to(self.device)
        self.real_B = data["B"].to(self.device)
        self.image_paths = data["A_paths"]
        self.check_input(self.real_A)
        if self.is_train:
            self.guards.check_discriminator(disc_name, self.net(disc_name), self.spec.input_nc + self.spec.output_nc,
                                            self.real_A.shape[2:])

    def discriminator_terms(self, netD, real: torch.Tensor, fake: torch.Tensor) -> tuple:
        """``netD``'s loss on a real batch, on a (detached) fake batch, and the gradient penalty (0 but under
        wgangp; taken inside the fp16 gradient scaler of ``self.optimizer_D``, the discriminators' optimizer)."""
        pred_real, pred_fake = netD(real), netD(fake.detach())
        if self.measure_separation:
            self.separations.append(networks.separation(pred_real, pred_fake))
        loss_real, loss_fake = self.criterionGAN(pred_real, True), self.criterionGAN(pred_fake, False)
        penalty = networks.gradient_penalty(netD, real, fake, lambda_gp=self.opt.lambda_gp,
                                            scale=self.precision.loss_scale(self.optimizer_D)) \
            if self.opt.gan_mode == "wgangp" else 0.0
        return loss_real, loss_fake, penalty

    def discriminator_loss(self, netD, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """``netD``'s loss: the mean of its real and fake terms, plus the gradient penalty under wgangp."""
        loss_real, loss_fake, penalty = self.discriminator_terms(netD, real, fake)
        return 0.5 * (loss_real + loss_fake) + penalty
